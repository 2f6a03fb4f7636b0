//! The native API (`/logbook/v1/`), against every store.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{Backend, TestServer};

store_tests!(ingests_one_object_an_array_and_ndjson);

async fn ingests_one_object_an_array_and_ndjson(backend: Backend) {
    let server = TestServer::start(backend).await;
    let one = server
        .ingest(json!({"kind": "log", "level": "INFO", "message": "one"}))
        .await;
    assert_eq!(one, vec![1]);
    let array = server
        .ingest(json!([{"kind": "log", "message": "two"}, {"kind": "event", "category": "image"}]))
        .await;
    assert_eq!(array, vec![2, 3]);
    let response = server
        .request(Method::POST, "/logbook/v1/records")
        .header("content-type", "application/x-ndjson")
        .body(
            "{\"kind\":\"journal\",\"action\":\"a\"}\n\n{\"kind\":\"log\",\"message\":\"five\"}\n",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"accepted": 2, "first_id": 4, "last_id": 5}));
    let listed = server.get_json("/logbook/v1/records?order=asc").await;
    let kinds: Vec<&str> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["log", "log", "event", "journal", "log"]);
    server.stop().await;
}
