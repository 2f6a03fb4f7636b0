//! PostgreSQL's part of tamper evidence (see `crate::integrity`): leaf runs written
//! in the append's transaction; removed stretches in the removal's transaction;
//! checkpoints extend the stored chain only if no other node did first.
//!
//! Appends run concurrently on every node and commit out of id order, so an append
//! cannot know its leaves' place in the tree. A run is written without one and
//! placed later, by [`index_leaves`], once it is below the visibility horizon: no
//! id can appear below the horizon afterwards (docs/postgres.md), so runs placed in
//! id order up to it never need to move. One placer at a time across nodes (an
//! advisory lock); the tree is what has been placed.

use super::records::{read_record, RECORD_COLUMNS};
use super::PostgresStore;
use crate::integrity::{
    extends, leaves_of_run, runs, stretches, IntegrityStore, Leaf, RemovedRange,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use logbook_core::integrity::SignedCheckpoint;
use logbook_core::{Record, Timestamp};

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
    Ok(size.unwrap_or(0).max(0) as u64)
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
        let client = self.pool.get().await?;
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

    async fn leaf_of(&self, id: i64) -> Result<Option<Leaf>> {
        let client = self.pool.get().await?;
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
            leaf
        }))
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
