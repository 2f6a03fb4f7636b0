//! PostgreSQL's sealed tier (docs/postgres.md, "Hot rows and sealed blocks"): the
//! same blocks as the embedded store (`blocks/format.rs`), one row of `blocks` each
//! (header, summary and the blob as `bytea` stored EXTERNAL, so a page is read
//! with `substring` without reading the rest), made from the oldest hot rows of
//! `records` by one node at a time. Queries hand the blocks to the shared engine
//! as `Segment`s; what lives here is only how their rows and pages are read and
//! written.
//!
//! A block's content never changes under its `generation` (a number from a
//! sequence, new for every block written, a delete's rewrite included), so every
//! node caches decoded summaries (all) and pages (bounded) keyed by it.

use super::records::{read_record, RECORD_COLUMNS};
use super::writer::HORIZON;
use crate::blocks::cache::{dictionary_bytes, page_bytes, CacheEntry, PageCache};
use crate::blocks::format::{self, Dictionary, Layout, Page};
use crate::blocks::segment::{PageSource, Segment};
use crate::blocks::summary::Summary;
use crate::blocks::tiers::{TierOptions, TierStatus};
use crate::{Result, StoreError};
use deadpool_postgres::{GenericClient, Pool};
use logbook_core::Record;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Bytes of decoded pages kept per node (as the embedded store).
const PAGE_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// First part of the sealer's advisory lock ("LS"); deletes take it too.
pub const SEAL_LOCK_CLASS: i32 = 0x4C53;
/// How often an idle sealer looks at the hot tier.
const IDLE: Duration = Duration::from_millis(100);

/// The blocks of one schema as this node knows them.
pub struct PgTiers {
    pub options: TierOptions,
    pool: Pool,
    handle: tokio::runtime::Handle,
    cache: PageCache,
    /// Every block seen, by generation.
    segments: Mutex<HashMap<i64, Segment>>,
    lock_key: i32,
    /// The oldest hot id and when this node first saw it oldest (the age bound).
    oldest: Mutex<Option<(i64, Instant)>>,
    /// Records this node has sealed, and the time its seals took in all.
    pub sealed_records: AtomicU64,
    pub sealing_micros: AtomicU64,
    /// Ids this node has sealed since it last vacuumed their partitions: the lowest
    /// and highest, and how many records.
    unvacuumed: Mutex<Option<(i64, i64, u64)>>,
    /// Partitions this node has vacuumed after sealing.
    pub vacuums: AtomicU64,
    /// Partitions this node has dropped once sealing emptied them.
    pub dropped_partitions: AtomicU64,
}

impl PgTiers {
    pub fn new(pool: Pool, options: TierOptions, lock_key: i32) -> Arc<PgTiers> {
        Arc::new(PgTiers {
            options,
            pool,
            handle: tokio::runtime::Handle::current(),
            cache: PageCache::new(PAGE_CACHE_BYTES),
            segments: Mutex::new(HashMap::new()),
            lock_key,
            oldest: Mutex::new(None),
            sealed_records: AtomicU64::new(0),
            sealing_micros: AtomicU64::new(0),
            unvacuumed: Mutex::new(None),
            vacuums: AtomicU64::new(0),
            dropped_partitions: AtomicU64::new(0),
        })
    }

