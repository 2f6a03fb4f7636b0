//! Storage behind one trait. Callers hold an `Arc<dyn Store>` and never know which
//! database is underneath; the SQLite store (embedded default) lives in [`sqlite`].
//!
//! Invariants every implementation keeps:
//! - *Acknowledged means durable*: a write method returns only after commit.
//! - *Ids never go backwards for a reader*: once a reader has seen id N, no record
//!   with an id below N becomes visible later. Cursors and streams rely on it.
//! - Every committed change is announced on the [`Notifier`] after the commit.

pub mod accounts;
pub mod blocks;
mod error;
pub mod notifier;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use logbook_core::{
    Action, ActionState, NewAction, NewRecord, Object, ObjectRef, Query, Record, Timestamp,
};
use serde_json::{Map, Value};

pub use accounts::{AccountStore, NewUser, Session, Token, User};
pub use error::StoreError;
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

/// A group of records sharing the values of the grouped fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: Vec<Option<String>>,
    pub count: u64,
    pub last_ts: Timestamp,
}

/// Records, the append-only heart of the store.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Appends a batch atomically and durably; ids are assigned in commit order.
    async fn append(&self, records: Vec<NewRecord>) -> Result<Appended>;
    async fn query(&self, query: &Query) -> Result<Page>;
    async fn count(&self, query: &Query) -> Result<u64>;
    async fn get(&self, id: i64) -> Result<Option<Record>>;
    /// Every matching record in the query's order, in batches, in constant memory.
    /// The export covers the records committed when it starts.
    fn export(&self, query: Query) -> BoxStream<'static, Result<Vec<Record>>>;
    /// Deletes matching records (an administrator's clear) and returns how many.
    async fn delete(&self, query: &Query) -> Result<u64>;
    /// Counts matching records per distinct value of `fields`, with the latest `ts`.
    async fn group(&self, query: &Query, fields: &[logbook_core::Field]) -> Result<Vec<Group>>;
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
    /// Appends records and applies the object writes they imply (container events),
    /// in order, in one transaction: both or neither, and concurrent batches apply
    /// their writes in the order of their record ids.
    async fn append_with_objects(
        &self,
        records: Vec<NewRecord>,
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
}

/// Builds the `event` record an action change leaves, from the action as it becomes.
pub type ActionEvent = Box<dyn Fn(&Action) -> NewRecord + Send>;

/// Everything a Logbook node needs from its database.
#[async_trait]
pub trait Store: RecordStore + ObjectStore + ActionStore + AccountStore {
    fn notifier(&self) -> &Notifier;

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
