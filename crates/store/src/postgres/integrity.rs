//! PostgreSQL's part of tamper evidence (see `crate::integrity`): leaf runs written
//! in the append's transaction; removed stretches in the removal's transaction;
//! checkpoints extend the stored chain only if no other node did first.
//!
//! Appends run concurrently on every node and commit out of id order, so an append
//! cannot know its leaves' place in the tree. A run is written without one and
//! placed later, by [`index_leaves`], once it is below the visibility horizon: no
//! id can appear below the horizon afterwards (docs/postgres.md), so runs placed in
//! id order up to it never need to move. One placer at a time across nodes (an
//! advisory lock); the tree is what has been placed. The placing transaction
//! also keeps every chunk of leaves it completes (`keep_chunks`, see
//! `crate::integrity`), and a removal takes the same lock to keep the whole
//! leaves of its records whose chunk is kept, so neither misses the other.

use super::records::{read_record, RECORD_COLUMNS};
use super::PostgresStore;
use crate::integrity::{
    extends, in_stretches, leaves_of_run, recomputed_leaves, run_from, runs, stretches,
    IntegrityStore, Kept, KeptChunk, Leaf, RemovedRange, StoredLeaf, CHUNK,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use logbook_core::integrity::{leaf_hash, Hash, SignedCheckpoint};
use logbook_core::{Record, Timestamp};
use std::collections::HashMap;

/// Rows read at a time when computing the leaves of earlier records.
const BACKFILL_BATCH: i64 = 5000;

/// The advisory lock class of placing leaves in the tree (beside the partition
/// lock's), keyed like it by the schema.
const LEAF_LOCK_CLASS: i32 = 0x4c42_4c46;

async fn tree_size<C: GenericClient>(client: &C) -> Result<u64> {
    let size: Option<i64> = client
        .query_opt(
            "SELECT first_index + length(hashes) / 32 FROM record_leaves \
             WHERE first_index IS NOT NULL ORDER BY first_index DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    Ok((size.unwrap_or(0).max(0) as u64).max(kept_chunks(client).await? * CHUNK))
}

/// How many chunks are kept (in order, from chunk 0).
async fn kept_chunks<C: GenericClient>(client: &C) -> Result<u64> {
    let next: i64 = client
        .query_one("SELECT coalesce(max(chunk) + 1, 0) FROM leaf_chunks", &[])
        .await?
        .get(0);
    Ok(next.max(0) as u64)
}

/// Keeps every complete chunk of placed leaves below `size` that is still in
/// runs, as the embedded store's `keep_chunks` does; in the placing transaction.
async fn keep_chunks(tx: &Transaction<'_>, size: u64) -> Result<()> {
    let mut chunk = kept_chunks(tx).await?;
    while (chunk + 1) * CHUNK <= size {
        let (start, end) = (chunk * CHUNK, (chunk + 1) * CHUNK);
        let leaves = read_runs(tx, start, end).await?;
        let kept = KeptChunk::of(chunk, &leaves)?;
        tx.execute(
            "INSERT INTO leaf_chunks (chunk, first_id, last_id, root, id_runs, fingerprints) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &(chunk as i64),
                &kept.first_id,
                &kept.last_id,
                &&kept.root[..],
                &kept.id_runs,
                &kept.fingerprints,
            ],
        )
        .await?;
        let removed: Vec<(i64, i64)> = tx
            .query(
                "SELECT first_id, last_id FROM removed_records \
                 WHERE last_id >= $1 AND first_id <= $2",
                &[&kept.first_id, &kept.last_id],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for leaf in leaves.iter().filter(|l| in_stretches(&removed, l.id)) {
            insert_removed_leaf(tx, leaf.id, &leaf.hash).await?;
        }
        cut_runs_below(tx, end).await?;
        chunk += 1;
    }
    Ok(())
}

async fn insert_removed_leaf(tx: &Transaction<'_>, id: i64, hash: &Hash) -> Result<()> {
    tx.execute(
        "INSERT INTO removed_leaves (id, hash) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET hash = excluded.hash",
        &[&id, &&hash[..]],
    )
    .await?;
    Ok(())
}

/// Drops the placed runs' leaves below index `end` (kept in chunks now).
async fn cut_runs_below(tx: &Transaction<'_>, end: u64) -> Result<()> {
    let straddling = tx
        .query_opt(
            "SELECT first_index, first_id, hashes FROM record_leaves \
             WHERE first_index < $1 ORDER BY first_index DESC LIMIT 1",
            &[&(end as i64)],
        )
        .await?
        .map(|row| run_of(&row));
    tx.execute(
        "DELETE FROM record_leaves WHERE first_index < $1",
        &[&(end as i64)],
    )
    .await?;
    if let Some((first_index, first_id, hashes)) = straddling {
        if let Some((index, id, rest)) = run_from(first_index, first_id, &hashes, end) {
            tx.execute(
                "INSERT INTO record_leaves (first_id, first_index, hashes) VALUES ($1, $2, $3)",
                &[&id, &(index as i64), &rest],
            )
            .await?;
        }
    }
    Ok(())
}

/// Keeps the whole leaves of `records`, about to be removed, whose chunk is kept
/// (hashed as they are now); in the removal's transaction, under the lock of
/// placing leaves so no chunk is kept meanwhile. The others' leaves are in runs
/// and are kept with their chunk.
pub(super) async fn keep_removed_leaves(
    tx: &Transaction<'_>,
    lock_key: i32,
    records: &[Record],
) -> Result<()> {
    lock_leaves(tx, lock_key).await?;
    let kept_up_to: Option<i64> = tx
        .query_one("SELECT max(last_id) FROM leaf_chunks", &[])
        .await?
        .get(0);
    let Some(kept_up_to) = kept_up_to else {
        return Ok(());
    };
    for record in records.iter().filter(|r| r.id <= kept_up_to) {
        insert_removed_leaf(tx, record.id, &leaf_hash(record)).await?;
    }
    Ok(())
}

/// The placed leaves still in runs with index in `start..end`.
async fn read_runs<C: GenericClient>(client: &C, start: u64, end: u64) -> Result<Vec<Leaf>> {
    let rows = client
        .query(
            "SELECT first_index, first_id, hashes FROM record_leaves \
             WHERE first_index >= coalesce((SELECT max(first_index) FROM record_leaves \
                                            WHERE first_index <= $1), 0) \
               AND first_index < $2 ORDER BY first_index",
            &[&(start as i64), &(end.min(i64::MAX as u64) as i64)],
        )
        .await?;
    let mut out = Vec::new();
    for row in &rows {
        let (first_index, first_id, hashes) = run_of(row);
        out.extend(leaves_of_run(first_index, first_id, &hashes, start, end));
    }
    Ok(out)
}

fn kept_chunk_of(row: &tokio_postgres::Row) -> KeptChunk {
    let root: Vec<u8> = row.get(3);
    KeptChunk {
        chunk: row.get::<_, i64>(0).max(0) as u64,
        first_id: row.get(1),
        last_id: row.get(2),
        root: root.try_into().unwrap_or([0; 32]),
        id_runs: row.get(4),
        fingerprints: row.get(5),
    }
}

/// The whole leaves kept for removed records with ids in `first..=last`.
async fn removed_leaves<C: GenericClient>(
    client: &C,
    first: i64,
    last: i64,
) -> Result<HashMap<i64, Hash>> {
    let rows = client
        .query(
            "SELECT id, hash FROM removed_leaves WHERE id BETWEEN $1 AND $2",
            &[&first, &last],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1).try_into().ok()?)))
        .collect())
}

