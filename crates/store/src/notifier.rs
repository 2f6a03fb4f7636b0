//! Wakes whoever waits for a change (long polls, waits, streams, log follows) after
//! the change is committed. In-process writes publish here directly; on a shared
//! database each node's listener republishes what other nodes committed.
//! Nothing polls: waiters sleep on these channels.

use logbook_core::{Action, Object, ObjectRef, Record};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// How many published batches a slow subscriber may fall behind before it is told
/// it lagged (and must catch up from the store).
const BROADCAST_CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub enum ObjectChange {
    Updated(Arc<Object>),
    Removed(ObjectRef),
}

#[derive(Debug, Clone)]
pub struct ActionLogAppended {
    pub uuid: String,
    pub lines: Arc<Vec<crate::ActionLogLine>>,
}

pub struct Notifier {
    high_water: watch::Sender<i64>,
    records: broadcast::Sender<Arc<Vec<Record>>>,
    objects: broadcast::Sender<ObjectChange>,
    actions: broadcast::Sender<Arc<Action>>,
    action_logs: broadcast::Sender<ActionLogAppended>,
}

impl Notifier {
    pub fn new(high_water: i64) -> Notifier {
        Notifier {
            high_water: watch::Sender::new(high_water),
            records: broadcast::Sender::new(BROADCAST_CAPACITY),
            objects: broadcast::Sender::new(BROADCAST_CAPACITY),
            actions: broadcast::Sender::new(BROADCAST_CAPACITY),
            action_logs: broadcast::Sender::new(BROADCAST_CAPACITY),
        }
    }

    /// Announces committed records (in id order) and raises the high-water mark.
    pub fn publish_records(&self, records: Arc<Vec<Record>>) {
        let Some(last) = records.last().map(|r| r.id) else {
            return;
        };
        // Send to the broadcast first so a waiter woken by the watch can subscribe
        // and then read the store without missing this batch.
        let _ = self.records.send(records);
        self.raise_high_water(last);
    }

    /// Raises the high-water mark without the records (a hint from another node).
    pub fn raise_high_water(&self, id: i64) {
        self.high_water.send_if_modified(|current| {
            if id > *current {
                *current = id;
                true
            } else {
                false
            }
        });
    }

    pub fn publish_object(&self, change: ObjectChange) {
        let _ = self.objects.send(change);
    }

    pub fn publish_action(&self, action: Arc<Action>) {
        let _ = self.actions.send(action);
    }

    pub fn publish_action_logs(&self, appended: ActionLogAppended) {
        let _ = self.action_logs.send(appended);
    }

    pub fn high_water(&self) -> i64 {
        *self.high_water.borrow()
    }

    pub fn watch_high_water(&self) -> watch::Receiver<i64> {
        self.high_water.subscribe()
    }

    /// Whether anyone subscribes to records now: if not, a store may raise the
    /// high-water mark instead of loading records nobody would receive (a later
    /// subscriber reads the store after subscribing, as with any missed batch).
    pub fn has_record_subscribers(&self) -> bool {
        self.records.receiver_count() > 0
    }

    pub fn subscribe_records(&self) -> broadcast::Receiver<Arc<Vec<Record>>> {
        self.records.subscribe()
    }

    pub fn subscribe_objects(&self) -> broadcast::Receiver<ObjectChange> {
        self.objects.subscribe()
    }

    pub fn subscribe_actions(&self) -> broadcast::Receiver<Arc<Action>> {
        self.actions.subscribe()
    }

    pub fn subscribe_action_logs(&self) -> broadcast::Receiver<ActionLogAppended> {
        self.action_logs.subscribe()
    }
}
