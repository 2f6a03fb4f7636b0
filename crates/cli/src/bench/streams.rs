//! `logbook bench-streams`: live-stream figures against a real server process:
//! delivery latency p50/p99 from write to subscriber, and the batch ingest rate with
//! and without ten thousand subscribers (each with filters of its own, one of them
//! never reading), measured in one run and given as a ratio; and, because the rate
//! on a shared machine moves with whatever else runs, the server's own CPU time per
//! record in both runs and the events it delivered, which move much less.

use super::measure::{mib, ms, percentile};
use super::node::Child;
use super::workload::Workload;
use clap::Args;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[derive(Args, Debug)]
pub struct StreamBenchArgs {
    /// Concurrent stream subscribers.
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// Of those, how many follow the probe records whose latency is measured.
    #[arg(long, default_value_t = 20)]
    pub probes: usize,
    /// Records ingested in each of the two ingest measurements.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Records per NDJSON request.
    #[arg(long, default_value_t = 500)]
    pub batch: u64,
    /// Probe records sent (one every 20 ms) for the idle latency figure.
    #[arg(long, default_value_t = 200)]
    pub probe_records: u64,
}

pub async fn run(args: StreamBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be positive");
    anyhow::ensure!(
        args.probes <= args.subscribers,
        "--probes exceeds --subscribers"
    );
    let dir = tempfile::tempdir()?;
    let server = Child::serve(&dir.path().join("logbook"))?;
    let http = reqwest::Client::new();
    let mut workload = Workload::new(args.records * 2);
    println!(
        "logbook bench-streams: {} subscribers ({} probes), {} records per ingest run, batches of {}",
        args.subscribers, args.probes, args.records, args.batch
    );

    let cpu_before = cpu_seconds(server.pid());
    let alone = ingest(&http, &server, &mut workload, &args, None).await?;
    let cpu_alone = cpu_seconds(server.pid()) - cpu_before;
    println!("batch ingest, no subscribers: {alone:.0} records/s");

    let rss_before = super::measure::memory(server.pid())
        .map(|m| m.0)
        .unwrap_or(0);
    let delivered = Arc::new(AtomicU64::new(0));
    let (latencies, connected) = subscribe(&server, &args, &delivered).await?;
    let rss_after = super::measure::memory(server.pid())
        .map(|m| m.0)
        .unwrap_or(0);
    println!(
        "{connected} subscribers connected; server RSS {:.1} -> {:.1} MiB ({:.1} KiB per subscriber)",
        mib(rss_before),
        mib(rss_after),
        rss_after.saturating_sub(rss_before) as f64 / 1024.0 / connected.max(1) as f64
    );

    let mut idle = probe(&http, &server, &latencies, args.probe_records, None).await?;
    println!(
        "delivery latency, write to subscriber, idle ingest: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        ms(percentile(&mut idle, 50.0)),
        ms(percentile(&mut idle, 99.0)),
        idle.len()
    );

    let busy = Arc::new(AtomicU64::new(1));
    let probing = {
        let (http, url, token, latencies, busy) = (
            http.clone(),
            server.url("/logbook/v1/records"),
            server.token().to_string(),
            Arc::clone(&latencies),
            Arc::clone(&busy),
        );
        tokio::spawn(async move {
            probe_loop(&http, &url, &token, &latencies, u64::MAX, Some(&busy)).await
        })
    };
    let (cpu_before, delivered_before) =
        (cpu_seconds(server.pid()), delivered.load(Ordering::Relaxed));
    let loaded = ingest(&http, &server, &mut workload, &args, Some(&busy)).await?;
    let cpu_loaded = cpu_seconds(server.pid()) - cpu_before;
    let events = delivered.load(Ordering::Relaxed) - delivered_before;
    let mut under_load = probing.await??;
    println!(
        "batch ingest with {connected} subscribers: {loaded:.0} records/s = {:.2}x the rate without",
        loaded / alone
    );
    let per_record = |cpu: f64| cpu * 1e6 / args.records as f64;
    println!(
        "server CPU per record ingested: {:.1} us without subscribers, {:.1} us with them \
         ({events} events delivered meanwhile, {:.1} us of server CPU each)",
        per_record(cpu_alone),
        per_record(cpu_loaded),
        (cpu_loaded - cpu_alone) * 1e6 / events.max(1) as f64,
    );
    println!(
        "delivery latency during that ingest: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        ms(percentile(&mut under_load, 50.0)),
        ms(percentile(&mut under_load, 99.0)),
        under_load.len()
    );
    if let Some((rss, peak)) = super::measure::memory(server.pid()) {
        println!(
            "server RSS now {:.1} MiB, peak {:.1} MiB",
            mib(rss),
            mib(peak)
        );
    }
    Ok(())
}

/// Ingests `args.records` records in NDJSON batches from two uploaders; the rate.
async fn ingest(
    http: &reqwest::Client,
    server: &Child,
    workload: &mut Workload,
    args: &StreamBenchArgs,
    running: Option<&Arc<AtomicU64>>,
) -> anyhow::Result<f64> {
    let bodies: Vec<String> = (0..args.records.div_ceil(args.batch))
        .map(|_| {
            let mut body = String::new();
            for _ in 0..args.batch {
                body.push_str(&workload.next_record().to_string());
                body.push('\n');
            }
            body
        })
        .collect();
    let count = bodies.len() as u64 * args.batch;
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let uploaders: Vec<_> = (0..2)
        .map(|_| {
            let (http, queue) = (http.clone(), Arc::clone(&queue));
            let (url, token) = (
                server.url("/logbook/v1/records"),
                server.token().to_string(),
            );
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                    let Some(body) = next else {
                        return anyhow::Ok(());
                    };
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status() == 201,
                        "batch answered {}",
                        response.status()
                    );
                    response.bytes().await?;
                }
            })
        })
        .collect();
    for uploader in uploaders {
        uploader.await??;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    if let Some(running) = running {
        running.store(0, Ordering::Relaxed);
    }
    Ok(rate)
}

