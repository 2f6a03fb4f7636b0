//! `logbook serve`: run a node until SIGTERM/SIGINT, then finish in-flight requests
//! (so every acknowledged write is durable) and stop.

use crate::store::{self, StoreArgs, TierArgs};
use clap::Args;
use logbook_server::auth::{ensure_admin, Bootstrap};
use logbook_server::connections::{serve, ConnectionCap};
use logbook_server::integrity::{self, retention, Integrity, IntegrityConfig};
use logbook_server::{router, AppState, Config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "LOGBOOK_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    tiers: TierArgs,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "LOGBOOK_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: usize,
    /// How long a login session lasts, in seconds.
    #[arg(long, env = "LOGBOOK_SESSION_TTL", default_value_t = 12 * 3600)]
    session_ttl: u64,
    /// PEM certificate chain: serve HTTPS directly (with --tls-key).
    #[arg(long, env = "LOGBOOK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "LOGBOOK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Failed logins allowed per account within 15 minutes before 429.
    #[arg(long, env = "LOGBOOK_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    login_failures_per_account: usize,
    /// Failed logins allowed per client address within 15 minutes before 429.
    #[arg(long, env = "LOGBOOK_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 20)]
    login_failures_per_address: usize,
    /// Free bytes on the data directory's disk below which the server warns (log
    /// and the `logbook_disk_low` metric).
    #[arg(long, env = "LOGBOOK_MIN_FREE_BYTES", default_value_t = 1024 * 1024 * 1024)]
    min_free_bytes: u64,
    /// Also serve `GET /metrics` without credentials on this address (for the
    /// monitoring system; on the API's port it needs an admin's or auditor's).
    #[arg(long, env = "LOGBOOK_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Request body bytes in flight across all requests; a request whose declared
    /// body does not fit gets 503 with Retry-After before its body is read. One
    /// largest body at a time: a batch takes several times its size in memory
    /// while it is parsed and committed.
    #[arg(long, env = "LOGBOOK_MAX_IN_FLIGHT_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_in_flight_body_bytes: usize,
    /// Writes in flight (POST, PUT, PATCH, DELETE) beyond which 503 with Retry-After.
    /// About what the store commits in 50 ms, so an admitted write does not wait
    /// long behind the others (1024 let the queue, and p99, grow to seconds).
    #[arg(long, env = "LOGBOOK_MAX_IN_FLIGHT_WRITES", default_value_t = 256)]
    max_in_flight_writes: usize,
    /// Delay target of admitted writes (from their body in to their answer): while
    /// every write answered for `--write-delay-interval` waited longer, the writes
    /// admitted at once are cut by a quarter (down to an eighth of
    /// `--max-in-flight-writes`), and raised again once they do not; beyond the
    /// limit, 503 with Retry-After at once.
    #[arg(long, env = "LOGBOOK_WRITE_DELAY_TARGET", default_value = "250ms", value_parser = parse_interval)]
    write_delay_target: Duration,
    /// How long every write must wait beyond the target before the limit is cut.
    #[arg(long, env = "LOGBOOK_WRITE_DELAY_INTERVAL", default_value = "100ms", value_parser = parse_interval)]
    write_delay_interval: Duration,
    /// Longest wait for the next piece of a request body before 408 (`30s`).
    #[arg(long, env = "LOGBOOK_BODY_READ_TIMEOUT", default_value = "30s", value_parser = crate::store::parse_age)]
    body_read_timeout: Duration,
    /// Longest wait for a request's head (request line and headers, or the next
    /// request on an idle keep-alive connection) before the connection is closed.
    #[arg(long, env = "LOGBOOK_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_interval)]
    header_read_timeout: Duration,
    /// Open connections at most: beyond it a new one takes the place of the
    /// longest-idle keep-alive connection, or, when none is idle, is answered 503
    /// and closed.
    #[arg(long, env = "LOGBOOK_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// How long an `Idempotency-Key` and its answer are kept (`24h`, `90m`).
    #[arg(long, env = "LOGBOOK_IDEMPOTENCY_TTL", default_value = "24h", value_parser = crate::store::parse_age)]
    idempotency_ttl: Duration,
    #[command(flatten)]
    syslog: SyslogArgs,
    /// A TOML file of settings, each key a flag's name (`listen = "0.0.0.0:8080"`);
    /// flags and environment variables win over it.
    #[arg(long, env = "LOGBOOK_CONFIG")]
    config: Option<PathBuf>,
    /// Server log format on stderr: `text`, or `json` (one object a line).
    #[arg(long, env = "LOGBOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    integrity: IntegrityArgs,
}

