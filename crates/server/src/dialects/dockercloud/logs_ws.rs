//! `GET /api/audit/v1/action/{uuid}/logs/` over WebSocket: the last `tail` lines,
//! then (with `follow`) each new line as it is committed, until the action reaches
//! a final state (the following is `actions::follow_logs`'). Pings are answered
//! throughout: the client gives up after 5 s without a pong.

use super::{render, DockerCloudError};
use crate::actions::{self, LogFeed};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use crate::stream::{End, Subscription};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use std::collections::HashMap;
use std::time::Duration;

/// Lines sent on connect without `tail` (the document's default).
pub(super) const DEFAULT_TAIL: u64 = 300;
/// The most lines one connection replays.
pub(super) const MAX_TAIL: u64 = 100_000;
/// How long to wait for the client's answer to our close frame before dropping TCP.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub(super) async fn logs(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, DockerCloudError> {
    let principal = principal?;
    let upgrade = upgrade.map_err(super::not_a_websocket)?;
    let params = Params::parse(raw.as_deref())?;
    let tail = params
        .parsed::<u64>("tail", "a non-negative integer")?
        .unwrap_or(DEFAULT_TAIL)
        .min(MAX_TAIL);
    let follow = params
        .parsed::<bool>("follow", "true or false")?
        .unwrap_or(true);
    params.reject_unknown()?;
    let uuid = path.get("uuid").cloned().unwrap_or_default();
    // Followed before the 101 goes out, so an unknown action is a 404 at the
    // handshake and no line committed after it is missed.
    let lines = actions::follow_logs(&state, &principal, &uuid, tail, follow).await?;
    Ok(upgrade.on_upgrade(move |socket| send(socket, lines)))
}

/// Sends each line as a frame while answering the client's pings, then closes.
async fn send(mut socket: WebSocket, mut lines: Subscription<LogFeed>) {
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself while it is read.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            next = lines.next() => match next {
                Ok(line) => {
                    let frame = Message::Text(render::log_frame(&line).into());
                    if socket.send(frame).await.is_err() {
                        return;
                    }
                }
                Err(end) => {
                    if let End::StoreFailed(detail) = &end {
                        tracing::warn!("log stream ended by a store error: {detail}");
                    }
                    break;
                }
            },
        }
    }
    close(socket).await;
}

/// A normal close frame, then a short wait for the client's answer so it sees a
/// clean close; the TCP connection is dropped either way.
async fn close(mut socket: WebSocket) {
    let frame = CloseFrame {
        code: 1000,
        reason: "".into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
