//! The object registry in SQLite.

use super::writer::Announcement;
use super::SqliteStore;
use crate::notifier::ObjectChange;
use crate::sql::{Placeholders, SqlBuilder};
use crate::{
    Appended, ObjectQuery, ObjectStore, ObjectUpdate, ObjectWrite, RecordBatch, Result, StoreError,
};
use async_trait::async_trait;
use logbook_core::query::Scalar;
use logbook_core::{Object, ObjectRef, Timestamp};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};
use std::sync::Arc;

const OBJECT_COLUMNS: &str =
    "object_type, object_id, name, state, parent_type, parent_id, uri, attributes, domain_id, updated";

#[async_trait]
impl ObjectStore for SqliteStore {
    async fn put_object(&self, update: ObjectUpdate) -> Result<Object> {
        self.writer
            .write(move |conn, batch| {
                let object = apply_update(conn, update.clone())?;
                batch
                    .announcements
                    .push(Announcement::Object(ObjectChange::Updated(Arc::new(
                        object.clone(),
                    ))));
                Ok(object)
            })
            .await
    }

    async fn get_object(&self, key: &ObjectRef) -> Result<Option<Object>> {
        let key = key.clone();
        self.readers.read(move |conn| load(conn, &key)).await
    }

    async fn find_object_by_uri(&self, uri: &str) -> Result<Option<Object>> {
        let uri = uri.to_string();
        self.readers
            .read(move |conn| {
                let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE uri = ?1 LIMIT 1");
                conn.query_row(&sql, [uri], read_object)
                    .optional()?
                    .transpose()
            })
            .await
    }

    async fn remove_object(&self, key: &ObjectRef) -> Result<bool> {
        let key = key.clone();
        self.writer
            .write(move |conn, batch| remove(conn, batch, key.clone()))
            .await
    }

    async fn append_with_objects(
        &self,
        records: RecordBatch,
        writes: Vec<ObjectWrite>,
    ) -> Result<Appended> {
        let append = records.into_prepared();
        self.writer
            .write(move |conn, batch| {
                let appended = append.insert(conn, batch)?;
                for write in writes.iter().cloned() {
                    match write {
                        ObjectWrite::Put(update) => {
                            let object = apply_update(conn, *update)?;
                            batch
                                .announcements
                                .push(Announcement::Object(ObjectChange::Updated(Arc::new(
                                    object,
                                ))));
                        }
                        ObjectWrite::Remove(key) => {
                            remove(conn, batch, key)?;
                        }
                    }
                }
                Ok(appended)
            })
            .await
    }

    async fn descendants(&self, key: &ObjectRef, limit: u64) -> Result<Vec<ObjectRef>> {
        let key = key.clone();
        self.readers
            .read(move |conn| descendants(conn, &key, limit))
            .await
    }

    async fn related_objects(&self, key: &ObjectRef) -> Result<Vec<Object>> {
        let key = key.clone();
        self.readers
            .read(move |conn| {
                // Ancestors walk up the parent links; descendants walk down. Depth is
                // bounded so a cycle written by a client cannot loop forever.
                let sql = format!(
                    "WITH RECURSIVE
                       up(t, i, depth) AS (
                         SELECT ?1, ?2, 0
                         UNION
                         SELECT o.parent_type, o.parent_id, up.depth + 1 FROM objects o
                           JOIN up ON o.object_type = up.t AND o.object_id = up.i
                           WHERE o.parent_type IS NOT NULL AND up.depth < 32),
                       down(t, i, depth) AS (
                         SELECT ?1, ?2, 0
                         UNION
                         SELECT o.object_type, o.object_id, down.depth + 1 FROM objects o
                           JOIN down ON o.parent_type = down.t AND o.parent_id = down.i
                           WHERE down.depth < 32)
                     SELECT {OBJECT_COLUMNS} FROM objects
                     WHERE (object_type, object_id) IN (SELECT t, i FROM up UNION SELECT t, i FROM down)
                     ORDER BY object_type, object_id"
                );
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map([&key.object_type, &key.object_id], read_object)?;
                let mut objects = Vec::new();
                for row in rows {
                    objects.push(row??);
                }
                Ok(objects)
            })
            .await
    }

    async fn list_objects(&self, query: &ObjectQuery) -> Result<(Vec<Object>, u64)> {
        let query = query.clone();
        self.readers
            .read(move |conn| {
                let mut b = SqlBuilder::new(Placeholders::Question);
                let filter = object_filter(&mut b, &query);
                super::counted_page(
                    conn,
                    "objects",
                    OBJECT_COLUMNS,
                    &filter,
                    "object_type, object_id",
                    &b.params,
                    (query.limit, query.offset),
                    read_object,
                )
            })
            .await
    }
}

