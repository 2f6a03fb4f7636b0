//! Domain errors. They say what went wrong in domain terms; each API decides how
//! to render them, and the HTTP status is chosen in one place in the server.

use crate::action::ActionState;

/// A client-supplied value that cannot be accepted, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field as the client named it (for batches, prefixed with `[index].`).
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Prefix the field with the index of the item in a batch, e.g. `[3].level`.
    pub fn at_index(self, index: usize) -> Self {
        FieldError {
            field: format!("[{index}].{}", self.field),
            problem: self.problem,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("not found")]
    NotFound,
    #[error("cannot move from {from} to {to}")]
    Conflict { from: ActionState, to: ActionState },
    #[error("{0}")]
    Refused(String),
}
