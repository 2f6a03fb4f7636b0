//! The events stream for a client that falls behind: it is caught up from the store,
//! so it still receives every event, once and in order.

use crate::support::{Backend, TestServer};
use base64::Engine;
use futures_util::StreamExt;
use logbook_server::Config;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

store_tests!(an_events_subscriber_that_fell_behind_still_gets_every_event);

async fn an_events_subscriber_that_fell_behind_still_gets_every_event(backend: Backend) {
    // A live queue of 8 records, and commits of hundreds of matching events: every
    // batch the store announces overflows it, so the subscriber cannot have taken
    // them live whatever its speed, and must have been caught up from the store.
    const QUEUE: usize = 8;
    const EVENTS: usize = 2000;
    let config = Config {
        live_queue: QUEUE,
        ..Config::default()
    };
    let server = TestServer::start_with(backend, config).await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", server.token));
    let mut request = format!("ws://{}/api/audit/v1/events", server.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Basic {basic}").parse().expect("header"),
    );
    let (mut events, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("events stream");
    let lags_before = server.state.streams.lags();
    let records: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({"kind": "event", "category": "action", "object_type": "action",
                   "object_id": format!("a{i}"), "status": "Success", "action": "update",
                   "data": {"object": "/api/app/v1/stack/s/"}})
        })
        .collect();
    server.ingest(Value::Array(records)).await;
    // A burst of small commits on top, which arrive live or are caught up with.
    for i in EVENTS..EVENTS + 50 {
        server
            .ingest(
                json!({"kind": "event", "category": "action", "object_type": "action",
                           "object_id": format!("a{i}"), "status": "Success", "action": "update"}),
            )
            .await;
    }
    let mut uuids = Vec::with_capacity(EVENTS + 50);
    while uuids.len() < EVENTS + 50 {
        match events.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).expect("json");
                assert_eq!(message["type"], "action", "{message}");
                uuids.push(message["uuid"].as_str().expect("uuid").to_string());
            }
            Some(Ok(_)) => {}
            other => panic!(
                "events stream ended after {} events: {other:?}",
                uuids.len()
            ),
        }
    }
    let expected: Vec<String> = (0..EVENTS + 50).map(|i| format!("a{i}")).collect();
    assert!(uuids == expected, "events were lost, repeated or reordered");
    assert!(
        server.state.streams.lags() > lags_before,
        "the subscriber never fell behind, so the test proved nothing"
    );
    drop(events);
    server.stop().await;
}
