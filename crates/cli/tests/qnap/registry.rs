//! The object registry behind the QNAP wait: container events from any API and the
//! native object API drive it (part of the `qnap` tests).

use super::events::{container_event, wait_json};
use crate::support::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

crate::store_tests!(
    container_events_and_the_native_api_drive_the_object,
    the_object_follows_its_last_event_when_writers_race,
);

async fn container_events_and_the_native_api_drive_the_object(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (state, expected) in [
        ("create", "stopped"),
        ("start", "running"),
        ("die", "stopped"),
        ("restart", "running"),
        ("kill", "stopped"),
        ("unpause", "running"),
        ("stop", "stopped"),
    ] {
        server.ingest(container_event("box", state)).await;
        let body: Value = server
            .get("/logbook/v1/objects/lxc/box")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(body["state"], expected, "after {state}");
    }
    // Events that say nothing about running leave it alone.
    server
        .ingest(json!({"kind": "event", "category": "container", "data": {"container": "box", "type": "lxc", "port": "add"}}))
        .await;
    let body: Value = server
        .get("/logbook/v1/objects/lxc/box")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["state"], "stopped");
    server.ingest(container_event("box", "destroy")).await;
    assert_eq!(
        server.get("/logbook/v1/objects/lxc/box").await.status(),
        StatusCode::NOT_FOUND
    );
    // The native API sets state and attributes directly; the wait shows them.
    let response = server
        .request(Method::PUT, "/logbook/v1/objects/docker/abc")
        .json(
            &json!({"name": "db", "state": "running", "attributes": {"image": "postgres:16",
            "ipaddress": "172.17.0.2", "cpu": 1.5, "memory": 1024, "rx": 10, "tx": 20}}),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    let (status, body, _) = wait_json(&server, "/api/v1/event/wait/docker/abc/running").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"cpu": 1.5, "id": "abc", "image": "postgres:16", "ipaddress": ["172.17.0.2"],
            "memory": 1024, "name": "db", "rx": 10, "state": "running", "tx": 20, "type": "docker"})
    );
    server.stop().await;
}

async fn the_object_follows_its_last_event_when_writers_race(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (http, url, token) = (
            server.http.clone(),
            server.url("/logbook/v1/records"),
            server.token.clone(),
        );
        writers.push(tokio::spawn(async move {
            for round in 0..25 {
                let state = if (writer + round) % 2 == 0 {
                    "start"
                } else {
                    "stop"
                };
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&container_event("raced", state))
                    .send()
                    .await
                    .expect("write");
                assert_eq!(response.status(), 201);
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let last = server
        .get_json("/logbook/v1/records?kind=event&limit=1")
        .await;
    let last_state = last["records"][0]["data"]["state"].as_str().expect("state");
    let expected = if last_state == "start" {
        "running"
    } else {
        "stopped"
    };
    let object = server.get_json("/logbook/v1/objects/lxc/raced").await;
    assert_eq!(object["state"], expected, "last event: {last}");
    server.stop().await;
}
