//! Idempotency keys: a client's `Idempotency-Key` on a write, so a retry after a
//! lost answer gets the original answer instead of writing twice. The server
//! claims the key before it writes and stores the answer after; a claim whose
//! request never finished (its node died) is given up after [`LEASE`], so a retry
//! can run again. Keys expire (24 h by default, the server's setting).

use crate::Result;
use async_trait::async_trait;
use logbook_core::Timestamp;

/// How long a claimed key whose answer was never stored stays claimed.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired, or abandoned): the caller writes, then
    /// [`IdempotencyStore::complete_idempotency_key`] or `release_idempotency_key`.
    New,
    /// The key's request finished before with this answer.
    Replay { status: u16, body: String },
    /// The key was used with a different request (another fingerprint).
    Mismatch,
    /// The key's request is still running.
    InProgress,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `fingerprint` (a digest of what it asks),
    /// to be kept until `expires`.
    async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<Claim>;
    /// Stores the answer of the claimed key's request.
    async fn complete_idempotency_key(&self, key: &str, status: u16, body: &str) -> Result<()>;
    /// Gives the claim up (the request failed in a way a retry may fix).
    async fn release_idempotency_key(&self, key: &str) -> Result<()>;
}

/// A stored key's row: `(fingerprint, status, body, claimed, expires)`.
pub(crate) type KeyRow = (String, Option<i64>, Option<String>, i64, i64);

/// The claim rule both stores apply to the row they find (`None`: no row).
pub(crate) fn judge(row: Option<KeyRow>, fingerprint: &str, now: Timestamp) -> Claim {
    let Some((stored, status, body, claimed, expires)) = row else {
        return Claim::New;
    };
    if expires <= now.micros() {
        return Claim::New;
    }
    if stored != fingerprint {
        return Claim::Mismatch;
    }
    match (status, body) {
        (Some(status), Some(body)) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        _ if now.micros() - claimed > LEASE.as_micros() as i64 => Claim::New,
        _ => Claim::InProgress,
    }
}