/// The leaves with index in `start..end` as kept: from kept chunks, then runs.
async fn read_stored<C: GenericClient>(
    client: &C,
    start: u64,
    end: u64,
) -> Result<Vec<StoredLeaf>> {
    let chunks = client
        .query(
            "SELECT chunk, first_id, last_id, root, id_runs, fingerprints FROM leaf_chunks \
             WHERE chunk >= $1 AND chunk < $2 ORDER BY chunk",
            &[
                &((start / CHUNK) as i64),
                &(end.div_ceil(CHUNK).min(i64::MAX as u64) as i64),
            ],
        )
        .await?;
    let mut out = Vec::new();
    for row in &chunks {
        let chunk = kept_chunk_of(row);
        let removed = removed_leaves(client, chunk.first_id, chunk.last_id).await?;
        out.extend(chunk.stored_leaves(&removed, start, end));
    }
    out.extend(
        read_runs(client, start, end)
            .await?
            .into_iter()
            .map(|l| StoredLeaf {
                index: l.index,
                id: l.id,
                kept: Kept::Hash(l.hash),
            }),
    );
    Ok(out)
}

async fn read_stored_of<C: GenericClient>(client: &C, id: i64) -> Result<Option<StoredLeaf>> {
    let chunk = client
        .query_opt(
            "SELECT chunk, first_id, last_id, root, id_runs, fingerprints FROM leaf_chunks \
             WHERE first_id <= $1 ORDER BY first_id DESC LIMIT 1",
            &[&id],
        )
        .await?
        .map(|row| kept_chunk_of(&row))
        .filter(|c| id <= c.last_id);
    if let Some(chunk) = chunk {
        let Some(index) = chunk.index_of(id) else {
            return Ok(None);
        };
        let removed = removed_leaves(client, id, id).await?;
        return Ok(chunk.stored_leaves(&removed, index, index + 1).pop());
    }
    let row = client
        .query_opt(
            "SELECT first_index, first_id, hashes FROM record_leaves \
             WHERE first_id <= $1 AND first_index IS NOT NULL \
             ORDER BY first_id DESC LIMIT 1",
            &[&id],
        )
        .await?;
    Ok(row.and_then(|row| {
        let (first_index, first_id, hashes) = run_of(&row);
        let index = first_index + (id - first_id) as u64;
        let leaf = leaves_of_run(first_index, first_id, &hashes, index, index + 1).next();
        leaf.map(|l| StoredLeaf {
            index: l.index,
            id: l.id,
            kept: Kept::Hash(l.hash),
        })
    }))
}

