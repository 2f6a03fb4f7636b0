//! Changes made through other nodes reach this node's [`Notifier`] here. Every
//! committing transaction sends a NOTIFY hint on the schema's channel; one dedicated
//! connection LISTENs and, for each hint, reloads what changed from the store (the
//! payload is only a hint: the store is the truth) and republishes it. The listening
//! connection reconnects by itself, and after each (re)connect catches up on records
//! it may have missed. Nothing polls.

use super::{actions, objects};
use crate::notifier::{ActionLogAppended, ObjectChange};
use crate::{Notifier, Result};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use logbook_core::{ObjectRef, Record};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::{AsyncMessage, NoTls};

/// Records fetched per query while catching up.
const CATCH_UP_BATCH: i64 = 1000;
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);

/// Publishes records to the notifier in id order, each exactly once, whichever node
/// wrote them.
pub struct Publisher {
    pool: Pool,
    notifier: Arc<Notifier>,
    /// The highest id announced so far.
    published: Mutex<i64>,
}

impl Publisher {
    pub fn new(pool: Pool, notifier: Arc<Notifier>, published: i64) -> Publisher {
        Publisher {
            pool,
            notifier,
            published: Mutex::new(published),
        }
    }

    /// This node committed `records`, numbered after `previous`.
    pub async fn committed(&self, previous: i64, records: Vec<Record>) {
        let mut published = self.published.lock().await;
        if previous > *published {
            // Other nodes committed in between: announce theirs first, in order.
            if let Err(e) = self.catch_up(&mut published, previous).await {
                tracing::warn!(error = %e, "cannot read other nodes' records; announcing later");
                return;
            }
        }
        let fresh: Vec<Record> = records.into_iter().filter(|r| r.id > *published).collect();
        if let Some(last) = fresh.last().map(|r| r.id) {
            *published = last;
            self.notifier.publish_records(Arc::new(fresh));
        }
    }

    /// Records up to `high_water` are committed (a hint from some node).
    pub async fn reached(&self, high_water: i64) {
        let mut published = self.published.lock().await;
        if high_water > *published {
            if let Err(e) = self.catch_up(&mut published, high_water).await {
                tracing::warn!(error = %e, "cannot read committed records; announcing later");
            }
        }
    }

    async fn catch_up(&self, published: &mut i64, upto: i64) -> Result<()> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {} FROM records WHERE id > $1 AND id <= $2 ORDER BY id LIMIT {CATCH_UP_BATCH}",
            super::records::RECORD_COLUMNS
        );
        let statement = client.prepare_cached(&sql).await?;
        loop {
            let rows = client.query(&statement, &[&*published, &upto]).await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                records.push(super::records::read_record(row)?);
            }
            match records.last().map(|r| r.id) {
                Some(last) => {
                    *published = last;
                    self.notifier.publish_records(Arc::new(records));
                }
                None => {
                    // The rest of the range was deleted or never used.
                    *published = upto;
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
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match listen_once(&config, &channel, &node, &publisher, &pool).await {
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
) -> Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (hints, mut received) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
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
    // Anything committed while we were not listening is announced now.
    let high_water: i64 = client
        .query_one("SELECT value FROM meta WHERE key = 'last_record_id'", &[])
        .await?
        .get(0);
    publisher.reached(high_water).await;
    while let Some(payload) = received.recv().await {
        handle(&payload, node, publisher, pool).await;
    }
    driver.abort();
    Err(crate::StoreError::Unavailable(
        "notification connection closed".into(),
    ))
}

async fn handle(payload: &str, node: &str, publisher: &Publisher, pool: &Pool) {
    let Ok(hint) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    let kind = hint["k"].as_str().unwrap_or_default();
    if kind == "r" {
        // Even our own hints: they let a node that missed announcing catch up.
        if let Some(high_water) = hint["hw"].as_i64() {
            publisher.reached(high_water).await;
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
