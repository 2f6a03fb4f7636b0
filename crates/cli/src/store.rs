//! Choosing and opening the store a command works on: the embedded store in a data
//! directory, or PostgreSQL when a database URL is given.

use clap::Args;
use logbook_store::postgres::PostgresStore;
use logbook_store::sqlite::SqliteStore;
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

pub async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &args.database {
        let store = PostgresStore::open(url).await.map_err(|e| {
            anyhow::anyhow!("cannot open the store at {}: {e}", without_password(url))
        })?;
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open(&args.data)
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
