//! The stream as Server-Sent Events: `id` is the record id (what `Last-Event-ID`
//! resumes from), `data` the record as the native API renders it. The last event of
//! a stream the server ends is `event: end` with the reason and the resume cursor.

use super::subscription::Subscription;
use super::HEARTBEAT;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::convert::Infallible;

enum State {
    /// Tell the client the subscription exists before any record arrives.
    Opening(Subscription),
    Following(Subscription),
    Ended,
}

pub fn serve(subscription: Subscription) -> Response {
    Sse::new(events(subscription))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response()
}

fn events(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(State::Opening(subscription), |state| async move {
        match state {
            State::Opening(subscription) => {
                let event = Event::default().comment("subscribed");
                Some((Ok(event), State::Following(subscription)))
            }
            State::Following(mut subscription) => match subscription.next().await {
                Ok(record) => {
                    let event = Event::default()
                        .id(record.id.to_string())
                        .data(record.to_json().to_string());
                    Some((Ok(event), State::Following(subscription)))
                }
                Err(end) => {
                    let resume = subscription.position();
                    let mut body = json!({ "reason": end.reason(), "resume_after": resume });
                    if let super::subscription::End::StoreFailed(detail) = &end {
                        tracing::warn!("stream ended by a store error: {detail}");
                    }
                    if end == super::subscription::End::TooSlow {
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
