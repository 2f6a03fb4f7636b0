//! Loki push, `POST /loki/api/v1/push`: what Promtail, Grafana Alloy, Fluent Bit,
//! Vector and the Loki logging handlers send. JSON (optionally gzip) or
//! snappy-compressed protobuf; a missing or non-JSON content type means protobuf,
//! as Loki decides. Each stream's labels map onto record fields (see
//! `docs/ingest.md`); `204` once durable, since clients treat anything else as a
//! failure. Errors are plain text, as Loki's are.

use super::media_type;
use crate::auth::Principal;
use crate::body::{decompress_snappy, read_decoded};
use crate::error::ApiError;
use crate::{ingest, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logbook_core::{Level, NewRecord, Shipped, Timestamp};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new().route("/loki/api/v1/push", post(push))
}

async fn push(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match push_records(&state, principal, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => text_error(e),
    }
}

async fn push_records(
    state: &AppState,
    principal: Result<Principal, ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    let principal = principal?;
    principal.require_write()?;
    let limit = state.config.max_body_bytes;
    let bytes = read_decoded(headers, body, limit).await?;
    let records = if media_type(headers) == "application/json" {
        json_records(&bytes)?
    } else {
        protobuf_records(&decompress_snappy(&bytes, limit)?)?
    };
    if !records.is_empty() {
        ingest::append(state, &principal, records, |i, field| {
            format!("[{i}].{field}")
        })
        .await
        .map(|_| ())?;
    }
    Ok(())
}

/// The records of a JSON push body.
pub(crate) fn json_records(bytes: &[u8]) -> Result<Vec<NewRecord>, ApiError> {
    stream_records(json_streams(bytes)?)
}

/// The records of a protobuf push body (already decompressed).
pub(crate) fn protobuf_records(bytes: &[u8]) -> Result<Vec<NewRecord>, ApiError> {
    stream_records(protobuf_streams(bytes)?)
}

fn stream_records(streams: Vec<Stream>) -> Result<Vec<NewRecord>, ApiError> {
    let mut records = Vec::new();
    for (s, stream) in streams.into_iter().enumerate() {
        let labels = parse_labels(&stream.labels)
            .map_err(|problem| ApiError::bad_request(format!("streams[{s}].stream"), problem))?;
        for (e, entry) in stream.entries.into_iter().enumerate() {
            let field = || format!("streams[{s}].values[{e}]");
            let record = entry_record(&labels, entry)
                .map_err(|err| ApiError::bad_request(field(), err.to_string()))?;
            records.push(record);
        }
    }
    Ok(records)
}

/// A stream in either encoding: its label selector (or labels) and its lines.
struct Stream {
    labels: Labels,
    entries: Vec<Entry>,
}

enum Labels {
    /// `{job="x", env="prod"}`, as protobuf and Loki's older JSON send them.
    Selector(String),
    /// The JSON `stream` object.
    Map(serde_json::Map<String, Value>),
}

struct Entry {
    nanos: u64,
    line: String,
    metadata: Vec<(String, String)>,
}

