//! `GET /metrics` (issue 20, point 1): Prometheus text with the listed series,
//! for administrators and auditors on the API's port, and without credentials on
//! `--metrics-listen`.

use crate::support::process::Node;
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use serde_json::json;

/// The value of the first sample of `series` whose labels contain every `labels`.
fn sample(text: &str, series: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(series)
                && l[series.len()..].starts_with(['{', ' '])
                && labels.iter().all(|label| l.contains(label))
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn metrics_count_requests_records_and_the_store(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(json!([{"message": "a"}, {"kind": "event", "message": "b"}]))
        .await;
    let _ = server.get("/logbook/v1/records?level=LOUD").await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    let route = "route=\"/logbook/v1/records\"";
    assert_eq!(
        sample(
            &text,
            "logbook_http_requests_total",
            &[route, "method=\"POST\"", "status=\"201\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "logbook_http_rejected_requests_total",
            &[route, "status=\"400\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "logbook_http_request_duration_seconds_count",
            &[route]
        )
        .is_some(),
        "{text}"
    );
    for (kind, n) in [("log", 1.0), ("event", 1.0)] {
        assert_eq!(
            sample(
                &text,
                "logbook_records_ingested_total",
                &[&format!("kind=\"{kind}\""), "protocol=\"native\""]
            ),
            Some(n),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "logbook_store_records",
                &[&format!("kind=\"{kind}\"")]
            ),
            Some(n),
            "{text}"
        );
    }
    for series in [
        "logbook_store_size_bytes",
        "logbook_stream_subscribers",
        "logbook_disk_free_bytes",
        "logbook_store_high_water_id",
        "logbook_http_requests_in_flight",
        "logbook_ingest_batch_records_count",
        "logbook_store_writes_failing_disk_full",
    ] {
        assert!(sample(&text, series, &[]).is_some(), "{series} in {text}");
    }
    // Both stores have tiers: the two records are hot or sealed, and with the
    // default bound nothing waits for the sealer.
    let hot = sample(&text, "logbook_store_tier_records", &["tier=\"hot\""]).expect("hot");
    let sealed = sample(&text, "logbook_store_tier_records", &["tier=\"sealed\""]).expect("sealed");
    assert_eq!(hot + sealed, 2.0, "{text}");
    assert!(
        sample(&text, "logbook_store_sealed_blocks", &[]).is_some(),
        "{text}"
    );
    assert_eq!(
        sample(&text, "logbook_sealer_backlog_records", &[]),
        Some(0.0),
        "{text}"
    );
    if backend == Backend::Sqlite {
        // The embedded store's writer: queue depth and group commits.
        assert!(
            sample(&text, "logbook_store_write_queue_depth", &[]).is_some(),
            "{text}"
        );
        let commits = sample(&text, "logbook_store_group_commits_total", &[]).expect("commits");
        let jobs = sample(&text, "logbook_store_group_commit_jobs_total", &[]).expect("jobs");
        assert!(
            commits >= 1.0 && jobs >= commits,
            "{commits} commits, {jobs} jobs"
        );
    }
    // Not for a plain user (the figures sum every tenant), nor without credentials.
    let user = server.user_with_token("u1", Role::User, "default").await;
    let response = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    server.stop().await;
}

store_tests!(metrics_count_requests_records_and_the_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_them_without_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let token = "lbk_metrics_test_token_0123456789abcdef";
    let (node, before) = Node::spawn_announcing(
        &[
            "--data",
            dir.path().to_str().expect("utf-8"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--header-read-timeout",
            "1s",
        ],
        token,
    );
    let url = before
        .iter()
        .find_map(|l| l.strip_prefix("metrics on "))
        .expect("the metrics address is announced")
        .to_string();
    let text = reqwest::get(&url)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        sample(&text, "logbook_store_high_water_id", &[]).is_some(),
        "{text}"
    );
    // The binary's allocator reports what it holds (its statistics are compiled in).
    let allocated = sample(&text, "logbook_allocator_bytes", &["stat=\"allocated\""]);
    let resident = sample(&text, "logbook_allocator_bytes", &["stat=\"resident\""]);
    assert!(allocated.is_some_and(|a| a > 0.0), "{text}");
    assert!(resident >= allocated, "{text}");
    // The metrics listener cuts off a connection that sends no request head, as
    // the API's does.
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    let mut silent = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    assert!(crate::limits::read_to_eof(&mut silent).await.is_empty());
    assert!(node.terminate());
}