/// The WHERE clause of an object listing, for both stores.
pub fn object_filter(b: &mut SqlBuilder, query: &ObjectQuery) -> String {
    let mut parts = vec!["1=1".to_string()];
    let mut list = |b: &mut SqlBuilder, column: &str, values: &[String]| {
        if !values.is_empty() {
            let ps: Vec<String> = values
                .iter()
                .map(|v| b.bind(Scalar::Text(v.clone())))
                .collect();
            parts.push(format!("{column} IN ({})", ps.join(", ")));
        }
    };
    list(b, "object_type", &query.types);
    list(b, "state", &query.states);
    match &query.domains {
        Some(domains) if domains.is_empty() => parts.push("1=0".into()),
        Some(domains) => list(b, "domain_id", domains),
        None => {}
    }
    match &query.parent {
        None => {}
        Some(None) => parts.push("parent_type IS NULL".into()),
        Some(Some(parent)) => {
            let t = b.bind(Scalar::Text(parent.object_type.clone()));
            let i = b.bind(Scalar::Text(parent.object_id.clone()));
            parts.push(format!("parent_type = {t} AND parent_id = {i}"));
        }
    }
    parts.join(" AND ")
}

/// The keys below `key`, as [`crate::ObjectStore::descendants`] describes.
fn descendants(conn: &Connection, key: &ObjectRef, limit: u64) -> Result<Vec<ObjectRef>> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE down(t, i, depth) AS (
           SELECT ?1, ?2, 0
           UNION
           SELECT o.object_type, o.object_id, down.depth + 1 FROM objects o
             JOIN down ON o.parent_type = down.t AND o.parent_id = down.i
             WHERE down.depth < 32)
         SELECT DISTINCT t, i FROM down WHERE NOT (t = ?1 AND i = ?2)
         ORDER BY t, i LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        rusqlite::params![key.object_type, key.object_id, limit],
        |row| {
            Ok(ObjectRef::new(
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
            ))
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn load(conn: &Connection, key: &ObjectRef) -> Result<Option<Object>> {
    let sql =
        format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE object_type = ?1 AND object_id = ?2");
    conn.query_row(&sql, [&key.object_type, &key.object_id], read_object)
        .optional()?
        .transpose()
}

fn remove(conn: &Connection, batch: &mut super::writer::Batch, key: ObjectRef) -> Result<bool> {
    let removed = conn.execute(
        "DELETE FROM objects WHERE object_type = ?1 AND object_id = ?2",
        [&key.object_type, &key.object_id],
    )? > 0;
    if removed {
        batch
            .announcements
            .push(Announcement::Object(ObjectChange::Removed(key)));
    }
    Ok(removed)
}

fn apply_update(conn: &Connection, update: ObjectUpdate) -> Result<Object> {
    let key = update.key.clone().ok_or_else(|| StoreError::Invalid {
        field: "object".into(),
        problem: "type and id are required".into(),
    })?;
    let mut object = load(conn, &key)?.unwrap_or(Object {
        key: key.clone(),
        name: None,
        state: None,
        parent: None,
        uri: None,
        attributes: Map::new(),
        domain_id: None,
        updated: Timestamp::now(),
    });
    merge(&mut object, update);
    object.updated = Timestamp::now();
    let attributes = Value::Object(object.attributes.clone()).to_string();
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        rusqlite::params![
            object.key.object_type,
            object.key.object_id,
            object.name,
            object.state,
            object.parent.as_ref().map(|p| &p.object_type),
            object.parent.as_ref().map(|p| &p.object_id),
            object.uri,
            attributes,
            object.domain_id,
            object.updated.micros(),
        ],
    )?;
    Ok(object)
}

/// Applies the fields an update sets; attributes merge key by key.
pub fn merge(object: &mut Object, update: ObjectUpdate) {
    if let Some(name) = update.name {
        object.name = Some(name);
    }
    if let Some(state) = update.state {
        object.state = Some(state);
    }
    if let Some(parent) = update.parent {
        object.parent = parent;
    }
    if let Some(uri) = update.uri {
        object.uri = Some(uri);
    }
    if let Some(domain) = update.domain_id {
        object.domain_id = Some(domain);
    }
    for (k, v) in update.attributes.unwrap_or_default() {
        if v.is_null() {
            object.attributes.remove(&k);
        } else {
            object.attributes.insert(k, v);
        }
    }
}

fn read_object(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Object>> {
    let parent_type: Option<String> = row.get(4)?;
    let parent_id: Option<String> = row.get(5)?;
    let attributes: String = row.get(7)?;
    let attributes = match serde_json::from_str::<Value>(&attributes) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Ok(Err(StoreError::Internal(
                "object attributes are not a JSON object".into(),
            )))
        }
    };
    Ok(Ok(Object {
        key: ObjectRef::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
        name: row.get(2)?,
        state: row.get(3)?,
        parent: parent_type
            .zip(parent_id)
            .map(|(t, i)| ObjectRef::new(t, i)),
        uri: row.get(6)?,
        attributes,
        domain_id: row.get(8)?,
        updated: Timestamp(row.get(9)?),
    }))
}
