//! Tamper evidence: every record is a leaf of one Merkle tree in id order (RFC 9162),
//! signed checkpoints of the tree's root chain each to the one before, and proofs
//! let anyone check a record or a tree's history without trusting the server.
//! The canonical form of a record, which the leaf hashes, is versioned: see
//! `docs/integrity.md`.

pub mod checkpoint;
pub mod merkle;
pub mod verify;

use crate::record::Record;
pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use merkle::Hash;

/// The version of [`canonical_form`] (documented in `docs/integrity.md`). A change to
/// what a record's JSON renders is a new version, never a silent change.
pub const CANONICAL_FORM_VERSION: u32 = 1;

/// RFC 8785 (JCS) of the JSON object `GET /logbook/v1/records/{id}` renders.
pub fn canonical_form(record: &Record) -> Vec<u8> {
    let value = record.to_json();
    if is_plain(&value) {
        let mut out = Vec::with_capacity(512);
        write_plain(&value, &mut out);
        return out;
    }
    // Serialising a tree of JSON values cannot fail: every key is a string and
    // every number came from JSON.
    serde_json_canonicalizer::to_vec(&value).unwrap_or_default()
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
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
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

/// The leaf hash of a record: SHA-256(0x00 || canonical form).
pub fn leaf_hash(record: &Record) -> Hash {
    merkle::leaf_hash(&canonical_form(record))
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
