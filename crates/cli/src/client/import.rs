//! `logbook import FILE`: NDJSON records (as `export` writes them) sent in batches.
//! Each acknowledged batch is durable on the server and recorded in a checkpoint
//! file beside the input, so an import that fails part-way is continued with
//! `--resume` without sending anything twice. Ids are assigned by the destination.
//!
//! Each batch carries an `Idempotency-Key` made of the import's run id (kept in the
//! checkpoint, so `--resume` reuses it), the batch's first line and a digest of its
//! lines (a batch fixed before `--resume` is a new request): a batch whose
//! answer was lost (the connection broke after the server committed it) is sent
//! again, up to three times, and the server answers it without writing it twice;
//! so does a `--resume` after such a failure.

use super::http::Client;
use super::{Progress, ServerArgs};
use anyhow::{anyhow, bail, Context};
use clap::Args;
use reqwest::Method;
use serde_json::Value;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// NDJSON file, one record per line.
    pub file: PathBuf,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Continue a failed import after the lines its checkpoint says were stored.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Ignore an existing checkpoint and import the whole file again.
    #[arg(long)]
    pub restart: bool,
    /// Where progress is recorded (default: FILE.checkpoint).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let client = Client::new(&args.server)?;
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| {
        let mut path = args.file.clone().into_os_string();
        path.push(".checkpoint");
        PathBuf::from(path)
    });
    let (skip, run) = match (read_checkpoint(&checkpoint)?, args.resume, args.restart) {
        (Some((done, run)), true, _) => (done, run.unwrap_or_else(new_run)),
        (None, true, _) => bail!(
            "--resume: no checkpoint at {}; nothing to resume",
            checkpoint.display()
        ),
        (Some((done, _)), false, false) => bail!(
            "a previous import of {} stopped after line {done} (checkpoint {}); \
             continue with --resume or start over with --restart",
            args.file.display(),
            checkpoint.display()
        ),
        (_, false, _) => (0, new_run()),
    };
    let open = || {
        std::fs::File::open(&args.file)
            .map(BufReader::new)
            .with_context(|| format!("cannot read {}", args.file.display()))
    };
    let total = match std::io::stderr().is_terminal() {
        true => Some(open()?.lines().count() as u64),
        false => None,
    };
    let mut progress = Progress::new("imported lines", total);
    let mut lines = open()?.lines().enumerate().skip(skip as usize);
    let mut done = skip;
    let mut imported = 0u64;
    loop {
        // (file line number, text) of the batch's non-blank lines.
        let mut batch: Vec<(u64, String)> = Vec::with_capacity(args.batch);
        let mut consumed = done;
        for (index, line) in lines.by_ref() {
            let line = line.with_context(|| format!("cannot read {}", args.file.display()))?;
            consumed = index as u64 + 1;
            if !line.trim().is_empty() {
                batch.push((consumed, line));
                if batch.len() >= args.batch {
                    break;
                }
            }
        }
        if batch.is_empty() {
            done = consumed;
            break;
        }
        if let Err(e) = send_with_retries(&client, &batch, &run).await {
            bail!(
                "{e}\nimport stopped: lines 1..{done} are stored (checkpoint {}); \
                 fix the problem and continue with --resume",
                checkpoint.display()
            );
        }
        done = consumed;
        imported += batch.len() as u64;
        write_checkpoint(&checkpoint, done, &run)?;
        progress.update(done);
    }
    progress.finish(done);
    if checkpoint.exists() {
        std::fs::remove_file(&checkpoint)
            .with_context(|| format!("cannot remove {}", checkpoint.display()))?;
    }
    eprintln!("imported {imported} records from {}", args.file.display());
    Ok(())
}

/// A new import's run id.
fn new_run() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Attempts at one batch; only failures a retry may fix are retried.
const ATTEMPTS: usize = 3;

