//! The Docker Cloud audit dialect (`/api/audit/v1/`): actions with their lifecycle,
//! cancel and retry, logs and events over WebSocket, as python-dockercloud 1.0.12
//! speaks them. It translates only; the rules live in `crate::actions`.

mod actions;
mod events_ws;
mod logs_ws;
mod render;

use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/audit/v1/action/", get(actions::list))
        .route("/api/audit/v1/action/{uuid}/", get(actions::get_one))
        .route("/api/audit/v1/action/{uuid}/cancel/", post(actions::cancel))
        .route("/api/audit/v1/action/{uuid}/retry/", post(actions::retry))
        .route("/api/audit/v1/action/{uuid}/logs/", get(logs_ws::logs))
        // The streaming client puts the namespace in its URLs (the REST ones never do).
        .route(
            "/api/audit/v1/{namespace}/action/{uuid}/logs/",
            get(logs_ws::logs),
        )
        .route("/api/audit/v1/events", get(events_ws::events))
        .route("/api/audit/v1/{namespace}/events", get(events_ws::events))
}

/// An error in the dialect's body shape, `{"error": "..."}`, with the shared status.
#[derive(Debug)]
pub struct DockerCloudError(pub ApiError);

#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn parse_query(raw: Option<&str>) -> Result<(), ApiError> {
    actions::parse_list(raw)
}

impl From<ApiError> for DockerCloudError {
    fn from(e: ApiError) -> Self {
        DockerCloudError(e)
    }
}

impl From<logbook_store::StoreError> for DockerCloudError {
    fn from(e: logbook_store::StoreError) -> Self {
        DockerCloudError(e.into())
    }
}

impl IntoResponse for DockerCloudError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.0.describe()});
        if let Some(field) = &self.0.field {
            body["field"] = json!(field);
        }
        self.0.respond_with(body)
    }
}

/// A plain request to a WebSocket endpoint: 426 with a JSON error, like every other
/// refusal of this dialect.
fn not_a_websocket(
    rejection: axum::extract::ws::rejection::WebSocketUpgradeRejection,
) -> DockerCloudError {
    DockerCloudError(ApiError::new(
        ErrorKind::UpgradeRequired,
        format!("this endpoint speaks WebSocket only: {rejection}"),
    ))
}
