//! What the store keeps for tamper evidence (docs/integrity.md): the leaf hash of
//! every record, written in the transaction that writes the record; the stretches of
//! records removed with their leaves kept; the signed checkpoints; a few settings.
//! Both stores keep leaves as *runs*: one row per appended batch holding the
//! batch's first leaf index, its first record id and the concatenated 32-byte
//! hashes (ids within a run are consecutive), so hashing costs one insert per
//! batch, as the records themselves do.
//!
//! A leaf of a present record can be recomputed from the record, so runs last only
//! until their chunk of [`CHUNK`] leaves is complete: in the transaction that
//! completes it (the append's on the embedded store, the placing one on
//! PostgreSQL) the chunk becomes one [`KeptChunk`] (its root, its ids and a
//! 2-byte fingerprint per leaf) and its runs go, so a record costs 2 bytes of
//! leaf instead of 32. The leaves of removed records cannot be recomputed: they
//! are kept whole (`removed_leaves`), copied out by the compaction if the record
//! went before, or by the removal if after. `leaves`/`leaf_of` give whole hashes
//! (recomputed from the records where only a fingerprint is kept: [`recomputed_leaves`]);
//! `stored_leaves` gives what is kept, for `verify`.

use crate::{RecordStore, Result, StoreError};
use async_trait::async_trait;
pub use logbook_core::integrity::{fingerprint, Kept, CHUNK, FINGERPRINT_BYTES};
use logbook_core::integrity::{leaf_hash, merkle::root_of, Hash, SignedCheckpoint};
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{Query, Record, Timestamp};
use std::collections::HashMap;

/// One leaf of the tree: its position, the record it hashes, the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub index: u64,
    pub id: i64,
    pub hash: Hash,
}

/// A leaf as the store keeps it (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLeaf {
    pub index: u64,
    pub id: i64,
    pub kept: Kept,
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
    /// The leaves with index in `start..end`, in index order, with whole hashes
    /// (recomputed from the records where the store keeps fingerprints).
    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<Leaf>>;
    /// The leaf of record `id`, if it has one, with its whole hash.
    async fn leaf_of(&self, id: i64) -> Result<Option<Leaf>>;
    /// The leaves with index in `start..end` as kept, in index order.
    async fn stored_leaves(&self, start: u64, end: u64) -> Result<Vec<StoredLeaf>>;
    /// The kept roots of chunks `first..first + count` (fewer: only as far as
    /// chunks are kept).
    async fn chunk_roots(&self, first: u64, count: u64) -> Result<Vec<Hash>>;
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

/// One complete chunk of leaves as kept: its root, its ids as stretches of
/// consecutive ids (`(offset in the chunk, first id)`, the first at offset 0) and
/// each leaf's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptChunk {
    pub chunk: u64,
    pub first_id: i64,
    pub last_id: i64,
    pub root: Hash,
    pub id_runs: Vec<u8>,
    pub fingerprints: Vec<u8>,
}

/// Bytes of one `(offset, first id)` entry of [`KeptChunk::id_runs`].
const ID_RUN_BYTES: usize = 2 + 8;

