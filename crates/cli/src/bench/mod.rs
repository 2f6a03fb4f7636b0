//! `logbook bench`: measures a real `logbook serve` process over HTTP and prints the
//! figures beside baselines measured in the same run, because the machines it runs
//! on are shared and noisy: the ratios are the numbers to compare across runs. The
//! baselines: the floor of durably storing the same NDJSON bytes (each line parsed and
//! inserted as `(id, text)` into an unindexed SQLite table, 1000 rows a commit,
//! `synchronous=FULL`; on PostgreSQL, binary COPY into an unindexed table with the records' columns), and
//! a trivial handler on the same HTTP stack. With `--database`, the embedded store
//! runs the same workload beside the PostgreSQL node, chunk by chunk, so the ratio
//! of the two comes from the same minutes of the same machine.

pub mod integrity;
mod lean_client;
pub mod load;
mod loki;
mod measure;
mod node;
mod nodes;
mod noop;
mod postgres;
mod protocols;
pub mod soak;
pub mod streams;
mod workload;

pub use noop::{run as run_noop, NoopArgs};

use clap::Args;
use measure::{mib, ms, percentile};
use node::Child;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Workload;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Store sizes to measure at, comma-separated; the store grows from one to the next.
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    pub records: Vec<u64>,
    /// Directory for the stores (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Records per NDJSON request when ingesting in batches.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent batch uploads.
    #[arg(long, default_value_t = 4)]
    pub uploaders: usize,
    /// Concurrent clients sending single-record POSTs.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Single-record POSTs per measurement.
    #[arg(long, default_value_t = 20_000)]
    pub single_posts: u64,
    /// Fill the raw-SQLite baseline only up to this many records (default: all), to
    /// save time at large sizes; beyond it, HTTP rates are compared with the last
    /// baseline rate measured.
    #[arg(long)]
    pub baseline_up_to: Option<u64>,
    /// Repetitions of each query for its latency percentiles.
    #[arg(long, default_value_t = 200)]
    pub repeat: usize,
    /// Measure a node on this PostgreSQL database (in schemas of its own, dropped
    /// afterwards) beside the embedded store, both fed the same requests in turn;
    /// the baseline is then a binary COPY of the same rows into an unindexed table.
    #[arg(long)]
    pub database: Option<String>,
    /// With `--database`: after the main run, measure 1, 2, ... this many nodes
    /// writing at once on the same database (aggregate rate, p99 per node).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Records written in each step of the several-nodes phase.
    #[arg(long, default_value_t = 200_000)]
    pub nodes_records: u64,
    /// Records sent through each shipper protocol (and natively, beside them) on a
    /// node of their own; 0 skips that part.
    #[arg(long, default_value_t = 100_000)]
    pub protocol_records: u64,
    /// Concurrent 15 MB NDJSON batches sent at the end (peak RSS while they are
    /// taken); 0 skips them.
    #[arg(long, default_value_t = 8)]
    pub big_batches: usize,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.records.is_empty(),
        "--records needs at least one size"
    );
    anyhow::ensure!(args.batch > 0, "--batch must be positive");
    let temporary = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let root = match (&args.dir, &temporary) {
        (Some(dir), _) => dir.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!("a directory is always chosen"),
    };
    let data = root.join("logbook");
    let raw_dir = root.join("raw-sqlite");
    let total = args.records.iter().copied().max().unwrap_or(0);
    println!("logbook bench: stores in {}", root.display());
    println!(
        "workload: {total} records max, NDJSON batches of {}, {} uploaders; {} clients for single POSTs",
        args.batch, args.uploaders, args.clients
    );

    let pg_run = match &args.database {
        Some(url) => Some(postgres::PgRun::create(url).await?),
        None => None,
    };
    let server = match &pg_run {
        Some(run) => Child::serve_with(&["--database", &run.node_url])?,
        None => Child::serve(&data)?,
    };
    // On PostgreSQL, the embedded store beside it: the target is a ratio
    // of the two on the same machine at the same time.
    let embedded = match &pg_run {
        Some(_) => Some(Child::serve(&data)?),
        None => None,
    };
    let noop = Child::noop()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = measure::memory(server.pid()).map(|m| m.0).unwrap_or(0);
    println!("\nidle RSS of the server: {:.1} MiB", mib(idle));

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    // Alternating rounds, so both sides see the same share of a noisy machine.
    let (mut durable, mut trivial, mut beside) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let rounds = 4;
    for _ in 0..rounds {
        durable += single_posts(&http, &args, &server, args.single_posts / rounds).await?;
        if let Some(embedded) = &embedded {
            beside += single_posts(&http, &args, embedded, args.single_posts / rounds).await?;
        }
        trivial += single_posts(&http, &args, &noop, args.single_posts / rounds).await?;
    }
    let posted = (args.single_posts / rounds * rounds) as f64;
    let (durable, trivial) = (
        posted / durable.as_secs_f64(),
        posted / trivial.as_secs_f64(),
    );
    println!(
        "single-record POSTs, {} clients: {durable:.0}/s durable vs {trivial:.0}/s trivial handler = {:.0}%",
        args.clients,
        100.0 * durable / trivial
    );
    if embedded.is_some() {
        let beside = posted / beside.as_secs_f64();
        println!(
            "single-record POSTs, {} clients, embedded store in the same rounds: {beside:.0}/s; one PostgreSQL node / embedded = {:.0}%",
            args.clients,
            100.0 * durable / beside
        );
    }
    drop(noop);

    let mut workload = Workload::new(total);
    let mut baseline = Some(postgres::Baseline::open(pg_run.as_ref(), &raw_dir).await?);
    let baseline_name = baseline.as_ref().map(|b| b.name()).unwrap_or_default();
    let mut written = 0u64;
    let mut ndjson_bytes = 0u64;
    let mut raw_rate = f64::NAN;
    for &target in &args.records {
        println!("\n== at {target} records ==");
        // Interleaved chunks, for the same reason as above; the bodies of a chunk are
        // made before either side is timed, and both get the same bytes.
        let (mut http_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
        let mut embedded_time = Duration::ZERO;
        let mut raw_rows = 0u64;
        let count = target.saturating_sub(written);
        let chunk = (count / 10).clamp(args.batch as u64, 500_000);
        let mut done = 0;
        while done < count {
            let n = chunk.min(count - done);
            let bodies: Arc<Vec<String>> = Arc::new(
                (0..n.div_ceil(args.batch as u64))
                    .map(|i| {
                        let lines = (args.batch as u64).min(n - i * args.batch as u64);
                        workload.ndjson(lines)
                    })
                    .collect(),
            );
            ndjson_bytes += bodies.iter().map(|b| b.len() as u64).sum::<u64>();
            http_time += ingest_batches(&http, &args, &server, Arc::clone(&bodies)).await?;
            if let Some(embedded) = &embedded {
                embedded_time +=
                    ingest_batches(&http, &args, embedded, Arc::clone(&bodies)).await?;
            }
            if written + done + n <= args.baseline_up_to.unwrap_or(u64::MAX) {
                let store = baseline
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("baseline lost"))?;
                let started = Instant::now();
                baseline = Some(store.insert(bodies).await?);
                raw_time += started.elapsed();
                raw_rows += n;
            }
            done += n;
            eprintln!("  ... {} of {count} records written", done);
        }
        written = target;
        sealer(&data, pg_run.as_ref(), http_time, "").await?;
        if embedded.is_some() {
            sealer(&data, None, embedded_time, "embedded store's ").await?;
        }
        let http_rate = count as f64 / http_time.as_secs_f64();
        if raw_rows > 0 {
            raw_rate = raw_rows as f64 / raw_time.as_secs_f64();
        }
        let baseline_note = if raw_rows < count {
            " (baseline rate from an earlier stage)"
        } else {
            ""
        };
        println!(
            "batch ingest over HTTP: {http_rate:.0} records/s vs {baseline_name} {raw_rate:.0}/s = {:.0}%{baseline_note}",
            100.0 * http_rate / raw_rate
        );
        if embedded.is_some() {
            let beside = count as f64 / embedded_time.as_secs_f64();
            println!(
                "batch ingest over HTTP, embedded store on the same chunks: {beside:.0} records/s; one PostgreSQL node / embedded = {:.0}% (target >= 50%)",
                100.0 * http_rate / beside
            );
        }
        queries(&http, &args, &server, &workload, target, "").await?;
        if let Some(embedded) = &embedded {
            queries(&http, &args, embedded, &workload, target, "embedded: ").await?;
        }
        loki::queries(&http, &args, &server, total).await?;
        export(&http, &server, target, "ndjson").await?;
        export(&http, &server, target, "csv").await?;
        let (on_disk, raw_disk, wal) = match &pg_run {
            Some(run) => {
                let (on_disk, raw_disk) = run.sizes().await?;
                (on_disk, raw_disk, 0)
            }
            None => (
                measure::dir_size(&data),
                measure::dir_size(&raw_dir),
                measure::wal_size(&data),
            ),
        };
        println!(
            "on disk: {:.0} bytes/record ({:.1} MiB, of which WAL {:.1} MiB; raw baseline {:.1} MiB); NDJSON {:.0} bytes/record; disk/NDJSON = {:.2}x",
            on_disk as f64 / target as f64,
            mib(on_disk),
            mib(wal),
            mib(raw_disk),
            ndjson_bytes as f64 / target as f64,
            on_disk as f64 / ndjson_bytes as f64
        );
        if embedded.is_some() {
            let beside = measure::dir_size(&data);
            println!(
                "on disk, embedded store with the same records: {:.0} bytes/record ({:.1} MiB, of which WAL {:.1} MiB); PostgreSQL / embedded = {:.2}x (target <= 2x)",
                beside as f64 / target as f64,
                mib(beside),
                mib(measure::wal_size(&data)),
                on_disk as f64 / beside as f64
            );
        }
        if let Some((rss, peak)) = measure::memory(server.pid()) {
            println!(
                "server RSS now {:.1} MiB, peak so far {:.1} MiB",
                mib(rss),
                mib(peak)
            );
        }
    }
    if args.big_batches > 0 {
        load::big_batches(&http, &server, args.big_batches, 15_000_000).await?;
    }
    drop(server);
    drop(embedded);
    if let Some(run) = pg_run {
        if args.nodes > 0 {
            nodes::run(&http, &args, &run.node_url, args.nodes_records).await?;
        }
        run.drop().await?;
    }
    protocols::run(&http, &args, &root).await?;
    Ok(())
}

