//! The Waldur "System Logs" dialect (`/api/system-logs/`): a read-only view of log
//! records shaped for `waldur-api-client`, with DRF-style paging headers and errors.
//! See `docs/waldur.md` for the mapping and the differences from Waldur itself.

mod filters;
mod instances;
mod list;
mod paging;
mod stats;

use crate::auth::{Presented, Principal};
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use logbook_store::StoreError;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/system-logs/",
            get(list::list).fallback(method_not_allowed),
        )
        .route(
            "/api/system-logs/instances/",
            get(instances::list).fallback(method_not_allowed),
        )
        .route(
            "/api/system-logs/stats/",
            get(stats::stats).fallback(method_not_allowed),
        )
        .route(
            "/api/system-logs/{id}/",
            get(list::retrieve).fallback(method_not_allowed),
        )
}

/// The view is read-only. Like DRF, the caller is authenticated before the method is
/// refused, so an anonymous POST is a 401, not a hint about what exists.
async fn method_not_allowed(_caller: Caller, method: Method) -> impl IntoResponse {
    (
        [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
        DrfError(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("Method \"{method}\" not allowed."),
        )),
    )
}

/// An [`ApiError`] rendered the way Django REST framework renders it: field problems
/// as `{"field": ["message"]}`, everything else as `{"detail": "message"}`.
#[derive(Debug)]
pub struct DrfError(pub ApiError);

impl DrfError {
    pub fn field(field: &str, message: impl Into<String>) -> DrfError {
        DrfError(ApiError::bad_request(field, message))
    }

    pub fn not_found() -> DrfError {
        DrfError(ApiError::not_found())
    }

    /// DRF's two 401 texts: nothing usable was presented, or it was wrong.
    fn unauthorized(presented: bool) -> DrfError {
        let detail = if presented {
            "Invalid token."
        } else {
            "Authentication credentials were not provided."
        };
        DrfError(ApiError::new(ErrorKind::Unauthenticated, detail))
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn parse_query(raw: Option<&str>) -> Result<(), ApiError> {
    list::list_request(raw).map(drop).map_err(|e| e.0)
}

impl From<ApiError> for DrfError {
    fn from(e: ApiError) -> Self {
        DrfError(e)
    }
}

impl From<StoreError> for DrfError {
    fn from(e: StoreError) -> Self {
        DrfError(e.into())
    }
}

impl IntoResponse for DrfError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = match (&e.field, e.kind) {
            (Some(field), ErrorKind::Invalid) => json!({ field: [e.message()] }),
            // "Not found" in DRF's words, unless the error says more.
            (_, ErrorKind::NotFound) if e.is_generic() => json!({"detail": "Not found."}),
            _ => json!({"detail": e.message()}),
        };
        let mut response = e.respond_with(body);
        if e.kind == ErrorKind::Unauthenticated {
            // DRF's TokenAuthentication answers with the scheme it expects.
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Token"));
        }
        response
    }
}

/// The authenticated caller, with authentication failures in DRF's shape.
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = DrfError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DrfError> {
        let presented = Presented::from_headers(&parts.headers).is_some();
        match Principal::from_request_parts(parts, state).await {
            Ok(principal) => Ok(Caller(principal)),
            Err(e) if e.kind == ErrorKind::Unauthenticated => {
                Err(DrfError::unauthorized(presented))
            }
            Err(e) => Err(DrfError(e)),
        }
    }
}
