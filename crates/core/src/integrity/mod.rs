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
    // Serialising a tree of JSON values cannot fail: every key is a string and
    // every number came from JSON.
    serde_json_canonicalizer::to_vec(&record.to_json()).unwrap_or_default()
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
