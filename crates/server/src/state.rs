//! What every handler can reach, and the settings a node runs with. This module sits
//! beneath everything else in the crate: it holds the store and the few shared
//! pieces of per-node state (login throttle, object wake-ups, the stream hub), and imports nothing
//! that handles a request, so every layer above can depend on it without a cycle.

use crate::auth::rate_limit::{LoginLimits, LoginThrottle};
use crate::disk::DiskStatus;
use crate::integrity::Integrity;
use crate::object_watch::ObjectWatch;
use crate::stream::hub::{Hub, LIVE_QUEUE};
use logbook_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Settings a node runs with; see the README's configuration table.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Whether the node is served over TLS (cookies get `Secure`).
    pub tls: bool,
    /// Failed logins allowed per account and per address before 429.
    pub login_limits: LoginLimits,
    /// Live records a stream subscriber may have queued; one that falls further
    /// behind catches up from the store instead (nothing is dropped either way).
    pub live_queue: usize,
    /// The embedded store's data directory, whose free space is watched (`None`
    /// on PostgreSQL, whose disk is the database server's).
    pub data_dir: Option<PathBuf>,
    /// Free bytes below which the node warns (log and metric).
    pub min_free_bytes: u64,
    /// How long an `Idempotency-Key` and its answer are kept.
    pub idempotency_ttl: Duration,
    /// Request body bytes in flight across all requests before 503 ([`crate::limits`]).
    pub max_in_flight_body_bytes: usize,
    /// Writes in flight before 503.
    pub max_in_flight_writes: usize,
    /// Delay of admitted writes (body in to answer) that, exceeded by every write
    /// for `write_delay_interval`, cuts the writes admitted at once ([`crate::delay_limit`]).
    pub write_delay_target: Duration,
    pub write_delay_interval: Duration,
    /// Longest wait for the next piece of a request body before 408.
    pub body_read_timeout: Duration,
    /// Reads the process allocator's figures for `/metrics`; set by a binary whose
    /// global allocator can report them (the `logbook` binary's jemalloc).
    pub allocator_stats: Option<fn() -> Option<crate::metrics::AllocatorStats>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 16 * 1024 * 1024,
            session_ttl: Duration::from_secs(12 * 3600),
            tls: false,
            login_limits: LoginLimits::default(),
            live_queue: LIVE_QUEUE,
            data_dir: None,
            min_free_bytes: 1024 * 1024 * 1024,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            // About 7x of it is what parsing takes at most: 32 MiB fits 200 MB.
            max_in_flight_body_bytes: 16 * 1024 * 1024,
            max_in_flight_writes: 256,
            // Above what a busy but not overloaded node makes writes wait (with
            // 20 ms, `logbook bench`'s 64 closed-loop clients were refused on a
            // machine shared with a build); a standing queue beyond it is overload.
            write_delay_target: Duration::from_millis(250),
            write_delay_interval: Duration::from_millis(100),
            body_read_timeout: Duration::from_secs(30),
            allocator_stats: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Turns true when the node shuts down, so long-lived streams and waits end.
    pub shutdown: watch::Receiver<bool>,
    /// Failed-login counters of this node.
    pub logins: Arc<LoginThrottle>,
    /// Per-object wake-ups for requests that wait on an object.
    pub object_watch: Arc<ObjectWatch>,
    /// The live side of every record stream.
    pub streams: Arc<Hub>,
    /// Free space of the data directory, as last measured.
    pub disk: Arc<DiskStatus>,
    /// The node's figures for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Budgets of bytes and writes in flight.
    pub budgets: Arc<crate::limits::Budgets>,
    /// The signing key, the tree's cached subtree roots, retention.
    pub integrity: Arc<Integrity>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The node's state; within a Tokio runtime, also starts the disk watchers
    /// ([`crate::disk`]).
    pub fn new(store: Arc<dyn Store>, config: Config, shutdown: watch::Receiver<bool>) -> AppState {
        let budgets = Arc::new(crate::limits::Budgets::new(
            config.max_in_flight_body_bytes,
            config.max_in_flight_writes,
            crate::limits::DelayTarget {
                target: config.write_delay_target,
                interval: config.write_delay_interval,
            },
        ));
        let state = AppState {
            store,
            logins: Arc::new(LoginThrottle::new(config.login_limits.clone())),
            streams: Arc::new(Hub::new(config.live_queue)),
            config: Arc::new(config),
            shutdown,
            object_watch: Arc::default(),
            disk: Arc::new(DiskStatus::new()),
            metrics: Arc::default(),
            budgets,
            integrity: Arc::new(Integrity::ephemeral()),
        };
        crate::disk::start(&state);
        state
    }

    /// With the node's signing key and checkpoint and retention settings (a node
    /// started without them signs with a key that lives only in memory).
    pub fn with_integrity(mut self, integrity: Integrity) -> AppState {
        self.integrity = Arc::new(integrity);
        self
    }
}
