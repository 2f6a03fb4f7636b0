//! The requests Grafana's Loki data source sends, replayed as its backend sends
//! them (grafana/grafana pkg/tsdb/loki: api.go, healthcheck.go; the frontend's
//! supplementary logs-volume query in datasource.ts), checked field by field
//! against Loki's documented shapes and against counts from the written records.

use super::client::{Entry, LokiClient};
use super::data::{self, at, lines, records, span_seconds, windowed, Line, BASE};
use crate::support::{Backend, TestServer};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn s(text: &str) -> String {
    text.to_string()
}

/// A server holding the test records, its Loki client and the model of the records.
pub async fn seeded(backend: Backend) -> (TestServer, LokiClient, Vec<Line>) {
    let server = TestServer::start(backend).await;
    let ids = server.ingest(json!(records("default"))).await;
    let model = lines(ids[0]);
    let loki = LokiClient::new(&server.base, &server.token);
    (server, loki, model)
}

/// The range Grafana would send for "the last hour" around the data.
fn whole_range() -> [(&'static str, String); 2] {
    [("start", at(-60)), ("end", at(span_seconds()))]
}

pub async fn save_and_test_and_the_label_browser(backend: Backend) {
    let (server, loki, model) = seeded(backend).await;

    // "Save & test": an instant query of vector(1)+vector(1) at the end of the range
    // 1 s..4 s (healthcheck.go), sent as `time=4000000000`. Ten digits read as
    // seconds in Loki (loghttp/params.go parseTimestamp), and so here.
    let health = loki
        .query(&[
            ("query", s("vector(1)+vector(1)")),
            ("time", s("4000000000")),
            ("direction", s("backward")),
        ])
        .await
        .expect("health check");
    let samples = health.vector();
    assert_eq!(samples.len(), 1, "one sample");
    assert!(samples[0].metric.is_empty());
    assert_eq!(samples[0].value, (4_000_000_000.0, s("2")));

    let build = loki.buildinfo().await;
    assert!(build.version.starts_with('3'), "{build:?}");
    assert!(build.revision.starts_with("logbook-"));
    assert_eq!(
        (build.branch.as_str(), build.build_user.as_str()),
        ("logbook", "logbook")
    );
    assert!(build.build_date.is_empty() && build.go_version.is_empty());
    let ready = server
        .http
        .get(server.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200, "readiness needs no credentials");
    assert_eq!(ready.text().await.expect("body"), "ready\n");

    // The label browser: names, then the values of a label, then values narrowed by
    // a selection, then the streams of a selector.
    let names = loki.labels(&whole_range()).await;
    let expected: BTreeSet<String> = model
        .iter()
        .flat_map(|l| l.stream.keys().cloned())
        .collect();
    assert_eq!(names, expected.into_iter().collect::<Vec<_>>());
    assert!(names.contains(&s("service_name")) && names.contains(&s("level")));

    let levels = loki.label_values("level", &whole_range()).await;
    assert_eq!(levels, ["debug", "error", "info", "warn"]);
    let mut narrowed = whole_range().to_vec();
    narrowed.push(("query", s(r#"{level="error", category="image"}"#)));
    let sources = loki.label_values("source", &narrowed).await;
    let expected: BTreeSet<&str> = model
        .iter()
        .filter(|l| l.label("level") == Some("error") && l.label("category") == Some("image"))
        .filter_map(|l| l.label("source"))
        .collect();
    assert_eq!(sources, expected.into_iter().collect::<Vec<_>>());
    assert!(loki
        .label_values("nonexistent", &whole_range())
        .await
        .is_empty());

    let mut series_params = whole_range().to_vec();
    series_params.push(("match[]", s(r#"{source="api", level=~"error|warn"}"#)));
    let series = loki.series(&series_params).await;
    let expected: BTreeSet<BTreeMap<String, String>> = model
        .iter()
        .filter(|l| l.label("source") == Some("api"))
        .filter(|l| matches!(l.label("level"), Some("error" | "warn")))
        .map(|l| l.stream.clone())
        .collect();
    assert_eq!(series, expected.into_iter().collect::<Vec<_>>());

    // The query-size hint.
    let mut stats_params = whole_range().to_vec();
    stats_params.push(("query", s(r#"{source="api"}"#)));
    let stats = loki.index_stats(&stats_params).await;
    let api: Vec<&Line> = model
        .iter()
        .filter(|l| l.label("source") == Some("api"))
        .collect();
    assert_eq!(stats.entries, api.len() as u64);
    let streams: BTreeSet<_> = api.iter().map(|l| l.stream.clone()).collect();
    assert_eq!(stats.streams, streams.len() as u64);
    assert!(stats.bytes > 0 && stats.chunks == stats.streams);
    server.stop().await;
}

/// The lines of a query as the model says Loki returns them: time order (newest
/// first unless forward), ties by id.
fn ordered(model: &[Line], keep: impl Fn(&Line) -> bool, forward: bool) -> Vec<&Line> {
    let mut kept: Vec<&Line> = model.iter().filter(|l| keep(l)).collect();
    kept.sort_by_key(|l| (l.ts, l.id));
    if !forward {
        kept.reverse();
    }
    kept
}

/// An entry as shown: time, line, stream labels, structured metadata.
type Shown = (
    String,
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
);

fn metadata_of(line: &Line) -> BTreeMap<String, String> {
    let mut m = BTreeMap::from([
        (s("id"), line.id.to_string()),
        (s("request_id"), line.request_id.clone()),
    ]);
    if let Some(trace) = &line.trace_id {
        m.insert(s("trace_id"), trace.clone());
    }
    m
}

pub async fn explore_log_query_with_a_line_filter_and_its_logs_volume(backend: Backend) {
    let (server, loki, model) = seeded(backend).await;
    let query = r#"{source="api"} |= "timeout""#;
    let wanted = |l: &Line| l.label("source") == Some("api") && l.line.contains("timeout");

    // Explore's log query (api.go makeDataRequest: query, direction, limit, start,
    // end, step in ms), with the categorised labels of Grafana 11.
    let range = [
        ("query", s(query)),
        ("direction", s("backward")),
        ("limit", s("1000")),
        ("start", at(-60)),
        ("end", at(span_seconds())),
        ("step", s("60000ms")),
    ];
    let answer = loki.query_range(&range).await.expect("log query");
    assert_eq!(answer.encoding_flags, ["categorize-labels"]);
    let expected = ordered(&model, wanted, false);
    assert!(expected.len() >= 20, "the filter selects a fair share");
    let entries = answer.entries();
    assert_eq!(entries.len(), expected.len());
    // Each stream's values newest first; across streams, every line once.
    for stream in answer.streams() {
        let times: Vec<i128> = stream
            .values
            .iter()
            .map(|e| e.nanos().parse().expect("ns"))
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "backward order");
    }
    let mut got: Vec<Shown> = entries
        .iter()
        .map(|(labels, entry)| {
            let Entry::Categorized(ts, line, categories) = entry else {
                panic!("categorised entries carry their metadata");
            };
            assert!(categories.parsed.is_empty());
            (
                ts.clone(),
                line.clone(),
                labels.clone(),
                categories.structured_metadata.clone(),
            )
        })
        .collect();
    let mut want: Vec<_> = expected
        .iter()
        .map(|l| (l.nanos(), l.line.clone(), l.stream.clone(), metadata_of(l)))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let summary = &answer.stats.summary;
    assert_eq!(summary.total_entries_returned, expected.len() as u64);
    assert!(summary.total_lines_processed >= summary.total_entries_returned);
    assert!(summary.total_bytes_processed > 0 && summary.exec_time >= 0.0);
    assert_eq!(summary.queue_time, 0.0);
    assert!(summary.lines_processed_per_second > 0 && summary.bytes_processed_per_second > 0);
    assert_eq!(
        answer.stats.store["decompressedLines"],
        summary.total_lines_processed
    );
    assert_eq!(
        answer.stats.ingester["totalReached"], 0,
        "Logbook has no ingesters"
    );

    // Grafana's supplementary logs-volume query for it (datasource.ts
    // getSupplementaryQuery), sent with X-Query-Tags: Source=logvolhist.
    let volume =
        format!("sum by (level, detected_level) (count_over_time({query} | drop __error__[1m]))");
    let answer = loki
        .query_range(&[
            ("query", volume),
            ("direction", s("backward")),
            ("start", at(-60)),
            ("end", at(span_seconds())),
            ("step", s("60000ms")),
        ])
        .await
        .expect("logs volume");
    let matrix = answer.matrix();
    let expected = windowed(&model, -60, span_seconds(), 60, 60, wanted, |l| {
        l.label("level").map(String::from)
    });
    let got: BTreeMap<Option<String>, BTreeMap<i64, u64>> = matrix
        .iter()
        .map(|series| {
            assert!(
                series.metric.keys().all(|k| k == "level"),
                "{:?}",
                series.metric
            );
            let points = series
                .values
                .iter()
                .map(|(t, v)| (*t as i64, v.parse::<u64>().expect("a count")))
                .collect();
            (series.metric.get("level").cloned(), points)
        })
        .collect();
    assert_eq!(got, expected);
    // Steps are aligned to the step, as Loki's query frontend aligns them.
    assert!(matrix
        .iter()
        .flat_map(|s| &s.values)
        .all(|(t, _)| (*t as i64 - BASE) % 60 == 0));

    // "Older logs": the next page ends where the last one did (forward, here).
    let first_page = loki
        .query_range(&[
            ("query", s(query)),
            ("direction", s("forward")),
            ("limit", s("5")),
            ("start", at(-60)),
            ("end", at(span_seconds())),
        ])
        .await
        .expect("first page");
    let oldest: Vec<String> = ordered(&model, wanted, true)
        .iter()
        .take(5)
        .map(|l| l.nanos())
        .collect();
    let mut page: Vec<String> = first_page
        .entries()
        .iter()
        .map(|(_, e)| e.nanos().to_string())
        .collect();
    page.sort();
    assert_eq!(page, oldest);
    let _ = data::COUNT;
    server.stop().await;
}
