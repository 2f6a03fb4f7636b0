//! `GET /logbook/v1/stream` over SSE and WebSocket, against every store: filtering,
//! resuming without loss or repetition under concurrent writes, slow subscribers,
//! tenancy and shutdown.

use crate::support::{Backend, TestServer};
use futures_util::StreamExt;
use logbook_core::Role;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

store_tests!(
    sse_delivers_records_written_after_connecting_filtered,
    sse_resume_with_last_event_id_loses_and_repeats_nothing_under_writes,
    websocket_delivers_filtered_and_resumes_with_after_under_writes,
    a_slow_subscriber_does_not_hold_up_ingest_and_still_gets_everything,
    streams_are_scoped_to_the_readers_domain,
    bad_parameters_get_400_naming_the_field,
    shutdown_ends_the_stream_with_a_resume_point,
);

/// One Server-Sent Event (comments come back as `event == "comment"`).
#[derive(Debug, Default, Clone)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: String,
}

/// Reads events off an SSE response, exactly as a browser's EventSource would.
struct SseReader {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl SseReader {
    async fn open(server: &TestServer, query: &str, last_event_id: Option<i64>) -> SseReader {
        let mut request = server.request(Method::GET, &format!("/logbook/v1/stream{query}"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        SseReader::from(request.send().await.expect("connect")).await
    }

    async fn from(response: reqwest::Response) -> SseReader {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().expect("type"),
            "text/event-stream"
        );
        let mut reader = SseReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        };
        // The stream opens with a comment once the subscription exists; records
        // written after it are guaranteed to be delivered.
        let first = reader.next().await.expect("opening comment");
        assert_eq!(
            (first.event.as_str(), first.data.as_str()),
            ("comment", "subscribed")
        );
        reader
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    ..SseEvent::default()
                };
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.event = "comment".into();
                        event.data = comment.trim().to_string();
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match field {
                            "id" => event.id = Some(value.to_string()),
                            "event" => event.event = value.to_string(),
                            "data" => event.data.push_str(value),
                            _ => {}
                        }
                    }
                }
                return Some(event);
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next record (skipping heartbeats), with its event id.
    async fn record(&mut self) -> (i64, Value) {
        loop {
            let event = self.next().await.expect("stream ended early");
            if event.event == "message" {
                let record: Value = serde_json::from_str(&event.data).expect("record json");
                let id: i64 = event.id.expect("id").parse().expect("numeric id");
                assert_eq!(record["id"], id, "the event id is the record's id");
                return (id, record);
            }
            assert_eq!(event.event, "comment", "unexpected event {event:?}");
        }
    }
}

fn log(level: &str, category: &str, message: &str) -> Value {
    json!({"kind": "log", "level": level, "category": category, "message": message})
}

async fn sse_delivers_records_written_after_connecting_filtered(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(log("ERROR", "image", "before connecting"))
        .await;
    let mut stream = SseReader::open(&server, "?level=ERROR,WARN&category=image", None).await;
    let written = server
        .ingest(json!([
            log("INFO", "image", "wrong level"),
            log("ERROR", "image", "first match"),
            log("ERROR", "network", "wrong category"),
            log("WARN", "image", "second match"),
        ]))
        .await;
    let (id1, first) = stream.record().await;
    let (id2, second) = stream.record().await;
    assert_eq!((id1, id2), (written[1], written[3]));
    // Exactly the native API's rendering of each record.
    assert_eq!(
        first,
        server.get_json(&format!("/logbook/v1/records/{id1}")).await
    );
    assert_eq!(
        second,
        server.get_json(&format!("/logbook/v1/records/{id2}")).await
    );
    assert_eq!(second["message"], "second match");
    server.stop().await;
}

/// Writes `batches` batches of records while the test reads; returns every id of
/// a record matching `category=image`.
fn spawn_writer(server: &Arc<TestServer>, batches: usize) -> tokio::task::JoinHandle<Vec<i64>> {
    let server = Arc::clone(server);
    tokio::spawn(async move {
        let mut matching = Vec::new();
        for b in 0..batches {
            let ids = server
                .ingest(json!([
                    log("INFO", "image", &format!("batch {b} a")),
                    log("INFO", "network", &format!("batch {b} b")),
                    log("ERROR", "image", &format!("batch {b} c")),
                ]))
                .await;
            matching.extend([ids[0], ids[2]]);
            tokio::task::yield_now().await;
        }
        matching
    })
}

async fn sse_resume_with_last_event_id_loses_and_repeats_nothing_under_writes(backend: Backend) {
    let server = Arc::new(TestServer::start(backend).await);
    let mut seen = Vec::new();
    let mut stream = SseReader::open(&server, "?category=image", None).await;
    let writer = spawn_writer(&server, 150);
    // Read a few, hang up, reconnect from the last id; again and again while writing.
    for round in 0..12 {
        for _ in 0..(3 + round % 4) {
            seen.push(stream.record().await.0);
        }
        drop(stream);
        let last = *seen.last().expect("seen");
        stream = SseReader::open(&server, "?category=image", Some(last)).await;
    }
    let expected = writer.await.expect("writer");
    while seen.len() < expected.len() {
        seen.push(stream.record().await.0);
    }
    assert_eq!(
        seen, expected,
        "every matching record exactly once, in order"
    );
    drop(stream);
    Arc::into_inner(server).expect("sole owner").stop().await;
}

