//! Tamper evidence (docs/integrity.md): proofs checked by an independent Python
//! implementation, `logbook verify` against a database edited behind the store's
//! back (SQL on the SQLite file, re-encoding its hot segments with the store's own
//! codec; SQL on PostgreSQL's tables), and removals that keep the proof.

use crate::support::python::run_script;
use crate::support::{binary, Backend, TestServer};
use logbook_core::{Record, Role};
use logbook_server::integrity::checkpoints::checkpoint;
use logbook_server::integrity::{key, retention, Integrity, IntegrityConfig};
use logbook_server::AppState;
use logbook_store::blocks::rows;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

store_tests!(
    proofs_verify_with_an_independent_implementation,
    an_altered_message_is_named,
    a_deleted_record_is_named,
    two_swapped_records_are_named,
    an_inserted_record_is_named,
    cutting_off_the_newest_records_is_caught_by_the_checkpoint_copy,
    the_qnap_clear_keeps_the_proof,
    every_retention_rule_removes_and_keeps_the_proof,
    kept_chunks_keep_proofs_removals_and_the_name_of_an_altered_record,
);

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn line(i: usize) -> Value {
    json!({"kind": "log", "level": "INFO", "source": "disk", "message": format!("line {i} é ✓"),
           "data": {"n": i, "ratio": 1.5, "tiny": 0.001, "big": 1e22, "nested": {"z": [1, "two"], "a": null}}})
}

async fn signed(state: &AppState) {
    checkpoint(state)
        .await
        .expect("checkpoint")
        .expect("a new checkpoint");
}

async fn proofs_verify_with_an_independent_implementation(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .ingest(json!((0..7).map(line).collect::<Vec<_>>()))
        .await;
    signed(&server.state).await;
    let ids = server
        .ingest(json!((7..40).map(line).collect::<Vec<_>>()))
        .await;
    server
        .ingest(
            json!({"kind": "journal", "user": "ann", "action": "vm.start", "domain_id": "other"}),
        )
        .await;
    signed(&server.state).await;
    let out = run_script(
        &script("integrity_proofs.py"),
        &[
            ("BASE", server.base.clone()),
            ("TOKEN", server.token.clone()),
        ],
    )
    .await;
    assert!(out.starts_with("ok "), "{out}");

    // A domain-scoped reader gets proofs only of what it may read.
    let outsider = server
        .user_with_token("outsider", Role::User, "elsewhere")
        .await;
    let proof = |id: i64, token: &str| {
        server
            .http
            .get(server.url(&format!("/logbook/v1/records/{id}/proof")))
            .bearer_auth(token.to_string())
            .send()
    };
    assert_eq!(proof(ids[0], &outsider).await.expect("send").status(), 404);
    assert_eq!(
        proof(ids[0], &server.token).await.expect("send").status(),
        200
    );
    // Bad input names its field.
    for (path, field) in [
        ("/logbook/v1/records/abc/proof", "id"),
        ("/logbook/v1/records/1/proof?tree_size=x", "tree_size"),
        ("/logbook/v1/records/1/proof?tree_size=3", "tree_size"),
        ("/logbook/v1/integrity/consistency?from=1", "to"),
        ("/logbook/v1/integrity/consistency?from=9&to=2", "from"),
        ("/logbook/v1/integrity/checkpoints?limit=0", "limit"),
    ] {
        let response = server.get(path).await;
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    server.stop().await;
}

/// Runs `logbook verify` with `args`; returns whether it exited 0 and its stdout.
async fn verify(args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(binary())
        .arg("verify")
        .args(args)
        .env_remove("LOGBOOK_DATA")
        .env_remove("LOGBOOK_DATABASE_URL")
        .output()
        .await
        .expect("run logbook verify");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => (true, stdout),
        Some(1) => (false, stdout),
        other => panic!("verify exited {other:?}: {stdout}\n{stderr}"),
    }
}

