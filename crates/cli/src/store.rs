//! Choosing and opening the store a command works on.

use clap::Args;
use logbook_store::sqlite::SqliteStore;
use logbook_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory of the embedded store (created on first start).
    #[arg(long, env = "LOGBOOK_DATA", default_value = "./logbook-data")]
    pub data: PathBuf,
}

pub fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    let store = SqliteStore::open(&args.data)
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", args.data.display()))?;
    Ok(Arc::new(store))
}
