//! A batch of records handed to the store as it arrives (issue 20: an NDJSON body
//! of 15 MB was about 31 MB of `NewRecord`s, held whole until the store had made
//! its own forms of them). [`RecordStore::record_batch`](crate::RecordStore::record_batch)
//! gives a batch in the form its store appends: the embedded store turns each
//! pushed chunk into its row form, hot pages and leaf forms at once and drops the
//! records; a store without such a form keeps them. Nothing is written before
//! `append_batch`, so a batch dropped half-read (a bad line) leaves no trace.

use crate::sqlite::tiered::{PreparedAppend, PreparingAppend};
use crate::{Result, StoreError};
use logbook_core::{NewRecord, Timestamp};

pub struct RecordBatch {
    form: Form,
}

enum Form {
    Records(Vec<NewRecord>),
    Preparing(Box<PreparingAppend>),
}

impl RecordBatch {
    /// A batch that keeps its records as they are.
    pub fn of_records() -> RecordBatch {
        RecordBatch {
            form: Form::Records(Vec::new()),
        }
    }

    /// A batch the embedded store prepares as it is pushed, received now (the
    /// `ts` of records without one).
    pub(crate) fn preparing() -> RecordBatch {
        RecordBatch {
            form: Form::Preparing(Box::new(PreparingAppend::with_capacity(
                0,
                Timestamp::now(),
            ))),
        }
    }

    /// Adds `records`, which follow those pushed before.
    pub fn push(&mut self, records: Vec<NewRecord>) {
        match &mut self.form {
            Form::Records(kept) if kept.is_empty() => *kept = records,
            Form::Records(kept) => kept.extend(records),
            Form::Preparing(preparing) => preparing.push(records),
        }
    }

    pub fn len(&self) -> usize {
        match &self.form {
            Form::Records(kept) => kept.len(),
            Form::Preparing(preparing) => preparing.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, for a store that appends them as they are.
    pub(crate) fn into_records(self) -> Result<Vec<NewRecord>> {
        match self.form {
            Form::Records(records) => Ok(records),
            Form::Preparing(_) => Err(StoreError::Internal(
                "a batch prepared by the embedded store was handed to another store".into(),
            )),
        }
    }

    /// The embedded store's forms of the records, prepared now if they were kept.
    pub(crate) fn into_prepared(self) -> PreparedAppend {
        match self.form {
            Form::Records(records) => PreparedAppend::new(records, Timestamp::now()),
            Form::Preparing(preparing) => preparing.finish(),
        }
    }
}

impl From<Vec<NewRecord>> for RecordBatch {
    fn from(records: Vec<NewRecord>) -> RecordBatch {
        RecordBatch {
            form: Form::Records(records),
        }
    }
}
