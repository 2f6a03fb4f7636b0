//! The top of the crate: one axum router that serves the health check, the native
//! API, every dialect and the web UI on one port. Nothing in the crate imports this module.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{dialects, native, protocols, ui};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The whole service: health check, native API, dialects, shipper protocols and the
/// web UI.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(native::router())
        .merge(dialects::router())
        .merge(protocols::router())
        .merge(ui::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// 200 `{"status": "ok"}` when the store answers, 503 otherwise. No authentication,
/// no details.
async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.count_users().await?;
    Ok(Json(json!({"status": "ok"})))
}
