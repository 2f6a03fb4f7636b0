//! The stream as Server-Sent Events: `id` is the record id (what `Last-Event-ID`
//! resumes from), `data` the record as the native API renders it. The last event of
//! a stream the server ends is `event: end` with the reason and the resume cursor.

use super::{RecordStream, HEARTBEAT};
use crate::stream::End;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::convert::Infallible;

enum State {
    /// Tell the client the subscription exists before any record arrives.
    Opening(RecordStream),
    Following(RecordStream),
    Ended,
}

pub(super) fn serve(subscription: RecordStream) -> Response {
    Sse::new(events(subscription))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response()
}

fn events(subscription: RecordStream) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(State::Opening(subscription), |state| async move {
        match state {
            State::Opening(subscription) => {
                let event = Event::default().comment("subscribed");
                Some((Ok(event), State::Following(subscription)))
            }
            State::Following(mut subscription) => match subscription.next().await {
                Ok(live) => {
                    let event = Event::default()
                        .id(live.record.id.to_string())
                        .data(live.native_json());
                    Some((Ok(event), State::Following(subscription)))
                }
                Err(end) => {
                    let resume = subscription.position();
                    let mut body = json!({ "reason": end.reason(), "resume_after": resume });
                    if let End::StoreFailed(detail) = &end {
                        tracing::warn!("stream ended by a store error: {detail}");
                    }
                    if end == End::TooSlow {
                        body["message"] = "fell too far behind; reconnect with after".into();
                    }
                    let event = Event::default()
                        .event("end")
                        .id(resume.to_string())
                        .data(body.to_string());
                    Some((Ok(event), State::Ended))
                }
            },
            State::Ended => None,
        }
    })
}
