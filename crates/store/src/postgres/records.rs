//! Records in PostgreSQL: appends through the writer (group commit, ids reserved
//! ahead), reads in one REPEATABLE READ snapshot that stops at the visibility
//! horizon, so a page and its high-water mark agree and no id appears below it
//! later. The hot rows have only their primary key: every filter over them is a
//! scan of a bounded tier, the blocks' part is the engine's.

use super::blocks::{on_blocks, PgTiers};
use super::{params_of, refs, PostgresStore};
use crate::blocks::engine as plan;
use crate::blocks::segment::Segment;
use crate::sql::{Placeholders, SqlBuilder};
use crate::{
    Appended, ClearRecord, Group, GroupQuery, Page, RecordBatch, RecordStore, Result, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool};
use futures_util::stream::BoxStream;
use logbook_core::histogram::Bucket;
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{Histogram, Kind, Level, Order, Query, Record, Timestamp};
use std::sync::Arc;
use tokio_postgres::IsolationLevel;
use tokio_stream::wrappers::ReceiverStream;

/// Records per export batch, as in the embedded store.
const EXPORT_BATCH: u64 = 2000;

pub const RECORD_COLUMNS_PLAIN: &str = "id, ts, kind, level, category, source, instance, logger, \"user\", user_id, domain_id, project_id, object_type, object_id, action, status, response_code, request_id, parent_request_id, message, data";
/// As read back: `data` as its stored text, keys in the order they were written.
pub const RECORD_COLUMNS: &str = "id, ts, kind, level, category, source, instance, logger, \"user\", user_id, domain_id, project_id, object_type, object_id, action, status, response_code, request_id, parent_request_id, message, data::text";

#[async_trait]
impl RecordStore for PostgresStore {
    async fn append_batch(&self, records: RecordBatch) -> Result<Appended> {
        let records = records.into_records()?;
        if records.is_empty() {
            return Ok(Appended {
                count: 0,
                first_id: None,
                last_id: None,
            });
        }
        self.writer.append(records).await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        query_page(&self.pool, &self.tiers, query).await
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        retried(|| count_once(&self.pool, &self.tiers, query)).await
    }

    async fn get(&self, id: i64) -> Result<Option<Record>> {
        retried(|| get_once(&self.pool, &self.tiers, id)).await
    }

    fn export(&self, query: Query) -> BoxStream<'static, Result<Vec<Record>>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let pool = self.pool.clone();
        let tiers = Arc::clone(&self.tiers);
        tokio::spawn(async move {
            // The export covers what is committed now, whatever arrives meanwhile.
            let high_water = match high_water(&pool).await {
                Ok(hw) => hw,
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            let mut page = Query {
                sort: Vec::new(),
                offset: 0,
                limit: Some(EXPORT_BATCH),
                ..query
            };
            page.conditions.push(Condition::Compare(
                Field::Id,
                Comparison::Le,
                Scalar::Int(high_water),
            ));
            loop {
                // Each batch is one snapshot of both tiers: a seal between two
                // batches moves records from rows to a block, never past the cursor.
                let batch = query_page(&pool, &tiers, &page).await;
                let last = match &batch {
                    Ok(p) if p.records.is_empty() => break,
                    Ok(p) => p.records.last().map(|r| r.id),
                    Err(_) => None,
                };
                let full = matches!(&batch, Ok(p) if p.records.len() as u64 >= EXPORT_BATCH);
                if sender.send(batch.map(|p| p.records)).await.is_err() {
                    break;
                }
                match last {
                    Some(last) if full => page.after = Some(logbook_core::Cursor(last)),
                    _ => break,
                }
            }
        });
        Box::pin(ReceiverStream::new(receiver))
    }

