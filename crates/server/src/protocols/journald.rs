//! journald, `POST /upload` with `Content-Type: application/vnd.fdo.journal`: what
//! `systemd-journal-upload` sends (the journal export format: entries separated by
//! an empty line, each field `NAME=value` or, for binary values and values with a
//! newline, `NAME`, a 64-bit little-endian length, the bytes and a newline).
//! `202 OK.` once durable, as `systemd-journal-remote` answers. Fields map onto the
//! record as in `docs/ingest.md`; every other field is kept in `data` (a repeated
//! field as an array, a value that is not UTF-8 as its bytes, as `journalctl -o
//! json` renders them).

use super::media_type;
use crate::auth::Principal;
use crate::body::read_decoded;
use crate::error::ApiError;
use crate::{ingest, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logbook_core::query::Scalar;
use logbook_core::{Condition, Field, Level, NewRecord, Query, Shipped, Timestamp};
use serde_json::{json, Map, Value};

pub const MEDIA_TYPE: &str = "application/vnd.fdo.journal";

pub fn router() -> Router<AppState> {
    Router::new().route("/upload", post(upload))
}

async fn upload(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = principal?;
    principal.require_write()?;
    if media_type(&headers) != MEDIA_TYPE {
        return Err(ApiError::field(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            format!("must be {MEDIA_TYPE} (the journal export format)"),
        ));
    }
    let bytes = read_decoded(&headers, body, state.config.max_body_bytes).await?;
    let mut entries = parse_export(&bytes)?;
    if already_stored(&state, &principal, entries.first()).await? {
        entries.remove(0);
    }
    let records = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| entry_record(entry).map_err(|e| ApiError::from(e.at_index(i))))
        .collect::<Result<Vec<_>, _>>()?;
    if !records.is_empty() {
        ingest::append(&state, &principal, records, |i| format!("[{i}].")).await?;
    }
    Ok((StatusCode::ACCEPTED, "OK.\n").into_response())
}

/// systemd-journal-upload resumes *at* the cursor it saved, so after a restart the
/// first entry it sends is the last one it sent before. Such an entry (same
/// `__CURSOR`, same time, in the writer's domain) is dropped: nothing is written
/// twice. Only the first entry of an upload can be such a repeat.
async fn already_stored(
    state: &AppState,
    principal: &Principal,
    first: Option<&Entry>,
) -> Result<bool, ApiError> {
    let field = |name: &str| {
        first.and_then(|entry| {
            entry
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        })
    };
    let (Some(cursor), Some(ts)) = (
        field("__CURSOR"),
        field("__REALTIME_TIMESTAMP")
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(Timestamp::from_micros),
    ) else {
        return Ok(false);
    };
    let ts = field("_SOURCE_REALTIME_TIMESTAMP")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(Timestamp::from_micros)
        .unwrap_or(ts);
    let query = Query::newest_first()
        .within_domains(&[principal.write_domain(None, "domain_id")?])
        .since(ts)
        .until(ts)
        .with(Condition::In(
            Field::DataText("__CURSOR"),
            vec![Scalar::Text(cursor.to_string())],
        ));
    Ok(state.store.count(&query).await? > 0)
}

/// One entry's fields in the order they came, values as raw bytes.
type Entry = Vec<(String, Vec<u8>)>;

/// Parses the journal export format, naming the entry and field at fault.
pub fn parse_export(bytes: &[u8]) -> Result<Vec<Entry>, ApiError> {
    let mut entries = Vec::new();
    let mut entry: Entry = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let bad =
            |problem: String| ApiError::bad_request(format!("entry {}", entries.len()), problem);
        let Some(end) = memchr::memchr(b'\n', rest) else {
            return Err(bad("the last line has no newline".into()));
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.is_empty() {
            if !entry.is_empty() {
                entries.push(std::mem::take(&mut entry));
            }
            continue;
        }
        if let Some(eq) = memchr::memchr(b'=', line) {
            let name = field_name(&line[..eq]).map_err(bad)?;
            entry.push((name, line[eq + 1..].to_vec()));
        } else {
            // A binary field: the name alone, then a little-endian u64 length.
            let name = field_name(line).map_err(bad)?;
            if rest.len() < 8 {
                return Err(bad(format!("field {name} ends before its length")));
            }
            let (length, after) = rest.split_at(8);
            let length = u64::from_le_bytes(length.try_into().unwrap_or([0xff; 8]));
            let length = usize::try_from(length)
                .ok()
                .filter(|n| after.len() > *n)
                .ok_or_else(|| bad(format!("field {name} is longer than the body")))?;
            if after[length] != b'\n' {
                return Err(bad(format!("field {name} is not followed by a newline")));
            }
            entry.push((name, after[..length].to_vec()));
            rest = &after[length + 1..];
        }
    }
    if !entry.is_empty() {
        entries.push(entry);
    }
    Ok(entries)
}

