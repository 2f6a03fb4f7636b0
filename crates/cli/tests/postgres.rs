//! Several Logbook nodes on one PostgreSQL database: real `logbook serve` processes
//! share writes, sessions and tokens; changes through one node wake waiters on
//! another; concurrent writers on three nodes never make a tailing reader skip a record.

use crate::support::postgres::TestDatabase;
use crate::support::process::Node;
use logbook_core::ObjectRef;
use logbook_store::postgres::PostgresStore;
use logbook_store::{ObjectStore, ObjectUpdate, RecordStore, Store};
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn spawn_node(database: &TestDatabase, token: &str) -> Node {
    Node::spawn(&["--database", &database.url], token)
}

async fn post(http: &Client, node: &Node, body: &Value) -> reqwest::Response {
    http.post(node.url("/logbook/v1/records"))
        .bearer_auth(&node.token)
        .json(body)
        .send()
        .await
        .expect("post")
}

async fn get_json(http: &Client, node: &Node, path: &str) -> Value {
    let response = http
        .get(node.url(path))
        .bearer_auth(&node.token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_behave_as_one_service() {
    let database = TestDatabase::create().await;
    let token = logbook_server::auth::secrets::new_token();
    let a = spawn_node(&database, &token);
    let b = spawn_node(&database, &token);
    let http = Client::new();

    // A write through A is visible through B at once.
    let response = post(
        &http,
        &a,
        &json!({"kind": "log", "message": "written via A"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.expect("json")["first_id"]
        .as_i64()
        .expect("id");
    let read = get_json(&http, &b, &format!("/logbook/v1/records/{id}")).await;
    assert_eq!(read["message"], "written via A");
    let response = post(
        &http,
        &b,
        &json!({"kind": "log", "message": "written via B"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let listed = get_json(&http, &a, "/logbook/v1/records?order=asc").await;
    let messages: Vec<&str> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert_eq!(messages, ["written via A", "written via B"]);

    // A session opened through A works on B; logging out through B ends it on A.
    let login = http
        .post(a.url("/logbook/v1/login"))
        .json(&json!({"username": "admin", "password": crate::support::ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let whoami = http
        .get(b.url("/logbook/v1/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("whoami");
    assert_eq!(whoami.status(), 200);
    let logout = http
        .post(b.url("/logbook/v1/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 200);
    let after = http
        .get(a.url("/logbook/v1/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("whoami");
    assert_eq!(after.status(), 401);

    assert!(a.terminate());
    assert!(b.terminate());
    database.drop().await;
}

/// How long a test waits for a notification before calling it lost: a guard against
/// hanging forever, not a figure (those are printed).
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Milliseconds from sending a write through node A until `woken` resolves on
/// another node, for `rounds` writes.
async fn wake_latencies(store: &PostgresStore, node: &Node, rounds: usize) -> Vec<f64> {
    let http = Client::new();
    let mut latencies = Vec::new();
    for i in 0..rounds {
        let mut records = store.notifier().subscribe_records();
        let mut high_water = store.notifier().watch_high_water();
        high_water.borrow_and_update();
        let started = Instant::now();
        let body = json!({"kind": "log", "message": format!("wake {i}")});
        let sent = post(&http, node, &body);
        let (response, woken) = tokio::join!(sent, async {
            tokio::time::timeout(HANG_GUARD, high_water.changed())
                .await
                .expect("woken (before the hang guard)")
                .expect("notifier alive");
            started.elapsed()
        });
        assert_eq!(response.status(), 201);
        let batch = records.recv().await.expect("the records themselves");
        assert_eq!(
            batch[0].message.as_deref(),
            Some(format!("wake {i}").as_str())
        );
        latencies.push(woken.as_secs_f64() * 1000.0);
    }
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_wake_waiters_on_another() {
    let database = TestDatabase::create().await;
    let token = logbook_server::auth::secrets::new_token();
    let a = spawn_node(&database, &token);
    // Node B, in this process, so the test can watch its notifier.
    let b = PostgresStore::open(&database.url).await.expect("node B");
    let c = PostgresStore::open(&database.url).await.expect("node C");

    let mut latencies = wake_latencies(&b, &a, 30).await;
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    // A figure to read (the requirement is 100 ms), not to assert: the machine is
    // shared. The behaviour asserted is that every write woke B, with its records.
    eprintln!(
        "cross-node wake-up (write via A -> notifier of B), ms: median {median:.1}, max {max:.1}"
    );

    // Objects, actions and action logs changed through C reach B's notifier too.
    let mut objects = b.notifier().subscribe_objects();
    let mut actions = b.notifier().subscribe_actions();
    let mut logs = b.notifier().subscribe_action_logs();
    let key = ObjectRef::new("vm", "42");
    let started = Instant::now();
    c.put_object(ObjectUpdate {
        key: Some(key.clone()),
        state: Some("running".into()),
        ..ObjectUpdate::default()
    })
    .await
    .expect("put");
    let change = tokio::time::timeout(HANG_GUARD, objects.recv())
        .await
        .expect("object change (before the hang guard)")
        .expect("change");
    let object_ms = started.elapsed().as_secs_f64() * 1000.0;
    match change {
        logbook_store::notifier::ObjectChange::Updated(o) => {
            assert_eq!(o.state.as_deref(), Some("running"))
        }
        other => panic!("unexpected {other:?}"),
    }
    c.remove_object(&key).await.expect("remove");
    let removed = tokio::time::timeout(HANG_GUARD, objects.recv())
        .await
        .expect("removal (before the hang guard)")
        .expect("change");
    assert!(matches!(removed, logbook_store::notifier::ObjectChange::Removed(k) if k == key));

    use logbook_store::ActionStore;
    let action = c
        .create_action(logbook_core::NewAction {
            action: "start".into(),
            ..Default::default()
        })
        .await
        .expect("action");
    let seen = tokio::time::timeout(HANG_GUARD, actions.recv())
        .await
        .expect("action (before the hang guard)")
        .expect("action");
    assert_eq!(seen.uuid, action.uuid);
    let started = Instant::now();
    c.append_action_logs(&action.uuid, vec!["one".into(), "two".into()])
        .await
        .expect("logs");
    let lines = tokio::time::timeout(HANG_GUARD, logs.recv())
        .await
        .expect("log lines (before the hang guard)")
        .expect("lines");
    let log_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(lines.uuid, action.uuid);
    let texts: Vec<&str> = lines.lines.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
    eprintln!("cross-node object change {object_ms:.1} ms, action log follow {log_ms:.1} ms");

    // B also answers from the store what A wrote (the notifier is only a hint).
    assert_eq!(b.high_water().await.expect("hw"), 30);
    drop((b, c));
    assert!(a.terminate());
    database.drop().await;
}

/// Tails `node` oldest first by cursor until `done` is set and a page comes back
/// empty; returns every id seen, in the order seen.
async fn tail_by_cursor(
    http: Client,
    node: std::sync::Arc<Node>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<i64>, usize) {
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut finishing = false;
    loop {
        let path = match &cursor {
            Some(c) => format!("/logbook/v1/records?order=asc&limit=50&cursor={c}"),
            None => "/logbook/v1/records?order=asc&limit=50".to_string(),
        };
        let page = get_json(&http, &node, &path).await;
        pages += 1;
        for record in page["records"].as_array().expect("records") {
            seen.push(record["id"].as_i64().expect("id"));
        }
        cursor = page["next_cursor"].as_str().map(str::to_string).or(cursor);
        let empty = page["records"].as_array().is_some_and(Vec::is_empty);
        if finishing && empty {
            return (seen, pages);
        }
        // Every write was acknowledged before this flag was set, so one more round
        // after it sees them all.
        if done.load(std::sync::atomic::Ordering::Acquire) {
            finishing = true;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_three_nodes_never_make_a_tailing_reader_skip() {
    const NODES: usize = 3;
    const WRITERS: usize = 8;
    const POSTS_EACH: usize = 40;
    let database = TestDatabase::create().await;
    let token = logbook_server::auth::secrets::new_token();
    let nodes: Vec<std::sync::Arc<Node>> = (0..NODES)
        .map(|_| std::sync::Arc::new(spawn_node(&database, &token)))
        .collect();
    let http = Client::new();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let node = nodes[w % NODES].clone();
        let http = http.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..POSTS_EACH {
                // Batches of 1..=3 records so transactions differ in size.
                let batch: Vec<Value> = (0..=(i % 3))
                    .map(|j| json!({"kind": "log", "message": format!("w{w} p{i} r{j}")}))
                    .collect();
                let response = post(&http, &node, &json!(batch)).await;
                assert_eq!(response.status(), 201);
                let body: Value = response.json().await.expect("json");
                let (first, last) = (
                    body["first_id"].as_i64().expect("first"),
                    body["last_id"].as_i64().expect("last"),
                );
                acked.extend(first..=last);
            }
            acked
        }));
    }

    // One reader tails through each node, oldest first, following the cursor.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = nodes
        .iter()
        .map(|node| tokio::spawn(tail_by_cursor(http.clone(), node.clone(), done.clone())))
        .collect();
    let mut acked = BTreeSet::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let expected_total = WRITERS * (0..POSTS_EACH).map(|i| i % 3 + 1).sum::<usize>();
    assert_eq!(acked.len(), expected_total);
    for (n, reader) in readers.into_iter().enumerate() {
        let (seen, pages) = reader.await.expect("reader");
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "the tail through node {n} went backwards or repeated"
        );
        let seen_set: BTreeSet<i64> = seen.iter().copied().collect();
        let skipped: Vec<&i64> = acked.difference(&seen_set).collect();
        assert!(
            skipped.is_empty(),
            "the tail through node {n} skipped {} records: {skipped:?}",
            skipped.len()
        );
        assert_eq!(
            seen_set, acked,
            "the tail through node {n} saw records nobody wrote"
        );
        eprintln!(
            "tailing reader through node {n}: {} records in {pages} pages, none skipped",
            seen.len()
        );
    }
    // No append failed, so no reservation was abandoned: the ids are dense.
    assert_eq!(
        acked.iter().copied().collect::<Vec<_>>(),
        (1..=expected_total as i64).collect::<Vec<_>>(),
        "ids have gaps"
    );
    drop(nodes);
    database.drop().await;
}

async fn status_with(http: &Client, node: &Node, token: &str) -> u16 {
    http.get(node.url("/logbook/v1/records?limit=1"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

/// Each node caches token lookups; a revocation or a disabled account through one
/// node must still be refused by the others on their very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_or_an_account_disabled_through_one_node_is_refused_by_the_others() {
    let database = TestDatabase::create().await;
    let token = logbook_server::auth::secrets::new_token();
    let a = spawn_node(&database, &token);
    let b = spawn_node(&database, &token);
    let c = spawn_node(&database, &token);
    let http = Client::new();
    let create = |name: &str| {
        http.post(a.url("/logbook/v1/tokens"))
            .bearer_auth(&a.token)
            .json(&json!({ "name": name }))
            .send()
    };
    for round in 0..20 {
        let created: Value = create(&format!("t{round}"))
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let secret = created["token"].as_str().expect("secret").to_string();
        let id = created["id"].as_i64().expect("id");
        // Used (and so cached) on B and C, several times.
        for _ in 0..3 {
            assert_eq!(status_with(&http, &b, &secret).await, 200);
            assert_eq!(status_with(&http, &c, &secret).await, 200);
        }
        let revoked = http
            .delete(a.url(&format!("/logbook/v1/tokens/{id}")))
            .bearer_auth(&a.token)
            .send()
            .await
            .expect("revoke");
        assert_eq!(revoked.status(), 200);
        assert_eq!(status_with(&http, &b, &secret).await, 401, "round {round}");
        assert_eq!(status_with(&http, &c, &secret).await, 401, "round {round}");
    }

    // A disabled account's token is refused on the other nodes at once, too.
    let user = http
        .post(a.url("/logbook/v1/users"))
        .bearer_auth(&a.token)
        .json(&json!({"name": "carol", "role": "writer", "domain": "acme", "password": "carol-secret-1"}))
        .send()
        .await
        .expect("user");
    assert_eq!(user.status(), 201);
    let login = http
        .post(a.url("/logbook/v1/login"))
        .json(&json!({"username": "carol", "password": "carol-secret-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let whoami = |node: &Node| {
        http.get(node.url("/logbook/v1/whoami"))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(whoami(&b).await.expect("whoami").status(), 200);
    assert_eq!(whoami(&c).await.expect("whoami").status(), 200);
    let disabled = http
        .patch(a.url("/logbook/v1/users/carol"))
        .bearer_auth(&a.token)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .expect("disable");
    assert_eq!(disabled.status(), 200);
    assert_eq!(whoami(&b).await.expect("whoami").status(), 401);
    assert_eq!(whoami(&c).await.expect("whoami").status(), 401);

    assert!(a.terminate());
    assert!(b.terminate());
    assert!(c.terminate());
    database.drop().await;
}

/// SIGKILL of one node while all three take appends: every acknowledged record is
/// there once, under its id; nothing is there twice; the others keep serving, and a
/// reader tailing through a survivor is not held up by the dead node's appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_node_during_appends_loses_duplicates_and_blocks_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const WRITERS: usize = 6;
    /// Acknowledged appends in all before the kill, and after it.
    const BEFORE: u64 = 150;
    const AFTER: u64 = 150;
    let database = TestDatabase::create().await;
    let token = logbook_server::auth::secrets::new_token();
    let victim = Arc::new(Mutex::new(Some(spawn_node(&database, &token))));
    let victim_url = victim
        .lock()
        .expect("victim")
        .as_ref()
        .map(|n| n.url("/logbook/v1/records"))
        .expect("url");
    let survivors: Vec<Arc<Node>> = (0..2)
        .map(|_| Arc::new(spawn_node(&database, &token)))
        .collect();
    let acked = Arc::new(Mutex::new(Vec::<(i64, String)>::new()));
    let (count, mut counted) = tokio::sync::watch::channel(0u64);
    let count = Arc::new(count);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let url = match w % 3 {
            0 => victim_url.clone(),
            n => survivors[n - 1].url("/logbook/v1/records"),
        };
        let (acked, count, stop, token) = (
            Arc::clone(&acked),
            Arc::clone(&count),
            Arc::clone(&stop),
            token.clone(),
        );
        writers.push(tokio::spawn(async move {
            let http = Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                let messages: Vec<String> =
                    (0..=(n % 4)).map(|i| format!("w{w} b{n} r{i}")).collect();
                n += 1;
                let body: Vec<Value> = messages
                    .iter()
                    .map(|m| json!({"kind": "log", "message": m}))
                    .collect();
                let Ok(response) = http.post(&url).bearer_auth(&token).json(&body).send().await
                else {
                    // The victim is gone (or going): its writer stops.
                    return;
                };
                if response.status() != 201 {
                    return;
                }
                let Ok(answer) = response.json::<Value>().await else {
                    return;
                };
                let first = answer["first_id"].as_i64().expect("first");
                let mut acked = acked.lock().expect("acked");
                for (i, m) in messages.into_iter().enumerate() {
                    acked.push((first + i as i64, m));
                }
                drop(acked);
                count.send_modify(|c| *c += 1);
            }
        }));
    }
    // Kill the victim once enough was acknowledged, while its writers are mid-append.
    let at_kill = *tokio::time::timeout(HANG_GUARD, counted.wait_for(|c| *c >= BEFORE))
        .await
        .expect("appends acknowledged (before the hang guard)")
        .expect("writers");
    if let Some(mut node) = victim.lock().expect("victim").take() {
        node.child.kill().expect("SIGKILL");
        let _ = node.child.wait();
    }
    // The survivors keep taking appends.
    tokio::time::timeout(HANG_GUARD, counted.wait_for(|c| *c >= at_kill + AFTER))
        .await
        .expect("the survivors keep acknowledging (before the hang guard)")
        .expect("writers");
    stop.store(true, Ordering::Release);
    for writer in writers {
        writer.await.expect("writer");
    }
    let done = Arc::new(AtomicBool::new(true));
    let (seen, _) = tail_by_cursor(Client::new(), survivors[0].clone(), done).await;
    let acked = acked.lock().expect("acked").clone();
    let stored = survivors[1].messages().await;
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the tail went backwards or repeated"
    );
    let by_id: std::collections::HashMap<i64, String> = stored.iter().cloned().collect();
    for (id, message) in &acked {
        assert_eq!(
            by_id.get(id),
            Some(message),
            "acknowledged record {id} lost or changed"
        );
    }
    let seen_set: BTreeSet<i64> = seen.iter().copied().collect();
    let missing: Vec<i64> = acked
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !seen_set.contains(id))
        .collect();
    assert!(missing.is_empty(), "the tail skipped {missing:?}");
    let mut messages: Vec<&String> = stored.iter().map(|(_, m)| m).collect();
    let total = messages.len();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), total, "a record is stored twice");
    eprintln!(
        "SIGKILL of one of three nodes: {} acknowledged records, {} stored, none lost, none twice",
        acked.len(),
        total
    );
    drop(survivors);
    database.drop().await;
}

/// SIGKILL during sealing on PostgreSQL: a real node with tiny blocks (it seals
/// every few dozen records, in the background, while writers stream batches) is
/// killed again and again; after each restart every acknowledged record is there
/// once, under its id, nothing is there twice, and every block reads back whole
/// (the restarted node reads all of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_sealing_loses_and_duplicates_nothing() {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let database = TestDatabase::create().await;
    let token = logbook_server::auth::secrets::new_token();
    let spawn = || {
        Node::spawn(
            &[
                "--database",
                &database.url,
                "--block-rows",
                "40",
                "--hot-records",
                "60",
            ],
            &token,
        )
    };
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let acknowledged = Arc::new(Mutex::new(HashMap::<i64, String>::new()));
    for round in 0..4 {
        let node = spawn();
        let sealed = || async {
            client
                .query_opt("SELECT coalesce(sum(rows), 0)::bigint FROM blocks", &[])
                .await
                .ok()
                .flatten()
                .map_or(0, |r| r.get::<_, i64>(0))
        };
        let sealed_before = sealed().await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (url, acknowledged, stop, token) = (
                node.url("/logbook/v1/records"),
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
                token.clone(),
            );
            writers.push(tokio::spawn(async move {
                let http = Client::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let size = 1 + (w * 7 + n) % 23;
                    let messages: Vec<String> = (0..size)
                        .map(|i| format!("round {round} writer {w} batch {n} line {i}"))
                        .collect();
                    n += 1;
                    let body: Vec<Value> = messages
                        .iter()
                        .map(|m| json!({"kind": "log", "category": "crash", "message": m}))
                        .collect();
                    let Ok(response) = http.post(&url).bearer_auth(&token).json(&body).send().await
                    else {
                        break; // killed
                    };
                    if response.status() != 201 {
                        break;
                    }
                    let Ok(answer) = response.json::<Value>().await else {
                        break;
                    };
                    let first = answer["first_id"].as_i64().expect("first id");
                    let mut acknowledged = acknowledged.lock().expect("lock");
                    for (i, m) in messages.into_iter().enumerate() {
                        acknowledged.insert(first + i as i64, m);
                    }
                }
            }));
        }
        // Kill once several blocks were sealed under this round's writers, while
        // they go on writing (so the sealer is at work too).
        let target = acknowledged.lock().expect("lock").len() + 300 + round * 97;
        tokio::time::timeout(HANG_GUARD, async {
            while acknowledged.lock().expect("lock").len() < target
                || sealed().await < sealed_before + 80
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("records acknowledged and sealed (before the hang guard)");
        drop(node); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.expect("writer");
        }

        let node = spawn();
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
        drop(node);
    }
    database.drop().await;
}