/// `verify` on the test server's store, by file or database.
async fn verify_store(server: &TestServer, extra: &[&str]) -> (bool, String) {
    let mut args: Vec<String> = match (server.data_dir(), server.database_url()) {
        (Some(dir), _) => vec!["--data".into(), dir.display().to_string()],
        (None, Some(url)) => vec!["--database".into(), url.to_string()],
        _ => panic!("no store"),
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    verify(&refs).await
}

/// Every record of the SQLite file's hot segments, in id order, changed by `edit`
/// and written back as one segment (with the store's own row codec); `last_record_id`
/// follows the highest id, as a careful forger would keep it.
fn rewrite_sqlite(dir: &Path, edit: impl FnOnce(&mut Vec<Record>)) {
    let conn = rusqlite::Connection::open(dir.join("logbook.db")).expect("open file");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("timeout");
    let mut records: Vec<Record> = Vec::new();
    {
        let mut statement = conn
            .prepare("SELECT records FROM hot_segments ORDER BY first_id")
            .expect("prepare");
        let blobs = statement
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .expect("query");
        for blob in blobs {
            records.extend(rows::decode(&blob.expect("row")).expect("decode"));
        }
    }
    edit(&mut records);
    let (first, last) = (records[0].id, records[records.len() - 1].id);
    conn.execute_batch("BEGIN IMMEDIATE; DELETE FROM hot_segments;")
        .expect("delete");
    conn.execute(
        "INSERT INTO hot_segments (first_id, last_id, records) VALUES (?1, ?2, ?3)",
        rusqlite::params![first, last, rows::encode(&records)],
    )
    .expect("insert");
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'last_record_id'",
        [last],
    )
    .expect("meta");
    conn.execute_batch("COMMIT").expect("commit");
}

async fn postgres(server: &TestServer, sql: &str) {
    let url = server.database_url().expect("postgres");
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
}

/// A server with 20 records and a signed checkpoint; returns it and the ids.
async fn seeded(backend: Backend) -> (TestServer, Vec<i64>) {
    let server = TestServer::start(backend).await;
    let ids = server
        .ingest(json!((0..20).map(line).collect::<Vec<_>>()))
        .await;
    signed(&server.state).await;
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(ok && out.starts_with("OK: "), "{out}");
    (server, ids)
}

async fn an_altered_message_is_named(backend: Backend) {
    let (server, ids) = seeded(backend).await;
    let target = ids[4];
    match server.data_dir() {
        Some(dir) => rewrite_sqlite(dir, |records| {
            let r = records.iter_mut().find(|r| r.id == target).expect("record");
            r.message = Some("nothing happened".into());
        }),
        None => {
            postgres(
                &server,
                &format!("UPDATE records SET message = 'nothing happened' WHERE id = {target}"),
            )
            .await
        }
    }
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {target}: altered")), "{out}");
    server.stop().await;
}

async fn a_deleted_record_is_named(backend: Backend) {
    let (server, ids) = seeded(backend).await;
    let target = ids[7];
    match server.data_dir() {
        Some(dir) => rewrite_sqlite(dir, |records| records.retain(|r| r.id != target)),
        None => postgres(&server, &format!("DELETE FROM records WHERE id = {target}")).await,
    }
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {target}: missing")), "{out}");
    server.stop().await;
}

async fn two_swapped_records_are_named(backend: Backend) {
    let (server, ids) = seeded(backend).await;
    let (a, b) = (ids[3], ids[11]);
    match server.data_dir() {
        Some(dir) => rewrite_sqlite(dir, |records| {
            let i = records.iter().position(|r| r.id == a).expect("a");
            let j = records.iter().position(|r| r.id == b).expect("b");
            records.swap(i, j);
            records[i].id = a;
            records[j].id = b;
        }),
        None => {
            let columns = "ts, kind, level, category, source, instance, logger, \"user\", user_id, domain_id, project_id, object_type, object_id, action, status, response_code, request_id, parent_request_id, message, data";
            postgres(
                &server,
                &format!(
                    "CREATE TEMP TABLE swap AS SELECT * FROM records WHERE id IN ({a}, {b});
                     UPDATE records r SET ({columns}) = (SELECT {columns} FROM swap s WHERE s.id = {b}) WHERE r.id = {a};
                     UPDATE records r SET ({columns}) = (SELECT {columns} FROM swap s WHERE s.id = {a}) WHERE r.id = {b};"
                ),
            )
            .await
        }
    }
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {a}: reordered")), "{out}");
    server.stop().await;
}

async fn an_inserted_record_is_named(backend: Backend) {
    let (server, ids) = seeded(backend).await;
    let forged = ids[ids.len() - 1] + 1;
    match server.data_dir() {
        Some(dir) => rewrite_sqlite(dir, |records| {
            let mut extra = records[0].clone();
            extra.id = forged;
            extra.message = Some("an alibi".into());
            records.push(extra);
        }),
        None => {
            postgres(
                &server,
                &format!(
                "INSERT INTO records (id, ts, kind, message) VALUES ({forged}, 0, 1, 'an alibi');
                     UPDATE id_counter SET last = {forged};"
            ),
            )
            .await
        }
    }
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {forged}: inserted")), "{out}");
    server.stop().await;
}

