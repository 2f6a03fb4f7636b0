//! `GET /metrics`: the node's figures in the Prometheus (OpenMetrics) text format,
//! with `prometheus-client`. One [`Metrics`] per node (in `AppState`), so nodes in
//! one process (the tests) keep their own. Requests are counted and timed by
//! [`layer`] (route = the matched path pattern, so ids do not explode the series);
//! ingested records by `ingest` (kind, and the protocol the request came through);
//! gauges (store size and records, the tiers and the sealer's backlog, stream
//! subscribers, disk free) are read when
//! scraped. Served on the API's port to administrators and auditors (it sums every
//! tenant), or without credentials on `--metrics-listen` ([`router`]).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use logbook_core::{Kind, Query};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

tokio::task_local! {
    /// The protocol of the request being handled (`native`, `loki`, ...), for the
    /// ingest counter.
    pub static PROTOCOL: &'static str;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabels {
    kind: String,
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AllocatorLabels {
    stat: &'static str,
}

/// What the process's allocator holds, in bytes (jemalloc's `stats.*`), for a
/// binary whose global allocator can say ([`crate::state::Config::allocator_stats`]):
/// the heap the program uses against the memory the allocator keeps for it tells
/// a growing heap from fragmentation or memory not yet given back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes in the pages those allocations occupy.
    pub active: u64,
    /// Bytes of the allocator's memory that are resident (its share of RSS).
    pub resident: u64,
    /// Bytes mapped and not returned to the kernel, though not resident.
    pub retained: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    rejected: Family<RequestLabels, Counter>,
    shed: Family<ReasonLabels, Counter>,
    idle_connections_closed: Counter,
    admitted_writes: Histogram,
    write_limit: Gauge,
    ingested: Family<IngestLabels, Counter>,
    batch_records: Histogram,
    in_flight: Gauge,
    subscribers: Gauge,
    disk_free: Gauge,
    disk_low: Gauge,
    store_bytes: Family<KindLabels, Gauge>,
    store_records: Family<KindLabels, Gauge>,
    high_water: Gauge,
    tier_records: Family<TierLabels, Gauge>,
    sealed_blocks: Gauge,
    sealer_backlog: Gauge,
    allocator: Family<AllocatorLabels, Gauge>,
    stream_lags: Counter,
    lags_seen: AtomicU64,
    writes_full: Gauge,
    queue_depth: Gauge,
    commits: Counter,
    committed_jobs: Counter,
    /// The writer's totals at the last scrape, so the counters add the difference.
    writer_seen: std::sync::Mutex<(u64, u64)>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logbook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response's head, by route",
            latency.clone(),
        );
        let rejected = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_rejected_requests",
            "Requests answered 4xx, by route and status",
            rejected.clone(),
        );
        let shed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_shed_requests",
            "Requests refused at once for load (503/429), by reason",
            shed.clone(),
        );
        let admitted_writes = latency_histogram();
        registry.register(
            "http_admitted_write_duration_seconds",
            "Time from admission by the write budget to the response's head, of writes admitted",
            admitted_writes.clone(),
        );
        let write_limit = Gauge::default();
        registry.register(
            "http_write_limit",
            "Writes the node admits at once now, as the delay of admitted writes moves it (limits, delay_limit)",
            write_limit.clone(),
        );
        let idle_connections_closed = Counter::default();
        registry.register(
            "http_idle_connections_closed",
            "Idle keep-alive connections closed at the connection cap to make room for a new one",
            idle_connections_closed.clone(),
        );
        let ingested = Family::<IngestLabels, Counter>::default();
        registry.register(
            "records_ingested",
            "Records written, by kind and protocol",
            ingested.clone(),
        );
        let batch_records = Histogram::new(exponential_buckets(1.0, 4.0, 9));
        registry.register(
            "ingest_batch_records",
            "Records per acknowledged write",
            batch_records.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being handled",
            in_flight.clone(),
        );
        let subscribers = Gauge::default();
        registry.register(
            "stream_subscribers",
            "Live stream subscribers",
            subscribers.clone(),
        );
        let stream_lags = Counter::default();
        registry.register(
            "stream_lags",
            "Times a subscriber fell behind and caught up from the store",
            stream_lags.clone(),
        );
        let disk_free = Gauge::default();
        registry.register(
            "disk_free_bytes",
            "Free bytes on the data directory's disk (-1: not measured)",
            disk_free.clone(),
        );
        let disk_low = Gauge::default();
        registry.register(
            "disk_low",
            "1 while free space is below --min-free-bytes",
            disk_low.clone(),
        );
        let writes_full = Gauge::default();
        registry.register(
            "store_writes_failing_disk_full",
            "1 while writes fail for lack of space",
            writes_full.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "store_write_queue_depth",
            "Write jobs waiting in the store's writer queue (embedded store)",
            queue_depth.clone(),
        );
        let commits = Counter::default();
        registry.register(
            "store_group_commits",
            "Transactions the store's writer has run (embedded store)",
            commits.clone(),
        );
        let committed_jobs = Counter::default();
        registry.register(
            "store_group_commit_jobs",
            "Write jobs those transactions carried; jobs / commits is the mean group size",
            committed_jobs.clone(),
        );
        let store_bytes = Family::<KindLabels, Gauge>::default();
        registry.register(
            "store_size_bytes",
            "Bytes the records of a kind take on disk",
            store_bytes.clone(),
        );
        let store_records = Family::<KindLabels, Gauge>::default();
        registry.register(
            "store_records",
            "Records in the store, by kind",
            store_records.clone(),
        );
        let high_water = Gauge::default();
        registry.register(
            "store_high_water_id",
            "The highest committed record id",
            high_water.clone(),
        );
        let tier_records = Family::<TierLabels, Gauge>::default();
        registry.register(
            "store_tier_records",
            "Records in the hot tier (rows) and in sealed blocks",
            tier_records.clone(),
        );
        let sealed_blocks = Gauge::default();
        registry.register(
            "store_sealed_blocks",
            "Sealed blocks in the store",
            sealed_blocks.clone(),
        );
        let sealer_backlog = Gauge::default();
        registry.register(
            "sealer_backlog_records",
            "Hot records beyond the hot tier's bound, not yet sealed: the sealer's lag",
            sealer_backlog.clone(),
        );
        let allocator = Family::<AllocatorLabels, Gauge>::default();
        registry.register(
            "allocator_bytes",
            "What the memory allocator holds, by stat: allocated (live heap), active, resident, retained",
            allocator.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            rejected,
            shed,
            idle_connections_closed,
            admitted_writes,
            write_limit,
            ingested,
            batch_records,
            in_flight,
            subscribers,
            disk_free,
            disk_low,
            store_bytes,
            store_records,
            high_water,
            tier_records,
            sealed_blocks,
            sealer_backlog,
            allocator,
            stream_lags,
            lags_seen: AtomicU64::new(0),
            writes_full,
            queue_depth,
            commits,
            committed_jobs,
            writer_seen: std::sync::Mutex::new((0, 0)),
        }
    }

    /// Counts an acknowledged write of `records` of each kind.
    pub fn ingested(&self, kinds: impl IntoIterator<Item = Kind>) {
        let protocol = PROTOCOL.try_with(|p| *p).unwrap_or("other");
        let mut total = 0u64;
        for kind in kinds {
            total += 1;
            self.ingested
                .get_or_create(&IngestLabels {
                    kind: kind.name().to_string(),
                    protocol: protocol.to_string(),
                })
                .inc();
        }
        if total > 0 {
            self.batch_records.observe(total as f64);
        }
    }

    /// Counts a request refused at once for load.
    pub fn shed(&self, reason: &str) {
        self.shed
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Times a write the write budget admitted, to its response's head.
    pub fn admitted_write(&self, took: std::time::Duration) {
        self.admitted_writes.observe(took.as_secs_f64());
    }

    /// Counts an idle connection closed at the connection cap for a new one.
    pub fn idle_connection_closed(&self) {
        self.idle_connections_closed.inc();
    }

    /// Reads the gauges and renders everything.
    async fn render(&self, state: &AppState) -> Result<String, ApiError> {
        let (subscribers, _) = state.streams.counts();
        self.subscribers.set(subscribers as i64);
        let lags = state.streams.lags();
        let seen = self.lags_seen.swap(lags, Ordering::Relaxed);
        self.stream_lags.inc_by(lags.saturating_sub(seen));
        let free = state.disk.free_bytes.load(Ordering::Relaxed);
        self.disk_free
            .set(i64::try_from(free).map_or(-1, |v| if free == u64::MAX { -1 } else { v }));
        self.disk_low
            .set(i64::from(state.disk.low.load(Ordering::Relaxed)));
        self.write_limit
            .set(i64::try_from(state.budgets.write_limit()).unwrap_or(i64::MAX));
        let full = state.store.write_state().borrow().full.is_some();
        self.writes_full.set(i64::from(full));
        if let Some(stats) = state.store.writer_stats() {
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            self.queue_depth.set(gauge(stats.queue_depth));
            let mut seen = self.writer_seen.lock().unwrap_or_else(|p| p.into_inner());
            self.commits.inc_by(stats.commits.saturating_sub(seen.0));
            self.committed_jobs
                .inc_by(stats.jobs.saturating_sub(seen.1));
            *seen = (stats.commits.max(seen.0), stats.jobs.max(seen.1));
        }
        if let Some(stats) = state.config.allocator_stats.and_then(|read| read()) {
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            for (stat, bytes) in [
                ("allocated", stats.allocated),
                ("active", stats.active),
                ("resident", stats.resident),
                ("retained", stats.retained),
            ] {
                self.allocator
                    .get_or_create(&AllocatorLabels { stat })
                    .set(gauge(bytes));
            }
        }
        self.high_water.set(state.store.high_water().await?);
        if let Some(figures) = state.store.tier_figures().await? {
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let status = figures.status;
            for (tier, records) in [
                ("hot", status.hot_records),
                ("sealed", status.sealed_records),
            ] {
                self.tier_records
                    .get_or_create(&TierLabels { tier })
                    .set(gauge(records));
            }
            self.sealed_blocks.set(gauge(status.blocks));
            self.sealer_backlog.set(gauge(figures.sealer_backlog()));
        }
        for kind in [Kind::Log, Kind::Event, Kind::Journal] {
            let labels = KindLabels {
                kind: kind.name().to_string(),
            };
            let bytes = state.store.size_on_disk(kind).await?;
            self.store_bytes
                .get_or_create(&labels)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            let count = state.store.count(&Query::default().kinds(&[kind])).await?;
            self.store_records
                .get_or_create(&labels)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| ApiError::internal(format!("cannot render the metrics: {e}")))?;
        Ok(out)
    }
}