/// Rate of single-record POSTs from many concurrent clients, each acknowledged.
async fn single_posts(
    http: &reqwest::Client,
    args: &BenchArgs,
    target: &Child,
    count: u64,
) -> anyhow::Result<Duration> {
    let url = Arc::new(target.url(if target.is_noop() {
        "/noop"
    } else {
        "/logbook/v1/records"
    }));
    let token = Arc::new(target.token().to_string());
    let remaining = Arc::new(AtomicU64::new(count));
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let (http, url, token, remaining) = (
            http.clone(),
            Arc::clone(&url),
            Arc::clone(&token),
            Arc::clone(&remaining),
        );
        clients.push(tokio::spawn(async move {
            let mut workload = Workload::new(1);
            let mut n = 0u64;
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                .is_ok()
            {
                let mut record = workload.next_record();
                record["message"] = format!("single post {c}/{n}").into();
                n += 1;
                let response = http
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .json(&record)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == 201,
                    "single POST answered {}",
                    response.status()
                );
                response.bytes().await?;
            }
            Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    Ok(started.elapsed())
}

/// The sealer beside ingest: how far behind it was when ingest ended (hot records),
/// and its rate once ingest stopped, until the hot tier is back within its bound.
async fn sealer(
    data: &std::path::Path,
    pg: Option<&postgres::PgRun>,
    ingest: Duration,
    label: &str,
) -> anyhow::Result<()> {
    let counts = || async {
        anyhow::Ok(match pg {
            Some(run) => logbook_store::postgres::baseline::tier_counts(&run.node_url).await?,
            None => logbook_store::sqlite::tier_counts(data)?,
        })
    };
    let (sealed, hot) = counts().await?;
    let started = Instant::now();
    // The servers' bound: they read the same variable, else their default.
    let bound = std::env::var("LOGBOOK_HOT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(65_536u64);
    let mut now = (sealed, hot);
    while now.1 > bound && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = counts().await?;
    }
    let drained = started.elapsed();
    println!(
        "{label}sealer: {} records sealed in the {:.1} s of ingest ({:.0}/s beside it); {} hot when ingest ended; {} sealed in the {:.1} s after ({:.0}/s)",
        sealed,
        ingest.as_secs_f64(),
        sealed as f64 / ingest.as_secs_f64(),
        hot,
        now.0 - sealed,
        drained.as_secs_f64(),
        if drained.as_secs_f64() > 0.0 { (now.0 - sealed) as f64 / drained.as_secs_f64() } else { 0.0 },
    );
    Ok(())
}

/// Uploads the NDJSON bodies from `--uploaders` connections; returns the time taken.
async fn ingest_batches(
    http: &reqwest::Client,
    args: &BenchArgs,
    server: &Child,
    bodies: Arc<Vec<String>>,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let url = Arc::new(server.url("/logbook/v1/records"));
    let token = Arc::new(server.token().to_string());
    let started = Instant::now();
    let mut uploaders = Vec::new();
    for _ in 0..args.uploaders {
        let (http, url, token, next, bodies) = (
            http.clone(),
            Arc::clone(&url),
            Arc::clone(&token),
            Arc::clone(&next),
            Arc::clone(&bodies),
        );
        uploaders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else {
                    return anyhow::Ok(());
                };
                let response = http
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let text = response.text().await?;
                anyhow::ensure!(status == 201, "batch answered {status}: {text}");
            }
        }));
    }
    for uploader in uploaders {
        uploader.await??;
    }
    Ok(started.elapsed())
}

