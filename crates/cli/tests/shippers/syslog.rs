//! Syslog: `logger` (util-linux) and syslog-ng over TCP (both framings), TLS and
//! UDP, RFC 5424 and RFC 3164, into the real `logbook serve` process.

use super::clients::debian_program;
use crate::support::postgres::TestDatabase;
use crate::support::process::Node;
use crate::support::Backend;
use futures_util::StreamExt;
use logbook_server::auth::secrets;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

store_tests!(
    logger_over_tcp_both_framings_and_udp_in_both_formats,
    syslog_ng_over_tcp_udp_and_tls,
    malformed_lines_are_kept_and_the_connection_goes_on,
    a_burst_on_one_connection_arrives_exactly_once,
);

/// `logbook serve` with syslog receivers on ephemeral ports.
struct SyslogNode {
    node: Node,
    base: String,
    tcp: String,
    udp: String,
    token: String,
    http: reqwest::Client,
    database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl SyslogNode {
    async fn start(backend: Backend, extra: &[&str]) -> SyslogNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let data = dir.path().join("data").display().to_string();
        let mut args = match &database {
            Some(db) => vec!["--database", db.url.as_str()],
            None => vec!["--data", data.as_str()],
        };
        args.extend(["--syslog-tcp", "127.0.0.1:0", "--syslog-udp", "127.0.0.1:0"]);
        args.extend(["--syslog-domain", "hosts"]);
        args.extend(extra);
        let token = secrets::new_token();
        let (node, announced) = Node::spawn_announcing(&args, &token);
        let address = |scheme: &[&str]| {
            announced
                .iter()
                .filter_map(|l| l.strip_prefix("logbook syslog listening on "))
                .filter_map(|rest| rest.split_whitespace().next()?.split_once("://"))
                .find(|(s, _)| scheme.contains(s))
                .map(|(_, a)| a.to_string())
                .unwrap_or_else(|| panic!("no {scheme:?} receiver in {announced:?}"))
        };
        SyslogNode {
            base: node.base.clone(),
            tcp: address(&["tcp", "tls"]),
            udp: address(&["udp"]),
            node,
            token,
            http: reqwest::Client::new(),
            database,
            _dir: dir,
        }
    }

    fn port(address: &str) -> String {
        address.rsplit(':').next().expect("port").to_string()
    }

    /// Follows the native stream from the first record until `n` have arrived
    /// (syslog has no acknowledgement to wait for), then checks that no more exist.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/logbook/v1/stream?after=0", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("stream");
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let mut records = Vec::new();
        let mut pending = String::new();
        let collect = async {
            while records.len() < n {
                let chunk = body.next().await.expect("stream ended").expect("chunk");
                pending.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    if let Some(data) = line.trim_end().strip_prefix("data: ") {
                        records.push(serde_json::from_str::<Value>(data).expect("record"));
                    }
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), collect)
            .await
            .is_err()
        {
            panic!("only {} of {n} records arrived: {records:?}", records.len());
        }
        let count: Value = self
            .http
            .get(format!("{}/logbook/v1/records/count", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("count")
            .json()
            .await
            .expect("json");
        assert_eq!(count["count"], n, "nothing more than expected");
        records
    }

    async fn stop(mut self) {
        let node = self.node;
        let stopped = tokio::task::spawn_blocking(move || node.terminate())
            .await
            .expect("terminate");
        assert!(stopped, "logbook serve did not stop cleanly");
        if let Some(db) = self.database.take() {
            db.drop().await;
        }
    }
}

fn by_message<'a>(records: &'a [Value], message: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["message"] == message)
        .unwrap_or_else(|| panic!("no record {message:?} in {records:?}"))
}

fn logger(args: &[&str]) {
    let status = Command::new("logger")
        .args(args)
        .status()
        .expect("run logger (util-linux)");
    assert!(status.success(), "logger {args:?} failed");
}

