//! Idempotency keys in SQLite: claims through the writer, so two claims of one key
//! are serialised and only one is `New`.

use super::SqliteStore;
use crate::idempotency::{judge, Claim, IdempotencyStore};
use crate::Result;
use async_trait::async_trait;
use logbook_core::Timestamp;
use rusqlite::OptionalExtension;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<Claim> {
        let (key, fingerprint) = (key.to_string(), fingerprint.to_string());
        self.writer
            .write(move |conn, _| {
                // Expired keys go a few at a time, so the table stays bounded.
                conn.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE key IN \
                     (SELECT key FROM idempotency_keys WHERE expires <= ?1 LIMIT 64)",
                )?
                .execute([now.micros()])?;
                let row = conn
                    .prepare_cached(
                        "SELECT fingerprint, status, body, claimed, expires \
                         FROM idempotency_keys WHERE key = ?1",
                    )?
                    .query_row([&key], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()?;
                let claim = judge(row, &fingerprint, now);
                if claim == Claim::New {
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO idempotency_keys \
                         (key, fingerprint, status, body, claimed, expires) \
                         VALUES (?1, ?2, NULL, NULL, ?3, ?4)",
                    )?
                    .execute(rusqlite::params![
                        key,
                        fingerprint,
                        now.micros(),
                        expires.micros()
                    ])?;
                }
                Ok(claim)
            })
            .await
    }

    async fn complete_idempotency_key(&self, key: &str, status: u16, body: &str) -> Result<()> {
        let (key, body) = (key.to_string(), body.to_string());
        self.writer
            .write(move |conn, _| {
                conn.prepare_cached(
                    "UPDATE idempotency_keys SET status = ?2, body = ?3 WHERE key = ?1",
                )?
                .execute(rusqlite::params![key, i64::from(status), body])?;
                Ok(())
            })
            .await
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.writer
            .write(move |conn, _| {
                conn.prepare_cached("DELETE FROM idempotency_keys WHERE key = ?1")?
                    .execute([&key])?;
                Ok(())
            })
            .await
    }
}
