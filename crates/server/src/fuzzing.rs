//! The bodies of the fuzz targets in `fuzz/` (see docs/fuzzing.md), as plain
//! functions of the input bytes, so that `cargo test` replays every committed seed
//! and crash regression through the very code the fuzzer ran (tests below).
//!
//! Each function runs the parsers a client's bytes reach, and panics only when a
//! property fails: a panic inside a parser, an error that names no field, a fast
//! path that disagrees with the slow one, a round trip that does not return, a
//! record the store would refuse, a CSV cell a spreadsheet would evaluate.
//! Several parsers share a target, the first byte picking one, so that the six
//! targets cover every parser within an affordable run time.
//!
//! Compiled only for tests and with the `fuzzing` feature (the fuzz crate's).

use crate::error::ApiError;
use crate::params::Params;
use logbook_core::record::{MAX_TEXT_BYTES, TEXT_FIELD_NAMES};
use logbook_core::record_json::NdjsonReader;
use logbook_core::spreadsheet::{neutralise_formula, would_be_evaluated};
use logbook_core::{Cursor, FieldError, NewRecord, Timestamp};
use serde_json::Value;
use std::borrow::Cow;

/// A target's body: it panics only when a property fails.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 6] = [
    ("record_json", record_json),
    ("params", params),
    ("scalars", scalars),
    ("syslog", syslog),
    ("shippers", shippers),
    ("logql", logql),
];

/// A fixed "now", so that a replayed input behaves as it did under the fuzzer.
const NOW: Timestamp = Timestamp(1_764_547_200_000_000); // 2025-12-01T00:00:00Z

/// The first byte as a selector, and the rest.
fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, &[]),
    }
}

/// A refusal must say which field is at fault, and be the client's fault (4xx).
fn assert_named(e: &ApiError) {
    let field = e.field.as_deref().unwrap_or("");
    assert!(!field.is_empty(), "an error names no field: {e:?}");
    assert!(e.status().is_client_error(), "not a 4xx: {e:?}");
    assert!(!e.message().is_empty(), "an error without words: {e:?}");
}

fn assert_field_error(e: &FieldError) {
    assert!(!e.field.is_empty(), "an error names no field: {e:?}");
    assert!(!e.problem.is_empty(), "an error without words: {e:?}");
}

/// A record a parser produced is one the store takes: every text within the
/// limit and without NUL (what `NewRecord::from_json` checks of a client's).
fn assert_storable(record: &NewRecord) {
    let mut record = record.clone();
    for name in TEXT_FIELD_NAMES {
        if let Some(Some(text)) = record.text_field_mut(name) {
            assert!(text.len() <= MAX_TEXT_BYTES, "{name} too long");
            assert!(!text.contains('\0'), "{name} holds a NUL: {text:?}");
        }
    }
}

/// The record JSON parser (`NewRecord::from_json`), the direct reader of one
/// record (`record_json::parse_record`) and the NDJSON body reader of
/// `POST /logbook/v1/records` (`record_json::NdjsonReader`), whole and in chunks.
pub fn record_json(data: &[u8]) {
    let whole = NdjsonReader::read_all(data);
    if let Err(e) = &whole {
        assert_field_error(e);
    }
    // The same body in chunks cut where the input says: the same answer.
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut chunked = NdjsonReader::default();
    for part in [&data[..cut], &data[cut..]] {
        for piece in part.chunks(7) {
            chunked.push(piece);
        }
    }
    assert_eq!(
        chunked.finish(),
        whole,
        "the NDJSON reader depends on chunking"
    );
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One record: the direct reader may decline, but never disagrees.
    let slow = serde_json::from_str::<Value>(text).map(NewRecord::from_json);
    if let Ok(Err(e)) = &slow {
        assert_field_error(e);
    }
    if let Ok(Ok(record)) = &slow {
        assert_storable(record);
    }
    if let Some(fast) = logbook_core::record_json::parse_record(text) {
        match &slow {
            Ok(Ok(record)) => assert_eq!(&fast, record, "parse_record and from_json differ"),
            other => panic!("parse_record took what from_json refuses: {other:?}"),
        }
    }
    // NDJSON: each record the reader made is the one the `Value` way makes of its
    // line (so the direct path never changes a record).
    if let Ok(records) = &whole {
        let lines = text.lines().filter(|line| !line.trim().is_empty());
        for (record, line) in records.iter().zip(lines) {
            let slow = serde_json::from_str::<Value>(line).map(NewRecord::from_json);
            match slow {
                Ok(Ok(slow)) => assert_eq!(record, &slow, "the NDJSON paths differ: {line}"),
                other => panic!("the NDJSON reader took a line refused with {other:?}"),
            }
            assert_storable(record);
        }
    }
}

