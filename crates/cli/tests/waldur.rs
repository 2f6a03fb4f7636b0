//! The Waldur System Logs dialect (`/api/system-logs/`), judged by the real
//! `waldur-api-client` 8.1.3 (Python scripts under `tests/python/`) and by plain HTTP
//! for the exact error bodies and paging headers.

use crate::support::python::run_script;
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

store_tests!(
    client_filters_orders_counts_and_retrieves,
    client_pages_through_everything_and_reads_instances_and_stats,
    errors_have_the_drf_shapes,
    paging_headers_are_exact,
    each_caller_sees_only_its_domains,
    stats_size_is_measured_on_disk,
);

/// 2024-05-01T10:40:00Z
const T: f64 = 1_714_560_000.0;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn client_env(server: &TestServer) -> Vec<(&'static str, String)> {
    vec![
        ("BASE", server.base.clone()),
        ("TOKEN", server.token.clone()),
    ]
}

fn log(source: &str, instance: &str, level: &str, logger: &str, message: &str, at: f64) -> Value {
    json!({"kind": "log", "source": source, "instance": instance, "level": level,
        "logger": logger, "message": message, "ts": T + at})
}

/// Ids 1..8 are in the view; 9..13 are not (see `waldur_list.py`).
fn dataset() -> Value {
    let mut first = log(
        "api",
        "pod-a",
        "INFO",
        "waldur.core",
        "user alice logged in",
        0.0,
    );
    first["data"] = json!({"user": "alice"});
    let mut third = log(
        "beat",
        "pod-c",
        "ERROR",
        "celery.beat",
        "schedule failed",
        20.0,
    );
    third["data"] = json!({"task": "cleanup", "attempt": 2});
    json!([
        first,
        log("worker", "pod-b", "WARN", "celery.worker", "task slow: Export", 10.0),
        third,
        log("api", "pod-a", "CRITICAL", "waldur.core", "DB Connection lost", 30.0),
        log("api", "pod-b", "DEBUG", "waldur.debug", "dbstat debug details", 40.0),
        log("worker", "pod-a", "INFO", "celery.worker", "task done: export", 50.0),
        log("api", "pod-a", "ERROR", "waldur.core", "request failed, a&b/ü", 5.0),
        log("beat", "pod-c", "INFO", "celery.beat", "heartbeat", 60.5),
        {"kind": "event", "source": "api", "level": "INFO", "message": "an event"},
        log("system", "pod-a", "INFO", "waldur.core", "other source", 1.0),
        {"kind": "log", "source": "api", "instance": "pod-a", "message": "no level"},
        log("API", "pod-a", "INFO", "waldur.core", "upper-case source", 2.0),
        {"kind": "journal", "action": "login", "message": "a journal entry"},
    ])
}

/// 230 log records (ids 1..230; see `waldur_pages.py`) and three outside the view.
fn bulk() -> Value {
    let sources = ["api", "worker", "beat"];
    let levels = ["INFO", "WARNING", "ERROR", "CRITICAL"];
    let mut records: Vec<Value> = (0..230)
        .map(|i| {
            log(
                sources[i % 3],
                &format!("pod-{}", i % 4),
                levels[(i / 2) % 4],
                "bulk",
                &format!("bulk {i}"),
                i as f64,
            )
        })
        .collect();
    records.push(json!({"kind": "event", "source": "api", "level": "ERROR"}));
    records.push(log("cron", "pod-9", "ERROR", "bulk", "elsewhere", 1.0));
    records.push(json!({"kind": "journal", "message": "journal"}));
    Value::Array(records)
}

async fn client_filters_orders_counts_and_retrieves(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert_eq!(server.ingest(dataset()).await, (1..=13).collect::<Vec<_>>());
    let out = run_script(&script("waldur_list.py"), &client_env(&server)).await;
    assert_eq!(out.trim(), "ok");
    server.stop().await;
}

async fn client_pages_through_everything_and_reads_instances_and_stats(backend: Backend) {
    let server = TestServer::start(backend).await;
    assert_eq!(server.ingest(bulk()).await.len(), 233);
    let out = run_script(&script("waldur_pages.py"), &client_env(&server)).await;
    assert!(out.starts_with("ok "), "{out}");
    server.stop().await;
}

/// Sends a request and returns its status, headers and JSON body (`Null` if empty).
async fn call(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, headers, body)
}

async fn waldur_get(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    call(
        server
            .http
            .get(server.url(path))
            .header("authorization", format!("Token {}", server.token)),
    )
    .await
}

