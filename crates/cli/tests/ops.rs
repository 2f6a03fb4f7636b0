//! Running it as a service (issue 20, point 11): a record without `kind` is a
//! `log`, `/readyz`, `logbook serve --config FILE` (TOML) and
//! `LOGBOOK_LOG_FORMAT=json`.

use crate::support::process::Node;
use crate::support::{Backend, TestServer};
use serde_json::{json, Value};
use std::process::Command;

async fn a_record_without_kind_is_a_log(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ids = server
        .ingest(json!([{"message": "no kind"}, {"level": "WARN", "message": "nor here"}]))
        .await;
    assert_eq!(ids.len(), 2);
    let listed = server.get_json("/logbook/v1/records?kind=log").await;
    let kinds: Vec<&str> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["log", "log"]);
    server.stop().await;
}

async fn readyz_says_the_store_takes_writes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 200, "no credentials needed");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"status": "ready"}));
    server.stop().await;
}

store_tests!(
    a_record_without_kind_is_a_log,
    readyz_says_the_store_takes_writes
);

const TOKEN: &str = "lbk_ops_config_test_token_0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_a_toml_configuration_file_and_logs_json() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("from-config");
    let config = dir.path().join("logbook.toml");
    std::fs::write(
        &config,
        format!(
            "# settings of the test node\ndata = {:?}\nmax_body_bytes = 200\nlog_format = \"json\"\n",
            data.to_str().expect("utf-8")
        ),
    )
    .expect("write config");
    let (node, before) =
        Node::spawn_announcing(&["--config", config.to_str().expect("utf-8")], TOKEN);
    // The data directory named in the file is the one used.
    assert!(
        data.join("logbook.db").exists(),
        "store created in {}",
        data.display()
    );
    // Logs are one JSON object a line.
    let logged: Vec<Value> = before
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect();
    assert!(
        logged
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"].is_string()),
        "JSON log lines before listening: {before:?}"
    );
    let http = reqwest::Client::new();
    let big = json!({"message": "x".repeat(300)});
    let response = http
        .post(node.url("/logbook/v1/records"))
        .bearer_auth(TOKEN)
        .json(&big)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 413, "the file's max_body_bytes applies");
    drop(node);

    // A flag wins over the file.
    let node = Node::spawn(
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--max-body-bytes",
            "100000",
        ],
        TOKEN,
    );
    let response = http
        .post(node.url("/logbook/v1/records"))
        .bearer_auth(TOKEN)
        .json(&big)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    drop(node);

    // An unknown key stops the start, naming it.
    std::fs::write(&config, "colour = \"red\"\n").expect("write config");
    let output = Command::new(crate::support::binary())
        .args(["serve", "--config", config.to_str().expect("utf-8")])
        .env_remove("LOGBOOK_DATA")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("colour"), "{stderr}");
}