/// Stores one run of leaves, `(first id, hashes)`, without a place in the tree.
pub(super) const INSERT_LEAVES: &str =
    "INSERT INTO record_leaves (first_id, hashes) VALUES ($1, $2)";

/// The leaves of freshly numbered records, in their append's transaction; their
/// place in the tree comes later ([`index_leaves`]).
pub(super) async fn insert_leaves<C: GenericClient>(tx: &C, stored: &[Record]) -> Result<()> {
    let statement = tx.prepare_cached(INSERT_LEAVES).await?;
    for (first_id, hashes) in runs(stored) {
        tx.execute(&statement, &[&first_id, &hashes]).await?;
    }
    Ok(())
}

/// Takes the lock of placing leaves (and of computing earlier records' leaves) for
/// the rest of `tx`: one node at a time, across all of them.
async fn lock_leaves(tx: &Transaction<'_>, lock_key: i32) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LEAF_LOCK_CLASS, &lock_key],
    )
    .await?;
    Ok(())
}

/// Places every run below the visibility horizon that has no place yet, in id
/// order, after the last placed one, and returns the tree size. Nothing is placed
/// while the leaves of earlier records are still to be computed ([`backfill`]).
async fn index_leaves(client: &mut deadpool_postgres::Object, lock_key: i32) -> Result<u64> {
    let tx = client.transaction().await?;
    lock_leaves(&tx, lock_key).await?;
    let mut size = tree_size(&tx).await?;
    let pending = tx
        .query_opt(
            "SELECT 1 FROM integrity_settings WHERE key = 'backfill_pending'",
            &[],
        )
        .await?
        .is_some();
    if pending {
        return Ok(size);
    }
    // Read in a statement after the lock's, so its snapshot sees what the previous
    // placer committed.
    let horizon: i64 = tx.query_one(super::writer::HORIZON, &[]).await?.get(0);
    let unplaced = tx
        .query(
            "SELECT first_id, length(hashes) / 32 FROM record_leaves \
             WHERE first_index IS NULL AND first_id <= $1 ORDER BY first_id",
            &[&horizon],
        )
        .await?;
    for row in &unplaced {
        let (first_id, leaves): (i64, i32) = (row.get(0), row.get(1));
        tx.execute(
            "UPDATE record_leaves SET first_index = $1 WHERE first_id = $2",
            &[&(size as i64), &first_id],
        )
        .await?;
        size += leaves.max(0) as u64;
    }
    keep_chunks(&tx, size).await?;
    tx.commit().await?;
    Ok(size)
}

