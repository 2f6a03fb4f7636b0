//! Every error answer is JSON. Handlers render their errors through [`ApiError`]
//! (each API in its own shape); what is left are the answers axum and its
//! extractors make on their own: an unknown path (404, empty), a method a route
//! does not take (405, empty, with `Allow`), a path or query extractor's rejection
//! (400, `text/plain`), a WebSocket handshake's refusal. [`layer`] rewrites those
//! into the native shape `{"error": "...", "status": N}`, keeping their status and
//! headers (`Allow`, `Retry-After`); an answer already rendered from an
//! [`ApiError`] (marked [`Rendered`]) or already JSON passes untouched.

use crate::error::{ApiError, ErrorKind, Rendered};
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// Longest plain-text body of a rejection carried into the JSON message.
const MAX_DETAIL: usize = 1024;

/// The router's fallback: an unknown path is a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// `axum::middleware::map_response` function: see the module documentation.
pub async fn layer(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Rendered>().is_some()
        || is_json(&response)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = match http_body_util::Limited::new(body, MAX_DETAIL)
        .collect()
        .await
    {
        Ok(bytes) => String::from_utf8_lossy(&bytes.to_bytes())
            .trim()
            .to_string(),
        Err(_) => String::new(),
    };
    let kind = kind_of(status);
    let error = match (kind, detail.is_empty()) {
        (Some(kind), true) => ApiError::of(kind),
        (Some(kind), false) => ApiError::new(kind, detail),
        (None, true) => ApiError::new(
            ErrorKind::Invalid,
            status.canonical_reason().unwrap_or("request refused"),
        ),
        (None, false) => ApiError::new(ErrorKind::Invalid, detail),
    };
    let error = match field_of(status, error.message()) {
        Some(field) => error.at(field),
        None => error,
    };
    let mut body = serde_json::json!({"error": error.describe(), "status": status.as_u16()});
    if let Some(field) = &error.field {
        body["field"] = serde_json::json!(field);
    }
    let rendered = axum::Json(body).into_response();
    // The original status and headers (`Allow`, `Retry-After`), the JSON body.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.extensions.insert(Rendered);
    let (_, body) = rendered.into_parts();
    Response::from_parts(parts, Body::new(body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("application/json") || v.contains("+json")
        })
}

/// The kind whose status this is, where one is.
fn kind_of(status: StatusCode) -> Option<ErrorKind> {
    [
        ErrorKind::Invalid,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::Conflict,
        ErrorKind::RequestTimeout,
        ErrorKind::TooLarge,
        ErrorKind::Unprocessable,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::UpgradeRequired,
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::InsufficientStorage,
        ErrorKind::Internal,
    ]
    .into_iter()
    .find(|k| k.status() == status)
}

/// The request part a rejection is about, from axum's words for it.
fn field_of(status: StatusCode, message: &str) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        Some("method")
    } else if lower.contains("url") || lower.contains("path") {
        Some("path")
    } else if lower.contains("query") {
        Some("query")
    } else if lower.contains("websocket")
        || lower.contains("upgrade")
        || lower.contains("connection header")
        || lower.contains("sec-websocket")
    {
        Some("upgrade")
    } else if lower.contains("content-type") || lower.contains("json") || lower.contains("body") {
        Some("body")
    } else {
        None
    }
}
