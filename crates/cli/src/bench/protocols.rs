//! `logbook bench`, the shippers' part: each HTTP ingest protocol's rate beside the
//! native NDJSON rate, measured in alternating rounds on one fresh node (so every
//! format sees the same share of a noisy machine and the same store size), and the
//! syslog TCP rate. The same workload records are rendered in each protocol's form;
//! every request is acknowledged (durable) before it counts.

use super::node::Child;
use super::workload::Workload;
use super::BenchArgs;
use logbook_core::{Level, Timestamp};
use logbook_server::protocols::loki_push::wire as loki;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Native,
    ElasticBulk,
    LokiJson,
    LokiProtobuf,
    OtlpProtobuf,
    OtlpJson,
    Journald,
}

const FORMATS: [Format; 7] = [
    Format::Native,
    Format::ElasticBulk,
    Format::LokiJson,
    Format::LokiProtobuf,
    Format::OtlpProtobuf,
    Format::OtlpJson,
    Format::Journald,
];

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Native => "native NDJSON (POST /logbook/v1/records)",
            Format::ElasticBulk => "Elasticsearch _bulk",
            Format::LokiJson => "Loki push, JSON",
            Format::LokiProtobuf => "Loki push, snappy protobuf",
            Format::OtlpProtobuf => "OTLP/HTTP logs, protobuf",
            Format::OtlpJson => "OTLP/HTTP logs, JSON",
            Format::Journald => "journald upload (export format)",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Format::Native => "/logbook/v1/records",
            Format::ElasticBulk => "/es/_bulk",
            Format::LokiJson | Format::LokiProtobuf => "/loki/api/v1/push",
            Format::OtlpProtobuf | Format::OtlpJson => "/v1/logs",
            Format::Journald => "/upload",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Native => "application/x-ndjson",
            Format::ElasticBulk => "application/x-ndjson",
            Format::LokiJson | Format::OtlpJson => "application/json",
            Format::LokiProtobuf | Format::OtlpProtobuf => "application/x-protobuf",
            Format::Journald => "application/vnd.fdo.journal",
        }
    }

    fn success(self) -> u16 {
        match self {
            Format::Native => 201,
            Format::LokiJson | Format::LokiProtobuf => 204,
            Format::Journald => 202,
            _ => 200,
        }
    }
}

/// Measures every protocol on a node of its own under `root`.
pub async fn run(http: &reqwest::Client, args: &BenchArgs, root: &Path) -> anyhow::Result<()> {
    let per_format = args.protocol_records;
    if per_format == 0 {
        return Ok(());
    }
    let syslog_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let syslog = format!("127.0.0.1:{syslog_port}");
    let data = root.join("protocols");
    let data = data
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path"))?;
    let server = Child::serve_with(&["--data", data, "--syslog-tcp", &syslog])?;
    println!(
        "\n== ingest by protocol: {per_format} records each, batches of {}, {} uploaders, alternating rounds on one node ==",
        args.batch, args.uploaders
    );
    let mut workload = Workload::new(per_format * (FORMATS.len() as u64 + 1));
    let rounds = 4u64;
    let mut times = [Duration::ZERO; FORMATS.len()];
    for _ in 0..rounds {
        for (i, format) in FORMATS.into_iter().enumerate() {
            let bodies = render(format, &mut workload, per_format / rounds, args.batch);
            times[i] += upload(http, args, &server, format, bodies).await?;
        }
    }
    let sent = (per_format / rounds * rounds) as f64;
    let native = sent / times[0].as_secs_f64();
    for (i, format) in FORMATS.into_iter().enumerate() {
        let rate = sent / times[i].as_secs_f64();
        println!(
            "{:<44} {rate:>8.0} records/s = {:>4.0}% of native",
            format.name(),
            100.0 * rate / native
        );
    }
    let rate = syslog_tcp(http, &server, &syslog, &mut workload, per_format).await?;
    println!(
        "{:<44} {rate:>8.0} records/s = {:>4.0}% of native (4 connections, RFC 5424, octet counting; until all are stored)",
        "syslog over TCP",
        100.0 * rate / native
    );
    Ok(())
}

