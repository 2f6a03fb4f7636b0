//! Store errors, in terms a caller can act on.

use logbook_core::ActionState;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or answered with a fault; retrying later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A write failed for lack of space on the disk holding the store (SQLite's
    /// `SQLITE_FULL`, i.e. `ENOSPC`; PostgreSQL's `disk_full`). Nothing of it remains;
    /// retrying works once space is freed.
    #[error("the disk holding the store is full: {0}")]
    DiskFull(String),
    /// Too many writes are queued; the caller should retry after a pause.
    #[error("the store is busy; retry shortly")]
    Busy,
    #[error("not found")]
    NotFound,
    #[error("{what} already exists")]
    Exists { what: String },
    #[error("cannot move from {from} to {to}")]
    Conflict { from: ActionState, to: ActionState },
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
    /// A broken invariant or unexpected database answer; a bug, not a client error.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            Some(ErrorCode::ConstraintViolation) => StoreError::Exists {
                what: e.to_string(),
            },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull(e.to_string()),
            // An I/O error whose cause is ENOSPC (a write SQLite did not classify).
            Some(ErrorCode::SystemIoFailure) if is_enospc(&e.to_string()) => {
                StoreError::DiskFull(e.to_string())
            }
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// Whether an error's words say the disk is full (ENOSPC's and SQLite's wording).
pub(crate) fn is_enospc(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("no space left") || text.contains("database or disk is full")
}

impl StoreError {
    /// Whether the error is the write connection's own fault (an I/O error, a
    /// failed fsync), after which the connection's idea of the file cannot be
    /// trusted: the writer reopens it rather than retrying on it.
    pub fn is_io_failure(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
