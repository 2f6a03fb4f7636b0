//! Tamper evidence: every record is a leaf of one Merkle tree in id order (RFC 9162),
//! signed checkpoints of the tree's root chain each to the one before, and proofs
//! let anyone check a record or a tree's history without trusting the server.
//! The canonical form of a record, which the leaf hashes, is versioned: see
//! `docs/integrity.md`.

pub mod checkpoint;
pub mod kept;
pub mod merkle;
pub mod verify;

use crate::record::Record;
pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use kept::{fingerprint, Fingerprint, Kept, CHUNK, FINGERPRINT_BYTES};
pub use merkle::Hash;
use std::io::Write;

/// The version of [`canonical_form`] (documented in `docs/integrity.md`). A change to
/// what a record's JSON renders is a new version, never a silent change.
pub const CANONICAL_FORM_VERSION: u32 = 1;

/// RFC 8785 (JCS) of the JSON object `GET /logbook/v1/records/{id}` renders.
pub fn canonical_form(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_canonical(record, &mut out);
    out
}

/// Where a top-level key of [`Record::to_json`] takes its value from.
#[derive(Clone, Copy)]
enum Slot {
    Id,
    Ts,
    Kind,
    Level,
    Data,
    /// An index into [`Record::text_fields`].
    Text(usize),
}

/// Every key [`Record::to_json`] can render, in JCS order (all ASCII, so byte
/// order): the record is written straight from its fields in this order, without
/// building a `serde_json::Value` or sorting (ingest hashes every record).
const ORDER: [(&str, Slot); 21] = [
    ("action", Slot::Text(10)),
    ("category", Slot::Text(0)),
    ("data", Slot::Data),
    ("domain_id", Slot::Text(6)),
    ("id", Slot::Id),
    ("instance", Slot::Text(2)),
    ("kind", Slot::Kind),
    ("level", Slot::Level),
    ("logger", Slot::Text(3)),
    ("message", Slot::Text(15)),
    ("object_id", Slot::Text(9)),
    ("object_type", Slot::Text(8)),
    ("parent_request_id", Slot::Text(14)),
    ("project_id", Slot::Text(7)),
    ("request_id", Slot::Text(13)),
    ("response_code", Slot::Text(12)),
    ("source", Slot::Text(1)),
    ("status", Slot::Text(11)),
    ("ts", Slot::Ts),
    ("user", Slot::Text(4)),
    ("user_id", Slot::Text(5)),
];

/// Appends the canonical form of `record` to `out`.
pub fn write_canonical(record: &Record, out: &mut Vec<u8>) {
    if write_plain_form(record, Some(record.id), out).is_none() {
        // Serialising a tree of JSON values cannot fail: every key is a string and
        // every number came from JSON.
        let jcs = serde_json_canonicalizer::to_vec(&record.to_json()).unwrap_or_default();
        out.extend_from_slice(&jcs);
    }
}

/// Appends the canonical form of `record` to `out` with the digits of its id left
/// out, and answers where they go: everything of the form but the id, which the
/// store's writer assigns at commit, can so be written before the record reaches
/// it (see [`leaf_hash_with_id`]). `None`, with nothing written, for a record whose
/// `data` the canonicalizer has to write (see `is_plain`).
pub fn write_canonical_without_id(record: &Record, out: &mut Vec<u8>) -> Option<usize> {
    write_plain_form(record, None, out)
}

