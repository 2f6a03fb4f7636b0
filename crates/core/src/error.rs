//! Domain errors. They say what went wrong in domain terms; each API decides how
//! to render them, and the HTTP status is chosen in one place in the server.

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

/// Why the domain refuses something a caller asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A request that is legal in general but not now, given what `field` holds
    /// (cancelling a finished action, retrying one that is still running).
    #[error("{field}: {why}")]
    Refused { field: &'static str, why: String },
}
