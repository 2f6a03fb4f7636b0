//! A full disk (issue 20, point 5), on a real `logbook serve` process whose store
//! lives on a small size-limited filesystem (tmpfs with `size=`, mounted by the test
//! as root): the embedded store's data directory, or a PostgreSQL tablespace holding
//! the test schema's tables. Writes get 507 naming the cause, `/readyz` says so,
//! nothing half-written remains, and once space is freed writes resume, with one
//! journal record for the stop and one for the resumption.

use crate::support::postgres::TestDatabase;
use crate::support::process::Node;
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of `size` mounted on a new temporary directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with the reason printed) where mounting is impossible.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk { dir }),
            other => {
                eprintln!(
                    "SKIPPED: cannot mount a {size} tmpfs (needs root and CAP_SYS_ADMIN): {other:?}"
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills every free byte with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while file.write_all(&small).is_ok() {}
        while file.write_all(&[0u8]).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn batch(tag: &str, n: usize) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"kind": "log", "message": format!("{tag} {i} {}", "x".repeat(200))}))
        .collect();
    json!(records)
}

async fn journal(http: &reqwest::Client, node: &Node, action: &str) -> Vec<Value> {
    let answer: Value = http
        .get(node.url(&format!("/logbook/v1/records?kind=journal&action={action}")))
        .bearer_auth(&node.token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    answer["records"].as_array().cloned().unwrap_or_default()
}

/// Writes until the disk, filled meanwhile, refuses them; then frees it and writes
/// again. The same promises on either store.
async fn fill_refuse_and_resume(disk: &SmallDisk, node: &Node) {
    let http = reqwest::Client::new();
    let post = |body: Value| {
        let http = http.clone();
        let url = node.url("/logbook/v1/records");
        async move {
            http.post(url)
                .bearer_auth(&node.token)
                .json(&body)
                .send()
                .await
                .expect("send")
        }
    };
    assert_eq!(post(batch("before", 10)).await.status(), 201);
    let ready = http.get(node.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

    let filler = disk.fill();
    // Writes now fail for lack of space: every answer a 507 naming the cause (a
    // write may still fit in space the database already holds, so a few may succeed).
    let mut acknowledged = 10;
    let mut full = None;
    for attempt in 0..50 {
        let response = post(batch(&format!("during{attempt}"), 500)).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON answer");
        match status {
            201 => acknowledged += body["accepted"].as_u64().expect("accepted"),
            507 => {
                full = Some(body);
                break;
            }
            other => panic!("a write on a full disk answered {other}: {body}"),
        }
    }
    let full = full.expect("a 507 once the disk is full");
    assert_eq!(full["status"], 507, "{full}");
    assert_eq!(
        full["error"], "the disk holding the store is full",
        "{full}"
    );
    let ready = http.get(node.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 507, "not ready while writes fail");
    let health = http
        .get(node.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "alive all the same");

    std::fs::remove_file(filler).expect("free the space");
    let resumed = post(batch("after", 10)).await;
    assert_eq!(resumed.status(), 201, "writes resume once space is freed");
    acknowledged += 10;
    let ready = http.get(node.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

    // The journal records are written by the node right after writes resume, both
    // in one append: once the resumption is visible, so is the stop (read after it;
    // read before, it could miss an append that committed in between). The live
    // stream, from the first id on, delivers the resumption as soon as it commits.
    let mut stream = http
        .get(
            node.url("/logbook/v1/stream?after=0&kind=journal&action=logbook.store.writes_resumed"),
        )
        .bearer_auth(&node.token)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200, "the journal's live stream");
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !seen.lines().any(|line| line.starts_with("data:")) {
            let chunk = stream.chunk().await.expect("stream chunk");
            let chunk = chunk.expect("the stream ended before the resumption was journaled");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the resumption is journaled");
    drop(stream);
    let resumed = journal(&http, node, "logbook.store.writes_resumed").await;
    let stopped = journal(&http, node, "logbook.store.writes_stopped").await;
    assert_eq!(stopped.len(), 1, "one record for the stop: {stopped:?}");
    assert_eq!(
        resumed.len(),
        1,
        "one record for the resumption: {resumed:?}"
    );
    assert_eq!(stopped[0]["level"], "CRITICAL");
    assert!(stopped[0]["ts"].as_str() <= resumed[0]["ts"].as_str());

    // Every acknowledged record is there, and nothing of a refused batch.
    let logs: Value = http
        .get(node.url("/logbook/v1/records/count?kind=log"))
        .bearer_auth(&node.token)
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("json");
    assert_eq!(logs["count"].as_u64(), Some(acknowledged), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_writes_resume_once_space_is_freed() {
    let Some(disk) = SmallDisk::mount("24m") else {
        return;
    };
    let data = disk.path().join("data");
    let token = "lbk_disk_full_test_token_0123456789abcdef";
    let node = Node::spawn(
        &[
            "--data",
            data.to_str().expect("utf-8"),
            "--min-free-bytes",
            "1048576",
        ],
        token,
    );
    fill_refuse_and_resume(&disk, &node).await;
    assert!(node.terminate(), "a clean stop");
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Whether the test database's server runs on this machine, where a tablespace
/// can be put on a filesystem the test mounts.
fn database_is_local() -> bool {
    let url = crate::support::postgres::base_url();
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return false;
    };
    config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            matches!(name.as_str(), "127.0.0.1" | "localhost" | "::1")
        }
        tokio_postgres::config::Host::Unix(_) => true,
    })
}

/// PostgreSQL's `disk_full` (SQLSTATE 53100): the test schema's tables and indexes
/// live in a tablespace on a small tmpfs (`default_tablespace` in the node's
/// connection options, so the migrations and later partitions put them there), the
/// tmpfs is filled, and the node must answer as the embedded store does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tablespace_on_postgresql_answers_507_and_writes_resume() {
    if !database_is_local() {
        eprintln!("SKIPPED: the test database is not on this machine, so no tablespace can be made for it");
        return;
    }
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    // Held until the tablespace is gone (TestDatabase::drop gives its own up).
    let _no_restart = tokio::task::spawn_blocking(crate::support::postgres::shared_lock)
        .await
        .expect("lock task");
    let database = TestDatabase::create().await;
    let location = disk.path().join("tablespace");
    std::fs::create_dir(&location).expect("tablespace directory");
    let owned = Command::new("chown")
        .arg("postgres:postgres")
        .arg(&location)
        .status()
        .expect("chown");
    assert!(
        owned.success(),
        "the tablespace directory must belong to postgres"
    );
    let tablespace = format!("{}_space", database.schema);
    let admin = connect(&crate::support::postgres::base_url()).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLESPACE {tablespace} LOCATION '{}'",
            location.display()
        ))
        .await
        .expect("create the tablespace");
    let url = format!("{}%20-c%20default_tablespace%3D{tablespace}", database.url);
    let token = "lbk_pg_disk_full_test_token_0123456789ab";
    let outcome = std::panic::AssertUnwindSafe(async {
        let node = Node::spawn(&["--database", &url], token);
        let placed: i64 = connect(&url)
            .await
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() \
                 AND tablespace IS DISTINCT FROM current_setting('default_tablespace')",
                &[],
            )
            .await
            .expect("tables outside the tablespace")
            .get(0);
        assert_eq!(
            placed, 0,
            "every table of the schema is in the small tablespace"
        );
        fill_refuse_and_resume(&disk, &node).await;
        assert!(node.terminate(), "a clean stop");
    })
    .catch_unwind()
    .await;
    database.drop().await;
    let dropped = admin
        .batch_execute(&format!("DROP TABLESPACE IF EXISTS {tablespace}"))
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.expect("drop the tablespace");
}