/// The canonical form of a record whose `data` needs no canonicalizer, with `id`'s
/// digits (none when `None`) where the id goes; answers where that is, or `None`,
/// with nothing written, when the canonicalizer has to write the form.
fn write_plain_form(record: &Record, id: Option<i64>, out: &mut Vec<u8>) -> Option<usize> {
    let plain = record.data.as_ref().is_none_or(|data| {
        data.iter()
            .all(|(k, v)| k.chars().all(|c| c < '\u{E000}') && is_plain(v))
    });
    if !plain {
        return None;
    }
    let mut id_at = out.len();
    let texts = record.text_fields();
    out.push(b'{');
    let mut first = true;
    for (name, slot) in ORDER {
        let present = match slot {
            Slot::Id | Slot::Ts | Slot::Kind => true,
            Slot::Level => record.level.is_some(),
            Slot::Data => record.data.is_some(),
            Slot::Text(i) => texts[i].1.is_some(),
        };
        if !present {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match slot {
            Slot::Id => {
                id_at = out.len();
                if let Some(id) = id {
                    out.extend_from_slice(IdDigits::new().of(id));
                }
            }
            Slot::Ts => write_ts(record.ts, out),
            Slot::Kind => write_ascii(record.kind.name(), out),
            Slot::Level => {
                if let Some(level) = record.level {
                    write_ascii(level.name(), out);
                }
            }
            Slot::Data => {
                if let Some(data) = &record.data {
                    write_object(data, out);
                }
            }
            Slot::Text(i) => {
                if let Some(text) = texts[i].1 {
                    let _ = serde_json::to_writer(&mut *out, text);
                }
            }
        }
    }
    out.push(b'}');
    Some(id_at)
}

/// The decimal digits of an id, written without allocating.
struct IdDigits([u8; 20]);

impl IdDigits {
    fn new() -> IdDigits {
        IdDigits([0; 20])
    }

    fn of(&mut self, id: i64) -> &[u8] {
        let mut cursor = std::io::Cursor::new(&mut self.0[..]);
        // 20 bytes hold every i64 ("-9223372036854775808").
        let _ = write!(cursor, "{id}");
        let len = cursor.position() as usize;
        &self.0[..len]
    }
}

/// The leaf hash of a record whose canonical form without its id is `form`, the
/// id's digits going at `id_at` (from [`write_canonical_without_id`]): the same as
/// [`leaf_hash`] of the record numbered `id`.
pub fn leaf_hash_with_id(form: &[u8], id_at: usize, id: i64) -> Hash {
    let (head, tail) = form.split_at(id_at.min(form.len()));
    let mut digits = IdDigits::new();
    merkle::leaf_hash_of_parts(&[head, digits.of(id), tail])
}

/// A string known to need no escaping (a kind's or level's name).
fn write_ascii(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// `Timestamp::rfc3339` (`2024-05-01T10:00:00.123456Z`) without chrono's
/// formatting machinery and its `String`, for years 1970 to 9999; others go through
/// `rfc3339` itself.
fn write_ts(ts: crate::time::Timestamp, out: &mut Vec<u8>) {
    const LIMIT: i64 = 253_402_300_800_000_000; // 10000-01-01T00:00:00Z
    if !(0..LIMIT).contains(&ts.0) {
        let _ = serde_json::to_writer(&mut *out, &ts.rfc3339());
        return;
    }
    let micros = ts.0 % 1_000_000;
    let secs = ts.0 / 1_000_000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "\"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z\"",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    );
}

/// Whether JCS of `value` is plain JSON with sorted keys, which is most records:
/// no floating-point number (JCS writes those as ECMAScript does, serde_json does
/// not), no integer beyond 2^53 (JCS writes it as the nearest double), and no key
/// with a character from U+E000 up (JCS sorts keys by UTF-16 units, which differ
/// from code point order only there). Everything else goes through the
/// `serde_json_canonicalizer` crate; this path is the hashing's speed at ingest.
fn is_plain(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    const EXACT: u64 = 1 << 53;
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => {
            n.as_u64().is_some_and(|u| u <= EXACT)
                || n.as_i64().is_some_and(|i| i.unsigned_abs() <= EXACT)
        }
        Value::Array(items) => items.iter().all(is_plain),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| k.chars().all(|c| c < '\u{E000}') && is_plain(v)),
    }
}

