//! Every error answer is JSON (issue 20, point 7): what axum answers on its own
//! (unknown paths, wrong methods, extractor rejections, WebSocket handshakes) and
//! the query-string rules every API shares (NUL characters, repeated single-valued
//! parameters, empty values), against every store.

use crate::support::{Backend, TestServer};
use reqwest::{Method, Response};
use serde_json::Value;

/// The status and JSON body of an error answer; fails unless it is JSON.
async fn json_error(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    assert!(
        content_type.starts_with("application/json"),
        "{status} answered {content_type:?}: {text:?}"
    );
    let body: Value = serde_json::from_str(&text).expect("a JSON body");
    (status, body)
}

async fn unknown_paths_and_wrong_methods_answer_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in [
        "/nope",
        "/logbook/v1/nope",
        "/logbook/v2/records",
        "/api/v1/nope",
    ] {
        let (status, body) = json_error(server.get(path).await).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["status"], 404, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    for (method, path, allowed) in [
        (Method::DELETE, "/logbook/v1/records", "GET"),
        (Method::PUT, "/logbook/v1/records/count", "GET"),
        (Method::POST, "/healthz", "GET"),
        (Method::PATCH, "/logbook/v1/actions", "POST"),
        (Method::DELETE, "/v1/journal/count", "GET"),
        (Method::POST, "/api/v1/event", "GET"),
    ] {
        let response = server
            .request(method.clone(), path)
            .send()
            .await
            .expect("send");
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (status, body) = json_error(response).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(body["status"], 405, "{method} {path}: {body}");
        assert!(allow.contains(allowed), "{method} {path}: Allow {allow:?}");
    }
    server.stop().await;
}

async fn extractor_and_handshake_rejections_answer_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Invalid UTF-8 in a path segment: the path extractor refuses it.
    for (method, path) in [
        (Method::GET, "/logbook/v1/actions/%FF"),
        (Method::PATCH, "/logbook/v1/users/%C3%28"),
        (Method::GET, "/logbook/v1/objects/lxc/%FF%FE"),
        (Method::GET, "/api/audit/v1/action/%FF/"),
        (Method::GET, "/loki/api/v1/label/%FF/values"),
    ] {
        let response = server.request(method, path).send().await.expect("send");
        let (status, body) = json_error(response).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["field"], "path", "{path}: {body}");
    }
    // A WebSocket handshake that is not one.
    for path in [
        "/logbook/v1/stream",
        "/api/audit/v1/events",
        "/loki/api/v1/tail?query=%7Bkind%3D%22log%22%7D",
    ] {
        let response = server
            .request(Method::GET, path)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
        if !path.starts_with("/loki/") {
            // Loki's own errors are plain text, as Loki's are.
            let (_, body) = json_error(response).await;
            assert!(body["error"].is_string(), "{path}: {body}");
        }
    }
    server.stop().await;
}

async fn nul_in_substring_filters_gets_400_naming_the_parameter(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(serde_json::json!({"kind": "journal", "action": "login", "message": "abc"}))
        .await;
    for (path, field) in [
        ("/logbook/v1/records?q=ab%00", "q"),
        ("/logbook/v1/records?q=%00", "q"),
        ("/logbook/v1/records/count?q=abc%00def", "q"),
        ("/logbook/v1/export?q=ab%00", "q"),
        ("/api/v1/log?text=ab%00", "text"),
        ("/api/system-logs/?message=ab%00", "message"),
        ("/v1/journal?message=ab%00", "message"),
        ("/logbook/v1/records?source=a%00b", "source"),
    ] {
        let (status, body) = json_error(server.get(path).await).await;
        assert_eq!(status, 400, "{path}: {body}");
        let named = body.to_string();
        assert!(named.contains(field), "{path} names {field}: {body}");
    }
    server.stop().await;
}

async fn repeated_and_empty_parameters_get_400_naming_the_parameter(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (query, field) in [
        ("limit=1&limit=2", "limit"),
        ("order=asc&order=desc", "order"),
        ("q=abc&q=def", "q"),
        (
            "since=2024-01-01T00:00:00Z&since=2025-01-01T00:00:00Z",
            "since",
        ),
        ("cursor=x&cursor=y", "cursor"),
        ("limit=", "limit"),
        ("since=", "since"),
        ("until=%20", "until"),
        ("q=", "q"),
        ("level=", "level"),
    ] {
        for path in ["/logbook/v1/records", "/logbook/v1/records/count"] {
            if path.ends_with("count")
                && (query.starts_with("limit")
                    || query.starts_with("cursor")
                    || query.starts_with("order"))
            {
                continue;
            }
            let (status, body) = json_error(server.get(&format!("{path}?{query}")).await).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert_eq!(body["field"], field, "{path}?{query}: {body}");
        }
    }
    // Repeating a multi-valued filter stays a list.
    let answer = server
        .get_json("/logbook/v1/records?level=INFO&level=ERROR&limit=5")
        .await;
    assert!(answer["records"].is_array(), "{answer}");
    // A dialect refuses a repeated single-valued parameter too, in its own shape.
    let (status, body) = json_error(server.get("/api/v1/log?text=a&text=b").await).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("text"), "{body}");
    server.stop().await;
}

store_tests!(
    unknown_paths_and_wrong_methods_answer_json,
    extractor_and_handshake_rejections_answer_json,
    nul_in_substring_filters_gets_400_naming_the_parameter,
    repeated_and_empty_parameters_get_400_naming_the_parameter,
);