fn field_name(bytes: &[u8]) -> Result<String, String> {
    let valid = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    if valid {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    } else {
        Err(format!(
            "{:?} is not a journal field name (A-Z, 0-9, _)",
            String::from_utf8_lossy(bytes)
        ))
    }
}

fn entry_record(entry: Entry) -> Result<NewRecord, logbook_core::FieldError> {
    let mut shipped = Shipped::new();
    let text = |name: &str| {
        entry
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    // When the message was logged, else when journald received it (microseconds).
    for name in ["_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP"] {
        if let Some(ts) = text(name)
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(Timestamp::from_micros)
        {
            shipped.ts(ts);
        }
    }
    if let Some(priority) = text("PRIORITY").and_then(|p| p.parse::<u8>().ok()) {
        shipped.level(Level::from_syslog_severity(priority));
    }
    for (name, field) in [
        ("MESSAGE", "message"),
        ("SYSLOG_IDENTIFIER", "source"),
        ("_SYSTEMD_UNIT", "source"),
        ("_HOSTNAME", "instance"),
    ] {
        if let Some(value) = text(name) {
            shipped.offer(field, value);
        }
    }
    let mut data: Map<String, Value> = Map::new();
    for (name, value) in entry {
        if name == "MESSAGE" {
            continue;
        }
        let value = match String::from_utf8(value) {
            Ok(text) => json!(text),
            Err(e) => json!(e.into_bytes()),
        };
        match data.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = json!([first.take(), value]),
            None => {
                data.insert(name, value);
            }
        }
    }
    for (name, value) in data {
        shipped.data(name, value);
    }
    shipped.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_field(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = format!("{name}\n").into_bytes();
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
        out
    }

    #[test]
    fn export_entries_parse_with_binary_fields_and_map() {
        let mut body = b"__REALTIME_TIMESTAMP=1714560000000001\nPRIORITY=3\n_HOSTNAME=node-1\n\
            SYSLOG_IDENTIFIER=sshd\n_SYSTEMD_UNIT=ssh.service\nTAG=a\nTAG=b\n"
            .to_vec();
        body.extend(binary_field("MESSAGE", b"two\nlines"));
        body.extend(binary_field("BLOB", &[0xff, 0x00]));
        body.extend(b"\n_SOURCE_REALTIME_TIMESTAMP=1714560000000005\nMESSAGE=second\n\n");
        let entries = parse_export(&body).expect("parses");
        assert_eq!(entries.len(), 2);
        let first = entry_record(entries[0].clone()).expect("maps");
        assert_eq!(first.ts, Some(Timestamp(1_714_560_000_000_001)));
        assert_eq!(first.level, Some(Level::Error));
        assert_eq!(first.source.as_deref(), Some("sshd"));
        assert_eq!(first.instance.as_deref(), Some("node-1"));
        assert_eq!(first.message.as_deref(), Some("two\nlines"));
        let data = first.data.expect("data");
        assert_eq!(data["TAG"], json!(["a", "b"]));
        assert_eq!(data["BLOB"], json!([255, 0]));
        assert_eq!(data["_SYSTEMD_UNIT"], "ssh.service");
        let second = entry_record(entries[1].clone()).expect("maps");
        assert_eq!(second.ts, Some(Timestamp(1_714_560_000_000_005)));
        assert_eq!(second.message.as_deref(), Some("second"));
    }

    #[test]
    fn broken_streams_are_named() {
        for (body, problem) in [
            (b"MESSAGE=x".to_vec(), "no newline"),
            (b"message=x\n".to_vec(), "not a journal field name"),
            (b"MESSAGE\n\x05\x00\x00".to_vec(), "before its length"),
            (
                b"MESSAGE\n\xff\x00\x00\x00\x00\x00\x00\x00ab\n".to_vec(),
                "longer than the body",
            ),
        ] {
            let err = parse_export(&body).expect_err("broken");
            assert!(err.message.contains(problem), "{}", err.message);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_stream_parses_or_is_refused_by_name(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)
        ) {
            if let Err(e) = parse_export(&bytes) {
                proptest::prop_assert!(e.field.is_some_and(|f| f.starts_with("entry ")));
            }
        }
    }
}