async fn cutting_off_the_newest_records_is_caught_by_the_checkpoint_copy(backend: Backend) {
    let server = TestServer::start(backend).await;
    let copies = tempfile::tempdir().expect("checkpoint dir");
    let state = server.state.clone().with_integrity(Integrity::new(
        key::generate(),
        IntegrityConfig {
            checkpoint_dir: Some(copies.path().to_path_buf()),
            ..IntegrityConfig::default()
        },
    ));
    server
        .ingest(json!((0..30).map(line).collect::<Vec<_>>()))
        .await;
    signed(&state).await;
    let newest = server
        .ingest(json!((30..40).map(line).collect::<Vec<_>>()))
        .await;
    signed(&state).await;
    let cut = newest[0];
    // The newest 10 records go, with their leaves and every checkpoint in the store.
    match server.data_dir() {
        Some(dir) => {
            rewrite_sqlite(dir, |records| records.retain(|r| r.id < cut));
            let conn = rusqlite::Connection::open(dir.join("logbook.db")).expect("open");
            conn.execute_batch(&format!(
                "DELETE FROM record_leaves WHERE first_id >= {cut}; DELETE FROM checkpoints;"
            ))
            .expect("cut");
        }
        None => {
            postgres(
                &server,
                &format!(
                    "DELETE FROM records WHERE id >= {cut};
                     DELETE FROM record_leaves WHERE first_id >= {cut};
                     DELETE FROM checkpoints;
                     UPDATE id_counter SET last = {};",
                    cut - 1
                ),
            )
            .await
        }
    }
    // The store alone is consistent with itself: that is why the copy matters.
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(ok, "{out}");
    let dir = copies.path().display().to_string();
    let (ok, out) = verify_store(&server, &["--checkpoints", &dir]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "record {cut}: tree shorter than a signed checkpoint"
        )),
        "{out}"
    );
    server.stop().await;
}

async fn the_qnap_clear_keeps_the_proof(backend: Backend) {
    let (server, ids) = seeded(backend).await;
    server
        .ingest(json!({"kind": "event", "message": "kept", "source": "disk"}))
        .await;
    let response = server
        .request(Method::DELETE, "/api/v1/log")
        .send()
        .await
        .expect("clear");
    assert_eq!(response.status(), 200);
    assert_eq!(server.get_json("/api/v1/log").await, json!([]));
    signed(&server.state).await;
    let journal = server
        .get_json("/logbook/v1/records?kind=journal&action=logbook.log.clear")
        .await;
    let removed = &journal["records"][0]["data"]["removed"];
    assert_eq!(removed["count"], ids.len(), "{journal}");
    assert_eq!(removed["first_id"], ids[0], "{journal}");
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{} removed", ids.len())), "{out}");
    // A removed record's proof says so, and still verifies against the checkpoint.
    let proof = server
        .get_json(&format!("/logbook/v1/records/{}/proof", ids[2]))
        .await;
    assert!(proof["removed"]["removed_at"].is_string(), "{proof}");
    assert_eq!(proof["removed"]["journal_id"], journal["records"][0]["id"]);
    // Through the API too.
    let (ok, out) = verify(&["--server", &server.base, "--token", &server.token]).await;
    assert!(ok, "{out}");
    let status = server.get_json("/logbook/v1/integrity/status").await;
    assert_eq!(status["last_verify"]["ok"], true, "{status}");
    assert!(status["tree_size"].as_u64().expect("size") > ids.len() as u64);
    server.stop().await;
}

