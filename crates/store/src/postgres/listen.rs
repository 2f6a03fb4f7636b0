//! Changes made through other nodes reach this node's [`Notifier`] here. Every
//! committing transaction sends a NOTIFY hint on the schema's channel; one dedicated
//! connection LISTENs and, for each hint, reloads what changed from the store (the
//! payload is only a hint: the store is the truth) and republishes it. The listening
//! connection reconnects by itself, and after each (re)connect catches up on records
//! it may have missed. Nothing polls: while an older append is still in flight,
//! the publisher waits in PostgreSQL for it to end (see [`Publisher::run`]).

use super::auth_cache::AuthCache;
use super::writer::Horizon;
use super::{actions, objects};
use crate::notifier::{ActionLogAppended, ObjectChange};
use crate::{Notifier, Result};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{ObjectRef, Query, Record};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

/// Records fetched per query while catching up.
const CATCH_UP_BATCH: u64 = 1000;
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// While committed records are not yet below the horizon and there is no append
/// to wait for (the wait timed out, or the append took no lock), the horizon is
/// read again after this pause, doubling up to [`MAX_RECHECK`].
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
    /// One connection (with a `lock_timeout`) for reading the horizon and waiting
    /// for the appends that hold it back.
    waits: Pool,
    /// The highest horizon this node's writer read right after a commit.
    seen: AtomicI64,
    /// The append that held that horizon below the writer's batch, if one did: the
    /// publisher waits for it at once, without reading the horizon again first.
    reported_blocker: std::sync::Mutex<Option<i32>>,
    /// Whether the writer is committing a batch ([`Publisher::writing`]).
    writing: std::sync::atomic::AtomicBool,
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
    /// The highest id this node committed.
    target: i64,
    /// The highest id other nodes said they committed (hints), or reserved when
    /// this node (re)connected: published as soon as there is someone to receive it
    /// (a stream), else with the next of this node's own batches.
    hinted: i64,
}

impl Publisher {
    pub fn new(
        pool: Pool,
        waits: Pool,
        tiers: Arc<super::blocks::PgTiers>,
        notifier: Arc<Notifier>,
    ) -> Publisher {
        Publisher {
            pool,
            waits,
            seen: AtomicI64::new(0),
            reported_blocker: std::sync::Mutex::new(None),
            writing: std::sync::atomic::AtomicBool::new(false),
            tiers,
            notifier,
            pending: std::sync::Mutex::new(Pending::default()),
            wake: Notify::new(),
        }
    }

