//! Idempotency keys in PostgreSQL, shared by every node: a claim locks the key's
//! row (or inserts it), so two nodes claiming one key are serialised.

use super::PostgresStore;
use crate::idempotency::{judge, Claim, IdempotencyStore};
use crate::Result;
use async_trait::async_trait;
use logbook_core::Timestamp;

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<Claim> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM idempotency_keys WHERE key IN \
             (SELECT key FROM idempotency_keys WHERE expires <= $1 LIMIT 64)",
            &[&now.micros()],
        )
        .await?;
        // Makes sure a row exists to lock; a new one is this request's claim.
        let inserted = tx
            .execute(
                "INSERT INTO idempotency_keys (key, fingerprint, status, body, claimed, expires) \
                 VALUES ($1, $2, NULL, NULL, $3, $4) ON CONFLICT (key) DO NOTHING",
                &[&key, &fingerprint, &now.micros(), &expires.micros()],
            )
            .await?;
        if inserted == 1 {
            tx.commit().await?;
            return Ok(Claim::New);
        }
        let row = tx
            .query_opt(
                "SELECT fingerprint, status, body, claimed, expires \
                 FROM idempotency_keys WHERE key = $1 FOR UPDATE",
                &[&key],
            )
            .await?
            .map(|r| {
                let status: Option<i32> = r.get(1);
                (
                    r.get::<_, String>(0),
                    status.map(i64::from),
                    r.get::<_, Option<String>>(2),
                    r.get::<_, i64>(3),
                    r.get::<_, i64>(4),
                )
            });
        let claim = judge(row, fingerprint, now);
        if claim == Claim::New {
            tx.execute(
                "UPDATE idempotency_keys SET fingerprint = $2, status = NULL, body = NULL, \
                 claimed = $3, expires = $4 WHERE key = $1",
                &[&key, &fingerprint, &now.micros(), &expires.micros()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(claim)
    }

    async fn complete_idempotency_key(&self, key: &str, status: u16, body: &str) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE idempotency_keys SET status = $2, body = $3 WHERE key = $1",
                &[&key, &i32::from(status), &body],
            )
            .await?;
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM idempotency_keys WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }
}