/// The protocol a path belongs to, for the ingest counter.
fn protocol_of(path: &str) -> &'static str {
    if path.starts_with("/logbook/") {
        "native"
    } else if path.starts_with("/loki/") {
        "loki"
    } else if path.starts_with("/v1/logs") {
        "otlp"
    } else if path.starts_with("/es/") || path.starts_with("/_bulk") {
        "elastic"
    } else if path.starts_with("/upload") {
        "journald"
    } else if path.starts_with("/api/system-logs") {
        "waldur"
    } else if path.starts_with("/api/audit/") {
        "dockercloud"
    } else if path.starts_with("/api/") {
        "qnap"
    } else if path.contains("/journal") {
        "journal"
    } else {
        "other"
    }
}

/// `axum::middleware::from_fn_with_state`: counts and times every request.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = &state.metrics;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let protocol = protocol_of(request.uri().path());
    let started = Instant::now();
    metrics.in_flight.inc();
    let response = PROTOCOL.scope(protocol, next.run(request)).await;
    metrics.in_flight.dec();
    let status = response.status().as_u16();
    let labels = RequestLabels {
        route: route.clone(),
        method,
        status,
    };
    metrics.requests.get_or_create(&labels).inc();
    if (400..500).contains(&status) {
        metrics.rejected.get_or_create(&labels).inc();
    }
    metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

fn exposition(text: String) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// `GET /metrics` on the API's port: administrators and auditors.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics in the OpenMetrics text format (administrators and auditors)",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
pub async fn authenticated(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    if !principal.role.reads_every_domain() {
        return Err(ApiError::forbidden(
            "only administrators and auditors may read the metrics",
        ));
    }
    Ok(exposition(state.metrics.render(&state).await?))
}

async fn open(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(exposition(state.metrics.render(&state).await?))
}

/// The router of `--metrics-listen`: `GET /metrics` without credentials (bind it
/// where only the monitoring system reaches).
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(open))
        .with_state(state)
}
