//! The QNAP event feed's cursor and the container wait (part of the `qnap` tests).

use crate::support::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

crate::store_tests!(
    polling_from_the_last_offset_sees_every_event_once_under_concurrent_writes,
    event_windows_follow_index_and_offset,
    a_wait_is_woken_by_the_write,
    a_wait_times_out_with_the_current_info,
    a_wait_for_an_unknown_object,
    a_thousand_waiters_are_woken_by_one_write,
);

pub fn container_event(id: &str, state: &str) -> Value {
    json!({"kind": "event", "category": "container", "user": "all",
        "data": {"container": id, "state": state, "type": "lxc"}})
}

async fn polling_from_the_last_offset_sees_every_event_once_under_concurrent_writes(
    backend: Backend,
) {
    const EVENTS: usize = 600;
    let server = TestServer::start(backend).await;
    let start = server.get_json("/api/v1/event").await;
    assert_eq!(start, json!({"index": 0, "messages": [], "offset": 0}));
    let mut index = start["offset"].as_i64().expect("offset");
    let writer = {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/logbook/v1/records"),
            server.token.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            let mut size = 1;
            while n < EVENTS {
                // Batches of varying size, interleaved with log lines so event ids have gaps.
                let mut batch = vec![json!({"kind": "log", "message": "noise"})];
                for _ in 0..size.min(EVENTS - n) {
                    batch.push(json!({"kind": "event", "category": "export", "user": "w",
                        "data": {"n": n}}));
                    n += 1;
                }
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&batch)
                    .send()
                    .await
                    .expect("write");
                assert_eq!(response.status(), 201);
                size = size % 37 + 1;
            }
        })
    };
    let mut seen = Vec::new();
    let mut polls = 0;
    while seen.len() < EVENTS {
        polls += 1;
        assert!(
            polls < 100_000,
            "polling did not converge; saw {}",
            seen.len()
        );
        let answer = server
            .get_json(&format!("/api/v1/event?index={index}"))
            .await;
        assert_eq!(answer["index"], index);
        let messages = answer["messages"].as_array().expect("messages");
        // Within one answer the newest comes first, as in the document.
        for message in messages.iter().rev() {
            let text = message.as_str().expect("text");
            let payload = text.splitn(4, ':').nth(3).expect("payload");
            let data: Value = serde_json::from_str(payload).expect("json");
            seen.push(data["n"].as_u64().expect("n") as usize);
        }
        let offset = answer["offset"].as_i64().expect("offset");
        assert!(offset >= index, "the cursor never goes back");
        index = offset;
    }
    writer.await.expect("writer");
    assert_eq!(
        seen,
        (0..EVENTS).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let last = server
        .get_json(&format!("/api/v1/event?index={index}"))
        .await;
    assert_eq!(last["messages"], json!([]));
    eprintln!("cursor polling: {EVENTS} events in {polls} polls");
    server.stop().await;
}

async fn event_windows_follow_index_and_offset(backend: Backend) {
    let server = super::seeded(backend).await;
    // (61, 65]: the four oldest example events (ids 62..=65), newest first.
    let window = server.get_json("/api/v1/event?index=61&offset=65").await;
    let expected: Vec<&str> = super::EXAMPLE_EVENTS[16..].to_vec();
    assert_eq!(
        window,
        json!({"index": 61, "messages": expected, "offset": 65})
    );
    // Only `offset`: the latest 20 at or below it.
    let upto = server.get_json("/api/v1/event?offset=70").await;
    assert_eq!(upto["offset"], 70);
    // Only 13 events (58..=70) exist at or below 70; the logs before them are skipped.
    assert_eq!(upto["index"], 57, "{upto}");
    assert_eq!(upto["messages"].as_array().expect("messages").len(), 13);
    // Logs never appear in the feed, and a cursor past the end is simply empty.
    let beyond = server.get_json("/api/v1/event?index=1000").await;
    assert_eq!(
        beyond,
        json!({"index": 1000, "messages": [], "offset": 1000})
    );
    server.stop().await;
}

pub async fn wait_json(server: &TestServer, path: &str) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let response = server.get(path).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    (status, body, started.elapsed())
}

/// Starts a wait in the background; it answers its status and body.
fn spawn_wait(server: &TestServer, path: &str) -> JoinHandle<(StatusCode, Value)> {
    let (http, url, token) = (server.http.clone(), server.url(path), server.token.clone());
    tokio::spawn(async move {
        let response = http.get(url).bearer_auth(token).send().await.expect("wait");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        (status, body)
    })
}

