//! Load shedding and limits (issue 20, point 4), on real `logbook serve`
//! processes: a request beyond the in-flight body-byte budget or the write budget
//! gets 503 with Retry-After at once (before its body is read), a body that stops
//! arriving gets 408, at the connection cap the longest-idle connection is closed
//! for a new one (a new one gets 503 only when none is idle), and one whose
//! request head does not arrive within the header-read timeout is closed; while
//! the store keeps admitted writes waiting beyond the delay target, the write
//! limit falls and writes beyond it get 503 at once.

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
    held_post_as(node, length, &format!("Bearer {TOKEN}")).await
}

/// [`held_post`] with these credentials (an `Authorization` header's value).
async fn held_post_as(node: &Node, length: usize, authorization: &str) -> (TcpStream, Vec<u8>) {
    let mut body = format!("{{\"message\": \"{}", "x".repeat(length.saturating_sub(16)));
    body.push_str("\"}");
    let body = format!("{body:<length$}").into_bytes();
    let mut stream = TcpStream::connect(host_port(node)).await.expect("connect");
    let head = format!(
        "POST /logbook/v1/records HTTP/1.1\r\nhost: x\r\nauthorization: {authorization}\r\n\
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

/// The node's metrics page.
async fn scrape(metrics: &str) -> String {
    reqwest::get(metrics)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

/// Asserts that the node's metrics page has this sample line.
async fn assert_scraped(metrics: &str, sample: &str) {
    let text = scrape(metrics).await;
    assert!(text.contains(sample), "{text}");
}

/// Waits until the node reports `n` requests in flight (the held one has its budget).
async fn in_flight(metrics: &str, n: u32) {
    for _ in 0..2000 {
        let text = scrape(metrics).await;
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
    post_as(node, body, &format!("Bearer {TOKEN}")).await
}

async fn post_as(node: &Node, body: &str, authorization: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(node.url("/logbook/v1/records"))
        .header("authorization", authorization)
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
    assert_scraped(
        &metrics,
        "logbook_http_shed_requests_total{reason=\"body_bytes\"} 1",
    )
    .await;
    assert!(node.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_write_budget_503_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(&dir, &["--max-in-flight-writes", "1"]);
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
    assert_eq!(post(&node, "{\"message\": \"third\"}").await.status(), 201);
    assert!(node.terminate());
}

/// The records the node holds.
async fn count(node: &Node) -> u64 {
    let response = reqwest::Client::new()
        .get(node.url("/logbook/v1/records/count"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("count");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["count"].as_u64().expect("a count")
}

/// The node's current write limit (`logbook_http_write_limit`).
async fn write_limit(metrics: &str) -> Option<u32> {
    scrape(metrics)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("logbook_http_write_limit "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_kept_waiting_by_the_store_lower_the_write_limit_and_beyond_it_503_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(
        &dir,
        &[
            "--max-in-flight-writes",
            "4",
            "--write-delay-target",
            "1ms",
            "--write-delay-interval",
            "1ms",
        ],
    );
    assert_eq!(post(&node, "{\"message\": \"before\"}").await.status(), 201);
    let stored_before = count(&node).await;
    // Another process holds the store's write lock (as the CLI does while it
    // writes beside a running server): the node's writes wait for it.
    let blocker = rusqlite::Connection::open(dir.path().join("logbook.db")).expect("open");
    blocker
        .busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("write lock");
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let node_url = node.url("/logbook/v1/records");
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(node_url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(format!("{{\"message\": \"waiting {i}\"}}"))
                    .send()
                    .await
                    .expect("send")
                    .status()
            })
        })
        .collect();
    in_flight(&metrics, 2).await;
    // The limit falls (from the budget, 4) while the two wait; the node reports
    // it as time moves it.
    let mut lowered = false;
    for _ in 0..10_000 {
        if write_limit(&metrics).await.is_some_and(|l| l <= 2) {
            lowered = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        lowered,
        "the write limit never fell to the writes in flight"
    );
    let response = post(&node, "{\"message\": \"beyond\"}").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or("")
            .contains("delay target"),
        "{error}"
    );
    // Reads are not writes: still answered.
    assert_eq!(count(&node).await, stored_before);

    // The store is free again: the waiting writes are acknowledged, and with
    // nothing in flight the next write is admitted at once.
    blocker.execute_batch("ROLLBACK").expect("release");
    for write in waiting {
        assert_eq!(write.await.expect("join"), 201);
    }
    in_flight(&metrics, 0).await;
    assert_eq!(post(&node, "{\"message\": \"after\"}").await.status(), 201);
    assert_eq!(count(&node).await, stored_before + 3);
    assert_scraped(
        &metrics,
        "logbook_http_shed_requests_total{reason=\"write_delay\"} 1",
    )
    .await;
    assert!(node.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_beyond_its_share_of_a_saturated_write_budget_gets_429() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(&dir, &["--max-in-flight-writes", "4"]);
    let noisy = format!("Bearer {TOKEN}");
    let other = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("admin:{}", crate::support::ADMIN_PASSWORD))
    );
    // Alone, the noisy client may take up to the whole budget.
    let (mut a1, a1_last) = held_post_as(&node, 200, &noisy).await;
    let (mut a2, a2_last) = held_post_as(&node, 200, &noisy).await;
    in_flight(&metrics, 2).await;
    // Another client has a write in flight: three of four, the node is saturated,
    // and each client's share is two.
    let (mut b1, b1_last) = held_post_as(&node, 200, &other).await;
    in_flight(&metrics, 3).await;
    let response = post_as(&node, "{\"message\": \"a3\"}", &noisy).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"].as_str().unwrap_or("").contains("its share"),
        "{error}"
    );
    // The other client, below its share, is still admitted.
    assert_eq!(
        post_as(&node, "{\"message\": \"b2\"}", &other)
            .await
            .status(),
        201
    );
    for (held, last) in [(&mut a1, a1_last), (&mut a2, a2_last), (&mut b1, b1_last)] {
        held.write_all(&last).await.expect("last byte");
        assert!(read_answer(held).await.starts_with("HTTP/1.1 201"));
    }
    // Global overload stays 503: one client alone filling the whole budget.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(held_post_as(&node, 200, &noisy).await);
    }
    in_flight(&metrics, 4).await;
    let response = post_as(&node, "{\"message\": \"a5\"}", &noisy).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    for (mut stream, last) in held {
        stream.write_all(&last).await.expect("last byte");
        assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 201"));
    }
    assert_scraped(
        &metrics,
        "logbook_http_shed_requests_total{reason=\"client_writes\"} 1",
    )
    .await;
    assert!(node.terminate());
}

/// A keep-alive connection that has had one request answered and is now idle.
async fn idle_connection(node: &Node) -> TcpStream {
    let mut stream = TcpStream::connect(host_port(node)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("head");
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stream
}

async fn healthz(node: &Node) -> u16 {
    reqwest::get(node.url("/healthz"))
        .await
        .expect("get")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(&dir, &["--max-connections", "3"]);
    let mut oldest = idle_connection(&node).await;
    let mut second = idle_connection(&node).await;
    let _third = idle_connection(&node).await;
    // The cap is full of idle connections: a new one is served at once...
    assert_eq!(healthz(&node).await, 200);
    // ...in the place of the longest-idle one, which is closed without an answer.
    assert!(read_to_eof(&mut oldest).await.is_empty());
    // The others stay open and usable.
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("head");
    assert!(read_answer(&mut second).await.starts_with("HTTP/1.1 200"));
    assert_scraped(&metrics, "logbook_http_idle_connections_closed_total 1").await;
    assert!(node.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_request_in_flight_keeps_its_connection_and_with_none_idle_503() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, metrics) = spawn(&dir, &["--max-connections", "2"]);
    let (mut first, first_last) = held_post(&node, 200).await;
    in_flight(&metrics, 1).await;
    let mut idle = idle_connection(&node).await;
    // The idle connection makes room, not the one with a request in flight.
    assert_eq!(healthz(&node).await, 200);
    assert!(read_to_eof(&mut idle).await.is_empty());
    // Both places taken by requests in flight (the second takes the place of the
    // answered connection above, closed by its client or, if not yet, as idle).
    let (mut second, second_last) = held_post(&node, 200).await;
    in_flight(&metrics, 2).await;
    let mut refused = TcpStream::connect(host_port(&node)).await.expect("connect");
    let answer = read_answer(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("too many connections"), "{answer}");
    // The requests in flight complete on their connections.
    first.write_all(&first_last).await.expect("last byte");
    assert!(read_answer(&mut first).await.starts_with("HTTP/1.1 201"));
    second.write_all(&second_last).await.expect("last byte");
    assert!(read_answer(&mut second).await.starts_with("HTTP/1.1 201"));
    // Idle again, so a new connection is served.
    assert_eq!(healthz(&node).await, 200);
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