fn json_streams(bytes: &[u8]) -> Result<Vec<Stream>, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("body", format!("is not valid JSON: {e}")))?;
    let Some(Value::Array(streams)) = value.get("streams") else {
        return Err(ApiError::bad_request("streams", "must be an array"));
    };
    let mut out = Vec::with_capacity(streams.len());
    for (s, stream) in streams.iter().enumerate() {
        let field = |name: &str| format!("streams[{s}].{name}");
        let labels = match (stream.get("stream"), stream.get("labels")) {
            (Some(Value::Object(map)), _) => Labels::Map(map.clone()),
            (None | Some(Value::Null), Some(Value::String(selector))) => {
                Labels::Selector(selector.clone())
            }
            (None | Some(Value::Null), None) => Labels::Map(serde_json::Map::new()),
            _ => {
                return Err(ApiError::bad_request(
                    field("stream"),
                    "must be an object of labels",
                ))
            }
        };
        let mut entries = Vec::new();
        if let Some(values) = stream.get("values") {
            let Value::Array(values) = values else {
                return Err(ApiError::bad_request(field("values"), "must be an array"));
            };
            for (e, value) in values.iter().enumerate() {
                let entry = json_value_entry(value).map_err(|problem| {
                    ApiError::bad_request(field(&format!("values[{e}]")), problem)
                })?;
                entries.push(entry);
            }
        } else if let Some(Value::Array(legacy)) = stream.get("entries") {
            // Loki's first JSON form: `{"ts": RFC 3339, "line": ...}`.
            for (e, value) in legacy.iter().enumerate() {
                let field = field(&format!("entries[{e}]"));
                let ts = value
                    .get("ts")
                    .and_then(Value::as_str)
                    .and_then(Timestamp::parse)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("{field}.ts"), "must be an RFC 3339 time")
                    })?;
                let line = value.get("line").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::bad_request(format!("{field}.line"), "must be a string")
                })?;
                entries.push(Entry {
                    nanos: (ts.micros() as u64).saturating_mul(1000),
                    line: line.to_string(),
                    metadata: Vec::new(),
                });
            }
        }
        out.push(Stream { labels, entries });
    }
    Ok(out)
}

/// `["<nanoseconds>", "line"]` or `["<nanoseconds>", "line", {"key": "value"}]`.
fn json_value_entry(value: &Value) -> Result<Entry, String> {
    let Value::Array(parts) = value else {
        return Err("must be [\"<unix nanoseconds>\", \"<line>\"]".into());
    };
    let nanos = match parts.first() {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
    .ok_or("[0] must be a Unix time in nanoseconds, as a string")?;
    let line = parts
        .get(1)
        .and_then(Value::as_str)
        .ok_or("[1] must be the log line, a string")?;
    let mut metadata = Vec::new();
    match parts.get(2) {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                metadata.push((key.clone(), value));
            }
        }
        Some(_) => return Err("[2] (structured metadata) must be an object".into()),
    }
    Ok(Entry {
        nanos,
        line: line.to_string(),
        metadata,
    })
}

/// Loki's push messages (`pkg/push/push.proto`, package `logproto`); public for
/// the benchmark, which sends them.
pub mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

fn protobuf_streams(bytes: &[u8]) -> Result<Vec<Stream>, ApiError> {
    let request = <wire::PushRequest as prost::Message>::decode(bytes).map_err(|e| {
        ApiError::bad_request(
            "body",
            format!("is not a snappy-compressed Loki PushRequest: {e}"),
        )
    })?;
    let mut out = Vec::with_capacity(request.streams.len());
    for (s, stream) in request.streams.into_iter().enumerate() {
        let mut entries = Vec::with_capacity(stream.entries.len());
        for (e, entry) in stream.entries.into_iter().enumerate() {
            let ts = entry.timestamp.unwrap_or_default();
            let nanos = u64::try_from(ts.seconds)
                .ok()
                .and_then(|s| s.checked_mul(1_000_000_000))
                .and_then(|n| n.checked_add(u64::try_from(ts.nanos).ok()?))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        format!("streams[{s}].entries[{e}].timestamp"),
                        "must be after 1970 and not overflow",
                    )
                })?;
            entries.push(Entry {
                nanos,
                line: entry.line,
                metadata: entry
                    .structured_metadata
                    .into_iter()
                    .map(|pair| (pair.name, pair.value))
                    .collect(),
            });
        }
        out.push(Stream {
            labels: Labels::Selector(stream.labels),
            entries,
        });
    }
    Ok(out)
}

/// Reads a label set into (name, value) pairs.
fn parse_labels(labels: &Labels) -> Result<Vec<(String, String)>, String> {
    match labels {
        Labels::Map(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("label {k:?} must be a string")),
            })
            .collect(),
        Labels::Selector(text) => parse_selector(text),
    }
}

