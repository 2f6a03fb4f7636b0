//! The live side of every record stream, built to serve thousands of subscribers:
//! one dispatcher task reads the store's committed batches and hands each record
//! only to the subscribers whose filter it matches. Subscriptions are indexed by
//! one equality condition of their filter (the most selective of kind, category,
//! level, source, user, domain, ...), so a record reaches only the filters that
//! share its value; the rest of each filter is evaluated once per distinct filter,
//! however many subscribers share it; a matching record is copied once and shared
//! by all of them (each wire shape rendered once, see [`LiveRecord`]). A
//! subscriber whose filter nothing matches is never woken.
//!
//! Each subscriber has a bounded queue. One that cannot keep up is not slowed down
//! for, and nothing is dropped for it either: when its queue overflows it is told
//! it lagged and catches up from the store (see `subscription.rs`).

use super::records::LiveRecord;
use logbook_core::query::{field_ref, Condition, FieldRef, Scalar};
use logbook_core::{Field, Query, Record};
use logbook_store::Notifier;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, Notify};

/// Live records one subscriber may have queued before it is told it lagged, by
/// default (`Config::live_queue`).
pub const LIVE_QUEUE: usize = 4096;

/// The registry of record subscriptions and its dispatcher.
#[derive(Debug)]
pub struct Hub {
    /// Records a subscriber's queue holds before it lags.
    capacity: usize,
    registry: Mutex<Registry>,
    /// Every batch up to this id has been handed to every slot registered then.
    dispatched: AtomicI64,
    /// How many times a subscriber's queue overflowed (it then caught up from the
    /// store): an operator's figure, and what tests watch to know one fell behind.
    lags: AtomicU64,
    dispatcher: OnceLock<()>,
}

/// One subscriber's live queue, filled by the dispatcher.
#[derive(Debug, Default)]
pub struct Slot {
    queue: Mutex<Queue>,
    wake: Notify,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Arc<LiveRecord>>,
    lagged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    Queued,
    Overflowed,
    AlreadyLagging,
}

/// What a subscriber takes from its slot.
#[derive(Debug)]
pub enum Taken {
    Items(Vec<Arc<LiveRecord>>),
    Lagged,
    Closed,
    Empty,
}

type FilterId = u64;

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    /// Distinct filters, each with the slots that share it.
    filters: HashMap<FilterId, FilterGroup>,
    by_conditions: HashMap<Vec<Condition>, FilterId>,
    /// Filters reachable by a value of a field: `index[field][value]`.
    index: HashMap<Field, FieldIndex>,
    /// Filters without an indexable condition: evaluated for every record.
    unindexed: Vec<FilterId>,
}

#[derive(Debug)]
struct FilterGroup {
    filter: Arc<Query>,
    key: Option<(Field, Vec<Scalar>)>,
    slots: HashMap<u64, Arc<Slot>>,
}

#[derive(Debug, Default)]
struct FieldIndex {
    ints: HashMap<i64, Vec<FilterId>>,
    texts: HashMap<String, Vec<FilterId>>,
}

/// A registered subscriber; dropping it unregisters.
#[derive(Debug)]
pub struct Registration {
    hub: Arc<Hub>,
    filter_id: FilterId,
    slot_id: u64,
    pub slot: Arc<Slot>,
    pub filter: Arc<Query>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(LIVE_QUEUE)
    }
}

impl Hub {
    /// A hub whose subscribers may queue `capacity` live records each.
    pub fn new(capacity: usize) -> Hub {
        Hub {
            capacity: capacity.max(1),
            registry: Mutex::default(),
            dispatched: AtomicI64::default(),
            lags: AtomicU64::default(),
            dispatcher: OnceLock::new(),
        }
    }

    /// Registers a subscriber of records matching `filter` (conditions only). It
    /// receives every matching record of every batch dispatched from now on.
    pub fn register(self: &Arc<Self>, notifier: &Notifier, filter: Query) -> Registration {
        self.dispatcher.get_or_init(|| {
            // Subscribed here, synchronously, so it sees every batch after this call.
            let batches = notifier.subscribe_records();
            tokio::spawn(dispatch(Arc::downgrade(self), batches));
        });
        let slot = Arc::new(Slot::default());
        let mut registry = self.lock();
        let slot_id = registry.next_id();
        let filter_id = registry.group_for(filter);
        let group = registry
            .filters
            .get_mut(&filter_id)
            .expect("group_for returns a registered filter");
        group.slots.insert(slot_id, Arc::clone(&slot));
        let filter = Arc::clone(&group.filter);
        Registration {
            hub: Arc::clone(self),
            filter_id,
            slot_id,
            slot,
            filter,
        }
    }

