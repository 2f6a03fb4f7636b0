//! Small measuring tools: latency percentiles, a process's memory, a directory's size.

use std::path::Path;
use std::time::Duration;

/// The p-th percentile (0..=100) of the samples, which it sorts.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// Resident and peak-resident memory of a process, in bytes, from /proc.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    size_of_files(dir, &|_| true)
}

/// Bytes of the write-ahead logs under `dir`: bounded (the store checkpoints every
/// 10000 pages), so reported apart from the per-record size they are part of.
pub fn wal_size(dir: &Path) -> u64 {
    size_of_files(dir, &|name| name.ends_with("-wal"))
}

/// Bytes of the files under `dir`, at any depth, whose names `counts`.
fn size_of_files(dir: &Path, counts: &dyn Fn(&str) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => size_of_files(&e.path(), counts),
            Ok(m) if counts(&e.file_name().to_string_lossy()) => m.len(),
            Ok(_) | Err(_) => 0,
        })
        .sum()
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A field of /proc/PID/status given in kB (`VmRSS`, `RssAnon`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.split(':').next() == Some(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time a process has used (user and system), from /proc/PID/stat; Linux
/// counts it in USER_HZ, 100 a second on every architecture it runs on.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces; the fields follow it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The process's open file descriptors (sockets, the store's files).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Samples a process's RSS every `every` until aborted, keeping the highest seen:
/// VmHWM cannot be reset, so a phase's own peak needs sampling.
pub fn watch_peak(
    pid: u32,
    every: Duration,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let peak = std::sync::Arc::new(AtomicU64::new(0));
    let watching = {
        let peak = std::sync::Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                if let Some(rss) = status_bytes(pid, "VmRSS") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    (peak, watching)
}

/// The value of one series in an OpenMetrics text, named with its labels as the
/// text writes them (`logbook_store_tier_records{tier="hot"}`).
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// A histogram's cumulative buckets (`le` bound, count) from an OpenMetrics text.
pub fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket holding the p-th percentile of what was observed
/// between two scrapes of a histogram's buckets (`histogram_buckets`).
pub fn bucket_percentile(before: &[(f64, u64)], after: &[(f64, u64)], p: f64) -> Option<f64> {
    let counts: Vec<(f64, u64)> = after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0, |(_, c)| *c);
            (bound, count.saturating_sub(earlier))
        })
        .collect();
    let total = counts.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = (p / 100.0 * total as f64).ceil() as u64;
    counts
        .iter()
        .find(|(_, count)| *count >= rank.max(1))
        .map(|(bound, _)| *bound)
}
