//! The top of the crate: one axum router that serves the health check, the native
//! API, every dialect and the web UI on one port. Nothing in the crate imports this module.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{dialects, idempotency, json_errors, limits, metrics, native, protocols, ui};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The whole service: health check, native API, dialects, shipper protocols and the
/// web UI.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::authenticated))
        .merge(native::router())
        .merge(dialects::router())
        .merge(protocols::router())
        .merge(ui::router())
        .fallback(json_errors::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.config.body_read_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::layer,
        ))
        .layer(axum::middleware::map_response(json_errors::layer))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::layer,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// 200 `{"status": "ok"}` when the store answers, 503 otherwise. No authentication,
/// no details.
async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.count_users().await?;
    Ok(Json(json!({"status": "ok"})))
}

/// 200 `{"status": "ready"}` when the node takes writes: the store answers, its
/// writes are not failing for lack of space, and the node is not stopping; else
/// 503 (507 while the disk is full) saying which. No authentication. A load
/// balancer takes a node out of rotation on it; `/healthz` stays the liveness check.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if *state.shutdown.borrow() {
        return Err(ApiError::new(
            crate::error::ErrorKind::Unavailable,
            "the server is shutting down",
        ));
    }
    state.store.high_water().await?;
    let full = state.store.write_state().borrow().full.clone();
    if let Some(logbook_store::DiskFull { since, .. }) = full {
        return Err(ApiError::new(
            crate::error::ErrorKind::InsufficientStorage,
            format!(
                "{} (writes failing since {})",
                crate::error::DISK_FULL,
                since.rfc3339()
            ),
        )
        .retry_after(30));
    }
    Ok(Json(json!({"status": "ready"})))
}
