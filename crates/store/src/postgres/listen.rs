//! Changes made through other nodes reach this node's [`Notifier`] here. Every
//! committing transaction sends a NOTIFY hint on the schema's channel; one dedicated
//! connection LISTENs and, for each hint, reloads what changed from the store (the
//! payload is only a hint: the store is the truth) and republishes it. The listening
//! connection reconnects by itself, and after each (re)connect catches up on records
//! it may have missed. Nothing polls, except the horizon recheck while an older
//! append is still in flight (see [`Publisher::run`]).

use super::auth_cache::AuthCache;
use super::{actions, objects};
use crate::notifier::{ActionLogAppended, ObjectChange};
use crate::{Notifier, Result};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{ObjectRef, Query, Record};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

/// Records fetched per query while catching up.
const CATCH_UP_BATCH: u64 = 1000;
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// While committed records are not yet below the horizon (an older append is still
/// in flight), the horizon is read again after this pause, doubling up to
/// [`MAX_RECHECK`]: an append that rolls back or whose node dies sends no
/// notification, so waiting for one alone could wait forever.
const FIRST_RECHECK: Duration = Duration::from_millis(2);
const MAX_RECHECK: Duration = Duration::from_millis(100);
/// How long an append waits for its records to come below the horizon before it
/// is acknowledged anyway (they are committed; only read-your-writes is at stake,
/// and only while the database is unreachable).
const ANNOUNCE_WAIT: Duration = Duration::from_secs(10);

/// Publishes records to the notifier in id order, each exactly once, whichever node
/// wrote them, and only up to the visibility horizon: what the notifier has
/// published is what a reader may see.
pub struct Publisher {
    pool: Pool,
    tiers: Arc<super::blocks::PgTiers>,
    notifier: Arc<Notifier>,
    pending: std::sync::Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    /// Batches committed by this node and not yet published, by first id: they are
    /// published from memory instead of being read back.
    local: BTreeMap<i64, Vec<Record>>,
    /// The highest id known to be reserved by a committed or running append.
    target: i64,
}

impl Publisher {
    pub fn new(
        pool: Pool,
        tiers: Arc<super::blocks::PgTiers>,
        notifier: Arc<Notifier>,
    ) -> Publisher {
        Publisher {
            pool,
            tiers,
            notifier,
            pending: std::sync::Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves consistent data (plain inserts).
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This node committed `records` (ids contiguous): publish them once the
    /// horizon passes them, and return then, so that whoever appended reads them.
    pub async fn announce(&self, records: Vec<Record>) {
        let Some(last) = records.last().map(|r| r.id) else {
            return;
        };
        let mut published = self.notifier.watch_high_water();
        {
            let mut pending = self.pending();
            pending.target = pending.target.max(last);
            if let Some(first) = records.first().map(|r| r.id) {
                pending.local.insert(first, records);
            }
        }
        self.wake.notify_one();
        let reached = tokio::time::timeout(ANNOUNCE_WAIT, published.wait_for(|hw| *hw >= last));
        if reached.await.is_err() {
            tracing::warn!(last, "committed records are not yet visible to readers");
        }
    }

    /// Ids up to `reserved` are committed or being appended (a hint from some node).
    pub fn reached(&self, reserved: i64) {
        {
            let mut pending = self.pending();
            pending.target = pending.target.max(reserved);
        }
        // A hint about ids published already (this node's own, mostly) would only
        // cost a horizon read.
        if reserved > self.notifier.high_water() {
            self.wake.notify_one();
        }
    }

    /// Publishes what each wake-up (or, while behind, each recheck) brings below the
    /// horizon, until the store is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut recheck = FIRST_RECHECK;
        loop {
            let behind = self.pending().target > self.notifier.high_water();
            if behind {
                let _ = tokio::time::timeout(recheck, self.wake.notified()).await;
            } else {
                self.wake.notified().await;
            }
            let before = self.notifier.high_water();
            if let Err(e) = self.advance().await {
                tracing::warn!(error = %e, "cannot read the horizon; announcing later");
            }
            recheck = if self.notifier.high_water() > before {
                FIRST_RECHECK
            } else {
                (recheck * 2).min(MAX_RECHECK)
            };
        }
    }

    /// Publishes everything between what was published and the current horizon.
    async fn advance(&self) -> Result<()> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(super::writer::HORIZON).await?;
        let horizon: i64 = client.query_one(&statement, &[]).await?.get(0);
        let mut published = self.notifier.high_water();
        while published < horizon {
            let next_local = {
                let mut pending = self.pending();
                // Batches read back from the store already (a race with their
                // announcement) are dropped.
                while let Some(entry) = pending.local.first_entry() {
                    if *entry.key() > published {
                        break;
                    }
                    entry.remove();
                }
                match pending.local.first_entry() {
                    Some(entry) if *entry.key() == published + 1 => Ok(entry.remove()),
                    Some(entry) => Err(Some(*entry.key())),
                    None => Err(None),
                }
            };
            match next_local {
                Ok(batch) => {
                    // Reservations never straddle the horizon: a batch below it is
                    // below it whole.
                    published = batch.last().map_or(published, |r| r.id);
                    self.notifier.publish_records(Arc::new(batch));
                }
                Err(next) => {
                    let upto = next.map_or(horizon, |lo| horizon.min(lo - 1));
                    self.read_back(&client, published, upto).await?;
                    published = upto;
                }
            }
        }
        Ok(())
    }

