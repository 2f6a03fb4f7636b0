//! Consistent copies of a running embedded store, and putting one back. A backup is
//! `VACUUM INTO` from a read transaction: everything committed before it began, in a
//! compact file, while the server goes on writing. Restoring swaps the file in only
//! when no process has the store open.

use super::{lock_exclusive, DATABASE_FILE};
use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// What a backup or restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub file: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
}

fn unavailable(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot {what} {}: {e}", path.display()))
}

/// Writes a consistent copy of the store in `data_dir` into `to_dir` (created if
/// needed; an existing backup there is refused rather than overwritten).
pub fn backup(data_dir: &Path, to_dir: &Path) -> Result<Copied> {
    let source = data_dir.join(DATABASE_FILE);
    if !source.is_file() {
        return Err(StoreError::Unavailable(format!(
            "no store in {} ({DATABASE_FILE} is missing)",
            data_dir.display()
        )));
    }
    fs::create_dir_all(to_dir).map_err(|e| unavailable("create", to_dir, e))?;
    let target = to_dir.join(DATABASE_FILE);
    if target.exists() {
        return Err(StoreError::Unavailable(format!(
            "{} already holds a backup; choose an empty directory",
            to_dir.display()
        )));
    }
    let partial = to_dir.join(format!("{DATABASE_FILE}.partial"));
    let _ = fs::remove_file(&partial);
    let conn = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| unavailable("open", &source, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let partial_text = partial
        .to_str()
        .ok_or_else(|| unavailable("use", &partial, "the path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [partial_text])?;
    let schema_version = schema_version(&partial)?;
    durable_rename(&partial, &target)?;
    Ok(Copied {
        bytes: size(&target)?,
        file: target,
        schema_version,
    })
}

/// Puts the backup in `from_dir` in place of the store in `data_dir`. Refused while any
/// process (a server, a `logbook user` command) has that store open, when the backup is
/// damaged or newer than this binary, and over an existing store unless `replace`.
pub fn restore(from_dir: &Path, data_dir: &Path, replace: bool) -> Result<Copied> {
    let source = from_dir.join(DATABASE_FILE);
    if !source.is_file() {
        return Err(StoreError::Unavailable(format!(
            "no backup in {} ({DATABASE_FILE} is missing)",
            from_dir.display()
        )));
    }
    let schema_version = schema_version(&source)?;
    if schema_version > super::latest_schema_version() {
        return Err(StoreError::Unavailable(format!(
            "the backup has schema version {schema_version}; this logbook knows up to {}",
            super::latest_schema_version()
        )));
    }
    let check: String = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| unavailable("open", &source, e))?
        .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Unavailable(format!(
            "the backup in {} is damaged: {check}",
            from_dir.display()
        )));
    }
    fs::create_dir_all(data_dir).map_err(|e| unavailable("create", data_dir, e))?;
    let _lock = lock_exclusive(data_dir)?;
    let target = data_dir.join(DATABASE_FILE);
    if target.exists() && !replace {
        return Err(StoreError::Unavailable(format!(
            "{} already holds a store; pass --replace to overwrite it",
            data_dir.display()
        )));
    }
    let partial = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    fs::copy(&source, &partial).map_err(|e| unavailable("copy into", &partial, e))?;
    // The old store's write-ahead log belongs to the old file: replayed over the
    // restored one it would corrupt it.
    for suffix in ["-wal", "-shm"] {
        let stale = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
        match fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(unavailable("remove", &stale, e)),
        }
    }
    durable_rename(&partial, &target)?;
    Ok(Copied {
        bytes: size(&target)?,
        file: target,
        schema_version,
    })
}

fn schema_version(file: &Path) -> Result<i64> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| unavailable("open", file, e))?;
    let is_store: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'meta'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| unavailable("read", file, e))?;
    if !is_store {
        return Err(StoreError::Unavailable(format!(
            "{} is not a Logbook store",
            file.display()
        )));
    }
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// fsyncs `from`, renames it to `to` and fsyncs the directory, so a crash leaves
/// either no file or the whole file under the final name.
fn durable_rename(from: &Path, to: &Path) -> Result<()> {
    File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(|e| unavailable("sync", from, e))?;
    fs::rename(from, to).map_err(|e| unavailable("rename", from, e))?;
    if let Some(dir) = to.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| unavailable("sync", dir, e))?;
    }
    Ok(())
}

fn size(file: &Path) -> Result<u64> {
    Ok(fs::metadata(file)
        .map_err(|e| unavailable("read", file, e))?
        .len())
}
