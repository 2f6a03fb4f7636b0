//! Records in SQLite, in two tiers (see `tiered.rs` and docs/storage.md): appends
//! become one hot segment row through the writer; every read goes through the shared
//! block engine over the catalog.

use super::tiered::{self, Tiered};
use super::writer::Batch;
use super::SqliteStore;
use crate::blocks::engine;
use crate::{
    Appended, ClearRecord, Group, GroupQuery, Page, RecordBatch, RecordStore, Removal, Result,
    StoreError,
};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use logbook_core::histogram::Bucket;
use logbook_core::query::Field;
use logbook_core::Histogram;
use logbook_core::{Kind, Level, NewRecord, Query, Record, Timestamp};
use rusqlite::Connection;
use std::sync::Arc;

/// The columns of the previous layout's `records` table, as `read_record` reads them.
pub const RECORD_COLUMNS: &str = "id, ts, kind, level, category, source, instance, logger, \"user\", user_id, domain_id, project_id, object_type, object_id, action, status, response_code, request_id, parent_request_id, message, data";

impl SqliteStore {
    /// Runs a read of the catalog on a reader connection.
    async fn read_tiers<T: Send + 'static>(
        &self,
        f: impl Fn(&[crate::blocks::segment::Segment], &crate::blocks::tiers::Catalog) -> Result<T>
            + Send
            + 'static,
    ) -> Result<T> {
        let tiered: Arc<Tiered> = Arc::clone(&self.tiered);
        self.readers.read(move |conn| tiered.read(conn, &f)).await
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    fn record_batch(&self) -> RecordBatch {
        RecordBatch::preparing()
    }

    async fn append_batch(&self, records: RecordBatch) -> Result<Appended> {
        if records.is_empty() {
            return Ok(Appended {
                count: 0,
                first_id: None,
                last_id: None,
            });
        }
        let append = records.into_prepared();
        self.writer
            .write(move |conn, batch| append.insert(conn, batch))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        let query = query.clone();
        self.read_tiers(move |segments, catalog| {
            Ok(Page {
                records: engine::query(segments, &query)?,
                high_water: catalog.high_water,
            })
        })
        .await
    }

    async fn count(&self, query: &Query) -> Result<u64> {
        let query = query.clone();
        self.read_tiers(move |segments, _| engine::count(segments, &query))
            .await
    }

    async fn get(&self, id: i64) -> Result<Option<Record>> {
        // One row: short enough to run where the request is.
        let tiered: Arc<Tiered> = Arc::clone(&self.tiered);
        self.readers
            .read_here(move |conn| tiered.read(conn, |segments, _| engine::get(segments, id)))
            .await
    }

    fn export(&self, query: Query) -> BoxStream<'static, Result<Vec<Record>>> {
        super::export::export(
            Arc::clone(&self.readers),
            Arc::clone(&self.tiered),
            query,
            self.notifier.high_water(),
        )
    }

    fn export_ndjson(&self, query: Query) -> BoxStream<'static, Result<Vec<u8>>> {
        super::export::export_ndjson(
            Arc::clone(&self.readers),
            Arc::clone(&self.tiered),
            query,
            self.notifier.high_water(),
        )
    }

    async fn delete_recorded(&self, query: &Query, journal: ClearRecord) -> Result<u64> {
        let query = query.clone();
        let tiered = Arc::clone(&self.tiered);
        self.writer
            .write(move |conn, batch| {
                let deleted = tiered::delete(&tiered, conn, batch, &query)?;
                let removal = Removal::of(&deleted);
                let entry = insert_records(conn, batch, &[journal(&removal)])?;
                if let Some(journal_id) = entry.first_id {
                    super::integrity::insert_removed(conn, &deleted, Timestamp::now(), journal_id)?;
                }
                Ok(removal.count)
            })
            .await
    }

    async fn group(&self, query: &Query, groups: &GroupQuery) -> Result<Vec<Group>> {
        let query = query.clone();
        let groups = groups.clone();
        self.read_tiers(move |segments, _| engine::group(segments, &query, &groups))
            .await
    }

    async fn count_groups(&self, query: &Query, fields: &[Field]) -> Result<u64> {
        let query = query.clone();
        let fields = fields.to_vec();
        self.read_tiers(move |segments, _| engine::count_groups(segments, &query, &fields))
            .await
    }

    async fn histogram(&self, query: &Query, histogram: &Histogram) -> Result<Vec<Bucket>> {
        let query = query.clone();
        let histogram = *histogram;
        self.read_tiers(move |segments, _| engine::histogram(segments, &query, &histogram))
            .await
    }

    /// The tiers' rows (blobs, headers, summaries, hot segments), shared out by the
    /// kind's share of the records. The file's free pages and WAL are not counted.
    async fn size_on_disk(&self, kind: Kind) -> Result<u64> {
        let tiered = Arc::clone(&self.tiered);
        self.readers
            .read(move |conn| {
                let bytes = tiered::stored_bytes(conn)?.max(0) as u128;
                tiered.read(conn, |segments, _| {
                    let all = engine::count(segments, &Query::newest_first())?;
                    let of_kind = engine::count(segments, &Query::newest_first().kinds(&[kind]))?;
                    Ok(match all {
                        0 => 0,
                        all => (bytes * u128::from(of_kind) / u128::from(all)) as u64,
                    })
                })
            })
            .await
    }

    async fn high_water(&self) -> Result<i64> {
        Ok(self.notifier.high_water())
    }
}

/// Appends records in the current write transaction (one hot segment).
pub(super) fn insert_records(
    conn: &Connection,
    batch: &mut Batch,
    records: &[NewRecord],
) -> Result<Appended> {
    tiered::insert_records(conn, batch, records)
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
