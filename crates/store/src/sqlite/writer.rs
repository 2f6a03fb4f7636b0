//! The single writer. SQLite allows one writer at a time, so one thread owns the
//! write connection and turns whatever is queued into one transaction: it drains
//! the queue, runs every job in one transaction (a failing job rolls back alone),
//! commits once, announces the changes, then answers every job. One fsync serves
//! every request in the batch; that is what keeps single-record writes fast while
//! each acknowledgement stays durable. The bounded queue is the back-pressure.
//!
//! Faults: a batch that fails for lack of space turns the store's [`WriteState`]
//! to `DiskFull` (the first batch that commits again turns it back); a batch that
//! fails with an I/O error (a failed fsync among them) fails, and the write
//! connection is closed and opened again, so nothing is retried on a connection
//! whose idea of the file may be wrong (PostgreSQL's lesson of 2018: after a failed
//! fsync the kernel may have dropped the dirty pages, and a retried fsync succeeds).

use super::tiered::{AnnouncedRecords, PendingHot, Tiered};
use crate::blocks::tiers::Catalog;
use crate::notifier::{ActionLogAppended, ObjectChange};
use crate::write_state::WriteStateTracker;
use crate::{Notifier, Result, StoreError, WriteState};
use logbook_core::Action;
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Most jobs folded into one transaction; bounds the latency of the first in line.
const MAX_JOBS_PER_BATCH: usize = 1024;
/// Queued jobs before writers wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 4096;
/// How long the write connection waits for a lock another process holds.
pub const WRITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A change to announce once the transaction that made it has committed.
pub enum Announcement {
    Records(AnnouncedRecords),
    Object(ObjectChange),
    Action(Box<Action>),
    ActionLogs(ActionLogAppended),
}

/// Counters the writer hands out, and what the current transaction will announce.
pub struct Batch {
    pub next_record_id: i64,
    pub next_action_seq: i64,
    pub announcements: Vec<Announcement>,
    /// With the tiered layout: the catalog as this transaction changes it, made
    /// current once it commits. Read through [`Batch::catalog`], which stores the
    /// pending appends first.
    catalog: Option<Catalog>,
    /// The transaction's small appends, numbered but not yet stored: they go in
    /// as one hot segment (one row, one leaf run, one catalog entry) before the
    /// commit, or before anything reads the catalog.
    hot: PendingHot,
    /// Whether to empty the write-ahead log once this transaction has committed
    /// (after a seal: see [`truncate_wal`]).
    pub truncate_wal: bool,
}

trait PendingJob: Send {
    /// Runs the job inside the open transaction; false if it failed. A job may run
    /// twice: once optimistically, once more isolated if another job of its batch
    /// failed (see [`run_batch`]).
    fn run(&mut self, conn: &Connection, batch: &mut Batch) -> bool;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<()>);
    /// The job's own error, if it failed (before the commit).
    fn error(&self) -> Option<&StoreError>;
}

struct Job<T, F> {
    work: F,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> PendingJob for Job<T, F>
where
    T: Send,
    F: Fn(&Connection, &mut Batch) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection, batch: &mut Batch) -> bool {
        let result = (self.work)(conn, batch);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let outcome = match (commit, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Internal("write job never ran".into())),
        };
        let _ = self.reply.send(outcome);
    }

    fn error(&self) -> Option<&StoreError> {
        match &self.result {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }
}

pub struct Writer {
    queue: Option<mpsc::Sender<Box<dyn PendingJob>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: watch::Receiver<WriteState>,
    counts: Arc<Counts>,
}

/// Group commits and the jobs they carried.
#[derive(Debug, Default)]
struct Counts {
    commits: std::sync::atomic::AtomicU64,
    jobs: std::sync::atomic::AtomicU64,
}

/// How the writer opens its connection again after an I/O failure.
pub type Reopen = Box<dyn Fn() -> Result<Connection> + Send>;

impl Writer {
    #[cfg(test)]
    pub fn start(
        conn: Connection,
        counters: (i64, i64),
        notifier: Arc<Notifier>,
        tiered: Option<Arc<Tiered>>,
    ) -> Writer {
        Writer::start_reopening(conn, counters, notifier, tiered, None)
    }

