//! journald: systemd-journal-upload sending a journal file that
//! systemd-journal-remote made from an export stream (the machine runs no journald
//! of its own to read from).

use super::clients::{
    all_records, count, debian_program, post_anonymous, run, with_body_limit, writer,
};
use crate::support::{Backend, TestServer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

store_tests!(
    journal_upload_maps_fields_and_resumes_without_duplicates,
    bad_uploads_get_json_errors_and_write_nothing,
    an_upload_streams_past_the_body_limit_in_batches,
);

fn text(name: &str, value: &str) -> Vec<u8> {
    format!("{name}={value}\n").into_bytes()
}

fn binary(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = format!("{name}\n").into_bytes();
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Three entries in the journal export format, as `journalctl -o export` writes.
fn export_stream() -> Vec<u8> {
    let boot = "0123456789abcdef0123456789abcdef";
    let mut out = Vec::new();
    for field in [
        text("__REALTIME_TIMESTAMP", "1714560000000001"),
        text("__MONOTONIC_TIMESTAMP", "1000"),
        text("_BOOT_ID", boot),
        text("PRIORITY", "3"),
        text("_HOSTNAME", "node-1"),
        text("SYSLOG_IDENTIFIER", "sshd"),
        text("_SYSTEMD_UNIT", "ssh.service"),
        binary("MESSAGE", b"auth failed\nfor root"),
        b"\n".to_vec(),
        text("__REALTIME_TIMESTAMP", "1714560001000000"),
        text("__MONOTONIC_TIMESTAMP", "2000"),
        text("_BOOT_ID", boot),
        text("_SOURCE_REALTIME_TIMESTAMP", "1714560000900000"),
        text("PRIORITY", "6"),
        text("_HOSTNAME", "node-1"),
        text("_SYSTEMD_UNIT", "cron.service"),
        binary("BLOB", &[0xff, 0x00, 0x41]),
        text("MESSAGE", "job started"),
        b"\n".to_vec(),
        text("__REALTIME_TIMESTAMP", "1714560002000000"),
        text("__MONOTONIC_TIMESTAMP", "3000"),
        text("_BOOT_ID", boot),
        text("PRIORITY", "4"),
        text("SYSLOG_IDENTIFIER", "kernel"),
        text("MESSAGE", "low memory"),
        b"\n".to_vec(),
    ] {
        out.extend(field);
    }
    out
}

fn journal_tools() -> (PathBuf, PathBuf) {
    let remote = debian_program(
        "systemd-journal-remote",
        "systemd-journal-remote",
        Some("systemd"),
    );
    let upload = remote.with_file_name("systemd-journal-upload");
    assert!(upload.exists(), "{} is missing", upload.display());
    (remote, upload)
}

/// A journal file holding `export`, written by systemd-journal-remote.
fn journal_file(remote: &Path, dir: &Path, export: &[u8]) -> PathBuf {
    let input = dir.join("export.txt");
    std::fs::write(&input, export).expect("write export");
    let journal = dir.join("remote.journal");
    run(Command::new(remote)
        .arg(format!("--output={}", journal.display()))
        .arg("--split-mode=none")
        .arg(&input))
    .expect("systemd-journal-remote");
    journal
}

async fn upload(upload: &Path, journal: &Path, state: &Path, url: String) {
    let output = tokio::process::Command::new(upload)
        .arg(format!("--file={}", journal.display()))
        .arg(format!("--url={url}"))
        .arg("--follow=no")
        .arg(format!("--save-state={}", state.display()))
        .kill_on_drop(true)
        .output()
        .await
        .expect("systemd-journal-upload");
    assert!(
        output.status.success(),
        "systemd-journal-upload failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn journal_upload_maps_fields_and_resumes_without_duplicates(backend: Backend) {
    let (remote, uploader) = tokio::task::spawn_blocking(journal_tools)
        .await
        .expect("install");
    let server = TestServer::start(backend).await;
    let token = writer(&server, "journal", "hosts").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = journal_file(&remote, dir.path(), &export_stream());
    let state = dir.path().join("upload-state");
    // Credentials in the URL: the uploader's libcurl sends them as HTTP Basic.
    let url = format!("http://journal:{token}@{}", server.addr);
    upload(&uploader, &journal, &state, url.clone()).await;

    let records = all_records(&server).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let first = &records[0];
    assert_eq!(first["ts"], "2024-05-01T10:40:00.000001Z");
    assert_eq!(first["level"], "ERROR", "PRIORITY 3");
    assert_eq!(first["source"], "sshd", "SYSLOG_IDENTIFIER first");
    assert_eq!(first["instance"], "node-1");
    assert_eq!(first["message"], "auth failed\nfor root", "a binary field");
    assert_eq!(first["domain_id"], "hosts");
    assert_eq!(first["data"]["_SYSTEMD_UNIT"], "ssh.service");
    assert!(first["data"].get("MESSAGE").is_none());
    let second = &records[1];
    assert_eq!(
        second["ts"], "2024-05-01T10:40:00.900000Z",
        "the source's time"
    );
    assert_eq!(second["level"], "INFO");
    assert_eq!(
        second["source"], "cron.service",
        "the unit without an identifier"
    );
    assert_eq!(
        second["data"]["BLOB"],
        json!([255, 0, 65]),
        "bytes as journalctl -o json"
    );
    assert_eq!(records[2]["level"], "WARN");
    assert!(records[2].get("instance").is_none());

    // The uploader saved its cursor after our answer; a second run resumes at it
    // (re-sending that entry), a run without the saved state sends everything again.
    upload(&uploader, &journal, &state, url.clone()).await;
    upload(&uploader, &journal, &dir.path().join("fresh-state"), url).await;
    assert_eq!(all_records(&server).await.len(), 3, "nothing written twice");
    server.stop().await;
}

async fn bad_uploads_get_json_errors_and_write_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let post = |content_type: &str, body: Vec<u8>| {
        server
            .http
            .post(server.url("/upload"))
            .bearer_auth(&server.token)
            .header("content-type", content_type)
            .body(body)
    };
    let response = post("text/plain", export_stream())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["field"], "content-type");

    let mut broken = export_stream();
    broken.extend(b"MESSAGE\n\xff\xff\x00\x00\x00\x00\x00\x00short\n");
    let response = post("application/vnd.fdo.journal", broken)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["field"], "entry 3", "{body}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("longer than the body")));

    let response = post_anonymous(
        &server,
        &server.url("/upload"),
        "application/vnd.fdo.journal",
        export_stream(),
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(count(&server).await, 0);
    server.stop().await;
}

/// A host's first upload is its whole backlog, larger than any body limit: it is
/// read as a stream and committed in batches, holding one entry at a time.
async fn an_upload_streams_past_the_body_limit_in_batches(backend: Backend) {
    let limit = 16 * 1024;
    let server = with_body_limit(backend, limit).await;
    let total = 2500;
    let mut stream = Vec::new();
    for i in 0..total {
        stream.extend(text("__CURSOR", &format!("s=1;i={i:x}")));
        stream.extend(text(
            "__REALTIME_TIMESTAMP",
            &(1_714_560_000_000_000u64 + i).to_string(),
        ));
        stream.extend(text("MESSAGE", &format!("entry {i} {}", "x".repeat(100))));
        stream.push(b'\n');
    }
    assert!(stream.len() > 10 * limit);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        stream.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let response = server
        .http
        .post(server.url("/upload"))
        .bearer_auth(&server.token)
        .header("content-type", "application/vnd.fdo.journal")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.expect("body"), "OK.\n");
    let count = server.get_json("/logbook/v1/records/count").await;
    assert_eq!(count["count"], total);

    // An entry larger than the limit is refused with 413.
    let mut huge = text("MESSAGE", &"y".repeat(limit + 1));
    huge.push(b'\n');
    let response = server
        .http
        .post(server.url("/upload"))
        .bearer_auth(&server.token)
        .header("content-type", "application/vnd.fdo.journal")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413);
    let count = server.get_json("/logbook/v1/records/count").await;
    assert_eq!(count["count"], total);
    server.stop().await;
}
