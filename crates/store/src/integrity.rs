//! What the store keeps for tamper evidence (docs/integrity.md): the leaf hash of
//! every record, written in the transaction that writes the record; the stretches of
//! records removed with their leaves kept; the signed checkpoints; a few settings.
//! Both stores keep leaves as *runs*: one row per appended batch holding the
//! batch's first leaf index, its first record id and the concatenated 32-byte
//! hashes (ids within a run are consecutive), so hashing costs one insert per
//! batch, as the records themselves do.

use crate::Result;
use async_trait::async_trait;
use logbook_core::integrity::{leaf_hash, Hash, SignedCheckpoint};
use logbook_core::{Record, Timestamp};

/// One leaf of the tree: its position, the record it hashes, the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub index: u64,
    pub id: i64,
    pub hash: Hash,
}

/// A stretch of consecutive removed record ids: their leaves stay in the tree, their
/// content is gone, and `journal_id` is the record that says who removed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovedRange {
    pub first_id: i64,
    pub last_id: i64,
    pub removed_at: Timestamp,
    pub journal_id: i64,
}

/// What a removal took, for the journal entry that records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removal {
    pub count: u64,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
}

impl Removal {
    pub fn of(ids: &[i64]) -> Removal {
        Removal {
            count: ids.len() as u64,
            first_id: ids.iter().min().copied(),
            last_id: ids.iter().max().copied(),
        }
    }
}

/// The leaves, removals, checkpoints and settings of the integrity scheme.
#[async_trait]
pub trait IntegrityStore: Send + Sync {
    /// Leaves in the tree.
    async fn tree_size(&self) -> Result<u64>;
    /// The leaves with index in `start..end`, in index order.
    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<Leaf>>;
    /// The leaf of record `id`, if it has one.
    async fn leaf_of(&self, id: i64) -> Result<Option<Leaf>>;
    /// Removed stretches with `first_id > after`, in id order, at most `limit`.
    async fn removed(&self, after: i64, limit: u64) -> Result<Vec<RemovedRange>>;
    /// The removed stretch holding `id`, if it was removed.
    async fn removal_of(&self, id: i64) -> Result<Option<RemovedRange>>;
    /// Stores `checkpoint` if it extends the stored chain (its `previous` is the
    /// digest of the newest stored one, or `None` and none is stored); false if
    /// another node extended the chain first.
    async fn add_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<bool>;
    /// The newest `limit` checkpoints, newest first.
    async fn checkpoints(&self, limit: u64) -> Result<Vec<SignedCheckpoint>>;
    /// The checkpoint of exactly `tree_size` leaves, if one was signed.
    async fn checkpoint_of_size(&self, tree_size: u64) -> Result<Option<SignedCheckpoint>>;
    /// A small persistent value (the public key, the last verify result, ...).
    async fn integrity_setting(&self, key: &str) -> Result<Option<String>>;
    async fn set_integrity_setting(&self, key: &str, value: &str) -> Result<()>;
}

/// A run of leaves: the first record id and the hashes, ids consecutive.
pub type Run = (i64, Vec<u8>);

/// The runs of `records` (in id order): split wherever ids are not consecutive.
pub fn runs(records: &[Record]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut next = None;
    for record in records {
        let hash = leaf_hash(record);
        match runs.last_mut() {
            Some((_, hashes)) if next == Some(record.id) => hashes.extend_from_slice(&hash),
            _ => runs.push((record.id, hash.to_vec())),
        }
        next = Some(record.id + 1);
    }
    runs
}

/// The leaves of a stored run that fall in `start..end`.
pub fn leaves_of_run(
    first_index: u64,
    first_id: i64,
    hashes: &[u8],
    start: u64,
    end: u64,
) -> impl Iterator<Item = Leaf> + '_ {
    hashes
        .chunks_exact(32)
        .enumerate()
        .filter_map(move |(i, chunk)| {
            let index = first_index + i as u64;
            let hash: Hash = chunk.try_into().ok()?;
            (start..end).contains(&index).then_some(Leaf {
                index,
                id: first_id + i as i64,
                hash,
            })
        })
}

/// The stretches of consecutive ids in `ids` (sorted here).
pub fn stretches(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for id in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => out.push((id, id)),
        }
    }
    out
}

/// Whether `checkpoint` may follow `newest` in the chain.
pub fn extends(newest: Option<&SignedCheckpoint>, checkpoint: &SignedCheckpoint) -> bool {
    match newest {
        None => checkpoint.checkpoint.previous.is_none(),
        Some(newest) => {
            checkpoint.checkpoint.previous == Some(newest.checkpoint.digest())
                && checkpoint.checkpoint.tree_size >= newest.checkpoint.tree_size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::{Kind, NewRecord};

    #[test]
    fn runs_split_at_gaps_and_stretches_merge_neighbours() {
        let records: Vec<Record> = [1, 2, 3, 7, 8]
            .iter()
            .map(|id| NewRecord::new(Kind::Log).into_record(*id, Timestamp(0)))
            .collect();
        let runs = runs(&records);
        assert_eq!(
            runs.iter()
                .map(|(id, h)| (*id, h.len() / 32))
                .collect::<Vec<_>>(),
            [(1, 3), (7, 2)]
        );
        let leaves: Vec<Leaf> = leaves_of_run(10, 7, &runs[1].1, 11, 20).collect();
        assert_eq!(leaves.len(), 1);
        assert_eq!((leaves[0].index, leaves[0].id), (11, 8));
        assert_eq!(leaves[0].hash, leaf_hash(&records[4]));
        assert_eq!(stretches(&[9, 3, 4, 5, 11, 10]), [(3, 5), (9, 11)]);
    }
}