async fn every_retention_rule_removes_and_keeps_the_proof(backend: Backend) {
    let server = TestServer::start(backend).await;
    let old: Vec<Value> = (0..5)
        .map(|i| json!({"kind": "event", "ts": "2001-01-01T00:00:00Z", "message": format!("old {i}")}))
        .collect();
    let old_ids = server.ingest(json!(old)).await;
    let chatty: Vec<Value> = (0..6)
        .map(|i| json!({"kind": "log", "source": "chatty", "message": format!("chat {i}")}))
        .collect();
    let chatty_ids = server.ingest(json!(chatty)).await;
    server
        .ingest(json!({"kind": "log", "source": "quiet", "message": "hello"}))
        .await;
    signed(&server.state).await;
    let run = |policy: retention::Policy| {
        let state = server.state.clone().with_integrity(Integrity::new(
            key::generate(),
            IntegrityConfig {
                retention: policy,
                ..IntegrityConfig::default()
            },
        ));
        async move { retention::run_once(&state).await.expect("retention") }
    };
    let by_age = run(retention::Policy {
        by_age: vec![retention::parse_rule("event=30d").expect("rule")],
        ..retention::Policy::default()
    })
    .await;
    assert_eq!(by_age["removed"][0]["count"], 5, "{by_age}");
    assert_eq!(by_age["removed"][0]["first_id"], old_ids[0]);
    let per_source = run(retention::Policy {
        per_source: Some(2),
        ..retention::Policy::default()
    })
    .await;
    assert_eq!(per_source["removed"][0]["count"], 4, "{per_source}");
    assert_eq!(per_source["removed"][0]["last_id"], chatty_ids[3]);
    let by_bytes = run(retention::Policy {
        max_bytes: Some(1),
        ..retention::Policy::default()
    })
    .await;
    assert!(
        by_bytes["removed"][0]["count"].as_u64().expect("count") >= 1,
        "{by_bytes}"
    );
    let journal = server
        .get_json("/logbook/v1/records?kind=journal&action=logbook.retention&order=asc")
        .await;
    let entries = journal["records"].as_array().expect("records");
    assert!(entries.len() >= 3, "{journal}");
    assert_eq!(entries[0]["data"]["policy"], "event=2592000s");
    assert_eq!(entries[0]["data"]["removed"]["count"], 5);
    signed(&server.state).await;
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("removed"), "{out}");
    server.stop().await;
}