    /// The blocks visible in the snapshot of `tx`, in id order, as segments.
    pub async fn blocks_in(self: &Arc<Self>, tx: &impl GenericClient) -> Result<Vec<Segment>> {
        let statement = tx
            .prepare_cached("SELECT generation FROM blocks ORDER BY first_id")
            .await?;
        let listed: Vec<i64> = tx
            .query(&statement, &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if listed.is_empty() {
            return Ok(Vec::new());
        }
        let missing: Vec<i64> = {
            let known = lock(&self.segments);
            listed
                .iter()
                .copied()
                .filter(|g| !known.contains_key(g))
                .collect()
        };
        if !missing.is_empty() {
            let rows = tx
                .query(
                    "SELECT generation, header, summary FROM blocks WHERE generation = ANY($1)",
                    &[&missing],
                )
                .await?;
            let mut loaded = Vec::with_capacity(rows.len());
            for row in rows {
                let generation: i64 = row.try_get(0)?;
                let header: Vec<u8> = row.try_get(1)?;
                let summary: Vec<u8> = row.try_get(2)?;
                loaded.push((generation, self.segment(generation, &header, &summary)?));
            }
            lock(&self.segments).extend(loaded);
        }
        let mut known = lock(&self.segments);
        let out = listed
            .iter()
            .filter_map(|g| known.get(g).cloned())
            .collect::<Vec<_>>();
        if out.len() != listed.len() {
            return Err(StoreError::NotFound);
        }
        // Blocks no longer listed (rewritten or dropped) go; a reader with an older
        // snapshot that still lists one loads it again.
        if known.len() > listed.len() * 2 + 16 {
            let keep: std::collections::HashSet<i64> = listed.iter().copied().collect();
            known.retain(|g, _| keep.contains(g));
        }
        Ok(out)
    }

    fn segment(
        self: &Arc<Self>,
        generation: i64,
        header: &[u8],
        summary: &[u8],
    ) -> Result<Segment> {
        Ok(Segment {
            summary: Arc::new(Summary::read(summary)?),
            source: Arc::new(PgBlock {
                generation,
                layout: Layout::parse(header)?,
                tiers: Arc::downgrade(self),
            }),
        })
    }

    /// Byte ranges of a block's blob, read on this (blocking) thread.
    fn read_ranges(
        &self,
        generation: i64,
        ranges: &[std::ops::Range<usize>],
    ) -> Result<Vec<Vec<u8>>> {
        let offsets: Vec<i32> = ranges.iter().map(|r| r.start as i32 + 1).collect();
        let lengths: Vec<i32> = ranges.iter().map(|r| r.len() as i32).collect();
        let pool = self.pool.clone();
        let parts: Vec<Vec<u8>> = self.handle.block_on(async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT substring(b.data FROM r.o FOR r.l) FROM blocks b, \
                     unnest($2::int4[], $3::int4[]) WITH ORDINALITY AS r(o, l, n) \
                     WHERE b.generation = $1 ORDER BY r.n",
                )
                .await?;
            let rows = client
                .query(&statement, &[&generation, &offsets, &lengths])
                .await?;
            rows.iter()
                .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(StoreError::from))
                .collect::<Result<Vec<_>>>()
        })?;
        if parts.len() != ranges.len() || parts.iter().zip(ranges).any(|(p, r)| p.len() != r.len())
        {
            // The block was rewritten or dropped after the snapshot that listed it.
            return Err(StoreError::NotFound);
        }
        Ok(parts)
    }

    /// Seals the oldest hot records below the horizon into one block, if the hot
    /// tier is over its bounds (or, with `force`, whatever is below the horizon
    /// and at least a block's worth, or anything when it is over its age). The
    /// block appears and the rows go in one transaction, under the sealer's lock,
    /// so one node seals at a time and a node that dies mid-seal leaves nothing.
    /// `wait` waits for the lock instead of giving up when another node holds it.
    pub async fn seal_once(&self, wait: bool) -> Result<bool> {
        let started = Instant::now();
        let mut client = self.pool.get().await?;
        // READ COMMITTED: the lock is taken before anything is read, so every later
        // statement sees the last seal committed; rows below the horizon cannot
        // appear later (docs/postgres.md) nor go (deletes take the same lock).
        let tx = client.transaction().await?;
        let locked: bool = if wait {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&SEAL_LOCK_CLASS, &self.lock_key],
            )
            .await?;
            true
        } else {
            tx.query_one(
                "SELECT pg_try_advisory_xact_lock($1, $2)",
                &[&SEAL_LOCK_CLASS, &self.lock_key],
            )
            .await?
            .get(0)
        };
        if !locked {
            return Ok(false);
        }
        let horizon: i64 = tx.query_one(HORIZON, &[]).await?.get(0);
        let options = &self.options;
        // Counted only as far as both bounds need (a large upgraded table is not
        // counted whole).
        let probe = options
            .hot_records
            .max(options.block_rows)
            .saturating_add(1) as i64;
        let row = tx
            .query_one(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM records WHERE id <= $1 \
                         ORDER BY id LIMIT $2) AS h), \
                        (SELECT min(id) FROM records WHERE id <= $1)",
                &[&horizon, &probe],
            )
            .await?;
        let (hot, oldest): (i64, Option<i64>) = (row.get(0), row.get(1));
        let Some(oldest) = oldest else {
            *lock(&self.oldest) = None;
            return Ok(false);
        };
        let over_age = {
            let mut seen = lock(&self.oldest);
            match *seen {
                Some((id, at)) if id == oldest => at.elapsed() >= options.hot_age,
                _ => {
                    *seen = Some((oldest, Instant::now()));
                    false
                }
            }
        };
        let full = hot >= options.block_rows as i64;
        let over_count = hot > options.hot_records as i64;
        if !(over_age || over_count && full) {
            return Ok(false);
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM records WHERE id <= $1 ORDER BY id LIMIT $2"
                ),
                &[&horizon, &(options.block_rows as i64)],
            )
            .await?;
        let records: Vec<Record> = rows.iter().map(read_record).collect::<Result<_>>()?;
        drop(rows);
        let (Some(first), Some(last)) =
            (records.first().map(|r| r.id), records.last().map(|r| r.id))
        else {
            return Ok(false);
        };
        let count = records.len() as u64;
        let encode_options = format::Options {
            page_rows: options.page_rows,
            zstd_level: options.zstd_level,
        };
        let encoded =
            tokio::task::spawn_blocking(move || format::encode(&records, &encode_options))
                .await
                .map_err(|e| StoreError::Internal(format!("the block encoder failed: {e}")))?;
        insert_block(&tx, &encoded).await?;
        let removed = tx
            .execute(
                "DELETE FROM records WHERE id >= $1 AND id <= $2",
                &[&first, &last],
            )
            .await?;
        if removed != count {
            return Err(StoreError::Internal(format!(
                "sealing {first}..={last}: {removed} rows went, {count} were read"
            )));
        }
        tx.commit().await?;
        {
            let mut pending = lock(&self.unvacuumed);
            *pending = Some(match *pending {
                Some((lo, hi, n)) => (lo.min(first), hi.max(last), n + count),
                None => (first, last, count),
            });
        }
        self.sealed_records.fetch_add(count, Ordering::Relaxed);
        self.sealing_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Seals in the background until `stop`; errors are retried. The partitions
    /// of what it sealed are vacuumed once a hot tier's worth has gone from them
    /// (so later rows reuse the space while ingest goes on) and whenever it idles.
    pub async fn run_sealer(self: Arc<Self>) {
        let every = self.options.hot_records.max(self.options.block_rows) as u64;
        loop {
            let sealed = match self.seal_once(false).await {
                Ok(sealed) => sealed,
                Err(e) => {
                    tracing::warn!(error = %e, "sealing failed; retrying");
                    false
                }
            };
            let due = lock(&self.unvacuumed).is_some_and(|(_, _, n)| !sealed || n >= every);
            if due {
                if let Err(e) = self.drop_emptied_partitions().await {
                    tracing::warn!(error = %e, "dropping sealed partitions failed; retrying");
                }
                if let Err(e) = self.reclaim().await {
                    tracing::warn!(error = %e, "vacuuming sealed rows failed; retrying");
                }
            }
            if !sealed {
                tokio::time::sleep(IDLE).await;
            }
        }
    }

    /// Vacuums the `records` partitions holding rows this node has sealed since
    /// the last time, so their heap pages and index entries are reused by later
    /// rows (docs/postgres.md, "Disk after sealing"). MVCC-safe: VACUUM removes a
    /// sealed row only once no snapshot can still see it, and it locks only
    /// against other VACUUMs and DDL (`SKIP_LOCKED`: another node's vacuum of the
    /// same partition does the work). Returns the partitions vacuumed.
    pub async fn reclaim(&self) -> Result<u64> {
        let Some((lo, hi, n)) = lock(&self.unvacuumed).take() else {
            return Ok(0);
        };
        let done = self.vacuum_range(lo, hi).await;
        if done.is_err() {
            // Tried again next time, with whatever is sealed meanwhile.
            let mut pending = lock(&self.unvacuumed);
            *pending = Some(match *pending {
                Some((l, h, m)) => (l.min(lo), h.max(hi), m + n),
                None => (lo, hi, n),
            });
        }
        done
    }

    /// Drops the partitions of `records` that sealing (or deletes) emptied for
    /// good, giving their files back, where VACUUM only makes space reusable
    /// (docs/postgres.md, "Disk after sealing"). A partition goes when every id of
    /// its range is below the horizon (no append can still add a row to it) and
    /// it holds no row. It is detached CONCURRENTLY, which waits for every
    /// transaction holding a lock on `records` to end, then dropped, which waits
    /// for any lock on it: a reader whose snapshot still sees its rows locked it
    /// before taking that snapshot (`records::snapshot`), so it reads them whole.
    ///
    /// Runs under the sealer's and the partition lock, session-level (a
    /// concurrent detach cannot run in a transaction): nothing seals, deletes or
    /// attaches meanwhile, so no transaction holding a lock on `records` waits for
    /// this one's detach (a delete does its DELETE before its journal entry could
    /// need a partition). Returns the partitions dropped; a node that dies midway
    /// leaves a detach pending, finished by the next attempt (FINALIZE).
    pub async fn drop_emptied_partitions(&self) -> Result<u64> {
        let client = self.pool.get().await?;
        let try_lock = |class: i32| {
            let client = &client;
            async move {
                let locked: bool = client
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, $2)",
                        &[&class, &self.lock_key],
                    )
                    .await?
                    .get(0);
                Ok::<bool, StoreError>(locked)
            }
        };
        let dropped = match try_lock(SEAL_LOCK_CLASS).await {
            Ok(true) => match try_lock(super::PARTITION_LOCK_CLASS).await {
                Ok(true) => drop_emptied(&client).await,
                other => other.map(|_| 0),
            },
            other => other.map(|_| 0),
        };
        // Whichever of the two it holds (a pooled connection must go back with none).
        let unlocked = client
            .batch_execute("SELECT pg_advisory_unlock_all()")
            .await;
        let dropped = dropped?;
        unlocked?;
        self.dropped_partitions
            .fetch_add(dropped, Ordering::Relaxed);
        Ok(dropped)
    }

    async fn vacuum_range(&self, lo: i64, hi: i64) -> Result<u64> {
        let client = self.pool.get().await?;
        let names: Vec<String> = client
            .query(
                "SELECT name FROM record_partitions WHERE lo <= $2 AND hi > $1 ORDER BY lo",
                &[&lo, &hi],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        for name in &names {
            // VACUUM cannot run in a transaction block; a pooled connection is idle.
            let vacuumed = client
                .batch_execute(&format!(
                    "VACUUM (SKIP_LOCKED) {}",
                    super::schema::quote_ident(name)
                ))
                .await;
            match vacuumed {
                Ok(()) => self.vacuums.fetch_add(1, Ordering::Relaxed),
                // Dropped by another node since it was listed: nothing to reclaim.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
                Err(e) => return Err(e.into()),
            };
        }
        Ok(names.len() as u64)
    }

    /// What the tiers hold, in one snapshot.
    pub async fn status(self: &Arc<Self>) -> Result<TierStatus> {
        let mut client = self.pool.get().await?;
        let tx = super::records::snapshot(&mut client).await?;
        let row = tx
            .query_one(
                "SELECT (SELECT count(*) FROM blocks), (SELECT coalesce(sum(rows), 0)::bigint FROM blocks), \
                        (SELECT count(*) FROM records)",
                &[],
            )
            .await?;
        let horizon: i64 = tx.query_one(HORIZON, &[]).await?.get(0);
        tx.commit().await?;
        let (blocks, sealed, hot): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        Ok(TierStatus {
            hot_segments: u64::from(hot > 0),
            hot_records: hot.max(0) as u64,
            blocks: blocks.max(0) as u64,
            sealed_records: sealed.max(0) as u64,
            high_water: horizon,
        })
    }
}

