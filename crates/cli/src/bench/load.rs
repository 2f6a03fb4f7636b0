//! `logbook bench-load`: a real server under more than it can take.
//!
//! - Open loop: the capacity of writes is measured closed-loop first, then requests
//!   are sent on a fixed schedule at `--overload` times that rate for `--seconds`,
//!   whatever the answers (so a slow server does not slow the arrivals, as it would
//!   with closed-loop clients). Latency is counted from each request's scheduled
//!   time. Reported: p50/p99 of the admitted requests, the share answered 503/429
//!   with `Retry-After`, the server's peak RSS, whether every acknowledged record is
//!   in the store, and the latency of the first requests after the overload ends;
//!   and the CPU the server and this client used meanwhile, since they share the
//!   machine (the client is `lean_client`, cheaper than reqwest for that reason).
//!   `--server-binary` measures another build's server with this build's client.
//! - Eight concurrent 15 MB NDJSON batches (also part of `logbook bench`): the peak
//!   RSS while they are taken, each retried after its Retry-After when shed.

use super::lean_client::LeanClient;
use super::measure::{
    bucket_percentile, cpu_time, histogram_buckets, mib, ms, percentile, status_bytes, watch_peak,
};
use super::node::Child;
use super::workload::Workload;
use bytes::Bytes;
use clap::Args;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Records per request of the open-loop test (1: single-record POSTs as JSON).
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Arrival rate as a multiple of the measured capacity.
    #[arg(long, default_value_t = 2.0)]
    pub overload: f64,
    /// Length of the overload.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Closed-loop clients measuring the capacity first.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Requests the client keeps open at most; beyond it an arrival is counted as
    /// not sent (reported: a client that cannot keep up is not the server's fault).
    /// Each open request has its own connection, so this stays below the server's
    /// connection cap (1024): with 4096, the client's connections beyond the cap
    /// were refused or closed, and reconnecting (SYN retries after 1, 3, 7, 15 s)
    /// put tens of seconds into the admitted p99 that no server queue held.
    #[arg(long, default_value_t = 1000)]
    pub max_open: u64,
    /// Concurrent NDJSON batches of `--big-batch-bytes` each (0 skips that part).
    #[arg(long, default_value_t = 8)]
    pub big_batches: usize,
    #[arg(long, default_value_t = 15_000_000)]
    pub big_batch_bytes: usize,
    /// Directory for the store (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// The `logbook` binary to run the server from (default: this one), so that
    /// two builds' servers are measured with the same client.
    #[arg(long)]
    pub server_binary: Option<std::path::PathBuf>,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be positive");
    let temporary = tempfile::tempdir()?;
    let data = args
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf())
        .join("logbook");
    let server = match &args.server_binary {
        Some(binary) => Child::serve_binary(binary, &data)?,
        None => Child::serve(&data)?,
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .build()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "logbook bench-load: requests of {} record(s); idle server RSS {:.1} MiB",
        args.batch,
        mib(status_bytes(server.pid(), "VmRSS").unwrap_or(0))
    );
    open_loop(&http, &server, &args).await?;
    if args.big_batches > 0 {
        big_batches(&http, &server, args.big_batches, args.big_batch_bytes).await?;
    }
    Ok(())
}

/// Bodies to send, made before any is timed; all of one `source`, so the store can
/// be asked afterwards how many it holds.
fn bodies(batch: u64, source: &str, count: usize) -> Vec<(Bytes, &'static str)> {
    let mut workload = Workload::new(1_000_000);
    (0..count)
        .map(|_| {
            let mut one = || {
                let mut record = workload.next_record();
                record["source"] = source.into();
                record.to_string()
            };
            if batch == 1 {
                (Bytes::from(one()), "application/json")
            } else {
                let mut body = String::new();
                for _ in 0..batch {
                    body.push_str(&one());
                    body.push('\n');
                }
                (Bytes::from(body), "application/x-ndjson")
            }
        })
        .collect()
}

