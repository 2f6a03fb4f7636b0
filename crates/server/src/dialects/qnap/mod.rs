//! QNAP Container Station "Log and Event" API (`/api/v1/`): cookie login, the system
//! log (list, CSV export, clear), the event feed and the container-state wait.
//! Translation only: parameters become core queries, records become QNAP shapes,
//! errors become `{"error": ...}`. See `docs/qnap.md`.

mod event;
mod export;
mod log;
mod login;
mod wait;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use logbook_core::Record;
use serde_json::json;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/login", post(login::login))
        .route("/api/v1/log", get(log::list).delete(log::clear))
        .route("/api/v1/log/export", get(export::export))
        .route("/api/v1/event", get(event::list))
        .route(
            "/api/v1/event/wait/{container_type}/{container_id}/{state}",
            get(wait::wait),
        )
}

/// An [`ApiError`] in QNAP's body: `{"error": "..."}` (plus the parameter at fault).
/// The document's own login check looks for the `error` key.
pub(super) struct QnapError(ApiError);

impl<E: Into<ApiError>> From<E> for QnapError {
    fn from(e: E) -> Self {
        QnapError(e.into())
    }
}

impl IntoResponse for QnapError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.0.describe()});
        if let Some(field) = &self.0.field {
            body["field"] = json!(field);
        }
        self.0.respond_with(body)
    }
}

pub(super) type Answer<T> = Result<T, QnapError>;

/// The caller, or the authentication failure in QNAP's shape.
pub(super) fn caller(principal: Result<Principal, ApiError>) -> Result<Principal, QnapError> {
    principal.map_err(QnapError)
}

#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn parse_query(raw: Option<&str>) -> Result<(), ApiError> {
    log::list_query(raw).map(drop)
}

/// QNAP names the user of every line; a record without one was written by the
/// platform itself, which QNAP calls `system`.
pub(super) fn user_of(record: &Record) -> &str {
    record.user.as_deref().unwrap_or("system")
}

/// Query parameters that browsers and scripts add to defeat caches (`_=<ms>`), which
/// are accepted and ignored; any other unknown parameter is refused by name.
pub(super) fn reject_unknown(params: &crate::params::Params) -> Result<(), ApiError> {
    let _ = params.get("_");
    params.reject_unknown()
}