/// Every API's query-string parsing: the native listing (strict and lenient) and
/// each dialect's listing. A refusal names the parameter.
pub fn params(data: &[u8]) {
    let (which, rest) = split(data);
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let raw = Some(raw);
    let result = match which % 7 {
        0 => Params::strict(raw).and_then(|p| crate::native::filters::page_query(&p).map(drop)),
        1 => Params::parse(raw).and_then(|p| crate::native::filters::page_query(&p).map(drop)),
        n => crate::dialects::parse_query(n - 2, raw),
    };
    if let Err(e) = result {
        assert_named(&e);
    }
}

/// Timestamps (every form `Timestamp::parse` reads, the BSD syslog form, the
/// dialects' lenient dates, durations), cursors, and the CSV encoder.
pub fn scalars(data: &[u8]) {
    let (which, rest) = split(data);
    match which % 6 {
        0 => timestamp_text(rest),
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Some(ts) = Timestamp::from_bsd_syslog(text, NOW) {
                    renders(ts);
                }
                let _ = logbook_core::time::parse_duration(text);
                match crate::params::parse_date("since", text) {
                    Ok(ts) => renders(ts),
                    Err(e) => assert_named(&e),
                }
            }
        }
        2 => cursor(rest),
        3 => csv(rest),
        4 => {
            // Any i64 as micros, any f64 as epoch seconds: in range, it renders and
            // its text reads back; out of range, it is refused, not wrapped.
            let mut word = [0u8; 8];
            for (slot, byte) in word.iter_mut().zip(rest) {
                *slot = *byte;
            }
            if let Some(ts) = Timestamp::from_micros(i64::from_le_bytes(word)) {
                renders(ts);
            }
            if let Some(ts) = Timestamp::from_epoch_seconds(f64::from_le_bytes(word)) {
                renders(ts);
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = crate::dialects::loki::logql::lexer::parse_duration(text);
                let _ = crate::dialects::loki::logql::lexer::parse_bytes(text);
            }
        }
    }
}

fn timestamp_text(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(ts) = Timestamp::parse(text) {
        renders(ts);
    }
}

/// A timestamp renders in every form, and its RFC 3339 and epoch forms read back.
fn renders(ts: Timestamp) {
    let text = ts.rfc3339();
    assert_eq!(
        Timestamp::parse(&text),
        Some(ts),
        "{text} does not read back"
    );
    assert_eq!(
        Timestamp::parse(&ts.iso8601_offset()),
        Some(ts),
        "{} does not read back",
        ts.iso8601_offset()
    );
    let _ = (ts.space_separated_micros(), ts.iso_seconds_naive());
    let _ = (ts.epoch_seconds(), ts.epoch_seconds_f64());
    let seconds = ts.rfc2822();
    let whole = Timestamp(ts.0.div_euclid(1_000_000) * 1_000_000);
    assert_eq!(Timestamp::parse(&seconds), Some(whole), "{seconds}");
}

fn cursor(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        match Cursor::decode(text) {
            Ok(c) => {
                assert!(c.0 >= 0, "a negative cursor decoded");
                assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
            }
            Err(e) => {
                assert_field_error(&e);
                assert_eq!(e.field, "cursor");
            }
        }
    }
    let mut word = [0u8; 8];
    for (slot, byte) in word.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    let id = i64::from_le_bytes(word).checked_abs().unwrap_or(0);
    assert_eq!(Cursor::decode(&Cursor(id).encode()).ok(), Some(Cursor(id)));
}

/// Cells (split at 0x1F) in rows of three: the encoded CSV reads back with an RFC
/// 4180 reader as the cells neutralised, and no cell read back would be evaluated.
fn csv(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let cells: Vec<&str> = text.split('\u{1f}').collect();
    let rows: Vec<Vec<Cow<'_, str>>> = cells
        .chunks(3)
        .map(|row| {
            let mut row: Vec<Cow<'_, str>> = row.iter().map(|c| Cow::Borrowed(*c)).collect();
            row.resize(3, Cow::Borrowed(""));
            row
        })
        .collect();
    let expected: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| neutralise_formula(c).into_owned())
                .collect()
        })
        .collect();
    let encoded = crate::csv_export::encode_rows(rows.into_iter());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&encoded[..]);
    let read: Vec<Vec<String>> = reader
        .records()
        .map(|r| match r {
            Ok(r) => r.iter().map(str::to_string).collect(),
            Err(e) => panic!("the CSV does not read back: {e}"),
        })
        .collect();
    assert_eq!(read, expected, "the CSV reads back otherwise");
    for cell in read.iter().flatten() {
        assert!(!would_be_evaluated(cell), "{cell:?} would be evaluated");
    }
}

