//! The LogQL subset end to end: selectors, chained line filters, parsers,
//! formatters and label filters, and metric queries with their aggregations and
//! arithmetic, each answer checked against the model of the written records.

use super::client::{Entry, LokiClient};
use super::data::{at, span_seconds, windowed, Labels, Line, BASE};
use super::grafana::seeded;
use crate::support::Backend;
use std::collections::{BTreeMap, BTreeSet};

fn s(text: &str) -> String {
    text.to_string()
}

fn whole(query: &str) -> Vec<(&'static str, String)> {
    vec![
        ("query", s(query)),
        ("start", at(-60)),
        ("end", at(span_seconds())),
        ("limit", s("5000")),
    ]
}

async fn lines_of(loki: &LokiClient, query: &str) -> Vec<(Labels, Entry)> {
    loki.query_range(&whole(query))
        .await
        .unwrap_or_else(|e| panic!("{query}: {} {}", e.status, e.text))
        .entries()
}

/// The lines (as `(nanoseconds, line)`, sorted) an answer holds.
fn sorted(entries: &[(Labels, Entry)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = entries
        .iter()
        .map(|(_, e)| (e.nanos().to_string(), e.line().to_string()))
        .collect();
    out.sort();
    out
}

fn expected(model: &[Line], keep: impl Fn(&Line) -> bool) -> Vec<(String, String)> {
    let mut out: Vec<_> = model
        .iter()
        .filter(|l| keep(l))
        .map(|l| (l.nanos(), l.line.clone()))
        .collect();
    out.sort();
    out
}

fn json_status(line: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(line).ok()?["status"].as_i64()
}

fn logfmt_status(line: &str) -> Option<i64> {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix("status="))
        .and_then(|v| v.parse().ok())
}

