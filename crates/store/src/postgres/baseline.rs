//! The benchmark's floor on PostgreSQL: the same rows copied (binary `COPY`, one
//! transaction per batch) straight into a table with the records' columns and no
//! index at all, with none of Logbook around them (no HTTP, no JSON text, no writer
//! task, no reservation, no notifications). Also the schema administration the
//! benchmark needs.

use super::writer::copy_into;
use super::{schema, StoreError};
use crate::Result;
use logbook_core::{NewRecord, Timestamp};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "benchmark connection failed");
        }
    });
    Ok(client)
}

/// Creates `name` (dropping any previous one) and returns `url` restricted to it.
pub async fn create_schema(url: &str, name: &str) -> Result<String> {
    let client = connect(url).await?;
    let quoted = schema::quote_ident(name);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {quoted} CASCADE; CREATE SCHEMA {quoted}"
        ))
        .await?;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}options=-c%20search_path%3D{name}"))
}

pub async fn drop_schema(url: &str, name: &str) -> Result<()> {
    let client = connect(url).await?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema::quote_ident(name)
        ))
        .await?;
    Ok(())
}

/// Records sealed into blocks and records still hot (rows), in the schema `url`
/// connects to: the benchmark's view of the sealer.
pub async fn tier_counts(url: &str) -> Result<(u64, u64)> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(rows), 0)::bigint FROM blocks), \
                    (SELECT count(*) FROM records)",
            &[],
        )
        .await?;
    let (sealed, hot): (i64, i64) = (row.get(0), row.get(1));
    Ok((sealed.max(0) as u64, hot.max(0) as u64))
}

/// Bytes the schema's tables and indexes take (TOAST included).
pub async fn schema_bytes(url: &str, name: &str) -> Result<u64> {
    let client = connect(url).await?;
    let bytes: i64 = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')",
            &[&name],
        )
        .await?
        .get(0);
    Ok(bytes.max(0) as u64)
}

/// Logbook's schema, filled by plain batched inserts.
pub struct RawPostgres {
    client: deadpool_postgres::Client,
    next_id: i64,
}

impl RawPostgres {
    /// Connects with `url` (whose search_path names an existing schema) and migrates.
    pub async fn open(url: &str) -> Result<RawPostgres> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Invalid {
            field: "database".into(),
            problem: format!("{e}"),
        })?;
        config.application_name("logbook-bench-raw");
        let pool = deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(config, NoTls))
            .max_size(1)
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut client = pool.get().await?;
        let current: Option<String> = client
            .query_one("SELECT current_schema()", &[])
            .await?
            .get(0);
        let name = current.ok_or_else(|| StoreError::Unavailable("no schema".into()))?;
        schema::migrate(&mut client, &name).await?;
        // `LIKE` a partitioned table makes a plain one, without its indexes.
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS floor (LIKE records INCLUDING DEFAULTS)")
            .await?;
        let next_id: i64 = client
            .query_one("SELECT coalesce(max(id), 0) + 1 FROM floor", &[])
            .await?
            .get(0);
        Ok(RawPostgres { client, next_id })
    }

    /// Inserts the rows in one transaction.
    pub async fn insert(&mut self, rows: Vec<NewRecord>) -> Result<()> {
        let now = Timestamp::now();
        let records: Vec<_> = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_record(self.next_id + i as i64, now))
            .collect();
        let Some(last) = records.last().map(|r| r.id) else {
            return Ok(());
        };
        let tx = self.client.transaction().await?;
        copy_into(&tx, "floor", &records).await?;
        tx.commit().await?;
        self.next_id = last + 1;
        Ok(())
    }
}