    /// Deletes the hot rows that match and rewrites every block holding a match
    /// without it (a block left empty goes), as the embedded store does, in one
    /// transaction under the sealer's lock (so no seal moves rows meanwhile).
    async fn delete_recorded(&self, query: &Query, journal: ClearRecord) -> Result<u64> {
        let mut b = SqlBuilder::new(Placeholders::Dollar);
        let filter = filter(&mut b, &query.conditions);
        let mut client = self.pool.get().await?;
        let params = params_of(&b.params);
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&super::blocks::SEAL_LOCK_CLASS, &self.target.lock_key],
        )
        .await?;
        let mut gone: Vec<Record> = tx
            .query(
                &format!("DELETE FROM records WHERE {filter} RETURNING {RECORD_COLUMNS}"),
                &refs(&params),
            )
            .await?
            .iter()
            .map(read_record)
            .collect::<Result<_>>()?;
        gone.extend(delete_in_blocks(&tx, &self.tiers.options, query).await?);
        super::integrity::keep_removed_leaves(&tx, self.target.lock_key, &gone).await?;
        let mut deleted: Vec<i64> = gone.iter().map(|r| r.id).collect();
        deleted.sort_unstable();
        let removal = crate::Removal::of(&deleted);
        let stored = super::writer::append_in(&tx, &self.target, vec![journal(&removal)]).await?;
        if let Some(entry) = stored.first() {
            super::integrity::insert_removed(&tx, &deleted, Timestamp::now(), entry.id).await?;
        }
        tx.commit().await?;
        super::writer::hint_committed(&self.target, &stored);
        // Give the connection back first: announcing may need one to catch up.
        drop(client);
        self.publisher.announce(stored).await;
        Ok(removal.count)
    }

    async fn group(&self, query: &Query, groups: &GroupQuery) -> Result<Vec<Group>> {
        retried(|| async {
            let segments = matching_segments(&self.pool, &self.tiers, &query.conditions).await?;
            let (query, groups) = (query.clone(), groups.clone());
            on_blocks(move || plan::group(&segments, &query, &groups)).await
        })
        .await
    }

    async fn count_groups(&self, query: &Query, fields: &[Field]) -> Result<u64> {
        retried(|| async {
            let segments = matching_segments(&self.pool, &self.tiers, &query.conditions).await?;
            let (query, fields) = (query.clone(), fields.to_vec());
            on_blocks(move || plan::count_groups(&segments, &query, &fields)).await
        })
        .await
    }

    /// The hot rows' buckets by SQL (an aggregate, no rows sent), the blocks' by
    /// the engine (from their summaries where it can), in one snapshot, summed.
    async fn histogram(&self, query: &Query, histogram: &Histogram) -> Result<Vec<Bucket>> {
        retried(|| async {
            let mut client = self.pool.get().await?;
            let tx = snapshot(&mut client).await?;
            let hot = hot_histogram(&tx, query, histogram).await?;
            let blocks = self.tiers.blocks_in(&tx).await?;
            tx.commit().await?;
            drop(client);
            if blocks.is_empty() {
                return Ok(hot);
            }
            let (query, h) = (query.clone(), *histogram);
            let sealed = on_blocks(move || plan::histogram(&blocks, &query, &h)).await?;
            let mut sum: std::collections::BTreeMap<(Timestamp, Option<Scalar>), u64> =
                std::collections::BTreeMap::new();
            for b in hot.into_iter().chain(sealed) {
                *sum.entry((b.start, b.key)).or_default() += b.count;
            }
            Ok(sum
                .into_iter()
                .map(|((start, key), count)| Bucket { start, key, count })
                .collect())
        })
        .await
    }

    async fn size_on_disk(&self, kind: Kind) -> Result<u64> {
        let client = self.pool.get().await?;
        let tables: i64 = client
            .query_one(
                "SELECT (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint \
                         FROM pg_inherits WHERE inhparent = 'records'::regclass) \
                      + pg_total_relation_size('blocks')",
                &[],
            )
            .await?
            .get(0);
        drop(client);
        let of_kind = Query {
            conditions: vec![Condition::In(Field::Kind, vec![Scalar::Int(kind.code())])],
            ..Query::default()
        };
        let of_kind = self.count(&of_kind).await?;
        let all = self.count(&Query::default()).await?;
        if all == 0 {
            return Ok(0);
        }
        Ok((tables.max(0) as u128 * of_kind as u128 / all as u128) as u64)
    }

    async fn high_water(&self) -> Result<i64> {
        high_water(&self.pool).await
    }
}

