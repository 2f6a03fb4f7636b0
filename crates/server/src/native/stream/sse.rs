//! The stream as Server-Sent Events: `id` is the record id (what `Last-Event-ID`
//! resumes from), `data` the record as the native API renders it. The last event of
//! a stream the server ends is `event: end` with the reason and the resume cursor.
//! Each record's frame is rendered once and shared by every subscriber sending it
//! (see `LiveRecord`), which is why the body is written here rather than through
//! axum's per-subscriber `Event` builder.

use super::{RecordStream, HEARTBEAT};
use crate::stream::{End, Shape, NATIVE_JSON};
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use logbook_core::Record;
use serde_json::json;
use std::convert::Infallible;
use tokio::time::{interval, Interval, MissedTickBehavior};

/// `id: <record id>` and `data: <native JSON>` (which never holds a newline).
static FRAME: Shape = Shape { render: frame };

fn frame(record: &Record) -> Bytes {
    let json = (NATIVE_JSON.render)(record);
    let mut out = BytesMut::with_capacity(json.len() + 32);
    out.put_slice(format!("id: {}\ndata: ", record.id).as_bytes());
    out.put_slice(&json);
    out.put_slice(b"\n\n");
    out.freeze()
}

enum State {
    /// Tell the client the subscription exists before any record arrives.
    Opening(RecordStream),
    Following(RecordStream, Interval),
    Ended,
}

pub(super) fn serve(subscription: RecordStream) -> Response {
    let body = stream::unfold(State::Opening(subscription), next_chunk);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

async fn next_chunk(state: State) -> Option<(Result<Bytes, Infallible>, State)> {
    match state {
        State::Opening(subscription) => {
            let mut heartbeat = interval(HEARTBEAT);
            heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            heartbeat.reset();
            let opened = Bytes::from_static(b": subscribed\n\n");
            Some((Ok(opened), State::Following(subscription, heartbeat)))
        }
        State::Following(mut subscription, mut heartbeat) => {
            let next = tokio::select! {
                next = subscription.next() => next,
                _ = heartbeat.tick() => {
                    let beat = Bytes::from_static(b": heartbeat\n\n");
                    return Some((Ok(beat), State::Following(subscription, heartbeat)));
                }
            };
            match next {
                Ok(live) => {
                    // Heartbeats only on an idle stream: records keep it alive too.
                    heartbeat.reset();
                    let frame = live.rendered(&FRAME);
                    Some((Ok(frame), State::Following(subscription, heartbeat)))
                }
                Err(end) => Some((Ok(end_event(&subscription, &end)), State::Ended)),
            }
        }
        State::Ended => None,
    }
}

fn end_event(subscription: &RecordStream, end: &End) -> Bytes {
    let resume = subscription.position();
    let mut body = json!({ "reason": end.reason(), "resume_after": resume });
    if let End::StoreFailed(detail) = end {
        tracing::warn!("stream ended by a store error: {detail}");
    }
    if *end == End::TooSlow {
        body["message"] = "fell too far behind; reconnect with after".into();
    }
    Bytes::from(format!("event: end\nid: {resume}\ndata: {body}\n\n"))
}
