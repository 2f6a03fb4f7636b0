//! journald, `POST /upload` with `Content-Type: application/vnd.fdo.journal`: what
//! `systemd-journal-upload` sends (the journal export format: entries separated by
//! an empty line, each field `NAME=value` or, for binary values and values with a
//! newline, `NAME`, a 64-bit little-endian length, the bytes and a newline).
//! `202 OK.` once durable, as `systemd-journal-remote` answers. The upload is read
//! as a stream and appended in atomic batches (see `docs/ingest.md`). Fields map onto the
//! record as in `docs/ingest.md`; every other field is kept in `data` (a repeated
//! field as an array, a value that is not UTF-8 as its bytes, as `journalctl -o
//! json` renders them).

use super::media_type;
use crate::auth::Principal;
use crate::body::read_decoded;
use crate::error::{ApiError, ErrorKind};
use crate::{ingest, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use logbook_core::query::Scalar;
use logbook_core::{Condition, Field, Level, NewRecord, Query, Shipped, Timestamp};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

pub(super) const MEDIA_TYPE: &str = "application/vnd.fdo.journal";

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/upload", post(upload))
}

/// Entries appended together: an upload is a stream (a host's whole backlog on
/// its first run), so it is committed in batches as it arrives, each atomic.
const BATCH: usize = 1000;

async fn upload(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = principal?;
    principal.require_write()?;
    if media_type(&headers) != MEDIA_TYPE {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("must be {MEDIA_TYPE} (the journal export format)"),
        )
        .at("content-type"));
    }
    let limit = state.config.max_body_bytes;
    let mut reader = ExportReader::new(limit);
    let mut batch = Vec::new();
    let identity = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim().is_empty() || v.trim().eq_ignore_ascii_case("identity"));
    if identity {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request("body", format!("could not be read: {e}")))?;
            reader.push(&chunk);
            while let Some(entry) = reader.next_entry(false)? {
                batch.push(entry);
                if batch.len() >= BATCH {
                    commit(&state, &principal, &mut reader, std::mem::take(&mut batch)).await?;
                }
            }
        }
    } else {
        // A compressed upload is read whole, within the limit once decompressed.
        reader.push(&read_decoded(&headers, body, limit).await?);
    }
    while let Some(entry) = reader.next_entry(true)? {
        batch.push(entry);
    }
    commit(&state, &principal, &mut reader, batch).await?;
    Ok((StatusCode::ACCEPTED, "OK.\n").into_response())
}

/// Appends a batch, but for entries already stored: systemd-journal-upload resumes
/// *at* the cursor it saved, and re-sends what it sent before an upload broke off,
/// so an entry whose `__CURSOR` is already stored (at its time, in the writer's
/// domain) is skipped. Nothing is written twice.
async fn commit(
    state: &AppState,
    principal: &Principal,
    reader: &mut ExportReader,
    entries: Vec<Entry>,
) -> Result<(), ApiError> {
    let first_index = reader.committed;
    reader.committed += entries.len();
    let stored = stored_cursors(state, principal, &entries).await?;
    let mut records = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        if text_field(&entry, "__CURSOR").is_some_and(|c| stored.contains(c)) {
            continue;
        }
        let record = entry_record(entry).map_err(|e| {
            ApiError::bad_request(format!("entry {}", first_index + i), e.to_string())
        })?;
        records.push(record);
    }
    if !records.is_empty() {
        ingest::append(state, principal, records, |i, field| {
            format!("[{i}].{field}")
        })
        .await?;
    }
    Ok(())
}

fn text_field<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// When the entry was logged, else when journald received it.
fn entry_time(entry: &Entry) -> Option<Timestamp> {
    ["_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP"]
        .into_iter()
        .find_map(|name| {
            text_field(entry, name)
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(Timestamp::from_micros)
        })
}

/// The cursors of `entries` that are already stored in the writer's domain: one
/// query, narrowed by the time index to the batch's time range.
async fn stored_cursors(
    state: &AppState,
    principal: &Principal,
    entries: &[Entry],
) -> Result<HashSet<String>, ApiError> {
    let keyed: Vec<(&str, Timestamp)> = entries
        .iter()
        .filter_map(|e| Some((text_field(e, "__CURSOR")?, entry_time(e)?)))
        .collect();
    let (Some(first), Some(last)) = (
        keyed.iter().map(|(_, ts)| *ts).min(),
        keyed.iter().map(|(_, ts)| *ts).max(),
    ) else {
        return Ok(HashSet::new());
    };
    let mut query = Query::newest_first()
        .within_domains(&[principal.write_domain(None, "domain_id")?])
        .since(first)
        .until(last)
        .with(Condition::In(
            Field::DataText("__CURSOR"),
            keyed
                .iter()
                .map(|(cursor, _)| Scalar::Text(cursor.to_string()))
                .collect(),
        ));
    query.limit = Some(keyed.len() as u64);
    let page = state.store.query(&query).await?;
    Ok(page
        .records
        .iter()
        .filter_map(|r| r.data.as_ref()?.get("__CURSOR")?.as_str())
        .map(str::to_string)
        .collect())
}

/// One entry's fields in the order they came, values as raw bytes.
type Entry = Vec<(String, Vec<u8>)>;

