//! The fixture every Docker Cloud test starts from: a node with a platform account
//! driving the native API and client accounts in two domains, plus the runner of
//! the python-dockercloud scripts.

use crate::support::{self, Backend, TestServer};
use base64::Engine;
use logbook_core::Role;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

/// A node with a platform (writer), alice (a user of acme) and bob (of globex).
pub struct Fixture {
    pub server: TestServer,
    pub platform: String,
    pub alice: String,
    pub bob: String,
}

impl Fixture {
    pub async fn start(backend: Backend) -> Fixture {
        let server = TestServer::start(backend).await;
        let platform = server
            .user_with_token("platform", Role::Writer, "acme")
            .await;
        let alice = server.user_with_token("alice", Role::User, "acme").await;
        let bob = server.user_with_token("bob", Role::Writer, "globex").await;
        Fixture {
            server,
            platform,
            alice,
            bob,
        }
    }

    pub fn native(&self, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(token)
    }

    /// Creates an action as `token`'s account and returns its JSON.
    pub async fn create(&self, token: &str, body: Value) -> Value {
        let response = self
            .native(token, Method::POST, "/logbook/v1/actions")
            .json(&body)
            .send()
            .await
            .expect("create action");
        let status = response.status();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "{answer}");
        answer
    }

    pub async fn uuid(&self, body: Value) -> String {
        let answer = self.create(&self.platform, body).await;
        answer["uuid"].as_str().expect("uuid").to_string()
    }

    /// Runs a client script as alice (Basic alice:<API key>) and parses its output.
    pub async fn client(&self, script: &str, scenario: Value) -> Value {
        self.client_as(script, scenario, &format!("alice:{}", self.alice))
            .await
    }

    pub async fn client_as(&self, script: &str, scenario: Value, credentials: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let out = support::python::run_script(
            &path,
            &[
                ("LOGBOOK_URL", self.server.base.clone()),
                ("DOCKERCLOUD_REST_HOST", format!("{}/", self.server.base)),
                (
                    "DOCKERCLOUD_STREAM_HOST",
                    format!("ws://{}/", self.server.addr),
                ),
                ("DOCKERCLOUD_AUTH", format!("Basic {basic}")),
                ("PLATFORM_TOKEN", self.platform.clone()),
                ("SCENARIO", scenario.to_string()),
            ],
        )
        .await;
        let last = out.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{script}: {e}: {out}"))
    }
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// `Wed, 17 Sep 2014 08:26:22 +0000` plus `minutes`, in the document's form.
pub fn doc_date(minutes: i64) -> String {
    let ts = logbook_core::Timestamp(1_410_942_382_000_000 + minutes * 60_000_000);
    ts.rfc2822()
}
