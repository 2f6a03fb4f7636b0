//! Journal filters: every field with every modifier, alone and combined, and paging.

use super::{call, ids_and_count, posted};
use crate::support::{Backend, TestServer};
use reqwest::Method;
use serde_json::json;

/// Four entries with every field set differently; returns their ids in order.
pub async fn seed(server: &TestServer) -> [i64; 4] {
    let entries = [
        json!({"object_id": "1", "object_type": "node", "action": "node_control.power_on",
            "status": "success", "event_time": "2018-03-22T07:25:31",
            "action_arguments": "{\"user\": \"admin\"}", "response_code": "200",
            "message": "Powered on node one", "user_id": "u1", "user_name": "alice",
            "domain_id": "d1", "request_id": "r1"}),
        json!({"object_id": "2", "object_type": "node", "action": "node_control.power_off",
            "status": "error", "event_time": "2018-03-22T07:25:32.5",
            "action_arguments": "{\"force\": true}", "response_code": 500,
            "message": "Power off failed", "user_id": "u2", "user_name": "bob",
            "domain_id": "d2", "request_id": "r2"}),
        json!({"object_id": "2fee08b2", "object_type": "project",
            "action": "dashboard.user.login", "status": "success",
            "event_time": "2018-03-23T00:00:00", "action_arguments": null,
            "message": "User \"admin\" was successfully logged in.", "user_id": "u1",
            "user_name": "alice", "domain_id": "d1", "request_id": "r3"}),
        json!({"object_id": "10", "object_type": "volume", "action": "volume.create",
            "status": "pending", "event_time": "2018-03-24T12:00:00",
            "action_arguments": "{\"size\": 10}", "response_code": "202",
            "message": "Creating", "user_id": "u3", "user_name": "carol",
            "domain_id": "d1", "request_id": "r4"}),
    ];
    let mut ids = [0; 4];
    for (i, entry) in entries.into_iter().enumerate() {
        let stored = posted(server, &server.token, "/v1/journal/", entry).await;
        ids[i] = stored["id"].as_i64().expect("id");
    }
    ids
}

