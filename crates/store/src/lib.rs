//! Storage behind one trait. Callers hold an `Arc<dyn Store>` and never know which
//! database is underneath; the SQLite store (embedded default) lives in [`sqlite`].
//!
//! Invariants every implementation keeps:
//! - *Acknowledged means durable*: a write method returns only after commit.
//! - *Ids never go backwards for a reader*: once a reader has seen id N, no record
//!   with an id below N becomes visible later. Cursors and streams rely on it.
//! - Every committed change is announced on the [`Notifier`] after the commit.

pub mod accounts;
mod batch;
pub mod blocks;
mod error;
pub mod idempotency;
pub mod integrity;
pub mod notifier;
pub mod postgres;
pub mod sql;
pub mod sqlite;
mod write_state;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use logbook_core::{
    Action, ActionState, Cursor, NewAction, NewRecord, Object, ObjectRef, Order, Query, Record,
    Timestamp,
};
use serde_json::{Map, Value};

pub use accounts::{AccountStore, NewUser, Session, Token, User};
pub use batch::RecordBatch;
pub use error::StoreError;
pub use idempotency::{Claim, IdempotencyStore};
pub use integrity::{IntegrityStore, Removal};
pub use notifier::Notifier;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The ids a committed batch received (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub count: usize,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
}

/// One page of a query, with the high-water id the reader's snapshot covered.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Record>,
    /// The highest record id visible when the page was read. In oldest-first order a
    /// client that resumes after `max(last returned id, this)` misses nothing.
    pub high_water: i64,
}

impl Page {
    /// Whether the page holds as many records as the query's limit allowed, so more
    /// may follow it.
    pub fn is_full(&self, query: &Query) -> bool {
        query
            .limit
            .is_some_and(|limit| self.records.len() as u64 >= limit)
    }

    /// The resume point after this page of `query`: the one rule every cursor,
    /// poll and stream catch-up follows. Newest first, a full page resumes after its
    /// last record and a partial one is the end (`None`). Oldest first, a full page
    /// resumes after its last record; a partial page returned everything up to the
    /// snapshot's high-water mark (capped by the query's own upper id bound, if it
    /// has one), and since ids never appear below that mark later, resuming there
    /// misses nothing and never goes back before the query's own `after`.
    pub fn resume_after(&self, query: &Query) -> Option<Cursor> {
        let last = self.records.last().map(|r| r.id);
        let full = self.is_full(query);
        match query.order {
            Order::NewestFirst => last.filter(|_| full).map(Cursor),
            Order::OldestFirst if full => last.map(Cursor),
            Order::OldestFirst => {
                let reached = id_ceiling(query).map_or(self.high_water, |c| c.min(self.high_water));
                let after = query.after.map(|c| c.0);
                [after, last, Some(reached)]
                    .into_iter()
                    .flatten()
                    .max()
                    .map(Cursor)
            }
        }
    }
}

/// The highest id a query can match by its own top-level conditions, if it says.
fn id_ceiling(query: &Query) -> Option<i64> {
    use logbook_core::query::{Comparison, Condition, Scalar};
    query
        .conditions
        .iter()
        .filter_map(|c| match c {
            Condition::Compare(logbook_core::Field::Id, Comparison::Le, Scalar::Int(n)) => Some(*n),
            Condition::Compare(logbook_core::Field::Id, Comparison::Lt, Scalar::Int(n)) => {
                Some(n.saturating_sub(1))
            }
            _ => None,
        })
        .min()
}

/// A group of records sharing the values of the grouped fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: Vec<Option<String>>,
    pub count: u64,
    pub last_ts: Timestamp,
}

/// Which groups of records to read, in what order and how many.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupQuery {
    /// The fields whose values make a group's key.
    pub fields: Vec<logbook_core::Field>,
    /// Explicit order; ties, and everything without it, go by the key ascending
    /// (absent values first, text bytewise).
    pub sort: Vec<GroupSort>,
    pub offset: u64,
    /// `None`: every group.
    pub limit: Option<u64>,
}