async fn logger_over_tcp_both_framings_and_udp_in_both_formats(backend: Backend) {
    let node = SyslogNode::start(backend, &[]).await;
    let (tcp, udp) = (SyslogNode::port(&node.tcp), SyslogNode::port(&node.udp));
    let host = ["-n", "127.0.0.1"];
    for (transport, port, framing, format, message) in [
        ("-T", &tcp, None, "--rfc5424", "tcp 5424 newline"),
        (
            "-T",
            &tcp,
            Some("--octet-count"),
            "--rfc5424",
            "tcp 5424 counted",
        ),
        ("-T", &tcp, None, "--rfc3164", "tcp 3164 newline"),
        (
            "-T",
            &tcp,
            Some("--octet-count"),
            "--rfc3164",
            "tcp 3164 counted",
        ),
        ("-d", &udp, None, "--rfc5424", "udp 5424"),
        ("-d", &udp, None, "--rfc3164", "udp 3164"),
    ] {
        let mut args = vec![host[0], host[1], "-P", port, transport, format];
        args.extend(framing);
        args.extend(["-t", "billing", "-p", "auth.warning", "--msgid", "ID7"]);
        if format == "--rfc5424" {
            args.extend(["--sd-id", "order@32473", "--sd-param", "id=\"A-1\""]);
        }
        args.push(message);
        logger(&args);
    }
    let records = node.wait_for(6).await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the host name")
        .trim()
        .to_string();
    // logger sends the full name in RFC 5424 and the name up to its first dot in 3164.
    let short = hostname.split('.').next().unwrap_or_default();
    for record in &records {
        assert_eq!(record["level"], "WARN", "{record}");
        assert_eq!(record["source"], "billing");
        assert_eq!(record["domain_id"], "hosts", "--syslog-domain");
        assert_eq!(record["data"]["facility"], "auth");
        assert!(record["data"].get("parse_error").is_none(), "{record}");
        assert!(!record["message"].as_str().unwrap_or("").ends_with('\n'));
    }
    for message in ["tcp 5424 newline", "tcp 5424 counted", "udp 5424"] {
        let record = by_message(&records, message);
        assert_eq!(record["instance"], hostname.as_str());
        assert_eq!(record["data"]["msgid"], "ID7");
        assert_eq!(
            record["data"]["structured_data"]["order@32473"],
            json!({"id": "A-1"})
        );
    }
    for message in ["tcp 3164 newline", "tcp 3164 counted", "udp 3164"] {
        assert_eq!(by_message(&records, message)["instance"], short);
    }
    node.stop().await;
}

/// A syslog-ng configuration: stdin, each line sent once per destination (its
/// PROGRAM naming the destination), then syslog-ng exits at end of input.
fn syslog_ng_config(destinations: &[(&str, String)]) -> String {
    let mut config = String::from(
        "@version: 3.38\n\
         options { keep-hostname(yes); chain-hostnames(no); stats-freq(0); };\n\
         source s_in { stdin(flags(no-parse) host-override(\"ng-host\") \
         default-priority(err) default-facility(local2)); };\n",
    );
    for (name, destination) in destinations {
        // Two destinations to one address need names of their own.
        let destination = format!(
            "{} persist-name(\"{name}\"))",
            destination.strip_suffix(')').unwrap_or(destination)
        );
        config.push_str(&format!(
            "destination d_{name} {{ {destination}; }};\n\
             rewrite r_{name} {{ set(\"ng-{name}\" value(\"PROGRAM\")); }};\n\
             log {{ source(s_in); rewrite(r_{name}); destination(d_{name}); }};\n"
        ));
    }
    config
}

