//! The stream as a WebSocket: each text message is one record as the native API
//! renders it (its `id` is the resume point for `?after=`). Pings keep idle
//! connections alive; when the server ends the stream it sends a final
//! `{"end": {"reason", "resume_after"}}` message and closes.

use super::{RecordStream, HEARTBEAT};
use crate::stream::{End, NATIVE_JSON};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use serde_json::json;
use std::time::Duration;

/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn serve(mut socket: WebSocket, mut subscription: RecordStream) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let end = loop {
        tokio::select! {
            next = subscription.next() => match next {
                Ok(live) => {
                    // Native JSON is UTF-8 by construction; the check is a scan, not a copy.
                    let Ok(text) = Utf8Bytes::try_from(live.rendered(&NATIVE_JSON)) else {
                        break End::StoreFailed("a record did not render as UTF-8".into());
                    };
                    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => break End::TooSlow,
                    }
                }
                Err(end) => break end,
            },
            _ = heartbeat.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // The client closed or the connection broke.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pongs and anything the client says are ignored: the stream is one-way.
                Some(Ok(_)) => {}
            }
        }
    };
    if let End::StoreFailed(detail) = &end {
        tracing::warn!("stream ended by a store error: {detail}");
    }
    let resume = subscription.position();
    let body = json!({ "end": { "reason": end.reason(), "resume_after": resume } });
    let _ = tokio::time::timeout(SEND_TIMEOUT, async {
        let _ = socket.send(Message::Text(body.to_string().into())).await;
        let code = match end {
            End::Shutdown => 1001,
            End::TooSlow => 1008,
            End::StoreFailed(_) => 1011,
            End::Finished => 1000,
        };
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: end.reason().to_string().into(),
            })))
            .await;
    })
    .await;
}
