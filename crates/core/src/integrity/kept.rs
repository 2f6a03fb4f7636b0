//! What a store keeps of a leaf. A leaf whose record is present can be recomputed
//! from the record, so for the leaves of complete chunks of [`CHUNK`] leaves the
//! store keeps only a short fingerprint per leaf and the chunk's root
//! (docs/integrity.md, "What is stored"): the root is what detects a change and
//! what proofs and checkpoints are built from; the fingerprint only says which
//! record of the chunk changed. A removed record's leaf cannot be recomputed, so
//! it is kept whole.

use super::merkle::Hash;

/// Leaves per chunk: the unit whose root the store keeps (and the tree caches).
pub const CHUNK: u64 = 1024;

/// Bytes of a leaf kept as its fingerprint: the first bytes of the leaf hash. Two
/// bytes miss a change of a record with probability 2^-16; a miss is still caught
/// by the chunk's root, which then names the chunk instead of the record. Two, not
/// four: the fingerprint detects nothing on its own (the root does), and the two
/// bytes saved a record were what kept the disk at 10M records above 40 B.
pub const FINGERPRINT_BYTES: usize = 2;

pub type Fingerprint = [u8; FINGERPRINT_BYTES];

pub fn fingerprint(hash: &Hash) -> Fingerprint {
    let mut out = [0; FINGERPRINT_BYTES];
    out.copy_from_slice(&hash[..FINGERPRINT_BYTES]);
    out
}

/// A stored leaf: the whole hash, or its fingerprint where the record's content
/// is what the hash is recomputed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Hash(Hash),
    Fingerprint(Fingerprint),
}

impl Kept {
    /// Whether `hash` (computed from a record) is what was kept.
    pub fn matches(&self, hash: &Hash) -> bool {
        match self {
            Kept::Hash(kept) => kept == hash,
            Kept::Fingerprint(kept) => *kept == fingerprint(hash),
        }
    }

    /// The whole hash, if kept.
    pub fn hash(&self) -> Option<Hash> {
        match self {
            Kept::Hash(hash) => Some(*hash),
            Kept::Fingerprint(_) => None,
        }
    }
}
