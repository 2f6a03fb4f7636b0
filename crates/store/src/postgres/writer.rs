//! Appends, with group commit and no lock across nodes. A writer task per node
//! drains whatever appends are queued, each batch into one transaction T that
//!
//! 1. takes its transaction id (`pg_current_xact_id()`),
//! 2. reserves the batch's ids on a side connection: one tiny, separately committed
//!    statement raises `id_counter` and registers `(xid of T, counter before)` in
//!    `appending`, so every reader sees the reservation before any id of it can
//!    commit,
//! 3. inserts the rows and their leaves and commits (then tells the other nodes,
//!    see [`Target::hint`]).
//!
//! T leaves its `appending` row behind: once T has ended, its row no longer counts
//! in any snapshot that sees the end (the horizon asks whether the xid is still in
//! progress), so deleting it is housekeeping, done for many transactions at once
//! by [`sweep`].
//!
//! Readers stop at the visibility horizon ([`HORIZON`]): the counter, or below the
//! lowest reservation whose transaction is still in progress in the reader's
//! snapshot. No id can commit below a horizon a reader has seen (the argument is in
//! docs/postgres.md), so cursors never skip a record, while appends from every node
//! run in parallel: the only thing they queue on is the counter row, for the few
//! microseconds of step 2.

use super::listen::Publisher;
use super::{APPEND_LOCK_CLASS, PARTITION_LOCK_CLASS};
use crate::write_state::WriteStateTracker;
use crate::{Appended, Result, StoreError};
use deadpool_postgres::{Pool, Transaction};
use logbook_core::{Level, NewRecord, Record, Timestamp};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::CopyInSink;

/// Most appends folded into one transaction.
const MAX_JOBS_PER_BATCH: usize = 1024;
/// Most rows in one transaction (bounds the statement).
const MAX_ROWS_PER_BATCH: usize = 50_000;
/// Queued appends before callers wait (back-pressure).
const QUEUE_CAPACITY: usize = 4096;
/// Bounds of the ids per records partition this node attaches (see
/// [`partition_ids`]).
const PARTITION_IDS: std::ops::RangeInclusive<i64> = 256..=1_000_000;
/// Least time between two hints of one node (see [`send_hints`]).
const HINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
/// Batches between two sweeps of the reservations of ended transactions (every
/// horizon reads the ones not yet swept).
const SWEEP_EVERY: u64 = 32;

/// The highest id a reader may see, in the snapshot of the statement (or
/// repeatable-read transaction) that evaluates it: every id up to it that will ever
/// exist is committed and visible in that snapshot.
pub const HORIZON: &str = "SELECT least((SELECT last FROM id_counter), \
     (SELECT min(floor) FROM appending \
      WHERE NOT pg_visible_in_snapshot(xid, pg_current_snapshot())))";

/// [`HORIZON`], and the lock key ([`CURRENT_XID`]) of the append holding it back,
/// if one does: the horizon cannot move before that append ends.
pub const HORIZON_AND_BLOCKER: &str = "SELECT least(c.last, b.floor), b.key FROM id_counter c \
     LEFT JOIN LATERAL (SELECT floor, (xid::text::bigint & 2147483647)::int AS key \
       FROM appending WHERE NOT pg_visible_in_snapshot(xid, pg_current_snapshot()) \
       ORDER BY floor LIMIT 1) b ON true";

/// A horizon as [`HORIZON_AND_BLOCKER`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    pub id: i64,
    /// The lock of the append holding `id` back, if one does.
    pub blocker: Option<i32>,
}

impl Horizon {
    pub fn of(row: &tokio_postgres::Row) -> Horizon {
        Horizon {
            id: row.get(0),
            blocker: row.get(1),
        }
    }
}

/// Returns once the append holding the lock `$2` of [`CURRENT_XID`] has ended (at
/// once if it has ended already), or fails with `lock_timeout`.
pub const WAIT_FOR_APPEND: &str = "SELECT pg_advisory_xact_lock_shared($1, $2)";

