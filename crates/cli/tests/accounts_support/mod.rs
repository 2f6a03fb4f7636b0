//! Small helpers shared by the account test files.
#![allow(dead_code)] // each test binary uses a different part

use crate::support::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .http
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn login(server: &TestServer, user: &str, password: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/logbook/v1/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login")
}

pub fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let set = response
        .headers()
        .get("set-cookie")
        .expect("set-cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    let pair = set.split(';').next().expect("pair").to_string();
    (pair, set)
}
