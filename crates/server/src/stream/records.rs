//! Record streams: the [`Feed`] every live view of records is built on (the native
//! SSE and WebSocket stream, the Docker Cloud events stream, and any later tail).
//! A protocol module asks [`Hub::records`] for a subscription with a scoped filter
//! and a resume point, and renders what it yields.

use super::hub::{Hub, Registration, Taken};
use super::subscription::{Arrival, Caught, Feed, Subscription};
use bytes::Bytes;
use logbook_core::{Cursor, Order, Query, Record};
use logbook_store::{Store, StoreError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A record as streams deliver it: shared by every subscriber it matches, with each
/// shape it is sent in rendered at most once however many subscribers send it.
#[derive(Debug)]
pub struct LiveRecord {
    pub record: Record,
    renders: Mutex<Vec<(&'static Shape, Bytes)>>,
}

/// One way of rendering a record for the wire (the native JSON, an SSE frame, a
/// dialect's message). Declared as a `static`, which is its identity.
#[derive(Debug)]
pub struct Shape {
    pub render: fn(&Record) -> Bytes,
}

/// The record as the native API renders it.
pub static NATIVE_JSON: Shape = Shape {
    render: |record| Bytes::from(record.to_json().to_string()),
};

impl LiveRecord {
    pub fn new(record: Record) -> LiveRecord {
        LiveRecord {
            record,
            renders: Mutex::new(Vec::new()),
        }
    }

    /// The record in `shape`, rendered by the first subscriber that asks and shared
    /// (a reference count, no copy) with every other.
    pub fn rendered(&self, shape: &'static Shape) -> Bytes {
        // Rendering cannot panic halfway through an update of the list.
        let mut renders = self.renders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, bytes)) = renders.iter().find(|(s, _)| std::ptr::eq(*s, shape)) {
            return bytes.clone();
        }
        let bytes = (shape.render)(&self.record);
        renders.push((shape, bytes.clone()));
        bytes
    }
}

/// Records matching one filter: live from the hub, caught up from the store.
pub struct RecordFeed {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    registration: Registration,
}

impl std::fmt::Debug for RecordFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordFeed")
            .field("filter", &self.registration.filter)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Follows the records matching `filter` (already scoped to the subscriber)
    /// after `after`, or from the newest record when `after` is `None`.
    pub fn records(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        filter: Query,
        after: Option<i64>,
        shutdown: watch::Receiver<bool>,
    ) -> Subscription<RecordFeed> {
        // Registered first, then the starting point read: a batch is committed
        // before it is dispatched, so every record after the starting point is
        // either dispatched to us or visible to the first catch-up read. (The
        // high-water mark is raised only after the broadcast, so a batch sent just
        // before registering can be above it: the catch-up reads it.)
        let filter = Query {
            conditions: filter.conditions,
            ..Query::default()
        };
        let registration = self.register(store.notifier(), filter);
        let position = after.unwrap_or_else(|| store.notifier().high_water());
        let feed = RecordFeed {
            store,
            hub: Arc::clone(self),
            registration,
        };
        Subscription::start(feed, position, shutdown)
    }
}

impl Feed for RecordFeed {
    type Item = Arc<LiveRecord>;

    fn position(item: &Arc<LiveRecord>) -> i64 {
        item.record.id
    }

    async fn arrival(&mut self) -> Arrival<Arc<LiveRecord>> {
        let slot = &self.registration.slot;
        loop {
            // Read before taking: every batch up to the mark is in what we take.
            let mark = self.hub.dispatched();
            match slot.take() {
                Taken::Items(items) => return Arrival::Items(items, mark),
                Taken::Lagged => return Arrival::Lagged,
                Taken::Closed => return Arrival::Closed,
                Taken::Empty => slot.woken().await,
            }
        }
    }

    async fn read_after(
        &mut self,
        position: i64,
        limit: u64,
    ) -> Result<Caught<Arc<LiveRecord>>, StoreError> {
        let query = Query {
            conditions: self.registration.filter.conditions.clone(),
            order: Order::OldestFirst,
            after: Some(Cursor(position)),
            limit: Some(limit),
            ..Query::default()
        };
        let page = self.store.query(&query).await?;
        let complete = !page.is_full(&query);
        let covered = page.resume_after(&query).map_or(position, |c| c.0);
        let items = page
            .records
            .into_iter()
            .map(|r| Arc::new(LiveRecord::new(r)))
            .collect();
        Ok(Caught {
            items,
            complete,
            covered,
        })
    }

    fn newest(&self) -> Option<i64> {
        Some(self.store.notifier().high_water())
    }

    fn settled(&self) -> Option<i64> {
        let mark = self.hub.dispatched();
        self.registration.slot.is_idle().then_some(mark)
    }
}