/// A real node: its key is generated in the data directory on first start and kept
/// across restarts, and the checkpoint it signs at shutdown covers everything it
/// acknowledged, in the store and in its checkpoint directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_signs_at_shutdown_with_the_key_it_keeps() {
    let data = tempfile::tempdir().expect("data");
    let copies = tempfile::tempdir().expect("copies");
    let (data_dir, copy_dir) = (
        data.path().display().to_string(),
        copies.path().display().to_string(),
    );
    let token = "integrity-node-token";
    let args = [
        "--data",
        &data_dir,
        "--checkpoint-dir",
        &copy_dir,
        "--retain",
        "log=30d",
        "--retain-per-source",
        "5000",
    ];
    let http = reqwest::Client::new();
    let mut keys = Vec::new();
    for round in 0..2 {
        let node = crate::support::process::Node::spawn(&args, token);
        let response = http
            .post(node.url("/logbook/v1/records"))
            .bearer_auth(token)
            .json(&json!((0..5).map(line).collect::<Vec<_>>()))
            .send()
            .await
            .expect("ingest");
        assert_eq!(response.status(), 201);
        let key: Value = http
            .get(node.url("/logbook/v1/integrity/key"))
            .bearer_auth(token)
            .send()
            .await
            .expect("key")
            .json()
            .await
            .expect("json");
        keys.push(key["public_key"].clone());
        let status: Value = http
            .get(node.url("/logbook/v1/integrity/status"))
            .bearer_auth(token)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        assert_eq!(
            status["retention"]["policy"]["retain"],
            json!(["log=2592000s"]),
            "{status}"
        );
        assert_eq!(
            status["retention"]["policy"]["retain_per_source"], 5000,
            "{status}"
        );
        assert!(
            status["tree_size"].as_u64().expect("size") >= 5 * (round + 1),
            "{status}"
        );
        assert!(node.terminate(), "round {round}: clean exit");
    }
    assert_eq!(keys[0], keys[1], "the key generated on first start is kept");
    assert!(data.path().join("signing.key").exists());
    let copied: Vec<String> = std::fs::read_dir(copies.path())
        .expect("copies")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint-"))
        .collect();
    assert_eq!(copied.len(), 2, "{copied:?}");
    let (ok, out) = verify(&["--data", &data_dir, "--checkpoints", &copy_dir]).await;
    assert!(ok, "{out}");
    assert!(out.contains("2 signed checkpoints"), "{out}");
    // An explicit key file must exist: a missing mount must not mint a new key.
    let missing = data.path().join("elsewhere.key").display().to_string();
    let output = std::process::Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            &data_dir,
            "--signing-key",
            &missing,
        ])
        .env_remove("LOGBOOK_DATA")
        .output()
        .expect("serve");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("elsewhere.key"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_directory_without_a_store() {
    let empty = tempfile::tempdir().expect("dir");
    let output = tokio::process::Command::new(binary())
        .args(["verify", "--data"])
        .arg(empty.path())
        .output()
        .await
        .expect("verify");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("holds no Logbook store"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!empty.path().join("logbook.db").exists());
}

/// Sealed blocks too: the forger decodes the block with the store's codec, edits a
/// message, re-encodes it and writes the blob, header and summary back by SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_message_in_a_sealed_block_is_named() {
    use logbook_store::blocks::format;
    use logbook_store::sqlite::{RecordLayout, SqliteStore, Tiers};
    let dir = tempfile::tempdir().expect("dir");
    let options = Tiers {
        block_rows: 8,
        page_rows: 4,
        hot_records: 4,
        ..Tiers::default()
    };
    let store = SqliteStore::open_with(
        dir.path(),
        RecordLayout {
            options: options.clone(),
            seal: false,
        },
    )
    .expect("open");
    let records: Vec<logbook_core::NewRecord> = (0..20)
        .map(|i| logbook_core::NewRecord::from_json(line(i)).expect("record"))
        .collect();
    logbook_store::RecordStore::append(&store, records)
        .await
        .expect("append");
    assert!(store.seal_pending().await.expect("seal") >= 2);
    let store: std::sync::Arc<dyn logbook_store::Store> = std::sync::Arc::new(store);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    signed(&AppState::new(store.clone(), Default::default(), stopped)).await;
    drop(store);
    let target = 3;
    {
        let conn = rusqlite::Connection::open(dir.path().join("logbook.db")).expect("open file");
        let (key, blob): (i64, Vec<u8>) = conn
            .query_row(
                "SELECT first_id, data FROM blocks WHERE first_id <= ?1 AND last_id >= ?1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the block holding the record");
        let mut records = format::decode_all(&blob).expect("decode");
        let r = records.iter_mut().find(|r| r.id == target).expect("record");
        r.message = Some("nothing happened".into());
        let encoded = format::encode(
            &records,
            &format::Options {
                page_rows: options.page_rows,
                zstd_level: options.zstd_level,
            },
        );
        let end = format::Layout::header_end(&encoded.blob).expect("header");
        let mut summary = Vec::new();
        encoded.summary.write(&mut summary);
        conn.execute(
            "UPDATE blocks SET data = ?1, header = ?2, summary = ?3 WHERE first_id = ?4",
            rusqlite::params![encoded.blob, &encoded.blob[..end], summary, key],
        )
        .expect("rewrite the block");
    }
    let (ok, out) = verify(&["--data", &dir.path().display().to_string()]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {target}: altered")), "{out}");
}

/// Sealed blocks on PostgreSQL: `verify` recomputes the leaves of records read
/// from blocks (sealing leaves `record_leaves` alone) and holds; a message altered
/// inside a block (decoded, edited, re-encoded and written back by SQL) is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_message_in_a_sealed_block_on_postgres_is_named() {
    use logbook_store::blocks::format;
    use logbook_store::postgres::{PgLayout, PostgresStore, TierOptions};
    let database = crate::support::postgres::TestDatabase::create().await;
    let options = TierOptions {
        block_rows: 8,
        page_rows: 4,
        hot_records: 4,
        ..TierOptions::default()
    };
    let store = PostgresStore::open_with(
        &database.url,
        PgLayout {
            options: options.clone(),
            seal: false,
        },
    )
    .await
    .expect("open");
    let records: Vec<logbook_core::NewRecord> = (0..20)
        .map(|i| logbook_core::NewRecord::from_json(line(i)).expect("record"))
        .collect();
    logbook_store::RecordStore::append(&store, records)
        .await
        .expect("append");
    assert!(store.seal_pending().await.expect("seal") >= 2);
    let store: std::sync::Arc<dyn logbook_store::Store> = std::sync::Arc::new(store);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    signed(&AppState::new(store.clone(), Default::default(), stopped)).await;
    drop(store);
    let (ok, out) = verify(&["--database", &database.url]).await;
    assert!(ok, "verify over sealed records: {out}");
    let target = 3i64;
    {
        let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT first_id, data FROM blocks WHERE first_id <= $1 AND last_id >= $1",
                &[&target],
            )
            .await
            .expect("the block holding the record");
        let (key, blob): (i64, Vec<u8>) = (row.get(0), row.get(1));
        let mut records = format::decode_all(&blob).expect("decode");
        let r = records.iter_mut().find(|r| r.id == target).expect("record");
        r.message = Some("nothing happened".into());
        let encoded = format::encode(
            &records,
            &format::Options {
                page_rows: options.page_rows,
                zstd_level: options.zstd_level,
            },
        );
        let end = format::Layout::header_end(&encoded.blob).expect("header");
        let mut summary = Vec::new();
        encoded.summary.write(&mut summary);
        client
            .execute(
                "UPDATE blocks SET data = $1, header = $2, summary = $3 WHERE first_id = $4",
                &[&encoded.blob, &&encoded.blob[..end], &summary, &key],
            )
            .await
            .expect("rewrite the block");
    }
    let (ok, out) = verify(&["--database", &database.url]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {target}: altered")), "{out}");
    database.drop().await;
}

