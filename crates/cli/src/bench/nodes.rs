//! Several nodes writing at once on one PostgreSQL database (`--database URL
//! --nodes N`): 1, 2, ... N `logbook serve` processes on the benchmark's schema, the
//! same NDJSON batches and single-record POSTs spread over them, and the aggregate
//! rate with each node's p99 per request. What it shows: whether a second or third
//! node adds throughput or only waiting.

use super::measure::{ms, percentile};
use super::node::Child;
use super::workload::Workload;
use super::BenchArgs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the phase for 1..=`args.nodes` nodes on `node_url`.
pub async fn run(
    http: &reqwest::Client,
    args: &BenchArgs,
    node_url: &str,
    records: u64,
) -> anyhow::Result<()> {
    println!("\n== nodes writing at once on one database ==");
    let mut workload = Workload::new(records);
    for n in 1..=args.nodes.max(1) {
        let nodes: Vec<Child> = (0..n)
            .map(|_| Child::serve_with(&["--database", node_url]))
            .collect::<anyhow::Result<_>>()?;
        let bodies: Arc<Vec<String>> = Arc::new(
            (0..records.div_ceil(args.batch as u64))
                .map(|_| workload.ndjson(args.batch as u64))
                .collect(),
        );
        let rows = bodies.len() as u64 * args.batch as u64;
        let pids: Vec<u32> = nodes.iter().map(Child::pid).collect();
        let (nodes_before, database_before) = (cpu_seconds(&pids), database_cpu_seconds());
        let (elapsed, p99) = spread(http, &nodes, args.uploaders, bodies.len() as u64, {
            let bodies = Arc::clone(&bodies);
            move |i| Request::Batch(bodies[i as usize].clone())
        })
        .await?;
        let per_100k = 100_000.0 / rows as f64;
        println!(
            "{n} node(s), NDJSON batches of {} ({} uploaders per node): {:.0} records/s in all; p99 per batch by node: {}; CPU per 100k records: nodes {:.1} s, PostgreSQL {:.1} s (all its processes)",
            args.batch,
            args.uploaders,
            rows as f64 / elapsed.as_secs_f64(),
            p99.iter().map(|d| format!("{:.0} ms", ms(*d))).collect::<Vec<_>>().join(", "),
            (cpu_seconds(&pids) - nodes_before) * per_100k,
            (database_cpu_seconds() - database_before) * per_100k,
        );
        let singles = args.single_posts / 2;
        let per_node_clients = (args.clients / n).max(1);
        let (nodes_before, database_before) = (cpu_seconds(&pids), database_cpu_seconds());
        let (elapsed, p99) = spread(http, &nodes, per_node_clients, singles, |i| {
            Request::Single(format!(
                "{{\"kind\":\"log\",\"level\":\"info\",\"message\":\"single post {i}\"}}"
            ))
        })
        .await?;
        let per_10k = 10_000.0 / singles as f64;
        println!(
            "{n} node(s), single-record POSTs ({} clients in all): {:.0}/s in all; p99 by node: {}; CPU per 10k POSTs: nodes {:.1} s, PostgreSQL {:.1} s",
            per_node_clients * n,
            singles as f64 / elapsed.as_secs_f64(),
            p99.iter()
                .map(|d| format!("{:.1} ms", ms(*d)))
                .collect::<Vec<_>>()
                .join(", "),
            (cpu_seconds(&pids) - nodes_before) * per_10k,
            (database_cpu_seconds() - database_before) * per_10k,
        );
    }
    Ok(())
}

enum Request {
    Batch(String),
    Single(String),
}

/// Sends `count` requests made by `make`, `per_node` at a time on each node;
/// returns the wall time and each node's p99.
async fn spread(
    http: &reqwest::Client,
    nodes: &[Child],
    per_node: usize,
    count: u64,
    make: impl Fn(u64) -> Request + Send + Sync + 'static,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let next = Arc::new(AtomicU64::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        for _ in 0..per_node {
            let (http, next, make) = (http.clone(), Arc::clone(&next), Arc::clone(&make));
            let url = node.url("/logbook/v1/records");
            let token = node.token().to_string();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return anyhow::Ok((index, latencies));
                    }
                    let (content_type, body) = match make(i) {
                        Request::Batch(body) => ("application/x-ndjson", body),
                        Request::Single(body) => ("application/json", body),
                    };
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", content_type)
                        .body(body)
                        .send()
                        .await?;
                    let status = response.status();
                    let text = response.text().await?;
                    anyhow::ensure!(status == 201, "answered {status}: {text}");
                    latencies.push(sent.elapsed());
                }
            }));
        }
    }
    let mut by_node: Vec<Vec<Duration>> = vec![Vec::new(); nodes.len()];
    for task in tasks {
        let (index, latencies) = task.await??;
        by_node[index].extend(latencies);
    }
    let elapsed = started.elapsed();
    let p99 = by_node
        .iter_mut()
        .map(|samples| percentile(samples, 99.0))
        .collect();
    Ok((elapsed, p99))
}

/// CPU time (user + system) the processes have used, in seconds, from /proc.
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|pid| process_cpu(*pid)).sum()
}

/// CPU time of every process named `postgres` (the server and its backends; on a
/// shared machine that includes other clients' work, so it is an upper bound).
fn database_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim() == "postgres")
        })
        .filter_map(process_cpu)
        .sum()
}

/// utime + stime of one process (fields 14 and 15 of /proc/PID/stat), assuming the
/// usual 100 clock ticks per second.
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
