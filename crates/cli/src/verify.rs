//! `logbook verify`: recomputes every record's leaf from the stored records and
//! compares it with the stored leaf, rebuilds the tree and checks it against every
//! signed checkpoint (their signatures and chain too), from the store itself
//! (`--data`, `--database`) or through the HTTP API (`--server`), optionally
//! against checkpoint copies kept elsewhere (`--checkpoints`). The conclusions are
//! `logbook_core::integrity::verify`'s; this module only reads.

use crate::client::http::Client;
use crate::client::ServerArgs;
use crate::store::StoreArgs;
use clap::Args;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use logbook_core::integrity::merkle::from_hex;
use logbook_core::integrity::verify::Verifier;
use logbook_core::integrity::{leaf_hash, Hash, Kept, SignedCheckpoint};
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{NewRecord, Query, Record, Timestamp};
use logbook_server::integrity::checkpoints::{read_dir, PUBLIC_KEY_SETTING};
use logbook_server::integrity::key::parse_public;
use logbook_store::integrity::StoredLeaf;
use logbook_store::Store;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Leaves read at a time.
const LEAF_BATCH: u64 = 65_536;
/// Records per page through the API.
const PAGE: u64 = 10_000;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Data directory of the embedded store to verify.
    #[arg(long, conflicts_with_all = ["database", "server"])]
    data: Option<PathBuf>,
    /// A PostgreSQL URL of the store to verify.
    #[arg(long, conflicts_with = "server")]
    database: Option<String>,
    /// Verify through the HTTP API of this server (an administrator's token).
    #[arg(long)]
    server: Option<String>,
    #[arg(long, env = "LOGBOOK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Checkpoint copies kept elsewhere (a server's `--checkpoint-dir`): the store
    /// must hold every record they signed.
    #[arg(long)]
    checkpoints: Option<PathBuf>,
    /// The public key to check signatures with (base64 of its 32 bytes); by default
    /// `key.json` of `--checkpoints`, else the key the store or server names.
    #[arg(long)]
    public_key: Option<String>,
}

enum Source {
    Store(Arc<dyn Store>),
    Server(Client),
}

impl Source {
    async fn open(args: &VerifyArgs) -> anyhow::Result<Source> {
        if let Some(server) = &args.server {
            return Ok(Source::Server(Client::new(&ServerArgs {
                server: server.clone(),
                token: args.token.clone(),
            })?));
        }
        anyhow::ensure!(
            args.data.is_some() || args.database.is_some(),
            "say what to verify: --data DIR, --database URL or --server URL"
        );
        if let Some(dir) = &args.data {
            // Opening a directory without a store would create an empty one, which
            // verifies: say so instead.
            anyhow::ensure!(
                dir.join("logbook.db").exists(),
                "{} holds no Logbook store (no logbook.db)",
                dir.display()
            );
        }
        let store_args = StoreArgs {
            data: args.data.clone().unwrap_or_default(),
            database: args.database.clone(),
        };
        Ok(Source::Store(crate::store::open(&store_args).await?))
    }

