//! `GET /api/audit/v1/action/{uuid}/logs/` over WebSocket: the last `tail` lines,
//! then (with `follow`) each new line as it is committed, until the action reaches
//! a final state. Pings are answered throughout: the client gives up after 5 s
//! without a pong.

use super::{render, DockerCloudError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use logbook_store::ActionLogLine;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Lines sent on connect without `tail` (the document's default).
pub const DEFAULT_TAIL: u64 = 300;
/// The most lines one connection replays.
pub const MAX_TAIL: u64 = 100_000;
/// How long to wait for the client's answer to our close frame before dropping TCP.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub async fn logs(
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
    scoped::action(&state, &principal, &uuid).await?;
    // Subscribed before the backlog is read, so no line falls between the two.
    let mut lines = state.store.notifier().subscribe_action_logs();
    let mut changes = state.store.notifier().subscribe_actions();
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        let mut follower = Follower {
            state,
            uuid,
            last_seq: 0,
        };
        if follower.send_backlog(&mut socket, tail).await.is_err() {
            return;
        }
        if follow {
            follower.follow(&mut socket, &mut lines, &mut changes).await;
        }
        close(socket).await;
    }))
}

struct Follower {
    state: AppState,
    uuid: String,
    last_seq: i64,
}

struct Gone;

impl Follower {
    async fn send_backlog(&mut self, socket: &mut WebSocket, tail: u64) -> Result<(), Gone> {
        let backlog = self
            .state
            .store
            .action_logs(&self.uuid, tail)
            .await
            .map_err(|_| Gone)?;
        self.send(socket, &backlog).await
    }

    async fn send(&mut self, socket: &mut WebSocket, lines: &[ActionLogLine]) -> Result<(), Gone> {
        let last_sent = self.last_seq;
        for line in lines.iter().filter(|l| l.seq > last_sent) {
            socket
                .send(Message::Text(render::log_frame(line).into()))
                .await
                .map_err(|_| Gone)?;
            self.last_seq = line.seq;
        }
        Ok(())
    }

    /// Everything committed after the last line sent (after a lag, or at the end).
    async fn catch_up(&mut self, socket: &mut WebSocket) -> Result<(), Gone> {
        self.send_backlog(socket, MAX_TAIL).await
    }

    async fn follow(
        &mut self,
        socket: &mut WebSocket,
        lines: &mut tokio::sync::broadcast::Receiver<logbook_store::notifier::ActionLogAppended>,
        changes: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<logbook_core::Action>>,
    ) {
        let stop = super::stopping(self.state.shutdown.clone());
        tokio::pin!(stop);
        // The action may have finished before the subscription started.
        match self.state.store.get_action(&self.uuid).await {
            Ok(Some(action)) if !action.state.is_final() => {}
            _ => {
                let _ = self.catch_up(socket).await;
                return;
            }
        }
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    // Pings are answered by the socket itself while it is read.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
                appended = lines.recv() => {
                    let sent = match appended {
                        Ok(appended) if appended.uuid == self.uuid => {
                            self.send(socket, &appended.lines).await
                        }
                        Ok(_) => Ok(()),
                        Err(RecvError::Lagged(_)) => self.catch_up(socket).await,
                        Err(RecvError::Closed) => return,
                    };
                    if sent.is_err() {
                        return;
                    }
                }
                changed = changes.recv() => match changed {
                    Ok(action) if action.uuid == self.uuid && action.state.is_final() => {
                        // Lines committed before the final state may still be on
                        // the other channel; the store has them all.
                        let _ = self.catch_up(socket).await;
                        return;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        if let Ok(Some(action)) = self.state.store.get_action(&self.uuid).await {
                            if action.state.is_final() {
                                let _ = self.catch_up(socket).await;
                                return;
                            }
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = &mut stop => return,
            }
        }
    }
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