impl KeptChunk {
    /// The chunk of `leaves`: exactly [`CHUNK`] of them, the chunk's, in order.
    pub fn of(chunk: u64, leaves: &[Leaf]) -> Result<KeptChunk> {
        let contiguous = leaves.len() as u64 == CHUNK
            && leaves
                .iter()
                .enumerate()
                .all(|(i, l)| l.index == chunk * CHUNK + i as u64);
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return Err(missing_leaves(chunk));
        };
        if !contiguous {
            return Err(missing_leaves(chunk));
        }
        let hashes: Vec<Hash> = leaves.iter().map(|l| l.hash).collect();
        let mut id_runs = Vec::new();
        let mut fingerprints = Vec::with_capacity(leaves.len() * FINGERPRINT_BYTES);
        let mut next_id = None;
        for (offset, leaf) in leaves.iter().enumerate() {
            if next_id != Some(leaf.id) {
                id_runs.extend_from_slice(&(offset as u16).to_le_bytes());
                id_runs.extend_from_slice(&leaf.id.to_le_bytes());
            }
            next_id = Some(leaf.id + 1);
            fingerprints.extend_from_slice(&fingerprint(&leaf.hash));
        }
        Ok(KeptChunk {
            chunk,
            first_id: first.id,
            last_id: last.id,
            root: root_of(&hashes),
            id_runs,
            fingerprints,
        })
    }

    /// The record id of each leaf of the chunk, in order.
    fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        let starts: Vec<(usize, i64)> = self
            .id_runs
            .chunks_exact(ID_RUN_BYTES)
            .filter_map(|entry| {
                let offset = u16::from_le_bytes(entry[..2].try_into().ok()?) as usize;
                let id = i64::from_le_bytes(entry[2..].try_into().ok()?);
                Some((offset, id))
            })
            .collect();
        (0..CHUNK as usize).map(move |offset| {
            let at = starts.partition_point(|(start, _)| *start <= offset);
            starts
                .get(at.wrapping_sub(1))
                .map_or(0, |(start, id)| id + (offset - start) as i64)
        })
    }

    /// The chunk's leaves with index in `start..end`: fingerprints, but whole
    /// hashes for removed records (`removed`, by id).
    pub fn stored_leaves(
        &self,
        removed: &HashMap<i64, Hash>,
        start: u64,
        end: u64,
    ) -> Vec<StoredLeaf> {
        let base = self.chunk * CHUNK;
        self.ids()
            .zip(self.fingerprints.chunks_exact(FINGERPRINT_BYTES))
            .enumerate()
            .filter_map(|(offset, (id, print))| {
                let index = base + offset as u64;
                if !(start..end).contains(&index) {
                    return None;
                }
                let kept = match removed.get(&id) {
                    Some(hash) => Kept::Hash(*hash),
                    None => Kept::Fingerprint(print.try_into().ok()?),
                };
                Some(StoredLeaf { index, id, kept })
            })
            .collect()
    }

    /// The leaf index of record `id`, if the chunk holds it.
    pub fn index_of(&self, id: i64) -> Option<u64> {
        self.ids()
            .position(|i| i == id)
            .map(|offset| self.chunk * CHUNK + offset as u64)
    }
}

fn missing_leaves(chunk: u64) -> StoreError {
    StoreError::Internal(format!(
        "the leaves of chunk {chunk} are not all stored: it cannot be kept"
    ))
}

/// What is left of a run `(first index, first id, hashes)` once the leaves
/// below `end` are kept in chunks: `None` if nothing.
pub fn run_from(
    first_index: u64,
    first_id: i64,
    hashes: &[u8],
    end: u64,
) -> Option<(u64, i64, Vec<u8>)> {
    let count = (hashes.len() / 32) as u64;
    if first_index + count <= end {
        return None;
    }
    let skip = end.saturating_sub(first_index);
    Some((
        first_index + skip,
        first_id + skip as i64,
        hashes[(skip as usize) * 32..].to_vec(),
    ))
}

/// Whole leaves from kept ones, read by `read_stored` (one snapshot of the leaf
/// rows): the hash behind each fingerprint is recomputed from its record, read
/// from `store` afterwards. A removal that commits between the two reads leaves a
/// fingerprint whose record is gone; the removal kept the record's whole leaf in
/// its own transaction, so the leaves are read again. A record still missing then
/// (the store was changed behind its back) is an error: its hash cannot be known.
pub async fn recomputed_leaves<S, F, Fut>(store: &S, mut read_stored: F) -> Result<Vec<Leaf>>
where
    S: RecordStore + ?Sized,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<StoredLeaf>>>,
{
    // Each attempt but the last can lose only to a removal committed meanwhile.
    const ATTEMPTS: usize = 3;
    let mut gone = 0;
    for _ in 0..ATTEMPTS {
        match with_hashes(store, read_stored().await?).await? {
            Ok(leaves) => return Ok(leaves),
            Err(id) => gone = id,
        }
    }
    Err(StoreError::Internal(format!(
        "the leaf of record {gone} cannot be recomputed: the record is gone and no removal kept its leaf"
    )))
}

/// Whole leaves from `stored`, or the id of a record whose leaf is kept as a
/// fingerprint but which is gone.
async fn with_hashes<S: RecordStore + ?Sized>(
    store: &S,
    stored: Vec<StoredLeaf>,
) -> Result<std::result::Result<Vec<Leaf>, i64>> {
    let mut to_compute = stored
        .iter()
        .filter(|l| matches!(l.kept, Kept::Fingerprint(_)))
        .map(|l| l.id);
    let computed = match (to_compute.next(), to_compute.next_back()) {
        (Some(first), last) => hashes_of_ids(store, first, last.unwrap_or(first)).await?,
        (None, _) => HashMap::new(),
    };
    Ok(stored
        .into_iter()
        .map(|leaf| {
            let hash = match leaf.kept {
                Kept::Hash(hash) => Some(hash),
                Kept::Fingerprint(_) => computed.get(&leaf.id).copied(),
            };
            Ok(Leaf {
                index: leaf.index,
                id: leaf.id,
                hash: hash.ok_or(leaf.id)?,
            })
        })
        .collect())
}

