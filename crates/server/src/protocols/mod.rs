//! Ingest from the shippers operators already run: syslog (listeners wired by the
//! binary), OTLP/HTTP, Loki push, Elasticsearch bulk and journald upload. Each module
//! parses its protocol, maps each line onto a record through `logbook_core::Shipped`
//! (see `docs/ingest.md` for every field), appends through [`crate::ingest`] and
//! answers the way its clients expect. None owns anything else.

pub(crate) mod elastic;
pub(crate) mod journald;
pub mod loki_push;
pub(crate) mod otlp;
pub mod syslog;

use crate::AppState;
use axum::http::HeaderMap;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(elastic::router())
        .merge(loki_push::router())
        .merge(otlp::router())
        .merge(journald::router())
}

/// The media type of a request, lower-case and without parameters ("" if absent).
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}