    /// Publishes the committed records in `(after, upto]`, read from the store (or
    /// only the mark, if no stream subscribes: with several nodes each would
    /// otherwise read back every record every other node writes).
    async fn read_back(
        &self,
        _client: &deadpool_postgres::Client,
        after: i64,
        upto: i64,
    ) -> Result<()> {
        if !self.notifier.has_record_subscribers() {
            self.notifier.raise_high_water(upto);
            return Ok(());
        }
        let mut after = after;
        loop {
            // Through both tiers: the sealer may have moved them into a block.
            let range = Query {
                conditions: vec![
                    Condition::Compare(Field::Id, Comparison::Gt, Scalar::Int(after)),
                    Condition::Compare(Field::Id, Comparison::Le, Scalar::Int(upto)),
                ],
                limit: Some(CATCH_UP_BATCH),
                ..Query::oldest_first()
            };
            let records = super::records::query_page(&self.pool, &self.tiers, &range)
                .await?
                .records;
            match records.last().map(|r| r.id) {
                Some(last) => {
                    after = last;
                    self.notifier.publish_records(Arc::new(records));
                }
                None => {
                    // The rest of the range was deleted or never used.
                    self.notifier.raise_high_water(upto);
                    return Ok(());
                }
            }
        }
    }
}

/// Listens until the store is dropped, reconnecting whenever the connection fails.
pub async fn run(
    config: tokio_postgres::Config,
    channel: String,
    node: String,
    publisher: Arc<Publisher>,
    pool: Pool,
    auth: Arc<AuthCache>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let outcome = listen_once(&config, &channel, &node, &publisher, &pool, &auth).await;
        // Notifications sent from now until listening again are lost.
        auth.set_listener(None);
        match outcome {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::warn!(error = %e, "notification listener lost its connection; reconnecting");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: LISTEN, catch up, then handle hints until it fails.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    node: &str,
    publisher: &Publisher,
    pool: &Pool,
    auth: &Arc<AuthCache>,
) -> Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let client = Arc::new(client);
    let (hints, mut received) = tokio::sync::mpsc::unbounded_channel();
    let cache = Arc::clone(auth);
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    // Here, before the connection reads on: a barrier answered
                    // after this notification finds the cache already emptied.
                    if is_auth_hint(n.payload()) {
                        cache.invalidate();
                        continue;
                    }
                    if hints.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "notification connection failed");
                    break;
                }
            }
        }
    });
    let listening = client
        .batch_execute(&format!("LISTEN {}", super::schema::quote_ident(channel)))
        .await;
    if let Err(e) = listening {
        driver.abort();
        return Err(e.into());
    }
    auth.set_listener(Some(Arc::clone(&client)));
    // Anything committed while we were not listening is announced now.
    let reserved: i64 = client
        .query_one("SELECT last FROM id_counter", &[])
        .await?
        .get(0);
    publisher.reached(reserved);
    while let Some(payload) = received.recv().await {
        handle(&payload, node, publisher, pool).await;
    }
    driver.abort();
    Err(crate::StoreError::Unavailable(
        "notification connection closed".into(),
    ))
}

/// Whether a notification tells nodes to forget cached authentication.
fn is_auth_hint(payload: &str) -> bool {
    serde_json::from_str::<Value>(payload).is_ok_and(|hint| hint["k"] == "auth")
}

async fn handle(payload: &str, node: &str, publisher: &Publisher, pool: &Pool) {
    let Ok(hint) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    let kind = hint["k"].as_str().unwrap_or_default();
    if kind == "r" {
        // Even our own hints: they let a node that missed announcing catch up.
        if let Some(high_water) = hint["hw"].as_i64() {
            publisher.reached(high_water);
        }
        return;
    }
    if hint["n"].as_str() == Some(node) {
        // This node announced its own change when it committed it.
        return;
    }
    let notifier = &publisher.notifier;
    let text = |key: &str| hint[key].as_str().unwrap_or_default().to_string();
    let outcome: Result<()> = async {
        let client = pool.get().await?;
        match kind {
            "o" => {
                let key = ObjectRef::new(text("t"), text("i"));
                match objects::load(&client, &key).await? {
                    Some(object) => {
                        notifier.publish_object(ObjectChange::Updated(Arc::new(object)))
                    }
                    None => notifier.publish_object(ObjectChange::Removed(key)),
                }
            }
            "a" => {
                if let Some(action) = actions::load(&client, &text("u")).await? {
                    notifier.publish_action(Arc::new(action));
                }
            }
            "l" => {
                let (from, to) = (
                    hint["from"].as_i64().unwrap_or(0),
                    hint["to"].as_i64().unwrap_or(0),
                );
                let lines = actions::lines_between(&client, &text("u"), from, to).await?;
                if !lines.is_empty() {
                    notifier.publish_action_logs(ActionLogAppended {
                        uuid: text("u"),
                        lines: Arc::new(lines),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "cannot reload a change another node announced");
    }
}
