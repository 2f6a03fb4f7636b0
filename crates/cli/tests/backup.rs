//! `logbook backup` of a running server's store and `logbook restore` of it, as real
//! processes: the copy holds every record acknowledged before the backup began.

use crate::support::process::Node;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "lbk_backup_test_token_0123456789abc";

fn logbook(args: &[&str]) -> Output {
    Command::new(crate::support::binary())
        .args(args)
        .env_remove("LOGBOOK_DATA")
        .env_remove("LOGBOOK_DATABASE_URL")
        .output()
        .expect("run logbook")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_during_ingest_restores_everything_acknowledged_before_it() {
    let live = tempfile::tempdir().expect("temporary directory");
    let copy = tempfile::tempdir().expect("temporary directory");
    let restored = tempfile::tempdir().expect("temporary directory");
    let node = Node::spawn_on_dir(live.path(), TOKEN);

    let acknowledged = Arc::new(Mutex::new(Vec::<(i64, String)>::new()));
    let (progress, mut seen) = tokio::sync::watch::channel(0usize);
    let progress = Arc::new(progress);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url) = (reqwest::Client::new(), node.url("/logbook/v1/records"));
        let (acknowledged, progress, stop) = (
            Arc::clone(&acknowledged),
            Arc::clone(&progress),
            Arc::clone(&stop),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Value> = (0..50)
                    .map(|i| json!({"kind": "log", "message": format!("w{w} b{n} r{i}")}))
                    .collect();
                n += 1;
                let response = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&batch)
                    .send()
                    .await
                    .expect("ingest");
                assert_eq!(response.status(), 201);
                let body: Value = response.json().await.expect("json");
                let first = body["first_id"].as_i64().expect("first id");
                let mut acknowledged = acknowledged.lock().expect("lock");
                for (i, record) in batch.iter().enumerate() {
                    let message = record["message"].as_str().expect("message").to_string();
                    acknowledged.push((first + i as i64, message));
                }
                progress.send_replace(acknowledged.len());
            }
        }));
    }
    seen.wait_for(|n| *n >= 2000)
        .await
        .expect("writers running");
    let before = acknowledged.lock().expect("lock").clone();

    let backup = tokio::task::spawn_blocking({
        let (from, to) = (live.path().to_path_buf(), copy.path().join("b"));
        move || logbook(&["backup", "--data", text(&from), "--to", text(&to)])
    })
    .await
    .expect("join");
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );

    // The store is in use: restoring over it now is refused, and nothing changes.
    let over_live = logbook(&[
        "restore",
        "--from",
        text(&copy.path().join("b")),
        "--data",
        text(live.path()),
        "--replace",
    ]);
    assert!(!over_live.status.success());
    assert!(
        String::from_utf8_lossy(&over_live.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&over_live.stderr)
    );
    // A backup never overwrites an earlier one.
    let again = logbook(&[
        "backup",
        "--data",
        text(live.path()),
        "--to",
        text(&copy.path().join("b")),
    ]);
    assert!(!again.status.success());

    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let total = acknowledged.lock().expect("lock").len();
    assert!(node.terminate(), "clean exit");

    let restore = logbook(&[
        "restore",
        "--from",
        text(&copy.path().join("b")),
        "--data",
        text(restored.path()),
    ]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let twice = logbook(&[
        "restore",
        "--from",
        text(&copy.path().join("b")),
        "--data",
        text(restored.path()),
    ]);
    assert!(!twice.status.success(), "an existing store needs --replace");

    let node = Node::spawn_on_dir(restored.path(), TOKEN);
    let stored: HashMap<i64, String> = node.messages().await.into_iter().collect();
    for (id, message) in &before {
        assert_eq!(
            stored.get(id),
            Some(message),
            "record {id} acknowledged before the backup"
        );
    }
    assert!(
        stored.len() >= before.len() && stored.len() <= total,
        "{} records restored; {} acknowledged before, {total} in all",
        stored.len(),
        before.len()
    );
    assert!(node.terminate(), "clean exit");
}
