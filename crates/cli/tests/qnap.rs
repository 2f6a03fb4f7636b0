//! The QNAP Container Station "Log and Event" dialect (`/api/v1/`), replayed from its
//! documents (seeds 000 and 001) against a server holding document 001's example
//! data, plus the filters, CSV safety, authentication, event cursor and wait.

mod access;
mod data;
mod events;
mod registry;

use crate::support::{Backend, TestServer, ADMIN_PASSWORD};
use data::{seed_records, utest_attributes, EXAMPLE_EVENTS, EXPORT_LINES};
use reqwest::StatusCode;
use serde_json::{json, Value};

store_tests!(
    replays_every_curl_command_of_the_documents,
    log_filters_alone_and_combined,
    bad_parameters_answer_400_naming_them,
);

/// A server holding the example data of document 001.
pub async fn seeded(backend: Backend) -> TestServer {
    let server = TestServer::start(backend).await;
    let ids = server.ingest(seed_records()).await;
    assert_eq!(ids, (1..=81).collect::<Vec<_>>());
    // Set in the store directly: through the API the change would also be an event
    // record (as it should), which the documented answers do not contain.
    let Value::Object(body) = utest_attributes() else {
        panic!("utest attributes are an object");
    };
    let mut update = logbook_server::native::objects::update_from_json(body).expect("update");
    update.key = Some(logbook_core::ObjectRef::new("lxc", "utest"));
    update.domain_id = Some("default".into());
    server.store.put_object(update).await.expect("put utest");
    server
}