/// The workload's next `count` records as request bodies of `batch` records.
fn render(format: Format, workload: &mut Workload, count: u64, batch: usize) -> Vec<Vec<u8>> {
    let records: Vec<Value> = (0..count).map(|_| workload.next_record()).collect();
    records
        .chunks(batch.max(1))
        .map(|chunk| match format {
            Format::Native => ndjson(chunk.iter().cloned()),
            Format::ElasticBulk => ndjson(chunk.iter().flat_map(|r| {
                let action =
                    json!({"create": {"_index": r["category"].as_str().unwrap_or("bench")}});
                [action, elastic_document(r)]
            })),
            Format::LokiJson => loki_json(chunk),
            Format::LokiProtobuf => {
                let request = loki_protobuf(chunk).encode_to_vec();
                snap::raw::Encoder::new()
                    .compress_vec(&request)
                    .unwrap_or_default()
            }
            Format::OtlpProtobuf => otlp(chunk).encode_to_vec(),
            Format::OtlpJson => serde_json::to_vec(&otlp(chunk)).unwrap_or_default(),
            Format::Journald => chunk.iter().flat_map(journal_entry).collect(),
        })
        .collect()
}

fn ndjson(values: impl Iterator<Item = Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        out.extend(value.to_string().into_bytes());
        out.push(b'\n');
    }
    out
}

fn text<'a>(record: &'a Value, field: &str) -> &'a str {
    record[field].as_str().unwrap_or("")
}

fn nanos(record: &Value) -> u64 {
    Timestamp::parse(text(record, "ts"))
        .map(|ts| ts.micros().max(0) as u64 * 1000)
        .unwrap_or(0)
}

fn level(record: &Value) -> Option<Level> {
    Level::parse(text(record, "level"))
}

fn elastic_document(record: &Value) -> Value {
    json!({
        "@timestamp": record["ts"],
        "message": record["message"],
        "log": {"level": record["level"], "logger": record["logger"]},
        "service": {"name": record["source"]},
        "host": {"name": record["instance"]},
        "user": {"name": record["user"]},
    })
}

/// A stream's (source, instance, level) and its records.
type Stream<'a> = ((&'a str, &'a str, &'a str), Vec<&'a Value>);

/// Streams by (source, instance, level), as a shipper's labels would group them.
fn streams(records: &[Value]) -> Vec<Stream<'_>> {
    let mut streams: Vec<Stream<'_>> = Vec::new();
    for record in records {
        let key = (
            text(record, "source"),
            text(record, "instance"),
            text(record, "level"),
        );
        match streams.iter_mut().find(|(k, _)| *k == key) {
            Some((_, entries)) => entries.push(record),
            None => streams.push((key, vec![record])),
        }
    }
    streams
}

fn loki_json(records: &[Value]) -> Vec<u8> {
    let streams: Vec<Value> = streams(records)
        .into_iter()
        .map(|((job, instance, level), entries)| {
            let values: Vec<Value> = entries
                .iter()
                .map(|r| json!([nanos(r).to_string(), r["message"], {"logger": text(r, "logger")}]))
                .collect();
            json!({"stream": {"job": job, "instance": instance, "level": level}, "values": values})
        })
        .collect();
    json!({ "streams": streams }).to_string().into_bytes()
}

fn loki_protobuf(records: &[Value]) -> loki::PushRequest {
    let streams = streams(records)
        .into_iter()
        .map(|((job, instance, level), entries)| loki::StreamAdapter {
            labels: format!("{{job=\"{job}\", instance=\"{instance}\", level=\"{level}\"}}"),
            entries: entries
                .iter()
                .map(|r| {
                    let ns = nanos(r);
                    loki::EntryAdapter {
                        timestamp: Some(loki::Timestamp {
                            seconds: (ns / 1_000_000_000) as i64,
                            nanos: (ns % 1_000_000_000) as i32,
                        }),
                        line: text(r, "message").to_string(),
                        structured_metadata: vec![loki::LabelPairAdapter {
                            name: "logger".into(),
                            value: text(r, "logger").to_string(),
                        }],
                    }
                })
                .collect(),
        })
        .collect();
    loki::PushRequest { streams }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..KeyValue::default()
    }
}