/// Reads the export format as it arrives, an entry at a time, holding at most one
/// incomplete entry (of at most the body limit) in memory.
pub(crate) struct ExportReader {
    buf: BytesMut,
    limit: usize,
    /// Entries read so far, to name the one at fault.
    read: usize,
    /// Entries handed to [`commit`] so far.
    committed: usize,
}

impl ExportReader {
    pub(crate) fn new(limit: usize) -> ExportReader {
        ExportReader {
            buf: BytesMut::new(),
            limit,
            read: 0,
            committed: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete entry, `None` if more bytes are needed (or, at `end`, if
    /// there are no more entries).
    pub(crate) fn next_entry(&mut self, end: bool) -> Result<Option<Entry>, ApiError> {
        let bad = |problem: String| ApiError::bad_request(format!("entry {}", self.read), problem);
        let mut entry: Entry = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if rest.is_empty() {
                if end && !entry.is_empty() {
                    break;
                }
                if end {
                    self.buf.clear();
                }
                return self.need_more(pos);
            }
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                if end {
                    return Err(bad("the last line has no newline".into()));
                }
                return self.need_more(self.buf.len());
            };
            let line = &rest[..newline];
            if line.is_empty() {
                pos += 1;
                if entry.is_empty() {
                    // Blank lines between entries.
                    self.buf.advance(pos);
                    pos = 0;
                    continue;
                }
                break;
            }
            if let Some(eq) = memchr::memchr(b'=', line) {
                let name = field_name(&line[..eq]).map_err(bad)?;
                entry.push((name, line[eq + 1..].to_vec()));
                pos += newline + 1;
                continue;
            }
            // A binary field: the name alone, then a little-endian u64 length.
            let name = field_name(line).map_err(bad)?;
            let after = &rest[newline + 1..];
            if after.len() < 8 {
                if end {
                    return Err(bad(format!("field {name} ends before its length")));
                }
                return self.need_more(self.buf.len());
            }
            let mut length = [0u8; 8];
            length.copy_from_slice(&after[..8]);
            let length = usize::try_from(u64::from_le_bytes(length)).unwrap_or(usize::MAX);
            if length > self.limit {
                return Err(too_large(self.limit));
            }
            let value = &after[8..];
            if value.len() <= length {
                if end {
                    return Err(bad(format!("field {name} is longer than the body")));
                }
                return self.need_more(self.buf.len());
            }
            if value[length] != b'\n' {
                return Err(bad(format!("field {name} is not followed by a newline")));
            }
            entry.push((name, value[..length].to_vec()));
            pos += newline + 1 + 8 + length + 1;
        }
        if pos > self.limit {
            return Err(too_large(self.limit));
        }
        self.buf.advance(pos);
        self.read += 1;
        Ok(Some(entry))
    }

    /// No complete entry yet: fine unless the incomplete one outgrows the limit.
    fn need_more(&self, buffered: usize) -> Result<Option<Entry>, ApiError> {
        if buffered > self.limit {
            return Err(too_large(self.limit));
        }
        Ok(None)
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::TooLarge,
        format!("holds a journal entry larger than the limit of {limit} bytes"),
    )
    .at("body")
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

pub(crate) fn entry_record(entry: Entry) -> Result<NewRecord, logbook_core::FieldError> {
    let mut shipped = Shipped::new();
    let text = |name: &str| {
        entry
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(ts) = entry_time(&entry) {
        shipped.ts(ts);
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

    /// Parses a whole export stream (what [`ExportReader`] reads piecemeal).
    fn parse_export(bytes: &[u8]) -> Result<Vec<Entry>, ApiError> {
        let mut reader = ExportReader::new(usize::MAX);
        reader.push(bytes);
        let mut entries = Vec::new();
        while let Some(entry) = reader.next_entry(true)? {
            entries.push(entry);
        }
        Ok(entries)
    }

    #[test]
    fn entries_are_read_as_they_arrive_whatever_the_chunks() {
        let mut body = b"A=1\n\n\nMESSAGE\n".to_vec();
        body.extend_from_slice(&4u64.to_le_bytes());
        body.extend_from_slice(b"x\n\ny\n\nB=2\n\nC=3\n");
        let whole = parse_export(&body).expect("parses");
        assert_eq!(whole.len(), 4, "A, MESSAGE, B, C");
        for split in 1..body.len() {
            let mut reader = ExportReader::new(1 << 20);
            let mut got = Vec::new();
            reader.push(&body[..split]);
            while let Some(entry) = reader.next_entry(false).expect("valid so far") {
                got.push(entry);
            }
            reader.push(&body[split..]);
            while let Some(entry) = reader.next_entry(true).expect("valid") {
                got.push(entry);
            }
            assert_eq!(got, whole, "split at {split}");
        }
        assert_eq!(whole[1], vec![("MESSAGE".to_string(), b"x\n\ny".to_vec())]);
    }

    #[test]
    fn an_entry_over_the_limit_is_refused_before_it_is_buffered() {
        let mut reader = ExportReader::new(100);
        reader.push(b"MESSAGE\n");
        reader.push(&(1u64 << 40).to_le_bytes());
        let err = reader.next_entry(false).expect_err("too large");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let mut reader = ExportReader::new(100);
        reader.push(&[b'A'; 101]);
        let err = reader.next_entry(false).expect_err("a line without end");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

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
            assert!(err.message().contains(problem), "{}", err.message());
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
