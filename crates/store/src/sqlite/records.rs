//! Records in SQLite: appends through the writer, queries through the planner.

use super::plan::{self, record_columns, Driver, PROBE_CAP, RECORD_COLUMNS, WINDOW};
use super::writer::{Announcement, Batch};
use super::SqliteStore;
use crate::sql::{Placeholders, SqlBuilder};
use crate::{Appended, ClearRecord, Group, GroupQuery, Page, RecordStore, Result, StoreError};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use logbook_core::histogram::Bucket;
use logbook_core::query::{Condition, Field, Scalar};
use logbook_core::{Histogram, Kind, Level, NewRecord, Order, Query, Record, Timestamp};
use rusqlite::{params_from_iter, CachedStatement, Connection, ToSql};

#[async_trait]
impl RecordStore for SqliteStore {
    async fn append(&self, records: Vec<NewRecord>) -> Result<Appended> {
        if records.is_empty() {
            return Ok(Appended {
                count: 0,
                first_id: None,
                last_id: None,
            });
        }
        self.writer
            .write(move |conn, batch| insert_records(conn, batch, &records))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        let query = query.clone();
        self.readers
            .read(move |conn| query_page(conn, &query))
            .await
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let query = query.clone();
        self.readers.read(move |conn| count(conn, &query)).await
    }

    async fn get(&self, id: i64) -> Result<Option<Record>> {
        self.readers
            .read(move |conn| {
                let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ?1");
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query_map([id], read_record)?;
                rows.next()
                    .transpose()
                    .map_err(StoreError::from)?
                    .transpose()
            })
            .await
    }