pub async fn every_filter_and_modifier_alone_and_combined(backend: Backend) {
    let server = TestServer::start(backend).await;
    let [e1, e2, e3, e4] = seed(&server).await;
    let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let cases: Vec<(String, Vec<i64>)> = vec![
        (format!("id={e2}"), vec![e2]),
        (format!("id=eq:{e2}"), vec![e2]),
        (format!("id=neq:{e2}"), vec![e4, e3, e1]),
        (format!("id=in:{e1},{e3}"), vec![e3, e1]),
        (format!("id=nin:{e1},{e3}"), vec![e4, e2]),
        (format!("id=gt:{e2}"), vec![e4, e3]),
        (format!("id=gte:{e2}"), vec![e4, e3, e2]),
        (format!("id=lt:{e2}"), vec![e1]),
        (format!("id=lte:{e2}"), vec![e2, e1]),
        (format!("id=startswith:{e4}"), vec![e4]),
        ("object_id=2".into(), vec![e2]),
        ("object_id=like:FEE".into(), vec![e3]),
        ("object_id=startswith:1".into(), vec![e4, e1]),
        ("object_id=gt:2".into(), vec![e3]),
        ("object_type=neq:node".into(), vec![e4, e3]),
        ("object_type=in:project,volume".into(), vec![e4, e3]),
        ("object_type=nin:node,volume".into(), vec![e3]),
        ("action=startswith:node_control.".into(), vec![e2, e1]),
        ("action=like:POWER".into(), vec![e2, e1]),
        ("status=success".into(), vec![e3, e1]),
        ("status=eq:Success".into(), vec![]),
        ("status=lt:f".into(), vec![e2]),
        ("event_time=2018-03-22T07:25:32".into(), vec![e2]),
        ("event_time=eq:2018-03-22T07:25:31".into(), vec![e1]),
        (
            "event_time=neq:2018-03-22T07:25:31".into(),
            vec![e4, e3, e2],
        ),
        ("event_time=gt:2018-03-22T07:25:31".into(), vec![e4, e3, e2]),
        (
            "event_time=gte:2018-03-22T07:25:32".into(),
            vec![e4, e3, e2],
        ),
        ("event_time=lt:2018-03-22T07:25:32".into(), vec![e1]),
        ("event_time=lte:2018-03-22T07:25:32".into(), vec![e2, e1]),
        (
            "event_time=in:2018-03-22T07:25:31,2018-03-24T12:00:00".into(),
            vec![e4, e1],
        ),
        (
            "event_time=nin:2018-03-22T07:25:31,2018-03-24T12:00:00".into(),
            vec![e3, e2],
        ),
        (
            format!("action_arguments={}", enc("{\"user\": \"admin\"}")),
            vec![e1],
        ),
        (
            format!("action_arguments=neq:{}", enc("{\"user\": \"admin\"}")),
            vec![e4, e3, e2],
        ),
        ("action_arguments=like:FORCE".into(), vec![e2]),
        (
            format!("action_arguments=startswith:{}", enc("{\"s")),
            vec![e4],
        ),
        (
            format!("action_arguments=in:{}", enc("{\"size\": 10}")),
            vec![e4],
        ),
        ("response_code=500".into(), vec![e2]),
        ("response_code=in:200,202".into(), vec![e4, e1]),
        ("response_code=gte:3".into(), vec![e2]),
        ("response_code=nin:200".into(), vec![e4, e3, e2]),
        ("message=like:power".into(), vec![e2, e1]),
        ("message=startswith:User".into(), vec![e3]),
        ("user_id=u1".into(), vec![e3, e1]),
        ("user_name=in:bob,carol".into(), vec![e4, e2]),
        ("user_name=lte:b".into(), vec![e3, e1]),
        ("domain_id=d1".into(), vec![e4, e3, e1]),
        ("request_id=r4".into(), vec![e4]),
        ("request_id=nin:r1,r2".into(), vec![e4, e3]),
        // Combined: every condition holds; a repeated parameter adds a condition.
        (
            "status=success&domain_id=d1&event_time=gte:2018-03-23T00:00:00".into(),
            vec![e3],
        ),
        (
            "action=startswith:node&response_code=neq:500&user_name=alice".into(),
            vec![e1],
        ),
        (format!("id=gt:{e1}&id=lt:{e4}"), vec![e3, e2]),
        (
            "message=like:o&object_type=nin:project&request_id=in:r1,r2,r4".into(),
            vec![e2, e1],
        ),
        ("status=".into(), vec![e4, e3, e2, e1]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            ids_and_count(&server, &server.token, &query).await,
            expected,
            "{query}"
        );
    }
    // Paging: newest first, offset then limit; a limit above the maximum is lowered.
    let page = |q: &'static str| {
        let server = &server;
        async move {
            let (_, body) = call(server, Some(&server.token), Method::GET, q, None).await;
            body["journal"]
                .as_array()
                .expect("list")
                .iter()
                .map(|e| e["id"].as_i64().expect("id"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page("/v1/journal/?limit=2").await, vec![e4, e3]);
    assert_eq!(page("/v1/journal/?offset=1&limit=2").await, vec![e3, e2]);
    assert_eq!(page("/v1/journal/?offset=3").await, vec![e1]);
    assert_eq!(
        page("/v1/journal/?limit=100000").await,
        vec![e4, e3, e2, e1]
    );
    // The rendering of a fully set entry.
    let (_, one) = call(
        &server,
        Some(&server.token),
        Method::GET,
        &format!("/v1/journal/?id={e2}"),
        None,
    )
    .await;
    assert_eq!(one["journal"][0]["event_time"], "2018-03-22T07:25:32");
    assert_eq!(one["journal"][0]["response_code"], "500");
    assert_eq!(one["journal"][0]["action_arguments"], "{\"force\": true}");
    server.stop().await;
}