fn run_syslog_ng(config: &str, input: &str) {
    let program = debian_program("syslog-ng", "syslog-ng-core", None);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("syslog-ng.conf");
    std::fs::write(&path, config).expect("write config");
    let file = |name: &str| format!("{}", dir.path().join(name).display());
    let mut child = Command::new(program)
        .args(["-F", "--no-caps", "-f"])
        .arg(&path)
        .arg(format!("--persist-file={}", file("persist")))
        .arg(format!("--pidfile={}", file("pid")))
        .arg(format!("--control={}", file("ctl")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn syslog-ng");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("syslog-ng");
    assert!(
        output.status.success(),
        "syslog-ng failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn syslog_ng_over_tcp_udp_and_tls(backend: Backend) {
    let cert = fixture("tls-cert.pem").display().to_string();
    let key = fixture("tls-key.pem").display().to_string();
    let node = SyslogNode::start(backend, &[]).await;
    let tls_node = SyslogNode::start(
        backend,
        &["--syslog-tls-cert", &cert, "--syslog-tls-key", &key],
    )
    .await;
    let (tcp, udp) = (SyslogNode::port(&node.tcp), SyslogNode::port(&node.udp));
    let tls = SyslogNode::port(&tls_node.tcp);
    let config = syslog_ng_config(&[
        // RFC 5424, octet counting (the trailing newline counted inside the frame).
        (
            "tcp5424",
            format!("syslog(\"127.0.0.1\" port({tcp}) transport(\"tcp\"))"),
        ),
        // RFC 3164, newline framing.
        (
            "tcp3164",
            format!("network(\"127.0.0.1\" port({tcp}) transport(\"tcp\"))"),
        ),
        (
            "udp5424",
            format!("syslog(\"127.0.0.1\" port({udp}) transport(\"udp\"))"),
        ),
        (
            "udp3164",
            format!("network(\"127.0.0.1\" port({udp}) transport(\"udp\"))"),
        ),
        // RFC 5425: RFC 5424 over TLS.
        (
            "tls",
            format!(
                "syslog(\"127.0.0.1\" port({tls}) transport(\"tls\") \
                 tls(peer-verify(optional-untrusted)))"
            ),
        ),
    ]);
    let input = "first line\nsecond line, with ünïcode\n";
    tokio::task::spawn_blocking(move || run_syslog_ng(&config, input))
        .await
        .expect("syslog-ng task");

    let records = node.wait_for(8).await;
    for name in ["tcp5424", "tcp3164", "udp5424", "udp3164"] {
        let sent: Vec<&Value> = records
            .iter()
            .filter(|r| r["source"] == format!("ng-{name}").as_str())
            .collect();
        let messages: Vec<&str> = sent.iter().filter_map(|r| r["message"].as_str()).collect();
        assert_eq!(
            messages,
            ["first line", "second line, with ünïcode"],
            "{name}: {records:?}"
        );
        for record in sent {
            assert_eq!(record["level"], "ERROR", "{record}");
            assert_eq!(record["instance"], "ng-host");
            assert_eq!(record["data"]["facility"], "local2");
            assert!(record["data"].get("parse_error").is_none(), "{record}");
        }
    }
    let counted = records
        .iter()
        .find(|r| r["source"] == "ng-tcp5424")
        .expect("tcp5424");
    assert_eq!(
        counted["data"]["structured_data"]["meta"]["sequenceId"],
        "1"
    );
    let over_tls = tls_node.wait_for(2).await;
    assert!(over_tls
        .iter()
        .all(|r| r["source"] == "ng-tls" && r["level"] == "ERROR"));
    node.stop().await;
    tls_node.stop().await;
}

async fn malformed_lines_are_kept_and_the_connection_goes_on(backend: Backend) {
    let node = SyslogNode::start(backend, &[]).await;
    let mut stream = tokio::net::TcpStream::connect(&node.tcp)
        .await
        .expect("connect");
    let oversize = format!("<13>{}\n", "x".repeat(70 * 1024));
    let lines = [
        "no priority at all\n".to_string(),
        "<13>1 yesterday host app - - - bad timestamp\n".to_string(),
        "<13>1 - host app - - [unclosed a=\"1\" message\n".to_string(),
        oversize,
        "<14>1 2024-05-01T10:40:00.5+02:00 web-1 api 42 - - still connected\n".to_string(),
    ];
    for line in &lines {
        stream.write_all(line.as_bytes()).await.expect("write");
    }
    stream.shutdown().await.expect("close");
    let records = node.wait_for(5).await;
    let error = |i: usize| records[i]["data"]["parse_error"].as_str().unwrap_or("");
    assert_eq!(records[0]["message"], "no priority at all");
    assert!(error(0).contains("<PRI>"));
    assert!(error(1).contains("TIMESTAMP"), "{}", records[1]);
    assert_eq!(
        records[1]["message"],
        "<13>1 yesterday host app - - - bad timestamp"
    );
    assert!(error(2).contains("SD-PARAM"), "{}", records[2]);
    assert_eq!(records[3]["data"]["truncated"], true, "{}", records[3]);
    let last = &records[4];
    assert_eq!(last["message"], "still connected");
    assert_eq!(last["ts"], "2024-05-01T08:40:00.500000Z");
    assert_eq!(last["level"], "INFO");
    assert_eq!(last["instance"], "web-1");
    assert_eq!(last["source"], "api");
    assert_eq!(last["data"]["procid"], "42");
    node.stop().await;
}

async fn a_burst_on_one_connection_arrives_exactly_once(backend: Backend) {
    let node = SyslogNode::start(backend, &[]).await;
    let mut stream = tokio::net::TcpStream::connect(&node.tcp)
        .await
        .expect("connect");
    let total = 20_000;
    let mut burst = Vec::new();
    for i in 0..total {
        let message = format!("<134>1 - host burst - - - message {i}\n");
        // Alternate the framings within the one connection.
        if i % 2 == 0 {
            burst.extend(format!("{} {message}", message.len()).into_bytes());
        } else {
            burst.extend(message.into_bytes());
        }
    }
    stream.write_all(&burst).await.expect("write");
    stream.shutdown().await.expect("close");
    let records = node.wait_for(total).await;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["message"], format!("message {i}").as_str());
    }
    node.stop().await;
}
