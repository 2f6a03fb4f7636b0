//! The embedded store: one SQLite file in WAL mode in the data directory, created on
//! first start. `synchronous = FULL` makes every commit durable against power loss
//! (a WAL fsync per transaction); group commit in the writer keeps that affordable.

mod accounts;
pub(crate) mod actions;
pub mod baseline;
mod export;
pub(crate) mod objects;
pub(crate) mod plan;
mod pool;
mod records;
mod schema;
mod sealer;
mod tiered;
mod writer;

use crate::blocks::tiers::TierOptions;
use crate::{Notifier, Result, Store, StoreError};
use pool::ReadPool;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use writer::Writer;

pub use crate::blocks::tiers::TierOptions as Tiers;
pub use schema::latest_version as latest_schema_version;

const DATABASE_FILE: &str = "logbook.db";
const READERS: usize = 8;

/// How records are laid out.
#[derive(Debug, Clone, Default)]
pub enum RecordLayout {
    /// One indexed row per record (the layout of versions up to schema 3).
    #[default]
    Rows,
    /// Hot segments and sealed column blocks (docs/storage.md); `seal` runs the
    /// background sealer in this process.
    Tiered { options: TierOptions, seal: bool },
}

pub struct SqliteStore {
    path: PathBuf,
    /// Held for its `Drop`, which stops it before the writer (whose queue it feeds)
    /// is dropped: fields drop in order.
    _sealer: Option<sealer::Sealer>,
    tiered: Option<Arc<tiered::Tiered>>,
    writer: Writer,
    readers: Arc<ReadPool>,
    notifier: Arc<Notifier>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(dir, RecordLayout::Rows)
    }

    /// As [`SqliteStore::open`], with the records in `layout`.
    pub fn open_with(dir: &Path, layout: RecordLayout) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(DATABASE_FILE);
        let mut conn = open_writer(&path)?;
        schema::migrate(&mut conn)?;
        let counter = |key: &str| -> Result<i64> {
            Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
        };
        let last_record_id = counter("last_record_id")?;
        let last_action_seq = counter("last_action_seq")?;
        let notifier = Arc::new(Notifier::new(last_record_id));
        let (tiered, seal) = match layout {
            RecordLayout::Rows => (None, false),
            RecordLayout::Tiered { options, seal } => (
                Some(tiered::Tiered::open(&conn, path.clone(), options)?),
                seal,
            ),
        };
        let writer = Writer::start(
            conn,
            (last_record_id + 1, last_action_seq + 1),
            Arc::clone(&notifier),
            tiered.clone(),
        );
        let sealer = match (&tiered, seal, writer.handle()) {
            (Some(tiered), true, Some(handle)) => {
                Some(sealer::Sealer::start(Arc::clone(tiered), handle))
            }
            _ => None,
        };
        Ok(SqliteStore {
            readers: Arc::new(ReadPool::new(path.clone(), READERS)),
            path,
            _sealer: sealer,
            tiered,
            writer,
            notifier,
        })
    }

    /// What each tier holds now (`None` in the row layout).
    pub fn tier_status(&self) -> Option<crate::blocks::tiers::TierStatus> {
        self.tiered
            .as_ref()
            .map(|t| crate::blocks::tiers::TierStatus::of(&t.tiers.snapshot()))
    }

    /// Seals every block the hot tier's bounds call for, now (tests, tools).
    pub async fn seal_pending(&self) -> Result<u64> {
        let Some(tiered) = &self.tiered else {
            return Ok(0);
        };
        let mut sealed = 0;
        loop {
            let (sender, receiver) = std::sync::mpsc::channel();
            let tiered = Arc::clone(tiered);
            let planned = tokio::task::spawn_blocking(move || {
                sealer::seal_once(&tiered, &|job| {
                    let _ = sender.send(job);
                    Ok(true)
                })
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

fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
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