/// p50/p99 latency of the typical queries, each repeated.
async fn queries(
    http: &reqwest::Client,
    args: &BenchArgs,
    server: &Child,
    workload: &Workload,
    records: u64,
    label: &str,
) -> anyhow::Result<()> {
    // A window in the middle of the store, and the day up to the newest record.
    let window_start = workload.ts_of(records / 2);
    let window_end = logbook_core::Timestamp(window_start.micros() + 5 * 60 * 1_000_000);
    let day_end = workload.ts_of(records);
    let day_start = logbook_core::Timestamp(day_end.micros() - 24 * 3_600_000_000);
    let cases = [
        ("latest 20", "/logbook/v1/records?limit=20".to_string()),
        (
            "level>=ERROR, 2 categories, newest 20",
            "/logbook/v1/records?min_level=ERROR&category=image,network&limit=20".to_string(),
        ),
        (
            "substring, common word, newest 20",
            format!("/logbook/v1/records?q={}&limit=20", workload::COMMON_WORD),
        ),
        (
            "substring, absent word, newest 20",
            format!("/logbook/v1/records?q={}&limit=20", workload::ABSENT_WORD),
        ),
        (
            "count, level>=ERROR and category",
            "/logbook/v1/records/count?min_level=ERROR&category=image".to_string(),
        ),
        (
            "count, one category",
            "/logbook/v1/records/count?category=network".to_string(),
        ),
        (
            "count, one category, 5-minute window",
            format!(
                "/logbook/v1/records/count?category=network&since={}&until={}",
                window_start.epoch_seconds_f64(),
                window_end.epoch_seconds_f64()
            ),
        ),
        (
            "histogram, 24 hours in 100 buckets",
            format!(
                "/logbook/v1/histogram?since={}&until={}&interval=864s",
                day_start.epoch_seconds_f64(),
                day_end.epoch_seconds_f64()
            ),
        ),
    ];
    for (name, path) in cases {
        let url = server.url(&path);
        let mut samples = Vec::with_capacity(args.repeat);
        for i in 0..args.repeat + 5 {
            let started = Instant::now();
            let response = http.get(&url).bearer_auth(server.token()).send().await?;
            let status = response.status();
            response.bytes().await?;
            anyhow::ensure!(status == 200, "{path} answered {status}");
            if i >= 5 {
                samples.push(started.elapsed());
            }
        }
        report(&format!("{label}{name}"), &mut samples);
    }
    // Get by id: a different record each time, spread over the whole store.
    let mut samples = Vec::with_capacity(args.repeat);
    for i in 0..args.repeat as u64 + 5 {
        let id = 1 + (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % records.max(1));
        let started = Instant::now();
        let response = http
            .get(server.url(&format!("/logbook/v1/records/{id}")))
            .bearer_auth(server.token())
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        anyhow::ensure!(status == 200, "record {id} answered {status}");
        if i >= 5 {
            samples.push(started.elapsed());
        }
    }
    report(
        &format!("{label}get by id (spread over the store)"),
        &mut samples,
    );
    Ok(())
}