/// RFC 3164 and 5424 messages (first byte: truncated or not), and the TCP
/// framing (RFC 6587), whose frames must not depend on how the stream was cut.
pub fn syslog(data: &[u8]) {
    use crate::protocols::syslog::framing::Framer;
    use crate::protocols::syslog::parse;
    let (which, rest) = split(data);
    if which % 2 == 0 {
        assert_storable(&parse::record(rest, which % 4 == 2, NOW));
        return;
    }
    let frames = |cut: usize| {
        let mut framer = Framer::default();
        let mut frames = Vec::new();
        for chunk in rest.chunks(cut.max(1)) {
            framer.buf.extend_from_slice(chunk);
            while let Some(frame) = framer.next_frame() {
                frames.push(frame);
            }
        }
        frames.extend(framer.finish());
        frames
    };
    let whole = frames(rest.len());
    let cut = frames(usize::from(which >> 1) % 16 + 1);
    assert_eq!(whole, cut, "the frames depend on the chunks");
    for frame in whole {
        assert!(frame.bytes.len() <= crate::protocols::syslog::MAX_FRAME);
        assert_storable(&parse::record(&frame.bytes, frame.truncated, NOW));
    }
}

/// The shippers' body parsers: OTLP/JSON, OTLP protobuf, Loki push JSON and
/// protobuf (and snappy), Elasticsearch bulk, the journald export format.
pub fn shippers(data: &[u8]) {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message;
    let (which, rest) = split(data);
    let records = match which % 7 {
        0 => match serde_json::from_slice::<ExportLogsServiceRequest>(rest) {
            Ok(request) => Ok(otlp(request)),
            Err(_) => return,
        },
        1 => match ExportLogsServiceRequest::decode(rest) {
            Ok(request) => Ok(otlp(request)),
            Err(_) => return,
        },
        2 => crate::protocols::loki_push::json_records(rest),
        3 => crate::protocols::loki_push::protobuf_records(rest),
        4 => crate::body::decompress_snappy(rest, 1 << 20)
            .and_then(|bytes| crate::protocols::loki_push::protobuf_records(&bytes)),
        5 => crate::protocols::elastic::parse_bulk(rest, Some("logs".into()))
            .map(|(_, records)| records.into_iter().map(|(_, r)| r).collect()),
        _ => journald(rest),
    };
    match records {
        Ok(records) => records.iter().for_each(assert_storable),
        Err(e) => assert_named(&e),
    }
}

fn otlp(
    request: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
) -> Vec<NewRecord> {
    let (records, refused) = crate::protocols::otlp::request_records(request);
    for reason in refused {
        assert!(reason.contains("logRecords["), "{reason}");
    }
    records
}

/// The export format read whole and read in pieces gives the same entries.
fn journald(bytes: &[u8]) -> Result<Vec<NewRecord>, ApiError> {
    use crate::protocols::journald::{entry_record, ExportReader};
    let read = |cut: usize| {
        let mut reader = ExportReader::new(1 << 16);
        let mut entries = Vec::new();
        for chunk in bytes.chunks(cut.max(1)) {
            reader.push(chunk);
            while let Some(entry) = reader.next_entry(false)? {
                entries.push(entry);
            }
        }
        while let Some(entry) = reader.next_entry(true)? {
            entries.push(entry);
        }
        Ok::<_, ApiError>(entries)
    };
    let whole = read(bytes.len());
    let cut = read(7);
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the entries depend on the chunks"),
        (Err(a), Err(b)) => assert_eq!(a.describe(), b.describe()),
        _ => panic!("whole {whole:?} but in pieces {cut:?}"),
    }
    let mut records = Vec::new();
    for entry in whole? {
        match entry_record(entry) {
            Ok(record) => records.push(record),
            Err(e) => assert_field_error(&e),
        }
    }
    Ok(records)
}

/// The LogQL parser; a query it reads prints as one it reads back the same, and
/// plans without panicking.
pub fn logql(data: &[u8]) {
    use crate::dialects::loki::logql;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = logql::parse(text) else {
        return;
    };
    let printed = expr.to_string();
    match logql::parse(&printed) {
        Ok(again) => assert_eq!(again, expr, "{text:?} prints as {printed:?}"),
        // The printed form parenthesises every operation, so it may nest deeper
        // than the limit a query within it reached.
        Err(e) if e.to_string().contains("nests deeper") => {}
        Err(e) => panic!("{text:?} prints as {printed:?}, which does not parse: {e}"),
    }
    crate::dialects::loki::plan_for_fuzzing(&expr);
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Replays every committed seed (`fuzz/corpus/<target>/`) and crash regression
    /// (`fuzz/regressions/<target>/`) through its target.
    #[test]
    fn the_committed_corpora_and_regressions_replay_cleanly() {
        let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut replayed = 0;
        for (name, target) in super::TARGETS {
            for kind in ["corpus", "regressions"] {
                let dir = fuzz.join(kind).join(name);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    assert!(kind == "regressions", "no seed corpus in {}", dir.display());
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("a readable directory").path();
                    let bytes = std::fs::read(&path).expect("a readable file");
                    let outcome = std::panic::catch_unwind(|| target(&bytes));
                    assert!(outcome.is_ok(), "{} fails", path.display());
                    replayed += 1;
                }
            }
        }
        assert!(
            replayed >= super::TARGETS.len() * 3,
            "only {replayed} files"
        );
    }
}
