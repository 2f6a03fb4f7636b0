//! The embedded store's part of tamper evidence (see `crate::integrity`): leaf runs
//! written in the append's transaction (`insert_leaves`, called by the one function
//! that inserts records), removed stretches written in the removal's transaction,
//! checkpoints and settings through the writer, reads on reader connections.
//! A chunk of leaves is kept (`keep_chunks`) in the append's transaction that
//! completes it, so a crash leaves either its runs or its kept chunk, never both
//! or neither.

use super::tiered::Tiered;
use super::SqliteStore;
use crate::integrity::{
    extends, in_stretches, leaves_of_run, recomputed_leaves, run_from, runs, stretches,
    IntegrityStore, KeptChunk, Leaf, RemovedRange, StoredLeaf, CHUNK,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use logbook_core::integrity::{leaf_hash, Hash, SignedCheckpoint};
use logbook_core::{Query, Record, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::Arc;

/// Leaves in the tree, as the connection's transaction sees it: to the end of the
/// last run, or of the last kept chunk when no run is left.
pub(super) fn tree_size(conn: &Connection) -> Result<u64> {
    let size: Option<i64> = conn
        .prepare_cached(
            "SELECT first_index + length(hashes) / 32 FROM record_leaves \
             ORDER BY first_index DESC LIMIT 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok((size.unwrap_or(0).max(0) as u64).max(kept_chunks(conn)? * CHUNK))
}

/// How many chunks are kept (they are kept in order, from chunk 0).
fn kept_chunks(conn: &Connection) -> Result<u64> {
    let next: i64 = conn
        .prepare_cached("SELECT coalesce(max(chunk) + 1, 0) FROM leaf_chunks")?
        .query_row([], |r| r.get(0))?;
    Ok(next.max(0) as u64)
}

/// Keeps every complete chunk of leaves below `size` that is still in runs: its
/// root, ids and fingerprints in `leaf_chunks`, the whole leaves of its removed
/// records in `removed_leaves`, and its runs cut away; in the caller's transaction.
fn keep_chunks(conn: &Connection, size: u64) -> Result<()> {
    let mut chunk = kept_chunks(conn)?;
    while (chunk + 1) * CHUNK <= size {
        let (start, end) = (chunk * CHUNK, (chunk + 1) * CHUNK);
        let leaves = read_runs(conn, start, end)?;
        let kept = KeptChunk::of(chunk, &leaves)?;
        conn.prepare_cached(
            "INSERT INTO leaf_chunks (chunk, first_id, last_id, root, id_runs, fingerprints) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            chunk as i64,
            kept.first_id,
            kept.last_id,
            &kept.root[..],
            kept.id_runs,
            kept.fingerprints
        ])?;
        let removed = removed_between(conn, kept.first_id, kept.last_id)?;
        let mut insert = conn
            .prepare_cached("INSERT OR REPLACE INTO removed_leaves (id, hash) VALUES (?1, ?2)")?;
        for leaf in leaves.iter().filter(|l| in_stretches(&removed, l.id)) {
            insert.execute(params![leaf.id, &leaf.hash[..]])?;
        }
        cut_runs_below(conn, end)?;
        chunk += 1;
    }
    Ok(())
}

/// Removed stretches that overlap `first..=last`.
fn removed_between(conn: &Connection, first: i64, last: i64) -> Result<Vec<(i64, i64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT first_id, last_id FROM removed_records WHERE last_id >= ?1 AND first_id <= ?2",
    )?;
    let rows = statement.query_map([first, last], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Drops the runs' leaves below index `end` (kept in chunks now).
fn cut_runs_below(conn: &Connection, end: u64) -> Result<()> {
    let straddling = conn
        .prepare_cached(
            "SELECT first_index, first_id, hashes FROM record_leaves \
             WHERE first_index < ?1 ORDER BY first_index DESC LIMIT 1",
        )?
        .query_row([end as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    conn.prepare_cached("DELETE FROM record_leaves WHERE first_index < ?1")?
        .execute([end as i64])?;
    if let Some((first_index, first_id, hashes)) = straddling {
        if let Some((index, id, rest)) = run_from(first_index.max(0) as u64, first_id, &hashes, end)
        {
            conn.prepare_cached(
                "INSERT INTO record_leaves (first_index, first_id, hashes) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![index as i64, id, rest])?;
        }
    }
    Ok(())
}

/// Keeps the whole leaves of `records`, about to be removed, whose chunk is kept
/// (their hashes recomputed from them, as they are now); in the removal's
/// transaction. The leaves of the others are still in runs, and are kept when
/// their chunk is.
pub(super) fn keep_removed_leaves(conn: &Connection, records: &[Record]) -> Result<()> {
    let kept_up_to: Option<i64> = conn
        .prepare_cached("SELECT max(last_id) FROM leaf_chunks")?
        .query_row([], |r| r.get(0))?;
    let Some(kept_up_to) = kept_up_to else {
        return Ok(());
    };
    let mut insert =
        conn.prepare_cached("INSERT OR REPLACE INTO removed_leaves (id, hash) VALUES (?1, ?2)")?;
    for record in records.iter().filter(|r| r.id <= kept_up_to) {
        insert.execute(params![record.id, &leaf_hash(record)[..]])?;
    }
    Ok(())
}

/// Keeps every complete chunk still in runs, in one transaction: a file written
/// before chunks were kept, at its first open.
pub(super) fn keep_all_chunks(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let before = kept_chunks(conn);
    let outcome = tree_size(conn).and_then(|size| keep_chunks(conn, size));
    match outcome {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    let (before, after) = (before?, kept_chunks(conn)?);
    if after > before {
        tracing::info!(
            chunks = after - before,
            "kept complete chunks of leaves as roots and fingerprints"
        );
    }
    Ok(())
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
    let size = index + (hashes.len() / 32) as u64;
    if size / CHUNK > index / CHUNK {
        keep_chunks(conn, size)?;
    }
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
            "SELECT max(coalesce((SELECT first_id + length(hashes) / 32 - 1 FROM record_leaves \
                                  ORDER BY first_index DESC LIMIT 1), 0), \
                        coalesce((SELECT max(last_id) FROM leaf_chunks), 0))",
        )?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()?
        .filter(|id| *id > 0);
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

/// The leaves still in runs with index in `start..end`.
fn read_runs(conn: &Connection, start: u64, end: u64) -> Result<Vec<Leaf>> {
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

/// Runs `read` in one read transaction: kept chunks and runs as one commit left
/// them (an append may keep a chunk between two statements otherwise).
fn in_snapshot<T>(conn: &mut Connection, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let tx = conn.transaction()?;
    let out = read(&tx)?;
    tx.commit()?;
    Ok(out)
}

fn read_kept_chunk(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeptChunk> {
    let root: Vec<u8> = row.get(3)?;
    Ok(KeptChunk {
        chunk: row.get::<_, i64>(0)?.max(0) as u64,
        first_id: row.get(1)?,
        last_id: row.get(2)?,
        root: root.try_into().unwrap_or([0; 32]),
        id_runs: row.get(4)?,
        fingerprints: row.get(5)?,
    })
}

/// The whole leaves kept for removed records with ids in `first..=last`.
fn removed_leaves(conn: &Connection, first: i64, last: i64) -> Result<HashMap<i64, Hash>> {
    let mut statement =
        conn.prepare_cached("SELECT id, hash FROM removed_leaves WHERE id BETWEEN ?1 AND ?2")?;
    let rows = statement.query_map([first, last], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, hash) = row?;
        if let Ok(hash) = hash.try_into() {
            out.insert(id, hash);
        }
    }
    Ok(out)
}

/// The leaves with index in `start..end` as kept: from kept chunks, then runs.
fn read_stored(conn: &Connection, start: u64, end: u64) -> Result<Vec<StoredLeaf>> {
    let mut out = Vec::new();
    let mut statement = conn.prepare_cached(
        "SELECT chunk, first_id, last_id, root, id_runs, fingerprints FROM leaf_chunks \
         WHERE chunk >= ?1 AND chunk < ?2 ORDER BY chunk",
    )?;
    let chunks = statement
        .query_map(
            params![(start / CHUNK) as i64, end.div_ceil(CHUNK) as i64],
            read_kept_chunk,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for chunk in &chunks {
        let removed = removed_leaves(conn, chunk.first_id, chunk.last_id)?;
        out.extend(chunk.stored_leaves(&removed, start, end));
    }
    out.extend(
        read_runs(conn, start, end)?
            .into_iter()
            .map(|l| StoredLeaf {
                index: l.index,
                id: l.id,
                kept: logbook_core::integrity::Kept::Hash(l.hash),
            }),
    );
    Ok(out)
}

fn read_stored_of(conn: &Connection, id: i64) -> Result<Option<StoredLeaf>> {
    let chunk = conn
        .prepare_cached(
            "SELECT chunk, first_id, last_id, root, id_runs, fingerprints FROM leaf_chunks \
             WHERE first_id <= ?1 ORDER BY first_id DESC LIMIT 1",
        )?
        .query_row([id], read_kept_chunk)
        .optional()?
        .filter(|c| id <= c.last_id);
    if let Some(chunk) = chunk {
        let Some(index) = chunk.index_of(id) else {
            return Ok(None);
        };
        let removed = removed_leaves(conn, id, id)?;
        return Ok(chunk.stored_leaves(&removed, index, index + 1).pop());
    }
    Ok(read_leaf_of(conn, id)?.map(|l| StoredLeaf {
        index: l.index,
        id: l.id,
        kept: logbook_core::integrity::Kept::Hash(l.hash),
    }))
}

fn read_chunk_roots(conn: &Connection, first: u64, count: u64) -> Result<Vec<Hash>> {
    let mut statement = conn
        .prepare_cached("SELECT root FROM leaf_chunks WHERE chunk >= ?1 ORDER BY chunk LIMIT ?2")?;
    let rows = statement.query_map(
        params![
            i64::try_from(first).unwrap_or(i64::MAX),
            i64::try_from(count).unwrap_or(i64::MAX)
        ],
        |r| r.get::<_, Vec<u8>>(0),
    )?;
    let mut out = Vec::new();
    for root in rows {
        let root: Hash = root?
            .try_into()
            .map_err(|_| StoreError::Internal("a kept chunk root is not 32 bytes".into()))?;
        out.push(root);
    }
    Ok(out)
}

/// The leaf of record `id` if it is still in a run.
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
        recomputed_leaves(self, || self.stored_leaves(start, end)).await
    }

    async fn leaf_of(&self, id: i64) -> Result<Option<Leaf>> {
        let read_stored = || async move {
            let stored = self
                .readers
                .read(move |conn| in_snapshot(conn, |conn| read_stored_of(conn, id)))
                .await?;
            Ok(stored.into_iter().collect())
        };
        Ok(recomputed_leaves(self, read_stored).await?.pop())
    }

    async fn stored_leaves(&self, start: u64, end: u64) -> Result<Vec<StoredLeaf>> {
        self.readers
            .read(move |conn| in_snapshot(conn, |conn| read_stored(conn, start, end)))
            .await
    }

    async fn chunk_roots(&self, first: u64, count: u64) -> Result<Vec<Hash>> {
        self.readers
            .read(move |conn| read_chunk_roots(conn, first, count))
            .await
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