    /// As [`Writer::start`]; with `reopen`, the connection is replaced after a
    /// batch fails with an I/O error.
    pub fn start_reopening(
        conn: Connection,
        counters: (i64, i64),
        notifier: Arc<Notifier>,
        tiered: Option<Arc<Tiered>>,
        reopen: Option<Reopen>,
    ) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let tracker = WriteStateTracker::new();
        let state = tracker.subscribe();
        let counts = Arc::new(Counts::default());
        let faults = Faults {
            state: tracker,
            reopen,
            counts: Arc::clone(&counts),
        };
        let thread = std::thread::Builder::new()
            .name("logbook-sqlite-writer".into())
            .spawn(move || write_loop(conn, jobs, counters, &notifier, tiered.as_ref(), faults))
            .ok();
        Writer {
            queue: thread.is_some().then_some(queue),
            thread,
            state,
            counts,
        }
    }

    /// The queue's depth and the group commits so far.
    pub fn stats(&self) -> crate::WriterStats {
        use std::sync::atomic::Ordering::Relaxed;
        crate::WriterStats {
            queue_depth: self
                .queue
                .as_ref()
                .map_or(0, |q| (q.max_capacity() - q.capacity()) as u64),
            commits: self.counts.commits.load(Relaxed),
            jobs: self.counts.jobs.load(Relaxed),
        }
    }

    /// Whether writes go through (see [`WriteState`]).
    pub fn state(&self) -> watch::Receiver<WriteState> {
        self.state.clone()
    }

    /// Runs `work` in the next transaction and returns its result once committed.
    /// `work` may be run twice (its first run rolled back), so it must change
    /// nothing but the database and `batch`.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection, &mut Batch) -> Result<T> + Send + 'static,
    {
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn PendingJob> = Box::new(Job {
            work,
            result: None,
            reply,
        });
        queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A handle that queues jobs from a plain thread (the sealer).
    pub fn handle(&self) -> Option<WriterHandle> {
        self.queue.clone().map(|queue| WriterHandle { queue })
    }
}

/// Queues jobs from outside the async runtime. The writer thread runs until every
/// handle is gone, so whoever holds one must drop it before the store is dropped.
pub struct WriterHandle {
    queue: mpsc::Sender<Box<dyn PendingJob>>,
}

