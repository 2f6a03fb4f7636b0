//! Waiting for an object to change or to reach a state (the QNAP wait, and any
//! other "until this object changes" request), for every API: [`ObjectWatch::wait_for_state`].
//! One dispatcher task reads the store's object
//! notifications and bumps a per-object `watch` counter, so a committed change wakes
//! only the waiters of that object: thousands of idle waiters cost one map entry
//! and one receiver each, and a change costs O(its waiters), not O(all waiters).
//! A woken waiter re-reads the object from the store, which is the truth.

use logbook_core::{Object, ObjectRef};
use logbook_store::notifier::ObjectChange;
use logbook_store::Notifier;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct ObjectWatch {
    slots: Mutex<HashMap<ObjectRef, watch::Sender<u64>>>,
    dispatcher: OnceLock<()>,
    /// How many subscriptions are open: the signal that a waiter has subscribed
    /// (tests wait on it instead of sleeping).
    waiting: watch::Sender<usize>,
}

/// How a wait for a state ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited {
    /// The object is in the state (it may have been already).
    Reached(Object),
    /// The deadline passed, or the node began shutting down: the object as last
    /// read, `None` if it does not exist (or is not the caller's to see).
    Gave(Option<Object>),
}

/// A waiter's subscription; dropping it forgets the object once nobody waits on it.
#[derive(Debug)]
pub struct Subscription {
    key: ObjectRef,
    watch: Arc<ObjectWatch>,
    receiver: Option<watch::Receiver<u64>>,
}

impl ObjectWatch {
    /// Subscribes to changes of `key`. Call it before reading the object, so a
    /// change committed after the read is never missed.
    pub fn subscribe(self: &Arc<Self>, notifier: &Notifier, key: ObjectRef) -> Subscription {
        self.dispatcher.get_or_init(|| {
            // Subscribed here, synchronously, so it sees every change after this call.
            let changes = notifier.subscribe_objects();
            tokio::spawn(dispatch(Arc::downgrade(self), changes));
        });
        let receiver = {
            let mut slots = self.lock();
            slots
                .entry(key.clone())
                .or_insert_with(|| watch::Sender::new(0))
                .subscribe()
        };
        self.waiting.send_modify(|n| *n += 1);
        Subscription {
            key,
            watch: Arc::clone(self),
            receiver: Some(receiver),
        }
    }

    /// Waits until the object is in `state`, until `deadline`, or until the node
    /// shuts down (a node already stopping answers at once with what it knows).
    /// `read` reads the object as the caller may see it; it runs once at the start
    /// and again after each committed change to the object, nothing polls, and an
    /// idle waiter costs one channel receiver.
    pub async fn wait_for_state<E, F, Fut>(
        self: &Arc<Self>,
        notifier: &Notifier,
        key: ObjectRef,
        state: &str,
        deadline: Instant,
        mut shutdown: watch::Receiver<bool>,
        mut read: F,
    ) -> Result<Waited, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<Object>, E>>,
    {
        // Subscribed before reading, so a change committed after the read wakes us.
        let mut changes = self.subscribe(notifier, key);
        let deadline = if *shutdown.borrow_and_update() {
            Instant::now()
        } else {
            deadline
        };
        let mut current = read().await?;
        loop {
            if let Some(object) = current.take_if(|o| o.state.as_deref() == Some(state)) {
                return Ok(Waited::Reached(object));
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Waited::Gave(current)),
                _ = shutdown.changed() => return Ok(Waited::Gave(current)),
            }
            // Woken by a write to this object: the store has its committed state.
            current = read().await?;
        }
    }

    /// The number of open subscriptions, as it changes.
    pub fn waiters(&self) -> watch::Receiver<usize> {
        self.waiting.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, watch::Sender<u64>>> {
        // A panic while holding the map cannot leave it inconsistent (each operation
        // is a single insert, bump or remove), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self, key: &ObjectRef) {
        if let Some(sender) = self.lock().get(key) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn bump_all(&self) {
        for sender in self.lock().values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

impl Subscription {
    /// Resolves when the object may have changed since the last call (or since the
    /// subscription). Pending forever if the store is gone; callers bound the wait.
    pub async fn changed(&mut self) {
        let alive = match self.receiver.as_mut() {
            Some(receiver) => receiver.changed().await.is_ok(),
            None => false,
        };
        if !alive {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut slots = self.watch.lock();
        if slots
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            slots.remove(&self.key);
        }
        drop(slots);
        self.watch.waiting.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn dispatch(
    watch: Weak<ObjectWatch>,
    mut changes: tokio::sync::broadcast::Receiver<ObjectChange>,
) {
    loop {
        let change = changes.recv().await;
        let Some(watch) = watch.upgrade() else { return };
        match change {
            Ok(ObjectChange::Updated(object)) => watch.bump(&object.key),
            Ok(ObjectChange::Removed(key)) => watch.bump(&key),
            // Some changes were missed: every waiter re-reads.
            Err(RecvError::Lagged(_)) => watch.bump_all(),
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::Timestamp;
    use std::time::Duration;

    fn object(id: &str) -> Arc<Object> {
        Arc::new(Object {
            key: ObjectRef::new("lxc", id),
            name: None,
            state: Some("running".into()),
            parent: None,
            uri: None,
            attributes: Default::default(),
            domain_id: None,
            updated: Timestamp(0),
        })
    }

    #[tokio::test]
    async fn a_change_wakes_only_its_objects_waiters_and_idle_slots_are_forgotten() {
        let notifier = Notifier::new(0);
        let watch = Arc::new(ObjectWatch::default());
        let mut a = watch.subscribe(&notifier, ObjectRef::new("lxc", "a"));
        let b = watch.subscribe(&notifier, ObjectRef::new("lxc", "b"));
        notifier.publish_object(ObjectChange::Updated(object("a")));
        tokio::time::timeout(Duration::from_secs(5), a.changed())
            .await
            .expect("a is woken");
        // The dispatcher handled the change (a was woken) without touching b.
        let b_changed = b.receiver.as_ref().map(|r| r.has_changed().ok());
        assert_eq!(b_changed, Some(Some(false)), "b was woken by a change to a");
        drop(a);
        assert_eq!(
            watch.lock().len(),
            1,
            "a's slot is gone with its last waiter"
        );
        drop(b);
        assert!(watch.lock().is_empty());
    }
}
