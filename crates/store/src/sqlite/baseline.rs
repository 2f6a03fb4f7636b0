//! The benchmark's floor: the cost of durably storing the same bytes with nothing
//! of Logbook around them. Each NDJSON line is parsed (checked to be JSON) and
//! inserted as `(id, text)` into a SQLite table without indexes, one transaction per
//! 1000 rows, in WAL mode with `synchronous = FULL` (the durability Logbook promises).
//! Any store worth its indexes and summaries should ingest at least this fast.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// Rows per transaction.
pub const FLOOR_ROWS_PER_COMMIT: usize = 1000;

pub struct Floor {
    conn: Connection,
    next_id: i64,
}

impl Floor {
    /// Creates (or reopens) `floor.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Floor> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("floor.db"))?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS lines (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        )?;
        let next_id = conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM lines", [], |r| {
            r.get(0)
        })?;
        Ok(Floor { conn, next_id })
    }

    /// Stores every line of the NDJSON text, `FLOOR_ROWS_PER_COMMIT` to a commit.
    pub fn insert_ndjson(&mut self, ndjson: &str) -> Result<()> {
        let mut lines = ndjson.lines().filter(|l| !l.trim().is_empty()).peekable();
        while lines.peek().is_some() {
            let tx = self.conn.transaction()?;
            {
                let mut insert =
                    tx.prepare_cached("INSERT INTO lines (id, text) VALUES (?1, ?2)")?;
                for line in lines.by_ref().take(FLOOR_ROWS_PER_COMMIT) {
                    serde_json::from_str::<serde::de::IgnoredAny>(line).map_err(|e| {
                        StoreError::Invalid {
                            field: "line".into(),
                            problem: e.to_string(),
                        }
                    })?;
                    insert.execute(rusqlite::params![self.next_id, line])?;
                    self.next_id += 1;
                }
            }
            tx.commit()?;
        }
        Ok(())
    }
}
