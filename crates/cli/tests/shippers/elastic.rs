//! Elasticsearch bulk under `/es/`: the official client and opensearch-py.

use super::clients::{all_records, count, gzip, run_python, writer};
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use serde_json::{json, Value};

store_tests!(
    elasticsearch_client_bulk_maps_ecs_fields_and_answers_per_item,
    opensearch_client_bulk_writes_every_document_once,
    bulk_errors_have_elasticsearch_shapes_and_write_nothing,
);

async fn elasticsearch_client_bulk_maps_ecs_fields_and_answers_per_item(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = writer(&server, "shipper", "acme").await;
    let out = run_python(
        "shippers_elasticsearch.py",
        &[("BASE", server.base.clone()), ("TOKEN", token)],
    )
    .await;
    assert_eq!(out["ok"], 2, "{out}");
    let errors = out["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{out}");
    assert_eq!(errors[0]["delete"]["status"], 400, "{out}");
    assert_eq!(
        errors[0]["delete"]["error"]["type"],
        "illegal_argument_exception"
    );
    assert_eq!(errors[1]["index"]["status"], 400, "{out}");
    assert!(errors[1]["index"]["error"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("@timestamp")));

    let records = all_records(&server).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first["ts"], "2024-05-01T10:40:00.250000Z");
    assert_eq!(first["kind"], "log");
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["message"], "payment accepted");
    assert_eq!(first["source"], "checkout");
    assert_eq!(first["instance"], "node-1");
    assert_eq!(first["logger"], "app.payments");
    assert_eq!(first["category"], "app-logs");
    assert_eq!(first["domain_id"], "acme");
    assert_eq!(first["data"], json!({"user": {"id": "42"}, "_id": "a1"}));
    let second = &records[1];
    assert_eq!(second["ts"], "2024-05-01T10:40:01.000000Z");
    assert_eq!(second["level"], "ERROR");
    assert_eq!(
        second["category"], "audit",
        "the document's own category wins"
    );
    server.stop().await;
}

async fn opensearch_client_bulk_writes_every_document_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = writer(&server, "os-writer", "default").await;
    let out = run_python(
        "shippers_opensearch.py",
        &[
            ("BASE", server.base.clone()),
            ("USER", "os-writer".into()),
            ("TOKEN", token),
        ],
    )
    .await;
    assert_eq!(out, json!({"ok": 250, "errors": []}));
    let records = all_records(&server).await;
    let messages: Vec<&str> = records
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    let expected: Vec<String> = (0..250).map(|i| format!("line {i}")).collect();
    assert_eq!(messages, expected, "each once, in order");
    assert!(records
        .iter()
        .all(|r| r["instance"] == "os-host" && r["category"] == "os-index"));
    server.stop().await;
}

async fn bulk_errors_have_elasticsearch_shapes_and_write_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let reader = server
        .user_with_token("viewer", Role::User, "default")
        .await;
    let url = server.url("/es/logs/_bulk");
    let ndjson = "application/vnd.elasticsearch+x-ndjson; compatible-with=9";
    let post = |body: Vec<u8>| {
        server
            .http
            .post(&url)
            .header("content-type", ndjson)
            .body(body)
    };
    let error_type = |body: &Value| body["error"]["type"].as_str().unwrap_or("").to_string();

    // No credentials: 401 with Elasticsearch's security error and challenge.
    let response = post(b"{\"index\":{}}\n{}\n".to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_type(&body), "security_exception");
    assert_eq!(body["status"], 401);

    // A reader may not write.
    let response = post(b"{\"index\":{}}\n{}\n".to_vec())
        .header("authorization", format!("ApiKey {reader}"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403);

    // A broken action line refuses the whole request, naming the line.
    let body = b"{\"index\":{}}\n{\"message\":\"fine\"}\n{\"index\":\n{\"message\":\"x\"}\n";
    let response = post(body.to_vec())
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let body: Value = response.json().await.expect("json");
    assert!(body["error"]["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("line 3")));
    // So does a document action without its document.
    let response = post(b"{\"create\":{}}\n".to_vec())
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    assert_eq!(count(&server).await, 0);

    // gzip, PUT, a document that is not an object (refused alone), the version
    // document the clients read first.
    let gz =
        gzip(b"{\"index\":{\"_index\":\"other\"}}\n[1]\n{\"create\":{}}\n{\"message\":\"kept\"}\n");
    let response = server
        .http
        .put(&url)
        .bearer_auth(&server.token)
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"], true);
    assert_eq!(body["items"][0]["index"]["status"], 400);
    assert_eq!(body["items"][0]["index"]["_index"], "other");
    assert_eq!(body["items"][1]["create"]["status"], 201);
    let records = all_records(&server).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["message"], "kept");
    assert_eq!(records[0]["category"], "logs");
    assert_eq!(
        body["items"][1]["create"]["_id"],
        records[0]["id"].to_string().as_str()
    );
    let response = server.get("/es/").await;
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["tagline"], "You Know, for Search");
    let health = server.get_json("/es/_cluster/health").await;
    assert_eq!(health["status"], "green");
    server.stop().await;
}