/// Records the removed ids as stretches, in the removal's transaction.
pub(super) async fn insert_removed(
    tx: &Transaction<'_>,
    ids: &[i64],
    removed_at: Timestamp,
    journal_id: i64,
) -> Result<()> {
    for (first, last) in stretches(ids) {
        tx.execute(
            "INSERT INTO removed_records (first_id, last_id, removed_at, journal_id) \
             VALUES ($1, $2, $3, $4)",
            &[&first, &last, &removed_at.micros(), &journal_id],
        )
        .await?;
    }
    Ok(())
}

/// Computes the leaves of records written before leaves existed (a schema upgraded
/// from an earlier version), at the first start after the upgrade, under the lock
/// of placing leaves. Records appended since the upgrade have theirs already: a
/// record and its leaves commit together.
pub(super) async fn backfill(client: &mut deadpool_postgres::Object, lock_key: i32) -> Result<u64> {
    let tx = client.transaction().await?;
    lock_leaves(&tx, lock_key).await?;
    let added = backfill_in(&tx).await?;
    tx.commit().await?;
    Ok(added)
}

async fn backfill_in(tx: &Transaction<'_>) -> Result<u64> {
    // Only at the first start after the upgrade (see the embedded store's backfill).
    let pending = tx
        .execute(
            "DELETE FROM integrity_settings WHERE key = 'backfill_pending'",
            &[],
        )
        .await?;
    if pending == 0 {
        return Ok(0);
    }
    // Records without a run covering them: those written before the upgrade.
    let mut after = 0;
    let mut added = 0;
    loop {
        let rows = tx
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM records WHERE id > $1 AND NOT EXISTS \
                     (SELECT 1 FROM record_leaves l WHERE l.first_id <= records.id \
                      AND records.id < l.first_id + length(l.hashes) / 32) \
                     ORDER BY id LIMIT $2"
                ),
                &[&after, &BACKFILL_BATCH],
            )
            .await?;
        let records = rows.iter().map(read_record).collect::<Result<Vec<_>>>()?;
        let Some(last) = records.last().map(|r| r.id) else {
            break;
        };
        insert_leaves(tx, &records).await?;
        added += records.len() as u64;
        after = last;
    }
    if added > 0 {
        tracing::info!(
            records = added,
            "computed the leaf hashes of earlier records"
        );
    }
    Ok(added)
}