/// The partitions [`PgTiers::drop_emptied_partitions`] may drop, dropped, oldest
/// first, on a connection holding the locks it names.
async fn drop_emptied(client: &deadpool_postgres::Client) -> Result<u64> {
    use super::schema::quote_ident;
    let horizon: i64 = client.query_one(HORIZON, &[]).await?.get(0);
    // Every id of these is below the horizon: every row they will ever hold is
    // committed and visible to the statements below, which start after it.
    let candidates: Vec<String> = client
        .query(
            "SELECT name FROM record_partitions WHERE hi - 1 <= $1 ORDER BY lo",
            &[&horizon],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    let mut dropped = 0;
    for name in candidates {
        let table = quote_ident(&name);
        // Attached (false), detach pending (true), or not a partition any more.
        let pending: Option<bool> = client
            .query_opt(
                "SELECT inhdetachpending FROM pg_inherits \
                 WHERE inhparent = 'records'::regclass AND inhrelid = to_regclass($1)",
                &[&table],
            )
            .await?
            .map(|r| r.get(0));
        match pending {
            Some(false) => {
                let holds_rows: bool = client
                    .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
                    .await?
                    .get(0);
                if holds_rows {
                    continue;
                }
                client
                    .batch_execute(&format!(
                        "ALTER TABLE records DETACH PARTITION {table} CONCURRENTLY"
                    ))
                    .await?;
            }
            Some(true) => {
                client
                    .batch_execute(&format!(
                        "ALTER TABLE records DETACH PARTITION {table} FINALIZE"
                    ))
                    .await?;
            }
            None => {}
        }
        client
            .batch_execute(&format!(
                // One query string: one implicit transaction.
                "DROP TABLE IF EXISTS {table}; \
                 DELETE FROM record_partitions WHERE name = {}",
                quote_literal(&name)
            ))
            .await?;
        dropped += 1;
    }
    Ok(dropped)
}

/// A string literal for SQL.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Inserts a block (a new generation) in the caller's transaction.
pub async fn insert_block(tx: &impl GenericClient, encoded: &format::Encoded) -> Result<()> {
    let end = Layout::header_end(&encoded.blob)?;
    let mut summary = Vec::new();
    encoded.summary.write(&mut summary);
    let statement = tx
        .prepare_cached(
            "INSERT INTO blocks (first_id, last_id, rows, header, summary, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &encoded.summary.first_id,
            &encoded.summary.last_id,
            &(encoded.summary.rows as i64),
            &&encoded.blob[..end],
            &summary,
            &encoded.blob,
        ],
    )
    .await?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain inserts and removals: a panic while holding it leaves it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A row of `blocks`, its pages read on demand through `substring`.
struct PgBlock {
    generation: i64,
    layout: Layout,
    tiers: Weak<PgTiers>,
}

impl PgBlock {
    fn key(&self, column: usize, page: u32) -> (u64, u16, u32) {
        (self.generation as u64, column as u16, page)
    }
}

impl PageSource for PgBlock {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn page(&self, column: usize, page: usize) -> Result<Arc<Page>> {
        Ok(self
            .pages(&[column], page)?
            .pop()
            .unwrap_or_else(|| Arc::new(Page::Absent)))
    }

    /// The pages (and dictionaries) not in the cache are read in one statement.
    fn pages(&self, columns: &[usize], page: usize) -> Result<Vec<Arc<Page>>> {
        let tiers = self.tiers.upgrade().ok_or(StoreError::Closed)?;
        let mut out: Vec<Option<Arc<Page>>> = vec![None; columns.len()];
        let mut wanted = Vec::new();
        for (i, &c) in columns.iter().enumerate() {
            let Some(range) = self.layout.page_range(c, page) else {
                out[i] = Some(Arc::new(Page::Absent));
                continue;
            };
            match tiers.cache.get(&self.key(c, page as u32)) {
                Some(CacheEntry::Page(p)) => out[i] = Some(p),
                _ => wanted.push((i, c, range)),
            }
        }
        if wanted.is_empty() {
            return Ok(out
                .into_iter()
                .map(|p| p.unwrap_or_else(|| Arc::new(Page::Absent)))
                .collect());
        }
        let mut dictionaries: HashMap<usize, Option<Arc<Dictionary>>> = HashMap::new();
        let mut ranges = Vec::new();
        let mut dictionary_columns = Vec::new();
        for (_, c, range) in &wanted {
            ranges.push(range.clone());
            match self.layout.dictionary_range(*c) {
                None => {
                    dictionaries.insert(*c, None);
                }
                Some(d) => match tiers.cache.get(&self.key(*c, u32::MAX)) {
                    Some(CacheEntry::Dictionary(d)) => {
                        dictionaries.insert(*c, Some(d));
                    }
                    _ => {
                        dictionary_columns.push(*c);
                        ranges.push(d);
                    }
                },
            }
        }
        let mut parts = tiers.read_ranges(self.generation, &ranges)?.into_iter();
        let mut page_parts = Vec::with_capacity(wanted.len());
        for (_, c, _) in &wanted {
            page_parts.push(parts.next().unwrap_or_default());
            if dictionary_columns.contains(c) && !dictionaries.contains_key(c) {
                let d = format::decode_dictionary(&parts.next().unwrap_or_default())?;
                tiers.cache.put(
                    self.key(*c, u32::MAX),
                    CacheEntry::Dictionary(Arc::clone(&d)),
                    dictionary_bytes(&d),
                );
                dictionaries.insert(*c, Some(d));
            }
        }
        let rows = self.layout.rows_of_page(page).len();
        for ((i, c, _), part) in wanted.into_iter().zip(page_parts) {
            let encoding = self
                .layout
                .columns
                .get(c)
                .map_or(format::Encoding::Absent, |l| l.encoding);
            let dictionary = dictionaries.get(&c).cloned().flatten();
            let decoded = Arc::new(format::decode_page(
                encoding,
                &part,
                rows,
                dictionary.as_ref(),
            )?);
            tiers.cache.put(
                self.key(c, page as u32),
                CacheEntry::Page(Arc::clone(&decoded)),
                page_bytes(&decoded),
            );
            out[i] = Some(decoded);
        }
        Ok(out
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Arc::new(Page::Absent)))
            .collect())
    }
}

/// Runs engine work over segments on a blocking thread (their pages are read
/// from the database there).
pub async fn on_blocks<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Internal(format!("a block read failed: {e}")))?
}
