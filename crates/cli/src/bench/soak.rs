//! `logbook bench-soak`: a steady mixed load against a real server for a long time,
//! to see whether its memory and file descriptors stay flat: 4 writers (two of
//! single records, two of NDJSON batches of 100), 2 readers cycling list, count,
//! substring and dialect queries, 20 SSE subscribers that reconnect every minute
//! with `Last-Event-ID`. Prints RSS, RssAnon and open fds every `--every`, with
//! what the server's `/metrics` says its heap (jemalloc's allocated and resident
//! bytes) and hot tier (records, the sealer's backlog) hold then; at the end checks that every acknowledged record is in the store, and compares the RSS
//! of the last quarter of the run with the first's.

use super::measure::{metric_value, mib, status_bytes};
use super::node::Child;
use super::workload::{self, Workload};
use clap::Args;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Args, Debug)]
pub struct SoakArgs {
    /// How long the load runs (`20m`, `90s`).
    #[arg(long, default_value = "20m", value_parser = crate::store::parse_age)]
    pub duration: Duration,
    /// How often the server's memory and descriptors are printed.
    #[arg(long, default_value = "30s", value_parser = crate::store::parse_age)]
    pub every: Duration,
    /// Writers of single records, each one POST at a time.
    #[arg(long, default_value_t = 2)]
    pub single_writers: usize,
    /// Writers of NDJSON batches of `--batch`, each one request at a time.
    #[arg(long, default_value_t = 2)]
    pub batch_writers: usize,
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Readers cycling the queries.
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// SSE subscribers, each reconnecting every `--reconnect` with `Last-Event-ID`.
    #[arg(long, default_value_t = 20)]
    pub subscribers: usize,
    #[arg(long, default_value = "60s", value_parser = crate::store::parse_age)]
    pub reconnect: Duration,
    /// Directory for the store (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// The `logbook` binary to run the server from (default: this one), so that
    /// two builds' servers are soaked with the same client.
    #[arg(long)]
    pub server_binary: Option<std::path::PathBuf>,
}

/// What the clients saw, shared by all of them.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    server_errors: AtomicU64,
    /// 503/429 with Retry-After: load shedding, retried after the pause it asks.
    shed: AtomicU64,
    /// Any other answer than the one expected (4xx, transport errors).
    failures: AtomicU64,
    events: AtomicU64,
    reconnects: AtomicU64,
}

