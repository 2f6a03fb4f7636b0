//! Realistic records for the benchmark: container-platform log lines of 60-150
//! characters, skewed levels, a few hundred users, some events and journal entries.
//! Deterministic (a fixed-seed generator), so every run and every baseline sees the
//! same rows.

use serde_json::{json, Value};

/// A word that appears in about a third of the messages.
pub const COMMON_WORD: &str = "container";
/// A word that never appears.
pub const ABSENT_WORD: &str = "zebrafish";

const CATEGORIES: [&str; 12] = [
    "image",
    "container",
    "network",
    "volume",
    "export",
    "auth",
    "scheduler",
    "node",
    "registry",
    "backup",
    "app",
    "system",
];
const SOURCES: [&str; 3] = ["api", "worker", "beat"];
const LOGGERS: [&str; 6] = [
    "platform.api.containers",
    "platform.api.images",
    "platform.worker.tasks",
    "platform.scheduler",
    "platform.auth",
    "platform.storage",
];
const IMAGES: [&str; 8] = [
    "nginx:1.25",
    "postgres:15",
    "redis:7-alpine",
    "python:3.11-slim",
    "grafana/grafana:10.2",
    "busybox:latest",
    "node:20",
    "registry.internal/billing-api:4.17.2",
];

pub struct Workload {
    state: u64,
    produced: u64,
    start_micros: i64,
}

impl Workload {
    /// Records with timestamps one millisecond apart, ending about now for `total`.
    pub fn new(total: u64) -> Workload {
        let now = logbook_core::Timestamp::now().micros();
        Workload {
            state: 0x9E37_79B9_7F4A_7C15,
            produced: 0,
            start_micros: now - (total as i64) * 1000,
        }
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

    fn level(&mut self) -> &'static str {
        match self.below(100) {
            0..=4 => "DEBUG",
            5..=79 => "INFO",
            80..=91 => "WARN",
            92..=98 => "ERROR",
            _ => "CRITICAL",
        }
    }

    fn message(&mut self) -> String {
        let id = self.next_u64() & 0xffff_ffff_ffff;
        let node = self.below(24);
        let image = self.pick(&IMAGES);
        match self.below(8) {
            0 => format!("container {id:012x} started on node-{node:02} from image {image} (restart policy always)"),
            1 => format!("pulled image {image} in {} ms, {} layers, digest sha256:{id:012x}", self.below(9000), self.below(12)),
            2 => format!("health check for container {id:012x} failed: connection refused on port {} after 3 retries", 1024 + self.below(60000)),
            3 => format!("GET /api/v1/projects/{}/volumes returned {} in {} ms for request req-{id:012x}", self.below(5000), [200, 200, 200, 404, 500][self.below(5) as usize], self.below(800)),
            4 => format!("scheduled job backup-{id:x} on node-{node:02}; next run in {} minutes", self.below(120)),
            5 => format!("volume vol-{id:x} attached to node-{node:02} at /var/lib/platform/volumes/{id:x}"),
            6 => format!("user session refreshed, token expires in {} seconds; policy default-{}", self.below(86400), self.below(40)),
            _ => format!("network overlay-{} reconciled: {} endpoints, {} peers, mtu 1450, vxlan id {}", self.below(64), self.below(300), self.below(24), self.below(4096)),
        }
    }

    /// The next record, as a client would send it to the native API.
    pub fn next_record(&mut self) -> Value {
        let ts = self.start_micros + (self.produced as i64) * 1000;
        self.produced += 1;
        let ts = logbook_core::Timestamp(ts).rfc3339();
        let user = (self.below(2) == 0).then(|| format!("user{:03}", self.below(300)));
        let category = self.pick(&CATEGORIES);
        match self.below(100) {
            0..=89 => json!({
                "kind": "log",
                "ts": ts,
                "level": self.level(),
                "category": category,
                "source": self.pick(&SOURCES),
                "instance": format!("node-{:02}", self.below(24)),
                "logger": self.pick(&LOGGERS),
                "user": user,
                "message": self.message(),
            }),
            90..=97 => {
                let id = format!("{:016x}", self.next_u64());
                let state = ["start", "stop", "die", "create", "restart"][self.below(5) as usize];
                json!({
                    "kind": "event",
                    "ts": ts,
                    "category": "container",
                    "user": user,
                    "object_type": "docker",
                    "object_id": id,
                    "message": format!("container {id} {state}"),
                    "data": {"type": "docker", "container": format!("app-{}", self.below(500)), "id": id, "state": state},
                })
            }
            _ => {
                let action = ["create", "delete", "reboot", "resize"][self.below(4) as usize];
                json!({
                "kind": "journal",
                "ts": ts,
                "user": user.unwrap_or_else(|| "admin".into()),
                "object_type": "server",
                "object_id": format!("{:032x}", self.next_u64()),
                "action": action,
                "status": "success",
                "response_code": "200",
                "request_id": format!("req-{:012x}", self.next_u64() & 0xffff_ffff_ffff),
                "message": self.message(),
                })
            }
        }
    }
}