    async fn checkpoints(&self) -> anyhow::Result<Vec<SignedCheckpoint>> {
        match self {
            Source::Store(store) => Ok(store.checkpoints(u64::MAX).await?),
            Source::Server(client) => {
                let page = client
                    .get_json(
                        "/logbook/v1/integrity/checkpoints",
                        &[("limit".into(), "10000".into())],
                    )
                    .await?;
                page["checkpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| SignedCheckpoint::from_json(c).map_err(anyhow::Error::from))
                    .collect()
            }
        }
    }

    async fn public_key(&self) -> anyhow::Result<Option<String>> {
        match self {
            Source::Store(store) => Ok(store.integrity_setting(PUBLIC_KEY_SETTING).await?),
            Source::Server(client) => {
                let key = client.get_json("/logbook/v1/integrity/key", &[]).await?;
                Ok(key["public_key"].as_str().map(str::to_string))
            }
        }
    }

    async fn removed(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        loop {
            let after = out.last().map_or(i64::MIN, |(first, _)| *first);
            let page: Vec<(i64, i64)> = match self {
                Source::Store(store) => store
                    .removed(after, 10_000)
                    .await?
                    .iter()
                    .map(|r| (r.first_id, r.last_id))
                    .collect(),
                Source::Server(client) => {
                    let page = client
                        .get_json(
                            "/logbook/v1/integrity/removed",
                            &[
                                ("after".into(), after.to_string()),
                                ("limit".into(), "10000".into()),
                            ],
                        )
                        .await?;
                    page["removed"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| Some((r["first_id"].as_i64()?, r["last_id"].as_i64()?)))
                        .collect()
                }
            };
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// The highest record id now, and the tree's size.
    async fn extent(&self) -> anyhow::Result<(i64, u64)> {
        match self {
            Source::Store(store) => Ok((store.high_water().await?, store.tree_size().await?)),
            Source::Server(client) => {
                let newest = client
                    .get_json("/logbook/v1/records", &[("limit".into(), "1".into())])
                    .await?;
                let high = newest["records"][0]["id"].as_i64().unwrap_or(0);
                let leaves = client
                    .get_json(
                        "/logbook/v1/integrity/leaves",
                        &[("limit".into(), "1".into())],
                    )
                    .await?;
                Ok((high, leaves["tree_size"].as_u64().unwrap_or(0)))
            }
        }
    }

    /// The roots the store kept of its complete chunks (through the API, none: its
    /// leaves come whole, recomputed by the server where it keeps fingerprints).
    async fn chunk_roots(&self) -> anyhow::Result<Vec<Hash>> {
        match self {
            Source::Store(store) => Ok(store.chunk_roots(0, u64::MAX).await?),
            Source::Server(_) => Ok(Vec::new()),
        }
    }

    /// The leaves as kept: a store's own (fingerprints where it keeps them), or
    /// the server's whole hashes.
    async fn leaves(&self, start: u64, end: u64) -> anyhow::Result<Vec<StoredLeaf>> {
        match self {
            Source::Store(store) => Ok(store.stored_leaves(start, end).await?),
            Source::Server(client) => {
                let page = client
                    .get_json(
                        "/logbook/v1/integrity/leaves",
                        &[
                            ("from".into(), start.to_string()),
                            ("limit".into(), (end - start).min(LEAF_BATCH).to_string()),
                        ],
                    )
                    .await?;
                page["leaves"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        let hash = l["hash"].as_str().and_then(from_hex);
                        match (l["index"].as_u64(), l["id"].as_i64(), hash) {
                            (Some(index), Some(id), Some(hash)) => Ok(StoredLeaf {
                                index,
                                id,
                                kept: Kept::Hash(hash),
                            }),
                            _ => Err(anyhow::anyhow!("the server sent a malformed leaf: {l}")),
                        }
                    })
                    .collect()
            }
        }
    }

    fn records(&self, high_water: i64) -> Records {
        match self {
            Source::Store(store) => Records::Store(store.export(Query::oldest_first().with(
                Condition::Compare(Field::Id, Comparison::Le, Scalar::Int(high_water)),
            ))),
            Source::Server(client) => Records::Server {
                client: client.clone(),
                cursor: None,
                high_water,
                done: false,
            },
        }
    }
}

/// Records in id order, batch by batch.
enum Records {
    Store(BoxStream<'static, logbook_store::Result<Vec<Record>>>),
    Server {
        client: Client,
        cursor: Option<String>,
        high_water: i64,
        done: bool,
    },
}

impl Records {
    async fn next(&mut self) -> anyhow::Result<Option<Vec<Record>>> {
        match self {
            Records::Store(stream) => Ok(stream.next().await.transpose()?),
            Records::Server {
                client,
                cursor,
                high_water,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                let mut params = vec![
                    ("order".to_string(), "asc".to_string()),
                    ("limit".to_string(), PAGE.to_string()),
                ];
                if let Some(c) = cursor.as_ref() {
                    params.push(("cursor".into(), c.clone()));
                }
                let page = client.get_json("/logbook/v1/records", &params).await?;
                let mut records = Vec::new();
                for value in page["records"].as_array().into_iter().flatten() {
                    let record = parse_record(value)?;
                    if record.id > *high_water {
                        *done = true;
                        break;
                    }
                    records.push(record);
                }
                match page["next_cursor"].as_str() {
                    Some(next) if !records.is_empty() && !*done => *cursor = Some(next.to_string()),
                    _ => *done = true,
                }
                if records.len() < PAGE as usize {
                    *done = true;
                }
                Ok((!records.is_empty()).then_some(records))
            }
        }
    }
}

type Hashing = tokio::task::JoinHandle<anyhow::Result<Vec<(Record, Hash)>>>;

/// The records with their leaf hashes, batch by batch in order: each batch is hashed
/// on a blocking thread while the next is read, two at a time (2 cores; a verify is
/// mostly hashing and decoding).
fn hashed(mut records: Records) -> tokio::sync::mpsc::Receiver<Hashing> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Hashing>(2);
    tokio::spawn(async move {
        loop {
            let (hashing, failed) = match records.next().await {
                Ok(None) => return,
                Ok(Some(batch)) => (
                    tokio::task::spawn_blocking(move || {
                        Ok(batch
                            .into_iter()
                            .map(|record| {
                                let hash = leaf_hash(&record);
                                (record, hash)
                            })
                            .collect())
                    }),
                    false,
                ),
                Err(e) => (tokio::spawn(async move { Err(e) }), true),
            };
            if sender.send(hashing).await.is_err() || failed {
                return; // the verification stopped, or will at this error
            }
        }
    });
    receiver
}

/// A record as `GET /logbook/v1/records` renders it.
fn parse_record(value: &Value) -> anyhow::Result<Record> {
    let id = value["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("the server sent a record without an id"))?;
    let new = NewRecord::from_json(value.clone()).map_err(|e| {
        anyhow::anyhow!("the server sent record {id} in a shape not understood: {e}")
    })?;
    Ok(new.into_record(id, Timestamp(0)))
}

fn progress(total: u64) -> indicatif::ProgressBar {
    // Drawn on stderr only when it is a terminal.
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} verifying [{bar:40}] {pos}/{len} leaves ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A verification that found a disagreement (its summary is printed already).
#[derive(Debug)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("verification failed")
    }
}

impl std::error::Error for Failed {}

/// Runs the verification and prints the one-line summary; [`Failed`] if anything
/// disagrees.
pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let source = Source::open(&args).await?;
    if let Source::Server(client) = &source {
        let status = client.get_json("/logbook/v1/integrity/status", &[]).await?;
        eprintln!("server: {}", describe_status(&status));
    }
    // Checkpoints first: none of them can then cover leaves beyond what is read.
    let mut checkpoints = source.checkpoints().await?;
    let mut key_text = args.public_key.clone();
    if let Some(dir) = &args.checkpoints {
        checkpoints.extend(read_dir(dir)?);
        if key_text.is_none() {
            key_text = std::fs::read_to_string(dir.join("key.json"))
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|v| v["public_key"].as_str().map(str::to_string));
        }
    }
    if key_text.is_none() {
        key_text = source.public_key().await?;
    }
    let key =
        match &key_text {
            Some(text) => Some(parse_public(text).ok_or_else(|| {
                anyhow::anyhow!("{text:?} is not an Ed25519 public key in base64")
            })?),
            None if checkpoints.is_empty() => None,
            None => anyhow::bail!("no public key to check the checkpoints with: give --public-key"),
        };
    let removed = source.removed().await?;
    let (high_water, tree_size) = source.extent().await?;
    let mut verifier = Verifier::new(checkpoints, key.as_ref(), removed);
    verifier.chunk_roots(source.chunk_roots().await?);
    let bar = progress(tree_size);
    let mut records = hashed(source.records(high_water));
    let mut records_done = false;
    let mut index = 0u64;
    'leaves: loop {
        let leaves = source.leaves(index, index + LEAF_BATCH).await?;
        let Some(last) = leaves.last().map(|l| l.id.min(high_water)) else {
            break;
        };
        while !records_done && verifier.last_waiting_id().is_none_or(|id| id < last) {
            match records.recv().await {
                Some(batch) => verifier.hashed_records(batch.await??),
                None => records_done = true,
            }
        }
        for leaf in &leaves {
            if leaf.id > high_water {
                break 'leaves;
            }
            verifier.stored_leaf(leaf.id, leaf.kept);
        }
        index += leaves.len() as u64;
        bar.set_position(index);
    }
    while !records_done {
        match records.recv().await {
            Some(batch) => verifier.hashed_records(batch.await??),
            None => records_done = true,
        }
    }
    bar.finish_and_clear();
    let report = verifier.finish();
    let summary = report.summary();
    println!("{summary}");
    let result = json!({"ok": report.ok(), "summary": summary});
    match &source {
        Source::Store(store) => {
            let through = if args.database.is_some() {
                "database"
            } else {
                "data"
            };
            let stored = json!({
                "ok": report.ok(),
                "summary": summary,
                "at": Timestamp::now().rfc3339(),
                "through": through,
            });
            store
                .set_integrity_setting("last_verify", &stored.to_string())
                .await?;
        }
        Source::Server(client) => {
            client
                .send(
                    client
                        .request(Method::PUT, "/logbook/v1/integrity/status")
                        .json(&result),
                )
                .await?;
        }
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failed.into())
    }
}

/// The server's integrity status in one line.
fn describe_status(status: &Value) -> String {
    let checkpoint = &status["last_checkpoint"];
    let last_verify = &status["last_verify"];
    format!(
        "tree of {} leaves; last checkpoint {}; last verify {}",
        status["tree_size"],
        if checkpoint.is_null() {
            "none".to_string()
        } else {
            format!(
                "at {} leaves, {}",
                checkpoint["tree_size"],
                checkpoint["ts"].as_str().unwrap_or("?")
            )
        },
        if last_verify.is_null() {
            "never".to_string()
        } else {
            format!(
                "{} ({})",
                last_verify["summary"].as_str().unwrap_or("?"),
                last_verify["at"].as_str().unwrap_or("?")
            )
        }
    )
}