/// The buckets of the matching hot rows, counted by PostgreSQL.
async fn hot_histogram(
    client: &impl GenericClient,
    query: &Query,
    histogram: &Histogram,
) -> Result<Vec<Bucket>> {
    let mut b = SqlBuilder::new(Placeholders::Dollar);
    let filter = filter(&mut b, &query.conditions);
    let interval = histogram.interval_micros();
    let (key, group, order) = match histogram.by().map(crate::sql::column) {
        Some(column) => (
            column,
            format!(", {column}"),
            format!(", {column} NULLS FIRST"),
        ),
        None => ("NULL::text", String::new(), String::new()),
    };
    // NULLs first and bytewise text order, as the embedded store sorts.
    let sql = format!(
        "SELECT ts - ts % {interval} AS bucket, {key}, count(*) FROM records \
         WHERE {filter} GROUP BY 1{group} ORDER BY 1{order}"
    );
    let params = params_of(&b.params);
    let rows = client.query(&sql, &refs(&params)).await?;
    let integer_key = histogram.by().is_some_and(Field::is_integer);
    let mut buckets = Vec::with_capacity(rows.len());
    for row in rows {
        let key = match integer_key {
            true => row.try_get::<_, Option<i64>>(1)?.map(Scalar::Int),
            false => row.try_get::<_, Option<String>>(1)?.map(Scalar::Text),
        };
        buckets.push(Bucket {
            start: Timestamp(row.try_get(0)?),
            key,
            count: row.try_get::<_, i64>(2)?.max(0) as u64,
        });
    }
    Ok(buckets)
}

/// Runs a read again (on a fresh snapshot) when a block it listed was rewritten
/// or dropped before its pages were read.
async fn retried<T, F, Fut>(read: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match read().await {
            Err(StoreError::NotFound) if attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

/// A read-only REPEATABLE READ transaction: one snapshot of both tiers.
///
/// `records` and every partition of it are locked (ACCESS SHARE, which only DDL
/// waits for) before the snapshot is taken, by the first statement that reads:
/// a partition emptied by a seal this snapshot predates is then still attached
/// and readable until it ends, because dropping one detaches it CONCURRENTLY
/// (which waits for every transaction holding a lock on `records`) and DROP waits
/// for the partition's own lock (`PgTiers::drop_emptied_partitions`).
pub(super) async fn snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    tx.batch_execute("LOCK TABLE records IN ACCESS SHARE MODE")
        .await?;
    Ok(tx)
}

/// The blocks and, as a hot segment, every hot row matching `conditions`, in one
/// snapshot: what the engine needs for groups and histograms.
async fn matching_segments(
    pool: &Pool,
    tiers: &Arc<PgTiers>,
    conditions: &[Condition],
) -> Result<Vec<Segment>> {
    let mut client = pool.get().await?;
    let tx = snapshot(&mut client).await?;
    let hot = scan(&tx, &Query::oldest_first(), conditions, None).await?;
    let mut segments = tiers.blocks_in(&tx).await?;
    tx.commit().await?;
    if !hot.is_empty() {
        segments.push(Segment::hot(&hot));
    }
    Ok(segments)
}

async fn count_once(pool: &Pool, tiers: &Arc<PgTiers>, query: &Query) -> Result<u64> {
    let mut conditions = query.conditions.clone();
    conditions.extend(plan::cursor_condition(query));
    let mut b = SqlBuilder::new(Placeholders::Dollar);
    let filter = filter(&mut b, &conditions);
    let mut client = pool.get().await?;
    let tx = snapshot(&mut client).await?;
    let params = params_of(&b.params);
    let hot: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM records WHERE {filter}"),
            &refs(&params),
        )
        .await?
        .get(0);
    let blocks = tiers.blocks_in(&tx).await?;
    tx.commit().await?;
    drop(client);
    let sealed = if blocks.is_empty() {
        0
    } else {
        let query = query.clone();
        on_blocks(move || plan::count(&blocks, &query)).await?
    };
    Ok(hot.max(0) as u64 + sealed)
}

