//! PostgreSQL's part of tamper evidence (see `crate::integrity`): leaf runs written
//! under the append lock in the append's transaction, so leaf indexes follow ids
//! across nodes; removed stretches in the removal's transaction; checkpoints
//! extend the stored chain only if no other node did first.

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

async fn tree_size<C: GenericClient>(client: &C) -> Result<u64> {
    let size: Option<i64> = client
        .query_opt(
            "SELECT first_index + length(hashes) / 32 FROM record_leaves \
             ORDER BY first_index DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    Ok(size.unwrap_or(0).max(0) as u64)
}

/// The leaves of freshly numbered records, under the append lock.
pub(super) async fn insert_leaves(tx: &Transaction<'_>, stored: &[Record]) -> Result<()> {
    let mut index = tree_size(tx).await?;
    for (first_id, hashes) in runs(stored) {
        tx.execute(
            "INSERT INTO record_leaves (first_index, first_id, hashes) VALUES ($1, $2, $3)",
            &[&(index as i64), &first_id, &hashes],
        )
        .await?;
        index += (hashes.len() / 32) as u64;
    }
    Ok(())
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
/// from an earlier version), under the append lock `tx` holds, at the first start
/// after the upgrade.
pub(super) async fn backfill(tx: &Transaction<'_>) -> Result<u64> {
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
    let last_leaf: Option<i64> = tx
        .query_opt(
            "SELECT first_id + length(hashes) / 32 - 1 FROM record_leaves \
             ORDER BY first_index DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    let mut after = last_leaf.unwrap_or(0);
    let mut added = 0;
    loop {
        let rows = tx
            .query(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE id > $1 ORDER BY id LIMIT $2"),
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
        let client = self.pool.get().await?;
        tree_size(&client).await
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
                 WHERE first_id <= $1 ORDER BY first_id DESC LIMIT 1",
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