impl GroupQuery {
    /// Every group of `fields`, in key order.
    pub fn by(fields: &[logbook_core::Field]) -> GroupQuery {
        GroupQuery {
            fields: fields.to_vec(),
            ..GroupQuery::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSort {
    pub by: GroupBy,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The latest `ts` in the group.
    LastTs,
    /// The value of the query's `fields[i]`.
    Key(usize),
}

/// Records, the append-only heart of the store.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Appends a batch atomically and durably. Its ids are contiguous, above every id
    /// acknowledged before the call, and never below a high-water mark a reader has
    /// already seen (on SQLite, ids follow commit order; on PostgreSQL, readers stop
    /// at a horizon below the appends in flight).
    async fn append(&self, records: Vec<NewRecord>) -> Result<Appended> {
        self.append_batch(records.into()).await
    }
    /// An empty batch in the form this store appends, to push records into as they
    /// arrive and hand to [`RecordStore::append_batch`] (or
    /// [`ObjectStore::append_with_objects`]) once all have.
    fn record_batch(&self) -> RecordBatch {
        RecordBatch::of_records()
    }
    /// As [`RecordStore::append`], the records of a batch.
    async fn append_batch(&self, records: RecordBatch) -> Result<Appended>;
    async fn query(&self, query: &Query) -> Result<Page>;
    async fn count(&self, query: &Query) -> Result<u64>;
    async fn get(&self, id: i64) -> Result<Option<Record>>;
    /// Every matching record in the query's order, in batches, in constant memory.
    /// The export covers the records committed when it starts.
    fn export(&self, query: Query) -> BoxStream<'static, Result<Vec<Record>>>;
    /// As [`RecordStore::export`], each batch as NDJSON: every record's line as
    /// [`Record::write_json`] writes it, and a newline. This default renders
    /// `export`'s records; a store that can write the lines from its own form of
    /// the records does so instead.
    fn export_ndjson(&self, query: Query) -> BoxStream<'static, Result<Vec<u8>>> {
        use futures_util::StreamExt;
        self.export(query)
            .map(|batch| {
                batch.map(|records| {
                    let mut out = Vec::with_capacity(records.len() * 256);
                    for record in &records {
                        record.write_json(&mut out);
                        out.push(b'\n');
                    }
                    out
                })
            })
            .boxed()
    }
    /// An administrator's clear (or a retention rule): deletes the matching records
    /// and appends the record `journal` builds from what went, in one transaction
    /// (both or neither, so a removal is never unaudited); the removed records'
    /// leaves stay in the tree, marked removed; returns how many were deleted.
    async fn delete_recorded(&self, query: &Query, journal: ClearRecord) -> Result<u64>;
    /// Counts matching records per distinct value of the group fields, with the
    /// latest `ts`, ordered and paged as `groups` says.
    async fn group(&self, query: &Query, groups: &GroupQuery) -> Result<Vec<Group>>;
    /// How many groups `group` has in all, before offset and limit.
    async fn count_groups(&self, query: &Query, fields: &[logbook_core::Field]) -> Result<u64>;
    /// The non-empty buckets of matching records, exactly as
    /// [`Histogram::count`](logbook_core::Histogram::count) defines them.
    async fn histogram(
        &self,
        query: &Query,
        histogram: &logbook_core::Histogram,
    ) -> Result<Vec<logbook_core::histogram::Bucket>>;
    /// Bytes the matching kind of records take on disk (rows and their indexes), as
    /// well as the store can measure it.
    async fn size_on_disk(&self, kind: logbook_core::Kind) -> Result<u64>;
    /// The highest committed record id.
    async fn high_water(&self) -> Result<i64>;
}

/// Objects the platform manages and their tree.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Creates or replaces an object; fields left `None` in `update` keep their value.
    async fn put_object(&self, update: ObjectUpdate) -> Result<Object>;
    async fn get_object(&self, key: &ObjectRef) -> Result<Option<Object>>;
    async fn find_object_by_uri(&self, uri: &str) -> Result<Option<Object>>;
    async fn remove_object(&self, key: &ObjectRef) -> Result<bool>;
    /// The object, its ancestors and its descendants (the "related" set).
    async fn related_objects(&self, key: &ObjectRef) -> Result<Vec<Object>>;
    /// Objects matching the query, by type then id; returns the page and the total.
    async fn list_objects(&self, query: &ObjectQuery) -> Result<(Vec<Object>, u64)>;
    /// The keys of the registered objects whose parent chain contains `key` (not
    /// `key` itself), in key order, at most `limit` of them. Chains are followed 32
    /// links deep, so a cycle written by a client cannot loop forever.
    async fn descendants(&self, key: &ObjectRef, limit: u64) -> Result<Vec<ObjectRef>>;
    /// Appends records and applies the object writes they imply (container events),
    /// in order, in one transaction: both or neither, and concurrent batches apply
    /// their writes in the order of their record ids.
    async fn append_with_objects(
        &self,
        records: RecordBatch,
        writes: Vec<ObjectWrite>,
    ) -> Result<Appended>;
}

