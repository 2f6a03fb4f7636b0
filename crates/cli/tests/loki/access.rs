//! Tenancy through every Loki endpoint: a user of one domain sees only its
//! domain's lines, counts, label names, label values, streams, sizes and live
//! lines; an administrator sees both; nobody without credentials sees anything.

use super::client::{Entry, LokiClient};
use super::data::{at, span_seconds};
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use serde_json::json;

fn s(text: &str) -> String {
    text.to_string()
}

pub async fn a_domain_user_sees_only_its_domain_through_every_loki_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let record = |i: i64, domain: &str, source: &str, category: &str| {
        json!({
            "kind": "log", "level": "ERROR", "ts": super::data::BASE + i,
            "source": source, "category": category, "domain_id": domain,
            "message": format!("{domain} timeout {i}"),
        })
    };
    let mut records = Vec::new();
    for i in 0..20 {
        records.push(record(i, "acme", "api", "billing"));
        records.push(record(i, "globex", "secret-svc", "payroll"));
    }
    server.ingest(json!(records)).await;
    let acme = LokiClient::new(
        &server.base,
        &server.user_with_token("ann", Role::User, "acme").await,
    );
    let admin = LokiClient::new(&server.base, &server.token);
    let range = || vec![("start", at(-60)), ("end", at(span_seconds()))];
    let with = |extra: &[(&'static str, String)]| {
        let mut params = range();
        params.extend_from_slice(extra);
        params
    };

    // Lines: every selector, even one naming the other domain's values.
    for query in [
        r#"{kind="log"}"#,
        r#"{source="secret-svc"}"#,
        r#"{domain_id="globex"}"#,
    ] {
        let answer = acme
            .query_range(&with(&[("query", s(query)), ("limit", s("1000"))]))
            .await
            .expect("query_range");
        for (labels, entry) in answer.entries() {
            assert_eq!(labels["domain_id"], "acme", "{query}");
            assert!(entry.line().starts_with("acme"), "{query}");
        }
    }
    let all = admin
        .query_range(&with(&[
            ("query", s(r#"{kind="log"}"#)),
            ("limit", s("1000")),
        ]))
        .await
        .expect("admin");
    assert_eq!(
        all.entries().len(),
        40,
        "the administrator sees both domains"
    );

    // Counts: the histogram path, the in-memory path and the instant path.
    for query in [
        r#"sum(count_over_time({kind="log"}[1h]))"#,
        r#"sum(count_over_time({kind="log"} |~ "time?out" [1h]))"#,
        r#"sum by (source) (count_over_time({level="error"} | logfmt [1h]))"#,
    ] {
        let answer = acme
            .query(&[("query", s(query)), ("time", at(3600))])
            .await
            .expect("instant");
        let samples = answer.vector();
        assert_eq!(samples.len(), 1, "{query}");
        assert_eq!(samples[0].value.1, "20", "{query}");
        assert!(samples[0].metric.values().all(|v| v != "secret-svc"));
        let matrix = acme
            .query_range(&[
                ("query", s(query)),
                ("step", s("1h")),
                ("start", at(-60)),
                ("end", at(3600)),
            ])
            .await
            .expect("range");
        let total: f64 = matrix
            .matrix()
            .iter()
            .flat_map(|s| &s.values)
            .map(|(_, v)| v.parse::<f64>().expect("number"))
            .sum();
        assert_eq!(total, 20.0, "{query}");
    }

    // Label names and values, streams and sizes.
    let names = acme.labels(&range()).await;
    assert!(names.contains(&s("source")));
    assert_eq!(acme.label_values("source", &range()).await, ["api"]);
    assert_eq!(acme.label_values("category", &range()).await, ["billing"]);
    assert_eq!(acme.label_values("domain_id", &range()).await, ["acme"]);
    assert_eq!(
        admin.label_values("source", &range()).await,
        ["api", "secret-svc"]
    );
    let series = acme
        .series(&with(&[("match[]", s(r#"{level=~".+"}"#))]))
        .await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["source"], "api");
    let stats = acme
        .index_stats(&with(&[("query", s(r#"{kind="log"}"#))]))
        .await;
    assert_eq!((stats.entries, stats.streams), (20, 1));

    // Live lines.
    let mut tail = acme
        .tail(&[("query", s(r#"{level="error"}"#)), ("start", at(-60))])
        .await;
    let history = tail.next().await.expect("history");
    assert!(history
        .streams
        .iter()
        .all(|stream| stream.stream["domain_id"] == "acme"));
    server
        .ingest(json!([
            record(100, "globex", "secret-svc", "payroll"),
            record(101, "acme", "api", "billing"),
        ]))
        .await;
    let live = tail.next().await.expect("live");
    let lines: Vec<&str> = live
        .streams
        .iter()
        .flat_map(|s| &s.values)
        .map(Entry::line)
        .collect();
    assert_eq!(lines, ["acme timeout 101"]);
    tail.close().await;

    // Without credentials: refused, on every endpoint but the readiness probe.
    for path in [
        "/loki/api/v1/query_range?query=%7Bkind%3D%22log%22%7D",
        "/loki/api/v1/query?query=vector(1)",
        "/loki/api/v1/labels",
        "/loki/api/v1/label/source/values",
        "/loki/api/v1/series?match[]=%7Bkind%3D%22log%22%7D",
        "/loki/api/v1/index/stats?query=%7Bkind%3D%22log%22%7D",
        "/loki/api/v1/status/buildinfo",
        "/loki/api/v1/tail?query=%7Bkind%3D%22log%22%7D",
    ] {
        let response = server
            .http
            .get(server.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{path}");
    }
    server.stop().await;
}