async fn errors_have_the_drf_shapes(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.ingest(dataset()).await;
    let bad = [
        (
            "level_gte=high",
            json!({"level_gte": ["A valid integer is required."]}),
        ),
        (
            "created_from=soon",
            json!({"created_from": ["A valid number is required."]}),
        ),
        (
            "created_to=nan",
            json!({"created_to": ["A valid number is required."]}),
        ),
        (
            "source=system",
            json!({"source": ["Select a valid choice. system is not one of the available choices."]}),
        ),
        (
            "level=LOUD",
            json!({"level": ["Select a valid choice. LOUD is not one of the available choices."]}),
        ),
        (
            "o=-message",
            json!({"o": ["Select a valid choice. -message is not one of the available choices."]}),
        ),
        (
            "page=0",
            json!({"page": ["A valid positive integer is required."]}),
        ),
        (
            "page_size=x",
            json!({"page_size": ["A valid positive integer is required."]}),
        ),
        (
            "colour=red",
            json!({"colour": ["Unknown query parameter."]}),
        ),
    ];
    for (query, expected) in bad {
        for path in ["/api/system-logs/", "/api/system-logs/instances/"] {
            let (status, _, body) = waldur_get(&server, &format!("{path}?{query}")).await;
            assert_eq!((status, &body), (400, &expected), "{path}?{query}");
        }
    }
    let (status, _, body) = waldur_get(&server, "/api/system-logs/instances/?o=level_number").await;
    assert_eq!(status, 400);
    assert!(
        body["o"][0].as_str().expect("o").contains("level_number"),
        "{body}"
    );

    let (status, headers, body) = call(server.http.get(server.url("/api/system-logs/"))).await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );
    assert_eq!(headers["www-authenticate"], "Token");
    for path in [
        "/api/system-logs/",
        "/api/system-logs/1/",
        "/api/system-logs/stats/",
    ] {
        let wrong = server
            .http
            .get(server.url(path))
            .header("authorization", "Token not-a-token");
        let (status, _, body) = call(wrong).await;
        assert_eq!(
            (status, body),
            (401, json!({"detail": "Invalid token."})),
            "{path}"
        );
    }

    let post = server
        .http
        .post(server.url("/api/system-logs/"))
        .header("authorization", format!("Token {}", server.token));
    let (status, headers, body) = call(post).await;
    assert_eq!(
        (status, body),
        (405, json!({"detail": "Method \"POST\" not allowed."}))
    );
    assert_eq!(headers["allow"], "GET, HEAD");
    let (status, _, _) = call(server.http.delete(server.url("/api/system-logs/1/"))).await;
    assert_eq!(status, 401, "authentication comes before the method check");

    for path in ["999", "abc", "9", "11", "13"] {
        let (status, _, body) = waldur_get(&server, &format!("/api/system-logs/{path}/")).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Not found."})),
            "{path}"
        );
    }
    let (status, _, body) = waldur_get(&server, "/api/system-logs/?page=3&page_size=4").await;
    assert_eq!((status, body), (404, json!({"detail": "Invalid page."})));
    let (status, _, body) = waldur_get(&server, "/api/system-logs/?page=2&page_size=4").await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().expect("array").len(), 4);
    server.stop().await;
}

async fn paging_headers_are_exact(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.ingest(dataset()).await;
    let host = server.addr.to_string();
    // Commas and semicolons inside link URLs are encoded: the client splits on them.
    let (status, headers, body) = waldur_get(
        &server,
        "/api/system-logs/?o=instance,-created&message=d%2C+a%3Bb",
    )
    .await;
    assert_eq!((status, body), (200, json!([])));
    assert_eq!(headers["x-result-count"], "0");
    let only =
        format!("http://{host}/api/system-logs/?o=instance%2C-created&message=d%2C+a%3Bb&page=1");
    assert_eq!(
        headers["link"].to_str().expect("ascii"),
        format!("<{only}>; rel=\"first\", <{only}>; rel=\"last\"")
    );
    let (status, headers, body) = waldur_get(
        &server,
        "/api/system-logs/?o=instance,-created&level_gte=20&page=2&page_size=3",
    )
    .await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = body
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [1, 2, 8]);
    assert_eq!(headers["x-result-count"], "7");
    let url = |page: u64| {
        format!("http://{host}/api/system-logs/?o=instance%2C-created&level_gte=20&page_size=3&page={page}")
    };
    assert_eq!(
        headers["link"].to_str().expect("ascii"),
        format!(
            "<{}>; rel=\"first\", <{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"last\"",
            url(1),
            url(1),
            url(3),
            url(3)
        )
    );

    let head = server
        .http
        .head(server.url("/api/system-logs/?level_gte=40&page=50"))
        .header("authorization", format!("Token {}", server.token));
    let (status, headers, body) = call(head).await;
    assert_eq!((status, body), (200, Value::Null));
    assert_eq!(headers["x-result-count"], "3");
    let head = server
        .http
        .head(server.url("/api/system-logs/instances/"))
        .header("authorization", format!("Token {}", server.token));
    let (status, headers, _) = call(head).await;
    assert_eq!(
        (status, &headers["x-result-count"]),
        (200, &"5".parse().expect("hv"))
    );

    // One record, rendered in full, exactly as the client expects it.
    let (status, _, body) = waldur_get(&server, "/api/system-logs/1/").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": 1, "created": "2024-05-01T10:40:00.000000Z", "source": "api",
            "instance": "pod-a", "level": "INFO", "level_number": 20,
            "logger_name": "waldur.core", "message": "user alice logged in",
            "context": {"user": "alice"}})
    );
    server.stop().await;
}