/// One object change that rides along with an append.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectWrite {
    Put(Box<ObjectUpdate>),
    Remove(ObjectRef),
}

/// A change to an object. `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectUpdate {
    pub key: Option<ObjectRef>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub parent: Option<Option<ObjectRef>>,
    pub uri: Option<String>,
    /// Merged into the existing attributes, key by key (`null` removes a key).
    pub attributes: Option<Map<String, Value>>,
    pub domain_id: Option<String>,
}

/// Filters for listing objects (all optional; combined with AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectQuery {
    pub types: Vec<String>,
    pub states: Vec<String>,
    /// `Some(None)`: only objects without a parent (the roots of the tree);
    /// `Some(Some(p))`: only the children of `p`.
    pub parent: Option<Option<ObjectRef>>,
    pub domains: Option<Vec<String>>,
    pub offset: u64,
    pub limit: Option<u64>,
}

/// Filters for listing actions (all optional; combined with AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActionQuery {
    pub uuids: Vec<String>,
    pub states: Vec<ActionState>,
    pub start_from: Option<Timestamp>,
    pub start_to: Option<Timestamp>,
    pub end_from: Option<Timestamp>,
    pub end_to: Option<Timestamp>,
    /// Actions on any of these object URIs.
    pub objects: Vec<String>,
    pub domains: Option<Vec<String>>,
    pub offset: u64,
    pub limit: Option<u64>,
}

/// A line of an action's log.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionLogLine {
    pub seq: i64,
    pub ts: Timestamp,
    pub line: String,
}

/// Tracked operations and their log lines.
#[async_trait]
pub trait ActionStore: Send + Sync {
    async fn create_action(&self, action: NewAction) -> Result<Action>;
    async fn get_action(&self, uuid: &str) -> Result<Option<Action>>;
    /// Chronological by start date; returns the page and the total count.
    async fn list_actions(&self, query: &ActionQuery) -> Result<(Vec<Action>, u64)>;
    /// Moves an action to `to` if the lifecycle allows it from its current state,
    /// atomically; `Error::Conflict` otherwise.
    async fn transition_action(
        &self,
        uuid: &str,
        to: ActionState,
        end_date: Option<Timestamp>,
    ) -> Result<Action>;
    async fn append_action_logs(
        &self,
        uuid: &str,
        lines: Vec<String>,
    ) -> Result<Vec<ActionLogLine>>;
    /// The last `tail` lines in order.
    async fn action_logs(&self, uuid: &str, tail: u64) -> Result<Vec<ActionLogLine>>;
    /// The lines after `seq` in order, at most `limit` of them (how a follower that
    /// fell behind catches up).
    async fn action_logs_after(
        &self,
        uuid: &str,
        seq: i64,
        limit: u64,
    ) -> Result<Vec<ActionLogLine>>;
}

/// Builds the journal record of a clear from what it removed (how many, which ids).
pub type ClearRecord = Box<dyn Fn(&Removal) -> NewRecord + Send + Sync>;

/// Builds the `event` record an action change leaves, from the action as it becomes.
pub type ActionEvent = Box<dyn Fn(&Action) -> NewRecord + Send>;

/// Whether the store's writes go through, as its writer last saw them, and the
/// episodes of a full disk that have ended (a watcher that wakes late still learns
/// of a stop that began and ended meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteState {
    /// While writes fail for lack of space: since when, and why.
    pub full: Option<DiskFull>,
    /// How many full-disk episodes have ended (a write committed again).
    pub ended: u64,
    /// The last episode that ended.
    pub last_ended: Option<DiskFull>,
}

/// What the tiers hold and the hot tier's bound, for the metrics: hot records
/// beyond the bound are the sealer's lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierFigures {
    pub status: blocks::tiers::TierStatus,
    /// `TierOptions::hot_records`: the sealer seals once the hot tier holds more.
    pub hot_bound: u64,
}

