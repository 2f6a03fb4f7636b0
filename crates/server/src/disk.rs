//! The disk under the store: journals when writes stop for lack of space and when
//! they resume (one record each), and watches the free space of the data directory,
//! warning (log, and the `logbook_disk_free_bytes` figure) when it falls below the
//! configured threshold. Both run as one task per node, started by
//! [`AppState::new`](crate::state::AppState::new).

use crate::state::AppState;
use logbook_core::{Kind, Level, NewRecord};
use logbook_store::{DiskFull, Store, WriteState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Journal `action` names of the records this module writes.
pub mod actions {
    pub const WRITES_STOPPED: &str = "logbook.store.writes_stopped";
    pub const WRITES_RESUMED: &str = "logbook.store.writes_resumed";
}

/// How often the free space of the data directory is measured.
const FREE_SPACE_EVERY: Duration = Duration::from_secs(10);

/// What the node knows of its disk, for `/readyz` and the metrics.
#[derive(Debug, Default)]
pub struct DiskStatus {
    /// Bytes free for an unprivileged writer on the data directory's filesystem
    /// (`u64::MAX` when unknown: PostgreSQL, or not measured yet).
    pub free_bytes: AtomicU64,
    /// Whether free space is below the threshold.
    pub low: AtomicBool,
}

impl DiskStatus {
    pub fn new() -> DiskStatus {
        DiskStatus {
            free_bytes: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        }
    }
}

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Starts the watchers of `state` (needs a Tokio runtime; without one, nothing).
pub(crate) fn start(state: &AppState) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(journal_write_state(
        Arc::clone(&state.store),
        state.shutdown.clone(),
    ));
    if let Some(dir) = state.config.data_dir.clone() {
        tokio::spawn(watch_free_space(
            dir,
            state.config.min_free_bytes,
            Arc::clone(&state.disk),
            state.shutdown.clone(),
        ));
    }
}

fn system_record(action: &str, level: Level, status: &str, message: String) -> NewRecord {
    let mut record = NewRecord::new(Kind::Journal);
    record.level = Some(level);
    record.category = Some("system".into());
    record.source = Some("logbook".into());
    record.action = Some(action.into());
    record.status = Some(status.into());
    record.object_type = Some("store".into());
    record.object_id = Some("store".into());
    record.message = Some(message);
    record
}

/// One journal record when writes stop, one when they resume. While the disk is
/// full the first cannot be written; both are written (the first with the time
/// writes stopped) as soon as a write goes through again.
async fn journal_write_state(
    store: Arc<dyn Store>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut states = store.write_state();
    let mut journaled = states.borrow().ended;
    loop {
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let state: WriteState = states.borrow_and_update().clone();
        if state.ended == journaled {
            continue;
        }
        journaled = state.ended;
        let mut batch = Vec::new();
        if let Some(DiskFull { since, detail }) = state.last_ended {
            let mut record = system_record(
                actions::WRITES_STOPPED,
                Level::Critical,
                "failure",
                "writes stopped: the disk holding the store is full".into(),
            );
            record.ts = Some(since);
            let mut data = serde_json::Map::new();
            data.insert("detail".into(), serde_json::Value::String(detail));
            record.data = Some(data);
            batch.push(record);
        }
        batch.push(system_record(
            actions::WRITES_RESUMED,
            Level::Info,
            "success",
            "writes resumed: the disk holding the store has space again".into(),
        ));
        if let Err(e) = store.append(batch).await {
            tracing::warn!(error = %e, "could not journal that writes stopped and resumed");
        }
    }
}

async fn watch_free_space(
    dir: PathBuf,
    threshold: u64,
    disk: Arc<DiskStatus>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(FREE_SPACE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let measured = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || free_bytes(&dir)).await
        };
        let free = match measured {
            Ok(Ok(free)) => free,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, dir = %dir.display(), "cannot measure free space");
                continue;
            }
            Err(_) => continue,
        };
        disk.free_bytes.store(free, Ordering::Relaxed);
        let low = free < threshold;
        if low && !disk.low.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                free_bytes = free,
                threshold_bytes = threshold,
                dir = %dir.display(),
                "free space on the disk holding the store is low"
            );
        } else if !low && disk.low.swap(false, Ordering::Relaxed) {
            tracing::info!(free_bytes = free, dir = %dir.display(), "free space is above the threshold again");
        }
    }
}