    fn lock_reported(&self) -> std::sync::MutexGuard<'_, Option<i32>> {
        // A plain value: a panic while holding the lock leaves it consistent.
        self.reported_blocker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        self.announce_below(records, None).await;
    }

    /// As [`Publisher::announce`], with the horizon read after their commit.
    pub async fn announce_below(&self, records: Vec<Record>, after: Option<Horizon>) {
        let Some(last) = records.last().map(|r| r.id) else {
            return;
        };
        if let Some(after) = after {
            self.seen.fetch_max(after.id, Ordering::AcqRel);
            if after.id < last && after.blocker.is_some() {
                *self.lock_reported() = after.blocker;
            }
        }
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
            pending.hinted = pending.hinted.max(reserved);
        }
        // A hint about ids published already (this node's own, mostly) would only
        // cost a horizon read; so would one arriving while this node appends, with
        // no stream to receive the other nodes' records: its own next publication
        // passes them. With three nodes under single POSTs each node read the
        // horizon for most of the others' commits (190 reads/s per node).
        if reserved > self.notifier.high_water() && self.wanted() >= reserved {
            self.wake.notify_one();
        }
    }

    /// While this node commits a batch, and has not published it yet.
    pub fn writing(&self, busy: bool) {
        self.writing.store(busy, Ordering::Release);
    }

    /// The id the publisher has to publish up to now: this node's commits, and the
    /// other nodes' unless this node is appending (its next publication passes
    /// them) with no stream subscribed.
    fn wanted(&self) -> i64 {
        let pending = self.pending();
        let appending = self.writing.load(Ordering::Acquire) || !pending.local.is_empty();
        if self.notifier.has_record_subscribers() || !appending {
            pending.target.max(pending.hinted)
        } else {
            pending.target
        }
    }

    fn behind(&self) -> bool {
        self.wanted() > self.notifier.high_water()
    }

    /// Publishes what each wake-up brings below the horizon, until the store is
    /// dropped. While behind, it waits in PostgreSQL for the append holding the
    /// horizon back to end (whichever node runs it) and reads the horizon in the
    /// same round trip: with several nodes an acknowledgement waited for the other
    /// node's hint and a horizon read after it, or for a recheck. An append
    /// that rolls back or whose node dies sends no hint but ends, and that ends the
    /// wait too.
    pub async fn run(self: Arc<Self>) {
        let mut recheck = FIRST_RECHECK;
        let mut blocker = None;
        loop {
            if !self.behind() {
                blocker = None;
                self.wake.notified().await;
            } else if blocker.is_none() && self.lock_reported().is_none() {
                let _ = tokio::time::timeout(recheck, self.wake.notified()).await;
            }
            // The writer's read after its commit named the append to wait for:
            // one round trip (the wait and the read) instead of a read and then
            // that round trip, for most batches when several nodes append.
            let wait_for = blocker.take().or_else(|| self.lock_reported().take());
            let before = self.notifier.high_water();
            let waited = wait_for.is_some();
            match self.advance(wait_for).await {
                Ok(next) => blocker = next,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the horizon; announcing later");
                }
            }
            if self.notifier.high_water() > before {
                recheck = FIRST_RECHECK;
            } else {
                recheck = (recheck * 2).min(MAX_RECHECK);
                if waited {
                    // The wait timed out or found no lock held (an append by a
                    // node of an earlier version): pause before the next.
                    blocker = None;
                }
            }
        }
    }

    /// Waits for the append holding the lock `blocker` to end, if given, then
    /// publishes everything between what was published and the horizon; returns
    /// the lock of the append holding the horizon back, while records this node
    /// knows of are still above it.
    async fn advance(&self, blocker: Option<i32>) -> Result<Option<i32>> {
        let seen = self.seen.load(Ordering::Acquire);
        let (horizon, next) = if blocker.is_none() && seen >= self.wanted() {
            // The writer read it after its commit, past everything known.
            (seen, None)
        } else {
            let client = self.waits.get().await?;
            let read = client
                .prepare_cached(super::writer::HORIZON_AND_BLOCKER)
                .await?;
            let row = match blocker {
                Some(key) => {
                    let wait = client
                        .prepare_cached(super::writer::WAIT_FOR_APPEND)
                        .await?;
                    let lock: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                        [&super::APPEND_LOCK_CLASS, &key];
                    let (waited, row) = futures_util::join!(
                        client.execute(&wait, &lock),
                        client.query_one(&read, &[])
                    );
                    if let Err(e) = waited {
                        if e.code() != Some(&SqlState::LOCK_NOT_AVAILABLE) {
                            return Err(e.into());
                        }
                    }
                    row?
                }
                None => client.query_one(&read, &[]).await?,
            };
            let horizon: i64 = row.get(0);
            (horizon.max(seen), row.get::<_, Option<i32>>(1))
        };
        self.publish_upto(horizon).await?;
        Ok(next.filter(|_| self.behind()))
    }

    /// Publishes everything between what was published and `horizon`.
    async fn publish_upto(&self, horizon: i64) -> Result<()> {
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
                    self.read_back(published, upto).await?;
                    published = upto;
                }
            }
        }
        Ok(())
    }

    /// Publishes the committed records in `(after, upto]`, read from the store (or
    /// only the mark, if no stream subscribes: with several nodes each would
    /// otherwise read back every record every other node writes).
    async fn read_back(&self, after: i64, upto: i64) -> Result<()> {
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