async fn websocket_delivers_filtered_and_resumes_with_after_under_writes(backend: Backend) {
    let server = Arc::new(TestServer::start(backend).await);
    let connect = |after: Option<i64>| {
        let server = Arc::clone(&server);
        async move {
            let mut url = format!("ws://{}/logbook/v1/stream?category=image", server.addr);
            if let Some(after) = after {
                url.push_str(&format!("&after={after}"));
            }
            let mut request = url.into_client_request().expect("request");
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {}", server.token).parse().expect("header"),
            );
            tokio_tungstenite::connect_async(request)
                .await
                .expect("ws connect")
                .0
        }
    };
    async fn record<S>(socket: &mut S) -> i64
    where
        S: futures_util::Stream<Item = tokio_tungstenite::tungstenite::Result<Message>> + Unpin,
    {
        loop {
            match socket.next().await.expect("open").expect("frame") {
                Message::Text(text) => {
                    let record: Value = serde_json::from_str(&text).expect("json");
                    assert_eq!(record["category"], "image");
                    return record["id"].as_i64().expect("id");
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
    let mut socket = connect(None).await;
    let writer = spawn_writer(&server, 120);
    let mut seen = Vec::new();
    for round in 0..10 {
        for _ in 0..(2 + round % 5) {
            seen.push(record(&mut socket).await);
        }
        socket.close(None).await.expect("close");
        socket = connect(seen.last().copied()).await;
    }
    let expected = writer.await.expect("writer");
    while seen.len() < expected.len() {
        seen.push(record(&mut socket).await);
    }
    assert_eq!(
        seen, expected,
        "every matching record exactly once, in order"
    );
    drop(socket);
    Arc::into_inner(server).expect("sole owner").stop().await;
}

async fn a_slow_subscriber_does_not_hold_up_ingest_and_still_gets_everything(backend: Backend) {
    let server = Arc::new(TestServer::start(backend).await);
    // Connected but not reading: its socket buffers fill and its broadcast receiver
    // falls far behind (more single-record commits than the notifier's ring holds).
    let mut slow = SseReader::open(&server, "", None).await;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..1200 {
                    let message = format!("writer {w} record {i} {}", "x".repeat(200));
                    ids.extend(server.ingest(log("INFO", "app", &message)).await);
                }
                ids
            })
        })
        .collect();
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    written.sort_unstable();
    // Ingest finished while the subscriber read nothing; now it reads everything,
    // served from the store where the ring had moved on.
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        seen.push(slow.record().await.0);
    }
    assert_eq!(seen, written);
    drop(slow);
    Arc::into_inner(server).expect("sole owner").stop().await;
}

async fn streams_are_scoped_to_the_readers_domain(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.user_with_token("alice", Role::User, "acme").await;
    let response = server
        .http
        .get(server.url("/logbook/v1/stream?domain_id=other,acme"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("connect");
    let mut stream = SseReader::from(response).await;
    let ids = server
        .ingest(json!([
            {"kind": "log", "message": "theirs", "domain_id": "other"},
            {"kind": "log", "message": "ours", "domain_id": "acme"},
        ]))
        .await;
    let (id, record) = stream.record().await;
    assert_eq!(id, ids[1]);
    assert_eq!(record["domain_id"], "acme");
    server.stop().await;
}

async fn bad_parameters_get_400_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (query, field) in [
        ("?level=LOUD", "level"),
        ("?after=yesterday", "after"),
        ("?since=whenever", "since"),
        ("?colour=red", "colour"),
    ] {
        let response = server.get(&format!("/logbook/v1/stream{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let response = server
        .request(Method::GET, "/logbook/v1/stream")
        .header("Last-Event-ID", "-3")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let unauthenticated = server
        .http
        .get(server.url("/logbook/v1/stream"))
        .send()
        .await
        .expect("send");
    assert_eq!(unauthenticated.status(), 401);
    server.stop().await;
}

async fn shutdown_ends_the_stream_with_a_resume_point(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut stream = SseReader::open(&server, "", None).await;
    let ids = server.ingest(log("INFO", "app", "last one")).await;
    assert_eq!(stream.record().await.0, ids[0]);
    let stopping = tokio::spawn(server.stop());
    let end = loop {
        let event = stream.next().await.expect("an end event before the close");
        if event.event != "comment" {
            break event;
        }
    };
    assert_eq!(end.event, "end");
    let body: Value = serde_json::from_str(&end.data).expect("json");
    assert_eq!(body["reason"], "shutdown");
    assert_eq!(body["resume_after"], ids[0]);
    assert_eq!(end.id, Some(ids[0].to_string()));
    assert!(stream.next().await.is_none(), "the connection closes");
    stopping.await.expect("server stopped");
}