async fn get_once(pool: &Pool, tiers: &Arc<PgTiers>, id: i64) -> Result<Option<Record>> {
    let mut client = pool.get().await?;
    let tx = snapshot(&mut client).await?;
    let statement = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE id = $1"
        ))
        .await?;
    if let Some(row) = tx.query_opt(&statement, &[&id]).await? {
        tx.commit().await?;
        return read_record(&row).map(Some);
    }
    let blocks = tiers.blocks_in(&tx).await?;
    tx.commit().await?;
    drop(client);
    if !blocks
        .iter()
        .any(|b| b.first_id() <= id && id <= b.last_id())
    {
        return Ok(None);
    }
    on_blocks(move || plan::get(&blocks, id)).await
}

/// Rewrites each block holding a match of `query` without its matches, in `tx`;
/// returns the ids that went.
async fn delete_in_blocks(
    tx: &deadpool_postgres::Transaction<'_>,
    options: &crate::blocks::tiers::TierOptions,
    query: &Query,
) -> Result<Vec<Record>> {
    let filter = Query {
        conditions: query.conditions.clone(),
        ..Query::default()
    };
    let listed = tx
        .query(
            "SELECT generation, summary FROM blocks ORDER BY first_id",
            &[],
        )
        .await?;
    let mut deleted = Vec::new();
    for row in listed {
        let generation: i64 = row.try_get(0)?;
        let summary = crate::blocks::summary::Summary::read(&row.try_get::<_, Vec<u8>>(1)?)?;
        if !filter.conditions.iter().all(|c| summary.may_match(c)) {
            continue;
        }
        let blob: Vec<u8> = tx
            .query_one(
                "SELECT data FROM blocks WHERE generation = $1",
                &[&generation],
            )
            .await?
            .try_get(0)?;
        let segment = Segment::sealed(Arc::new(blob), Arc::new(summary))?;
        let all = plan::export_batch(
            std::slice::from_ref(&segment),
            &Query::oldest_first(),
            i64::MAX,
            None,
            usize::MAX,
        )?;
        let (gone, kept): (Vec<Record>, Vec<Record>) =
            all.into_iter().partition(|r| filter.matches(r));
        if gone.is_empty() {
            continue;
        }
        deleted.extend(gone);
        tx.execute("DELETE FROM blocks WHERE generation = $1", &[&generation])
            .await?;
        if !kept.is_empty() {
            let encoded = crate::blocks::format::encode(
                &kept,
                &crate::blocks::format::Options {
                    page_rows: options.page_rows,
                    zstd_level: options.zstd_level,
                },
            );
            super::blocks::insert_block(tx, &encoded).await?;
        }
    }
    Ok(deleted)
}

/// The visibility horizon now: below it, every id that will ever exist is
/// committed.
async fn high_water(pool: &Pool) -> Result<i64> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(super::writer::HORIZON).await?;
    Ok(client.query_one(&statement, &[]).await?.get(0))
}

/// The WHERE clause over hot rows. No index but the primary key serves it (the
/// hot tier is bounded, schema version 6): a filter is a scan of those rows.
fn filter(b: &mut SqlBuilder, conditions: &[Condition]) -> String {
    b.all(conditions, "")
}

/// One page of a query over both tiers, in one snapshot: the hot rows it needs
/// (by SQL, with the indexes) and the blocks visible in it, handed to the engine
/// together (the hot rows as one segment above the blocks: sealed ids are all
/// below hot ones).
pub(super) async fn query_page(pool: &Pool, tiers: &Arc<PgTiers>, query: &Query) -> Result<Page> {
    retried(|| query_page_once(pool, tiers, query)).await
}