/// A read-only snapshot: kept chunks and runs as one commit left them.
async fn snapshot(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

fn run_of(row: &tokio_postgres::Row) -> (u64, i64, Vec<u8>) {
    (row.get::<_, i64>(0).max(0) as u64, row.get(1), row.get(2))
}

fn removed_of(row: &tokio_postgres::Row) -> RemovedRange {
    RemovedRange {
        first_id: row.get(0),
        last_id: row.get(1),
        removed_at: Timestamp(row.get(2)),
        journal_id: row.get(3),
    }
}

fn parse_checkpoint(body: &str) -> Result<SignedCheckpoint> {
    serde_json::from_str(body)
        .ok()
        .and_then(|value| SignedCheckpoint::from_json(&value).ok())
        .ok_or_else(|| StoreError::Internal("a stored checkpoint does not parse".into()))
}

#[async_trait]
impl IntegrityStore for PostgresStore {
    async fn tree_size(&self) -> Result<u64> {
        let mut client = self.pool.get().await?;
        index_leaves(&mut client, self.target.lock_key).await
    }

    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<Leaf>> {
        recomputed_leaves(self, || self.stored_leaves(start, end)).await
    }

    async fn leaf_of(&self, id: i64) -> Result<Option<Leaf>> {
        let read_stored = || async move {
            let mut client = self.pool.get().await?;
            let tx = snapshot(&mut client).await?;
            let stored = read_stored_of(&tx, id).await?;
            tx.commit().await?;
            Ok(stored.into_iter().collect())
        };
        Ok(recomputed_leaves(self, read_stored).await?.pop())
    }

    async fn stored_leaves(&self, start: u64, end: u64) -> Result<Vec<StoredLeaf>> {
        let mut client = self.pool.get().await?;
        let tx = snapshot(&mut client).await?;
        let stored = read_stored(&tx, start, end).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn chunk_roots(&self, first: u64, count: u64) -> Result<Vec<Hash>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT root FROM leaf_chunks WHERE chunk >= $1 ORDER BY chunk LIMIT $2",
                &[
                    &i64::try_from(first).unwrap_or(i64::MAX),
                    &i64::try_from(count).unwrap_or(i64::MAX),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                r.get::<_, Vec<u8>>(0)
                    .try_into()
                    .map_err(|_| StoreError::Internal("a kept chunk root is not 32 bytes".into()))
            })
            .collect()
    }

    async fn removed(&self, after: i64, limit: u64) -> Result<Vec<RemovedRange>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT first_id, last_id, removed_at, journal_id FROM removed_records \
                 WHERE first_id > $1 ORDER BY first_id LIMIT $2",
                &[&after, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await?;
        Ok(rows.iter().map(removed_of).collect())
    }

    async fn removal_of(&self, id: i64) -> Result<Option<RemovedRange>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT first_id, last_id, removed_at, journal_id FROM removed_records \
                 WHERE first_id <= $1 ORDER BY first_id DESC LIMIT 1",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| removed_of(&r)).filter(|r| r.last_id >= id))
    }

    async fn add_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Serialises checkpoint writers across nodes, so the chain never forks.
        tx.execute("LOCK TABLE checkpoints IN EXCLUSIVE MODE", &[])
            .await?;
        let newest = tx
            .query_opt(
                "SELECT body FROM checkpoints ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|r| parse_checkpoint(&r.get::<_, String>(0)))
            .transpose()?;
        if !extends(newest.as_ref(), checkpoint) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO checkpoints (tree_size, body) VALUES ($1, $2)",
            &[
                &(checkpoint.checkpoint.tree_size as i64),
                &checkpoint.to_json().to_string(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn checkpoints(&self, limit: u64) -> Result<Vec<SignedCheckpoint>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT body FROM checkpoints ORDER BY seq DESC LIMIT $1",
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await?;
        rows.iter()
            .map(|r| parse_checkpoint(&r.get::<_, String>(0)))
            .collect()
    }

    async fn checkpoint_of_size(&self, tree_size: u64) -> Result<Option<SignedCheckpoint>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                "SELECT body FROM checkpoints WHERE tree_size = $1 ORDER BY seq DESC LIMIT 1",
                &[&(tree_size as i64)],
            )
            .await?
            .map(|r| parse_checkpoint(&r.get::<_, String>(0)))
            .transpose()
    }

    async fn integrity_setting(&self, key: &str) -> Result<Option<String>> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt(
                "SELECT value FROM integrity_settings WHERE key = $1",
                &[&key],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn set_integrity_setting(&self, key: &str, value: &str) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO integrity_settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await?;
        Ok(())
    }
}