/// Opens the subscribers over raw TCP (a real client library per connection would
/// cost the benchmark more than the server). Subscriber `i` filters on its own
/// category and user; the probes follow `category=bench-probe`; subscriber 0 (when
/// not a probe) never reads at all. Returns the probes' latency channel.
async fn subscribe(
    server: &Child,
    args: &StreamBenchArgs,
    delivered: &Arc<AtomicU64>,
) -> anyhow::Result<(
    Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Duration>>>,
    usize,
)> {
    const CATEGORIES: [&str; 4] = ["image", "network", "volume", "auth"];
    let address = server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (sender, receiver) = mpsc::unbounded_channel();
    let connected = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let mut opening = Vec::new();
    for i in 0..args.subscribers {
        let probe = i >= args.subscribers - args.probes;
        let query = if probe {
            "category=bench-probe".to_string()
        } else {
            format!(
                "category={}&user=user{:03}&min_level=INFO",
                CATEGORIES[i % CATEGORIES.len()],
                i % 300
            )
        };
        let request = format!(
            "GET /logbook/v1/stream?{query} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
            server.token()
        );
        let (address, sender, connected, gate, delivered) = (
            address.clone(),
            sender.clone(),
            Arc::clone(&connected),
            Arc::clone(&gate),
            Arc::clone(delivered),
        );
        opening.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let mut socket = TcpStream::connect(&address).await?;
            socket.write_all(request.as_bytes()).await?;
            let mut buffer = vec![0u8; 4096];
            let mut head = Vec::new();
            while !String::from_utf8_lossy(&head).contains(": subscribed") {
                let n = socket.read(&mut buffer).await?;
                anyhow::ensure!(n > 0, "the server closed a subscription");
                head.extend_from_slice(&buffer[..n]);
            }
            connected.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            tokio::spawn(async move {
                if i == 0 && !probe {
                    // The deliberately slow subscriber: holds its socket, reads nothing.
                    let _ = tokio::time::sleep(Duration::from_secs(3600)).await;
                    drop(socket);
                    return;
                }
                let mut pending = String::new();
                let mut events = EventCounter::default();
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    delivered.fetch_add(events.count(&buffer[..n]), Ordering::Relaxed);
                    if !probe {
                        continue;
                    }
                    pending.push_str(&String::from_utf8_lossy(&buffer[..n]));
                    while let Some(at) = pending.find("\"message\":\"probe ") {
                        let rest = &pending[at + 17..];
                        let digits: String =
                            rest.chars().take_while(char::is_ascii_digit).collect();
                        if let Ok(sent) = digits.parse::<u64>() {
                            let latency = now_micros().saturating_sub(sent);
                            let _ = sender.send(Duration::from_micros(latency));
                        }
                        pending.drain(..at + 17);
                    }
                }
            });
            anyhow::Ok(())
        }));
    }
    for task in opening {
        task.await??;
    }
    Ok((
        Arc::new(tokio::sync::Mutex::new(receiver)),
        connected.load(Ordering::Relaxed) as usize,
    ))
}

/// Counts the SSE events (`\ndata: ` lines) in a byte stream read in pieces,
/// keeping the tail of each piece so a marker split across two reads still counts.
#[derive(Default)]
struct EventCounter {
    tail: Vec<u8>,
}

impl EventCounter {
    const MARKER: &'static [u8] = b"\ndata: ";

    fn count(&mut self, chunk: &[u8]) -> u64 {
        self.tail.extend_from_slice(chunk);
        let found = self
            .tail
            .windows(Self::MARKER.len())
            .filter(|w| *w == Self::MARKER)
            .count() as u64;
        let keep = self.tail.len().min(Self::MARKER.len() - 1);
        self.tail.drain(..self.tail.len() - keep);
        found
    }
}

/// CPU seconds (user and system) the process has used so far; 0 where /proc has
/// no answer. /proc reports clock ticks of USER_HZ, which Linux fixes at 100.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) is parenthesised and may hold spaces: count after it.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn probe(
    http: &reqwest::Client,
    server: &Child,
    latencies: &Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Duration>>>,
    count: u64,
    running: Option<&Arc<AtomicU64>>,
) -> anyhow::Result<Vec<Duration>> {
    let url = server.url("/logbook/v1/records");
    probe_loop(http, &url, server.token(), latencies, count, running).await
}

/// Sends probe records every 20 ms (until `count` or until `running` turns 0) and
/// collects every probe subscriber's delivery latency for them.
async fn probe_loop(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    latencies: &Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Duration>>>,
    count: u64,
    running: Option<&Arc<AtomicU64>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut receiver = latencies.lock().await;
    let mut samples = Vec::new();
    let mut sent = 0;
    while sent < count && running.is_none_or(|r| r.load(Ordering::Relaxed) != 0) {
        let record = serde_json::json!({
            "kind": "log", "level": "INFO", "category": "bench-probe",
            "message": format!("probe {}", now_micros()),
        });
        let response = http
            .post(url)
            .bearer_auth(token)
            .json(&record)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "probe answered {}",
            response.status()
        );
        response.bytes().await?;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(latency) = receiver.try_recv() {
            samples.push(latency);
        }
    }
    // Let the last probes arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(latency) = receiver.try_recv() {
        samples.push(latency);
    }
    Ok(samples)
}