/// JCS of a plain value: serde_json's escaping of strings is JCS's (short forms
/// for `\b \t \n \f \r`, lower-case `\u00xx` for other controls, nothing else).
fn write_plain(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_plain(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// JCS of a plain object: keys sorted (by bytes, which is JCS's order for plain keys).
fn write_object(map: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        write_plain(item, out);
    }
    out.push(b'}');
}

/// The leaf hash of a record: SHA-256(0x00 || canonical form).
pub fn leaf_hash(record: &Record) -> Hash {
    // One buffer per thread: hashing millions of records (ingest, verify) then
    // allocates nothing per record.
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
    }
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut out) => {
            out.clear();
            write_canonical(record, &mut out);
            merkle::leaf_hash(&out)
        }
        Err(_) => merkle::leaf_hash(&canonical_form(record)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Kind, NewRecord};
    use crate::time::Timestamp;

    #[test]
    fn the_plain_path_writes_what_the_canonicalizer_writes() {
        let values = [
            serde_json::json!({"z": 1, "a": [true, null, -5, 9007199254740992_u64], "m": {"é": "\u{1}\u{8}\t\n\u{c}\r\"\\/\u{7f}", "E": ""}}),
            serde_json::json!({"\u{ffff}": 1, "\u{10000}": 2, "x": 1.5, "big": 18446744073709551615_u64, "neg": -9007199254740993_i64}),
            serde_json::json!({"f": 1e22, "g": 0.001, "h": -0.0, "k": 100.0}),
        ];
        for value in &values {
            let mut data = serde_json::Map::new();
            data.insert("v".into(), value.clone());
            let record = NewRecord {
                kind: Some(Kind::Event),
                message: Some("Ünïcode ✓ \u{1F600} \u{2028}".into()),
                source: Some("a\u{0}b".into()),
                data: Some(data),
                ..NewRecord::default()
            }
            .into_record(42, Timestamp(1_700_000_000_123_456));
            let expected = serde_json_canonicalizer::to_vec(&record.to_json()).expect("jcs");
            assert_eq!(
                String::from_utf8(canonical_form(&record)).expect("utf-8"),
                String::from_utf8(expected).expect("utf-8")
            );
        }
        assert!(is_plain(&values[0]));
        assert!(!is_plain(&values[1]) && !is_plain(&values[2]));
    }

    #[test]
    fn the_key_order_is_sorted_and_names_every_rendered_field() {
        let names: Vec<&str> = ORDER.iter().map(|(name, _)| *name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for (name, slot) in ORDER {
            if let Slot::Text(i) = slot {
                assert_eq!(crate::record::TEXT_FIELD_NAMES[i], name);
            }
        }
        let mut rendered: Vec<String> = full_record(1, Timestamp(0))
            .to_json()
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        rendered.sort_unstable();
        assert_eq!(rendered, sorted);
    }

    /// A record with every field set.
    fn full_record(id: i64, ts: Timestamp) -> Record {
        let mut record = NewRecord::new(Kind::Journal).into_record(id, ts);
        record.level = Some(crate::Level::Warn);
        for (i, name) in crate::record::TEXT_FIELD_NAMES.iter().enumerate() {
            let value = Some(format!("{name} \"{i}\" \u{1}é"));
            match *name {
                "category" => record.category = value,
                "source" => record.source = value,
                "instance" => record.instance = value,
                "logger" => record.logger = value,
                "user" => record.user = value,
                "user_id" => record.user_id = value,
                "domain_id" => record.domain_id = value,
                "project_id" => record.project_id = value,
                "object_type" => record.object_type = value,
                "object_id" => record.object_id = value,
                "action" => record.action = value,
                "status" => record.status = value,
                "response_code" => record.response_code = value,
                "request_id" => record.request_id = value,
                "parent_request_id" => record.parent_request_id = value,
                "message" => record.message = value,
                other => panic!("a text field the test does not set: {other}"),
            }
        }
        record.data = serde_json::json!({"b": [1, {"y": null, "x": "é"}], "a": true})
            .as_object()
            .cloned();
        record
    }

    #[test]
    fn the_direct_writer_writes_what_the_canonicalizer_writes() {
        let stamps = [
            0,
            1,
            999_999,
            951_782_400_000_000,   // 2000-02-29
            4_107_542_399_999_999, // 2100-02-28T23:59:59.999999
            1_700_000_000_123_456,
            253_402_300_799_999_999, // the last microsecond of 9999
            253_402_300_800_000_000,
            -1,
            i64::MIN,
            i64::MAX,
        ];
        let days = (0..2_932_897_i64)
            .step_by(997)
            .map(|d| d * 86_400_000_000 + d * 7);
        for (n, micros) in stamps.into_iter().chain(days).enumerate() {
            let ts = Timestamp(micros);
            let mut full = full_record(n as i64 - 5, ts);
            let bare = NewRecord::new(Kind::Log).into_record(n as i64, ts);
            for record in [&full, &bare] {
                let expected = serde_json_canonicalizer::to_vec(&record.to_json()).expect("jcs");
                assert_eq!(
                    String::from_utf8(canonical_form(record)).expect("utf-8"),
                    String::from_utf8(expected).expect("utf-8"),
                    "at {micros}"
                );
            }
            full.data = None;
            full.level = None;
            let expected = serde_json_canonicalizer::to_vec(&full.to_json()).expect("jcs");
            assert_eq!(canonical_form(&full), expected);
            assert_eq!(leaf_hash(&full), merkle::leaf_hash(&expected));
        }
    }

    #[test]
    fn a_form_written_without_its_id_hashes_as_the_numbered_record() {
        let records = [
            full_record(0, Timestamp(1_700_000_000_123_456)),
            NewRecord::new(Kind::Log).into_record(0, Timestamp(0)),
        ];
        for record in records {
            let mut form = Vec::new();
            let id_at = write_canonical_without_id(&record, &mut form).expect("plain");
            for id in [1, 9, 10, 4_294_967_296, i64::MAX, -3] {
                let numbered = Record {
                    id,
                    ..record.clone()
                };
                assert_eq!(leaf_hash_with_id(&form, id_at, id), leaf_hash(&numbered));
            }
        }
        let mut data = serde_json::Map::new();
        data.insert("x".into(), serde_json::json!(1.5));
        let float = NewRecord {
            data: Some(data),
            ..NewRecord::new(Kind::Log)
        }
        .into_record(1, Timestamp(0));
        let mut form = Vec::new();
        assert_eq!(write_canonical_without_id(&float, &mut form), None);
        assert!(
            form.is_empty(),
            "nothing is written for the canonicalizer's records"
        );
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_has_no_whitespace() {
        let mut data = serde_json::Map::new();
        data.insert("z".into(), 1.into());
        data.insert("a".into(), "é\u{1}".into());
        let record = NewRecord {
            kind: Some(Kind::Log),
            message: Some("hi".into()),
            data: Some(data),
            ..NewRecord::default()
        }
        .into_record(7, Timestamp(1_500_000));
        assert_eq!(
            String::from_utf8(canonical_form(&record)).expect("utf-8"),
            r#"{"data":{"a":"é\u0001","z":1},"id":7,"kind":"log","message":"hi","ts":"1970-01-01T00:00:01.500000Z"}"#
        );
    }
}