/// Parses `{name="value", ...}` (Prometheus label syntax, Go string escapes).
fn parse_selector(text: &str) -> Result<Vec<(String, String)>, String> {
    let bad = |why: &str| format!("{text:?} is not a label set: {why}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| bad("it must be enclosed in braces"))?;
    let mut pairs = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
            name.push(c);
        }
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("a label name must match [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let equals = chars.next() == Some('=');
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if !equals || chars.next() != Some('"') {
            return Err(bad(&format!("label {name} must be followed by =\"value\"")));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(bad("a quoted value is not closed")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    _ => return Err(bad("unknown escape in a value")),
                },
                Some(c) => value.push(c),
            }
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Which labels become which field; the first of each list present wins, the
/// rest stay in `data.labels`.
const LABEL_FIELDS: [(&str, &[&str]); 2] = [
    ("source", &["job", "service_name", "app"]),
    ("instance", &["instance", "host", "pod"]),
];
const LEVEL_LABELS: [&str; 3] = ["level", "severity", "detected_level"];

fn entry_record(
    labels: &[(String, String)],
    entry: Entry,
) -> Result<NewRecord, logbook_core::FieldError> {
    let mut shipped = Shipped::new();
    shipped.ts_nanos(entry.nanos);
    shipped.offer("message", entry.line);
    let label = |name: &str| labels.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let mut used: Vec<&str> = Vec::new();
    for name in LEVEL_LABELS {
        if let Some(level) = label(name).and_then(|v| Level::from_label(v)) {
            if !shipped.has_level() {
                shipped.level(Some(level));
                used.push(name);
            }
        }
    }
    for (field, names) in LABEL_FIELDS {
        for name in names {
            if let Some(value) = label(name) {
                if shipped.offer(field, value.clone()) {
                    used.push(name);
                }
            }
        }
    }
    for (name, value) in labels {
        if !used.contains(&name.as_str()) {
            shipped.data_in("labels", name.clone(), json!(value));
        }
    }
    for (key, value) in entry.metadata {
        shipped.data(key, json!(value));
    }
    shipped.finish()
}

/// Loki answers errors in plain text; the status and `Retry-After` are the
/// server's one decision (`error.rs`).
fn text_error(e: ApiError) -> Response {
    e.respond_with_body(e.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_store_is_a_retryable_503() {
        let response = text_error(ApiError::from(logbook_store::StoreError::Busy));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[test]
    fn selectors_parse_with_escapes_and_refuse_nonsense() {
        assert_eq!(
            parse_selector(r#"{job="api", msg="a \"b\"\\n", _x = "é"}"#).expect("valid"),
            [
                ("job".to_string(), "api".to_string()),
                ("msg".to_string(), "a \"b\"\\n".to_string()),
                ("_x".to_string(), "é".to_string())
            ]
        );
        assert_eq!(parse_selector("{}").expect("empty"), []);
        for bad in [
            "job=\"x\"",
            "{job=x}",
            "{1a=\"x\"}",
            "{job=\"x}",
            "{job=~\"x\"}",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_map_onto_fields_and_the_rest_is_kept() {
        let labels: Vec<(String, String)> = [
            ("app", "web"),
            ("job", "varlogs"),
            ("pod", "web-1"),
            ("detected_level", "warn"),
            ("env", "prod"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let record = entry_record(
            &labels,
            Entry {
                nanos: 1_714_560_000_000_000_001,
                line: "hello".into(),
                metadata: vec![("trace_id".into(), "abc".into())],
            },
        )
        .expect("maps");
        assert_eq!(record.source.as_deref(), Some("varlogs"));
        assert_eq!(record.instance.as_deref(), Some("web-1"));
        assert_eq!(record.level, Some(Level::Warn));
        assert_eq!(record.message.as_deref(), Some("hello"));
        assert_eq!(record.ts, Some(Timestamp(1_714_560_000_000_000)));
        assert_eq!(
            Value::Object(record.data.expect("data")),
            json!({"labels": {"app": "web", "env": "prod"}, "trace_id": "abc"})
        );
    }

    proptest::proptest! {
        #[test]
        fn any_selector_parses_or_is_refused(text in "\\{?[a-z_0-9=\", \\\\]{0,40}\\}?") {
            match parse_selector(&text) {
                Ok(pairs) => proptest::prop_assert!(pairs.iter().all(|(n, _)| !n.is_empty())),
                Err(e) => proptest::prop_assert!(e.contains("is not a label set")),
            }
        }
    }
}
