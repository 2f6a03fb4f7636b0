//! Appends, with group commit and cursor safety. One task per node drains whatever
//! appends are queued into one transaction that first takes the schema's append
//! lock (`pg_advisory_xact_lock`), then numbers the rows after the last committed id,
//! inserts them with one multi-row `INSERT ... SELECT FROM unnest(...)`, and commits.
//! PostgreSQL releases a transaction's locks only after its commit is visible, so
//! the next batch (from any node) numbers its rows after every id already visible:
//! ids become visible in id order, and a reader that has seen id N never later finds
//! a lower one. The cost: one appending transaction at a time across all nodes; the
//! batching is what keeps that affordable (see docs/postgres.md).

use super::listen::Publisher;
use super::LOCK_CLASS;
use crate::{Appended, Result, StoreError};
use deadpool_postgres::{Pool, Transaction};
use logbook_core::{Level, NewRecord, Record, Timestamp};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most appends folded into one transaction.
const MAX_JOBS_PER_BATCH: usize = 1024;
/// Most rows in one transaction (bounds the statement and the lock's hold time).
const MAX_ROWS_PER_BATCH: usize = 50_000;
/// Queued appends before callers wait (back-pressure).
const QUEUE_CAPACITY: usize = 4096;
/// Ids per records partition.
pub const PARTITION_IDS: i64 = 1_000_000;

#[derive(Clone)]
pub struct Target {
    pub lock_key: i32,
    pub channel: String,
    pub node: String,
}

struct Job {
    records: Vec<NewRecord>,
    reply: oneshot::Sender<Result<Appended>>,
}

pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(pool: Pool, target: Target, publisher: Arc<Publisher>) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_loop(pool, target, publisher, jobs));
        Writer { queue }
    }

    /// Appends `records` in the next batch and returns their ids once committed.
    pub async fn append(&self, records: Vec<NewRecord>) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { records, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_loop(
    pool: Pool,
    target: Target,
    publisher: Arc<Publisher>,
    mut jobs: mpsc::Receiver<Job>,
) {
    while let Some(first) = jobs.recv().await {
        let mut rows = first.records.len();
        let mut pending = vec![first];
        while pending.len() < MAX_JOBS_PER_BATCH && rows < MAX_ROWS_PER_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    rows += job.records.len();
                    pending.push(job);
                }
                Err(_) => break,
            }
        }
        let outcome = commit(&pool, &target, &pending).await;
        match outcome {
            Ok((previous, stored)) => {
                answer(&publisher, previous, stored, pending).await;
            }
            Err(StoreError::Invalid { .. }) if pending.len() > 1 => {
                // One job's data was refused; the transaction rolled back whole.
                // Retry each job alone so the others are not failed by it.
                for job in pending {
                    let alone = std::slice::from_ref(&job);
                    match commit(&pool, &target, alone).await {
                        Ok((previous, stored)) => {
                            answer(&publisher, previous, stored, vec![job]).await
                        }
                        Err(e) => {
                            let _ = job.reply.send(Err(e));
                        }
                    }
                }
            }
            Err(e) => {
                for job in pending {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Announces the committed records, then answers each job with its ids.
async fn answer(publisher: &Publisher, previous: i64, stored: Vec<Record>, pending: Vec<Job>) {
    let mut next = previous + 1;
    let replies: Vec<(oneshot::Sender<Result<Appended>>, Appended)> = pending
        .into_iter()
        .map(|job| {
            let count = job.records.len();
            let appended = Appended {
                count,
                first_id: (count > 0).then_some(next),
                last_id: (count > 0).then_some(next + count as i64 - 1),
            };
            next += count as i64;
            (job.reply, appended)
        })
        .collect();
    publisher.committed(previous, stored).await;
    for (reply, appended) in replies {
        let _ = reply.send(Ok(appended));
    }
}

/// Inserts every job's records in one transaction; returns the last id before them
/// and the stored records.
async fn commit(pool: &Pool, target: &Target, pending: &[Job]) -> Result<(i64, Vec<Record>)> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let records: Vec<NewRecord> = pending
        .iter()
        .flat_map(|job| job.records.iter().cloned())
        .collect();
    let appended = append_locked(&tx, target, records).await?;
    tx.commit().await?;
    Ok(appended)
}

/// Takes the append lock for the rest of `tx`, numbers `records` after the last
/// committed id and inserts them; returns the last id before them and the stored
/// records. Every append, batched or riding along with another change, goes here.
pub(super) async fn append_locked(
    tx: &Transaction<'_>,
    target: &Target,
    records: Vec<NewRecord>,
) -> Result<(i64, Vec<Record>)> {
    let previous = lock_appends(tx, target.lock_key).await?;
    let now = Timestamp::now();
    let stored: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, new)| new.into_record(previous + 1 + i as i64, now))
        .collect();
    let Some(last) = stored.last().map(|r| r.id) else {
        return Ok((previous, stored));
    };
    ensure_spare_partition(tx, last).await?;
    insert(tx, &stored).await?;
    super::integrity::insert_leaves(tx, &stored).await?;
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'last_record_id'",
        &[&last],
    )
    .await?;
    let hint = serde_json::json!({"k": "r", "hw": last, "n": target.node}).to_string();
    tx.execute("SELECT pg_notify($1, $2)", &[&target.channel, &hint])
        .await?;
    Ok((previous, stored))
}