impl WriterHandle {
    /// As [`Writer::write`], blocking the calling thread.
    pub fn write_blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection, &mut Batch) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn PendingJob> = Box::new(Job {
            work,
            result: None,
            reply,
        });
        self.queue
            .blocking_send(job)
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Writer {
    /// Lets the writer finish every queued job, then waits for it: nothing that was
    /// queued is lost on shutdown.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the writer does about failed batches.
struct Faults {
    state: WriteStateTracker,
    reopen: Option<Reopen>,
    counts: Arc<Counts>,
}

impl Faults {
    /// Follows the write state from a batch's outcome: out of space if the
    /// commit or any job failed for lack of it, accepting again once a batch
    /// committed a job.
    fn observe(&self, commit: &Result<()>, pending: &[Box<dyn PendingJob>]) {
        let full = match commit {
            Err(StoreError::DiskFull(detail)) => Some(detail.clone()),
            Err(_) => None,
            Ok(()) => pending.iter().find_map(|job| match job.error() {
                Some(StoreError::DiskFull(detail)) => Some(detail.clone()),
                _ => None,
            }),
        };
        let committed = commit.is_ok() && pending.iter().any(|job| job.error().is_none());
        self.state.observe(full, committed);
    }
}

fn write_loop(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Box<dyn PendingJob>>,
    (mut next_record_id, mut next_action_seq): (i64, i64),
    notifier: &Notifier,
    tiered: Option<&Arc<Tiered>>,
    faults: Faults,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut pending = vec![first];
        while pending.len() < MAX_JOBS_PER_BATCH {
            match jobs.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => break,
            }
        }
        let mut truncate = false;
        let commit = match run_batch(&conn, &mut pending, next_record_id, next_action_seq, tiered) {
            Ok(batch) => {
                next_record_id = batch.next_record_id;
                next_action_seq = batch.next_action_seq;
                truncate = batch.truncate_wal;
                // Readers see the new catalog before anyone is told of the change.
                if let (Some(tiered), Some(catalog)) = (tiered, batch.catalog) {
                    tiered.tiers.publish(catalog);
                }
                announce(notifier, batch.announcements);
                Ok(())
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        };
        faults.observe(&commit, &pending);
        faults
            .counts
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        faults
            .counts
            .jobs
            .fetch_add(pending.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if let (Err(e), Some(reopen)) = (&commit, &faults.reopen) {
            if e.is_io_failure() {
                // Never retry on this connection: open the file afresh, and let
                // the next transaction read the counters and catalog from it.
                match reopen() {
                    Ok(fresh) => {
                        tracing::warn!(error = %e, "write failed with an I/O error; the store's write connection was reopened");
                        conn = fresh;
                    }
                    Err(again) => {
                        tracing::error!(error = %e, reopen = %again, "write failed with an I/O error, and reopening failed; retrying at the next batch");
                    }
                }
            }
        }
        for job in pending {
            job.finish(commit.clone());
        }
        if truncate {
            truncate_wal(&conn);
        }
    }
}

/// Copies the write-ahead log into the database and empties it, if no reader
/// needs it: a seal has just replaced a block's worth of hot rows, and what they
/// left in the log (several megabytes, kept at that size once written) was a
/// tenth of the store's disk. Best effort, and it never waits for a reader
/// (it would hold up every write behind it): a reader in the way means the log
/// is emptied after a later seal, or reused as it is.
fn truncate_wal(conn: &Connection) {
    let _ = conn.busy_timeout(std::time::Duration::ZERO);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "the write-ahead log was not emptied");
    }
    let _ = conn.busy_timeout(WRITE_BUSY_TIMEOUT);
}

impl Batch {
    fn starting_at(
        next_record_id: i64,
        next_action_seq: i64,
        tiered: Option<&Arc<Tiered>>,
    ) -> Batch {
        Batch::new(
            next_record_id,
            next_action_seq,
            tiered.map(|t| (*t.tiers.snapshot()).clone()),
        )
    }

    pub fn new(next_record_id: i64, next_action_seq: i64, catalog: Option<Catalog>) -> Batch {
        Batch {
            next_record_id,
            next_action_seq,
            announcements: Vec::new(),
            catalog,
            hot: PendingHot::default(),
            truncate_wal: false,
        }
    }

    /// The draft catalog, with every append of the transaction so far in it.
    pub fn catalog(&mut self, conn: &Connection) -> Result<Option<&mut Catalog>> {
        self.store_pending(conn)?;
        Ok(self.catalog.as_mut())
    }

    /// Stores the pending appends (see [`PendingHot`]).
    pub fn store_pending(&mut self, conn: &Connection) -> Result<()> {
        self.hot.store(conn, self.catalog.as_mut())
    }

    /// Where the transaction's small appends wait to be stored together.
    pub fn pending_hot(&mut self) -> &mut PendingHot {
        &mut self.hot
    }
}

/// Runs every job in one transaction. Optimistically first, with no savepoints: FTS5
/// writes its pending index data out as a new segment at every savepoint, which made
/// a batch of 64 single-record jobs cost 64 segments and their merges instead of one.
/// Jobs rarely fail (a name taken, a transition not allowed); when one does, the
/// transaction is rolled back and run again with each remaining job under its own
/// savepoint, so a failing job fails alone and never half-applied.
fn run_batch(
    conn: &Connection,
    pending: &mut [Box<dyn PendingJob>],
    next_record_id: i64,
    next_action_seq: i64,
    tiered: Option<&Arc<Tiered>>,
) -> Result<Batch> {
    let mut batch = Batch::starting_at(next_record_id, next_action_seq, tiered);
    let Some(failed) = run_transaction(conn, pending, &mut batch, None, tiered)? else {
        return Ok(batch);
    };
    conn.prepare_cached("ROLLBACK")?.execute([])?;
    let mut batch = Batch::starting_at(next_record_id, next_action_seq, tiered);
    run_transaction(conn, pending, &mut batch, Some(failed), tiered)?;
    Ok(batch)
}

