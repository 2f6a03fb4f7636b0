//! `logbook backup` and `logbook restore`: a consistent copy of a running embedded
//! store, and putting one back. PostgreSQL stores are backed up with its own tools.

use crate::store::StoreArgs;
use clap::Args;
use logbook_store::sqlite::backup;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// An empty (or new) directory to write the copy into.
    #[arg(long)]
    to: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// A directory written by `logbook backup`.
    #[arg(long)]
    from: PathBuf,
    /// Overwrite the store that is in the data directory.
    #[arg(long)]
    replace: bool,
}

const POSTGRES_ADVICE: &str = "a PostgreSQL store is backed up with pg_dump and restored with \
     pg_restore (see docs/operations.md); logbook backup copies the embedded store";

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    if args.store.database.is_some() {
        anyhow::bail!("{POSTGRES_ADVICE}");
    }
    let started = Instant::now();
    eprintln!(
        "backing up {} into {} ...",
        args.store.data.display(),
        args.to.display()
    );
    let copied = backup::backup(&args.store.data, &args.to)?;
    println!(
        "backup written: {} ({:.1} MiB, schema version {}) in {:.1} s",
        copied.file.display(),
        copied.bytes as f64 / 1048576.0,
        copied.schema_version,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    if args.store.database.is_some() {
        anyhow::bail!("{POSTGRES_ADVICE}");
    }
    let copied = backup::restore(&args.from, &args.store.data, args.replace)?;
    println!(
        "restored {} ({:.1} MiB, schema version {}); start the server on {}",
        copied.file.display(),
        copied.bytes as f64 / 1048576.0,
        copied.schema_version,
        args.store.data.display()
    );
    Ok(())
}
