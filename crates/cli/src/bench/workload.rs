//! The benchmark's records: the container-platform log lines of
//! `/work/shared/bench/gen.py` (the generator the issues' peer figures and disk
//! targets were measured with), same fields, vocabulary and distributions, about 271
//! bytes each as NDJSON, 10 ms apart. Deterministic (a fixed-seed generator of our
//! own, so not byte-identical to gen.py's), so every run and every baseline sees the
//! same rows.

use serde_json::{json, Value};

/// A word in about one message in eight (a noun of the message).
pub const COMMON_WORD: &str = "container";
/// A word that never appears.
pub const ABSENT_WORD: &str = "zebrafish";
/// Microseconds between consecutive records' timestamps.
pub const TS_STEP_MICROS: i64 = 10_000;

const CATEGORIES: [&str; 8] = [
    "container",
    "image",
    "import",
    "export",
    "backup",
    "system",
    "network",
    "volume",
];
const VERBS: [&str; 13] = [
    "Create", "Start", "Stop", "Restart", "Destroy", "Pull", "Push", "Export", "Import", "Backup",
    "Restore", "Attach", "Detach",
];
const NOUNS: [&str; 8] = [
    "container",
    "image",
    "volume",
    "network",
    "snapshot",
    "backup target",
    "registry",
    "node",
];
const TAILS: [&str; 12] = [
    "finished",
    "started",
    "queued",
    "failed with exit code 1",
    "completed in 231 ms",
    "retrying",
    "skipped: already exists",
    "from dockerhub",
    "to /share/Container/exports",
    "on node qnap-ts-453",
    "by scheduler",
    "after health check",
];

pub struct Workload {
    state: u64,
    produced: u64,
    start_micros: i64,
}

impl Workload {
    /// Records whose timestamps end about now after `total` of them.
    pub fn new(total: u64) -> Workload {
        let now = logbook_core::Timestamp::now().micros();
        // Whole seconds, so timestamps print as gen.py's do (`1760000000.01`).
        let start = now - (total as i64) * TS_STEP_MICROS;
        Workload {
            state: 0x9E37_79B9_7F4A_7C15,
            produced: 0,
            start_micros: start - start.rem_euclid(1_000_000),
        }
    }

    /// The timestamp of the record numbered `n` (from 0).
    pub fn ts_of(&self, n: u64) -> logbook_core::Timestamp {
        logbook_core::Timestamp(self.start_micros + n as i64 * TS_STEP_MICROS)
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: fast, deterministic, good enough for picking words.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// 80% INFO, 12% WARN, 6% ERROR, 2% DEBUG, as gen.py.
    fn level(&mut self) -> &'static str {
        match self.below(100) {
            0..=79 => "INFO",
            80..=91 => "WARN",
            92..=97 => "ERROR",
            _ => "DEBUG",
        }
    }

    fn message(&mut self) -> String {
        let verb = self.pick(&VERBS);
        let noun = self.pick(&NOUNS);
        let runtime = ["docker", "lxc"][self.below(2) as usize];
        let id = self.next_u64() >> 16;
        let app = self.below(500);
        let tail = self.pick(&TAILS);
        let mut message = format!("{verb} {noun} ({runtime}, {id:012x}, app{app}) {tail}");
        if self.below(100) == 0 {
            message.push_str(" after timeout waiting for daemon");
        }
        while message.len() < 60 {
            message.push(' ');
            message.push_str(self.pick(&TAILS));
        }
        message.truncate(150);
        message
    }

    /// The next record, as a client would send it to the native API.
    pub fn next_record(&mut self) -> Value {
        let micros = self.ts_of(self.produced).micros();
        self.produced += 1;
        // Epoch seconds with two decimals, a JSON number, as gen.py writes them.
        let ts = micros as f64 / 1_000_000.0;
        let level = self.level();
        let message = self.message();
        json!({
            "kind": "log",
            "ts": ts,
            "level": level,
            "category": self.pick(&CATEGORIES),
            "user": format!("user{}", self.below(200)),
            "instance": format!("node-{}", self.below(20)),
            "logger": format!("cs.{}.{}", self.pick(&CATEGORIES), self.below(4)),
            "message": message,
            "data": {
                "request_id": format!("{:016x}", self.next_u64()),
                "duration_ms": self.below(5000),
            },
        })
    }

    /// The next `n` records as one NDJSON body.
    pub fn ndjson(&mut self, n: u64) -> String {
        let mut body = String::with_capacity(n as usize * 300);
        for _ in 0..n {
            body.push_str(&self.next_record().to_string());
            body.push('\n');
        }
        body
    }
}