impl Tally {
    /// Counts an answer; whether it was the expected success.
    fn answer(&self, status: reqwest::StatusCode, retry_after: bool, expected: u16) -> bool {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status.as_u16() == expected {
            return true;
        }
        if (status == 503 || status == 429) && retry_after {
            self.shed.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        false
    }
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be positive");
    let temporary = tempfile::tempdir()?;
    let data = args
        .dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf())
        .join("logbook");
    let server = Arc::new(match &args.server_binary {
        Some(binary) => Child::serve_binary(binary, &data)?,
        None => Child::serve(&data)?,
    });
    let pid = server.pid();
    let http = reqwest::Client::builder().build()?;
    let tally = Arc::new(Tally::default());
    let running = Arc::new(AtomicBool::new(true));
    let writers = args.single_writers + args.batch_writers;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..writers).map(|_| AtomicU64::new(0)).collect());
    println!(
        "logbook bench-soak: {:?}; {} single-record and {} batch-of-{} writers, {} readers, {} SSE subscribers reconnecting every {:?}; server pid {pid}",
        args.duration,
        args.single_writers,
        args.batch_writers,
        args.batch,
        args.readers,
        args.subscribers,
        args.reconnect
    );

    let mut tasks = Vec::new();
    for w in 0..writers {
        let batch = if w < args.single_writers {
            0
        } else {
            args.batch
        };
        let (http, server, tally, running, acked) = (
            http.clone(),
            Arc::clone(&server),
            Arc::clone(&tally),
            Arc::clone(&running),
            Arc::clone(&acked),
        );
        tasks.push(tokio::spawn(async move {
            write(&http, &server, &tally, &running, &acked[w], w, batch).await
        }));
    }
    for r in 0..args.readers {
        let (http, server, tally, running) = (
            http.clone(),
            Arc::clone(&server),
            Arc::clone(&tally),
            Arc::clone(&running),
        );
        tasks.push(tokio::spawn(async move {
            read(&http, &server, &tally, &running, r).await
        }));
    }
    for s in 0..args.subscribers {
        let (server, tally, running) = (
            Arc::clone(&server),
            Arc::clone(&tally),
            Arc::clone(&running),
        );
        // Staggered, so the reconnections spread over the minute.
        let offset = args
            .reconnect
            .mul_f64(s as f64 / args.subscribers.max(1) as f64);
        let period = args.reconnect;
        tasks.push(tokio::spawn(async move {
            subscribe(&server, &tally, &running, s, offset, period).await
        }));
    }

    let started = Instant::now();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    println!(
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>11} {:>7} {:>5} {:>5} {:>9}",
        "t",
        "RSS MiB",
        "anon",
        "heap",
        "jem res",
        "hot",
        "backlog",
        "fds",
        "acked",
        "rec/s",
        "5xx",
        "shed",
        "events"
    );
    let mut last = (Duration::ZERO, 0u64);
    loop {
        let now = started.elapsed();
        let total: u64 = acked.iter().map(|a| a.load(Ordering::Relaxed)).sum();
        let rss = status_bytes(pid, "VmRSS").unwrap_or(0);
        let anon = status_bytes(pid, "RssAnon").unwrap_or(0);
        let fds = super::measure::open_fds(pid).unwrap_or(0);
        let rate = (total - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
        // Figures the server does not give (another build's, a failed scrape): "-".
        let metrics = server.metrics(&http).await.unwrap_or_default();
        let figure = |series: &str, scale: f64, decimals: usize| {
            metric_value(&metrics, series)
                .map_or("-".to_string(), |v| format!("{:.*}", decimals, v / scale))
        };
        let heap_mib = |stat: &str| {
            figure(
                &format!("logbook_allocator_bytes{{stat=\"{stat}\"}}"),
                1048576.0,
                1,
            )
        };
        println!(
            "{:>6.0}s {:>8.1} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>5} {:>11} {:>7.0} {:>5} {:>5} {:>9}",
            now.as_secs_f64(),
            mib(rss),
            mib(anon),
            heap_mib("allocated"),
            heap_mib("resident"),
            figure("logbook_store_tier_records{tier=\"hot\"}", 1.0, 0),
            figure("logbook_sealer_backlog_records", 1.0, 0),
            fds,
            total,
            rate,
            tally.server_errors.load(Ordering::Relaxed),
            tally.shed.load(Ordering::Relaxed),
            tally.events.load(Ordering::Relaxed),
        );
        if now > Duration::ZERO {
            samples.push((now, rss));
        }
        last = (now, total);
        if now >= args.duration {
            break;
        }
        tokio::time::sleep(args.every.min(args.duration - now)).await;
    }
    running.store(false, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }

    // Every acknowledged record is in the store: each writer's records carry its own
    // `source`, counted once the writers have stopped.
    let mut lost = 0i64;
    for (w, acked) in acked.iter().enumerate() {
        let acked = acked.load(Ordering::Relaxed);
        let stored = server.count(&http, &format!("source=soak-w{w}")).await?;
        if stored < acked {
            lost += (acked - stored) as i64;
        }
        if stored != acked {
            println!("writer {w}: {acked} acknowledged, {stored} stored");
        }
    }
    let total: u64 = acked.iter().map(|a| a.load(Ordering::Relaxed)).sum();
    let quarter = args.duration / 4;
    let mean = |keep: &dyn Fn(Duration) -> bool| {
        let picked: Vec<u64> = samples
            .iter()
            .filter(|(t, _)| keep(*t))
            .map(|s| s.1)
            .collect();
        picked.iter().sum::<u64>() as f64 / picked.len().max(1) as f64
    };
    let first = mean(&|t| t <= quarter);
    let last_quarter = mean(&|t| t >= args.duration - quarter);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "acknowledged {total} records in {:.0} s ({:.0}/s), {lost} lost; {} requests, {} 5xx, {} shed (503/429 with Retry-After), {} other failures; {} events delivered, {} reconnections",
        args.duration.as_secs_f64(),
        total as f64 / args.duration.as_secs_f64(),
        tally.requests.load(Ordering::Relaxed),
        tally.server_errors.load(Ordering::Relaxed),
        tally.shed.load(Ordering::Relaxed),
        tally.failures.load(Ordering::Relaxed),
        tally.events.load(Ordering::Relaxed),
        tally.reconnects.load(Ordering::Relaxed),
    );
    println!(
        "RSS: first quarter mean {:.1} MiB, last quarter mean {:.1} MiB = {:.2}x; highest sample {:.1} MiB",
        first / 1048576.0,
        last_quarter / 1048576.0,
        last_quarter / first.max(1.0),
        mib(peak)
    );
    Ok(())
}