/// How the server writes its log.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Signed checkpoints and retention (docs/integrity.md).
#[derive(Args, Debug)]
pub struct IntegrityArgs {
    /// The Ed25519 key checkpoints are signed with (base64 of its 32 secret bytes);
    /// must exist. Without it, `signing.key` in the data directory, generated on
    /// first start.
    #[arg(long, env = "LOGBOOK_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// Also write every signed checkpoint into this directory (another disk or
    /// machine: what makes cutting off the newest records detectable).
    #[arg(long, env = "LOGBOOK_CHECKPOINT_DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// How often a checkpoint is signed when anything changed (`60s`, `5m`).
    #[arg(long, env = "LOGBOOK_CHECKPOINT_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub checkpoint_interval: Duration,
    /// Remove records of KIND older than AGE, e.g. `log=30d`, `event=90d`
    /// (repeatable; the environment takes a comma-separated list). Journal records
    /// are kept forever unless a rule names them.
    #[arg(long = "retain", env = "LOGBOOK_RETAIN", value_delimiter = ',', value_parser = retention::parse_rule)]
    pub retain: Vec<(logbook_core::Kind, Duration)>,
    /// Remove the oldest log and event records until the records take at most
    /// SIZE (`500M`, `20G`).
    #[arg(long, env = "LOGBOOK_RETAIN_BYTES", value_parser = parse_size)]
    pub retain_bytes: Option<u64>,
    /// Keep at most N log records per `source` (the newest).
    #[arg(long, env = "LOGBOOK_RETAIN_PER_SOURCE", value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_per_source: Option<u64>,
    /// How often retention runs (`60s`, `1h`).
    #[arg(long, env = "LOGBOOK_RETENTION_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub retention_interval: Duration,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    logbook_core::time::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s, 10m or 1h"))
}

fn parse_size(text: &str) -> Result<u64, String> {
    retention::parse_size(text).ok_or_else(|| format!("{text:?} is not a size such as 500M or 20G"))
}

impl IntegrityArgs {
    /// The node's integrity settings, with its key read (or made on first start).
    pub fn load(&self, store: &StoreArgs) -> anyhow::Result<Integrity> {
        let key = match &self.signing_key {
            Some(path) => integrity::key::load(path, false)?,
            None => integrity::key::load(&store.data.join("signing.key"), true)?,
        };
        Ok(Integrity::new(
            key,
            IntegrityConfig {
                checkpoint_dir: self.checkpoint_dir.clone(),
                checkpoint_interval: self.checkpoint_interval,
                retention: retention::Policy {
                    by_age: self.retain.clone(),
                    max_bytes: self.retain_bytes,
                    per_source: self.retain_per_source,
                    interval: self.retention_interval,
                },
            },
        ))
    }
}

/// Syslog receivers, off unless an address is given.
#[derive(Args, Debug)]
pub struct SyslogArgs {
    /// Receive syslog over TCP on this address (RFC 6587 framing, detected per
    /// message); with --syslog-tls-cert, over TLS (RFC 5425).
    #[arg(long, env = "LOGBOOK_SYSLOG_TCP")]
    pub syslog_tcp: Option<SocketAddr>,
    /// Receive syslog over UDP on this address (one message per datagram).
    #[arg(long, env = "LOGBOOK_SYSLOG_UDP")]
    pub syslog_udp: Option<SocketAddr>,
    /// PEM certificate chain: syslog over TCP is TLS only (with --syslog-tls-key).
    #[arg(
        long,
        env = "LOGBOOK_SYSLOG_TLS_CERT",
        requires_all = ["syslog_tls_key", "syslog_tcp"]
    )]
    pub syslog_tls_cert: Option<PathBuf>,
    /// PEM private key of --syslog-tls-cert.
    #[arg(long, env = "LOGBOOK_SYSLOG_TLS_KEY", requires = "syslog_tls_cert")]
    pub syslog_tls_key: Option<PathBuf>,
    /// The domain syslog records are written into.
    #[arg(long, env = "LOGBOOK_SYSLOG_DOMAIN", default_value = "default")]
    pub syslog_domain: String,
}

