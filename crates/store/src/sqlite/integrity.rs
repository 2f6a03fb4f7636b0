//! The embedded store's part of tamper evidence (see `crate::integrity`): leaf runs
//! written in the append's transaction (`insert_leaves`, called by the one function
//! that inserts records), removed stretches written in the removal's transaction,
//! checkpoints and settings through the writer, reads on reader connections.

use super::tiered::Tiered;
use super::SqliteStore;
use crate::integrity::{
    extends, leaves_of_run, runs, stretches, IntegrityStore, Leaf, RemovedRange,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use logbook_core::integrity::SignedCheckpoint;
use logbook_core::{Query, Record, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Arc;

/// Leaves in the tree, as the connection's transaction sees it.
pub(super) fn tree_size(conn: &Connection) -> Result<u64> {
    let size: Option<i64> = conn
        .prepare_cached(
            "SELECT first_index + length(hashes) / 32 FROM record_leaves \
             ORDER BY first_index DESC LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(size.unwrap_or(0).max(0) as u64)
}

/// The leaves of freshly numbered records, in the transaction that inserts them.
pub(super) fn insert_leaves(conn: &Connection, stored: &[Record]) -> Result<()> {
    for (first_id, hashes) in runs(stored) {
        insert_run(conn, first_id, &hashes)?;
    }
    Ok(())
}

/// The leaf hashes of the records numbered from `first_id` on, in the transaction
/// that inserts them (the next leaves of the tree).
pub(super) fn insert_run(conn: &Connection, first_id: i64, hashes: &[u8]) -> Result<()> {
    if hashes.is_empty() {
        return Ok(());
    }
    let index = tree_size(conn)?;
    conn.prepare_cached(
        "INSERT INTO record_leaves (first_index, first_id, hashes) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![index as i64, first_id, hashes])?;
    Ok(())
}

/// Records the removed ids as stretches, in the removal's transaction.
pub(super) fn insert_removed(
    conn: &Connection,
    ids: &[i64],
    removed_at: Timestamp,
    journal_id: i64,
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO removed_records (first_id, last_id, removed_at, journal_id) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (first, last) in stretches(ids) {
        insert.execute(params![first, last, removed_at.micros(), journal_id])?;
    }
    Ok(())
}

/// Computes the leaves of records written before leaves existed (a store upgraded
/// from an earlier version), oldest first, at the first open after the upgrade
/// (the migration leaves `backfill_pending`; only then, or a record inserted into
/// the file behind the store's back would be given a leaf here). Their leaves hash
/// the records as they are at the upgrade: what came before is vouched for by
/// nothing (docs/integrity.md).
pub(super) fn backfill(conn: &Connection, tiered: &Arc<Tiered>) -> Result<u64> {
    let pending: Option<String> = conn
        .prepare_cached("SELECT value FROM integrity_settings WHERE key = 'backfill_pending'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if pending.is_none() {
        return Ok(0);
    }
    let last_leaf: Option<i64> = conn
        .prepare_cached(
            "SELECT first_id + length(hashes) / 32 - 1 FROM record_leaves \
             ORDER BY first_index DESC LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    let catalog = tiered.tiers.snapshot();
    let segments = catalog.segments();
    let mut after = last_leaf;
    let mut added = 0u64;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = (|| -> Result<()> {
        loop {
            let batch = crate::blocks::engine::export_batch(
                &segments,
                &Query::oldest_first(),
                catalog.high_water,
                after,
                4096,
            )?;
            let Some(last) = batch.last().map(|r| r.id) else {
                conn.execute_batch(
                    "DELETE FROM integrity_settings WHERE key = 'backfill_pending'",
                )?;
                return Ok(());
            };
            insert_leaves(conn, &batch)?;
            added += batch.len() as u64;
            after = Some(last);
        }
    })();
    match outcome {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if added > 0 {
        tracing::info!(
            records = added,
            "computed the leaf hashes of earlier records"
        );
    }
    Ok(added)
}

fn read_leaves(conn: &Connection, start: u64, end: u64) -> Result<Vec<Leaf>> {
    let mut statement = conn.prepare_cached(
        "SELECT first_index, first_id, hashes FROM record_leaves \
         WHERE first_index >= coalesce((SELECT max(first_index) FROM record_leaves \
                                        WHERE first_index <= ?1), 0) \
           AND first_index < ?2 ORDER BY first_index",
    )?;
    let rows = statement.query_map(params![start as i64, end as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (first_index, first_id, hashes) = row?;
        out.extend(leaves_of_run(
            first_index.max(0) as u64,
            first_id,
            &hashes,
            start,
            end,
        ));
    }
    Ok(out)
}

fn read_leaf_of(conn: &Connection, id: i64) -> Result<Option<Leaf>> {
    let run = conn
        .prepare_cached(
            "SELECT first_index, first_id, hashes FROM record_leaves \
             WHERE first_id <= ?1 ORDER BY first_id DESC LIMIT 1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    Ok(run.and_then(|(first_index, first_id, hashes)| {
        let index = first_index.max(0) as u64 + (id - first_id) as u64;
        let leaf = leaves_of_run(
            first_index.max(0) as u64,
            first_id,
            &hashes,
            index,
            index + 1,
        )
        .next();
        leaf
    }))
}

fn read_removed(row: &rusqlite::Row<'_>) -> rusqlite::Result<RemovedRange> {
    Ok(RemovedRange {
        first_id: row.get(0)?,
        last_id: row.get(1)?,
        removed_at: Timestamp(row.get(2)?),
        journal_id: row.get(3)?,
    })
}

fn parse_checkpoint(body: &str) -> Result<SignedCheckpoint> {
    serde_json::from_str(body)
        .ok()
        .and_then(|value| SignedCheckpoint::from_json(&value).ok())
        .ok_or_else(|| StoreError::Internal("a stored checkpoint does not parse".into()))
}

fn newest_checkpoint(conn: &Connection) -> Result<Option<SignedCheckpoint>> {
    conn.prepare_cached("SELECT body FROM checkpoints ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| r.get::<_, String>(0))
        .optional()?
        .map(|body| parse_checkpoint(&body))
        .transpose()
}

#[async_trait]
impl IntegrityStore for SqliteStore {
    async fn tree_size(&self) -> Result<u64> {
        self.readers.read(|conn| tree_size(conn)).await
    }

    async fn leaves(&self, start: u64, end: u64) -> Result<Vec<Leaf>> {
        self.readers
            .read(move |conn| read_leaves(conn, start, end))
            .await
    }

    async fn leaf_of(&self, id: i64) -> Result<Option<Leaf>> {
        self.readers.read(move |conn| read_leaf_of(conn, id)).await
    }

    async fn removed(&self, after: i64, limit: u64) -> Result<Vec<RemovedRange>> {
        self.readers
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT first_id, last_id, removed_at, journal_id FROM removed_records \
                     WHERE first_id > ?1 ORDER BY first_id LIMIT ?2",
                )?;
                let rows = statement.query_map(
                    params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                    read_removed,
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn removal_of(&self, id: i64) -> Result<Option<RemovedRange>> {
        self.readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT first_id, last_id, removed_at, journal_id FROM removed_records \
                         WHERE first_id <= ?1 ORDER BY first_id DESC LIMIT 1",
                    )?
                    .query_row([id], read_removed)
                    .optional()?
                    .filter(|r| r.last_id >= id))
            })
            .await
    }

    async fn add_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<bool> {
        let checkpoint = checkpoint.clone();
        self.writer
            .write(move |conn, _| {
                if !extends(newest_checkpoint(conn)?.as_ref(), &checkpoint) {
                    return Ok(false);
                }
                conn.prepare_cached("INSERT INTO checkpoints (tree_size, body) VALUES (?1, ?2)")?
                    .execute(params![
                        checkpoint.checkpoint.tree_size as i64,
                        checkpoint.to_json().to_string()
                    ])?;
                Ok(true)
            })
            .await
    }

    async fn checkpoints(&self, limit: u64) -> Result<Vec<SignedCheckpoint>> {
        self.readers
            .read(move |conn| {
                let mut statement =
                    conn.prepare_cached("SELECT body FROM checkpoints ORDER BY seq DESC LIMIT ?1")?;
                let rows = statement
                    .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                        r.get::<_, String>(0)
                    })?;
                let mut out = Vec::new();
                for body in rows {
                    out.push(parse_checkpoint(&body?)?);
                }
                Ok(out)
            })
            .await
    }

    async fn checkpoint_of_size(&self, tree_size: u64) -> Result<Option<SignedCheckpoint>> {
        self.readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT body FROM checkpoints WHERE tree_size = ?1 ORDER BY seq DESC LIMIT 1",
                )?
                .query_row([tree_size as i64], |r| r.get::<_, String>(0))
                .optional()?
                .map(|body| parse_checkpoint(&body))
                .transpose()
            })
            .await
    }

    async fn integrity_setting(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT value FROM integrity_settings WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn set_integrity_setting(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.writer
            .write(move |conn, _| {
                conn.prepare_cached(
                    "INSERT INTO integrity_settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute([&key, &value])?;
                Ok(())
            })
            .await
    }
}
