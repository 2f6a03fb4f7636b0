//! Bad requests get 400 with Loki's plain-text error naming the position or the
//! parameter; what the subset leaves out is refused by name; nothing is a 500.

use super::client::LokiClient;
use super::data::{at, span_seconds};
use crate::support::{Backend, TestServer};

fn s(text: &str) -> String {
    text.to_string()
}

pub async fn bad_queries_and_parameters_get_lokis_400(backend: Backend) {
    let server = TestServer::start(backend).await;
    let loki = LokiClient::new(&server.base, &server.token);
    let refused = |path: &'static str, params: Vec<(&'static str, String)>| {
        let loki = loki.clone();
        async move { loki.raw(path, &params).await.expect_err("refused") }
    };
    let range = "/loki/api/v1/query_range";
    for (query, wanted) in [
        (
            r#"{source="api" |= "x""#,
            "parse error at line 1, col 15: syntax error: unexpected |=, expecting , or }",
        ),
        (
            "{source=\"api\"}\n| json\n| status >=",
            "parse error at line 3, col 12",
        ),
        (
            r#"{source=~"(open"}"#,
            "parse error at line 1, col 10: error parsing regexp",
        ),
        (
            r#"quantile_over_time(0.9, {a="b"} | unwrap x [1m])"#,
            "quantile_over_time is not supported",
        ),
        (
            r#"{a="b"} | pattern "<_> <x>""#,
            "the pattern stage is not supported",
        ),
        (
            r#"sum(rate({a="b"}[1m])) and vector(1)"#,
            "the set operator and is not supported",
        ),
        (r#"{a="b"}[5m]"#, "range aggregation"),
        ("", "query parameter is required"),
    ] {
        let error = refused(range, vec![("query", s(query))]).await;
        assert_eq!(error.status, 400, "{query}");
        assert!(error.content_type.starts_with("text/plain"), "{query}");
        assert!(error.text.contains(wanted), "{query}: {}", error.text);
    }
    for (name, value, wanted) in [
        ("start", "yesterday", "start: cannot parse"),
        ("end", "1", "end timestamp must not be before start time"),
        ("limit", "0", "limit must be a positive value"),
        ("limit", "100001", "max entries limit"),
        ("direction", "sideways", "invalid direction 'sideways'"),
        ("step", "-5s", "step: cannot parse"),
        ("step", "0", "zero or negative query resolution step"),
        ("step", "1ms", "exceeded maximum resolution of 11000 points"),
    ] {
        let query = if name == "step" {
            r#"count_over_time({kind="log"}[1m])"#
        } else {
            r#"{kind="log"}"#
        };
        let error = refused(
            range,
            vec![
                ("query", s(query)),
                ("start", at(-60)),
                ("end", at(span_seconds())),
                (name, s(value)),
            ],
        )
        .await;
        assert_eq!(error.status, 400, "{name}={value}");
        assert!(
            error.text.contains(wanted),
            "{name}={value}: {}",
            error.text
        );
    }
    // A log query is not an instant query (as in Loki).
    let error = refused("/loki/api/v1/query", vec![("query", s(r#"{kind="log"}"#))]).await;
    assert_eq!(error.status, 400);
    assert!(error
        .text
        .contains("log queries are not supported as an instant query"));
    // Series needs a selector; the tail needs a WebSocket and a log query.
    let error = refused("/loki/api/v1/series", vec![]).await;
    assert!(error.status == 400 && error.text.contains("match[]"));
    let error = refused("/loki/api/v1/tail", vec![("query", s(r#"{kind="log"}"#))]).await;
    assert!(
        error.status == 400 && error.text.contains("WebSocket"),
        "{}",
        error.text
    );
    let error = refused(
        "/loki/api/v1/tail",
        vec![("query", s(r#"{kind="log"}"#)), ("delay_for", s("6"))],
    )
    .await;
    assert!(error.text.contains("delay_for can't be greater than 5"));
    let error = refused(
        "/loki/api/v1/tail",
        vec![("query", s(r#"{kind="log"}"#)), ("cursor", s("forged"))],
    )
    .await;
    assert!(error.status == 400 && error.text.contains("cursor"));
    // Too many series is the client's to narrow, not a failure of the server.
    let records: Vec<_> = (0..600)
        .map(|i| serde_json::json!({"kind": "log", "source": format!("s{i}"), "message": "x"}))
        .collect();
    server.ingest(serde_json::json!(records)).await;
    let error = refused(
        "/loki/api/v1/query",
        vec![("query", s(r#"count_over_time({kind="log"}[1h])"#))],
    )
    .await;
    assert!(
        error.status == 400 && error.text.contains("maximum number of series (500)"),
        "{}",
        error.text
    );
    server.stop().await;
}
