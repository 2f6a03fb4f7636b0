//! The body limit applies to what a compressed body expands to, on every protocol.

use super::clients::{count, gzip, with_body_limit};
use crate::support::Backend;

store_tests!(compressed_bodies_are_limited_by_their_decompressed_size);

async fn compressed_bodies_are_limited_by_their_decompressed_size(backend: Backend) {
    let limit = 64 * 1024;
    let server = with_body_limit(backend, limit).await;
    // About a megabyte of valid input for each protocol, compressed far below the limit.
    let line = "x".repeat(1000);
    let many = |one: &str| vec![one; 1000].join("\n");
    let bulk = many(&format!("{{\"index\":{{}}}}\n{{\"message\":\"{line}\"}}"));
    let values = vec![format!("[\"1714560000000000000\",\"{line}\"]"); 1000].join(",");
    let loki = format!("{{\"streams\":[{{\"stream\":{{\"job\":\"a\"}},\"values\":[{values}]}}]}}");
    let records = vec![format!("{{\"body\":{{\"stringValue\":\"{line}\"}}}}"); 1000].join(",");
    let otlp = format!("{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{records}]}}]}}]}}");
    let journal = many(&format!("MESSAGE={line}\n"));
    let cases = [
        ("/es/_bulk", "application/x-ndjson", bulk),
        ("/loki/api/v1/push", "application/json", loki),
        ("/v1/logs", "application/json", otlp),
        ("/upload", "application/vnd.fdo.journal", journal),
    ];
    for (path, content_type, body) in cases {
        assert!(body.len() > 10 * limit);
        let compressed = gzip(body.as_bytes());
        assert!(compressed.len() < limit / 4, "{path}: {}", compressed.len());
        let response = server
            .http
            .post(server.url(path))
            .bearer_auth(&server.token)
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(compressed)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 413, "{path}");
        let text = response.text().await.expect("body");
        assert!(
            text.contains("decompresses to more than the limit"),
            "{path}: {text}"
        );
    }
    // Loki's own snappy framing is limited the same way.
    let snappy = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 1 << 20])
        .expect("compress");
    let response = server
        .http
        .post(server.url("/loki/api/v1/push"))
        .bearer_auth(&server.token)
        .header("content-type", "application/x-protobuf")
        .body(snappy)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413);
    assert_eq!(count(&server).await, 0);
    server.stop().await;
}