    fn export(&self, query: Query) -> BoxStream<'static, Result<Vec<Record>>> {
        super::export::export(
            std::sync::Arc::clone(&self.readers),
            query,
            self.notifier.high_water(),
        )
    }

    async fn delete_recorded(&self, query: &Query, journal: ClearRecord) -> Result<u64> {
        let query = query.clone();
        self.writer
            .write(move |conn, batch| {
                let deleted = delete_matching(conn, &query)?;
                insert_records(conn, batch, &[journal(deleted)])?;
                Ok(deleted)
            })
            .await
    }

    async fn group(&self, query: &Query, groups: &GroupQuery) -> Result<Vec<Group>> {
        let query = query.clone();
        let groups = groups.clone();
        self.readers
            .read(move |conn| {
                let mut b = SqlBuilder::new(Placeholders::Question);
                let filter = b.all(&query.conditions, "");
                let cols: Vec<&str> = groups
                    .fields
                    .iter()
                    .map(|f| crate::sql::column(*f))
                    .collect();
                let order = crate::sql::group_order(&mut b, &groups, &cols);
                let cols = cols.join(", ");
                let sql = format!(
                    "SELECT {cols}, count(*), max(ts) FROM records WHERE {filter} \
                     GROUP BY {cols} {order}"
                );
                let params = sql_params(&b.params);
                let mut stmt = conn.prepare(&sql)?;
                let n = groups.fields.len();
                let rows = stmt.query_map(params_from_iter(params.iter()), |row| {
                    let mut key = Vec::with_capacity(n);
                    for i in 0..n {
                        key.push(
                            row.get::<_, Option<rusqlite::types::Value>>(i)
                                .map(text_of)?,
                        );
                    }
                    Ok(Group {
                        key,
                        count: row.get::<_, i64>(n)?.max(0) as u64,
                        last_ts: Timestamp(row.get::<_, Option<i64>>(n + 1)?.unwrap_or(0)),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn histogram(&self, query: &Query, histogram: &Histogram) -> Result<Vec<Bucket>> {
        let query = query.clone();
        let histogram = *histogram;
        self.readers
            .read(move |conn| {
                let mut b = SqlBuilder::new(Placeholders::Question);
                let filter = b.all(&query.conditions, "");
                let interval = histogram.interval_micros();
                let (key, group) = match histogram.by().map(crate::sql::column) {
                    Some(column) => (column, format!(", {column}")),
                    None => ("NULL", String::new()),
                };
                // Timestamps are never negative, so `%` (truncating) is the floor.
                let sql = format!(
                    "SELECT ts - ts % {interval} AS bucket, {key}, count(*) FROM records \
                     WHERE {filter} GROUP BY bucket{group} ORDER BY bucket{group}"
                );
                let params = sql_params(&b.params);
                let mut stmt = conn.prepare(&sql)?;
                let integer_key = histogram.by().is_some_and(Field::is_integer);
                let rows = stmt.query_map(params_from_iter(params.iter()), |row| {
                    let key = match integer_key {
                        true => row.get::<_, Option<i64>>(1)?.map(Scalar::Int),
                        false => row.get::<_, Option<String>>(1)?.map(Scalar::Text),
                    };
                    Ok(Bucket {
                        start: Timestamp(row.get(0)?),
                        key,
                        count: row.get::<_, i64>(2)?.max(0) as u64,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn count_groups(&self, query: &Query, fields: &[Field]) -> Result<u64> {
        let query = query.clone();
        let fields = fields.to_vec();
        self.readers
            .read(move |conn| {
                let mut b = SqlBuilder::new(Placeholders::Question);
                let filter = b.all(&query.conditions, "");
                let cols: Vec<&str> = fields.iter().map(|f| crate::sql::column(*f)).collect();
                let sql = format!(
                    "SELECT count(*) FROM (SELECT 1 FROM records WHERE {filter} GROUP BY {})",
                    cols.join(", ")
                );
                let params = sql_params(&b.params);
                let n: i64 = conn.query_row(&sql, params_from_iter(params.iter()), |r| r.get(0))?;
                Ok(n.max(0) as u64)
            })
            .await
    }

    async fn size_on_disk(&self, kind: Kind) -> Result<u64> {
        self.readers
            .read(move |conn| {
                // dbstat walks every page it is asked about (seconds at ten million
                // records), so it measures only the small tables that are not records;
                // the records, their indexes and trigram index are the rest of the file.
                let in_use: i64 = conn.query_row(
                    "SELECT (page_count - freelist_count) * page_size \
                     FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
                    [],
                    |r| r.get(0),
                )?;
                let others: Vec<String> = conn
                    .prepare(
                        "SELECT name FROM sqlite_schema WHERE name <> 'records' \
                         AND name NOT LIKE 'records\\_%' ESCAPE '\\'",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut other_bytes = 0i64;
                for name in &others {
                    // Without dbstat (not compiled in) the whole file counts.
                    other_bytes += conn
                        .query_row(
                            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1",
                            [name],
                            |r| r.get::<_, i64>(0),
                        )
                        .unwrap_or(0);
                }
                let tables = (in_use - other_bytes).max(0) as u64;
                let (of_kind, all): (i64, i64) = conn.query_row(
                    "SELECT (SELECT count(*) FROM records WHERE kind = ?1), \
                            (SELECT count(*) FROM records)",
                    [kind.code()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if all <= 0 {
                    return Ok(0);
                }
                Ok((tables as u128 * of_kind.max(0) as u128 / all as u128) as u64)
            })
            .await
    }

    async fn high_water(&self) -> Result<i64> {
        Ok(self.notifier.high_water())
    }
}

/// Deletes the matching records and their trigram entries; returns how many.
fn delete_matching(conn: &Connection, query: &Query) -> Result<u64> {
    let mut b = SqlBuilder::new(Placeholders::Question);
    let filter = b.all(&query.conditions, "");
    let params = sql_params(&b.params);
    conn.execute(
        &format!(
            "DELETE FROM records_fts WHERE rowid IN \
             (SELECT id FROM records WHERE message IS NOT NULL AND {filter})"
        ),
        params_from_iter(params.iter()),
    )?;
    let deleted = conn.execute(
        &format!("DELETE FROM records WHERE {filter}"),
        params_from_iter(params.iter()),
    )?;
    Ok(deleted as u64)
}

fn text_of(value: Option<rusqlite::types::Value>) -> Option<String> {
    use rusqlite::types::Value;
    match value? {
        Value::Null => None,
        Value::Integer(n) => Some(n.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(t) => Some(t),
        Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
    }
}

pub(super) fn insert_records(
    conn: &Connection,
    batch: &mut Batch,
    records: &[NewRecord],
) -> Result<Appended> {
    let now = Timestamp::now();
    let (mut insert, mut index) = insert_statements(conn)?;
    let first_id = batch.next_record_id;
    let mut stored = Vec::with_capacity(records.len());
    for new in records {
        let record = new.clone().into_record(batch.next_record_id, now);
        batch.next_record_id += 1;
        insert_row(&mut insert, &mut index, &record)?;
        stored.push(record);
    }
    let appended = Appended {
        count: stored.len(),
        first_id: Some(first_id),
        last_id: Some(batch.next_record_id - 1),
    };
    batch.announcements.push(Announcement::Records(stored));
    Ok(appended)
}

/// The statements that store a record: its row, and its message in the trigram index.
pub(super) fn insert_statements(
    conn: &Connection,
) -> rusqlite::Result<(CachedStatement<'_>, CachedStatement<'_>)> {
    let insert = conn.prepare_cached(&format!(
        "INSERT INTO records ({RECORD_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
    ))?;
    let index = conn.prepare_cached("INSERT INTO records_fts (rowid, message) VALUES (?1, ?2)")?;
    Ok((insert, index))
}

pub(super) fn insert_row(
    insert: &mut CachedStatement<'_>,
    index: &mut CachedStatement<'_>,
    record: &Record,
) -> rusqlite::Result<()> {
    // Serialising a map of JSON values into a String cannot fail.
    let data = record
        .data
        .as_ref()
        .map(|d| serde_json::to_string(d).unwrap_or_default());
    insert.execute(rusqlite::params![
        record.id,
        record.ts.micros(),
        record.kind.code(),
        record.level.map(Level::number),
        record.category,
        record.source,
        record.instance,
        record.logger,
        record.user,
        record.user_id,
        record.domain_id,
        record.project_id,
        record.object_type,
        record.object_id,
        record.action,
        record.status,
        record.response_code,
        record.request_id,
        record.parent_request_id,
        record.message,
        data,
    ])?;
    if let Some(message) = &record.message {
        index.execute(rusqlite::params![record.id, message])?;
    }
    Ok(())
}

pub(crate) fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Record>> {
    let kind_code: i64 = row.get(2)?;
    let Some(kind) = Kind::from_code(kind_code) else {
        return Ok(Err(StoreError::Internal(format!(
            "record has unknown kind code {kind_code}"
        ))));
    };
    let level = row.get::<_, Option<i64>>(3)?.and_then(Level::from_number);
    let data = match row.get::<_, Option<String>>(20)? {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => {
                return Ok(Err(StoreError::Internal(
                    "record data is not a JSON object".into(),
                )))
            }
        },
    };
    Ok(Ok(Record {
        id: row.get(0)?,
        ts: Timestamp(row.get(1)?),
        kind,
        level,
        category: row.get(4)?,
        source: row.get(5)?,
        instance: row.get(6)?,
        logger: row.get(7)?,
        user: row.get(8)?,
        user_id: row.get(9)?,
        domain_id: row.get(10)?,
        project_id: row.get(11)?,
        object_type: row.get(12)?,
        object_id: row.get(13)?,
        action: row.get(14)?,
        status: row.get(15)?,
        response_code: row.get(16)?,
        request_id: row.get(17)?,
        parent_request_id: row.get(18)?,
        message: row.get(19)?,
        data,
    }))
}

/// Parameter values as SQLite sees them.
pub(super) fn sql_params(values: &[Scalar]) -> Vec<Box<dyn ToSql>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql> {
            match v {
                Scalar::Int(n) => Box::new(*n),
                Scalar::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

pub(super) fn fetch(conn: &Connection, sql: &str, params: &[Scalar]) -> Result<Vec<Record>> {
    let params = sql_params(params);
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params_from_iter(params.iter()), read_record)?;
    let mut records = Vec::new();
    for row in rows {
        records.push(row??);
    }
    Ok(records)
}

fn query_page(conn: &mut Connection, query: &Query) -> Result<Page> {
    // One read transaction: the page and its high-water mark come from one snapshot.
    let tx = conn.transaction()?;
    let high_water: i64 = tx.query_row(
        "SELECT value FROM meta WHERE key = 'last_record_id'",
        [],
        |r| r.get(0),
    )?;
    let mut conditions = query.conditions.clone();
    conditions.extend(plan::cursor_condition(query));
    let records = if !query.sort.is_empty() {
        sorted(&tx, query, &conditions)?
    } else if let Some(trigrams) = plan::trigram_search(&conditions) {
        searched(&tx, query, &conditions, &trigrams)?
    } else {
        let mut found = by_id(&tx, query, &conditions, high_water)?;
        let skip = (query.offset as usize).min(found.len());
        found.drain(..skip);
        found
    };
    tx.commit()?;
    Ok(Page {
        records,
        high_water,
    })
}

fn limit_clause(query: &Query) -> String {
    match query.limit {
        Some(limit) => format!(" LIMIT {limit} OFFSET {}", query.offset),
        None if query.offset > 0 => format!(" LIMIT -1 OFFSET {}", query.offset),
        None => String::new(),
    }
}

pub(super) fn direction(order: Order) -> &'static str {
    match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    }
}

/// An explicit sort (e.g. Waldur's `o`): SQLite's planner chooses the index.
fn sorted(conn: &Connection, query: &Query, conditions: &[Condition]) -> Result<Vec<Record>> {
    let mut b = SqlBuilder::new(Placeholders::Question);
    let filter = b.all(conditions, "");
    let mut keys: Vec<String> = query
        .sort
        .iter()
        .map(|k| {
            let dir = if k.descending { "DESC" } else { "ASC" };
            format!("{} {dir}", crate::sql::column(k.field))
        })
        .collect();
    keys.push(format!("id {}", direction(query.order)));
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE {filter} ORDER BY {}{}",
        keys.join(", "),
        limit_clause(query)
    );
    fetch(conn, &sql, &b.params)
}

/// A substring search driven by the trigram index, read in id order.
fn searched(
    conn: &Connection,
    query: &Query,
    conditions: &[Condition],
    trigrams: &str,
) -> Result<Vec<Record>> {
    let mut b = SqlBuilder::new(Placeholders::Question);
    let m = b.bind(Scalar::Text(trigrams.to_string()));
    let filter = b.all(conditions, "r.");
    let sql = format!(
        "SELECT {} FROM records_fts CROSS JOIN records r ON r.id = records_fts.rowid \
         WHERE records_fts MATCH {m} AND {filter} ORDER BY records_fts.rowid {}{}",
        record_columns("r."),
        direction(query.order),
        limit_clause(query)
    );
    fetch(conn, &sql, &b.params)
}

/// Newest/oldest-first by id, as described in [`plan`]. Returns up to
/// `offset + limit` records; the caller drops the offset.
fn by_id(
    conn: &Connection,
    query: &Query,
    conditions: &[Condition],
    high_water: i64,
) -> Result<Vec<Record>> {
    let descending = query.order == Order::NewestFirst;
    let lowest: i64 =
        conn.query_row("SELECT coalesce(min(id), 1) FROM records", [], |r| r.get(0))?;
    let (lo, hi) = (lowest, high_water);
    if lo > hi {
        return Ok(Vec::new());
    }
    let Some(want) = query.limit.map(|l| l.saturating_add(query.offset)) else {
        return scan(conn, conditions, (lo, hi), descending, None);
    };
    let window = if descending {
        (hi.saturating_sub(WINDOW - 1).max(lo), hi)
    } else {
        (lo, lo.saturating_add(WINDOW - 1).min(hi))
    };
    let mut found = scan(conn, conditions, window, descending, Some(want))?;
    let rest = if descending {
        (lo, window.0 - 1)
    } else {
        (window.1 + 1, hi)
    };
    if found.len() as u64 >= want || rest.0 > rest.1 {
        return Ok(found);
    }
    let remaining = want - found.len() as u64;
    let more = match choose_driver(conn, conditions, rest)? {
        Some(driver) => drive(conn, &driver, conditions, rest, descending, remaining)?,
        None => scan(conn, conditions, rest, descending, Some(remaining))?,
    };
    found.extend(more);
    Ok(found)
}

fn id_range(b: &mut SqlBuilder, (lo, hi): (i64, i64)) -> String {
    let lo = b.bind(Scalar::Int(lo));
    let hi = b.bind(Scalar::Int(hi));
    format!("id BETWEEN {lo} AND {hi}")
}

/// Reads the id range in order without any index.
fn scan(
    conn: &Connection,
    conditions: &[Condition],
    range: (i64, i64),
    descending: bool,
    limit: Option<u64>,
) -> Result<Vec<Record>> {
    let mut b = SqlBuilder::new(Placeholders::Question);
    let range = id_range(&mut b, range);
    let filter = b.all(conditions, "");
    let dir = if descending { "DESC" } else { "ASC" };
    let limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records NOT INDEXED WHERE {range} AND {filter} ORDER BY id {dir}{limit}"
    );
    fetch(conn, &sql, &b.params)
}

fn choose_driver(
    conn: &Connection,
    conditions: &[Condition],
    range: (i64, i64),
) -> Result<Option<Driver>> {
    let mut best: Option<(u64, Driver)> = None;
    for driver in plan::candidate_drivers(conditions) {
        let visits = probe(conn, &driver, range)?;
        if !driver.ordered && visits >= PROBE_CAP {
            continue;
        }
        if best.as_ref().is_none_or(|(least, _)| visits < *least) {
            best = Some((visits, driver));
        }
    }
    Ok(best.map(|(_, driver)| driver))
}

/// Index entries the driver would visit in the range, counted up to the cap.
fn probe(conn: &Connection, driver: &Driver, range: (i64, i64)) -> Result<u64> {
    let mut total = 0u64;
    for branch in &driver.branches {
        let mut b = SqlBuilder::new(Placeholders::Question);
        let cond = b.condition(branch, "");
        let range = id_range(&mut b, range);
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM records INDEXED BY {} WHERE {cond} AND {range} LIMIT {})",
            driver.index,
            PROBE_CAP - total
        );
        let params = sql_params(&b.params);
        let n: i64 = conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
        total += n.max(0) as u64;
        if total >= PROBE_CAP {
            break;
        }
    }
    Ok(total)
}

/// Reads each branch of the driver's index in id order and merges them.
fn drive(
    conn: &Connection,
    driver: &Driver,
    conditions: &[Condition],
    range: (i64, i64),
    descending: bool,
    limit: u64,
) -> Result<Vec<Record>> {
    let dir = if descending { "DESC" } else { "ASC" };
    let mut merged = Vec::new();
    for branch in &driver.branches {
        let mut b = SqlBuilder::new(Placeholders::Question);
        let cond = b.condition(branch, "");
        let range = id_range(&mut b, range);
        let filter = b.all(conditions, "");
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records INDEXED BY {} WHERE {cond} AND {range} AND {filter} \
             ORDER BY id {dir} LIMIT {limit}",
            driver.index
        );
        merged.extend(fetch(conn, &sql, &b.params)?);
    }
    if descending {
        merged.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
    } else {
        merged.sort_unstable_by_key(|r| r.id);
    }
    merged.dedup_by_key(|r| r.id);
    merged.truncate(limit as usize);
    Ok(merged)
}

fn count(conn: &mut Connection, query: &Query) -> Result<u64> {
    let mut conditions = query.conditions.clone();
    conditions.extend(plan::cursor_condition(query));
    let mut b = SqlBuilder::new(Placeholders::Question);
    let sql = if let Some(trigrams) = plan::trigram_search(&conditions) {
        let m = b.bind(Scalar::Text(trigrams));
        let filter = b.all(&conditions, "r.");
        format!(
            "SELECT count(*) FROM records_fts CROSS JOIN records r ON r.id = records_fts.rowid \
             WHERE records_fts MATCH {m} AND {filter}"
        )
    } else {
        let filter = b.all(&conditions, "");
        format!("SELECT count(*) FROM records WHERE {filter}")
    };
    let params = sql_params(&b.params);
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}