/// A store with small blocks, 2100 records appended and sealed: two complete
/// chunks of leaves kept as roots and fingerprints, and part of a third in runs.
/// Every hundredth record (from the eighth) has `source` "gone".
async fn sealed_in_kept_chunks(
    backend: Backend,
) -> (
    std::sync::Arc<dyn logbook_store::Store>,
    Option<tempfile::TempDir>,
    Option<crate::support::postgres::TestDatabase>,
    logbook_store::blocks::tiers::TierOptions,
    i64,
) {
    let options = logbook_store::blocks::tiers::TierOptions {
        block_rows: 256,
        page_rows: 64,
        hot_records: 128,
        ..Default::default()
    };
    let records: Vec<logbook_core::NewRecord> = (0..2100)
        .map(|i| {
            let mut value = line(i);
            if i % 100 == 7 {
                value["source"] = json!("gone");
            }
            logbook_core::NewRecord::from_json(value).expect("record")
        })
        .collect();
    let (store, dir, database, appended): (std::sync::Arc<dyn logbook_store::Store>, _, _, _) =
        match backend {
            Backend::Sqlite => {
                use logbook_store::sqlite::{RecordLayout, SqliteStore};
                let dir = tempfile::tempdir().expect("dir");
                let layout = RecordLayout {
                    options: options.clone(),
                    seal: false,
                };
                let store = SqliteStore::open_with(dir.path(), layout).expect("open");
                let appended = logbook_store::RecordStore::append(&store, records)
                    .await
                    .expect("append");
                assert!(store.seal_pending().await.expect("seal") >= 7);
                (std::sync::Arc::new(store), Some(dir), None, appended)
            }
            Backend::Postgres => {
                use logbook_store::postgres::{PgLayout, PostgresStore};
                let database = crate::support::postgres::TestDatabase::create().await;
                let layout = PgLayout {
                    options: options.clone(),
                    seal: false,
                };
                let store = PostgresStore::open_with(&database.url, layout)
                    .await
                    .expect("open");
                let appended = logbook_store::RecordStore::append(&store, records)
                    .await
                    .expect("append");
                assert!(store.seal_pending().await.expect("seal") >= 7);
                (std::sync::Arc::new(store), None, Some(database), appended)
            }
        };
    let first = appended.first_id.expect("appended");
    (store, dir, database, options, first)
}

