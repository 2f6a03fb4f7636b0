//! What only a real process can show: records survive a restart, and SIGTERM during
//! a stream of writes loses nothing that was acknowledged.

use crate::support::process::Node;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "lbk_durability_test_token_0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let http = reqwest::Client::new();
    let node = Node::spawn_on_dir(dir.path(), TOKEN);
    let response = http
        .post(node.url("/logbook/v1/records"))
        .bearer_auth(TOKEN)
        .json(
            &json!([{"kind": "log", "message": "before restart", "data": {"k": [1, 2]}},
                      {"kind": "event", "category": "image"}]),
        )
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status(), 201);
    assert!(node.terminate(), "clean exit on SIGTERM");

    let node = Node::spawn_on_dir(dir.path(), TOKEN);
    let listed: Value = http
        .get(node.url("/logbook/v1/records?order=asc"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let records = listed["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["message"], "before restart");
    assert_eq!(records[0]["data"], json!({"k": [1, 2]}));
    assert_eq!(records[1]["category"], "image");
    // Ids continue after the restart.
    let response: Value = http
        .post(node.url("/logbook/v1/records"))
        .bearer_auth(TOKEN)
        .json(&json!({"kind": "log"}))
        .send()
        .await
        .expect("ingest")
        .json()
        .await
        .expect("json");
    assert_eq!(response["first_id"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_write_stream_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let node = Node::spawn_on_dir(dir.path(), TOKEN);
    let acknowledged = Arc::new(Mutex::new(Vec::<(i64, String)>::new()));
    // How many writes were acknowledged so far: the signal to stop the node on.
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let count = Arc::new(count);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16 {
        let http = reqwest::Client::new();
        let url = node.url("/logbook/v1/records");
        let acknowledged = Arc::clone(&acknowledged);
        let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let message = format!("writer {w} record {n}");
                n += 1;
                let Ok(response) = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&json!({"kind": "log", "message": message}))
                    .send()
                    .await
                else {
                    break; // the server has stopped accepting connections
                };
                if response.status() != 201 {
                    break;
                }
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                let id = body["first_id"].as_i64().expect("id in acknowledgement");
                acknowledged.lock().expect("lock").push((id, message));
                count.send_modify(|n| *n += 1);
            }
        }));
    }
    // Let the stream run, then signal mid-stream.
    counted
        .wait_for(|n| *n >= 300)
        .await
        .expect("the writers are running");
    let terminated = tokio::task::spawn_blocking(move || node.terminate());
    let exited_cleanly = terminated.await.expect("join");
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(exited_cleanly, "clean exit on SIGTERM");

    let node = Node::spawn_on_dir(dir.path(), TOKEN);
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 300);
    let stored: std::collections::HashMap<i64, String> =
        node.messages().await.into_iter().collect();
    for (id, message) in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(message),
            "acknowledged record {id} kept"
        );
    }
}

/// Two nodes starting at the same instant on an empty store both come up with the one
/// admin account (the loser of the race uses the winner's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_starts_at_once_share_one_admin() {
    use logbook_server::auth::{ensure_admin, Bootstrap};
    use logbook_store::Store;
    let dir = tempfile::tempdir().expect("temporary directory");
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(logbook_store::sqlite::SqliteStore::open(dir.path()).expect("open"));
    let settings = Bootstrap {
        admin_password: Some("pw-for-the-race".into()),
        admin_token: Some(TOKEN.into()),
    };
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            ensure_admin(store.as_ref(), &settings),
            ensure_admin(store.as_ref(), &settings)
        );
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    }
    assert_eq!(store.count_users().await.expect("count"), 1);
}