impl TierFigures {
    /// Hot records the sealer has yet to move (0 when it keeps up).
    pub fn sealer_backlog(&self) -> u64 {
        self.status.hot_records.saturating_sub(self.hot_bound)
    }
}

/// What the store's writer has done, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Write jobs waiting in the writer's queue now.
    pub queue_depth: u64,
    /// Transactions committed (or failed) so far: group commits.
    pub commits: u64,
    /// Jobs those transactions carried (jobs / commits = the mean group size).
    pub jobs: u64,
}

/// An episode of writes failing for lack of space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFull {
    pub since: logbook_core::Timestamp,
    pub detail: String,
}

/// Everything a Logbook node needs from its database.
#[async_trait]
pub trait Store:
    RecordStore + ObjectStore + ActionStore + AccountStore + IdempotencyStore + IntegrityStore
{
    fn notifier(&self) -> &Notifier;

    /// The state of the store's writes, changing as commits fail for lack of space
    /// and succeed again. A store that does not track it never says full (its
    /// errors still say `DiskFull`).
    fn write_state(&self) -> tokio::sync::watch::Receiver<WriteState> {
        tokio::sync::watch::channel(WriteState::default()).1
    }

    /// The writer's queue and group commits, where the store has one such writer.
    fn writer_stats(&self) -> Option<WriterStats> {
        None
    }

    /// What the hot and sealed tiers hold now, where the store has tiers.
    async fn tier_figures(&self) -> Result<Option<TierFigures>> {
        Ok(None)
    }

    /// `create_action` and its event record, both or neither. This default takes two
    /// commits; a store overrides it to use one transaction (SQLite does).
    async fn create_action_recorded(&self, new: NewAction, event: ActionEvent) -> Result<Action> {
        let action = self.create_action(new).await?;
        self.append(vec![event(&action)]).await?;
        Ok(action)
    }

    /// `transition_action` and its event record, both or neither (see above).
    async fn transition_action_recorded(
        &self,
        uuid: &str,
        to: ActionState,
        end_date: Option<Timestamp>,
        event: ActionEvent,
    ) -> Result<Action> {
        let action = self.transition_action(uuid, to, end_date).await?;
        self.append(vec![event(&action)]).await?;
        Ok(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::query::{Comparison, Condition, Scalar};
    use logbook_core::{Field, Kind};

    fn page(ids: &[i64], high_water: i64) -> Page {
        let records = ids
            .iter()
            .map(|id| NewRecord::new(Kind::Log).into_record(*id, Timestamp(0)))
            .collect();
        Page {
            records,
            high_water,
        }
    }

    fn oldest(after: i64, limit: u64) -> Query {
        Query {
            after: Some(Cursor(after)),
            limit: Some(limit),
            ..Query::oldest_first()
        }
    }

    #[test]
    fn oldest_first_resumes_after_a_full_page_or_past_the_snapshot() {
        // Full: after the last record, even if the snapshot went further.
        assert_eq!(
            page(&[4, 7], 90).resume_after(&oldest(3, 2)),
            Some(Cursor(7))
        );
        // Partial: everything up to the high-water mark was covered.
        assert_eq!(page(&[4], 90).resume_after(&oldest(3, 2)), Some(Cursor(90)));
        // Empty, and a cursor already past the mark: never backwards.
        assert_eq!(page(&[], 50).resume_after(&oldest(60, 2)), Some(Cursor(60)));
        // The query's own id ceiling caps the mark.
        let capped = oldest(3, 5).with(Condition::Compare(
            Field::Id,
            Comparison::Le,
            Scalar::Int(40),
        ));
        assert_eq!(page(&[4], 90).resume_after(&capped), Some(Cursor(40)));
        assert_eq!(
            page(&[], 90).resume_after(&Query {
                after: Some(Cursor(45)),
                ..capped
            }),
            Some(Cursor(45))
        );
    }

    #[test]
    fn newest_first_resumes_only_after_a_full_page() {
        let query = Query {
            limit: Some(2),
            ..Query::newest_first()
        };
        assert_eq!(page(&[9, 8], 9).resume_after(&query), Some(Cursor(8)));
        assert_eq!(page(&[9], 9).resume_after(&query), None);
        assert!(!page(&[9], 9).is_full(&Query::newest_first()));
    }
}
