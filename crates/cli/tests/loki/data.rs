//! The records the Loki tests write, and the test's own model of them: what Loki
//! would show for each (stream labels, line, metadata), so every expected answer is
//! computed from the written records, independently of the server's code.

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// 2024-01-01T00:00:00Z, in seconds.
pub const BASE: i64 = 1_704_067_200;
pub const COUNT: usize = 420;
/// Seconds between records: ten per minute, so every tenth lands exactly on a
/// minute boundary.
pub const SPACING: i64 = 6;

pub type Labels = BTreeMap<String, String>;

/// One written record as Loki sees it.
#[derive(Debug, Clone)]
pub struct Line {
    pub id: i64,
    /// Microseconds.
    pub ts: i64,
    pub stream: Labels,
    pub line: String,
    pub request_id: String,
    pub trace_id: Option<String>,
}

impl Line {
    pub fn nanos(&self) -> String {
        (i128::from(self.ts) * 1000).to_string()
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.stream.get(name).map(String::as_str)
    }
}

const SOURCES: [&str; 3] = ["api", "web", "worker"];
const LEVELS: [Option<&str>; 5] = [
    Some("INFO"),
    Some("WARN"),
    Some("ERROR"),
    Some("DEBUG"),
    None,
];

fn message(i: usize) -> Option<String> {
    Some(match i % 7 {
        0 => format!("pull Timeout on registry #{i}"),
        1 => format!("request timeout after {}s", i % 40),
        2 => json!({"status": 500 + (i % 3) as i64, "method": "GET", "path": format!("/api/{}", i % 4)})
            .to_string(),
        3 => format!("status={} method=POST took={}ms", 200 + (i % 2) * 300, i % 900),
        4 => "all good".to_string(),
        5 => "TIMEOUT upstream".to_string(),
        _ => return None,
    })
}

/// The native JSON of record `i` (written by the admin into `domain`).
pub fn record(i: usize, domain: &str) -> Value {
    // A quarter of a second off the grid for a third of the records.
    let ts = BASE as f64 + (i as i64 * SPACING) as f64 + if i % 3 == 1 { 0.25 } else { 0.0 };
    let mut r = json!({
        "kind": if i.is_multiple_of(11) { "event" } else { "log" },
        "ts": ts,
        "source": SOURCES[i % 3],
        "category": if i.is_multiple_of(4) { "image" } else { "system" },
        "request_id": format!("req-{i}"),
        "domain_id": domain,
    });
    if let Some(level) = LEVELS[i % 5] {
        r["level"] = json!(level);
    }
    if let Some(m) = message(i) {
        r["message"] = json!(m);
    }
    if i.is_multiple_of(5) {
        r["data"] = json!({"trace_id": format!("t{i}")});
    }
    r
}

pub fn records(domain: &str) -> Vec<Value> {
    (0..COUNT).map(|i| record(i, domain)).collect()
}

/// What Loki shows for record `i` given the id the server gave it.
pub fn line(i: usize, id: i64) -> Line {
    let r = record(i, "");
    let micros = (r["ts"].as_f64().unwrap_or_default() * 1e6).round() as i64;
    let mut stream = Labels::new();
    let mut put = |name: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            stream.insert(name.into(), v.into());
        }
    };
    put("kind", r["kind"].as_str());
    put("source", r["source"].as_str());
    put("service_name", r["source"].as_str());
    put("category", r["category"].as_str());
    put("domain_id", Some("default"));
    let level = r["level"].as_str().map(|l| match l {
        "WARN" => "warn".to_string(),
        other => other.to_ascii_lowercase(),
    });
    put("level", level.as_deref());
    Line {
        id,
        ts: micros,
        stream,
        line: r["message"].as_str().unwrap_or("").to_string(),
        request_id: format!("req-{i}"),
        trace_id: r["data"]["trace_id"].as_str().map(String::from),
    }
}

/// The model of every record written (in the admin's domain, `default`).
pub fn lines(first_id: i64) -> Vec<Line> {
    (0..COUNT).map(|i| line(i, first_id + i as i64)).collect()
}

/// Nanoseconds of a time in seconds since [`BASE`].
pub fn at(seconds: i64) -> String {
    (i128::from(BASE + seconds) * 1_000_000_000).to_string()
}

/// The last written record's time plus a minute, in seconds since [`BASE`].
pub fn span_seconds() -> i64 {
    COUNT as i64 * SPACING + 60
}

/// Counts per window `[t - window, t)` at each step `t` from `first` to `last`
/// (seconds since BASE, aligned down to multiples of the step as the server aligns
/// them), as Logbook defines range aggregations, of the lines that pass `keep`,
/// split by `key`. Windows without lines have no point.
pub fn windowed<K: Ord + Clone>(
    lines: &[Line],
    first: i64,
    last: i64,
    step: i64,
    window: i64,
    keep: impl Fn(&Line) -> bool,
    key: impl Fn(&Line) -> K,
) -> BTreeMap<K, BTreeMap<i64, u64>> {
    let mut out: BTreeMap<K, BTreeMap<i64, u64>> = BTreeMap::new();
    let align = |t: i64| (BASE + t).div_euclid(step) * step - BASE;
    let (mut t, last) = (align(first), align(last));
    while t <= last {
        let (lo, hi) = ((BASE + t - window) * 1_000_000, (BASE + t) * 1_000_000);
        for l in lines.iter().filter(|l| l.ts >= lo && l.ts < hi && keep(l)) {
            *out.entry(key(l)).or_default().entry(BASE + t).or_default() += 1;
        }
        t += step;
    }
    out
}