/// [`send`], again with the same key when the connection failed or the server
/// answered that it could not take the batch now.
async fn send_with_retries(
    client: &Client,
    batch: &[(u64, String)],
    run: &str,
) -> anyhow::Result<()> {
    // The content is part of the key: a batch fixed before `--resume` is a new request.
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    for (_, line) in batch {
        sha2::Digest::update(&mut digest, line.as_bytes());
        sha2::Digest::update(&mut digest, b"\n");
    }
    let digest: String = sha2::Digest::finalize(digest)
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let first = batch.first().map_or(0, |(line, _)| *line);
    let key = format!("import-{run}-{first}-{digest}");
    let mut attempt = 1;
    loop {
        match send(client, batch, &key).await {
            Err(Failure::Retry(e)) if attempt < ATTEMPTS => {
                eprintln!("{e}; sending the batch again (attempt {})", attempt + 1);
                tokio::time::sleep(std::time::Duration::from_secs(attempt as u64)).await;
                attempt += 1;
            }
            Err(Failure::Retry(e) | Failure::Final(e)) => return Err(e),
            Ok(()) => return Ok(()),
        }
    }
}

enum Failure {
    /// The connection failed, or the server could not take the batch now.
    Retry(anyhow::Error),
    Final(anyhow::Error),
}

/// One batch as an NDJSON request; an error naming a record of the batch (`[3].level`)
/// is reported by its line in the file.
async fn send(client: &Client, batch: &[(u64, String)], key: &str) -> Result<(), Failure> {
    let mut body = String::with_capacity(batch.iter().map(|(_, l)| l.len() + 1).sum());
    for (_, line) in batch {
        body.push_str(line);
        body.push('\n');
    }
    let response = client
        .request(Method::POST, "/logbook/v1/records")
        .header("content-type", "application/x-ndjson")
        .header("idempotency-key", key)
        .body(body)
        .send()
        .await
        .map_err(|e| Failure::Retry(client.unreachable(e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry = status.is_server_error() || status.as_u16() == 429;
    let wrap = |e: anyhow::Error| {
        if retry {
            Failure::Retry(e)
        } else {
            Failure::Final(e)
        }
    };
    let text = response.text().await.unwrap_or_default();
    let answer: Value = serde_json::from_str(&text).unwrap_or_default();
    let (Some(field), Some(error)) = (answer["field"].as_str(), answer["error"].as_str()) else {
        return Err(wrap(anyhow!(
            "server answered {status}: {}",
            text.trim().chars().take(200).collect::<String>()
        )));
    };
    // The server's `error` starts with its field; keep only the problem.
    let error = error.strip_prefix(&format!("{field}: ")).unwrap_or(error);
    let located = field
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(index, rest)| {
            let line = batch.get(index.parse::<usize>().ok()?)?.0;
            let rest = rest.trim_start_matches('.');
            Some(match rest.is_empty() {
                true => format!("line {line}: {error}"),
                false => format!("line {line}: {rest}: {error}"),
            })
        });
    Err(wrap(anyhow!(
        "server answered {status}: {}",
        located.unwrap_or_else(|| format!("{field}: {error}"))
    )))
}

/// The lines done and the run id (absent in a checkpoint of an older version).
fn read_checkpoint(path: &Path) -> anyhow::Result<Option<(u64, Option<String>)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut words = text.split_whitespace();
            let done = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| anyhow!("checkpoint {} is not a line count", path.display()))?;
            Ok(Some((done, words.next().map(str::to_string))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read checkpoint {}: {e}", path.display())),
    }
}

/// Written to a temporary file and renamed, so a crash never leaves a torn count.
fn write_checkpoint(path: &Path, lines: u64, run: &str) -> anyhow::Result<()> {
    let mut temporary = path.to_path_buf().into_os_string();
    temporary.push(".tmp");
    std::fs::write(&temporary, format!("{lines} {run}\n"))
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write checkpoint {}", path.display()))
}
