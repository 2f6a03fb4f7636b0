//! Choosing and opening the store a command works on: the embedded store in a data
//! directory, or PostgreSQL when a database URL is given.

use clap::Args;
use logbook_store::postgres::PostgresStore;
use logbook_store::sqlite::{RecordLayout, SqliteStore, Tiers};
use logbook_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory of the embedded store (created on first start).
    #[arg(long, env = "LOGBOOK_DATA", default_value = "./logbook-data")]
    pub data: PathBuf,
    /// A PostgreSQL URL (postgres://user@host/db); when given, the data directory is
    /// not used and every node started with the same URL shares the store.
    #[arg(long, env = "LOGBOOK_DATABASE_URL")]
    pub database: Option<String>,
}

impl StoreArgs {
    /// Where the data lives, for messages (never the URL's password).
    pub fn describe(&self) -> String {
        match &self.database {
            Some(url) => format!("PostgreSQL {}", without_password(url)),
            None => format!("data in {}", self.data.display()),
        }
    }
}

/// How the store's tiers are sized (docs/storage.md, docs/postgres.md); the server's.
#[derive(Args, Debug, Clone)]
pub struct TierArgs {
    /// Records per sealed block.
    #[arg(long, env = "LOGBOOK_BLOCK_ROWS", default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..))]
    pub block_rows: u32,
    /// Hot (not yet sealed) records beyond which the oldest are sealed. One block's
    /// worth: the hot tier is held decoded in memory, about 1.4 KB a record, and two
    /// blocks' worth (the store's own default) alone took the server past 200 MB.
    #[arg(long, env = "LOGBOOK_HOT_RECORDS", default_value_t = 65_536)]
    pub hot_records: u32,
    /// Hot records older than this are sealed even into a block that is not full
    /// (`90s`, `10m`, `1h`).
    #[arg(long, env = "LOGBOOK_HOT_AGE", default_value = "10m", value_parser = parse_age)]
    pub hot_age: std::time::Duration,
}

pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    logbook_core::time::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s, 10m or 1h"))
}

/// Opens the store a server runs on: on the embedded store, with the sealer.
pub async fn open_serving(args: &StoreArgs, tiers: &TierArgs) -> anyhow::Result<Arc<dyn Store>> {
    let layout = RecordLayout {
        options: Tiers {
            block_rows: tiers.block_rows as usize,
            hot_records: tiers.hot_records as usize,
            hot_age: tiers.hot_age,
            ..Tiers::default()
        },
        seal: true,
    };
    open_with(args, layout).await
}

/// Opens the store for an administration command: no sealer (the server seals).
pub async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    let layout = RecordLayout {
        seal: false,
        ..RecordLayout::default()
    };
    open_with(args, layout).await
}

async fn open_with(args: &StoreArgs, layout: RecordLayout) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &args.database {
        // The same tiers as the embedded store's; an administration command's
        // store runs no sealer there either.
        let pg_layout = logbook_store::postgres::PgLayout {
            options: layout.options.clone(),
            seal: layout.seal,
        };
        let store = PostgresStore::open_with(url, pg_layout)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot open the store at {}: {e}", without_password(url))
            })?;
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open_with(&args.data, layout)
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", args.data.display()))?;
    Ok(Arc::new(store))
}

/// The URL with any password masked.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
