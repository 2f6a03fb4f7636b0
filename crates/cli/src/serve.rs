//! `logbook serve`: run a node until SIGTERM/SIGINT, then finish in-flight requests
//! (so every acknowledged write is durable) and stop.

use crate::store::{self, StoreArgs, TierArgs};
use axum::serve::ListenerExt;
use clap::Args;
use logbook_server::auth::{ensure_admin, Bootstrap};
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
    #[command(flatten)]
    syslog: SyslogArgs,
    #[command(flatten)]
    integrity: IntegrityArgs,
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
        ..Config::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = AppState::new(store.clone(), config, stopped).with_integrity(integrity);
    let syslog = crate::syslog::start(&args.syslog, syslog_tls, &state).await?;
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
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let server: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        match tls {
            // `tap_io` is a no-op whose wrapper gives the TLS listener the
            // SocketAddr connect info that handlers (login throttling) read.
            Some(config) => Box::pin(std::future::IntoFuture::into_future(
                axum::serve(
                    crate::tls::TlsListener::new(listener, config)?.tap_io(|_| ()),
                    service,
                )
                .with_graceful_shutdown(graceful),
            )),
            None => Box::pin(std::future::IntoFuture::into_future(
                axum::serve(listener, service).with_graceful_shutdown(graceful),
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