/// How one request ended.
enum Outcome {
    Admitted,
    Shed { retry_after: bool },
    Other(u16),
    Transport,
}

impl Outcome {
    fn of(answer: super::lean_client::Answer) -> Outcome {
        match answer {
            Some((201, _)) => Outcome::Admitted,
            Some((503 | 429, retry_after)) => Outcome::Shed { retry_after },
            Some((other, _)) => Outcome::Other(other),
            None => Outcome::Transport,
        }
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &(Bytes, &'static str),
) -> Outcome {
    let sent = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", body.1)
        .body(body.0.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            if response.bytes().await.is_err() {
                return Outcome::Transport;
            }
            match status {
                201 => Outcome::Admitted,
                503 | 429 => Outcome::Shed { retry_after },
                other => Outcome::Other(other),
            }
        }
        Err(_) => Outcome::Transport,
    }
}

async fn open_loop(http: &reqwest::Client, server: &Child, args: &LoadArgs) -> anyhow::Result<()> {
    let url: Arc<str> = server.url("/logbook/v1/records").into();
    let token: Arc<str> = server.token().into();
    let lean = Arc::new(LeanClient::new(&url, &token)?);
    let pool = Arc::new(bodies(args.batch, "load-capacity", 1000));

    // Capacity: closed-loop clients for a few seconds.
    let measuring = Duration::from_secs(5);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let (lean, pool, done) = (Arc::clone(&lean), Arc::clone(&pool), Arc::clone(&done));
        clients.push(tokio::spawn(async move {
            let mut i = c;
            while started.elapsed() < measuring {
                let (body, content_type) = &pool[i % pool.len()];
                if let Outcome::Admitted = Outcome::of(lean.post(body, content_type).await) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += STRIDE;
            }
        }));
    }
    for client in clients {
        client.await?;
    }
    let capacity = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let rate = capacity * args.overload;
    println!(
        "capacity, {} closed-loop clients: {capacity:.0} requests/s ({:.0} records/s); open loop at {rate:.0} requests/s for {} s",
        args.clients,
        capacity * args.batch as f64,
        args.seconds
    );

