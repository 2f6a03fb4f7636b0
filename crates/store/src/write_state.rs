//! Follows a store's [`WriteState`] from the outcomes of its writes, the same way
//! for both stores: a write failing for lack of space begins an episode of a full
//! disk, and the next write that commits ends it.

use crate::{DiskFull, StoreError, WriteState};
use logbook_core::Timestamp;
use tokio::sync::watch;

#[derive(Debug)]
pub(crate) struct WriteStateTracker {
    state: watch::Sender<WriteState>,
}

impl WriteStateTracker {
    pub(crate) fn new() -> WriteStateTracker {
        WriteStateTracker {
            state: watch::channel(WriteState::default()).0,
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<WriteState> {
        self.state.subscribe()
    }

    /// One write's outcome: `full` with the cause if it (or part of it) failed for
    /// lack of space; `committed` if something of it committed.
    pub(crate) fn observe(&self, full: Option<String>, committed: bool) {
        self.state
            .send_if_modified(|state| match (state.full.is_some(), full) {
                (false, Some(detail)) => {
                    tracing::error!(%detail, "writes stopped: the disk holding the store is full");
                    state.full = Some(DiskFull {
                        since: Timestamp::now(),
                        detail,
                    });
                    true
                }
                (true, None) if committed => {
                    tracing::warn!("writes resumed: the store has space again");
                    state.last_ended = state.full.take();
                    state.ended += 1;
                    true
                }
                _ => false,
            });
    }

    /// As [`WriteStateTracker::observe`], for a write that wholly committed or failed.
    pub(crate) fn observe_result<T>(&self, outcome: &Result<T, StoreError>) {
        let full = match outcome {
            Err(StoreError::DiskFull(detail)) => Some(detail.clone()),
            _ => None,
        };
        self.observe(full, outcome.is_ok());
    }
}
