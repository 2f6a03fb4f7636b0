//! `logbook tail [-f] [filters]`: the latest records oldest first, like `tail`; with
//! `-f` it then follows the live stream (SSE), reconnecting from the last record it
//! printed so nothing is lost or repeated. Colour by level on a terminal only.

use super::http::{failure, Client};
use super::{Filters, ServerArgs};
use anyhow::anyhow;
use clap::Args;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub filters: Filters,
    /// Keep following new records as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the latest records to print first.
    #[arg(short = 'n', long = "lines", default_value_t = 20)]
    pub lines: u64,
    /// Print each record as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let printer = Printer {
        colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        json: args.json,
    };
    let mut last = 0i64;
    if args.lines > 0 {
        let mut params = args.filters.params();
        params.push(("limit".into(), args.lines.min(10_000).to_string()));
        let page = client.get_json("/logbook/v1/records", &params).await?;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        for record in records.iter().rev() {
            printer.print(record)?;
            last = last.max(record["id"].as_i64().unwrap_or(0));
        }
    }
    if !args.follow {
        return Ok(());
    }
    // Resume after the last record printed; with none printed, from the start, so
    // a matching record written between the query and the stream is not missed
    // (the server reads such a catch-up from its index, not record by record).
    let mut after = (args.lines > 0).then_some(last);
    let mut connected_once = false;
    loop {
        match follow(&client, &args.filters, &printer, &mut after).await {
            Ok(reason) => {
                eprintln!("stream ended ({reason}); reconnecting");
            }
            Err(Failure::Refused(e)) => return Err(e),
            Err(Failure::Broken(e)) if !connected_once => return Err(e),
            Err(Failure::Broken(e)) => eprintln!("{e:#}; reconnecting"),
        }
        connected_once = true;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

enum Failure {
    /// The server answered with an error: retrying would not help.
    Refused(anyhow::Error),
    /// The connection failed or broke: worth reconnecting.
    Broken(anyhow::Error),
}

/// Follows one connection until it ends; returns the server's reason for ending.
async fn follow(
    client: &Client,
    filters: &Filters,
    printer: &Printer,
    after: &mut Option<i64>,
) -> Result<String, Failure> {
    let mut params = filters.params();
    if let Some(after) = after {
        params.push(("after".into(), after.to_string()));
    }
    let response = client
        .request(Method::GET, "/logbook/v1/stream")
        .header("accept", "text/event-stream")
        .query(&params)
        .send()
        .await
        .map_err(|e| Failure::Broken(client.unreachable(e)))?;
    if !response.status().is_success() {
        return Err(Failure::Refused(anyhow!(failure(response).await)));
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (event, data) = parse_event(&block);
            match event.as_str() {
                "message" if !data.is_empty() => {
                    let record: Value = serde_json::from_str(&data)
                        .map_err(|e| Failure::Broken(anyhow!("bad record in stream: {e}")))?;
                    printer.print(&record).map_err(Failure::Broken)?;
                    *after = record["id"].as_i64().or(*after);
                }
                "end" => {
                    let end: Value = serde_json::from_str(&data).unwrap_or_default();
                    if let Some(resume) = end["resume_after"].as_i64() {
                        *after = Some(resume);
                    }
                    return Ok(end["reason"].as_str().unwrap_or("unknown").to_string());
                }
                _ => {}
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            Some(Err(e)) => return Err(Failure::Broken(anyhow!("the stream broke: {e}"))),
            None => return Err(Failure::Broken(anyhow!("the server closed the stream"))),
        }
    }
}

/// The event type and data of one SSE block (comments are heartbeats: ignored).
fn parse_event(block: &str) -> (String, String) {
    let mut event = "message".to_string();
    let mut data = String::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = value.to_string(),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
    }
    (event, data)
}

struct Printer {
    colour: bool,
    json: bool,
}

impl Printer {
    fn print(&self, record: &Value) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            writeln!(out, "{record}")?;
            return Ok(out.flush()?);
        }
        let text = |name: &str| record[name].as_str().unwrap_or("");
        let level = text("level");
        let shown_level = if level.is_empty() {
            text("kind")
        } else {
            level
        };
        let mut line = format!("{} {shown_level:<8}", text("ts"));
        for (name, open, close) in [("category", "[", "] "), ("user", "", ": ")] {
            if !text(name).is_empty() {
                line.push(' ');
                line.push_str(open);
                line.push_str(text(name));
                line.push_str(close.trim_end());
            }
        }
        line.push(' ');
        line.push_str(&text("message").replace('\n', " "));
        match self.colour.then(|| colour(level)).flatten() {
            Some(code) => writeln!(out, "\x1b[{code}m{line}\x1b[0m")?,
            None => writeln!(out, "{line}")?,
        }
        Ok(out.flush()?)
    }
}

/// ANSI colour per level: debug dim, warnings yellow, errors red, critical bold red.
fn colour(level: &str) -> Option<&'static str> {
    match level {
        "DEBUG" => Some("2"),
        "WARN" | "WARNING" => Some("33"),
        "ERROR" => Some("31"),
        "CRITICAL" => Some("1;31"),
        _ => None,
    }
}
