//! One subscriber's view of the record stream: a broadcast receiver plus a cursor.
//! Live batches come from the notifier; whatever the receiver missed (a resume
//! point in the past, or a lag because the subscriber was slow) is read from the
//! store by id after the cursor, so every matching record is delivered exactly once
//! and in id order, and no subscriber ever holds more than one page in memory.

use logbook_core::{Cursor, Query, Record};
use logbook_store::Store;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// Records read from the store per catch-up page.
const CATCH_UP_PAGE: u64 = 500;

/// How far (in record ids) a subscriber may trail the newest record when it lags
/// before it is disconnected: past this it is not catching up but drowning, and a
/// resume later costs the server less than serving it page by page forever.
pub const MAX_BEHIND: i64 = 1_000_000;

/// Why a stream ended; each carries the cursor to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The node is shutting down.
    Shutdown,
    /// The subscriber fell further behind than [`MAX_BEHIND`].
    TooSlow,
    /// The store could not be read while catching up.
    StoreFailed(String),
}

impl End {
    pub fn reason(&self) -> &str {
        match self {
            End::Shutdown => "shutdown",
            End::TooSlow => "too_slow",
            End::StoreFailed(_) => "store_error",
        }
    }
}

pub struct Subscription {
    store: Arc<dyn Store>,
    /// Scoped filters; order, cursor and limit are the subscription's own.
    filter: Query,
    live: broadcast::Receiver<Arc<Vec<Record>>>,
    shutdown: watch::Receiver<bool>,
    /// The id of the last record handed out (or the starting point).
    delivered: i64,
    /// Every record with an id up to here is either handed out, queued in
    /// `pending`, or does not match: the dedupe line for live batches and the
    /// point catch-up reads resume from.
    covered: i64,
    catching_up: bool,
    pending: VecDeque<Record>,
}

impl Subscription {
    /// Subscribes to live records first, then reads the store from the starting
    /// point, so nothing committed in between is lost: a batch is committed before
    /// it is broadcast, so it is either in the receiver or visible to that read.
    /// (The high-water mark alone is not enough: it is raised only after the
    /// broadcast, so a batch sent just before we subscribed can be above it.)
    /// Without `after` the stream starts at the newest record (only new ones follow).
    pub fn start(
        store: Arc<dyn Store>,
        filter: Query,
        after: Option<i64>,
        shutdown: watch::Receiver<bool>,
    ) -> Subscription {
        let live = store.notifier().subscribe_records();
        let position = after.unwrap_or_else(|| store.notifier().high_water());
        let catching_up = true;
        Subscription {
            store,
            filter,
            live,
            shutdown,
            delivered: position,
            covered: position,
            catching_up,
            pending: VecDeque::new(),
        }
    }

    /// The cursor a client resumes from: everything matching up to it was delivered.
    pub fn position(&self) -> i64 {
        if self.pending.is_empty() {
            self.covered
        } else {
            self.delivered
        }
    }

    /// The next matching record, waiting for one if necessary.
    pub async fn next(&mut self) -> Result<Record, End> {
        loop {
            if *self.shutdown.borrow() {
                return Err(End::Shutdown);
            }
            if let Some(record) = self.pending.pop_front() {
                self.delivered = record.id;
                return Ok(record);
            }
            if self.catching_up {
                self.catch_up_page().await?;
                continue;
            }
            let received = tokio::select! {
                received = self.live.recv() => received,
                _ = self.shutdown.wait_for(|stop| *stop) => return Err(End::Shutdown),
            };
            match received {
                Ok(batch) => self.take_live(&batch),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // The ring moved on without us: the store has what we missed.
                    let newest = self.store.notifier().high_water();
                    if newest - self.covered > MAX_BEHIND {
                        return Err(End::TooSlow);
                    }
                    self.catching_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(End::Shutdown),
            }
        }
    }

    /// Queues the batch's matching records the subscriber has not had yet; ids at or
    /// below the position were delivered by a catch-up already (the dedupe across the
    /// catch-up/live boundary).
    fn take_live(&mut self, batch: &[Record]) {
        for record in batch {
            if record.id > self.covered && self.filter.matches(record) {
                self.pending.push_back(record.clone());
            }
        }
        if let Some(last) = batch.last() {
            self.covered = self.covered.max(last.id);
        }
    }

    async fn catch_up_page(&mut self) -> Result<(), End> {
        let mut query = self.filter.clone();
        query.order = logbook_core::Order::OldestFirst;
        query.sort.clear();
        query.offset = 0;
        query.after = Some(Cursor(self.covered));
        query.limit = Some(CATCH_UP_PAGE);
        let page = self
            .store
            .query(&query)
            .await
            .map_err(|e| End::StoreFailed(e.to_string()))?;
        // A partial page covered everything up to the snapshot's high-water mark; the
        // receiver (subscribed before this read) holds whatever came after.
        self.catching_up = page.is_full(&query);
        self.covered = page.resume_after(&query).map_or(self.covered, |c| c.0);
        self.pending.extend(page.records);
        Ok(())
    }
}
