//! The embedded store: one SQLite file in WAL mode in the data directory, created on
//! first start. `synchronous = FULL` makes every commit durable against power loss
//! (a WAL fsync per transaction); group commit in the writer keeps that affordable.

mod accounts;
pub(crate) mod actions;
pub mod backup;
pub mod baseline;
mod export;
mod idempotency;
mod integrity;
pub(crate) mod objects;
mod pool;
mod records;
pub(crate) mod schema;
mod sealer;
pub(crate) mod tiered;
mod writer;

use crate::blocks::tiers::TierOptions;
use crate::{Notifier, Result, Store, StoreError};
use logbook_core::query::Scalar;
use pool::ReadPool;
use rusqlite::{params_from_iter, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use writer::Writer;

pub use crate::blocks::tiers::TierOptions as Tiers;
pub use schema::latest_version as latest_schema_version;
pub use schema::migrate_up_to;

const DATABASE_FILE: &str = "logbook.db";
/// Held shared by every process that has the store open, exclusively by a restore.
const LOCK_FILE: &str = "logbook.lock";
const READERS: usize = 8;

/// How the records' tiers are sized, and whether this process runs the sealer.
#[derive(Debug, Clone)]
pub struct RecordLayout {
    pub options: TierOptions,
    /// Runs the background sealer (and the upgrade of rows of the previous layout).
    pub seal: bool,
}

impl Default for RecordLayout {
    fn default() -> Self {
        RecordLayout {
            options: TierOptions::default(),
            seal: true,
        }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    /// Held for its `Drop`, which stops it before the writer (whose queue it feeds)
    /// is dropped: fields drop in order.
    _sealer: Option<sealer::Sealer>,
    tiered: Arc<tiered::Tiered>,
    writer: Writer,
    readers: Arc<ReadPool>,
    notifier: Arc<Notifier>,
    /// The shared lock that keeps `logbook restore` from swapping the file under us.
    _in_use: std::fs::File,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(dir, RecordLayout::default())
    }

    /// As [`SqliteStore::open`], with the records in `layout`.
    pub fn open_with(dir: &Path, layout: RecordLayout) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let in_use = lock_shared(dir)?;
        let path = dir.join(DATABASE_FILE);
        let mut conn = open_writer(&path)?;
        schema::migrate(&mut conn)?;
        let counter = |key: &str| -> Result<i64> {
            Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
        };
        let last_record_id = counter("last_record_id")?;
        let last_action_seq = counter("last_action_seq")?;
        let notifier = Arc::new(Notifier::new(last_record_id));
        let tiered = tiered::Tiered::open(&conn, path.clone(), layout.options)?;
        integrity::backfill(&conn, &tiered)?;
        integrity::keep_all_chunks(&conn)?;
        let reopen_path = path.clone();
        let writer = Writer::start_reopening(
            conn,
            (last_record_id + 1, last_action_seq + 1),
            Arc::clone(&notifier),
            Some(Arc::clone(&tiered)),
            Some(Box::new(move || open_writer(&reopen_path))),
        );
        let sealer = match (layout.seal, writer.handle()) {
            (true, Some(handle)) => Some(sealer::Sealer::start(Arc::clone(&tiered), handle)),
            _ => None,
        };
        Ok(SqliteStore {
            readers: Arc::new(ReadPool::new(path.clone(), READERS)),
            path,
            _sealer: sealer,
            tiered,
            writer,
            notifier,
            _in_use: in_use,
        })
    }

    /// What each tier holds now.
    pub fn tier_status(&self) -> crate::blocks::tiers::TierStatus {
        crate::blocks::tiers::TierStatus::of(&self.tiered.tiers.snapshot())
    }

    /// Seals every block the hot tier's bounds call for, now (tests, tools).
    pub async fn seal_pending(&self) -> Result<u64> {
        let tiered = &self.tiered;
        let mut sealed = 0;
        loop {
            let (sender, receiver) = std::sync::mpsc::channel();
            let tiered = Arc::clone(tiered);
            let planned = tokio::task::spawn_blocking(move || {
                let hand_over = |job| {
                    let _ = sender.send(job);
                    Ok(true)
                };
                match sealer::seal_once(&tiered, &hand_over)? {
                    true => Ok(true),
                    false => tiered::upgrade_once(&tiered, &hand_over),
                }
            })
            .await
            .map_err(|e| StoreError::Internal(format!("sealer task failed: {e}")))??;
            let Ok(job) = receiver.try_recv() else {
                return Ok(sealed);
            };
            if !planned {
                return Ok(sealed);
            }
            if self
                .writer
                .write(move |conn, batch| job(conn, batch))
                .await?
            {
                sealed += 1;
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Sealed and hot records in the store in `dir`, read from its file beside a server
/// that may be running (the benchmark watches the sealer with it).
pub fn tier_counts(dir: &Path) -> Result<(u64, u64)> {
    let conn = pool::open_reader(&dir.join(DATABASE_FILE))?;
    let (sealed, hot): (i64, i64) = conn.query_row(
        "SELECT (SELECT coalesce(sum(rows), 0) FROM blocks), \
                (SELECT coalesce(sum(last_id - first_id + 1), 0) FROM hot_segments)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((sealed.max(0) as u64, hot.max(0) as u64))
}

fn lock_file(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
}

fn lock_shared(dir: &Path) -> Result<std::fs::File> {
    let file = lock_file(dir)?;
    file.try_lock_shared().map_err(|_| {
        StoreError::Unavailable(format!(
            "the store in {} is being restored; try again when that is done",
            dir.display()
        ))
    })?;
    Ok(file)
}

/// The lock only a process that is alone with the store gets (released on drop).
pub(crate) fn lock_exclusive(dir: &Path) -> Result<std::fs::File> {
    let file = lock_file(dir)?;
    file.try_lock().map_err(|_| {
        StoreError::Unavailable(format!(
            "the store in {} is in use by another process (a running server?); stop it first",
            dir.display()
        ))
    })?;
    Ok(file)
}

fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(writer::WRITE_BUSY_TIMEOUT)?;
    // A block is one BLOB of a few megabytes, a chain of overflow pages that SQLite
    // follows page by page from its start to reach an offset: 1.1 ms to reach 2 MB
    // in, at every read of a page (a get by id reads one near the end). With
    // auto_vacuum's pointer map it finds each next page without reading the one
    // before: 0.05 ms (docs/storage.md). INCREMENTAL keeps the map and never moves
    // pages on its own. It can only be chosen before the first table exists.
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{} cannot use write-ahead logging (journal_mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A commit rewrites the same hot pages (the tail of the table and of each index);
    // checkpointing every 1000 WAL pages (the default) copied them back into the
    // database every few commits. Every 10000 pages (about 40 MB of WAL) lets one
    // checkpoint carry many commits' versions of a page at once.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    // A WAL that a long reader made grow past this is cut back once it is reset.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Room for every statement a request runs, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    fn write_state(&self) -> tokio::sync::watch::Receiver<crate::WriteState> {
        self.writer.state()
    }

    fn writer_stats(&self) -> Option<crate::WriterStats> {
        Some(self.writer.stats())
    }

    async fn tier_figures(&self) -> crate::Result<Option<crate::TierFigures>> {
        Ok(Some(crate::TierFigures {
            status: self.tier_status(),
            hot_bound: self.tiered.tiers.options.hot_records as u64,
        }))
    }

    async fn create_action_recorded(
        &self,
        new: logbook_core::NewAction,
        event: crate::ActionEvent,
    ) -> crate::Result<logbook_core::Action> {
        self.writer
            .write(move |conn, batch| {
                let action = actions::insert_action(conn, batch, new.clone())?;
                records::insert_records(conn, batch, &[event(&action)])?;
                Ok(action)
            })
            .await
    }

    async fn transition_action_recorded(
        &self,
        uuid: &str,
        to: logbook_core::ActionState,
        end_date: Option<logbook_core::Timestamp>,
        event: crate::ActionEvent,
    ) -> crate::Result<logbook_core::Action> {
        let uuid = uuid.to_string();
        self.writer
            .write(move |conn, batch| {
                let action = actions::apply_transition(conn, batch, &uuid, to, end_date)?;
                records::insert_records(conn, batch, &[event(&action)])?;
                Ok(action)
            })
            .await
    }
}

/// One page of `table`'s rows matching `filter`, in `order`, and how many match in
/// all, read in one transaction so that the two agree (action and object listings).
#[allow(clippy::too_many_arguments)]
pub(crate) fn counted_page<T>(
    conn: &mut Connection,
    table: &str,
    columns: &str,
    filter: &str,
    order: &str,
    params: &[Scalar],
    (limit, offset): (Option<u64>, u64),
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T>>,
) -> Result<(Vec<T>, u64)> {
    let tx = conn.transaction()?;
    let params = sql_params(params);
    let total: i64 = tx.query_row(
        &format!("SELECT count(*) FROM {table} WHERE {filter}"),
        params_from_iter(params.iter()),
        |r| r.get(0),
    )?;
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let mut rows = Vec::new();
    {
        let mut stmt = tx.prepare(&sql)?;
        for row in stmt.query_map(params_from_iter(params.iter()), read)? {
            rows.push(row??);
        }
    }
    tx.commit()?;
    Ok((rows, total.max(0) as u64))
}

/// Query parameters in the form rusqlite binds.
fn sql_params(values: &[Scalar]) -> Vec<Box<dyn rusqlite::ToSql>> {
    values
        .iter()
        .map(|v| -> Box<dyn rusqlite::ToSql> {
            match v {
                Scalar::Int(n) => Box::new(*n),
                Scalar::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_keeps_the_pointer_map_an_existing_one_keeps_its_mode() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(DATABASE_FILE);
        let conn = open_writer(&path).expect("open");
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(
            mode, 2,
            "INCREMENTAL, so block reads find overflow pages by the map"
        );

        let old = dir.path().join("old.sqlite");
        Connection::open(&old)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER)"))
            .expect("an earlier version's file");
        let conn = open_writer(&old).expect("open");
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, 0, "a file with tables is left as it is");
    }

    /// A delete that keeps a block's first record rewrites the block under the same
    /// key. A reader still holding the catalog from before must be told to read
    /// again, not decode the new blob with the old layout's offsets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_block_rewritten_under_its_key_is_not_read_with_the_old_layout() {
        use crate::RecordStore;
        use logbook_core::query::{Condition, Field, Scalar};
        let dir = tempfile::tempdir().expect("dir");
        let layout = RecordLayout {
            options: TierOptions {
                block_rows: 7,
                page_rows: 3,
                hot_records: 0,
                hot_age: std::time::Duration::from_secs(3600),
                zstd_level: 1,
            },
            seal: false,
        };
        let store = SqliteStore::open_with(dir.path(), layout).expect("open");
        let records = (0..7)
            .map(|i| logbook_core::NewRecord {
                category: Some(if i == 0 { "kept" } else { "gone" }.into()),
                message: Some(format!("record {i} {}", "x".repeat(i * 40))),
                ..logbook_core::NewRecord::new(logbook_core::Kind::Log)
            })
            .collect();
        store.append(records).await.expect("append");
        store.seal_pending().await.expect("seal");
        let before = store.tiered.tiers.snapshot().segments();
        assert!(
            before
                .iter()
                .any(|s| !s.summary.opaque && s.summary.rows == 7),
            "one sealed block of 7"
        );
        let gone = logbook_core::Query::oldest_first().with(Condition::In(
            Field::Category,
            vec![Scalar::Text("gone".into())],
        ));
        let journal: crate::ClearRecord = Box::new(|_: &crate::Removal| {
            logbook_core::NewRecord::new(logbook_core::Kind::Journal)
        });
        assert_eq!(
            store.delete_recorded(&gone, journal).await.expect("delete"),
            6
        );
        // The delete read the old block's pages into the cache; a stale read that
        // finds them there reads the old block, consistently. One that does not
        // (evicted meanwhile) reads the blob.
        store.tiered.cache.clear();
        for id in 1..=7 {
            let segments = before.clone();
            let stale =
                tokio::task::spawn_blocking(move || crate::blocks::engine::get(&segments, id))
                    .await
                    .expect("read");
            assert!(
                matches!(stale, Err(StoreError::NotFound)),
                "the old catalog's read of {id} is refused, to be read again: {stale:?}"
            );
        }
        let kept = store.get(1).await.expect("get").expect("record 1");
        assert_eq!(kept.message.as_deref(), Some("record 0 "));
        assert_eq!(store.get(2).await.expect("get"), None);
    }

    /// An export hands pages on at its client's pace; clients that stop reading
    /// must not hold the pool's readers from every other query.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exports_whose_clients_stop_reading_hold_none_of_the_pools_readers() {
        use crate::RecordStore;
        use futures_util::StreamExt;
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        // More rows than an export buffers between its reader and its client.
        for batch in 0..30 {
            let records = (0..1000)
                .map(|i| logbook_core::NewRecord {
                    message: Some(format!("record {batch}-{i}")),
                    ..logbook_core::NewRecord::new(logbook_core::Kind::Log)
                })
                .collect();
            store.append(records).await.expect("append");
        }
        let mut stalled = Vec::new();
        for _ in 0..READERS {
            let mut export = store.export(logbook_core::Query::oldest_first());
            let first = export.next().await.expect("a batch").expect("read");
            assert!(!first.is_empty());
            stalled.push(export);
        }
        assert_eq!(
            store.readers.available(),
            READERS,
            "the stalled exports hold none of the pool's readers"
        );
        let got = store.get(1).await.expect("get").expect("record 1");
        assert_eq!(got.id, 1);
    }
}
