//! The benchmark's yardstick: the same rows inserted straight into SQLite, with the
//! same schema, indexes, pragmas, statements and transaction size, and none of
//! Logbook around them (no HTTP, no JSON text, no writer thread, no notifier).

use super::records::{insert_row, insert_statements};
use super::{open_writer, schema, DATABASE_FILE};
use crate::Result;
use logbook_core::{NewRecord, Timestamp};
use rusqlite::Connection;
use std::path::Path;

/// A raw SQLite database with Logbook's schema, filled by plain prepared inserts.
pub struct RawSqlite {
    conn: Connection,
    next_id: i64,
}

impl RawSqlite {
    /// Creates (or reopens) the database in `dir`, migrated to the current schema.
    pub fn open(dir: &Path) -> Result<RawSqlite> {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let mut conn = open_writer(&dir.join(DATABASE_FILE))?;
        schema::migrate(&mut conn)?;
        let next_id: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM records", [], |r| {
                r.get(0)
            })?;
        Ok(RawSqlite { conn, next_id })
    }

    /// Inserts the rows in one transaction (the message also into the trigram index).
    pub fn insert(&mut self, rows: Vec<NewRecord>) -> Result<()> {
        let now = Timestamp::now();
        let tx = self.conn.transaction()?;
        {
            let (mut insert, mut index) = insert_statements(&tx)?;
            for new in rows {
                let record = new.into_record(self.next_id, now);
                self.next_id += 1;
                insert_row(&mut insert, &mut index, &record)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
