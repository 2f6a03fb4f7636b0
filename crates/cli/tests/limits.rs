//! Load shedding and limits (issue 20, point 4), on real `logbook serve`
//! processes: a request beyond the in-flight body-byte budget or the write budget
//! gets 503 with Retry-After at once (before its body is read), a body that stops
//! arriving gets 408, a connection beyond the cap gets 503 and is closed, and one
//! whose request head does not arrive within the header-read timeout is closed.

use crate::support::process::Node;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "lbk_limits_test_token_0123456789abcdef";

fn spawn(dir: &tempfile::TempDir, extra: &[&str]) -> (Node, String) {
    let mut args = vec![
        "--data",
        dir.path().to_str().expect("utf-8"),
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let (node, before) = Node::spawn_announcing(&args, TOKEN);
    let metrics = before
        .iter()
        .find_map(|l| l.strip_prefix("metrics on "))
        .expect("metrics address")
        .to_string();
    (node, metrics)
}

fn host_port(node: &Node) -> String {
    node.base.trim_start_matches("http://").to_string()
}

/// A POST whose body (of `length` bytes declared) is sent but for its last byte.
async fn held_post(node: &Node, length: usize) -> (TcpStream, Vec<u8>) {
    let mut body = format!("{{\"message\": \"{}", "x".repeat(length.saturating_sub(16)));
    body.push_str("\"}");
    let body = format!("{body:<length$}").into_bytes();
    let mut stream = TcpStream::connect(host_port(node)).await.expect("connect");
    let head = format!(
        "POST /logbook/v1/records HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..body.len() - 1])
        .await
        .expect("body");
    (stream, body[body.len() - 1..].to_vec())
}

/// Waits until the node reports `n` requests in flight (the held one has its budget).
async fn in_flight(metrics: &str, n: u32) {
    for _ in 0..2000 {
        let text = reqwest::get(metrics)
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        let value = text
            .lines()
            .find(|l| l.starts_with("logbook_http_requests_in_flight "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u32>().ok());
        if value == Some(n) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never {n} requests in flight");
}

async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if n == 0 || text.contains("\r\n\r\n") && text.ends_with('}') {
            return text.into_owned();
        }
    }
}

async fn post(node: &Node, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(node.url("/logbook/v1/records"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_body_byte_budget_503_at_once_and_a_stalled_body_408() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(
        &dir,
        &[
            "--max-in-flight-body-bytes",
            "1000",
            "--body-read-timeout",
            "1s",
        ],
    );
    let (mut held, last) = held_post(&node, 800).await;
    in_flight(&metrics, 1).await;
    let body = format!("{{\"message\": \"{}\"}}", "y".repeat(780));
    let response = post(&node, &body).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or("")
            .contains("bytes in flight"),
        "{error}"
    );
    // Small requests and reads still go through.
    assert_eq!(post(&node, "{\"message\": \"small\"}").await.status(), 201);
    // The held one completes normally.
    held.write_all(&last).await.expect("last byte");
    let answer = read_answer(&mut held).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    // And its budget is back.
    assert_eq!(post(&node, &body).await.status(), 201);

    // A body that stops arriving: 408, naming the body.
    let (mut stalled, _) = held_post(&node, 300).await;
    let answer = read_answer(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"field\":\"body\""), "{answer}");
    let text = reqwest::get(&metrics)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("logbook_http_shed_requests_total{reason=\"body_bytes\"} 1"),
        "{text}"
    );
    assert!(node.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_write_budget_and_the_connection_cap_503_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(
        &dir,
        &["--max-in-flight-writes", "1", "--max-connections", "3"],
    );
    let (mut held, last) = held_post(&node, 200).await;
    in_flight(&metrics, 1).await;
    let response = post(&node, "{\"message\": \"second\"}").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"].as_str().unwrap_or("").contains("writes"),
        "{error}"
    );
    held.write_all(&last).await.expect("last byte");
    assert!(read_answer(&mut held).await.starts_with("HTTP/1.1 201"));

    // Three connections open (the held one is kept alive); a fourth is refused.
    let _a = TcpStream::connect(host_port(&node)).await.expect("connect");
    let _b = TcpStream::connect(host_port(&node)).await.expect("connect");
    let mut refused = TcpStream::connect(host_port(&node)).await.expect("connect");
    let answer = read_answer(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("too many connections"), "{answer}");
    drop(held);
    drop(_a);
    // Once connections close, new ones are served again.
    let mut served = false;
    for _ in 0..2000 {
        match reqwest::get(node.url("/healthz")).await {
            Ok(r) if r.status() == 200 => {
                served = true;
                break;
            }
            _ => tokio::task::yield_now().await,
        }
    }
    assert!(served, "served again once connections closed");
    assert!(node.terminate());
}

/// Reads until the server closes the connection; answers what it wrote first.
pub(crate) async fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut written = Vec::new();
    match stream.read_to_end(&mut written).await {
        Ok(_) => written,
        // A reset also ends the connection; what came before it is kept.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => written,
        Err(e) => panic!("read: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_completes_is_cut_off_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, _) = spawn(&dir, &["--header-read-timeout", "1s"]);
    // Half a head: the request line and one header, never the blank line.
    let mut partial = TcpStream::connect(host_port(&node)).await.expect("connect");
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .expect("partial head");
    // hyper closes such a connection without an answer (docs/operations.md).
    let written = read_to_eof(&mut partial).await;
    assert!(
        written.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&written)
    );
    // A connection that sends nothing at all is closed the same way.
    let mut silent = TcpStream::connect(host_port(&node)).await.expect("connect");
    assert!(read_to_eof(&mut silent).await.is_empty());
    // A complete head on a new connection is answered as ever, and the idle
    // keep-alive connection after it is closed in turn.
    let mut whole = TcpStream::connect(host_port(&node)).await.expect("connect");
    whole
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("head");
    let answer = String::from_utf8_lossy(&read_to_eof(&mut whole).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        reqwest::get(node.url("/healthz"))
            .await
            .expect("get")
            .status(),
        200
    );
    assert!(node.terminate());
}
