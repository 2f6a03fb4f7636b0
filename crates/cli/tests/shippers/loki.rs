//! Loki push: python-logging-loki (JSON) and a snappy protobuf push built from
//! Loki's published definitions.

use super::clients::{all_records, count, gzip, post_anonymous, run_python, writer};
use crate::support::{Backend, TestServer};
use serde_json::{json, Value};

store_tests!(
    loki_handler_json_push_maps_labels,
    snappy_protobuf_push_maps_labels_and_structured_metadata,
    bad_pushes_get_plain_text_errors_and_write_nothing,
);

fn client_env(server: &TestServer, user: &str, token: String) -> Vec<(&'static str, String)> {
    vec![
        ("BASE", server.base.clone()),
        ("USER", user.to_string()),
        ("TOKEN", token),
    ]
}

async fn loki_handler_json_push_maps_labels(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = writer(&server, "promtail", "ops").await;
    let out = run_python(
        "shippers_loki_handler.py",
        &client_env(&server, "promtail", token),
    )
    .await;
    assert_eq!(out, json!({"failures": []}), "every push answered 204");
    let records = all_records(&server).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first["message"], "disk almost full");
    assert_eq!(first["level"], "WARN", "from the severity label");
    assert_eq!(first["source"], "billing", "from the job label");
    assert_eq!(first["instance"], "db-1", "from the host label");
    assert_eq!(first["domain_id"], "ops");
    assert_eq!(
        first["data"]["labels"],
        json!({"env": "prod", "logger": "billing.invoices"})
    );
    assert_eq!(records[1]["level"], "ERROR");
    assert_eq!(records[1]["message"], "disk full");
    server.stop().await;
}

async fn snappy_protobuf_push_maps_labels_and_structured_metadata(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = writer(&server, "agent", "default").await;
    let out = run_python(
        "shippers_loki_protobuf.py",
        &client_env(&server, "agent", token),
    )
    .await;
    assert_eq!(out[0], json!([204, ""]), "{out}");
    assert_eq!(
        out[1],
        json!([204, ""]),
        "no content type means protobuf: {out}"
    );
    assert_eq!(out[2][0], 400, "{out}");
    assert!(
        out[2][1]
            .as_str()
            .is_some_and(|t| t.contains("streams[0].stream")),
        "{out}"
    );
    let records = all_records(&server).await;
    assert_eq!(
        records.len(),
        3,
        "the broken push wrote nothing: {records:?}"
    );
    let first = &records[0];
    assert_eq!(first["ts"], "2024-05-01T10:40:00.123456Z");
    assert_eq!(first["message"], "upstream timed out");
    assert_eq!(first["level"], "ERROR");
    assert_eq!(first["source"], "varlogs");
    assert_eq!(first["instance"], "web-1");
    assert_eq!(
        first["data"],
        json!({"labels": {"env": "prod"}, "trace_id": "abc123"})
    );
    assert_eq!(records[1]["message"], "retrying");
    assert_eq!(records[2]["source"], "no-type");
    assert_eq!(records[2]["instance"], "p-1");
    server.stop().await;
}

async fn bad_pushes_get_plain_text_errors_and_write_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.url("/loki/api/v1/push");
    let push = |body: Vec<u8>, content_type: &str| {
        server
            .http
            .post(&url)
            .bearer_auth(&server.token)
            .header("content-type", content_type)
            .body(body)
    };
    let cases: [(&[u8], &str, u16, &str); 5] = [
        (b"{\"streams\": 5}", "application/json", 400, "streams"),
        (
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1714560000000000000","ok"],["soon","bad"]]}]}"#,
            "application/json",
            400,
            "streams[0].values[1]",
        ),
        (
            br#"{"streams":[{"stream":{"job":1},"values":[]}]}"#,
            "application/json",
            400,
            "label \"job\"",
        ),
        (b"not snappy", "application/x-protobuf", 400, "snappy"),
        (b"{", "application/json", 400, "JSON"),
    ];
    for (body, content_type, status, names) in cases {
        let response = push(body.to_vec(), content_type)
            .send()
            .await
            .expect("push");
        assert_eq!(response.status(), status);
        let text = response.text().await.expect("text");
        assert!(text.contains(names), "{text}");
    }
    // Anonymous: 401.
    let response = post_anonymous(&server, &url, "application/json", "{}").await;
    assert_eq!(response.status(), 401);
    assert_eq!(count(&server).await, 0);

    // A gzip JSON push with structured metadata, in the legacy form too.
    let body = json!({"streams": [
        {"stream": {"service_name": "api", "level": "debug"},
         "values": [["1714560000000000000", "gz line", {"user": "alice"}]]},
        {"labels": "{job=\"legacy\"}", "entries": [{"ts": "2024-05-01T10:40:00Z", "line": "old form"}]}
    ]});
    let response = push(gzip(body.to_string().as_bytes()), "application/json")
        .header("content-encoding", "gzip")
        .send()
        .await
        .expect("push");
    assert_eq!(response.status(), 204);
    let records = all_records(&server).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["level"], "DEBUG");
    assert_eq!(records[0]["source"], "api");
    assert_eq!(records[0]["data"], json!({"user": "alice"}));
    assert_eq!(records[1]["source"], "legacy");
    assert_eq!(records[1]["message"], "old form");
    let _: Option<Value> = None;
    server.stop().await;
}
