//! The benchmark on PostgreSQL (`--database URL`): the node and the raw baseline each
//! get a schema of their own, dropped afterwards; the baseline is a binary COPY of
//! the same rows into an unindexed table. Also the baseline of either store.

use logbook_core::NewRecord;
use logbook_store::postgres::baseline::{self as pg, RawPostgres};
use logbook_store::sqlite::baseline::Floor;
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

/// The baseline of either store, fed the same NDJSON bodies as the server.
pub enum Baseline {
    /// Each line parsed and stored as `(id, text)` in an unindexed SQLite table.
    Floor(Floor),
    /// The same rows copied into an unindexed table in PostgreSQL.
    Postgres(RawPostgres),
}

impl Baseline {
    pub async fn open(pg_run: Option<&PgRun>, raw_dir: &Path) -> anyhow::Result<Baseline> {
        Ok(match pg_run {
            Some(run) => Baseline::Postgres(RawPostgres::open(&run.raw_url).await?),
            None => Baseline::Floor(Floor::open(raw_dir)?),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Baseline::Floor(_) => {
                "the no-index floor (SQLite, (id, text), 1000 rows/commit, synchronous=FULL)"
            }
            Baseline::Postgres(_) => "the PostgreSQL floor (binary COPY into an unindexed table)",
        }
    }

    /// Stores the records of the NDJSON bodies, one transaction per `batch` rows.
    pub async fn insert(self, bodies: std::sync::Arc<Vec<String>>) -> anyhow::Result<Baseline> {
        match self {
            Baseline::Floor(mut floor) => {
                tokio::task::spawn_blocking(move || {
                    for body in bodies.iter() {
                        floor.insert_ndjson(body)?;
                    }
                    anyhow::Ok(Baseline::Floor(floor))
                })
                .await?
            }
            Baseline::Postgres(mut store) => {
                for body in bodies.iter() {
                    let rows = body
                        .lines()
                        .map(|line| {
                            let value = serde_json::from_str(line)?;
                            NewRecord::from_json(value)
                                .map_err(|e| anyhow::anyhow!("generated record invalid: {e}"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    store.insert(rows).await?;
                }
                Ok(Baseline::Postgres(store))
            }
        }
    }
}