    /// The id up to which every batch has been dispatched.
    pub fn dispatched(&self) -> i64 {
        self.dispatched.load(Ordering::Acquire)
    }

    /// How many times a subscriber fell behind its live queue since the node started.
    pub fn lags(&self) -> u64 {
        self.lags.load(Ordering::Relaxed)
    }

    /// How many subscribers are registered, and how many distinct filters they use.
    pub fn counts(&self) -> (usize, usize) {
        let registry = self.lock();
        let slots = registry.filters.values().map(|g| g.slots.len()).sum();
        (slots, registry.filters.len())
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every change to the registry is completed before the lock is released
        // (a panic cannot happen halfway through one), so a poisoned lock is usable.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a committed batch to the slots whose filters match.
    fn dispatch_batch(&self, batch: &[Record]) {
        let Some(last) = batch.last().map(|r| r.id) else {
            return;
        };
        {
            let registry = self.lock();
            let mut matched: HashMap<FilterId, Vec<Arc<LiveRecord>>> = HashMap::new();
            let mut candidates = Vec::new();
            for record in batch {
                registry.candidates(record, &mut candidates);
                let mut shared: Option<Arc<LiveRecord>> = None;
                for id in candidates.drain(..) {
                    let Some(group) = registry.filters.get(&id) else {
                        continue;
                    };
                    if group.filter.matches(record) {
                        let live =
                            shared.get_or_insert_with(|| Arc::new(LiveRecord::new(record.clone())));
                        matched.entry(id).or_default().push(Arc::clone(live));
                    }
                }
            }
            for (id, records) in matched {
                if let Some(group) = registry.filters.get(&id) {
                    for slot in group.slots.values() {
                        if slot.offer(&records, self.capacity) == Offered::Overflowed {
                            self.lags.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        self.dispatched.fetch_max(last, Ordering::AcqRel);
    }

    /// Every subscriber lost track (the dispatcher itself fell behind the store).
    fn lag_everyone(&self) {
        for group in self.lock().filters.values() {
            for slot in group.slots.values() {
                slot.lag();
            }
        }
    }

    fn close_everyone(&self) {
        for group in self.lock().filters.values() {
            for slot in group.slots.values() {
                slot.closed.store(true, Ordering::Release);
                slot.wake.notify_one();
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.hub.lock();
        let now_unused = match registry.filters.get_mut(&self.filter_id) {
            Some(group) => {
                group.slots.remove(&self.slot_id);
                group.slots.is_empty()
            }
            None => false,
        };
        if now_unused {
            registry.forget(self.filter_id);
        }
    }
}

impl Registry {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The group of subscribers sharing exactly these conditions, created (and
    /// indexed) if it is new.
    fn group_for(&mut self, filter: Query) -> FilterId {
        if let Some(id) = self.by_conditions.get(&filter.conditions) {
            return *id;
        }
        let id = self.next_id();
        let key = index_key(&filter);
        match &key {
            Some((field, values)) => {
                let index = self.index.entry(*field).or_default();
                for value in values {
                    index.bucket_mut(value).push(id);
                }
            }
            None => self.unindexed.push(id),
        }
        self.by_conditions.insert(filter.conditions.clone(), id);
        let group = FilterGroup {
            filter: Arc::new(filter),
            key,
            slots: HashMap::new(),
        };
        self.filters.insert(id, group);
        id
    }

    fn forget(&mut self, id: FilterId) {
        let Some(group) = self.filters.remove(&id) else {
            return;
        };
        self.by_conditions.remove(&group.filter.conditions);
        match group.key {
            Some((field, values)) => {
                if let Some(index) = self.index.get_mut(&field) {
                    for value in &values {
                        index.remove(value, id);
                    }
                    if index.is_empty() {
                        self.index.remove(&field);
                    }
                }
            }
            None => self.unindexed.retain(|other| *other != id),
        }
    }

    /// The filters a record may match: the unindexed ones, and those indexed under
    /// the record's own value of their field (at most one hit per filter).
    fn candidates(&self, record: &Record, out: &mut Vec<FilterId>) {
        out.extend_from_slice(&self.unindexed);
        for (field, index) in &self.index {
            let hits = match field_ref(record, *field) {
                Some(FieldRef::Int(n)) => index.ints.get(&n),
                Some(FieldRef::Text(text)) => index.texts.get(text.as_ref()),
                None => None,
            };
            if let Some(hits) = hits {
                out.extend_from_slice(hits);
            }
        }
    }
}

impl FieldIndex {
    fn bucket_mut(&mut self, value: &Scalar) -> &mut Vec<FilterId> {
        match value {
            Scalar::Int(n) => self.ints.entry(*n).or_default(),
            Scalar::Text(t) => self.texts.entry(t.clone()).or_default(),
        }
    }

    fn remove(&mut self, value: &Scalar, id: FilterId) {
        let emptied = match value {
            Scalar::Int(n) => remove_from(&mut self.ints, n, id),
            Scalar::Text(t) => remove_from(&mut self.texts, t, id),
        };
        debug_assert!(emptied.is_some(), "an indexed filter is in its bucket");
    }

    fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.texts.is_empty()
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Vec<FilterId>>,
    key: &K,
    id: FilterId,
) -> Option<()> {
    let bucket = map.get_mut(key)?;
    bucket.retain(|other| *other != id);
    if bucket.is_empty() {
        map.remove(key);
    }
    Some(())
}

/// The condition a filter is indexed by: its most selective top-level equality
/// (`field IN (values)`), fewer values first among equals. Payload and message
/// equality are not indexed (rare, and the message is the filter's costliest read).
fn index_key(filter: &Query) -> Option<(Field, Vec<Scalar>)> {
    filter
        .conditions
        .iter()
        .filter_map(|c| match c {
            Condition::In(field, values) if !values.is_empty() => {
                selectivity(*field).map(|rank| (rank, values.len(), *field, values))
            }
            _ => None,
        })
        .min_by_key(|(rank, n, _, _)| (*rank, *n))
        .map(|(_, _, field, values)| {
            let mut values = values.clone();
            values.sort();
            values.dedup();
            (field, values)
        })
}

/// How selective an equality on a field usually is: lower is better.
fn selectivity(field: Field) -> Option<u8> {
    Some(match field {
        Field::Id | Field::RequestId | Field::ParentRequestId => 0,
        Field::ObjectId | Field::UserId | Field::User => 1,
        Field::Instance | Field::Logger | Field::Action | Field::ProjectId => 2,
        Field::ObjectType | Field::Category | Field::Status | Field::ResponseCode => 3,
        Field::Source | Field::DomainId => 4,
        Field::Level | Field::Ts => 5,
        Field::Kind => 6,
        Field::Message | Field::Data | Field::DataText(_) => return None,
    })
}

impl Slot {
    /// Queues a batch's matching records, or marks the slot lagged (dropping its
    /// queue, which the store will replay) if they do not fit.
    fn offer(&self, records: &[Arc<LiveRecord>], capacity: usize) -> Offered {
        let offered = {
            let mut queue = self.lock();
            if queue.lagged {
                return Offered::AlreadyLagging;
            }
            if queue.items.len() + records.len() > capacity {
                queue.lagged = true;
                queue.items = VecDeque::new();
                Offered::Overflowed
            } else {
                queue.items.extend(records.iter().cloned());
                Offered::Queued
            }
        };
        self.wake.notify_one();
        offered
    }

    fn lag(&self) {
        {
            let mut queue = self.lock();
            queue.lagged = true;
            queue.items = VecDeque::new();
        }
        self.wake.notify_one();
    }

    /// Takes everything queued, or the news that the slot lagged (once).
    pub fn take(&self) -> Taken {
        let mut queue = self.lock();
        if queue.lagged {
            queue.lagged = false;
            return Taken::Lagged;
        }
        if !queue.items.is_empty() {
            return Taken::Items(std::mem::take(&mut queue.items).into());
        }
        if self.closed.load(Ordering::Acquire) {
            return Taken::Closed;
        }
        Taken::Empty
    }

    /// Whether nothing is queued and nothing was lost.
    pub fn is_idle(&self) -> bool {
        let queue = self.lock();
        !queue.lagged && queue.items.is_empty()
    }

    /// Resolves when the dispatcher has queued something (or a wake-up is pending).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A queue operation cannot panic halfway through.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn dispatch(hub: Weak<Hub>, mut batches: broadcast::Receiver<Arc<Vec<Record>>>) {
    loop {
        let batch = batches.recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match batch {
            Ok(batch) => hub.dispatch_batch(&batch),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "stream dispatcher fell behind; subscribers catch up from the store"
                );
                hub.lag_everyone();
            }
            Err(RecvError::Closed) => {
                hub.close_everyone();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::{Kind, NewRecord, Timestamp};

    fn record(id: i64, category: &str, user: Option<&str>) -> Record {
        NewRecord {
            category: Some(category.into()),
            user: user.map(str::to_string),
            ..NewRecord::new(Kind::Log)
        }
        .into_record(id, Timestamp(0))
    }

    fn ids(taken: Taken) -> Vec<i64> {
        match taken {
            Taken::Items(items) => items.iter().map(|r| r.record.id).collect(),
            other => panic!("expected items, got {other:?}"),
        }
    }

    fn filter(category: &str, user: Option<&str>) -> Query {
        let q = Query::default()
            .values(Field::Category, &[category])
            .expect("valid");
        match user {
            Some(user) => q.values(Field::User, &[user]).expect("valid"),
            None => q,
        }
    }

    #[tokio::test]
    async fn records_reach_only_matching_filters_shared_once_and_groups_are_forgotten() {
        let notifier = Notifier::new(0);
        let hub = Arc::new(Hub::default());
        let a1 = hub.register(&notifier, filter("image", Some("amy")));
        let a2 = hub.register(&notifier, filter("image", Some("amy")));
        let b = hub.register(&notifier, filter("image", Some("bob")));
        let everything = hub.register(&notifier, Query::default());
        assert_eq!(hub.counts(), (4, 3), "two subscribers share one filter");
        hub.dispatch_batch(&[
            record(1, "image", Some("amy")),
            record(2, "network", Some("amy")),
            record(3, "image", None),
        ]);
        assert_eq!(hub.dispatched(), 3);
        assert_eq!(ids(a1.slot.take()), [1]);
        let shared = match a2.slot.take() {
            Taken::Items(items) => items,
            other => panic!("{other:?}"),
        };
        let (once, again) = (
            shared[0].rendered(&super::super::NATIVE_JSON),
            shared[0].rendered(&super::super::NATIVE_JSON),
        );
        assert_eq!(once.as_ptr(), again.as_ptr(), "rendered once, then shared");
        assert!(
            matches!(b.slot.take(), Taken::Empty),
            "bob's filter matched nothing"
        );
        assert_eq!(ids(everything.slot.take()), [1, 2, 3]);
        drop((a1, a2, b, everything));
        let registry = hub.lock();
        assert!(registry.filters.is_empty() && registry.index.is_empty());
        assert!(registry.unindexed.is_empty() && registry.by_conditions.is_empty());
    }

    #[tokio::test]
    async fn an_overflowing_queue_lags_instead_of_growing() {
        let notifier = Notifier::new(0);
        let hub = Arc::new(Hub::new(3));
        let slow = hub.register(&notifier, filter("image", None));
        hub.dispatch_batch(&[record(1, "image", None), record(2, "image", None)]);
        let burst: Vec<Record> = (3..=4).map(|id| record(id, "image", None)).collect();
        hub.dispatch_batch(&burst);
        assert_eq!(hub.lags(), 1);
        assert!(matches!(slow.slot.take(), Taken::Lagged));
        assert!(slow.slot.is_idle(), "the overflow was dropped, not kept");
        hub.dispatch_batch(&[record(5, "image", None)]);
        assert_eq!(ids(slow.slot.take()), [5]);
    }

    #[test]
    fn the_most_selective_equality_is_the_index_key() {
        let q = filter("image", Some("amy")).min_level(logbook_core::Level::Info);
        assert_eq!(
            index_key(&q),
            Some((Field::User, vec![Scalar::Text("amy".into())]))
        );
        let text_only = Query::default().text_contains("x");
        assert_eq!(index_key(&text_only), None);
    }
}
