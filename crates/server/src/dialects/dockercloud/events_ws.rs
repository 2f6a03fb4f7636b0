//! `GET /api/audit/v1/events` over WebSocket (`dockercloud.Events`): every action
//! change (from the event records actions leave) and every object change the
//! caller may read, as Docker Cloud's JSON messages. It is a record stream of the
//! stream engine, so a client that falls behind is caught up from the store and
//! misses nothing. The server never closes it on its own but when it stops: the
//! client reconnects at once, without back-off, whenever it ends.

use super::{render, DockerCloudError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::objects;
use crate::state::AppState;
use crate::stream::{RecordFeed, Subscription};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use logbook_core::{Kind, Query, Record};

pub(super) async fn events(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, DockerCloudError> {
    // A bad credential must be a 401 at the handshake: that is the only answer on
    // which the client stops reconnecting.
    let principal = principal?;
    let upgrade = upgrade.map_err(super::not_a_websocket)?;
    // Subscribed before the 101 goes out, so a change made right after the client
    // sees the connection open is delivered.
    let events = principal.scope(Query::default().kinds(&[Kind::Event]));
    let subscription =
        state
            .streams
            .records(state.store.clone(), events, None, state.shutdown.clone());
    Ok(upgrade.on_upgrade(move |socket| stream(state, principal, socket, subscription)))
}

async fn stream(
    state: AppState,
    principal: Principal,
    mut socket: WebSocket,
    mut subscription: Subscription<RecordFeed>,
) {
    loop {
        let live = tokio::select! {
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself while it is read.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            next = subscription.next() => match next {
                Ok(live) => live,
                Err(end) => {
                    tracing::debug!(reason = end.reason(), "events stream ended");
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
        };
        let Some(message) = message(&state, &principal, &live.record).await else {
            continue;
        };
        if socket.send(Message::Text(message.into())).await.is_err() {
            return;
        }
    }
}

/// The Docker Cloud message for an event record, if it is an action or object
/// change the caller may see.
async fn message(state: &AppState, principal: &Principal, record: &Record) -> Option<String> {
    if let Some(message) = render::action_event(record) {
        return Some(message);
    }
    let seen = match objects::seen_change(state, principal, record).await {
        Ok(seen) => seen?,
        Err(e) => {
            tracing::warn!(error = e.message(), "an object change could not be read");
            return None;
        }
    };
    Some(match seen.event.removed {
        true => render::object_removed(&seen.event.key, record.ts),
        false => render::object_event(&seen, record.ts),
    })
}