pub async fn selectors_line_filters_parsers_and_formatters(backend: Backend) {
    let (server, loki, model) = seeded(backend).await;
    fn label(l: &Line, n: &str) -> String {
        l.label(n).unwrap_or("").to_string()
    }
    type Keep = Box<dyn Fn(&Line) -> bool>;
    let cases: Vec<(&str, Keep)> = vec![
        (
            r#"{source="api"}"#,
            Box::new(|l| label(l, "source") == "api"),
        ),
        (
            r#"{source!="api", kind="log"}"#,
            Box::new(|l| label(l, "source") != "api" && label(l, "kind") == "log"),
        ),
        (
            r#"{source=~"w.*"}"#,
            Box::new(|l| label(l, "source").starts_with('w')),
        ),
        (
            r#"{source!~"w.*|api", level=""}"#,
            Box::new(|l| label(l, "source").is_empty() && label(l, "level").is_empty()),
        ),
        (
            r#"{level=~"error|warn"}"#,
            Box::new(|l| matches!(label(l, "level").as_str(), "error" | "warn")),
        ),
        (
            r#"{kind=~".+"} |= "timeout" != "after 1""#,
            Box::new(|l| l.line.contains("timeout") && !l.line.contains("after 1")),
        ),
        (
            r#"{kind=~".+"} |~ "(?i)timeout""#,
            Box::new(|l| l.line.to_lowercase().contains("timeout")),
        ),
        (
            r#"{kind=~".+"} |~ "time?out [a-z]+""#,
            Box::new(|l| regex_like_timeout(&l.line)),
        ),
        (
            r#"{kind=~".+"} !~ "(?i)timeout|good""#,
            Box::new(|l| !l.line.to_lowercase().contains("timeout") && !l.line.contains("good")),
        ),
        (
            r#"{kind=~".+"} |= "Timeout" or "TIMEOUT""#,
            Box::new(|l| l.line.contains("Timeout") || l.line.contains("TIMEOUT")),
        ),
        (
            r#"{kind=~".+"} | json | status >= 501"#,
            Box::new(|l| json_status(&l.line).is_some_and(|s| s >= 501)),
        ),
        (
            r#"{kind=~".+"} | logfmt | status >= 500 | method="POST""#,
            Box::new(|l| logfmt_status(&l.line).is_some_and(|s| s >= 500)),
        ),
        (
            r#"{kind=~".+"} | level="error" | request_id=~"req-1.*""#,
            Box::new(|l| label(l, "level") == "error" && l.request_id.starts_with("req-1")),
        ),
        (
            r#"{kind=~".+"} | trace_id="t35""#,
            Box::new(|l| l.trace_id.as_deref() == Some("t35")),
        ),
        (r#"{kind=~".+"} | id > 400"#, Box::new(|l| l.id > 400)),
    ];
    for (query, keep) in cases {
        let got = sorted(&lines_of(&loki, query).await);
        let want = expected(&model, keep);
        assert!(
            !want.is_empty() || query.contains("level=\"\""),
            "{query} selects something"
        );
        assert_eq!(got, want, "{query}");
    }

    // line_format rewrites the line from labels; drop and keep change the stream.
    let formatted = lines_of(
        &loki,
        r#"{source="web"} | logfmt | line_format "{{.method}} {{.status}}" |= "POST""#,
    )
    .await;
    let want: BTreeSet<String> = model
        .iter()
        .filter(|l| l.label("source") == Some("web") && logfmt_status(&l.line).is_some())
        .map(|l| format!("POST {}", logfmt_status(&l.line).unwrap_or_default()))
        .collect();
    let got: BTreeSet<String> = formatted
        .iter()
        .map(|(_, e)| e.line().to_string())
        .collect();
    assert_eq!(got, want);
    assert!(formatted.iter().all(|(_, e)| {
        let parsed = &e.categories().expect("categorised").parsed;
        parsed["method"] == "POST" && parsed.contains_key("took")
    }));

    let dropped = lines_of(&loki, r#"{source="api"} | drop category, service_name"#).await;
    assert!(dropped
        .iter()
        .all(|(labels, _)| !labels.contains_key("category") && labels.contains_key("source")));
    let kept = lines_of(&loki, r#"{source="api"} | keep source, level"#).await;
    assert!(kept.iter().all(|(labels, e)| {
        labels.keys().all(|k| k == "source" || k == "level")
            && e.categories()
                .is_some_and(|c| c.structured_metadata.is_empty())
    }));

    // Without categorised labels (older clients), metadata joins the stream labels.
    let plain = loki.clone().plain();
    let answer = plain
        .query_range(&whole(r#"{source="api"} |= "upstream""#))
        .await
        .expect("plain");
    assert!(answer.encoding_flags.is_empty());
    for stream in answer.streams() {
        assert!(stream.stream.contains_key("id") && stream.stream.contains_key("request_id"));
        assert!(stream.values.iter().all(|e| matches!(e, Entry::Plain(..))));
    }

    // POST with a form body, and `interval`: one line per stream per interval.
    let posted = loki
        .post_form(
            "/loki/api/v1/query_range",
            &[
                ("query", s(r#"{source="api", category="system"}"#)),
                ("start", at(-60)),
                ("end", at(span_seconds())),
                ("limit", s("5000")),
                ("interval", s("60s")),
                ("direction", s("forward")),
            ],
        )
        .await
        .expect("POST");
    for stream in posted["data"]["result"].as_array().expect("streams") {
        let times: Vec<i128> = stream["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v[0].as_str().expect("ns").parse().expect("ns"))
            .collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= 60_000_000_000),
            "{times:?}"
        );
        assert!(!times.is_empty());
    }
    server.stop().await;
}

/// `time?out [a-z]+`: "timeout " or "timout " followed by a letter.
fn regex_like_timeout(line: &str) -> bool {
    ["timeout ", "timout "].iter().any(|needle| {
        line.match_indices(needle)
            .any(|(i, n)| line[i + n.len()..].starts_with(|c: char| c.is_ascii_lowercase()))
    })
}

/// The matrix of a range query, keyed by series labels, values as numbers.
async fn matrix(loki: &LokiClient, query: &str, step: i64) -> BTreeMap<Labels, BTreeMap<i64, f64>> {
    let answer = loki
        .query_range(&[
            ("query", s(query)),
            ("start", at(-60)),
            ("end", at(span_seconds())),
            ("step", format!("{step}s")),
        ])
        .await
        .unwrap_or_else(|e| panic!("{query}: {} {}", e.status, e.text));
    answer
        .matrix()
        .into_iter()
        .map(|series| {
            let points = series
                .values
                .iter()
                .map(|(t, v)| (*t as i64, v.parse::<f64>().expect("a number")))
                .collect();
            (series.metric, points)
        })
        .collect()
}

/// An instant query's samples, keyed by labels.
async fn instant(loki: &LokiClient, query: &str, seconds: i64) -> BTreeMap<Labels, f64> {
    let answer = loki
        .query(&[("query", s(query)), ("time", at(seconds))])
        .await
        .unwrap_or_else(|e| panic!("{query}: {} {}", e.status, e.text));
    answer
        .vector()
        .into_iter()
        .map(|sample| {
            assert_eq!(sample.value.0 as i64, BASE + seconds);
            (
                sample.metric,
                sample.value.1.parse::<f64>().expect("a number"),
            )
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

/// Counts divided by `per` (1 for counts, the window in seconds for rates).
fn as_f64(
    counts: BTreeMap<Labels, BTreeMap<i64, u64>>,
    per: f64,
) -> BTreeMap<Labels, BTreeMap<i64, f64>> {
    counts
        .into_iter()
        .map(|(k, points)| {
            (
                k,
                points
                    .into_iter()
                    .map(|(t, n)| (t, n as f64 / per))
                    .collect(),
            )
        })
        .collect()
}

pub async fn metric_queries_aggregations_and_arithmetic(backend: Backend) {
    let (server, loki, model) = seeded(backend).await;
    let (first, last) = (-60, span_seconds());
    let by_source = |l: &Line| labels(&[("source", l.label("source").unwrap_or(""))]);
    let is_log = |l: &Line| l.label("kind") == Some("log");

    // The store's histogram: one field splits the series.
    assert_eq!(
        matrix(
            &loki,
            r#"sum by (source) (count_over_time({kind="log"}[1m]))"#,
            60
        )
        .await,
        as_f64(
            windowed(&model, first, last, 60, 60, is_log, by_source),
            1.0
        )
    );
    // Sliding windows: a five-minute range every minute.
    assert_eq!(
        matrix(&loki, r#"sum by (level) (rate({source="api"}[5m]))"#, 60).await,
        as_f64(
            windowed(
                &model,
                first,
                last,
                60,
                300,
                |l| l.label("source") == Some("api"),
                |l| {
                    l.label("level")
                        .map(|v| labels(&[("level", v)]))
                        .unwrap_or_default()
                }
            ),
            300.0
        )
    );
    // Every stream its own series (read line by line).
    assert_eq!(
        matrix(&loki, r#"count_over_time({source="worker"}[2m])"#, 120).await,
        as_f64(
            windowed(
                &model,
                first,
                last,
                120,
                120,
                |l| l.label("source") == Some("worker"),
                |l| l.stream.clone()
            ),
            1.0
        )
    );
    // Bytes of the lines.
    let bytes = matrix(&loki, r#"sum(bytes_over_time({source="api"}[10m]))"#, 600).await;
    let mut want: BTreeMap<i64, f64> = BTreeMap::new();
    let mut t = -60i64.div_euclid(600) * 600;
    while t <= last {
        let (lo, hi) = ((BASE + t - 600) * 1_000_000, (BASE + t) * 1_000_000);
        let total: usize = model
            .iter()
            .filter(|l| l.label("source") == Some("api") && l.ts >= lo && l.ts < hi)
            .map(|l| l.line.len())
            .sum();
        let any = model
            .iter()
            .any(|l| l.label("source") == Some("api") && l.ts >= lo && l.ts < hi);
        if any {
            want.insert(BASE + t, total as f64);
        }
        t += 600;
    }
    assert_eq!(bytes, BTreeMap::from([(Labels::new(), want)]));

    // Instants: counts, groups, regexes resolved against label values, parsers.
    let t = 1800;
    let in_window = |l: &Line, range: i64| {
        l.ts >= (BASE + t - range) * 1_000_000 && l.ts < (BASE + t) * 1_000_000
    };
    let count = |keep: &dyn Fn(&Line) -> bool| model.iter().filter(|l| keep(l)).count() as f64;
    assert_eq!(
        instant(&loki, r#"sum(count_over_time({source=~"w.*"}[30m]))"#, t).await,
        BTreeMap::from([(
            Labels::new(),
            count(&|l| in_window(l, 1800) && l.label("source") != Some("api"))
        )])
    );
    let mut per_source = BTreeMap::new();
    for source in ["api", "web", "worker"] {
        let n = count(&|l| in_window(l, 600) && is_log(l) && l.label("source") == Some(source));
        per_source.insert(labels(&[("source", source)]), n);
    }
    assert_eq!(
        instant(
            &loki,
            r#"sum by (source) (count_over_time({kind="log"}[10m]))"#,
            t
        )
        .await,
        per_source
    );
    let mut top: Vec<(Labels, f64)> = per_source.clone().into_iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(
        instant(
            &loki,
            r#"topk(2, sum by (source) (count_over_time({kind="log"}[10m])))"#,
            t
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        instant(
            &loki,
            r#"count(sum by (source) (count_over_time({kind=~".+"}[1h])))"#,
            t
        )
        .await,
        BTreeMap::from([(Labels::new(), 3.0)])
    );
    let total: f64 = per_source.values().sum();
    assert_eq!(
        instant(
            &loki,
            r#"sum(count_over_time({kind="log"}[10m])) / 2 + 1"#,
            t
        )
        .await,
        BTreeMap::from([(Labels::new(), total / 2.0 + 1.0)])
    );
    let max = per_source.values().copied().fold(0.0, f64::max);
    assert_eq!(
        instant(
            &loki,
            r#"max(sum by (source) (count_over_time({kind="log"}[10m])))"#,
            t
        )
        .await,
        BTreeMap::from([(Labels::new(), max)])
    );
    let above: BTreeMap<Labels, f64> = per_source
        .iter()
        .filter(|(_, n)| **n > 30.0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(
        instant(
            &loki,
            r#"sum by (source) (count_over_time({kind="log"}[10m])) > 30"#,
            t
        )
        .await,
        above
    );
    let flags: BTreeMap<Labels, f64> = per_source
        .iter()
        .map(|(k, v)| (k.clone(), f64::from(u8::from(*v > 30.0))))
        .collect();
    assert_eq!(
        instant(
            &loki,
            r#"sum by (source) (count_over_time({kind="log"}[10m])) > bool 30"#,
            t
        )
        .await,
        flags
    );
    assert_eq!(
        instant(
            &loki,
            r#"sum(count_over_time({kind=~".+"} | json | status >= 501 [1h]))"#,
            t
        )
        .await,
        BTreeMap::from([(
            Labels::new(),
            count(&|l| in_window(l, 3600) && json_status(&l.line).is_some_and(|s| s >= 501))
        )])
    );
    assert_eq!(
        instant(
            &loki,
            r#"sum(count_over_time({kind="log"}[10m] offset 5m))"#,
            t + 300
        )
        .await,
        BTreeMap::from([(Labels::new(), total)])
    );
    assert_eq!(
        instant(&loki, "vector(2) * 3 - 1", t).await,
        BTreeMap::from([(Labels::new(), 5.0)])
    );
    server.stop().await;
}

pub async fn lines_come_in_time_order_even_when_written_out_of_order(backend: Backend) {
    let server = crate::support::TestServer::start(backend).await;
    // A backfill: each record older than the one written before it.
    let records: Vec<_> = (0..12)
        .map(|i| {
            serde_json::json!({
                "kind": "log", "source": "api", "ts": BASE + 100 - i * 5,
                "message": format!("line {i}"),
            })
        })
        .collect();
    server.ingest(serde_json::json!(records)).await;
    let loki = LokiClient::new(&server.base, &server.token);
    for (direction, filter, wanted) in [
        ("backward", "", ["line 0", "line 1", "line 2"]),
        ("forward", "", ["line 11", "line 10", "line 9"]),
        (
            "backward",
            r#" |~ "line [0-9]+""#,
            ["line 0", "line 1", "line 2"],
        ),
        (
            "forward",
            r#" |~ "line [0-9]+""#,
            ["line 11", "line 10", "line 9"],
        ),
    ] {
        let answer = loki
            .query_range(&[
                ("query", format!(r#"{{source="api"}}{filter}"#)),
                ("direction", s(direction)),
                ("limit", s("3")),
                ("start", at(0)),
                ("end", at(200)),
            ])
            .await
            .expect("log query");
        let lines: Vec<String> = answer
            .entries()
            .iter()
            .map(|(_, e)| e.line().to_string())
            .collect();
        assert_eq!(lines, wanted, "{direction}{filter}");
    }
    server.stop().await;
}
