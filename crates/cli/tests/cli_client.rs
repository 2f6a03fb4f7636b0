//! The `logbook` client subcommands (query, tail, export, import, count), run as a
//! real process against a real server, as an operator would.

use crate::support::{binary, Backend, TestServer};
use serde_json::{json, Value};
use std::process::{Output, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

store_tests!(
    query_prints_table_json_and_csv_with_filters,
    count_and_relative_since,
    tail_prints_the_latest_oldest_first_plain_when_piped,
    tail_follow_prints_new_matching_records,
    export_then_import_reproduces_the_same_records,
    a_failed_import_resumes_without_duplicates,
    a_batch_sent_again_under_its_key_is_not_written_twice,
    server_errors_are_one_clear_line_and_a_failing_exit,
);

fn client(server: &TestServer, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("LOGBOOK_URL", &server.base)
        .env("LOGBOOK_TOKEN", &server.token)
        .env("LOGBOOK_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run(server: &TestServer, args: &[&str]) -> String {
    let output = client(server, args).output().await.expect("run logbook");
    assert!(
        output.status.success(),
        "logbook {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn fail(server: &TestServer, args: &[&str]) -> Output {
    let output = client(server, args).output().await.expect("run logbook");
    assert!(!output.status.success(), "logbook {args:?} should fail");
    output
}

async fn seed(server: &TestServer) -> Vec<i64> {
    server
        .ingest(json!([
            {"kind": "log", "level": "INFO", "category": "image", "user": "alice", "message": "pulled nginx"},
            {"kind": "log", "level": "ERROR", "category": "image", "user": "alice", "message": "pull timeout"},
            {"kind": "log", "level": "WARN", "category": "network", "user": "bob", "message": "slow link"},
            {"kind": "event", "level": "ERROR", "category": "image", "user": "bob", "message": "=cmd|' /C calc'!A0",
             "data": {"image": "redis:7", "size": 12}},
            {"kind": "journal", "action": "login", "user": "carol", "status": "ok", "message": "carol logged in"},
        ]))
        .await
}

async fn query_prints_table_json_and_csv_with_filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ids = seed(&server).await;
    let json = run(
        &server,
        &[
            "query",
            "--level",
            "ERROR,WARN",
            "--category",
            "image",
            "--output",
            "json",
        ],
    )
    .await;
    let records: Vec<Value> = serde_json::from_str(&json).expect("json array");
    let got: Vec<i64> = records
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, [ids[3], ids[1]], "newest first, filtered");
    assert_eq!(
        records[0],
        server
            .get_json(&format!("/logbook/v1/records/{}", ids[3]))
            .await
    );

    let csv_text = run(
        &server,
        &["query", "--user", "bob", "--order", "asc", "-o", "csv"],
    )
    .await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(&header[..4], ["id", "ts", "kind", "level"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    assert_eq!(&rows[0][column("message")], "slow link");
    // A formula is neutralised exactly as the server's export does.
    assert_eq!(&rows[1][column("message")], "'=cmd|' /C calc'!A0");
    assert_eq!(&rows[1][column("data")], r#"{"image":"redis:7","size":12}"#);

    let table = run(&server, &["query", "--q", "TIMEOUT", "--limit", "5"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].contains("MESSAGE"));
    assert!(
        lines[1].contains("pull timeout") && lines[1].contains("ERROR"),
        "{table}"
    );
    // Every column starts where its header does, the ID column included.
    let table = run(&server, &["query", "--limit", "10"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines.len() > 2, "{table}");
    let header = lines[0];
    let id_end = header.find("ID").expect("ID") + 2;
    let time_start = header.find("TIME").expect("TIME");
    let kind_start = header.find("KIND").expect("KIND");
    for line in &lines[1..] {
        let id = line.get(..id_end).expect("an id cell").trim();
        assert!(
            id.parse::<i64>().is_ok(),
            "ID right-aligned under its header: {table}"
        );
        assert_eq!(line.chars().nth(time_start - 1), Some(' '), "{table}");
        assert!(
            line.chars()
                .nth(time_start)
                .is_some_and(|c| c.is_ascii_digit()),
            "{table}"
        );
        let kind: String = line
            .chars()
            .skip(kind_start)
            .take_while(|c| *c != ' ')
            .collect();
        assert!(
            ["log", "event", "journal"].contains(&kind.as_str()),
            "{kind:?} in {table}"
        );
    }
    server.stop().await;
}

async fn count_and_relative_since(backend: Backend) {
    let server = TestServer::start(backend).await;
    seed(&server).await;
    let three_hours_ago = logbook_core::Timestamp::from_micros(
        logbook_core::Timestamp::now().micros() - 3 * 3600 * 1_000_000,
    )
    .expect("ts")
    .rfc3339();
    server
        .ingest(json!({"kind": "log", "level": "ERROR", "message": "old", "ts": three_hours_ago}))
        .await;
    assert_eq!(run(&server, &["count"]).await.trim(), "6");
    assert_eq!(
        run(&server, &["count", "--level", "ERROR"]).await.trim(),
        "3"
    );
    assert_eq!(
        run(&server, &["count", "--level", "ERROR", "--since", "2h"])
            .await
            .trim(),
        "2"
    );
    assert_eq!(run(&server, &["count", "--until", "2h"]).await.trim(), "1");
    assert_eq!(
        run(
            &server,
            &["count", "--kind", "journal", "--action", "login"]
        )
        .await
        .trim(),
        "1"
    );
    server.stop().await;
}

async fn tail_prints_the_latest_oldest_first_plain_when_piped(backend: Backend) {
    let server = TestServer::start(backend).await;
    seed(&server).await;
    let out = run(&server, &["tail", "-n", "2", "--category", "image"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("pull timeout"), "{out}");
    assert!(lines[1].contains("calc"), "{out}");
    assert!(lines[1].contains("ERROR") && lines[1].contains("[image]") && lines[1].contains("bob"));
    assert!(!out.contains('\x1b'), "no colour codes when piped");
    let json = run(&server, &["tail", "-n", "1", "--json"]).await;
    let record: Value = serde_json::from_str(json.trim()).expect("one json line");
    assert_eq!(record["user"], "carol");
    server.stop().await;
}

async fn tail_follow_prints_new_matching_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    seed(&server).await;
    let mut child = client(&server, &["tail", "-f", "-n", "1", "--level", "ERROR"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tail -f");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    assert!(
        first.contains("calc"),
        "the latest existing match first: {first}"
    );
    server
        .ingest(json!([
            {"kind": "log", "level": "INFO", "message": "not shown"},
            {"kind": "log", "level": "ERROR", "message": "disk full"},
            {"kind": "log", "level": "ERROR", "message": "disk still full"},
        ]))
        .await;
    let second = lines.next_line().await.expect("read").expect("a line");
    let third = lines.next_line().await.expect("read").expect("a line");
    assert!(second.ends_with("disk full"), "{second}");
    assert!(third.ends_with("disk still full"), "{third}");
    child.kill().await.expect("stop tail");
    server.stop().await;
}

/// Export lines without their ids (the destination assigns its own).
fn without_ids(ndjson: &str) -> Vec<Value> {
    ndjson
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).expect("ndjson line");
            record.as_object_mut().expect("object").remove("id");
            record
        })
        .collect()
}

async fn export_then_import_reproduces_the_same_records(backend: Backend) {
    let source = TestServer::start(backend).await;
    seed(&source).await;
    let many: Vec<Value> = (0..2500)
        .map(|i| json!({"kind": "log", "level": "DEBUG", "category": "bulk", "message": format!("line {i}")}))
        .collect();
    source.ingest(Value::Array(many)).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("all.ndjson");
    let file_arg = file.to_str().expect("path");
    run(&source, &["export", "--format", "ndjson", "-o", file_arg]).await;
    let exported = std::fs::read_to_string(&file).expect("export file");
    assert_eq!(exported.lines().count(), 2505);

    let destination = TestServer::start(backend).await;
    run(&destination, &["import", file_arg, "--batch", "700"]).await;
    assert!(
        !dir.path().join("all.ndjson.checkpoint").exists(),
        "checkpoint removed when done"
    );
    let reexported = run(&destination, &["export", "--format", "ndjson"]).await;
    assert_eq!(without_ids(&reexported), without_ids(&exported));

    // CSV export of a filter carries the same rows as the query.
    let csv_file = dir.path().join("errors.csv");
    run(
        &source,
        &[
            "export",
            "--format",
            "csv",
            "--level",
            "ERROR",
            "-o",
            csv_file.to_str().expect("path"),
        ],
    )
    .await;
    let csv_text = std::fs::read_to_string(&csv_file).expect("csv file");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let messages: Vec<String> = reader
        .records()
        .map(|r| r.expect("row")[19].to_string())
        .collect();
    assert_eq!(messages, ["pull timeout", "'=cmd|' /C calc'!A0"]);
    source.stop().await;
    destination.stop().await;
}

/// A batch the server committed but whose answer was lost is sent again (by the
/// retry, or by `--resume` from a checkpoint that did not record it): its
/// `Idempotency-Key` (the run id in the checkpoint and its first line) makes the
/// server answer it without writing it again.
async fn a_batch_sent_again_under_its_key_is_not_written_twice(backend: Backend) {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("in.ndjson");
    let lines: Vec<String> = (1..=10)
        .map(|i| json!({"message": format!("record {i}")}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let checkpoint = dir.path().join("in.ndjson.checkpoint");
    let path = file.to_str().expect("path");
    for _ in 0..2 {
        // As if the answer to the first batch (lines 1..4) had been lost.
        std::fs::write(&checkpoint, "0 lostanswer\n").expect("checkpoint");
        run(&server, &["import", path, "--batch", "4", "--resume"]).await;
    }
    let count = server.get_json("/logbook/v1/records/count").await;
    assert_eq!(count["count"], 10, "every line once: {count}");
    server.stop().await;
}

async fn a_failed_import_resumes_without_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("in.ndjson");
    let line = |i: usize| json!({"kind": "log", "message": format!("record {i}")}).to_string();
    let mut lines: Vec<String> = (1..=10).map(line).collect();
    lines[5] = r#"{"kind": "log", "level": "LOUD", "message": "record 6"}"#.into();
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let file_arg = file.to_str().expect("path");

    let failed = fail(&server, &["import", file_arg, "--batch", "2"]).await;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("line 6: level:"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(
        run(&server, &["count"]).await.trim(),
        "4",
        "batches before the bad one are stored"
    );
    // Refuses to start over silently.
    let again = fail(&server, &["import", file_arg]).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    lines[5] = line(6);
    std::fs::write(&file, lines.join("\n") + "\n").expect("fix");
    run(&server, &["import", file_arg, "--batch", "2", "--resume"]).await;
    let all = run(&server, &["query", "--order", "asc", "--output", "json"]).await;
    let messages: Vec<String> = serde_json::from_str::<Vec<Value>>(&all)
        .expect("json")
        .iter()
        .map(|r| r["message"].as_str().expect("message").to_string())
        .collect();
    let expected: Vec<String> = (1..=10).map(|i| format!("record {i}")).collect();
    assert_eq!(messages, expected, "every line once, in order");
    server.stop().await;
}

async fn server_errors_are_one_clear_line_and_a_failing_exit(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bad = fail(&server, &["query", "--level", "LOUD"]).await;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("400") && stderr.contains("level"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("level:").count(),
        1,
        "the field once: {stderr}"
    );

    let unauthorised = client(&server, &["count"])
        .env("LOGBOOK_TOKEN", "lbk_not_a_token")
        .output()
        .await
        .expect("run");
    assert!(!unauthorised.status.success());
    let stderr = String::from_utf8_lossy(&unauthorised.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");

    let nowhere = client(&server, &["count", "--server", "http://127.0.0.1:9"])
        .output()
        .await
        .expect("run");
    assert!(!nowhere.status.success());
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        stderr.contains("cannot reach the server at http://127.0.0.1:9"),
        "{stderr}"
    );
    server.stop().await;
}
