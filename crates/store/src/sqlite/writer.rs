//! The single writer. SQLite allows one writer at a time, so one thread owns the
//! write connection and turns whatever is queued into one transaction: it drains
//! the queue, runs each job under its own savepoint (a failing job rolls back alone),
//! commits once, announces the changes, then answers every job. One fsync serves
//! every request in the batch; that is what keeps single-record writes fast while
//! each acknowledgement stays durable. The bounded queue is the back-pressure.

use crate::notifier::{ActionLogAppended, ObjectChange};
use crate::{Notifier, Result, StoreError};
use logbook_core::{Action, Record};
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs folded into one transaction; bounds the latency of the first in line.
const MAX_JOBS_PER_BATCH: usize = 1024;
/// Queued jobs before writers wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 4096;

/// A change to announce once the transaction that made it has committed.
pub enum Announcement {
    Records(Vec<Record>),
    Object(ObjectChange),
    Action(Box<Action>),
    ActionLogs(ActionLogAppended),
}

/// Counters the writer hands out, and what the current transaction will announce.
pub struct Batch {
    pub next_record_id: i64,
    pub next_action_seq: i64,
    pub announcements: Vec<Announcement>,
}

trait PendingJob: Send {
    /// Runs the job inside the open transaction; false if it failed.
    fn run(&mut self, conn: &Connection, batch: &mut Batch) -> bool;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<()>);
}

struct Job<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> PendingJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &mut Batch) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection, batch: &mut Batch) -> bool {
        let result = match self.work.take() {
            Some(work) => work(conn, batch),
            None => Err(StoreError::Internal("write job ran twice".into())),
        };
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
}

pub struct Writer {
    queue: Option<mpsc::Sender<Box<dyn PendingJob>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(conn: Connection, counters: (i64, i64), notifier: Arc<Notifier>) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("logbook-sqlite-writer".into())
            .spawn(move || write_loop(conn, jobs, counters, &notifier))
            .ok();
        Writer {
            queue: thread.is_some().then_some(queue),
            thread,
        }
    }

    /// Runs `work` in the next transaction and returns its result once committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Batch) -> Result<T> + Send + 'static,
    {
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn PendingJob> = Box::new(Job {
            work: Some(work),
            result: None,
            reply,
        });
        queue.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
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

fn write_loop(
    conn: Connection,
    mut jobs: mpsc::Receiver<Box<dyn PendingJob>>,
    (mut next_record_id, mut next_action_seq): (i64, i64),
    notifier: &Notifier,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut pending = vec![first];
        while pending.len() < MAX_JOBS_PER_BATCH {
            match jobs.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => break,
            }
        }
        let mut batch = Batch {
            next_record_id,
            next_action_seq,
            announcements: Vec::new(),
        };
        let commit = run_batch(&conn, &mut pending, &mut batch);
        if commit.is_ok() {
            next_record_id = batch.next_record_id;
            next_action_seq = batch.next_action_seq;
            announce(notifier, batch.announcements);
        } else {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in pending {
            job.finish(commit.clone());
        }
    }
}

fn run_batch(
    conn: &Connection,
    pending: &mut [Box<dyn PendingJob>],
    batch: &mut Batch,
) -> Result<()> {
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
    batch.next_record_id = batch.next_record_id.max(records + 1);
    batch.next_action_seq = batch.next_action_seq.max(actions + 1);
    for job in pending.iter_mut() {
        let (record_id, action_seq, announced) = (
            batch.next_record_id,
            batch.next_action_seq,
            batch.announcements.len(),
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
        }
    }
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_record_id' AND value < ?1")?
        .execute([batch.next_record_id - 1])?;
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_action_seq' AND value < ?1")?
        .execute([batch.next_action_seq - 1])?;
    run("COMMIT")?;
    Ok(())
}

fn announce(notifier: &Notifier, announcements: Vec<Announcement>) {
    let mut records = Vec::new();
    for announcement in announcements {
        match announcement {
            Announcement::Records(mut batch) => records.append(&mut batch),
            Announcement::Object(change) => notifier.publish_object(change),
            Announcement::Action(action) => notifier.publish_action(Arc::new(*action)),
            Announcement::ActionLogs(appended) => notifier.publish_action_logs(appended),
        }
    }
    if !records.is_empty() {
        notifier.publish_records(Arc::new(records));
    }
}
