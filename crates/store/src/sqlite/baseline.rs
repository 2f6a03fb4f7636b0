//! The benchmark's yardstick: the same rows inserted straight into SQLite, with the
//! same schema, indexes, pragmas and transaction size, and none of Logbook around
//! them (no HTTP, no JSON text, no writer thread, no notifier).

use super::plan::RECORD_COLUMNS;
use super::{open_writer, schema, DATABASE_FILE};
use crate::Result;
use logbook_core::{Level, NewRecord, Timestamp};
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
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO records ({RECORD_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
            ))?;
            let mut index =
                tx.prepare_cached("INSERT INTO records_fts (rowid, message) VALUES (?1, ?2)")?;
            for new in rows {
                let r = new.into_record(self.next_id, now);
                self.next_id += 1;
                let data = r.data.map(|d| serde_json::Value::Object(d).to_string());
                insert.execute(rusqlite::params![
                    r.id,
                    r.ts.micros(),
                    r.kind.code(),
                    r.level.map(Level::number),
                    r.category,
                    r.source,
                    r.instance,
                    r.logger,
                    r.user,
                    r.user_id,
                    r.domain_id,
                    r.project_id,
                    r.object_type,
                    r.object_id,
                    r.action,
                    r.status,
                    r.response_code,
                    r.request_id,
                    r.parent_request_id,
                    r.message,
                    data,
                ])?;
                if let Some(message) = &r.message {
                    index.execute(rusqlite::params![r.id, message])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
