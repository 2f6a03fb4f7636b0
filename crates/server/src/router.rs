//! The top of the crate: one axum router that serves the health check, the native
//! API, every dialect and the web UI on one port. Nothing in the crate imports this module.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{dialects, idempotency, json_errors, limits, metrics, native, protocols, ui};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole service: health check, native API, dialects, shipper protocols and the
/// web UI.
pub fn router(state: AppState) -> Router {
    documented()
        .0
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
        // A failed answer is logged where it is made, once, with its cause
        // (`error.rs`: internal errors, an unavailable or full store); logging
        // every 5xx here again at ERROR wrote a line for each request shed under
        // overload (185,438 in 20 s of `bench-load`), CPU the admitted ones lacked.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}

/// The routes that the OpenAPI document describes (health checks, metrics, the
/// native API and the document itself) with that document, built from the same
/// `#[utoipa::path]` attributes.
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(native::openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::authenticated))
        .routes(routes!(openapi_json))
        .merge(native::router())
        .split_for_parts();
    native::openapi::complete(&mut doc);
    (router, doc)
}

/// The OpenAPI 3.1 document of what [`router`] serves under `/logbook/v1` (and the
/// health checks and metrics).
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

#[utoipa::path(
    get, path = "/logbook/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
async fn openapi_json(_principal: crate::auth::Principal) -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text = DOCUMENT.get_or_init(|| {
        // Serialising plain structs of strings and maps cannot fail.
        openapi().to_pretty_json().unwrap_or_default()
    });
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The store answers", body = native::openapi::Health))
)]
/// 200 `{"status": "ok"}` when the store answers, 503 otherwise. No authentication,
/// no details.
async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.count_users().await?;
    Ok(Json(json!({"status": "ok"})))
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The node takes writes", body = native::openapi::Health),
        (status = 507, description = "The disk holding the store is full", body = native::openapi::ErrorBody),
    )
)]
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
