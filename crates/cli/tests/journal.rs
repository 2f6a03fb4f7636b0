//! The journal dialect (`/v1/journal/`): the document's curl commands verbatim, every
//! filter and modifier, project and domain filtering, identity, tenancy and errors.

mod access;
mod filters;

use access::{
    identity_defaults_and_acting_for_others, missing_bad_and_unknown_input_is_refused,
    project_and_domain_filtering,
};
use filters::every_filter_and_modifier_alone_and_combined;

use crate::support::{Backend, TestServer, ADMIN_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The document's three commands, exactly as printed.
const CURL_POST: &str = r#"curl -X POST -H "X-Auth-Token: $token" -H "Content-Type: application/json" -d '{"journal": {"object_id": "4", "object_type": "node", "action": "node_control.power_on", "status": "Success"}}' http://controller:9360/v1/journal/ | python -m json.tool"#;
const CURL_LIST: &str = r#"curl -X GET -H "X-Auth-Token: $token" -H "Content-Type: application/json" http://controller:9360/v1/journal/ | python -m json.tool"#;
const CURL_COUNT: &str = r#"curl -X GET -H "X-Auth-Token: $token" -H "Content-Type: application/json" http://controller:9360/v1/journal/count | python -m json.tool"#;

const DOCUMENT_KEYS: [&str; 14] = [
    "action",
    "action_arguments",
    "event_time",
    "id",
    "message",
    "object_id",
    "object_type",
    "parent_request_id",
    "request_id",
    "response_code",
    "status",
    "user_id",
    "user_name",
    "domain_id",
];

/// Runs a documented command through a shell, substituting only host, port and token.
async fn curl(server: &TestServer, command: &str) -> Value {
    let command = command.replace("http://controller:9360", &server.base);
    let token = server.token.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("token", token)
            .output()
            .expect("run curl")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = server.http.request(method, server.url(path));
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, value)
}

async fn post(server: &TestServer, token: &str, path: &str, entry: Value) -> (StatusCode, Value) {
    let body = json!({ "journal": entry }).to_string();
    call(server, Some(token), Method::POST, path, Some(&body)).await
}

async fn posted(server: &TestServer, token: &str, path: &str, entry: Value) -> Value {
    let (status, body) = post(server, token, path, entry).await;
    assert_eq!(status, 201, "{body}");
    body["journal"].clone()
}