/// The leaf hashes of the stored records with ids in `first..=last`, by id.
async fn hashes_of_ids<S: RecordStore + ?Sized>(
    store: &S,
    first: i64,
    last: i64,
) -> Result<HashMap<i64, Hash>> {
    // Pages of a query, not an export: a query decodes only the pages of a block
    // it needs, through the page cache, where an export reads whole blocks (a
    // proof needs one chunk's records, not its block's).
    let mut query = Query::oldest_first()
        .with(Condition::Compare(
            Field::Id,
            Comparison::Ge,
            Scalar::Int(first),
        ))
        .with(Condition::Compare(
            Field::Id,
            Comparison::Le,
            Scalar::Int(last),
        ));
    query.limit = Some(CHUNK);
    let mut records = Vec::new();
    loop {
        let page = store.query(&query).await?;
        let Some(last_read) = page.records.last().map(|r| r.id) else {
            break;
        };
        let full = page.records.len() as u64 >= CHUNK;
        records.extend(page.records);
        if !full {
            break;
        }
        query.after = Some(logbook_core::Cursor(last_read));
    }
    // Hashing a chunk's records is a few milliseconds of CPU: off the runtime.
    tokio::task::spawn_blocking(move || {
        records
            .iter()
            .map(|r| (r.id, leaf_hash(r)))
            .collect::<HashMap<_, _>>()
    })
    .await
    .map_err(|e| StoreError::Internal(format!("hashing records failed: {e}")))
}

/// Whether `id` is in one of `stretches` (`(first, last)` ids).
pub fn in_stretches(stretches: &[(i64, i64)], id: i64) -> bool {
    stretches.iter().any(|(a, b)| *a <= id && id <= *b)
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

    #[test]
    fn a_kept_chunk_gives_back_its_ids_fingerprints_and_removed_leaves() {
        // Ids jump once inside the chunk (a rolled-back append on PostgreSQL).
        let leaves: Vec<Leaf> = (0..CHUNK)
            .map(|i| {
                let id = if i < 100 {
                    5 + i as i64
                } else {
                    1000 + i as i64
                };
                Leaf {
                    index: CHUNK + i,
                    id,
                    hash: logbook_core::integrity::merkle::leaf_hash(&i.to_be_bytes()),
                }
            })
            .collect();
        let kept = KeptChunk::of(1, &leaves).expect("complete");
        assert_eq!((kept.first_id, kept.last_id), (5, 1000 + CHUNK as i64 - 1));
        assert_eq!(kept.id_runs.len(), 2 * ID_RUN_BYTES);
        assert_eq!(
            kept.root,
            root_of(&leaves.iter().map(|l| l.hash).collect::<Vec<_>>())
        );
        let removed = HashMap::from([(1100, leaves[100].hash)]);
        let stored = kept.stored_leaves(&removed, CHUNK + 98, CHUNK + 102);
        assert_eq!(
            stored.iter().map(|l| (l.index, l.id)).collect::<Vec<_>>(),
            [
                (CHUNK + 98, 103),
                (CHUNK + 99, 104),
                (CHUNK + 100, 1100),
                (CHUNK + 101, 1101)
            ]
        );
        assert_eq!(stored[2].kept, Kept::Hash(leaves[100].hash));
        assert_eq!(
            stored[3].kept,
            Kept::Fingerprint(fingerprint(&leaves[101].hash))
        );
        assert_eq!(kept.index_of(1101), Some(CHUNK + 101));
        assert_eq!(kept.index_of(200), None);
        assert!(KeptChunk::of(1, &leaves[1..]).is_err(), "short of a chunk");

        assert_eq!(
            run_from(1000, 7, &[0; 64 * 32], 1024),
            Some((1024, 31, vec![0; 40 * 32]))
        );
        assert_eq!(run_from(1000, 7, &[0; 24 * 32], 1024), None);
        assert_eq!(
            run_from(1030, 7, &[0; 2 * 32], 1024),
            Some((1030, 7, vec![0; 64]))
        );
    }
}
