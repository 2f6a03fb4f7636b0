//! The real PostgreSQL server stops and starts again under a running node during a
//! write stream: requests fail fast with a 503 JSON error while it is down, no acknowledged record
//! is lost, and the node recovers by itself. A test binary of its own, holding the
//! PostgreSQL tests' lock exclusively (see support/postgres.rs), because it stops the
//! server every other PostgreSQL test uses.

use crate::support::postgres::{exclusive_lock, TestDatabase};
use crate::support::process::Node;
use reqwest::Client;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `action` ("stop" or "start") on the local server: the shell command in
/// `LOGBOOK_TEST_PG_STOP` / `LOGBOOK_TEST_PG_START` if set, else Debian's cluster
/// tool for each installed version, else the service manager.
fn control_postgres(action: &str) {
    let variable = format!("LOGBOOK_TEST_PG_{}", action.to_uppercase());
    let attempts: Vec<Vec<String>> = match std::env::var(&variable) {
        Ok(command) => vec![vec!["sh".into(), "-c".into(), command]],
        Err(_) => {
            let versions = std::fs::read_dir("/etc/postgresql")
                .map(|dir| {
                    dir.filter_map(|entry| entry.ok())
                        .map(|entry| entry.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let mut attempts: Vec<Vec<String>> = versions
                .into_iter()
                .map(|version| {
                    [
                        "pg_ctlcluster",
                        "--skip-systemctl-redirect",
                        &version,
                        "main",
                        action,
                    ]
                    .map(String::from)
                    .to_vec()
                })
                .collect();
            attempts.push(["service", "postgresql", action].map(String::from).to_vec());
            attempts.push(
                ["systemctl", action, "postgresql"]
                    .map(String::from)
                    .to_vec(),
            );
            attempts
        }
    };
    for attempt in attempts {
        let status = Command::new(&attempt[0]).args(&attempt[1..]).status();
        if matches!(status, Ok(s) if s.success()) {
            return;
        }
    }
    panic!("could not {action} PostgreSQL (set {variable} to a command that does)");
}

/// The server, stopped until this is dropped: every later PostgreSQL test needs it
/// back even if this one fails half-way.
struct StoppedPostgres {
    started: bool,
}

impl StoppedPostgres {
    fn stop() -> StoppedPostgres {
        control_postgres("stop");
        StoppedPostgres { started: false }
    }

    fn start(mut self) {
        control_postgres("start");
        self.started = true;
    }
}

impl Drop for StoppedPostgres {
    fn drop(&mut self) {
        if !self.started {
            control_postgres("start");
        }
    }
}

/// Writes one log record: the status, whether it said when to retry, and the body.
async fn write_one(http: &Client, node: &Node, message: &str) -> (u16, bool, Value) {
    let response = http
        .post(node.url("/logbook/v1/records"))
        .bearer_auth(&node.token)
        .json(&json!({"kind": "log", "message": message}))
        .send()
        .await
        .expect("the node itself stays up");
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

#[derive(Default)]
struct Outcomes {
    /// (id, message) of every acknowledged record.
    acked: Vec<(i64, String)>,
    unavailable: usize,
    /// The slowest 503, in milliseconds.
    slowest_failure_ms: f64,
    /// 503s that did not say when to retry.
    without_retry_after: usize,
    other_failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_during_writes_loses_nothing_acknowledged() {
    let _lock = tokio::task::spawn_blocking(exclusive_lock)
        .await
        .expect("lock");
    let database = TestDatabase::create_unlocked().await;
    let token = logbook_server::auth::secrets::new_token();
    let node = Arc::new(Node::spawn(&["--database", &database.url], &token));
    let http = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledged writes so far: the test moves on when writes have happened, not
    // when some time has passed.
    let (acks, mut acked) = tokio::sync::watch::channel(0usize);
    let acks = Arc::new(acks);

    let mut writers = Vec::new();
    for w in 0..4 {
        let (node, http, stop, acks) = (node.clone(), http.clone(), stop.clone(), acks.clone());
        writers.push(tokio::spawn(async move {
            let mut outcomes = Outcomes::default();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let message = format!("w{w} #{i}");
                let started = Instant::now();
                let (status, retry_after, body) = write_one(&http, &node, &message).await;
                match status {
                    201 => {
                        outcomes
                            .acked
                            .push((body["first_id"].as_i64().expect("id"), message));
                        acks.send_modify(|n| *n += 1);
                    }
                    503 => {
                        assert!(
                            body["error"].is_string(),
                            "503 without a JSON error: {body}"
                        );
                        outcomes.unavailable += 1;
                        outcomes.without_retry_after += usize::from(!retry_after);
                        let ms = started.elapsed().as_secs_f64() * 1000.0;
                        outcomes.slowest_failure_ms = outcomes.slowest_failure_ms.max(ms);
                        // A client's pause before retrying, as Retry-After asks.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => outcomes.other_failures.push(format!("{status} {body}")),
                }
            }
            outcomes
        }));
    }

    // Stop the server once the writers are well under way. Writes the node had
    // committed may still be waiting to become visible, so the writers alone need
    // not send anything while it is down: a probe does, and must get a 503 at once.
    acked
        .wait_for(|n| *n >= 100)
        .await
        .expect("writers running");
    let restart_started = Instant::now();
    let stopped = tokio::task::spawn_blocking(StoppedPostgres::stop)
        .await
        .expect("stop task");
    let mut probe_slowest_ms = 0f64;
    for i in 0..10 {
        let started = Instant::now();
        let (status, retry_after, body) = write_one(&http, &node, &format!("probe #{i}")).await;
        probe_slowest_ms = probe_slowest_ms.max(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 503, "a write while the database is down: {body}");
        assert!(
            body["error"].is_string(),
            "503 without a JSON error: {body}"
        );
        assert!(retry_after, "a 503 says when to retry (Retry-After)");
    }
    tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("start task");
    let restart_took = restart_started.elapsed();

    // After the restart, the node must recover by itself: its writers' next
    // acknowledgements are the signal (a hang guard fails a node that never does).
    let recovered = Instant::now();
    let after_restart = *acked.borrow();
    tokio::time::timeout(
        Duration::from_secs(120),
        acked.wait_for(|n| *n >= after_restart + 100),
    )
    .await
    .expect("the node recovers and acknowledges writes again")
    .expect("writers running");
    let recovery = recovered.elapsed();
    stop.store(true, Ordering::Relaxed);

    let mut all = Outcomes::default();
    for writer in writers {
        let outcome = writer.await.expect("writer");
        all.acked.extend(outcome.acked);
        all.unavailable += outcome.unavailable;
        all.slowest_failure_ms = all.slowest_failure_ms.max(outcome.slowest_failure_ms);
        all.without_retry_after += outcome.without_retry_after;
        all.other_failures.extend(outcome.other_failures);
    }
    eprintln!(
        "stop, 10 probes and start took {restart_took:?} (slowest probe {probe_slowest_ms:.0} ms); \
         {} acknowledged, {} writers' requests answered 503 (slowest {:.0} ms); \
         100 more writes acknowledged {recovery:?} after the start returned",
        all.acked.len(),
        all.unavailable,
        all.slowest_failure_ms
    );
    assert!(all.other_failures.is_empty(), "{:?}", all.other_failures);
    assert_eq!(
        all.without_retry_after, 0,
        "every 503 says when to retry (Retry-After)"
    );

    // Every acknowledged record is there, with its own content.
    for (id, message) in &all.acked {
        let response = http
            .get(node.url(&format!("/logbook/v1/records/{id}")))
            .bearer_auth(&node.token)
            .send()
            .await
            .expect("get");
        assert_eq!(
            response.status(),
            200,
            "acknowledged record {id} is missing"
        );
        let record: Value = response.json().await.expect("json");
        assert_eq!(record["message"].as_str(), Some(message.as_str()));
    }
    drop(node);
    database.drop().await;
}