/// Sends single records (`batch` 0) or NDJSON batches until told to stop, counting
/// what was acknowledged; a shed request is retried after its Retry-After.
async fn write(
    http: &reqwest::Client,
    server: &Child,
    tally: &Tally,
    running: &AtomicBool,
    acked: &AtomicU64,
    w: usize,
    batch: u64,
) -> anyhow::Result<()> {
    let url = server.url("/logbook/v1/records");
    let mut workload = Workload::new(1_000_000);
    let source = format!("soak-w{w}");
    let next = |workload: &mut Workload| {
        let mut record = workload.next_record();
        record["source"] = source.clone().into();
        record
    };
    while running.load(Ordering::Relaxed) {
        let (request, count) = if batch == 0 {
            (http.post(&url).json(&next(&mut workload)), 1)
        } else {
            let mut body = String::with_capacity(batch as usize * 300);
            for _ in 0..batch {
                body.push_str(&next(&mut workload).to_string());
                body.push('\n');
            }
            (
                http.post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body),
                batch,
            )
        };
        match request.bearer_auth(server.token()).send().await {
            Ok(response) => {
                let status = response.status();
                let retry = response.headers().contains_key("retry-after");
                let _ = response.bytes().await;
                if tally.answer(status, retry, 201) {
                    acked.fetch_add(count, Ordering::Relaxed);
                } else if retry {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Err(_) => {
                tally.requests.fetch_add(1, Ordering::Relaxed);
                tally.failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}

/// Cycles the typical queries: native list, count and substring, Loki and QNAP.
async fn read(
    http: &reqwest::Client,
    server: &Child,
    tally: &Tally,
    running: &AtomicBool,
    r: usize,
) -> anyhow::Result<()> {
    let word = workload::COMMON_WORD;
    let mut i = r;
    while running.load(Ordering::Relaxed) {
        let now_ns = logbook_core::Timestamp::now().micros() as i128 * 1000;
        let path = match i % 6 {
            0 => "/logbook/v1/records?limit=20".to_string(),
            1 => "/logbook/v1/records/count?category=network&min_level=WARN".to_string(),
            2 => format!("/logbook/v1/records?q={word}&limit=20"),
            3 => "/logbook/v1/records?category=image&min_level=ERROR&limit=50".to_string(),
            4 => format!(
                "/loki/api/v1/query_range?query=%7Bcategory%3D%22container%22%7D%20%7C%3D%20%22{word}%22&limit=100&start={}&end={now_ns}",
                now_ns - 300_000_000_000
            ),
            _ => format!("/api/v1/log?text={word}&limit=50"),
        };
        i += 1;
        match http
            .get(server.url(&path))
            .bearer_auth(server.token())
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                let retry = response.headers().contains_key("retry-after");
                let _ = response.bytes().await;
                if !tally.answer(status, retry, 200) && !status.is_server_error() {
                    eprintln!("soak: {path} answered {status}");
                }
            }
            Err(_) => {
                tally.requests.fetch_add(1, Ordering::Relaxed);
                tally.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// One SSE subscriber: reads events, remembering the last `id:`, and every `period`
/// drops the connection and resumes with `Last-Event-ID` from there.
async fn subscribe(
    server: &Child,
    tally: &Tally,
    running: &AtomicBool,
    s: usize,
    offset: Duration,
    period: Duration,
) -> anyhow::Result<()> {
    const FILTERS: [&str; 4] = [
        "min_level=WARN",
        "category=network",
        "category=image&min_level=ERROR",
        "q=container",
    ];
    let address = server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut last_id: Option<i64> = None;
    let mut first = true;
    while running.load(Ordering::Relaxed) {
        let resume = last_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /logbook/v1/stream?{} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n{resume}\r\n",
            FILTERS[s % FILTERS.len()],
            server.token()
        );
        let lasts = if first {
            offset.max(Duration::from_secs(1))
        } else {
            period
        };
        first = false;
        let until = Instant::now() + lasts;
        let Ok(mut socket) = TcpStream::connect(&address).await else {
            tally.failures.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        if last_id.is_some() {
            tally.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        socket.write_all(request.as_bytes()).await?;
        let mut buffer = vec![0u8; 16 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut head = true;
        while running.load(Ordering::Relaxed) && Instant::now() < until {
            let read = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buffer));
            let n = match read.await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    tally.failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Ok(n)) => n,
                Err(_) => continue,
            };
            pending.extend_from_slice(&buffer[..n]);
            if head {
                let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let status = String::from_utf8_lossy(&pending[..end]).to_string();
                if !status.starts_with("HTTP/1.1 200") {
                    let code = status
                        .split_whitespace()
                        .nth(1)
                        .and_then(|c| c.parse::<u16>().ok())
                        .unwrap_or(0);
                    let code = reqwest::StatusCode::from_u16(code)
                        .unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
                    tally.answer(
                        code,
                        status.to_ascii_lowercase().contains("retry-after"),
                        200,
                    );
                    break;
                }
                tally.requests.fetch_add(1, Ordering::Relaxed);
                pending.drain(..end + 4);
                head = false;
            }
            // Whole lines only; the rest waits for the next read.
            let Some(cut) = pending.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            for line in pending[..cut].split(|b| *b == b'\n') {
                if let Some(id) = line.strip_prefix(b"id: ") {
                    if let Some(id) = std::str::from_utf8(id)
                        .ok()
                        .and_then(|t| t.trim().parse::<i64>().ok())
                    {
                        tally.events.fetch_add(1, Ordering::Relaxed);
                        // A chunk header of the chunked body can cut an `id:` line;
                        // its first part is then a smaller number, never a larger one.
                        last_id = Some(last_id.map_or(id, |last| last.max(id)));
                    }
                }
            }
            pending.drain(..=cut);
        }
    }
    Ok(())
}