/// What an append needs besides the transaction it runs in.
#[derive(Clone)]
pub struct Target {
    /// Short transactions that must commit before (and apart from) the append's
    /// own: id reservations and partitions. Connections with
    /// `synchronous_commit = off` (see [`reserve`] for why that is safe).
    pub side: Pool,
    pub lock_key: i32,
    /// Ids the attached partitions cover (exclusive), as last seen by this node.
    pub covered: Arc<AtomicI64>,
    /// The highest id this node has reserved (or seen the counter at, when it
    /// opened): whether a batch's ids will fit the attached partitions, as far as
    /// this node can tell before reserving them.
    pub reserved: Arc<AtomicI64>,
    /// Ids per partition this node attaches ([`partition_ids`]).
    pub partition_ids: i64,
    /// Committed batches, to sweep abandoned reservations now and then.
    pub batches: Arc<AtomicU64>,
    /// The highest id committed by this node, for [`send_hints`].
    pub committed: Arc<watch::Sender<i64>>,
}

impl Target {
    /// Tells the other nodes, soon, that ids up to `last` are committed. Sent
    /// after the commit, on a side connection, not inside the append: PostgreSQL
    /// serialises the commits of all transactions that NOTIFY in a database (a
    /// lock held through the commit's WAL flush), which would make every append
    /// in the cluster wait for the others' fsyncs. The acknowledgement does not
    /// wait for it; a hint lost to a crash right after a commit costs only a later
    /// wake-up, since readers never depend on hints.
    pub fn hint(&self, last: i64) {
        self.committed.send_if_modified(|hinted| {
            let raised = last > *hinted;
            *hinted = (*hinted).max(last);
            raised
        });
    }
}

struct Job {
    records: Vec<NewRecord>,
    reply: oneshot::Sender<Result<Appended>>,
}

pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts `tasks` writer tasks sharing one queue: while one commits, the next
    /// gathers what arrived meanwhile into its own transaction. Each outcome goes to
    /// `state` (appends failing for lack of space, and committing again).
    pub fn start(
        pool: Pool,
        target: Target,
        publisher: Arc<Publisher>,
        state: Arc<WriteStateTracker>,
        tasks: usize,
    ) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..tasks.max(1) {
            tokio::spawn(write_loop(
                pool.clone(),
                target.clone(),
                Arc::clone(&publisher),
                Arc::clone(&state),
                Arc::clone(&jobs),
            ));
        }
        Writer { queue }
    }

    /// Appends `records` in the next batch and returns their ids once committed and
    /// visible to readers.
    pub async fn append(&self, records: Vec<NewRecord>) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { records, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The next batch: the first queued job and whatever else is waiting.
async fn next_batch(jobs: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut jobs = jobs.lock().await;
    let first = jobs.recv().await?;
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
    Some(pending)
}

async fn write_loop(
    pool: Pool,
    target: Target,
    publisher: Arc<Publisher>,
    state: Arc<WriteStateTracker>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
) {
    // Jobs queued while a batch commits are the next batch: its transaction is
    // begun in the same round trip as that commit.
    let more_queued = || jobs.try_lock().is_ok_and(|jobs| !jobs.is_empty());
    let mut begun: Option<Begun> = None;
    loop {
        if let Some(idle) = begun.take_if(|_| !more_queued()) {
            // Its batch was taken by another writer task: an open transaction
            // with an id would hold back VACUUM while this one waits.
            end_transaction(idle.client).await;
        }
        let Some(pending) = next_batch(&jobs).await else {
            break;
        };
        publisher.writing(true);
        let (outcome, next) = commit(&pool, &target, &pending, begun.take(), more_queued).await;
        begun = next;
        publisher.writing(false);
        state.observe_result(&outcome);
        match outcome {
            // The acknowledgement waits until the records are visible, which may
            // take until other nodes' older appends end; the next batch does not.
            Ok((stored, after)) => {
                tokio::spawn(answer(Arc::clone(&publisher), stored, after, pending));
            }
            Err(StoreError::Invalid { .. }) if pending.len() > 1 => {
                // One job's data was refused; the transaction rolled back whole.
                // Retry each job alone so the others are not failed by it.
                for job in pending {
                    let alone = std::slice::from_ref(&job);
                    let (outcome, _) = commit(&pool, &target, alone, None, || false).await;
                    state.observe_result(&outcome);
                    match outcome {
                        Ok((stored, after)) => {
                            tokio::spawn(answer(Arc::clone(&publisher), stored, after, vec![job]));
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
    if let Some(begun) = begun {
        // Closing the connection ends the transaction begun for a batch that
        // never came; back in the pool it would still be open.
        drop(deadpool_postgres::Object::take(begun.client));
    }
}

/// Announces the committed records (with the horizon read right after their
/// commit), waits until readers can see them, then answers each job with its ids.
async fn answer(
    publisher: Arc<Publisher>,
    stored: Vec<Record>,
    after: Option<Horizon>,
    pending: Vec<Job>,
) {
    let mut next = stored.first().map_or(0, |r| r.id);
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
    publisher.announce_below(stored, after).await;
    for (reply, appended) in replies {
        let _ = reply.send(Ok(appended));
    }
}

/// A pooled connection in a transaction begun for the next batch, with that
/// transaction's id (and lock, see [`CURRENT_XID`]).
struct Begun {
    client: deadpool_postgres::Client,
    xid: String,
}

/// What [`commit`] returns: the stored records and, if it could be read, the
/// horizon right after the commit.
type Committed = (Vec<Record>, Option<Horizon>);

/// Inserts every job's records in one transaction, `begun` or begun now; returns
/// what [`Committed`] says and, if `more_queued` says another batch is waiting,
/// that batch's transaction, begun in the commit's round trip.
async fn commit(
    pool: &Pool,
    target: &Target,
    pending: &[Job],
    begun: Option<Begun>,
    more_queued: impl Fn() -> bool,
) -> (Result<Committed>, Option<Begun>) {
    let (client, xid) = match begun {
        Some(Begun { client, xid }) => (client, Some(xid)),
        None => match pool.get().await {
            Ok(client) => (client, None),
            Err(e) => return (Err(e.into()), None),
        },
    };
    let records: Vec<NewRecord> = pending
        .iter()
        .flat_map(|job| job.records.iter().cloned())
        .collect();
    let outcome = append_committed(&client, target, records, xid, more_queued).await;
    match outcome {
        Ok((stored, after, next)) => {
            if let Some(last) = stored.last().map(|r| r.id) {
                target.hint(last);
                // Partitions ahead are attached between transactions, never while
                // one has started its `COPY` (see `append_committed`).
                if let Err(e) = ensure_covered(target, last).await {
                    tracing::warn!(error = %e, "cannot attach the next records partition yet");
                }
            }
            if target.batches.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                // Housekeeping: the acknowledgement does not wait for it.
                let side = target.side.clone();
                tokio::spawn(async move { sweep(&side).await });
            }
            let begun = match next {
                Some(Ok(xid)) => Some(Begun { client, xid }),
                Some(Err(_)) => {
                    end_transaction(client).await;
                    None
                }
                None => None,
            };
            (Ok((stored, after)), begun)
        }
        Err(e) => {
            // The transaction may still be open (a step before COMMIT failed), or
            // the next one begun: end it.
            end_transaction(client).await;
            // The reservation is void; sweep it (and commit synchronously, see
            // `sweep`) rather than leave it to the next round.
            let _ = sweep(&target.side).await;
            (Err(e), None)
        }
    }
}

/// Rolls back whatever transaction `client` is in, or drops the connection rather
/// than hand it back to the pool mid-transaction.
async fn end_transaction(client: deadpool_postgres::Client) {
    if client.batch_execute("ROLLBACK").await.is_err() {
        drop(deadpool_postgres::Object::take(client));
    }
}

/// `BEGIN` and the transaction's id (with its lock, see [`CURRENT_XID`]), in one
/// round trip.
async fn begin(client: &deadpool_postgres::Client) -> Result<String> {
    let xid_of = client.prepare_cached(CURRENT_XID).await?;
    let (begun, xid) = futures_util::join!(
        client.batch_execute("BEGIN"),
        client.query_one(&xid_of, &[&APPEND_LOCK_CLASS])
    );
    begun?;
    Ok(xid?.get(0))
}

/// One writer batch as one transaction in two round trips on its connection, and
/// one on a side connection beside the first:
///
/// 1. `BEGIN` and the transaction id (with its lock, see [`CURRENT_XID`]), sent
///    with the previous batch's commit when this batch was already queued then,
///    else a round trip of its own;
/// 2. the reservation on a side connection and, at the same time, the start of
///    the `COPY`;
/// 3. the rows, the leaves, `COMMIT`, the horizon after it with the append
///    holding it back, if any (returned, if read: with one node it is past the
///    batch, and publishing needs no further read; with several, the publisher
///    waits for that append at once instead of reading the horizon again first),
///    and, if `more_queued`, step 1 of the next batch (its outcome returned).
///
/// A `COPY` routes rows only to partitions attached when it started. It starts
/// beside the reservation only if this node's last reservation leaves room for
/// the batch in the partitions attached (a partition's worth is kept attached
/// ahead, see [`commit`]), and the rows go ahead only if those partitions cover
/// the ids reserved; otherwise (other nodes reserved up to the end meanwhile)
/// this transaction is rolled back and the batch redone with the partition
/// attached between the reservation and the `COPY`, as a batch too large for the
/// room left is done at once. Nothing is
/// attached while this transaction has started its `COPY`: it then holds
/// `records` ROW EXCLUSIVE, which a sealer's `DETACH PARTITION ... CONCURRENTLY`
/// waits for while it holds the lock an `ATTACH` needs, a deadlock through this
/// task that PostgreSQL cannot see (appends hung in the SIGKILL-during-sealing
/// test when the two overlapped).
///
/// A statement that fails aborts the transaction, so the `COMMIT` after it
/// rolls back; the batch has committed only if every step succeeded. A single
/// POST's append was thirteen round trips; PostgreSQL's work per statement and
/// round trip, not per row, was most of its cost.
async fn append_committed(
    client: &deadpool_postgres::Client,
    target: &Target,
    records: Vec<NewRecord>,
    begun: Option<String>,
    more_queued: impl Fn() -> bool,
) -> Result<(Vec<Record>, Option<Horizon>, Option<Result<String>>)> {
    let horizon = client.prepare_cached(HORIZON_AND_BLOCKER).await?;
    let copy = client.prepare_cached(&copy_statement("records")).await?;
    let leaves = client
        .prepare_cached(super::integrity::INSERT_LEAVES)
        .await?;
    let count = records.len() as i64;
    let mut xid = begun;
    let mut covered_first = false;
    let (before, sink) = loop {
        let current = match xid.take() {
            Some(xid) => xid,
            None => begin(client).await?,
        };
        if covered_first {
            let before = reserve(target, &current, records.len()).await?;
            ensure_covered(target, before + count).await?;
            break (before, client.copy_in(&copy).await?);
        }
        let covered = target.covered.load(Ordering::Acquire);
        if target.reserved.load(Ordering::Acquire) + count >= covered {
            // Not even this node's own last reservation leaves room for the batch.
            covered_first = true;
            xid = Some(current);
            continue;
        }
        let (reserved, sink) = futures_util::join!(
            reserve(target, &current, records.len()),
            client.copy_in(&copy)
        );
        // On an error the sink, if any, is dropped, which aborts the `COPY`.
        let before = reserved?;
        let sink = sink?;
        if before + count < covered {
            break (before, sink);
        }
        // Other nodes reserved the ids up to the end meanwhile.
        drop(sink);
        client.batch_execute("ROLLBACK").await?;
        covered_first = true;
    };
    let stored = number(records, before);
    let runs = crate::integrity::runs(&stored);
    let runs: Vec<[&(dyn ToSql + Sync); 2]> = runs
        .iter()
        .map(|(first_id, hashes)| [first_id as &(dyn ToSql + Sync), hashes])
        .collect();
    let next = async {
        if more_queued() {
            Some(begin(client).await)
        } else {
            None
        }
    };
    let (copied, placed, committed, after, next) = futures_util::join!(
        write_rows(sink, &stored),
        futures_util::future::try_join_all(runs.iter().map(|run| client.execute(&leaves, run))),
        client.batch_execute("COMMIT"),
        client.query_one(&horizon, &[]),
        next
    );
    copied?;
    placed?;
    committed?;
    Ok((stored, after.ok().map(|row| Horizon::of(&row)), next))
}

/// Numbers `records` and inserts them in `tx`, which the caller commits; every
/// append, batched or riding along with another change, goes here. The ids are
/// reserved before this returns, so call it after taking the row locks that order
/// the change (objects, actions): conflicting changes then get ids in the order
/// they commit.
pub(super) async fn append_in(
    tx: &Transaction<'_>,
    target: &Target,
    records: Vec<NewRecord>,
) -> Result<Vec<Record>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    // Every statement of an append is prepared once per connection: parsing and
    // planning them again for each batch of single-record POSTs was a good part
    // of PostgreSQL's work.
    let statement = tx.prepare_cached(CURRENT_XID).await?;
    let xid: String = tx
        .query_one(&statement, &[&APPEND_LOCK_CLASS])
        .await?
        .get(0);
    let before = reserve(target, &xid, records.len()).await?;
    ensure_covered(target, before + records.len() as i64).await?;
    let stored = number(records, before);
    insert(tx, &stored).await?;
    super::integrity::insert_leaves(tx, &stored).await?;
    Ok(stored)
}

/// The transaction's id, assigned now if it has none yet, and a lock on it held
/// until the transaction ends (class `$1`, the id's low 31 bits), taken before its
/// ids are reserved: a node whose horizon this append holds back waits on the lock
/// ([`WAIT_FOR_APPEND`]) and learns of the end at once, instead of from a hint
/// and a read after it.
const CURRENT_XID: &str = "SELECT pg_current_xact_id()::text, \
     pg_advisory_xact_lock($1, (pg_current_xact_id()::text::bigint & 2147483647)::int)::text";

/// `records` as stored, numbered from `before + 1` on.
fn number(records: Vec<NewRecord>, before: i64) -> Vec<Record> {
    let now = Timestamp::now();
    records
        .into_iter()
        .enumerate()
        .map(|(i, new)| new.into_record(before + 1 + i as i64, now))
        .collect()
}

/// Tells the other nodes that ids up to the last of `stored` are committed (see
/// [`Target::hint`]).
pub(super) fn hint_committed(target: &Target, stored: &[Record]) {
    if let Some(last) = stored.last().map(|r| r.id) {
        target.hint(last);
    }
}

/// Sends the hints [`Target::hint`] asks for, one at a time, each for the highest
/// id committed so far, until every [`Target`] is dropped. Under load this folds
/// the hints of many batches into one: each hint is a `NOTIFY` transaction here,
/// a wake-up of every node's listening backend and listener, and a horizon read
/// on a node that is not appending. A hint after a quiet spell goes at once;
/// while this node keeps committing, at most one goes per [`HINT_INTERVAL`], so
/// another node's stream or long poll learns of these ids up to that much later
/// (nothing waits for hints to be correct: acknowledgements wait on the append
/// locks). With three nodes under single POSTs each node sent a hint for almost
/// every batch of a few milliseconds.
pub async fn send_hints(
    side: Pool,
    channel: String,
    node: String,
    mut committed: watch::Receiver<i64>,
) {
    while committed.changed().await.is_ok() {
        let last = *committed.borrow_and_update();
        let hint = serde_json::json!({"k": "r", "hw": last, "n": node}).to_string();
        let sent = async {
            let client = side.get().await?;
            let statement = client.prepare_cached("SELECT pg_notify($1, $2)").await?;
            client.execute(&statement, &[&channel, &hint]).await?;
            Result::<()>::Ok(())
        };
        if let Err(e) = sent.await {
            tracing::warn!(error = %e, "cannot tell the other nodes about an append");
        }
        tokio::time::sleep(HINT_INTERVAL).await;
    }
}

/// Reserves `n` ids for the transaction `xid` and returns the last id before them.
/// One statement, committed at once on a side connection: the counter row is
/// locked only for it, and the reservation is visible to every reader before the
/// transaction can insert a row with these ids.
///
/// The side connections commit asynchronously. That is safe: the reservation only
/// has to be *visible* before the ids are used (visibility does not wait for the
/// WAL flush), and the append's own commit is synchronous and flushes the WAL up to
/// itself, this reservation included. If the append fails, [`sweep`] commits
/// synchronously, so a crash cannot lose a counter that a reader's horizon has
/// already passed.
async fn reserve(target: &Target, xid: &str, n: usize) -> Result<i64> {
    let n = i64::try_from(n).map_err(|_| StoreError::Internal("batch too large".into()))?;
    let client = target.side.get().await?;
    let statement = client
        .prepare_cached(
            "WITH counter AS (UPDATE id_counter SET last = last + $2 RETURNING last - $2 AS before) \
             INSERT INTO appending (xid, floor) SELECT $1::text::xid8, before FROM counter \
             RETURNING floor",
        )
        .await?;
    let before: i64 = client.query_one(&statement, &[&xid, &n]).await?.get(0);
    target.reserved.fetch_max(before + n, Ordering::AcqRel);
    Ok(before)
}

/// Deletes the reservations of transactions that ended without deleting theirs
/// (rolled back, or their node died). It always writes a commit record (it takes
/// a transaction id) and commits synchronously, so the WAL is flushed past every
/// reservation made before it, those of failed appends included.
pub(super) async fn sweep(side: &Pool) -> Result<()> {
    let mut client = side.get().await?;
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SET LOCAL synchronous_commit TO on; \
         SELECT pg_current_xact_id(); \
         DELETE FROM appending WHERE pg_visible_in_snapshot(xid, pg_current_snapshot())",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ids per partition for a node with these tiers: a hot tier's worth, so that the
/// partitions behind the hot rows are wholly sealed soon and dropped
/// (`PgTiers::drop_emptied_partitions`) instead of lingering as dead rows. Nodes
/// may differ: each partition's range is in `record_partitions`, and a new one
/// starts where the last ends.
pub fn partition_ids(options: &crate::blocks::tiers::TierOptions) -> i64 {
    let hot = options.hot_records.max(options.block_rows);
    i64::try_from(hot)
        .unwrap_or(i64::MAX)
        .clamp(*PARTITION_IDS.start(), *PARTITION_IDS.end())
}

/// Makes sure a whole partition of ids beyond `last` is attached, committed before
/// the append inserts anything: rows never land in a partition attached by their
/// own transaction (a reader whose snapshot includes an append but whose plan
/// predates the partition it created would miss those rows while seeing the
/// raised horizon; seen once in CI).
pub(super) async fn ensure_covered(target: &Target, last: i64) -> Result<()> {
    let needed = last.saturating_add(target.partition_ids);
    if needed < target.covered.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut client = target.side.get().await?;
    let tx = client.transaction().await?;
    // One creator at a time across nodes; the others then find the work done.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&PARTITION_LOCK_CLASS, &target.lock_key],
    )
    .await?;
    let covered = ensure_partitions(&tx, needed, target.partition_ids).await?;
    tx.commit().await?;
    target.covered.fetch_max(covered, Ordering::AcqRel);
    Ok(())
}

/// Creates the partitions (of `size` ids) that ids up to `last` need and returns
/// the first id they do not cover. Callers serialise it (the partition lock). `ATTACH PARTITION` takes only a SHARE UPDATE EXCLUSIVE lock on
/// `records`, so readers (even a long export) and appends neither block it nor are
/// blocked by it, as `CREATE TABLE ... PARTITION OF` would.
pub(super) async fn ensure_partitions(tx: &Transaction<'_>, last: i64, size: i64) -> Result<i64> {
    let covered: i64 = tx
        .query_one("SELECT coalesce(max(hi), 1) FROM record_partitions", &[])
        .await?
        .get(0);
    let mut lo = covered;
    while lo <= last {
        let hi = lo + size;
        // Named by where they start: sizes may differ between nodes and versions
        // (version 5 and before: `records_p{n}`, 1M ids each).
        let name = format!("records_from_{lo}");
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
    Ok(lo)
}

/// The column types of [`super::records::RECORD_COLUMNS_PLAIN`], in order.
const COPY_TYPES: [Type; 21] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSON,
];

/// Inserts `records` with one binary `COPY`: no statement to parse or plan, no
/// arrays to build and unpack, each value sent once in its binary form.
pub(super) async fn insert(tx: &Transaction<'_>, records: &[Record]) -> Result<()> {
    copy_into(tx, "records", records).await
}

/// Copies `records` into `table`, which has the columns of `records`.
pub(super) async fn copy_into(tx: &Transaction<'_>, table: &str, records: &[Record]) -> Result<()> {
    let statement = tx.prepare_cached(&copy_statement(table)).await?;
    let sink = tx.copy_in(&statement).await?;
    write_rows(sink, records).await
}

/// The binary `COPY` into `table`, which has the columns of `records`.
fn copy_statement(table: &str) -> String {
    format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        super::records::RECORD_COLUMNS_PLAIN
    )
}

/// Writes `records` into a started `COPY` and ends it.
async fn write_rows(sink: CopyInSink<bytes::Bytes>, records: &[Record]) -> Result<()> {
    let writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
    let mut writer = std::pin::pin!(writer);
    for r in records {
        let ts = r.ts.micros();
        let kind = r.kind.code();
        let level = r.level.map(Level::number);
        // Serialised from the map itself: a `Value` made of it to print was a
        // copy of every record's data.
        let data = r
            .data
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Internal(format!("cannot serialise data: {e}")))?;
        let json = data.as_deref().map(JsonText);
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
        ]
        .map(Option::as_deref);
        let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(COPY_TYPES.len());
        row.extend([&r.id as &(dyn ToSql + Sync), &ts, &kind, &level]);
        for field in &fields {
            row.push(field);
        }
        row.push(&json);
        writer.as_mut().write(&row).await?;
    }
    writer.as_mut().finish().await?;
    Ok(())
}

/// A JSON document already serialised, sent as it is (the binary form of `json` is
/// its text), so keys keep the client's order.
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}
