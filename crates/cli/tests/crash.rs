//! SIGKILL, the crash nothing can clean up after, during ingest and during sealing:
//! a real server process with tiny blocks (so it seals every few dozen records) is
//! killed again and again while writers stream batches; after each restart every
//! acknowledged record is there exactly once, under the id it was acknowledged with,
//! nothing unacknowledged is there twice, every block reads back whole, and
//! `logbook verify` holds (the kept chunks of leaves agree with the records).

use crate::support::process::Node;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "lbk_crash_test_token_0123456789abcdef";

fn spawn(dir: &std::path::Path) -> Node {
    Node::spawn(
        &[
            "--data",
            dir.to_str().expect("utf-8 path"),
            "--block-rows",
            "40",
            "--hot-records",
            "60",
        ],
        TOKEN,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_ingest_and_sealing_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let acknowledged = Arc::new(Mutex::new(HashMap::<i64, String>::new()));
    for round in 0..6 {
        let node = spawn(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..6 {
            let (url, acknowledged, stop) = (
                node.url("/logbook/v1/records"),
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
            );
            writers.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let size = 1 + (w * 7 + n) % 23;
                    let messages: Vec<String> = (0..size)
                        .map(|i| format!("round {round} writer {w} batch {n} line {i}"))
                        .collect();
                    n += 1;
                    let body: String = messages
                        .iter()
                        .map(|m| {
                            format!(
                                "{{\"kind\":\"log\",\"category\":\"crash\",\"message\":\"{m}\"}}\n"
                            )
                        })
                        .collect();
                    let Ok(response) = http
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                    else {
                        break; // killed
                    };
                    if response.status() != 201 {
                        break;
                    }
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    let first = body["first_id"].as_i64().expect("first id");
                    let mut acknowledged = acknowledged.lock().expect("lock");
                    for (i, m) in messages.into_iter().enumerate() {
                        acknowledged.insert(first + i as i64, m);
                    }
                }
            }));
        }
        // Kill once this round's writers have had several blocks sealed under them,
        // while they go on writing (so the sealer is at work too).
        let target = acknowledged.lock().expect("lock").len() + 400 + round * 97;
        let (sealed_before, _) = logbook_store::sqlite::tier_counts(dir.path()).expect("tiers");
        loop {
            let (sealed, _) = logbook_store::sqlite::tier_counts(dir.path()).expect("tiers");
            if acknowledged.lock().expect("lock").len() >= target && sealed >= sealed_before + 80 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(node); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.expect("writer");
        }

        let node = spawn(dir.path());
        let records = node.messages().await;
        let ids: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids once each, in order"
        );
        let mut seen = HashMap::new();
        for (id, message) in &records {
            assert!(
                seen.insert(message.clone(), *id).is_none(),
                "round {round}: {message:?} stored twice"
            );
        }
        for (id, message) in acknowledged.lock().expect("lock").iter() {
            assert_eq!(
                seen.get(message),
                Some(id),
                "round {round}: acknowledged record {id} kept under its id"
            );
        }
        // The leaves too: every complete chunk kept whole (root, ids and
        // fingerprints agree with its records), the rest in runs, none twice.
        let output = tokio::process::Command::new(crate::support::binary())
            .args(["verify", "--data", dir.path().to_str().expect("utf-8 path")])
            .env_remove("LOGBOOK_DATA")
            .env_remove("LOGBOOK_DATABASE_URL")
            .output()
            .await
            .expect("run logbook verify");
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && out.starts_with("OK: "),
            "round {round}: {out}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        drop(node);
    }
}
