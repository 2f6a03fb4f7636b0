//! A failed fsync (issue 20, point 5), on a real `logbook serve` process whose data
//! directory is a FUSE passthrough told to fail every sync with `EIO`
//! (`support/fuse.rs`): the batch whose commit cannot be made durable is not
//! acknowledged (a 5xx JSON error with `Retry-After`), the server stays up, and once
//! syncs work again writes are acknowledged without a restart. Every acknowledged
//! record is readable exactly once, before and after an unclean restart, and a
//! refused batch is either wholly absent or wholly present: SQLite leaves the frames
//! of a commit whose fsync failed in the write-ahead log, and a restart before the
//! next commit overwrites them recovers them (docs/operations.md, "A failed fsync").

use crate::support::fuse::FaultyMount;
use crate::support::process::Node;
use serde_json::{json, Value};
use std::collections::HashMap;

const TOKEN: &str = "lbk_fsync_failure_test_token_0123456789ab";
const BATCH: usize = 20;

/// A batch the server acknowledged: its messages and the ids it answered.
struct Acknowledged {
    tag: String,
    first_id: i64,
    last_id: i64,
}

fn message(tag: &str, i: usize) -> String {
    format!("{tag} {i}")
}

async fn post(http: &reqwest::Client, node: &Node, tag: &str) -> reqwest::Response {
    let records: Vec<Value> = (0..BATCH)
        .map(|i| json!({"kind": "log", "message": message(tag, i)}))
        .collect();
    http.post(node.url("/logbook/v1/records"))
        .bearer_auth(TOKEN)
        .json(&records)
        .send()
        .await
        .expect("send")
}

async fn acknowledged(http: &reqwest::Client, node: &Node, tag: &str) -> Acknowledged {
    let response = post(http, node, tag).await;
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON answer");
    assert_eq!(status, 201, "{tag}: {body}");
    Acknowledged {
        tag: tag.into(),
        first_id: body["first_id"].as_i64().expect("first_id"),
        last_id: body["last_id"].as_i64().expect("last_id"),
    }
}

/// Posts a batch while syncs fail: it must not be acknowledged.
async fn refused(http: &reqwest::Client, node: &Node, mount: &FaultyMount, tag: &str) {
    let failed_before = mount.failed_syncs();
    let response = post(http, node, tag).await;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body: Value = response.json().await.expect("a JSON answer");
    assert!(
        status.is_server_error() && status != 507,
        "{tag}: a write whose fsync failed answered {status}: {body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(retry_after.is_some(), "{tag}: no Retry-After on {status}");
    assert!(
        mount.failed_syncs() > failed_before,
        "{tag}: the refusal must come from the failed fsync"
    );
}

/// Every acknowledged record exactly once, at the id it was acknowledged with; each
/// refused batch wholly present or wholly absent; no message twice. Returns the
/// refused tags found present.
async fn check(node: &Node, acknowledged: &[Acknowledged], refused: &[&str]) -> Vec<String> {
    let stored = node.messages().await;
    let mut seen: HashMap<&str, Vec<i64>> = HashMap::new();
    for (id, text) in &stored {
        seen.entry(text.as_str()).or_default().push(*id);
    }
    for (text, ids) in &seen {
        assert_eq!(ids.len(), 1, "{text:?} stored {} times: {ids:?}", ids.len());
    }
    for batch in acknowledged {
        assert_eq!(batch.last_id - batch.first_id + 1, BATCH as i64);
        for i in 0..BATCH {
            let text = message(&batch.tag, i);
            assert_eq!(
                seen.get(text.as_str()).map(Vec::as_slice),
                Some(&[batch.first_id + i as i64][..]),
                "acknowledged {text:?} must be readable at its id"
            );
        }
    }
    let mut present = Vec::new();
    for tag in refused {
        let found = (0..BATCH)
            .filter(|&i| seen.contains_key(message(tag, i).as_str()))
            .count();
        assert!(
            found == 0 || found == BATCH,
            "refused batch {tag} half there: {found} of {BATCH} records"
        );
        if found == BATCH {
            present.push(tag.to_string());
        }
    }
    present
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_its_batch_and_writes_resume_without_a_restart() {
    let Some(mount) = FaultyMount::mount() else {
        return;
    };
    let data = mount.path().join("data");
    let args = ["--data", data.to_str().expect("utf-8")];
    let http = reqwest::Client::new();
    let node = Node::spawn(&args, TOKEN);
    let mut written = vec![acknowledged(&http, &node, "before").await];

    mount.fail_syncs(true);
    refused(&http, &node, &mount, "refused-a").await;
    // A retry while the disk still fails is refused too: the fsync is not retried
    // on a connection that may believe the data is safe.
    refused(&http, &node, &mount, "refused-b").await;
    let health = http
        .get(node.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "the server stays up");

    mount.fail_syncs(false);
    written.push(acknowledged(&http, &node, "after").await);
    let present = check(&node, &written, &["refused-a", "refused-b"]).await;
    eprintln!("refused batches present after the fault, without a restart: {present:?}");
    assert!(
        present.is_empty(),
        "the next commit overwrites the frames of a failed one: {present:?}"
    );

    // An unclean stop: what the write-ahead log holds after the fault is recovered.
    drop(node);
    let node = Node::spawn(&args, TOKEN);
    let present = check(&node, &written, &["refused-a", "refused-b"]).await;
    assert!(present.is_empty(), "{present:?}");
    written.push(acknowledged(&http, &node, "restarted").await);

    // A fault, then an unclean stop before any commit overwrites its frames.
    mount.fail_syncs(true);
    refused(&http, &node, &mount, "refused-c").await;
    drop(node);
    mount.fail_syncs(false);
    let node = Node::spawn(&args, TOKEN);
    let present = check(&node, &written, &["refused-a", "refused-b", "refused-c"]).await;
    assert_eq!(
        present,
        ["refused-c"],
        "the batch refused just before the crash is recovered from the log, whole"
    );
    let highest = node.messages().await.last().map_or(0, |(id, _)| *id);
    let next = acknowledged(&http, &node, "last").await;
    assert!(
        next.first_id > highest,
        "ids go on after whatever the log recovered: {} after {highest}",
        next.first_id
    );
    written.push(next);
    check(&node, &written, &["refused-a", "refused-b", "refused-c"]).await;
    assert!(node.terminate(), "a clean stop");
}
