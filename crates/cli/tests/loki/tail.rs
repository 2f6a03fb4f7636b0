//! `/loki/api/v1/tail`: history then live lines in Loki's message shape, and the
//! resume Loki lacks: a client that disconnects while records keep arriving and
//! reconnects with the cursor of the last message gets every line it missed,
//! exactly once.

use super::client::{Entry, LokiClient, TailMessage};
use crate::support::{Backend, TestServer};
use serde_json::json;
use std::collections::BTreeMap;

fn ids_of(message: &TailMessage) -> Vec<i64> {
    message
        .streams
        .iter()
        .flat_map(|s| &s.values)
        .map(|e| match e {
            Entry::Categorized(_, _, c) => c.structured_metadata["id"].parse().expect("id"),
            Entry::Plain(..) => panic!("categorised"),
        })
        .collect()
}

pub async fn tail_sends_history_then_live_lines_in_lokis_shape(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = logbook_core::Timestamp::now().epoch_seconds_f64();
    let history: Vec<_> = (0..5)
        .map(|i| json!({"kind": "log", "source": "api", "ts": now - 10.0 + i as f64, "message": format!("old {i}")}))
        .collect();
    let old = server.ingest(json!(history)).await;
    server
        .ingest(json!({"kind": "log", "source": "web", "message": "old other"}))
        .await;
    let loki = LokiClient::new(&server.base, &server.token);
    let mut tail = loki
        .tail(&[
            (
                "query",
                r#"{source="api"} |~ "(new|old) [0-9]""#.to_string(),
            ),
            ("limit", "3".into()),
        ])
        .await;
    // The first message is the newest three lines of the last hour, oldest first.
    let first = tail.next().await.expect("history");
    assert_eq!(ids_of(&first), old[2..].to_vec());
    assert_eq!(first.streams.len(), 1);
    assert_eq!(first.streams[0].stream["source"], "api");
    assert_eq!(first.encoding_flags, ["categorize-labels"]);
    assert!(first.dropped_entries.is_empty(), "Logbook drops nothing");
    // Then what arrives, filtered.
    let live = server
        .ingest(json!([
            {"kind": "log", "source": "api", "message": "new 1"},
            {"kind": "log", "source": "web", "message": "new 2"},
            {"kind": "log", "source": "api", "message": "new line"},
            {"kind": "log", "source": "api", "message": "new 3"},
        ]))
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let message = tail.next().await.expect("live message");
        let values: Vec<(String, String)> = message.streams[0]
            .values
            .iter()
            .map(|e| (e.nanos().to_string(), e.line().to_string()))
            .collect();
        assert!(values.iter().all(|(ns, _)| ns.len() >= 19), "{values:?}");
        got.extend(ids_of(&message));
    }
    assert_eq!(got, [live[0], live[3]]);
    tail.close().await;
    server.stop().await;
}

pub async fn a_resumed_tail_loses_and_repeats_nothing_under_concurrent_writes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let loki = LokiClient::new(&server.base, &server.token);
    let query = [("query", r#"{kind="log"} != "skip""#.to_string())];
    let mut tail = loki.tail(&query).await;
    let first = tail.next().await.expect("subscribed");
    assert!(ids_of(&first).is_empty(), "nothing written yet");

    // A writer keeps writing batches while the client reads, disconnects and resumes.
    let writer = {
        let http = server.http.clone();
        let url = server.url("/logbook/v1/records");
        let token = server.token.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            for batch in 0..30 {
                let records: Vec<_> = (0..10)
                    .map(|i| {
                        let message = if i == 3 {
                            "skip me".to_string()
                        } else {
                            format!("b{batch} r{i}")
                        };
                        json!({"kind": "log", "source": "api", "message": message})
                    })
                    .collect();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&records)
                    .send()
                    .await
                    .expect("write");
                assert_eq!(response.status(), 201);
                let body: serde_json::Value = response.json().await.expect("json");
                let first = body["first_id"].as_i64().expect("first");
                written.extend((first..first + 10).filter(|id| (id - first) != 3));
                tokio::task::yield_now().await;
            }
            written
        })
    };

    let mut received: Vec<i64> = Vec::new();
    let mut cursor = first.cursor.clone();
    // 30 batches of 10, one line of each filtered out.
    let total = 30 * 9;
    // Three sessions: read a few messages, drop the connection, resume.
    for _ in 0..3 {
        for _ in 0..3 {
            if received.len() >= total {
                break;
            }
            match tail.next().await {
                Some(message) => {
                    received.extend(ids_of(&message));
                    cursor = message.cursor;
                }
                None => break,
            }
        }
        drop(tail);
        let mut resumed = query.to_vec();
        resumed.push(("cursor", cursor.clone()));
        resumed.push(("start", "0".into()));
        tail = loki.tail(&resumed).await;
    }
    let written = writer.await.expect("writer");
    assert_eq!(written.len(), total);
    // Read until everything written has come, through the last session.
    while received.len() < written.len() {
        let message = tail.next().await.expect("the rest");
        received.extend(ids_of(&message));
    }
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for id in &received {
        *counts.entry(*id).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "no line twice");
    assert_eq!(
        received, written,
        "every line, in order, none filtered out wrongly"
    );
    tail.close().await;
    server.stop().await;
}
