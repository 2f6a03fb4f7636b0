//! The benchmark on PostgreSQL (`--database URL`): the node and the raw baseline each
//! get a schema of their own, dropped afterwards; the baseline is multi-row INSERTs
//! of the same rows straight into PostgreSQL.

use super::workload::Workload;
use logbook_core::NewRecord;
use logbook_store::postgres::baseline::{self as pg, RawPostgres};
use logbook_store::sqlite::baseline::RawSqlite;
use std::path::Path;

pub struct PgRun {
    url: String,
    node_schema: String,
    pub node_url: String,
    raw_schema: String,
    raw_url: String,
}

impl PgRun {
    pub async fn create(url: &str) -> anyhow::Result<PgRun> {
        let node_schema = format!("logbook_bench_{}", std::process::id());
        let raw_schema = format!("{node_schema}_raw");
        let node_url = pg::create_schema(url, &node_schema).await?;
        let raw_url = pg::create_schema(url, &raw_schema).await?;
        Ok(PgRun {
            url: url.to_string(),
            node_schema,
            node_url,
            raw_schema,
            raw_url,
        })
    }

    /// Bytes on disk of the node's and the baseline's tables and indexes.
    pub async fn sizes(&self) -> anyhow::Result<(u64, u64)> {
        Ok((
            pg::schema_bytes(&self.url, &self.node_schema).await?,
            pg::schema_bytes(&self.url, &self.raw_schema).await?,
        ))
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        pg::drop_schema(&self.url, &self.node_schema).await?;
        pg::drop_schema(&self.url, &self.raw_schema).await?;
        Ok(())
    }
}

/// The raw baseline of either store.
pub enum Baseline {
    Sqlite(RawSqlite),
    Postgres(RawPostgres),
}

impl Baseline {
    pub async fn open(pg_run: Option<&PgRun>, raw_dir: &Path) -> anyhow::Result<Baseline> {
        Ok(match pg_run {
            Some(run) => Baseline::Postgres(RawPostgres::open(&run.raw_url).await?),
            None => Baseline::Sqlite(RawSqlite::open(raw_dir)?),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Baseline::Sqlite(_) => "raw SQLite inserts",
            Baseline::Postgres(_) => "raw PostgreSQL multi-row INSERTs",
        }
    }

    /// Inserts the next `count` rows of `generator` in batches of `batch`.
    pub async fn insert(
        self,
        mut generator: Workload,
        count: u64,
        batch: u64,
    ) -> anyhow::Result<(Baseline, Workload)> {
        match self {
            Baseline::Sqlite(store) => {
                let (store, generator) = super::insert_raw(store, generator, count, batch).await?;
                Ok((Baseline::Sqlite(store), generator))
            }
            Baseline::Postgres(mut store) => {
                let mut left = count;
                while left > 0 {
                    let n = left.min(batch);
                    let rows = (0..n)
                        .map(|_| NewRecord::from_json(generator.next_record()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| anyhow::anyhow!("generated record invalid: {e}"))?;
                    store.insert(rows).await?;
                    left -= n;
                }
                Ok((Baseline::Postgres(store), generator))
            }
        }
    }
}