fn otlp(records: &[Value]) -> ExportLogsServiceRequest {
    let resource_logs = streams(records)
        .into_iter()
        .map(|((service, host, _), entries)| ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    string_attribute("service.name", service),
                    string_attribute("host.name", host),
                ],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: entries
                    .iter()
                    .map(|r| LogRecord {
                        time_unix_nano: nanos(r),
                        severity_number: match level(r) {
                            Some(Level::Debug) => 5,
                            Some(Level::Info) | None => 9,
                            Some(Level::Warn) => 13,
                            Some(Level::Error) => 17,
                            Some(Level::Critical) => 21,
                        },
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(
                                text(r, "message").to_string(),
                            )),
                        }),
                        attributes: vec![
                            string_attribute("category", text(r, "category")),
                            string_attribute("logger", text(r, "logger")),
                        ],
                        ..LogRecord::default()
                    })
                    .collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

fn syslog_severity(record: &Value) -> u8 {
    match level(record) {
        Some(Level::Debug) => 7,
        Some(Level::Info) | None => 6,
        Some(Level::Warn) => 4,
        Some(Level::Error) => 3,
        Some(Level::Critical) => 2,
    }
}

fn journal_entry(record: &Value) -> Vec<u8> {
    let mut entry = String::new();
    entry.push_str(&format!("__REALTIME_TIMESTAMP={}\n", nanos(record) / 1000));
    entry.push_str(&format!("PRIORITY={}\n", syslog_severity(record)));
    for (name, field) in [
        ("SYSLOG_IDENTIFIER", "source"),
        ("_HOSTNAME", "instance"),
        ("CATEGORY", "category"),
        ("CODE_FUNC", "logger"),
        ("MESSAGE", "message"),
    ] {
        entry.push_str(&format!("{name}={}\n", text(record, field)));
    }
    entry.push('\n');
    entry.into_bytes()
}

/// Uploads the bodies with `args.uploaders` concurrent clients.
async fn upload(
    http: &reqwest::Client,
    args: &BenchArgs,
    server: &Child,
    format: Format,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<Duration> {
    let queue = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let url = Arc::new(server.url(format.path()));
    let token = Arc::new(server.token().to_string());
    let started = Instant::now();
    let mut uploaders = Vec::new();
    for _ in 0..args.uploaders {
        let (http, url, token, queue) = (
            http.clone(),
            Arc::clone(&url),
            Arc::clone(&token),
            Arc::clone(&queue),
        );
        uploaders.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().await.next() else {
                    return anyhow::Ok(());
                };
                let response = http
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .header("content-type", format.content_type())
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                let text = response.text().await?;
                anyhow::ensure!(
                    status.as_u16() == format.success(),
                    "{} answered {status}: {text}",
                    format.name()
                );
                anyhow::ensure!(
                    !text.contains("\"errors\":true") && !text.contains("partialSuccess"),
                    "{} refused records: {text}",
                    format.name()
                );
            }
        }));
    }
    for uploader in uploaders {
        uploader.await??;
    }
    Ok(started.elapsed())
}

/// Records per second from the first byte sent until the node has stored them all
/// (syslog has no acknowledgement, so the count is polled).
async fn syslog_tcp(
    http: &reqwest::Client,
    server: &Child,
    address: &str,
    workload: &mut Workload,
    count: u64,
) -> anyhow::Result<f64> {
    let count_url = server.url("/logbook/v1/records/count");
    let stored = || async {
        let body: Value = http
            .get(&count_url)
            .bearer_auth(server.token())
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(body["count"].as_u64().unwrap_or(0))
    };
    let before = stored().await?;
    let connections = 4u64;
    let streams: Vec<Vec<u8>> = (0..connections)
        .map(|_| {
            let mut out = Vec::new();
            for _ in 0..count / connections {
                let r = workload.next_record();
                let nil = |field: &str| match text(&r, field) {
                    "" => "-".to_string(),
                    value => value.to_string(),
                };
                let message = format!(
                    "<{}>1 {} {} {} - - - {}\n",
                    8 + syslog_severity(&r),
                    text(&r, "ts"),
                    nil("instance"),
                    nil("source"),
                    text(&r, "message")
                );
                out.extend(format!("{} {message}", message.len()).into_bytes());
            }
            out
        })
        .collect();
    let expected = before + count / connections * connections;
    let started = Instant::now();
    let mut senders = Vec::new();
    for stream in streams {
        let address = address.to_string();
        senders.push(tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(&address).await?;
            socket.write_all(&stream).await?;
            socket.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for sender in senders {
        sender.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while stored().await? < expected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "syslog records did not all arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((expected - before) as f64 / started.elapsed().as_secs_f64())
}