/// Opens a transaction, runs the jobs and commits, answering `Ok(None)`; or, when
/// run optimistically (`isolated_after_failure` is `None`) and a job fails, stops at
/// once with the transaction still open and answers the failed job's position. When
/// isolating, the job that failed before is not run again: its error is its answer.
fn run_transaction(
    conn: &Connection,
    pending: &mut [Box<dyn PendingJob>],
    batch: &mut Batch,
    isolated_after_failure: Option<usize>,
    tiered: Option<&Arc<Tiered>>,
) -> Result<Option<usize>> {
    // Every statement here runs once per job or batch: cached, they are parsed once
    // per connection instead of once per request (parsing showed up in profiles).
    let run = |sql: &str| -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    run("BEGIN IMMEDIATE")?;
    // Another process (the CLI beside a running server) may have written since our
    // last batch; under the write lock the file's counters are the truth.
    let (records, actions): (i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE key = 'last_record_id'), \
                    (SELECT value FROM meta WHERE key = 'last_action_seq')",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if let (Some(tiered), Some(draft)) = (tiered, batch.catalog.as_ref()) {
        let version: i64 = conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'catalog_version'")?
            .query_row([], |r| r.get(0))?;
        if records + 1 > batch.next_record_id || version != draft.version {
            // Another process changed the records: its segments are in the file.
            batch.catalog = Some(tiered.load(conn)?);
        }
    }
    batch.next_record_id = batch.next_record_id.max(records + 1);
    batch.next_action_seq = batch.next_action_seq.max(actions + 1);
    for (position, job) in pending.iter_mut().enumerate() {
        match isolated_after_failure {
            None => {
                if !job.run(conn, batch) {
                    return Ok(Some(position));
                }
            }
            Some(failed) if failed == position => {}
            Some(_) => {
                let (record_id, action_seq, announced, catalog, hot) = (
                    batch.next_record_id,
                    batch.next_action_seq,
                    batch.announcements.len(),
                    batch.catalog.clone(),
                    batch.hot.clone(),
                );
                run("SAVEPOINT job")?;
                if job.run(conn, batch) {
                    run("RELEASE job")?;
                } else {
                    run("ROLLBACK TO job")?;
                    run("RELEASE job")?;
                    batch.next_record_id = record_id;
                    batch.next_action_seq = action_seq;
                    batch.announcements.truncate(announced);
                    batch.catalog = catalog;
                    batch.hot = hot;
                }
            }
        }
    }
    batch.store_pending(conn)?;
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_record_id' AND value < ?1")?
        .execute([batch.next_record_id - 1])?;
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_action_seq' AND value < ?1")?
        .execute([batch.next_action_seq - 1])?;
    run("COMMIT")?;
    Ok(None)
}