/// Runs one of the documents' curl commands unchanged, in `dir` (for cookies.txt).
async fn curl(server: &TestServer, dir: &std::path::Path, command: &str) -> String {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("QIP", server.addr.ip().to_string())
        .env("QPORT", server.addr.port().to_string())
        .env("QPASSWORD", ADMIN_PASSWORD)
        .env_remove("http_proxy")
        .output()
        .await
        .expect("run curl");
    assert!(output.status.success(), "{command}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8 answer")
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn replays_every_curl_command_of_the_documents(backend: Backend) {
    let server = seeded(backend).await;
    let dir = tempfile::tempdir().expect("directory");
    let dir = dir.path();

    // Document 000's login and its own check of the answer.
    let login = curl(&server, dir, r#"curl -sq -XPOST -c cookies.txt -d "username=admin&password=${QPASSWORD}" http://${QIP}:${QPORT}/api/v1/login"#).await;
    let auth = json_of(&login);
    assert!(auth.get("error").is_none(), "{auth}");
    assert_eq!(auth["username"], "admin");
    let jar = std::fs::read_to_string(dir.join("cookies.txt")).expect("cookie jar");
    assert!(
        jar.contains("#HttpOnly_") && jar.contains("logbook_session"),
        "{jar}"
    );

    let log = curl(&server, dir, r#"curl -sq -XGET -b cookies.txt "http://${QIP}:${QPORT}/api/v1/log?limit=5&category=image,export""#).await;
    assert_eq!(
        json_of(&log),
        json!([
            { "category": "export", "id": 50, "level": "INFO", "message": "Finished export container (docker, 1753ab55c36e, DockerTestAPI) to /test/d.tgz", "ts": 1432022739, "user": "Anonymous" },
            { "category": "image", "id": 49, "level": "INFO", "message": "Finished to download image from dockerhub (docker, lgsd/diamond:latest)", "ts": 1432022737, "user": "Anonymous" },
            { "category": "export", "id": 48, "level": "INFO", "message": "Start to export container (docker, 1753ab55c36e, DockerTestAPI) to /test/d.tgz", "ts": 1432022730, "user": "Anonymous" },
            { "category": "export", "id": 47, "level": "INFO", "message": "Finished export container (lxc, utest) to /test/c.tgz", "ts": 1432022730, "user": "Anonymous" },
            { "category": "export", "id": 46, "level": "INFO", "message": "Export task logs are cleared", "ts": 1432022726, "user": "Anonymous" }
        ])
    );

    let export = curl(
        &server,
        dir,
        "curl -sq -XGET -b cookies.txt http://${QIP}:${QPORT}/api/v1/log/export",
    )
    .await;
    let expected: String = EXPORT_LINES.iter().map(|l| format!("{l}\r\n")).collect();
    assert_eq!(export, expected);

    let event = curl(
        &server,
        dir,
        "curl -sq -XGET -b cookies.txt http://${QIP}:${QPORT}/api/v1/event",
    )
    .await;
    assert_eq!(
        json_of(&event),
        json!({"index": 61, "messages": EXAMPLE_EVENTS, "offset": 81})
    );

    // utest is running, so waiting for "stopped" ends with the 5 s duration and
    // answers the container's info, exactly as in the document.
    let started = std::time::Instant::now();
    let wait = curl(&server, dir, r#"curl -sq -XGET -b cookies.txt "http://${QIP}:${QPORT}/api/v1/event/wait/lxc/utest/stopped?duration=5""#).await;
    eprintln!(
        "the document's 5 s wait answered after {:?}",
        started.elapsed()
    );
    assert_eq!(
        json_of(&wait),
        json!({ "cpu": 0.0, "id": "utest", "image": "ubuntu-trusty:latest", "ipaddress": [ "10.0.3.47" ], "memory": 11751424, "name": "utest", "rx": 0, "state": "running", "tx": 0, "type": "lxc" })
    );

    // The document cleared 58 lines: one more than its export shows was logged in
    // between. The replay logs that line too, then clears.
    server
        .ingest(
            json!({"kind": "log", "level": "INFO", "category": "system", "message": "one more"}),
        )
        .await;
    let clear = curl(
        &server,
        dir,
        "curl -sq -XDELETE -b cookies.txt http://${QIP}:${QPORT}/api/v1/log",
    )
    .await;
    assert_eq!(json_of(&clear), json!({"records": 58}));
    let after = curl(
        &server,
        dir,
        "curl -sq -XGET -b cookies.txt http://${QIP}:${QPORT}/api/v1/log/export",
    )
    .await;
    assert_eq!(after, "Date,Level,Category,User,Message\r\n");
    server.stop().await;
}

/// The ids the list should answer, computed from the example data independently of
/// the server: newest first, `limit` after `offset`.
fn expected_ids(
    keep: impl Fn(usize, &[String; 5]) -> bool,
    offset: usize,
    limit: usize,
) -> Vec<i64> {
    let mut ids: Vec<i64> = EXPORT_LINES[1..]
        .iter()
        .enumerate()
        .filter(|(i, line)| keep(*i, &data::cells(line)))
        .map(|(i, _)| i as i64 + 1)
        .collect();
    ids.reverse();
    ids.into_iter().skip(offset).take(limit).collect()
}

pub async fn listed_ids(server: &TestServer, query: &str) -> Vec<i64> {
    let rows = server.get_json(&format!("/api/v1/log?{query}")).await;
    rows.as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

/// Epoch seconds of the example data's n-th line (1-based), as the list shows it.
fn ts_of(n: usize) -> i64 {
    let date = data::cells(EXPORT_LINES[n])[0].clone();
    let ts = logbook_core::Timestamp::parse(&format!("{}Z", date.replace(' ', "T")));
    ts.expect("date").epoch_seconds()
}

async fn log_filters_alone_and_combined(backend: Backend) {
    let server = seeded(backend).await;
    let all = |_: usize, _: &[String; 5]| true;
    let cases: Vec<(String, Vec<i64>)> = vec![
        ("".to_string(), expected_ids(all, 0, 20)),
        ("limit=3&offset=2".to_string(), expected_ids(all, 2, 3)),
        ("limit=100".to_string(), expected_ids(all, 0, 100)),
        (
            "level=WARN".to_string(),
            expected_ids(|_, c| c[1] == "WARN", 0, 20),
        ),
        (
            "level=warning,Error".to_string(),
            expected_ids(|_, c| c[1] != "INFO", 0, 20),
        ),
        (
            "level=ERROR&level=WARN".to_string(),
            expected_ids(|_, c| c[1] != "INFO", 0, 20),
        ),
        (
            "category=backup".to_string(),
            expected_ids(|_, c| c[2] == "backup", 0, 20),
        ),
        (
            "category=image,import,system&limit=50".to_string(),
            expected_ids(
                |_, c| ["image", "import", "system"].contains(&c[2].as_str()),
                0,
                50,
            ),
        ),
        (
            "user=system".to_string(),
            expected_ids(|_, c| c[3] == "system", 0, 20),
        ),
        ("user=TestUser2".to_string(), vec![56]),
        (
            "text=DESTROY%20container&limit=50".to_string(),
            expected_ids(
                |_, c| c[4].to_lowercase().contains("destroy container"),
                0,
                50,
            ),
        ),
        ("text=utest_import".to_string(), vec![52, 51]),
        (
            "text=container&limit=2&offset=3".to_string(),
            expected_ids(|_, c| c[4].to_lowercase().contains("container"), 3, 2),
        ),
        (
            "text=up&category=backup,export".to_string(),
            expected_ids(
                |_, c| {
                    c[4].to_lowercase().contains("up")
                        && ["backup", "export"].contains(&c[2].as_str())
                },
                0,
                20,
            ),
        ),
        (
            "time_start=0&time_end=0".to_string(),
            expected_ids(all, 0, 20),
        ),
        (
            format!("time_start={}&limit=50", ts_of(50)),
            expected_ids(|_, c| ts_after(c, ts_of(50)), 0, 50),
        ),
        (
            format!("time_end={}&limit=50", ts_of(10)),
            expected_ids(|_, c| !ts_after(c, ts_of(10) + 1), 0, 50),
        ),
        (
            format!("time_start={}&time_end={}&limit=50", ts_of(20), ts_of(30)),
            expected_ids(
                |_, c| ts_after(c, ts_of(20)) && !ts_after(c, ts_of(30) + 1),
                0,
                50,
            ),
        ),
        (
            "category=container&level=WARN,ERROR".to_string(),
            vec![57, 56],
        ),
        (
            "category=container&level=WARN,ERROR&user=TestUser3".to_string(),
            vec![57],
        ),
        (
            "category=backup,container&level=error&text=NO%20SUCH".to_string(),
            vec![13],
        ),
        (
            format!(
                "category=export&time_start={}&time_end={}&text=finished",
                ts_of(47),
                ts_of(50)
            ),
            vec![50, 47],
        ),
        ("category=nothing".to_string(), vec![]),
        ("limit=0".to_string(), vec![]),
    ];
    for (query, expected) in &cases {
        assert_eq!(&listed_ids(&server, query).await, expected, "?{query}");
    }
    // Rows carry the document's fields, WARN spelled as QNAP spells it.
    let rows = server.get_json("/api/v1/log?user=TestUser2").await;
    assert_eq!(
        rows,
        json!([{"category": "container", "id": 56, "level": "WARN", "message": "Hello container station", "ts": ts_of(56), "user": "TestUser2"}])
    );
    server.stop().await;
}

/// Whether the line's time is at or after `epoch` (whole seconds).
fn ts_after(cells: &[String; 5], epoch: i64) -> bool {
    let ts = logbook_core::Timestamp::parse(&format!("{}Z", cells[0].replace(' ', "T")));
    ts.expect("date").epoch_seconds() >= epoch
}

async fn bad_parameters_answer_400_naming_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cases = [
        ("/api/v1/log?limit=many", "limit"),
        ("/api/v1/log?limit=-1", "limit"),
        ("/api/v1/log?offset=x", "offset"),
        ("/api/v1/log?level=LOUD", "level"),
        ("/api/v1/log?time_start=yesterday", "time_start"),
        ("/api/v1/log?time_end=-5", "time_end"),
        ("/api/v1/log?colour=red", "colour"),
        ("/api/v1/log/export?level=INFO,LOUD", "level"),
        ("/api/v1/log/export?limit=5", "limit"),
        ("/api/v1/event?index=abc", "index"),
        ("/api/v1/event?offset=-1", "offset"),
        ("/api/v1/event/wait/lxc/u/running?duration=soon", "duration"),
        ("/api/v1/event/wait/lxc/u/running?duration=-1", "duration"),
        ("/api/v1/event/wait/vm/u/running", "container_type"),
        ("/api/v1/event/wait/lxc/u/paused", "state"),
    ];
    for (path, field) in cases {
        let response = server.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["field"], field, "{path}: {body}");
        let error = body["error"].as_str().expect("error text");
        assert!(error.starts_with(field), "{path}: {body}");
    }
    server.stop().await;
}
