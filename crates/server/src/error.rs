//! The one error model of the server and the one place where failures become HTTP
//! statuses. An [`ApiError`] says what kind of failure it is ([`ErrorKind`]), which
//! field is at fault and in what words; [`ApiError::status`] maps the kind to a
//! status here and nowhere else. Each dialect renders the same error in its own body
//! shape (choosing only the body, through [`ApiError::respond_with`]), so the status
//! never differs by dialect.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logbook_core::FieldError;
use logbook_store::StoreError;
use serde_json::json;

/// What kind of failure an error is; it alone decides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A value the client sent cannot be accepted.
    Invalid,
    /// No credentials, or wrong ones.
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// Unknown, or not the caller's to see (the same answer for both).
    NotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The request clashes with the current state (an illegal lifecycle move, a
    /// duplicate, the last administrator).
    Conflict,
    /// The body did not arrive in time.
    RequestTimeout,
    /// The body is larger than the configured limit.
    TooLarge,
    /// Well-formed but not acceptable with what came before (an idempotency key
    /// reused for a different request).
    Unprocessable,
    /// A body in a media type or content encoding the endpoint does not speak.
    UnsupportedMediaType,
    /// A plain request to an endpoint that speaks WebSocket only.
    UpgradeRequired,
    /// Too many failed logins; retry later.
    Throttled,
    /// The store is busy or unreachable, or the node is stopping; retry later.
    Unavailable,
    /// The disk holding the store is full; writes fail until space is freed.
    InsufficientStorage,
    /// A broken invariant: a bug, never a client's mistake.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The words used when an error says nothing more specific.
    fn generic_message(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid request",
            ErrorKind::Unauthenticated => "authentication credentials were missing or wrong",
            ErrorKind::Forbidden => "not allowed",
            ErrorKind::NotFound => "not found",
            ErrorKind::MethodNotAllowed => "method not allowed",
            ErrorKind::Conflict => "conflicts with the current state",
            ErrorKind::RequestTimeout => "the request did not arrive in time",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Unprocessable => "cannot be processed",
            ErrorKind::UnsupportedMediaType => "unsupported media type",
            ErrorKind::UpgradeRequired => "this endpoint speaks WebSocket only",
            ErrorKind::Throttled => "too many requests",
            ErrorKind::Unavailable => "temporarily unavailable; retry shortly",
            ErrorKind::InsufficientStorage => DISK_FULL,
            ErrorKind::Internal => "internal error",
        }
    }
}

/// Marks a response rendered from an [`ApiError`] in its API's own shape (a
/// dialect's JSON, Loki's plain text, OTLP's protobuf), which
/// [`crate::json_errors`] leaves as it is.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

/// The words of a write refused for lack of space (507).
pub const DISK_FULL: &str = "the disk holding the store is full";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// The specific problem; `None` when the kind says it all.
    detail: Option<String>,
    /// Seconds a client should wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind` in its generic words.
    pub fn of(kind: ErrorKind) -> ApiError {
        ApiError {
            kind,
            field: None,
            detail: None,
            retry_after: None,
        }
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            detail: Some(message.into()),
            ..ApiError::of(kind)
        }
    }

    /// Names the request field at fault.
    pub fn at(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, message).at(field)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::of(ErrorKind::Unauthenticated)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Forbidden, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::of(ErrorKind::NotFound)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, message)
    }

    /// The HTTP status, decided by the kind alone.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The problem in words: the specific one, or the kind's generic one.
    pub fn message(&self) -> &str {
        self.detail
            .as_deref()
            .unwrap_or_else(|| self.kind.generic_message())
    }

    /// Whether the error says more than its kind (a dialect with its own generic
    /// words, such as Django's "Not found.", uses them only when it does not).
    pub fn is_generic(&self) -> bool {
        self.detail.is_none()
    }

    /// The full problem statement, with the field first when there is one.
    pub fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("{field}: {}", self.message()),
            None => self.message().to_string(),
        }
    }

    /// Renders any JSON body with this error's status and headers.
    pub fn respond_with(&self, body: serde_json::Value) -> Response {
        self.respond_with_body(Json(body))
    }

    /// Renders a body of any type (plain text for Loki, protobuf for OTLP) with
    /// this error's status and headers.
    pub fn respond_with_body(&self, body: impl IntoResponse) -> Response {
        let mut response = (self.status(), body).into_response();
        response.extensions_mut().insert(Rendered);
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

impl IntoResponse for ApiError {
    /// The native shape: `{"error": "...", "status": N, "field": "..."}`.
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.describe(), "status": self.status().as_u16()});
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        self.respond_with(body)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::bad_request(e.field, e.problem)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, problem } => ApiError::bad_request(field, problem),
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Exists { what } => ApiError::conflict(format!("{what} already exists")),
            StoreError::Conflict { from, to } => {
                ApiError::conflict(format!("an action cannot move from {from} to {to}"))
            }
            StoreError::DiskFull(detail) => {
                tracing::error!(%detail, "a write failed: the disk holding the store is full");
                ApiError::of(ErrorKind::InsufficientStorage).retry_after(30)
            }
            StoreError::Busy => {
                ApiError::new(ErrorKind::Unavailable, "the store is busy; retry shortly")
                    .retry_after(1)
            }
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                ApiError::new(
                    ErrorKind::Unavailable,
                    "the store is unavailable; retry shortly",
                )
                .retry_after(2)
            }
            StoreError::Closed => {
                ApiError::new(ErrorKind::Unavailable, "the server is shutting down")
            }
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "internal store error");
                ApiError::of(ErrorKind::Internal)
            }
        }
    }
}

impl From<logbook_core::Error> for ApiError {
    fn from(e: logbook_core::Error) -> Self {
        match e {
            logbook_core::Error::Invalid(f) => f.into(),
            logbook_core::Error::Refused { field, why } => ApiError::conflict(why).at(field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_alone_decides_the_status_and_generic_words_fill_in() {
        let e = ApiError::not_found();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert!(e.is_generic());
        assert_eq!(e.message(), "not found");
        let e = ApiError::new(ErrorKind::NotFound, "no lxc container \"x\" exists");
        assert!(!e.is_generic());
        let e = ApiError::from(StoreError::Busy);
        assert_eq!(
            (e.status(), e.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        );
        let e = ApiError::bad_request("limit", "must be positive");
        assert_eq!(
            (e.status(), e.describe().as_str()),
            (StatusCode::BAD_REQUEST, "limit: must be positive")
        );
    }
}
