//! `GET /logbook/v1/stream`: live records as Server-Sent Events, or as a WebSocket
//! when the request is an upgrade. Filters are the native query parameters; a
//! client resumes with `Last-Event-ID` or `?after=` and misses nothing. The
//! following itself is the stream engine's (`crate::stream`); this translates the
//! request and renders the two transports.

mod sse;
mod websocket;

use super::filters;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use crate::stream::{RecordFeed, Subscription};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use logbook_core::Cursor;
use std::time::Duration;

/// The native stream's subscription.
type RecordStream = Subscription<RecordFeed>;

/// Idle connections get a heartbeat this often, well under common proxy timeouts.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(15);

#[utoipa::path(
    get, path = "/logbook/v1/stream", tag = "records",
    description = "Live records matching the filters: Server-Sent Events (`id:` the record id, `data:` the record's JSON, an `end` event with `reason` and `resume_after` when the server closes it), or a WebSocket when the request is an upgrade (one text message a record). Resume with `Last-Event-ID` or `after`; nothing is missed.",
    params(super::openapi::RecordFilters,
        ("after" = Option<String>, Query, description = "Resume after this record id or cursor"),
        ("Last-Event-ID" = Option<String>, Header, description = "As `after`, sent by EventSource on reconnect"),
    ),
    responses(
        (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String),
        (status = 101, description = "Switched to WebSocket"),
    )
)]
pub(super) async fn stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (filter, after) = {
        let params = Params::strict(raw.as_deref())?;
        let filter = filters::filters(&params)?;
        let after = match params.non_empty("after") {
            Some(text) => Some(parse_position(text, "after")?),
            None => last_event_id(&headers)?,
        };
        params.reject_unknown()?;
        (principal.scope(filter), after)
    };
    let wants_upgrade = headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let subscription = || {
        state
            .streams
            .records(state.store.clone(), filter, after, state.shutdown.clone())
    };
    match (wants_upgrade, upgrade) {
        (true, Ok(upgrade)) => {
            let subscription = subscription();
            Ok(upgrade.on_upgrade(move |socket| websocket::serve(socket, subscription)))
        }
        (true, Err(rejection)) => Ok(rejection.into_response()),
        (false, _) => Ok(sse::serve(subscription())),
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                ApiError::bad_request("Last-Event-ID", "is not a record id or cursor")
            })?;
            if text.trim().is_empty() {
                return Ok(None);
            }
            parse_position(text, "Last-Event-ID").map(Some)
        }
    }
}

/// A resume point: a record id (what the stream sends as its event id) or a cursor
/// from the records API, so a client can switch from paging to following.
fn parse_position(text: &str, field: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    if let Ok(id) = text.parse::<i64>() {
        if id >= 0 {
            return Ok(id);
        }
    }
    Cursor::decode(text).map(|c| c.0).map_err(|_| {
        ApiError::bad_request(
            field,
            format!("{text:?} is not a record id or a cursor this server issued"),
        )
    })
}
