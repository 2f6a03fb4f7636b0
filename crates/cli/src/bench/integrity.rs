//! `logbook bench-integrity`: what tamper evidence costs, printed, never asserted.
//! In one run on a fresh embedded store: the append rate with leaves (they are
//! always written) and the time the leaf hashing alone takes for the same records
//! (the share of ingest it costs); `logbook verify --data` of the whole store; and
//! inclusion proofs against a checkpoint of the whole tree, in process (no HTTP).

use clap::Args;
use logbook_core::integrity::leaf_hash;
use logbook_core::{Kind, Level, NewRecord, Timestamp};
use logbook_server::integrity::checkpoints::checkpoint;
use logbook_server::{AppState, Config};
use logbook_store::sqlite::SqliteStore;
use logbook_store::{IntegrityStore, RecordStore, Store};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct IntegrityBenchArgs {
    /// Records to write, then verify.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Records per append (one transaction each).
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Inclusion proofs to time.
    #[arg(long, default_value_t = 1000)]
    proofs: u64,
}

fn record(i: u64) -> NewRecord {
    let mut r = NewRecord::new(Kind::Log);
    r.level = Some(if i.is_multiple_of(10) {
        Level::Warn
    } else {
        Level::Info
    });
    r.source = Some(format!("host-{}", i % 50));
    r.category = Some("bench".into());
    r.message = Some(format!(
        "request {i} served in {} ms from cache shard {}",
        i % 997,
        i % 7
    ));
    r.data = serde_json::json!({"n": i, "path": "/api/v1/items", "status": 200})
        .as_object()
        .cloned();
    r
}

pub async fn run(args: IntegrityBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path())?);
    let started = Instant::now();
    let mut written = 0;
    while written < args.records {
        let n = args.batch.min(args.records - written);
        store
            .append((written..written + n).map(record).collect())
            .await?;
        written += n;
    }
    let ingest = started.elapsed();
    // The hashing alone, on the same records as they are stored (made untimed, in
    // chunks, so only the canonical form and SHA-256 are measured).
    let mut hashing = std::time::Duration::ZERO;
    let mut sink = 0u8;
    let mut next = 0;
    while next < args.records {
        let end = (next + 10_000).min(args.records);
        let chunk: Vec<logbook_core::Record> = (next..end)
            .map(|i| record(i).into_record(i as i64 + 1, Timestamp(1_700_000_000_000_000)))
            .collect();
        let started = Instant::now();
        for stored in &chunk {
            sink ^= leaf_hash(stored)[0];
        }
        hashing += started.elapsed();
        next = end;
    }
    let rate = args.records as f64 / ingest.as_secs_f64();
    println!(
        "ingest with leaves: {:.0} records/s ({} records, {} per append, {:.1} s)",
        rate,
        args.records,
        args.batch,
        ingest.as_secs_f64()
    );
    println!(
        "leaf hashing alone: {:.0} records/s, {:.2} us/record = {:.1}% of the ingest time (check byte {sink})",
        args.records as f64 / hashing.as_secs_f64(),
        hashing.as_secs_f64() * 1e6 / args.records as f64,
        100.0 * hashing.as_secs_f64() / ingest.as_secs_f64()
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let shared: Arc<dyn Store> = store.clone();
    let state = AppState::new(shared, Config::default(), stopped);
    let started = Instant::now();
    checkpoint(&state).await?;
    println!(
        "first checkpoint (root of {} leaves from the stored leaves): {:.2} s",
        store.tree_size().await?,
        started.elapsed().as_secs_f64()
    );
    let size = store.tree_size().await?;
    // Two rounds over the same leaves: the first runs while the sealer is still
    // sealing what was just written, the second after it, so a tail that only the
    // first has is that contention, not the proofs.
    for round in ["first round", "second round"] {
        let mut latencies = Vec::new();
        for k in 0..args.proofs {
            let index = (k * 7_919_993) % size.max(1);
            let started = Instant::now();
            state
                .integrity
                .tree
                .inclusion(store.as_ref(), index, size)
                .await?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        println!(
            "inclusion proof in {} leaves (in process, {round}): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            size,
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    drop(state);
    drop(store);
    let started = Instant::now();
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["verify", "--data"])
        .arg(dir.path())
        .status()?;
    println!(
        "logbook verify --data of {} records: {:.1} s (exit {})",
        args.records,
        started.elapsed().as_secs_f64(),
        status.code().unwrap_or(-1)
    );
    Ok(())
}