/// Longest wait for open connections (streams) after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Read before anything else: a bad certificate should stop the start at once.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::load_config(cert, key)?),
        _ => None,
    };
    let syslog_tls = match (&args.syslog.syslog_tls_cert, &args.syslog.syslog_tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::load_config(cert, key)?),
        _ => None,
    };
    if let Some(path) = &args.config {
        tracing::info!(config = %path.display(), "settings read from the configuration file");
    }
    let integrity = args.integrity.load(&args.store)?;
    let store = store::open_serving(&args.store, &args.tiers).await?;
    let bootstrap = Bootstrap {
        admin_password: std::env::var("LOGBOOK_ADMIN_PASSWORD").ok(),
        admin_token: std::env::var("LOGBOOK_ADMIN_TOKEN").ok(),
    };
    if let Some(password) = ensure_admin(store.as_ref(), &bootstrap).await? {
        eprintln!(
            "Created the account \"admin\" with the password {password}\n\
             (shown once; set LOGBOOK_ADMIN_PASSWORD to choose it, or change it with `logbook user passwd admin`)"
        );
    }
    let config = Config {
        max_body_bytes: args.max_body_bytes,
        session_ttl: Duration::from_secs(args.session_ttl),
        tls: tls.is_some(),
        login_limits: logbook_server::auth::rate_limit::LoginLimits {
            per_account: args.login_failures_per_account,
            per_address: args.login_failures_per_address,
            ..Default::default()
        },
        data_dir: args
            .store
            .database
            .is_none()
            .then(|| args.store.data.clone()),
        min_free_bytes: args.min_free_bytes,
        idempotency_ttl: args.idempotency_ttl,
        max_in_flight_body_bytes: args.max_in_flight_body_bytes,
        max_in_flight_writes: args.max_in_flight_writes,
        write_delay_target: args.write_delay_target,
        write_delay_interval: args.write_delay_interval,
        body_read_timeout: args.body_read_timeout,
        allocator_stats: Some(crate::allocator_stats),
        ..Config::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = AppState::new(store.clone(), config, stopped).with_integrity(integrity);
    let syslog = crate::syslog::start(&args.syslog, syslog_tls, &state).await?;
    if let Some(address) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {address} for metrics: {e}"))?;
        eprintln!("metrics on http://{}/metrics", listener.local_addr()?);
        let metrics = logbook_server::metrics::router(state.clone());
        let mut stopping = state.shutdown.clone();
        let header_read_timeout = args.header_read_timeout;
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stopping.wait_for(|s| *s).await;
            };
            // The same serve loop as the API's, so a slow or silent client is cut off
            // after the header-read timeout here too.
            if let Err(e) = serve(listener, metrics, header_read_timeout, None, stopped).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let metrics = state.metrics.clone();
    let checkpoints = tokio::spawn(integrity::checkpoints::run(state.clone()));
    let retention = tokio::spawn(integrity::retention::run(state.clone()));
    let app = router(state.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "logbook listening on {scheme}://{local} ({})",
        args.store.describe()
    );
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop.send(true);
        let _ = signalled.send(());
    };
    let header_read_timeout = args.header_read_timeout;
    let cap = ConnectionCap {
        max: args.max_connections,
        metrics,
    };
    let server: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        match tls {
            Some(config) => Box::pin(serve(
                crate::tls::TlsListener::new(listener, config)?,
                app,
                header_read_timeout,
                Some(cap),
                graceful,
            )),
            None => Box::pin(serve(
                listener,
                app,
                header_read_timeout,
                Some(cap),
                graceful,
            )),
        };
    let mut server = tokio::spawn(server);
    tokio::select! {
        joined = &mut server => joined??,
        _ = async {
            if on_signal.await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!("connections still open {DRAIN_TIMEOUT:?} after the signal; closing them");
            server.abort();
        }
    }
    // Syslog connections append what they have read, then end.
    if tokio::time::timeout(DRAIN_TIMEOUT, syslog.stopped())
        .await
        .is_err()
    {
        tracing::warn!("syslog receivers still busy {DRAIN_TIMEOUT:?} after the signal");
    }
    let _ = checkpoints.await;
    let _ = retention.await;
    // The last checkpoint covers everything acknowledged.
    if let Err(e) = integrity::checkpoints::checkpoint(&state).await {
        tracing::warn!("cannot sign the shutdown checkpoint: {e}");
    }
    drop(state);
    // Waits for the writer to commit everything queued before the process exits.
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