/// Publishes what a committed transaction changed. Appended records are read
/// back from their row form only if someone subscribes to records (a later
/// subscriber reads the store after subscribing, as with any missed batch);
/// otherwise only the high-water mark is raised.
fn announce(notifier: &Notifier, announcements: Vec<Announcement>) {
    let mut records = Vec::new();
    let mut high_water = None;
    let subscribed = notifier.has_record_subscribers();
    for announcement in announcements {
        match announcement {
            Announcement::Records(batch) if !subscribed => {
                high_water = high_water.max(Some(batch.last_id()));
            }
            Announcement::Records(batch) => match batch.into_records() {
                Ok(mut batch) => records.append(&mut batch),
                // Its row form was made here and stored with it, so this is a broken
                // invariant, not bad input: the commit stands, readers see the
                // records, live subscribers catch up from the store.
                Err(e) => {
                    tracing::error!("committed records could not be announced: {e}");
                }
            },
            Announcement::Object(change) => notifier.publish_object(change),
            Announcement::Action(action) => notifier.publish_action(Arc::new(*action)),
            Announcement::ActionLogs(appended) => notifier.publish_action_logs(appended),
        }
    }
    if !records.is_empty() {
        notifier.publish_records(Arc::new(records));
    }
    if let Some(id) = high_water {
        notifier.raise_high_water(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tiered::PreparedAppend;
    use std::time::Duration;

    /// A writer on an in-memory database with Logbook's schema and a table `t` whose
    /// values are unique, so that a job can be made to fail after it wrote.
    fn writer() -> Arc<Writer> {
        let mut conn = Connection::open_in_memory().expect("open");
        super::super::schema::migrate(&mut conn).expect("migrate");
        conn.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")
            .expect("table");
        Arc::new(Writer::start(
            conn,
            (1, 1),
            Arc::new(Notifier::new(0)),
            None,
        ))
    }

    /// Inserts `x` and takes the next record id, as a record append would.
    async fn insert(writer: &Writer, x: i64) -> Result<i64> {
        writer
            .write(move |conn, batch| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                batch.next_record_id += 1;
                Ok(batch.next_record_id - 1)
            })
            .await
    }

    #[tokio::test]
    async fn a_job_failing_after_it_wrote_fails_alone_and_leaves_nothing() {
        let writer = writer();
        // Keeps the writer busy while every job below queues into one batch.
        let busy = tokio::spawn({
            let writer = Arc::clone(&writer);
            async move {
                writer
                    .write(|conn, _| {
                        std::thread::sleep(Duration::from_millis(300));
                        conn.execute("INSERT INTO t (x) VALUES (1)", [])?;
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut jobs = Vec::new();
        for x in 100..110 {
            let inserter = Arc::clone(&writer);
            jobs.push(tokio::spawn(async move { insert(&inserter, x).await }));
            if x == 104 {
                // Writes 3, then collides with the 1 committed before.
                let writer = Arc::clone(&writer);
                jobs.push(tokio::spawn(async move {
                    writer
                        .write(|conn, batch| {
                            batch.next_record_id += 1;
                            conn.execute("INSERT INTO t (x) VALUES (3)", [])?;
                            conn.execute("INSERT INTO t (x) VALUES (1)", [])?;
                            Ok(batch.next_record_id - 1)
                        })
                        .await
                }));
            }
            tokio::task::yield_now().await;
        }
        busy.await.expect("join").expect("busy job");
        let mut ids = Vec::new();
        let mut failures = 0;
        for job in jobs {
            match job.await.expect("join") {
                Ok(id) => ids.push(id),
                Err(_) => failures += 1,
            }
        }
        assert_eq!(failures, 1, "only the colliding job fails");
        // The ids the failed job took were given back: the others' are contiguous.
        ids.sort_unstable();
        assert_eq!(ids, (1..=10).collect::<Vec<_>>());
        let stored: Vec<i64> = writer
            .write(|conn, _| {
                let mut statement = conn.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = statement.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
            })
            .await
            .expect("read back");
        let mut expected = vec![1];
        expected.extend(100..110);
        assert_eq!(stored, expected, "nothing of the failed job remains");
    }

    /// Runs these jobs as the writer runs one group commit, on a tiered store in
    /// memory, and answers each job and the batch.
    fn group_commit(
        conn: &Connection,
        tiered: &Arc<Tiered>,
        works: Vec<AppendWork>,
    ) -> (Batch, Vec<Result<crate::Appended>>) {
        let mut answers = Vec::new();
        let mut pending: Vec<Box<dyn PendingJob>> = Vec::new();
        for work in works {
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            pending.push(Box::new(Job {
                work,
                result: None,
                reply,
            }));
        }
        let batch = run_batch(conn, &mut pending, 1, 1, Some(tiered)).expect("batch commits");
        for job in pending {
            job.finish(Ok(()));
        }
        let answers = answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("answered"))
            .collect();
        (batch, answers)
    }

    type AppendWork = Box<dyn Fn(&Connection, &mut Batch) -> Result<crate::Appended> + Send>;

    fn tiered_store() -> (Connection, Arc<Tiered>) {
        let mut conn = Connection::open_in_memory().expect("open");
        super::super::schema::migrate(&mut conn).expect("migrate");
        let tiered = Tiered::open(&conn, "unused".into(), Default::default()).expect("tiers");
        (conn, tiered)
    }

    fn records(prefix: &str, n: usize) -> Vec<logbook_core::NewRecord> {
        (0..n)
            .map(|i| logbook_core::NewRecord {
                message: Some(format!("{prefix} {i}")),
                ..logbook_core::NewRecord::new(logbook_core::Kind::Log)
            })
            .collect()
    }

    fn append(prefix: &str, n: usize) -> AppendWork {
        let append = PreparedAppend::new(records(prefix, n), logbook_core::Timestamp(7));
        Box::new(move |conn, batch| append.insert(conn, batch))
    }

    /// What a transaction stored, as the tests read it back.
    struct Stored {
        /// The hot rows' id ranges.
        rows: Vec<(i64, i64)>,
        /// Each leaf run's first id and hashes.
        leaves: Vec<(i64, Vec<u8>)>,
        /// The records the draft catalog gives, in id order.
        records: Vec<logbook_core::Record>,
    }

    fn stored(conn: &Connection, batch: &mut Batch) -> Stored {
        let mut rows = conn
            .prepare("SELECT first_id, last_id FROM hot_segments ORDER BY first_id")
            .expect("rows");
        let rows = rows
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        let mut leaves = conn
            .prepare("SELECT first_id, hashes FROM record_leaves ORDER BY first_index")
            .expect("leaves");
        let leaves = leaves
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("leaves")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("leaves");
        let segments = batch
            .catalog(conn)
            .expect("catalog")
            .expect("tiered")
            .segments();
        let records = crate::blocks::engine::export_batch(
            &segments,
            &logbook_core::Query::oldest_first(),
            i64::MAX,
            None,
            usize::MAX,
        )
        .expect("read");
        Stored {
            rows,
            leaves,
            records,
        }
    }

    fn messages(records: &[logbook_core::Record]) -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| (r.id, r.message.clone().unwrap_or_default()))
            .collect()
    }

    fn ids(answer: &Result<crate::Appended>) -> (Option<i64>, Option<i64>) {
        match answer {
            Ok(a) => (a.first_id, a.last_id),
            Err(e) => panic!("append failed: {e}"),
        }
    }

    #[test]
    fn the_small_appends_of_one_group_commit_are_one_hot_segment() {
        let (conn, tiered) = tiered_store();
        let (mut batch, answers) = group_commit(
            &conn,
            &tiered,
            vec![
                append("a", 1),
                append("b", 2),
                append("c", 1),
                // Large: a segment of its own, between the merged ones.
                append("big", 300),
                append("d", 1),
                append("e", 1),
            ],
        );
        let answered: Vec<_> = answers.iter().map(ids).collect();
        assert_eq!(
            answered,
            [
                (Some(1), Some(1)),
                (Some(2), Some(3)),
                (Some(4), Some(4)),
                (Some(5), Some(304)),
                (Some(305), Some(305)),
                (Some(306), Some(306)),
            ]
        );
        let Stored {
            rows,
            leaves,
            records,
        } = stored(&conn, &mut batch);
        assert_eq!(rows, [(1, 4), (5, 304), (305, 306)]);
        let catalog = batch.catalog(&conn).expect("catalog").expect("tiered");
        let ranges: Vec<_> = catalog
            .entries
            .iter()
            .map(|e| (e.hot, e.segment.first_id(), e.segment.last_id()))
            .collect();
        assert_eq!(ranges, [(true, 1, 4), (true, 5, 304), (true, 305, 306)]);
        assert_eq!(catalog.high_water, 306);
        let expected: Vec<(i64, String)> = [
            ("a", 1),
            ("b", 2),
            ("c", 1),
            ("big", 300),
            ("d", 1),
            ("e", 1),
        ]
        .iter()
        .flat_map(|(prefix, n)| (0..*n).map(move |i| format!("{prefix} {i}")))
        .enumerate()
        .map(|(i, m)| (i as i64 + 1, m))
        .collect();
        assert_eq!(messages(&records), expected);
        // One leaf run per segment, each leaf the hash of its record with its id.
        assert_eq!(
            leaves.iter().map(|(first, _)| *first).collect::<Vec<_>>(),
            [1, 5, 305]
        );
        let hashes: Vec<u8> = leaves.into_iter().flat_map(|(_, h)| h).collect();
        let expected: Vec<u8> = records
            .iter()
            .flat_map(logbook_core::integrity::leaf_hash)
            .collect();
        assert_eq!(hashes, expected);
        // The row read back at start gives the same records.
        let reloaded = tiered.load(&conn).expect("reload");
        let again = crate::blocks::engine::export_batch(
            &reloaded.segments(),
            &logbook_core::Query::oldest_first(),
            i64::MAX,
            None,
            usize::MAX,
        )
        .expect("read");
        assert_eq!(again, records);
    }

    #[test]
    fn a_failing_job_among_merged_appends_fails_alone() {
        let (conn, tiered) = tiered_store();
        let failing = |reads_catalog: bool| -> AppendWork {
            let append = PreparedAppend::new(records("failed", 1), logbook_core::Timestamp(7));
            Box::new(move |conn, batch| {
                append.insert(conn, batch)?;
                if reads_catalog {
                    // Stores what is pending so far, inside this job's savepoint.
                    batch.catalog(conn)?;
                }
                Err(StoreError::Exists {
                    what: "refused".into(),
                })
            })
        };
        let (mut batch, answers) = group_commit(
            &conn,
            &tiered,
            vec![
                append("a", 1),
                failing(false),
                append("b", 1),
                failing(true),
                append("c", 2),
            ],
        );
        assert!(answers[1].is_err() && answers[3].is_err());
        assert_eq!(ids(&answers[0]), (Some(1), Some(1)));
        assert_eq!(ids(&answers[2]), (Some(2), Some(2)));
        assert_eq!(ids(&answers[4]), (Some(3), Some(4)));
        let Stored {
            rows,
            leaves,
            records,
        } = stored(&conn, &mut batch);
        assert_eq!(rows, [(1, 4)], "one segment, nothing of the failed jobs");
        assert_eq!(
            messages(&records),
            [
                (1, "a 0".to_string()),
                (2, "b 0".to_string()),
                (3, "c 0".to_string()),
                (4, "c 1".to_string())
            ]
        );
        assert_eq!(leaves.len(), 1);
        let expected: Vec<u8> = records
            .iter()
            .flat_map(logbook_core::integrity::leaf_hash)
            .collect();
        assert_eq!(leaves[0], (1, expected));
        let announced: Vec<i64> = std::mem::take(&mut batch.announcements)
            .into_iter()
            .flat_map(|a| match a {
                Announcement::Records(r) => r.into_records().expect("announced once"),
                _ => Vec::new(),
            })
            .map(|r| r.id)
            .collect();
        assert_eq!(announced, [1, 2, 3, 4]);
    }

    /// A job that reads the draft catalog (a delete) sees the appends before it in
    /// its transaction, stored by then, and the appends after it are stored apart.
    #[test]
    fn a_delete_in_the_same_transaction_sees_the_pending_appends() {
        let (conn, tiered) = tiered_store();
        let deleting: AppendWork = {
            let tiered = Arc::clone(&tiered);
            Box::new(move |conn, batch| {
                let query = logbook_core::Query::oldest_first()
                    .values(logbook_core::query::Field::Message, &["a 1"])
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                let deleted = crate::sqlite::tiered::delete(&tiered, conn, batch, &query)?;
                assert_eq!(deleted, [2]);
                Ok(crate::Appended {
                    count: 0,
                    first_id: None,
                    last_id: None,
                })
            })
        };
        let (mut batch, answers) = group_commit(
            &conn,
            &tiered,
            vec![append("a", 3), deleting, append("b", 1)],
        );
        assert!(answers.iter().all(Result::is_ok));
        let Stored { rows, records, .. } = stored(&conn, &mut batch);
        // The merged segment of "a" rewritten without its match: its rows on
        // either side of the gap; "b" after it.
        assert_eq!(rows, [(1, 3), (4, 4)]);
        assert_eq!(
            messages(&records),
            [
                (1, "a 0".to_string()),
                (3, "a 2".to_string()),
                (4, "b 0".to_string())
            ]
        );
    }
}
