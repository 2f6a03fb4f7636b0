//! OTLP/HTTP logs: the OpenTelemetry Python SDK (protobuf) and JS exporter (JSON).

use super::clients::{all_records, count, gzip, post_anonymous, run_node, run_python, writer};
use crate::support::{Backend, TestServer};
use serde_json::{json, Value};

store_tests!(
    python_sdk_protobuf_export_maps_resource_scope_and_trace,
    js_exporter_json_export_maps_fields,
    bad_exports_get_rpc_status_and_partial_success,
);

async fn python_sdk_protobuf_export_maps_resource_scope_and_trace(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = writer(&server, "otel", "acme").await;
    let out = run_python(
        "shippers_otlp.py",
        &[("BASE", server.base.clone()), ("TOKEN", token)],
    )
    .await;
    assert_eq!(out["results"], json!(["SUCCESS", "SUCCESS"]), "{out}");
    let records = all_records(&server).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first["message"], "card declined");
    assert_eq!(first["level"], "ERROR");
    assert_eq!(first["source"], "checkout");
    assert_eq!(
        first["instance"], "pod-7",
        "service.instance.id before host.name"
    );
    assert_eq!(first["logger"], "app.payments", "the scope name");
    assert_eq!(first["domain_id"], "acme");
    let data = &first["data"];
    assert_eq!(data["trace_id"], out["trace_id"]);
    assert_eq!(data["span_id"], out["span_id"]);
    assert_eq!(data["amount"], 42);
    assert_eq!(data["currency"], "EUR");
    assert_eq!(data["resource"]["host.name"], "node-1");
    assert_eq!(data["severity_text"], "ERROR");
    assert_eq!(records[1]["level"], "DEBUG");
    assert!(
        records[1]["data"].get("trace_id").is_none(),
        "outside the span"
    );
    server.stop().await;
}

async fn js_exporter_json_export_maps_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = writer(&server, "browser", "default").await;
    let out = run_node(
        "otlp_logs.cjs",
        &[("BASE", server.base.clone()), ("TOKEN", token)],
    )
    .await;
    assert_eq!(
        out,
        json!([{"code": 0, "error": null}, {"code": 0, "error": null}])
    );
    let records = all_records(&server).await;
    assert_eq!(records.len(), 2, "{records:?}");
    // The exporter sends each record in its own request, concurrently.
    let by_level = |level: &str| {
        records
            .iter()
            .find(|r| r["level"] == level)
            .unwrap_or_else(|| panic!("no {level} record: {records:?}"))
    };
    let first = by_level("WARN");
    assert_eq!(first["ts"], "2024-05-01T10:40:00.500000Z");
    assert_eq!(first["message"], "cache miss");
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["source"], "frontend");
    assert_eq!(first["instance"], "browser-host");
    assert_eq!(first["logger"], "web.checkout");
    let data = &first["data"];
    assert_eq!(data["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(data["span_id"], "eee19b7ec3c1b174");
    assert_eq!(data["attempt"], 3);
    assert_eq!(data["cache.key"], "user:42");
    assert_eq!(data["scope_version"], "1.2.3");
    assert_eq!(data["resource"]["deployment.environment"], "staging");
    let second = by_level("CRITICAL");
    assert_eq!(second["data"]["body"], json!({"event": "crash", "code": 7}));
    server.stop().await;
}

async fn bad_exports_get_rpc_status_and_partial_success(backend: Backend) {
    let server = TestServer::start(backend).await;
    let url = server.url("/v1/logs");
    let post = |content_type: &str, body: Vec<u8>| {
        server
            .http
            .post(&url)
            .bearer_auth(&server.token)
            .header("content-type", content_type)
            .body(body)
    };
    // Not protobuf: 400 with a google.rpc.Status in protobuf.
    let response = post("application/x-protobuf", b"\xff\xff\xff".to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let status: RpcStatus =
        prost::Message::decode(&response.bytes().await.expect("body")[..]).expect("Status");
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(
        status.message.contains("ExportLogsServiceRequest"),
        "{status:?}"
    );
    // Not JSON: the same in JSON.
    let response = post("application/json", b"{\"resourceLogs\": 1}".to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], 3);
    // Neither: 415.
    let response = post("text/plain", b"hello".to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 415);
    // Anonymous: 401.
    let response = post_anonymous(&server, &url, "application/json", "{}").await;
    assert_eq!(response.status(), 401);
    assert_eq!(count(&server).await, 0);

    // One storable record and one that is not: the first is written, the second
    // counted in partial_success; gzip and ids as upper-case hex.
    let request = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": 1714560000000000000u64, "body": {"stringValue": "kept"},
         "traceId": "5B8EFFF798038103D269B633813FC60C"},
        {"body": {"stringValue": "nul \u{0} inside"}}
    ]}]}]});
    let response = post("application/json", gzip(request.to_string().as_bytes()))
        .header("content-encoding", "gzip")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let rejected = &body["partialSuccess"]["rejectedLogRecords"];
    assert!(rejected == 1 || rejected == "1", "{body}");
    assert!(body["partialSuccess"]["errorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("logRecords[1]")));
    let records = all_records(&server).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["message"], "kept");
    assert_eq!(records[0]["ts"], "2024-05-01T10:40:00.000000Z");
    assert_eq!(
        records[0]["data"]["trace_id"],
        "5b8efff798038103d269b633813fc60c"
    );
    server.stop().await;
}

/// `google.rpc.Status`, as OTLP/HTTP error bodies carry it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}
