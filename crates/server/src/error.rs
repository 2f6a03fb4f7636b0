//! The one place where failures become HTTP statuses. Each dialect renders the
//! same [`ApiError`] in its own body shape; the status never differs by dialect.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logbook_core::FieldError;
use logbook_store::StoreError;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    pub message: String,
    /// Seconds a client should wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn field(
        status: StatusCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(status, message)
        }
    }

    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::field(StatusCode::BAD_REQUEST, field, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication credentials were missing or wrong",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not found")
    }

    /// A plain 200 `{"status": "ok"}` (health checks).
    pub fn ok_status() -> ApiError {
        ApiError::new(StatusCode::OK, "ok")
    }

    /// The full problem statement, with the field first when there is one.
    pub fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("{field}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// Renders any JSON body with this error's status and headers.
    pub fn respond_with(&self, body: serde_json::Value) -> Response {
        self.respond_with_body(Json(body))
    }

    /// Renders a body of any type (plain text for Loki, protobuf for OTLP) with
    /// this error's status and headers.
    pub fn respond_with_body(&self, body: impl IntoResponse) -> Response {
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

impl IntoResponse for ApiError {
    /// The native shape: `{"error": "...", "field": "..."}`.
    fn into_response(self) -> Response {
        if self.status.is_success() {
            return (self.status, Json(json!({"status": self.message}))).into_response();
        }
        let mut body = json!({"error": self.describe(), "status": self.status.as_u16()});
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
            StoreError::Exists { what } => {
                ApiError::new(StatusCode::CONFLICT, format!("{what} already exists"))
            }
            StoreError::Conflict { from, to } => ApiError::new(
                StatusCode::CONFLICT,
                format!("an action cannot move from {from} to {to}"),
            ),
            StoreError::Busy => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store is busy; retry shortly",
                )
            },
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                ApiError {
                    retry_after: Some(2),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store is unavailable; retry shortly",
                    )
                }
            }
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ),
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "internal store error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<logbook_core::Error> for ApiError {
    fn from(e: logbook_core::Error) -> Self {
        match e {
            logbook_core::Error::Invalid(f) => f.into(),
            logbook_core::Error::NotFound => ApiError::not_found(),
            logbook_core::Error::Conflict { from, to } => StoreError::Conflict { from, to }.into(),
            logbook_core::Error::Refused(why) => ApiError::new(StatusCode::CONFLICT, why),
        }
    }
}