/// The ids listed (unpaged) and counted for `query`; asserts both agree.
async fn ids_and_count(server: &TestServer, token: &str, query: &str) -> Vec<i64> {
    let sep = if query.is_empty() { "" } else { "&" };
    let (status, listed) = call(
        server,
        Some(token),
        Method::GET,
        &format!("/v1/journal/?limit=1000{sep}{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{query}: {listed}");
    let ids: Vec<i64> = listed["journal"]
        .as_array()
        .expect("journal list")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    let path = format!("/v1/journal/count?{query}");
    let (status, counted) = call(server, Some(token), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{query}: {counted}");
    assert_eq!(counted, json!({"count": ids.len()}), "count for {query}");
    ids
}

fn is_naive_second(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

async fn the_documents_curl_commands_work_unchanged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.store.user_by_name("admin").await.expect("store");
    let admin_id = admin.expect("admin").id.to_string();
    let created = curl(&server, CURL_POST).await;
    let entry = &created["journal"];
    let keys: Vec<&str> = entry
        .as_object()
        .expect("entry")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, DOCUMENT_KEYS, "the document's fields, in its order");
    assert_eq!(entry["action"], "node_control.power_on");
    assert_eq!(entry["action_arguments"], Value::Null);
    assert!(
        is_naive_second(entry["event_time"].as_str().expect("time")),
        "{entry}"
    );
    assert!(entry["id"].is_i64(), "{entry}");
    assert_eq!(entry["message"], Value::Null);
    assert_eq!(entry["object_id"], "4");
    assert_eq!(entry["object_type"], "node");
    assert_eq!(entry["parent_request_id"], Value::Null);
    assert_eq!(
        entry["request_id"].as_str().map(str::len),
        Some(36),
        "{entry}"
    );
    assert_eq!(entry["response_code"], Value::Null);
    assert_eq!(entry["status"], "Success");
    assert_eq!(entry["user_id"], admin_id.as_str());
    assert_eq!(entry["user_name"], "admin");
    assert_eq!(entry["domain_id"], "default");

    let listed = curl(&server, CURL_LIST).await;
    assert_eq!(listed, json!({ "journal": [entry] }));
    let counted = curl(&server, CURL_COUNT).await;
    assert_eq!(counted, json!({"count": 1}));
    // The same answers without (or with) the trailing slash.
    let token = Some(server.token.as_str());
    let (_, bare) = call(&server, token, Method::GET, "/v1/journal", None).await;
    assert_eq!(bare, listed);
    let (_, slashed) = call(&server, token, Method::GET, "/v1/journal/count/", None).await;
    assert_eq!(slashed, counted);
    let body = r#"{"journal": {"object_id": "9", "action": "a", "status": "s"}}"#;
    let (status, in_project) =
        call(&server, token, Method::POST, "/v1/T1/journal", Some(body)).await;
    assert_eq!(status, 201, "{in_project}");
    let native = server
        .get_json(&format!(
            "/logbook/v1/records/{}",
            in_project["journal"]["id"]
        ))
        .await;
    assert_eq!(native["project_id"], "T1");

    // The entry is an ordinary core record; the exact arguments live in `data`.
    let args = "{\"user\":  \"admin\"}";
    let second = posted(
        &server,
        &server.token,
        "/v1/journal/",
        json!({"object_id": 5, "action": "a", "status": "s", "action_arguments": args}),
    )
    .await;
    assert_eq!(second["action_arguments"], args);
    assert_eq!(second["object_id"], "5");
    let native = server
        .get_json(&format!("/logbook/v1/records/{}", second["id"]))
        .await;
    assert_eq!(native["kind"], "journal");
    assert_eq!(native["data"], json!({"action_arguments": args}));
    assert_eq!(
        native["ts"].as_str().map(|t| &t[..19]),
        second["event_time"].as_str()
    );
    server.stop().await;
}

async fn logins_and_logouts_are_journal_entries(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin_id = server
        .store
        .user_by_name("admin")
        .await
        .expect("store")
        .expect("admin")
        .id
        .to_string();
    let login = |password: &'static str| {
        server
            .http
            .post(server.url("/logbook/v1/login"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    assert_eq!(login("wrong").await.expect("send").status(), 401);
    let response = login(ADMIN_PASSWORD).await.expect("send");
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let out = server
        .http
        .post(server.url("/logbook/v1/logout"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(out.status(), 200);
    let (_, body) = call(
        &server,
        Some(&server.token),
        Method::GET,
        "/v1/journal/?action=startswith:dashboard.user.",
        None,
    )
    .await;
    let entries = body["journal"].as_array().expect("list");
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("dashboard.user.logout", "success"),
            ("dashboard.user.login", "success"),
            ("dashboard.user.login", "failure")
        ]
    );
    let login = &entries[1];
    assert_eq!(
        login["message"],
        "User \"admin\" was successfully logged in."
    );
    assert_eq!(
        (login["object_type"].as_str(), login["object_id"].as_str()),
        (Some("user"), Some("admin"))
    );
    assert_eq!(
        (login["user_name"].as_str(), login["user_id"].as_str()),
        (Some("admin"), Some(admin_id.as_str()))
    );
    assert_eq!(login["domain_id"], "default");
    assert!(is_naive_second(login["event_time"].as_str().expect("time")));
    assert_eq!(
        entries[2]["domain_id"], "default",
        "a failed login is filed in the domain of the account tried (issue 8)"
    );
    assert_eq!(
        ids_and_count(
            &server,
            &server.token,
            "action=dashboard.user.login&status=failure"
        )
        .await
        .len(),
        1
    );
    server.stop().await;
}

store_tests!(
    the_documents_curl_commands_work_unchanged,
    every_filter_and_modifier_alone_and_combined,
    project_and_domain_filtering,
    identity_defaults_and_acting_for_others,
    missing_bad_and_unknown_input_is_refused,
    logins_and_logouts_are_journal_entries,
);