    // The overload, on schedule.
    let pool = Arc::new(bodies(args.batch, "load-open", 1000));
    let server_side_before = admitted_write_buckets(http, server).await?;
    let pid = server.pid();
    let (peak, watching) = watch_peak(pid, Duration::from_millis(20));
    let own_pid = std::process::id();
    let cpu_before = (cpu_time(pid), cpu_time(own_pid));
    let open = Arc::new(AtomicU64::new(0));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(Outcome, Duration)>();
    let length = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut scheduled = 0u64;
    let mut unsent = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while started.elapsed() < length {
        ticker.tick().await;
        let due = (started.elapsed().min(length).as_secs_f64() * rate) as u64;
        while scheduled < due {
            // The moment this request was due, which its latency counts from.
            let at = started + Duration::from_secs_f64(scheduled as f64 / rate);
            let body_index = scheduled as usize % pool.len();
            scheduled += 1;
            if open.load(Ordering::Relaxed) >= args.max_open {
                unsent += 1;
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            let (lean, pool, open, sender) = (
                Arc::clone(&lean),
                Arc::clone(&pool),
                Arc::clone(&open),
                sender.clone(),
            );
            tokio::spawn(async move {
                let (body, content_type) = &pool[body_index];
                let outcome = Outcome::of(lean.post(body, content_type).await);
                let _ = sender.send((outcome, at.elapsed()));
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
    drop(sender);
    let mut admitted = Vec::new();
    let (mut shed, mut shed_without_retry_after, mut transport) = (0u64, 0u64, 0u64);
    let mut others: std::collections::BTreeMap<u16, u64> = Default::default();
    while let Some((outcome, latency)) = receiver.recv().await {
        match outcome {
            Outcome::Admitted => admitted.push(latency),
            Outcome::Shed { retry_after: true } => shed += 1,
            Outcome::Shed { retry_after: false } => shed_without_retry_after += 1,
            Outcome::Other(status) => *others.entry(status).or_default() += 1,
            Outcome::Transport => transport += 1,
        }
    }
    let drained = started.elapsed();
    let cpu_after = (cpu_time(pid), cpu_time(own_pid));
    let sent = scheduled - unsent;
    println!(
        "sent {sent} of {scheduled} scheduled ({unsent} not sent: {} open at the client); answered within {:.1} s",
        args.max_open,
        drained.as_secs_f64()
    );
    if let ((Some(server_0), Some(client_0)), (Some(server_1), Some(client_1))) =
        (cpu_before, cpu_after)
    {
        let cores = |d: Duration| d.as_secs_f64() / drained.as_secs_f64();
        println!(
            "CPU meanwhile: server {:.1} s ({:.2} cores), this client {:.1} s ({:.2} cores), of {} cores",
            (server_1 - server_0).as_secs_f64(),
            cores(server_1 - server_0),
            (client_1 - client_0).as_secs_f64(),
            cores(client_1 - client_0),
            std::thread::available_parallelism().map_or(0, usize::from)
        );
    }
    let n_admitted = admitted.len() as u64;
    println!(
        "admitted (201): {n_admitted} = {:.1}%, latency from schedule p50 {:.1} ms, p99 {:.1} ms (target < 100 ms); admitted rate {:.0}/s",
        100.0 * n_admitted as f64 / sent.max(1) as f64,
        ms(percentile(&mut admitted, 50.0)),
        ms(percentile(&mut admitted, 99.0)),
        n_admitted as f64 / length.as_secs_f64()
    );
    // The server's own time for the writes it admitted (from admission to the
    // answer's head): what is beyond it in the client's figure waited outside the
    // handler, in the client, the kernel's queues or for a connection.
    let server_side_after = admitted_write_buckets(http, server).await?;
    let bound = |p| {
        bucket_percentile(&server_side_before, &server_side_after, p)
            .map_or_else(|| "-".to_string(), |s| format!("{:.0} ms", s * 1000.0))
    };
    println!(
        "server-side time of admitted writes (histogram bucket bounds): p50 <= {}, p99 <= {}",
        bound(50.0),
        bound(99.0)
    );
    println!(
        "shed with Retry-After (503/429): {shed} = {:.1}%; without Retry-After {shed_without_retry_after}; other statuses {others:?}; transport errors {transport}",
        100.0 * shed as f64 / sent.max(1) as f64
    );
    let reasons = shed_reasons(http, server).await?;
    println!("the server's refusals by reason: {reasons}");

    // At once afterwards the server answers as normal, to a client that comes
    // fresh (the overload's pooled connections may have been closed meanwhile).
    let fresh = reqwest::Client::new();
    let mut after = Vec::new();
    let mut failed = 0;
    let recovery_pool = bodies(1, "load-after", 50);
    for body in &recovery_pool {
        let at = Instant::now();
        match post(&fresh, &url, &token, body).await {
            Outcome::Admitted => after.push(at.elapsed()),
            _ => failed += 1,
        }
    }
    watching.abort();
    println!(
        "right after: {} of {} single POSTs admitted, p50 {:.1} ms, max {:.1} ms; peak server RSS during the overload {:.1} MiB (target < 200 MiB)",
        after.len(),
        recovery_pool.len(),
        ms(percentile(&mut after, 50.0)),
        ms(percentile(&mut after, 100.0)),
        mib(peak.load(Ordering::Relaxed))
    );
    let stored = server.count(http, "source=load-open").await?;
    let acked = n_admitted * args.batch;
    println!(
        "acknowledged {acked} records, {stored} stored: {}",
        if stored >= acked {
            format!(
                "none lost ({} beyond: shed requests never write)",
                stored - acked
            )
        } else {
            format!("{} LOST", acked - stored)
        }
    );
    anyhow::ensure!(
        failed == 0,
        "{failed} requests failed right after the overload"
    );
    Ok(())
}

/// `logbook_http_shed_requests_total` by reason, and the write limit where the
/// server has one, from its metrics.
async fn shed_reasons(http: &reqwest::Client, server: &Child) -> anyhow::Result<String> {
    let text = server.metrics(http).await?;
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("logbook_http_shed_requests_total{reason=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if let Some(limit) = text
        .lines()
        .find_map(|l| l.strip_prefix("logbook_http_write_limit "))
    {
        out.push(format!("(write limit now {limit})"));
    }
    Ok(out.join(", "))
}

async fn admitted_write_buckets(
    http: &reqwest::Client,
    server: &Child,
) -> anyhow::Result<Vec<(f64, u64)>> {
    let text = server.metrics(http).await?;
    Ok(histogram_buckets(
        &text,
        "logbook_http_admitted_write_duration_seconds",
    ))
}

/// Closed-loop clients walk the body pool with a prime stride, so they do not all
/// send the same body at once.
const STRIDE: usize = 7;

/// `clients` concurrent NDJSON batches of about `bytes` each, each retried after
/// its Retry-After when shed; prints the server's peak RSS while they are taken.
pub async fn big_batches(
    http: &reqwest::Client,
    server: &Child,
    clients: usize,
    bytes: usize,
) -> anyhow::Result<()> {
    let mut workload = Workload::new(1_000_000);
    let mut body = String::with_capacity(bytes + 1024);
    let mut lines = 0u64;
    loop {
        let mut record = workload.next_record();
        record["source"] = "big-batches".into();
        let line = record.to_string();
        if body.len() + line.len() + 1 > bytes {
            break;
        }
        body.push_str(&line);
        body.push('\n');
        lines += 1;
    }
    let body = Bytes::from(body);
    let before = server.count(http, "source=big-batches").await?;
    let pid = server.pid();
    let rss_before = status_bytes(pid, "VmRSS").unwrap_or(0);
    let (peak, watching) = watch_peak(pid, Duration::from_millis(10));
    let url: Arc<str> = server.url("/logbook/v1/records").into();
    let token: Arc<str> = server.token().into();
    let started = Instant::now();
    let shed = Arc::new(AtomicU64::new(0));
    let reset = Arc::new(AtomicU64::new(0));
    let mut uploads = Vec::new();
    for _ in 0..clients {
        let (http, url, token, body, shed, reset) = (
            http.clone(),
            Arc::clone(&url),
            Arc::clone(&token),
            body.clone(),
            Arc::clone(&shed),
            Arc::clone(&reset),
        );
        uploads.push(tokio::spawn(async move {
            let body = (body, "application/x-ndjson");
            for _ in 0..600 {
                match post(&http, &url, &token, &body).await {
                    Outcome::Admitted => return anyhow::Ok(()),
                    Outcome::Shed { retry_after: true } => {
                        shed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Outcome::Shed { retry_after: false } => {
                        anyhow::bail!("a big batch was shed without Retry-After")
                    }
                    Outcome::Other(status) => anyhow::bail!("a big batch answered {status}"),
                    // A body refused before it is read: the server answers 503 and
                    // closes while the client is still sending, so the client often
                    // sees the connection reset rather than the answer.
                    Outcome::Transport => {
                        reset.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            anyhow::bail!("a big batch was refused 600 times")
        }));
    }
    for upload in uploads {
        upload.await??;
    }
    let elapsed = started.elapsed();
    watching.abort();
    let stored = server.count(http, "source=big-batches").await? - before;
    println!(
        "{clients} concurrent NDJSON batches of {:.1} MB ({lines} records each): all taken in {:.1} s ({} answered 503 and {} reset while sending, each retried), {stored} of {} records stored; server RSS {:.1} MiB before, peak {:.1} MiB during (target < 300 MiB)",
        body.len() as f64 / 1e6,
        elapsed.as_secs_f64(),
        shed.load(Ordering::Relaxed),
        reset.load(Ordering::Relaxed),
        lines * clients as u64,
        mib(rss_before),
        mib(peak.load(Ordering::Relaxed))
    );
    Ok(())
}
