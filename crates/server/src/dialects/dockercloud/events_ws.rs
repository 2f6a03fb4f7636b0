//! `GET /api/audit/v1/events` over WebSocket (`dockercloud.Events`): every action
//! change (from the event records actions leave) and every object change the
//! caller may read, as Docker Cloud's JSON messages. The server never closes it on
//! its own: the client reconnects at once, without back-off, whenever it ends.

use super::{render, DockerCloudError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use logbook_core::{Kind, Record};
use logbook_store::notifier::ObjectChange;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

pub async fn events(
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
    let records = state.store.notifier().subscribe_records();
    let objects = state.store.notifier().subscribe_objects();
    Ok(upgrade.on_upgrade(move |socket| stream(state, principal, socket, records, objects)))
}

async fn stream(
    state: AppState,
    principal: Principal,
    mut socket: WebSocket,
    mut records: Receiver<Arc<Vec<Record>>>,
    mut objects: Receiver<ObjectChange>,
) {
    let stop = super::stopping(state.shutdown.clone());
    tokio::pin!(stop);
    loop {
        let messages: Vec<String> = tokio::select! {
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself while it is read.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            batch = records.recv() => match batch {
                Ok(batch) => batch
                    .iter()
                    .filter(|r| r.kind == Kind::Event)
                    .filter(|r| principal.can_read_domain(r.domain_id.as_deref()))
                    .filter_map(render::action_event)
                    .collect(),
                Err(RecvError::Lagged(missed)) => {
                    // A live feed: what scrolled past is in the store for a listing.
                    tracing::warn!(missed, "events stream lagged behind the records");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
            change = objects.recv() => match change {
                Ok(ObjectChange::Updated(object)) => {
                    if !principal.can_read_domain(object.domain_id.as_deref()) {
                        continue;
                    }
                    let parent_uri = match &object.parent {
                        Some(parent) => state.store.get_object(parent).await.ok().flatten().and_then(|p| p.uri),
                        None => None,
                    };
                    vec![render::object_event(&object, parent_uri)]
                }
                // A removal carries no domain; only those who read every domain see it.
                Ok(ObjectChange::Removed(key)) if principal.readable_domains().is_none() => {
                    vec![render::object_removed(&key)]
                }
                Ok(ObjectChange::Removed(_)) => continue,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "events stream lagged behind the objects");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
            _ = &mut stop => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        };
        for message in messages {
            if socket.send(Message::Text(message.into())).await.is_err() {
                return;
            }
        }
    }
}