fn report(name: &str, samples: &mut [Duration]) {
    println!(
        "query {name:<40} p50 {:>8.2} ms   p99 {:>8.2} ms",
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 99.0))
    );
}

/// Exports everything (`csv` or `ndjson`), counting rows and watching the server's
/// memory.
async fn export(
    http: &reqwest::Client,
    server: &Child,
    expected: u64,
    format: &str,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let pid = server.pid();
    let before = measure::memory(pid).map(|m| m.0).unwrap_or(0);
    let peak = Arc::new(AtomicU64::new(before));
    let watching = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                if let Some((rss, _)) = measure::memory(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let response = http
        .get(server.url(&format!("/logbook/v1/export?format={format}")))
        .bearer_auth(server.token())
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "export answered {}",
        response.status()
    );
    let mut lines = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        lines += chunk?.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let elapsed = started.elapsed();
    watching.abort();
    // A CSV header is one line; multi-line cells do not occur in the workload.
    let rows = lines.saturating_sub(u64::from(format == "csv"));
    println!(
        "{format} export: {rows} rows (>= {expected}) in {:.1} s = {:.0} rows/s; server RSS {:.1} MiB before, {:.1} MiB peak during",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        mib(before),
        mib(peak.load(Ordering::Relaxed))
    );
    Ok(())
}
