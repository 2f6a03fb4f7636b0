//! Logbook's HTTP face: one axum router that serves the native API and every
//! compatible dialect on one port, over one store.
//!
//! Invariants:
//! - *A dialect only translates*: its parameters into a core `Query`, core values
//!   into its shapes, errors into its body. Filtering, paging, tenancy and waiting
//!   live in core and store, once.
//! - *Every endpoint but `/healthz` and the UI's static pages authenticates*
//!   through [`auth::Principal`]; the pages hold no data.
//! - *Acknowledged means durable*: no handler answers 2xx before the store commits.

pub mod actions;
pub mod auth;
pub mod body;
pub mod csv_export;
pub mod dialects;
pub mod error;
pub mod ingest;
pub mod native;
pub mod object_watch;
pub mod params;
pub mod stream;
pub mod ui;

use axum::routing::get;
use axum::Router;
use logbook_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use error::ApiError;

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
    pub login_limits: auth::rate_limit::LoginLimits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: 16 * 1024 * 1024,
            session_ttl: Duration::from_secs(12 * 3600),
            tls: false,
            login_limits: auth::rate_limit::LoginLimits::default(),
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
    pub logins: Arc<auth::rate_limit::LoginThrottle>,
    /// Per-object wake-ups for requests that wait on an object.
    pub object_watch: Arc<object_watch::ObjectWatch>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config, shutdown: watch::Receiver<bool>) -> AppState {
        AppState {
            store,
            logins: Arc::new(auth::rate_limit::LoginThrottle::new(
                config.login_limits.clone(),
            )),
            config: Arc::new(config),
            shutdown,
            object_watch: Arc::default(),
        }
    }
}

/// The whole service: health check, native API, dialects and the web UI.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(native::router())
        .merge(dialects::router())
        .merge(ui::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// 200 when the store answers, 503 otherwise. No authentication, no details.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> ApiError {
    match state.store.count_users().await {
        Ok(_) => ApiError::ok_status(),
        Err(e) => ApiError::from(e),
    }
}