/// Checks the proof of record `id` against the checkpoint it names, with the leaf
/// `expected` (the record's, computed here).
async fn proof_holds(
    server: &TestServer,
    id: i64,
    expected: &logbook_core::integrity::Hash,
) -> Value {
    use logbook_core::integrity::merkle::{from_hex, to_hex, verify_inclusion};
    let proof = server
        .get_json(&format!("/logbook/v1/records/{id}/proof"))
        .await;
    assert_eq!(proof["leaf_hash"], to_hex(expected), "{proof}");
    let path: Vec<_> = proof["audit_path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|h| from_hex(h.as_str().expect("hex")).expect("hash"))
        .collect();
    let root = from_hex(proof["checkpoint"]["root_hash"].as_str().expect("root")).expect("hash");
    assert!(
        verify_inclusion(
            expected,
            proof["leaf_index"].as_u64().expect("index"),
            proof["tree_size"].as_u64().expect("size"),
            &path,
            &root
        ),
        "{proof}"
    );
    proof
}

/// Leaves of complete chunks are kept as the chunk's root and a fingerprint per
/// record: a sealed record's proof is unchanged for the client; a removal after
/// sealing keeps its records' leaves (their proofs verify, `verify` holds); and a
/// message altered inside a sealed block of a kept chunk is named by `verify`.
async fn kept_chunks_keep_proofs_removals_and_the_name_of_an_altered_record(backend: Backend) {
    use logbook_core::integrity::leaf_hash;
    let (store, dir, database, options, first) = sealed_in_kept_chunks(backend).await;
    let server = TestServer::start_on(store, dir, database).await;
    signed(&server.state).await;
    let leaf_of = |record: Option<Record>| leaf_hash(&record.expect("record"));
    for offset in [5, 1500, 2090] {
        let id = first + offset;
        let expected = leaf_of(server.store.get(id).await.expect("get"));
        proof_holds(&server, id, &expected).await;
    }

    let gone_id = first + 1207;
    let gone_leaf = leaf_of(server.store.get(gone_id).await.expect("get"));
    let condition = logbook_core::query::Condition::In(
        logbook_core::Field::Source,
        vec![logbook_core::query::Scalar::Text("gone".into())],
    );
    let removed = server
        .store
        .delete_recorded(
            &logbook_core::Query::default().with(condition),
            Box::new(|_| logbook_core::NewRecord::new(logbook_core::Kind::Journal)),
        )
        .await
        .expect("remove");
    assert_eq!(removed, 21);
    assert_eq!(server.store.get(gone_id).await.expect("get"), None);
    signed(&server.state).await;
    let proof = proof_holds(&server, gone_id, &gone_leaf).await;
    assert!(proof["removed"]["removed_at"].is_string(), "{proof}");
    let kept_id = first + 1300;
    let expected = leaf_of(server.store.get(kept_id).await.expect("get"));
    proof_holds(&server, kept_id, &expected).await;
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(ok && out.contains("21 removed"), "{out}");
    let (ok, out) = verify(&["--server", &server.base, "--token", &server.token]).await;
    assert!(ok, "{out}");

    rewrite_in_block(&server, &options, kept_id).await;
    let (ok, out) = verify_store(&server, &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("record {kept_id}: altered")), "{out}");
    server.stop().await;
}

/// Changes the message of record `id` inside its sealed block, as a forger with
/// the store's codec would: decoded, edited, encoded and written back by SQL.
async fn rewrite_in_block(
    server: &TestServer,
    options: &logbook_store::blocks::tiers::TierOptions,
    id: i64,
) {
    use logbook_store::blocks::format;
    let edit = |blob: &[u8]| {
        let mut records = format::decode_all(blob).expect("decode");
        let r = records.iter_mut().find(|r| r.id == id).expect("record");
        r.message = Some("nothing happened".into());
        let encoded = format::encode(
            &records,
            &format::Options {
                page_rows: options.page_rows,
                zstd_level: options.zstd_level,
            },
        );
        let end = format::Layout::header_end(&encoded.blob).expect("header");
        let mut summary = Vec::new();
        encoded.summary.write(&mut summary);
        let header = encoded.blob[..end].to_vec();
        (encoded.blob, header, summary)
    };
    const HOLDING: &str =
        "SELECT first_id, data FROM blocks WHERE first_id <= $1 AND last_id >= $1";
    match (server.data_dir(), server.database_url()) {
        (Some(dir), _) => {
            let conn = rusqlite::Connection::open(dir.join("logbook.db")).expect("open file");
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .expect("timeout");
            let (key, blob): (i64, Vec<u8>) = conn
                .query_row(&HOLDING.replace('$', "?"), [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("the block holding the record");
            let (blob, header, summary) = edit(&blob);
            conn.execute(
                "UPDATE blocks SET data = ?1, header = ?2, summary = ?3 WHERE first_id = ?4",
                rusqlite::params![blob, header, summary, key],
            )
            .expect("rewrite the block");
        }
        (None, Some(url)) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            let row = client
                .query_one(HOLDING, &[&id])
                .await
                .expect("the block holding the record");
            let (key, blob): (i64, Vec<u8>) = (row.get(0), row.get(1));
            let (blob, header, summary) = edit(&blob);
            client
                .execute(
                    "UPDATE blocks SET data = $1, header = $2, summary = $3 WHERE first_id = $4",
                    &[&blob, &header, &summary, &key],
                )
                .await
                .expect("rewrite the block");
        }
        _ => panic!("no store"),
    }
}