async fn query_page_once(pool: &Pool, tiers: &Arc<PgTiers>, query: &Query) -> Result<Page> {
    let mut client = pool.get().await?;
    // One snapshot: the page and its high-water mark agree.
    let tx = snapshot(&mut client).await?;
    let statement = tx.prepare_cached(super::writer::HORIZON).await?;
    let high_water: i64 = tx.query_one(&statement, &[]).await?.get(0);
    // Nothing above the horizon: an append still in flight may commit below it.
    let below = Condition::Compare(Field::Id, Comparison::Le, Scalar::Int(high_water));
    let mut conditions = query.conditions.clone();
    conditions.extend(plan::cursor_condition(query));
    conditions.push(below.clone());
    let want = query.limit.map(|l| l.saturating_add(query.offset));
    // The hot rows a page can take: the first `offset + limit` in its order, or
    // every match when it is sorted.
    let hot_query = Query {
        offset: 0,
        limit: if query.sort.is_empty() { want } else { None },
        sort: Vec::new(),
        ..query.clone()
    };
    let mut hot = by_id(&tx, &hot_query, &conditions).await?;
    let blocks = tiers.blocks_in(&tx).await?;
    tx.commit().await?;
    drop(client);
    let enough = query.order == Order::NewestFirst && want.is_some_and(|w| hot.len() as u64 >= w);
    if query.sort.is_empty() && (blocks.is_empty() || enough) {
        let skip = (query.offset as usize).min(hot.len());
        hot.drain(..skip);
        return Ok(Page {
            records: hot,
            high_water,
        });
    }
    let mut segments = blocks;
    if !hot.is_empty() {
        hot.sort_unstable_by_key(|r| r.id);
        segments.push(Segment::hot(&hot));
    }
    let mut bounded = query.clone();
    bounded.conditions.push(below);
    let records = on_blocks(move || plan::query(&segments, &bounded)).await?;
    Ok(Page {
        records,
        high_water,
    })
}

fn limit_clause(query: &Query) -> String {
    match query.limit {
        Some(limit) => format!(" LIMIT {limit} OFFSET {}", query.offset),
        None if query.offset > 0 => format!(" OFFSET {}", query.offset),
        None => String::new(),
    }
}

fn direction(order: Order) -> &'static str {
    match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    }
}

/// Newest/oldest first by id: the primary key walked in that order, each row
/// tested against the filter, stopping at `offset + limit` matches.
async fn by_id(
    client: &impl GenericClient,
    query: &Query,
    conditions: &[Condition],
) -> Result<Vec<Record>> {
    // LIMIT is a bigint: offset plus limit must not pass i64::MAX.
    let Some(want) = query
        .limit
        .map(|l| l.saturating_add(query.offset).min(i64::MAX as u64))
    else {
        return scan(client, query, conditions, None).await;
    };
    let mut found = scan(client, query, conditions, Some(want)).await?;
    let skip = (query.offset as usize).min(found.len());
    found.drain(..skip);
    Ok(found)
}

async fn scan(
    client: &impl GenericClient,
    query: &Query,
    conditions: &[Condition],
    limit: Option<u64>,
) -> Result<Vec<Record>> {
    let mut b = SqlBuilder::new(Placeholders::Dollar);
    let filter = filter(&mut b, conditions);
    let tail = match limit {
        Some(limit) => format!(" LIMIT {limit}"),
        None => limit_clause(query),
    };
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE {filter} ORDER BY id {}{tail}",
        direction(query.order)
    );
    fetch(client, &sql, &b.params).await
}

async fn fetch(client: &impl GenericClient, sql: &str, params: &[Scalar]) -> Result<Vec<Record>> {
    let params = params_of(params);
    let rows = client.query(sql, &refs(&params)).await?;
    rows.iter().map(read_record).collect()
}

pub fn read_record(row: &tokio_postgres::Row) -> Result<Record> {
    let kind_code: i64 = row.try_get(2)?;
    let kind = Kind::from_code(kind_code)
        .ok_or_else(|| StoreError::Internal(format!("record has unknown kind code {kind_code}")))?;
    let level = row
        .try_get::<_, Option<i64>>(3)?
        .and_then(Level::from_number);
    let data = match row.try_get::<_, Option<String>>(20)? {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => {
                return Err(StoreError::Internal(
                    "record data is not a JSON object".into(),
                ))
            }
        },
    };
    Ok(Record {
        id: row.try_get(0)?,
        ts: Timestamp(row.try_get(1)?),
        kind,
        level,
        category: row.try_get(4)?,
        source: row.try_get(5)?,
        instance: row.try_get(6)?,
        logger: row.try_get(7)?,
        user: row.try_get(8)?,
        user_id: row.try_get(9)?,
        domain_id: row.try_get(10)?,
        project_id: row.try_get(11)?,
        object_type: row.try_get(12)?,
        object_id: row.try_get(13)?,
        action: row.try_get(14)?,
        status: row.try_get(15)?,
        response_code: row.try_get(16)?,
        request_id: row.try_get(17)?,
        parent_request_id: row.try_get(18)?,
        message: row.try_get(19)?,
        data,
    })
}
