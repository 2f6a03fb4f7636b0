//! `Idempotency-Key` (issue 20, point 3): a retry with the same key gets the
//! original answer and writes nothing; the same key with another body gets 422;
//! on records, the journal and action creation, against every store.

use crate::support::{Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

async fn post(server: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value, bool) {
    let response = server
        .request(Method::POST, path)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body: Value = response.json().await.expect("json");
    (status, body, replayed)
}

async fn count(server: &TestServer, query: &str) -> u64 {
    server
        .get_json(&format!("/logbook/v1/records/count?{query}"))
        .await["count"]
        .as_u64()
        .expect("count")
}

async fn a_retried_write_with_the_same_key_writes_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let batch = json!([{"message": "one"}, {"message": "two"}]);
    let (status, first, replayed) = post(&server, "/logbook/v1/records", "k-1", &batch).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = post(&server, "/logbook/v1/records", "k-1", &batch).await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again, first, "the original answer");
    assert_eq!(count(&server, "kind=log").await, 2, "written once");

    // The same key with a different body: 422 naming the header, nothing written.
    let other = json!([{"message": "three"}]);
    let (status, error, _) = post(&server, "/logbook/v1/records", "k-1", &other).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["field"], "Idempotency-Key", "{error}");
    assert_eq!(count(&server, "kind=log").await, 2);
    // Another key is another write.
    let (status, _, _) = post(&server, "/logbook/v1/records", "k-2", &batch).await;
    assert_eq!(status, 201);
    assert_eq!(count(&server, "kind=log").await, 4);
    // A refused request's answer is kept too: the retry is refused the same way.
    let bad = json!({"level": "LOUD"});
    let (status, refused, _) = post(&server, "/logbook/v1/records", "k-3", &bad).await;
    assert_eq!(status, 400, "{refused}");
    let (status, again, replayed) = post(&server, "/logbook/v1/records", "k-3", &bad).await;
    assert_eq!((status, replayed, &again), (400, true, &refused));
    // Another caller's key of the same name is its own.
    let writer = server
        .user_with_token("writer1", logbook_core::Role::Writer, "default")
        .await;
    let response = server
        .http
        .post(server.url("/logbook/v1/records"))
        .bearer_auth(&writer)
        .header("idempotency-key", "k-1")
        .json(&batch)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    // A key that is not one.
    let (status, error, _) = post(&server, "/logbook/v1/records", &"x".repeat(300), &batch).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["field"], "Idempotency-Key");
    server.stop().await;
}

async fn journal_entries_and_actions_take_a_key_too(backend: Backend) {
    let server = TestServer::start(backend).await;
    let entry = json!({"journal": {"object_id": 5, "action": "vm.start", "status": "ok"}});
    let (status, first, _) = post(&server, "/v1/journal/", "j-1", &entry).await;
    assert_eq!(status, 201, "{first}");
    let (status, again, replayed) = post(&server, "/v1/journal/", "j-1", &entry).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first);
    assert_eq!(count(&server, "kind=journal&action=vm.start").await, 1);

    let action = json!({"action": "deploy", "can_be_canceled": false, "can_be_retried": false});
    let (status, created, _) = post(&server, "/logbook/v1/actions", "a-1", &action).await;
    assert_eq!(status, 201, "{created}");
    let (status, again, replayed) = post(&server, "/logbook/v1/actions", "a-1", &action).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again["uuid"], created["uuid"], "the same action");
    let listed = server.get_json("/logbook/v1/actions").await;
    let total = listed["actions"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(total, 1, "created once: {listed}");
    server.stop().await;
}

/// NDJSON bodies are parsed as they arrive and fingerprinted as they are read.
async fn post_ndjson(server: &TestServer, key: &str, body: &str) -> (u16, Value, bool) {
    let response = server
        .request(Method::POST, "/logbook/v1/records")
        .header("idempotency-key", key)
        .header("content-type", "application/x-ndjson")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, response.json().await.expect("json"), replayed)
}

async fn a_streamed_ndjson_batch_is_fingerprinted_whole(backend: Backend) {
    let server = TestServer::start(backend).await;
    let lines: String = (0..5000)
        .map(|i| format!("{{\"source\":\"nd\",\"message\":\"{i}\"}}\n"))
        .collect();
    let (status, first, replayed) = post_ndjson(&server, "n-1", &lines).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = post_ndjson(&server, "n-1", &lines).await;
    assert_eq!((status, replayed, &again), (201, true, &first));
    assert_eq!(count(&server, "source=nd").await, 5000, "written once");
    // Only the last line differs: another body, 422, nothing written.
    let other = format!("{lines}{{\"source\":\"nd\"}}\n");
    let (status, error, _) = post_ndjson(&server, "n-1", &other).await;
    assert_eq!(
        (status, &error["field"]),
        (422, &json!("Idempotency-Key")),
        "{error}"
    );
    assert_eq!(count(&server, "source=nd").await, 5000);
    // A batch refused for a late line: the refusal is kept and replayed.
    let bad = format!("{lines}{{\"source\":\"nd\",\"level\":\"LOUD\"}}\n");
    let (status, refused, _) = post_ndjson(&server, "n-2", &bad).await;
    assert_eq!(
        (status, &refused["field"]),
        (400, &json!("[5000].level")),
        "{refused}"
    );
    let (status, again, replayed) = post_ndjson(&server, "n-2", &bad).await;
    assert_eq!((status, replayed, &again), (400, true, &refused));
    assert_eq!(count(&server, "source=nd").await, 5000);
    server.stop().await;
}

store_tests!(
    a_streamed_ndjson_batch_is_fingerprinted_whole,
    a_retried_write_with_the_same_key_writes_once,
    journal_entries_and_actions_take_a_key_too,
);