async fn a_wait_is_woken_by_the_write(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.ingest(container_event("c1", "create")).await;
    // Long enough that only the write can end it: a waiter that was not woken would
    // answer the state it last read, which is not `running`.
    let waiter = spawn_wait(&server, "/api/v1/event/wait/lxc/c1/running?duration=30");
    server.object_waiters(1).await;
    assert!(
        !waiter.is_finished(),
        "the waiter answered before the container ran"
    );
    let sent = Instant::now();
    server.ingest(container_event("c1", "start")).await;
    let acknowledged = sent.elapsed();
    let (status, body) = waiter.await.expect("waiter");
    eprintln!(
        "wait answered {:?} after the write was sent (write acknowledged after {acknowledged:?})",
        sent.elapsed()
    );
    assert_eq!(status, 200);
    assert_eq!(body["state"], "running");
    assert_eq!(body["id"], "c1");
    // Already in the state: answered at once, long before the 30 s duration.
    let (status, body, took) =
        wait_json(&server, "/api/v1/event/wait/lxc/c1/running?duration=30").await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("running"))
    );
    eprintln!("wait already satisfied answered in {took:?}");
    server.stop().await;
}

async fn a_wait_times_out_with_the_current_info(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.ingest(container_event("c2", "stop")).await;
    let (status, body, took) =
        wait_json(&server, "/api/v1/event/wait/lxc/c2/running?duration=0.5").await;
    eprintln!("a 0.5 s wait answered after {took:?}");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"cpu": 0.0, "id": "c2", "image": null, "ipaddress": [], "memory": 0,
            "name": "c2", "rx": 0, "state": "stopped", "tx": 0, "type": "lxc"})
    );
    // A write to another object does not end the wait: c3's own waiter is woken by
    // it, c2's keeps waiting and answers only when c2 itself runs.
    let c2 = spawn_wait(&server, "/api/v1/event/wait/lxc/c2/running?duration=30");
    let c3 = spawn_wait(&server, "/api/v1/event/wait/lxc/c3/running?duration=30");
    server.object_waiters(2).await;
    server.ingest(container_event("c3", "start")).await;
    let (status, body) = c3.await.expect("c3 waiter");
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("running"))
    );
    assert!(!c2.is_finished(), "c3's change ended c2's wait");
    server.ingest(container_event("c2", "start")).await;
    let (status, body) = c2.await.expect("c2 waiter");
    assert_eq!(
        (status, &body["id"], &body["state"]),
        (StatusCode::OK, &json!("c2"), &json!("running"))
    );
    server.stop().await;
}

async fn a_wait_for_an_unknown_object(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Never exists: 404 with QNAP's error body once the duration has passed.
    let (status, body, took) = wait_json(
        &server,
        "/api/v1/event/wait/docker/nope/running?duration=0.4",
    )
    .await;
    eprintln!("a 0.4 s wait for an unknown object answered after {took:?}");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().expect("error").contains("nope"),
        "{body}"
    );
    // Appears during the wait: answered when it reaches the state.
    let waiter = spawn_wait(&server, "/api/v1/event/wait/docker/d9/stopped?duration=30");
    server.object_waiters(1).await;
    server
        .ingest(
            json!({"kind": "event", "category": "container", "user": "all",
            "data": {"container": "web", "state": "create", "type": "docker", "id": "d9"}}),
        )
        .await;
    let (status, body) = waiter.await.expect("waiter");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["id"], &body["name"], &body["state"]),
        (&json!("d9"), &json!("web"), &json!("stopped"))
    );
    // Another domain's container answers exactly like an unknown one.
    let token = server
        .user_with_token("other", logbook_core::Role::User, "elsewhere")
        .await;
    let response = server
        .http
        .get(server.url("/api/v1/event/wait/docker/d9/stopped?duration=0"))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn a_thousand_waiters_are_woken_by_one_write(backend: Backend) {
    const WAITERS: usize = 1000;
    let server = TestServer::start(backend).await;
    let creates: Vec<Value> = (0..WAITERS)
        .map(|i| container_event(&format!("m{i}"), "create"))
        .collect();
    let started = Instant::now();
    server.ingest(Value::Array(creates)).await;
    let created = started.elapsed();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let (http, url, token) = (
                server.http.clone(),
                server.url(&format!("/api/v1/event/wait/lxc/m{i}/running?duration=60")),
                server.token.clone(),
            );
            tokio::spawn(async move {
                let response = http.get(url).bearer_auth(token).send().await.expect("wait");
                let body: Value = response.json().await.expect("json");
                (body, Instant::now())
            })
        })
        .collect();
    server.object_waiters(WAITERS).await;
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "no waiter answers before the write"
    );
    let starts: Vec<Value> = (0..WAITERS)
        .map(|i| container_event(&format!("m{i}"), "start"))
        .collect();
    let sent = Instant::now();
    server.ingest(Value::Array(starts)).await;
    let acknowledged = sent.elapsed();
    let mut slowest = Duration::ZERO;
    for (i, waiter) in waiters.into_iter().enumerate() {
        let (body, answered) = waiter.await.expect("waiter");
        // Each answers its own container, running: woken by the write, not by the
        // 60 s duration (which would answer the state it last read).
        assert_eq!(
            (&body["id"], &body["state"]),
            (&json!(format!("m{i}")), &json!("running"))
        );
        slowest = slowest.max(answered.saturating_duration_since(sent));
    }
    eprintln!("{WAITERS} waiters all answered within {slowest:?} of sending the write (acknowledged after {acknowledged:?}; the same write without waiters, creating the objects, took {created:?})");
    server.stop().await;
}
