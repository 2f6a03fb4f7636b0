//! Store errors, in terms a caller can act on.

use logbook_core::ActionState;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or answered with a fault; retrying later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
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
            Some(
                ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}