/// Takes the append lock for the rest of `tx` and returns the last committed id.
pub(super) async fn lock_appends(tx: &Transaction<'_>, lock_key: i32) -> Result<i64> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &lock_key],
    )
    .await?;
    // Read after the lock, in a new statement (so a new snapshot): it sees the
    // previous holder's commit.
    Ok(tx
        .query_one("SELECT value FROM meta WHERE key = 'last_record_id'", &[])
        .await?
        .get(0))
}

/// Keeps a whole partition of ids beyond `last` attached, so that the rows of an
/// append (at most [`MAX_ROWS_PER_BATCH`]) always land in a partition attached by an
/// earlier, committed transaction. A reader whose snapshot includes an append but
/// whose plan predates the partition it created would miss those rows while seeing
/// the raised high-water mark: ids skipped by a cursor (seen once in CI, on the very
/// first append, which used to create the first partition).
pub(super) async fn ensure_spare_partition(tx: &Transaction<'_>, last: i64) -> Result<()> {
    ensure_partitions(tx, last.saturating_add(PARTITION_IDS)).await
}

/// Creates the partitions ids up to `last` need. Runs under the append lock, so two
/// nodes never create the same one. `ATTACH PARTITION` takes only a SHARE UPDATE
/// EXCLUSIVE lock on `records`, so readers (even a long export) neither block it nor
/// are blocked by it, as `CREATE TABLE ... PARTITION OF` would.
pub(super) async fn ensure_partitions(tx: &Transaction<'_>, last: i64) -> Result<()> {
    let covered: i64 = tx
        .query_one("SELECT coalesce(max(hi), 1) FROM record_partitions", &[])
        .await?
        .get(0);
    let mut lo = covered;
    while lo <= last {
        let hi = lo + PARTITION_IDS;
        let name = format!("records_p{}", lo / PARTITION_IDS);
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE records INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
             ALTER TABLE records ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi});"
        ))
        .await?;
        tx.execute(
            "INSERT INTO record_partitions (lo, hi, name) VALUES ($1, $2, $3)",
            &[&lo, &hi, &name],
        )
        .await?;
        lo = hi;
    }
    Ok(())
}

pub(super) async fn insert(tx: &Transaction<'_>, records: &[Record]) -> Result<()> {
    let n = records.len();
    let mut ids = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut levels = Vec::with_capacity(n);
    let mut texts: Vec<Vec<Option<&str>>> = (0..16).map(|_| Vec::with_capacity(n)).collect();
    let mut data = Vec::with_capacity(n);
    for r in records {
        ids.push(r.id);
        ts.push(r.ts.micros());
        kinds.push(r.kind.code());
        levels.push(r.level.map(Level::number));
        let fields = [
            &r.category,
            &r.source,
            &r.instance,
            &r.logger,
            &r.user,
            &r.user_id,
            &r.domain_id,
            &r.project_id,
            &r.object_type,
            &r.object_id,
            &r.action,
            &r.status,
            &r.response_code,
            &r.request_id,
            &r.parent_request_id,
            &r.message,
        ];
        for (column, value) in texts.iter_mut().zip(fields) {
            column.push(value.as_deref());
        }
        data.push(
            r.data
                .as_ref()
                .map(|d| serde_json::Value::Object(d.clone()).to_string()),
        );
    }
    let text_params: Vec<String> = (5..=20).map(|i| format!("${i}::text[]")).collect();
    let sql = format!(
        "INSERT INTO records ({}) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], \
         $4::bigint[], {}, $21::text[]::json[])",
        super::records::RECORD_COLUMNS_PLAIN,
        text_params.join(", ")
    );
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&ids, &ts, &kinds, &levels];
    for column in &texts {
        params.push(column);
    }
    params.push(&data);
    tx.execute(&sql, &params).await?;
    Ok(())
}