async fn each_caller_sees_only_its_domains(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.ingest(dataset()).await;
    let mut theirs = log("worker", "pod-z", "ERROR", "team.b", "team b only", 70.0);
    theirs["domain_id"] = json!("team-b");
    let ids = server.ingest(json!([theirs])).await;
    let token = server.user_with_token("bob", Role::User, "team-b").await;
    let as_bob = |method: Method, path: &str| {
        server
            .http
            .request(method, server.url(path))
            .header("authorization", format!("Token {token}"))
    };
    let (status, headers, body) = call(as_bob(Method::GET, "/api/system-logs/")).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().expect("array").len(), 1);
    assert_eq!(body[0]["id"], ids[0]);
    assert_eq!(headers["x-result-count"], "1");
    let (status, _, body) = call(as_bob(Method::GET, "/api/system-logs/1/")).await;
    assert_eq!((status, body), (404, json!({"detail": "Not found."})));
    let (status, _, body) = call(as_bob(Method::GET, "/api/system-logs/instances/")).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().expect("array").len(), 1);
    assert_eq!(body[0]["instance"], "pod-z");
    assert_eq!(body[0]["count"], 1);
    let (_, _, bob_stats) = call(as_bob(Method::GET, "/api/system-logs/stats/")).await;
    let (_, _, admin_stats) = waldur_get(&server, "/api/system-logs/stats/").await;
    assert_eq!(
        bob_stats["instances"],
        json!([{"source": "worker", "instance": "pod-z", "count": 1}])
    );
    let (bob_bytes, all_bytes) = (
        bob_stats["total_size_bytes"].as_u64().expect("bytes"),
        admin_stats["total_size_bytes"].as_u64().expect("bytes"),
    );
    assert!(
        bob_bytes > 0 && bob_bytes < all_bytes,
        "{bob_bytes} of {all_bytes}"
    );
    server.stop().await;
}

async fn stats_size_is_measured_on_disk(backend: Backend) {
    let server = TestServer::start(backend).await;
    let size = |stats: &Value| stats["total_size_bytes"].as_u64().expect("bytes");
    let (status, _, empty) = waldur_get(&server, "/api/system-logs/stats/").await;
    assert_eq!(status, 200);
    assert_eq!(empty["instances"], json!([]));
    assert!(empty["total_size_bytes"].is_u64(), "{empty}");
    server.ingest(bulk()).await;
    let (_, _, before) = waldur_get(&server, "/api/system-logs/stats/").await;
    assert!(size(&before) > 0, "{before}");
    // Messages that no store can compress away (PostgreSQL's TOAST would shrink "xxx...").
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut noise = || {
        (0..2000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect::<String>()
    };
    let more: Vec<Value> = (0..1000)
        .map(|_| log("api", "pod-0", "INFO", "bulk", &noise(), 0.0))
        .collect();
    server.ingest(Value::Array(more)).await;
    let (_, _, after) = waldur_get(&server, "/api/system-logs/stats/").await;
    // 1000 messages of 2 kB of noise: at least 1 MB more on disk even if a store compresses.
    assert!(
        size(&after) >= size(&before) + 1_000_000,
        "{} -> {}",
        size(&before),
        size(&after)
    );
    let mb = after["total_size_mb"].as_f64().expect("mb");
    assert!(
        (mb - size(&after) as f64 / 1_048_576.0).abs() <= 0.005,
        "{after}"
    );
    server.stop().await;
}
