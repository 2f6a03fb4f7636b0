//! Hostile input (issue 20, point 9): more than 500 malformed requests over every
//! endpoint of every API (bad and huge numbers, NULs, repeated and empty parameters,
//! invalid UTF-8, bad cursors, deep and broken JSON, wrong content types and
//! encodings, bad credentials, long headers): none answers 5xx, every error is
//! JSON (but where the protocol has its own error format: Loki's plain text, OTLP
//! protobuf), and the server stays healthy throughout.

use crate::support::{Backend, TestServer};
use reqwest::Method;

/// Endpoints that answer quickly (no stream, no wait), with a method each.
const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/logbook/v1/records"),
    ("POST", "/logbook/v1/records"),
    ("GET", "/logbook/v1/records/count"),
    ("GET", "/logbook/v1/records/1"),
    ("GET", "/logbook/v1/records/1/context"),
    ("GET", "/logbook/v1/export"),
    ("GET", "/logbook/v1/histogram"),
    ("GET", "/logbook/v1/objects"),
    ("PUT", "/logbook/v1/objects/lxc/c1"),
    ("GET", "/logbook/v1/actions"),
    ("POST", "/logbook/v1/actions"),
    ("PATCH", "/logbook/v1/actions/x"),
    ("POST", "/logbook/v1/actions/x/logs"),
    ("POST", "/logbook/v1/login"),
    ("GET", "/logbook/v1/users"),
    ("POST", "/logbook/v1/users"),
    ("POST", "/logbook/v1/tokens"),
    ("GET", "/api/v1/log"),
    ("GET", "/api/v1/event"),
    ("GET", "/api/v1/log/export"),
    ("POST", "/api/v1/login"),
    ("GET", "/api/system-logs/"),
    ("GET", "/api/system-logs/stats/"),
    ("GET", "/api/system-logs/instances/"),
    ("GET", "/v1/journal/"),
    ("POST", "/v1/journal/"),
    ("GET", "/v1/journal/count"),
    ("GET", "/api/audit/v1/action/"),
    ("GET", "/loki/api/v1/query_range"),
    ("GET", "/loki/api/v1/labels"),
    ("POST", "/loki/api/v1/push"),
    ("POST", "/v1/logs"),
    ("POST", "/es/_bulk"),
    ("POST", "/upload"),
    ("GET", "/nope/nothing"),
];

/// Query strings no endpoint can take.
const QUERIES: &[&str] = &[
    "limit=99999999999999999999999",
    "limit=-5",
    "offset=-1",
    "limit=1&limit=2",
    "limit=",
    "since=",
    "q=ab%00cd",
    "text=ab%00",
    "message=%00%00%00",
    "level=%FF%FE",
    "cursor=%%%%",
    "cursor=bm90IGEgY3Vyc29y",
    "since=99999999999999999999",
    "until=-99999999999999",
    "order=sideways",
    "start=1e400&end=-1e400",
    "query=%7B",
    "page=-1&page_size=0",
    "interval=0s",
    "%FF=1",
];

/// Bodies no endpoint can take, with a content type.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    vec![
        ("application/json", b"{\"kind\": \"log\"".to_vec()),
        ("application/json", deep.into_bytes()),
        ("application/json", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("application/json", b"{\"message\": \"a\\u0000b\"}".to_vec()),
        (
            "application/json",
            b"{\"ts\": 1e999, \"level\": [1]}".to_vec(),
        ),
        (
            "application/x-protobuf",
            b"\x0a\xff\xff\xff\xff\x0f".to_vec(),
        ),
        ("text/plain", b"hello".to_vec()),
        ("application/x-ndjson", b"{}\n{\n".to_vec()),
    ]
}

/// Credentials that are not.
const CREDENTIALS: &[(&str, &[u8])] = &[
    ("authorization", b"Basic %%%not-base64"),
    ("authorization", b"Basic w4jDqA=="),
    ("authorization", b"Basic /w=="),
    ("authorization", b"Bearer "),
    ("authorization", b"Token \xff\xfe"),
    ("authorization", b"ApiKey !!!"),
    ("x-auth-token", b"lbk_nope"),
    ("cookie", b"logbook_session=\xff\xff; x"),
];

fn is_own_format(path: &str) -> bool {
    path.starts_with("/loki/") || path.starts_with("/v1/logs")
}

async fn check(
    server: &TestServer,
    sent: &mut usize,
    request: reqwest::RequestBuilder,
    what: &str,
    path: &str,
) {
    *sent += 1;
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.bytes().await.unwrap_or_default();
    assert!(
        status < 500,
        "{what}: {status} {:?}",
        String::from_utf8_lossy(&body)
    );
    if status >= 400 && !is_own_format(path) {
        assert!(
            content_type.starts_with("application/json")
                && serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "{what}: {status} {content_type:?} {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    if (*sent).is_multiple_of(50) {
        let health = server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status(), 200, "healthy after {sent} requests");
    }
}

async fn malformed_requests_never_get_5xx_and_errors_are_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut sent = 0usize;
    for (method, path) in ENDPOINTS {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        for query in QUERIES {
            let url = format!("{path}?{query}");
            let request = server.request(method.clone(), &url);
            check(
                &server,
                &mut sent,
                request,
                &format!("{method} {url}"),
                path,
            )
            .await;
        }
        if method != Method::GET {
            for (content_type, body) in bodies() {
                let request = server
                    .request(method.clone(), path)
                    .header("content-type", content_type)
                    .body(body.clone());
                let what = format!(
                    "{method} {path} with {content_type} {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(40)])
                );
                check(&server, &mut sent, request, &what, path).await;
            }
            let request = server
                .request(method.clone(), path)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body("not gzip");
            check(
                &server,
                &mut sent,
                request,
                &format!("{method} {path} bad gzip"),
                path,
            )
            .await;
        }
        for (name, value) in CREDENTIALS {
            let request = server
                .http
                .request(method.clone(), server.url(path))
                .header(
                    *name,
                    reqwest::header::HeaderValue::from_bytes(value).expect("header"),
                );
            let what = format!(
                "{method} {path} {name}: {:?}",
                String::from_utf8_lossy(value)
            );
            check(&server, &mut sent, request, &what, path).await;
        }
        let request = server
            .request(method.clone(), path)
            .header("x-long", "a".repeat(16 * 1024));
        check(
            &server,
            &mut sent,
            request,
            &format!("{method} {path} long header"),
            path,
        )
        .await;
        let bad_path = format!("{path}/%FF%00");
        let request = server.request(method.clone(), &bad_path);
        check(
            &server,
            &mut sent,
            request,
            &format!("{method} {bad_path}"),
            path,
        )
        .await;
    }
    assert!(sent >= 500, "{sent} requests");
    eprintln!("{sent} malformed requests, no 5xx");
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    server.stop().await;
}

store_tests!(malformed_requests_never_get_5xx_and_errors_are_json);
