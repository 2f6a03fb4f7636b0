//! The object registry in PostgreSQL. A change is read, merged and written under a
//! row lock, so concurrent updates through different nodes never lose one another.

use super::writer::append_in;
use super::PostgresStore;
use crate::notifier::ObjectChange;
use crate::sql::{Placeholders, SqlBuilder};
use crate::sqlite::objects::{merge, object_filter};
use crate::{
    Appended, ObjectQuery, ObjectStore, ObjectUpdate, ObjectWrite, RecordBatch, Result, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use logbook_core::{Object, ObjectRef, Timestamp};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const OBJECT_COLUMNS: &str =
    "object_type, object_id, name, state, parent_type, parent_id, uri, attributes::text, domain_id, updated";

#[async_trait]
impl ObjectStore for PostgresStore {
    async fn put_object(&self, update: ObjectUpdate) -> Result<Object> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let object = put(&tx, update).await?;
        self.notify_object(&tx, &object.key).await?;
        tx.commit().await?;
        self.notifier
            .publish_object(ObjectChange::Updated(Arc::new(object.clone())));
        Ok(object)
    }

    async fn append_with_objects(
        &self,
        records: RecordBatch,
        writes: Vec<ObjectWrite>,
    ) -> Result<Appended> {
        let records = records.into_records()?;
        if writes.is_empty() {
            // Plain appends are group-committed by the writer.
            return self.writer.append(records).await;
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The objects' row locks first (all of them, in key order, so that two
        // batches touching the same objects queue instead of deadlocking), then the
        // ids: concurrent batches then apply their object writes in the order of
        // their record ids.
        lock_objects(&tx, &writes).await?;
        let mut changes = Vec::with_capacity(writes.len());
        for write in writes {
            match write {
                ObjectWrite::Put(update) => {
                    let object = put(&tx, *update).await?;
                    self.notify_object(&tx, &object.key).await?;
                    changes.push(ObjectChange::Updated(Arc::new(object)));
                }
                ObjectWrite::Remove(key) => {
                    if remove(&tx, &key).await? {
                        self.notify_object(&tx, &key).await?;
                        changes.push(ObjectChange::Removed(key));
                    }
                }
            }
        }
        let stored = append_in(&tx, &self.target, records).await?;
        tx.commit().await?;
        super::writer::hint_committed(&self.target, &stored);
        // Give the connection back first: announcing may need one to catch up.
        drop(client);
        let appended = Appended {
            count: stored.len(),
            first_id: stored.first().map(|r| r.id),
            last_id: stored.last().map(|r| r.id),
        };
        self.publisher.announce(stored).await;
        for change in changes {
            self.notifier.publish_object(change);
        }
        Ok(appended)
    }

    async fn get_object(&self, key: &ObjectRef) -> Result<Option<Object>> {
        let client = self.pool.get().await?;
        load(&client, key).await
    }

    async fn find_object_by_uri(&self, uri: &str) -> Result<Option<Object>> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects WHERE uri = $1 \
                     ORDER BY object_type, object_id LIMIT 1"
                ),
                &[&uri],
            )
            .await?
            .map(|row| read_object(&row))
            .transpose()
    }

    async fn remove_object(&self, key: &ObjectRef) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let removed = remove(&tx, key).await?;
        if removed {
            self.notify_object(&tx, key).await?;
        }
        tx.commit().await?;
        if removed {
            self.notifier
                .publish_object(ObjectChange::Removed(key.clone()));
        }
        Ok(removed)
    }

    async fn descendants(&self, key: &ObjectRef, limit: u64) -> Result<Vec<ObjectRef>> {
        let client = self.pool.get().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "WITH RECURSIVE down(t, i, depth) AS (
                   SELECT $1::text COLLATE \"C\", $2::text COLLATE \"C\", 0
                   UNION
                   SELECT o.object_type, o.object_id, down.depth + 1 FROM objects o
                     JOIN down ON o.parent_type = down.t AND o.parent_id = down.i
                     WHERE down.depth < 32)
                 SELECT DISTINCT t, i FROM down WHERE NOT (t = $1 AND i = $2)
                 ORDER BY t, i LIMIT $3",
                &[&key.object_type, &key.object_id, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ObjectRef::new(
                    row.try_get::<_, String>(0)?,
                    row.try_get::<_, String>(1)?,
                ))
            })
            .collect()
    }

    async fn related_objects(&self, key: &ObjectRef) -> Result<Vec<Object>> {
        let client = self.pool.get().await?;
        // Ancestors walk up the parent links; descendants walk down. Depth is bounded
        // so a cycle written by a client cannot loop forever.
        let sql = format!(
            "WITH RECURSIVE
               up(t, i, depth) AS (
                 SELECT $1::text COLLATE \"C\", $2::text COLLATE \"C\", 0
                 UNION
                 SELECT o.parent_type, o.parent_id, up.depth + 1 FROM objects o
                   JOIN up ON o.object_type = up.t AND o.object_id = up.i
                   WHERE o.parent_type IS NOT NULL AND up.depth < 32),
               down(t, i, depth) AS (
                 SELECT $1::text COLLATE \"C\", $2::text COLLATE \"C\", 0
                 UNION
                 SELECT o.object_type, o.object_id, down.depth + 1 FROM objects o
                   JOIN down ON o.parent_type = down.t AND o.parent_id = down.i
                   WHERE down.depth < 32)
             SELECT {OBJECT_COLUMNS} FROM objects
             WHERE (object_type, object_id) IN (SELECT t, i FROM up UNION SELECT t, i FROM down)
             ORDER BY object_type, object_id"
        );
        let rows = client
            .query(&sql, &[&key.object_type, &key.object_id])
            .await?;
        rows.iter().map(read_object).collect()
    }

    async fn list_objects(&self, query: &ObjectQuery) -> Result<(Vec<Object>, u64)> {
        let mut b = SqlBuilder::new(Placeholders::Dollar);
        let filter = object_filter(&mut b, query);
        super::counted_page(
            &self.pool,
            "objects",
            OBJECT_COLUMNS,
            (&filter, &b.params),
            "object_type, object_id",
            (query.limit, query.offset),
            read_object,
        )
        .await
    }
}

impl PostgresStore {
    async fn notify_object(&self, tx: &Transaction<'_>, key: &ObjectRef) -> Result<()> {
        self.notify(
            tx,
            json!({"k": "o", "t": key.object_type, "i": key.object_id}),
        )
        .await
    }
}

/// Creates or merges into an object inside `tx`, under its row lock.
async fn put(tx: &Transaction<'_>, update: ObjectUpdate) -> Result<Object> {
    let key = update.key.clone().ok_or_else(|| StoreError::Invalid {
        field: "object".into(),
        problem: "type and id are required".into(),
    })?;
    // Make sure a row exists to lock, then merge under the lock.
    tx.execute(
        "INSERT INTO objects (object_type, object_id, updated) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        &[&key.object_type, &key.object_id, &Timestamp::now().micros()],
    )
    .await?;
    let row = tx
        .query_one(
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE object_type = $1 AND object_id = $2 FOR UPDATE"
            ),
            &[&key.object_type, &key.object_id],
        )
        .await?;
    let mut object = read_object(&row)?;
    merge(&mut object, update);
    object.updated = Timestamp::now();
    let attributes = Value::Object(object.attributes.clone()).to_string();
    tx.execute(
        "UPDATE objects SET name = $3, state = $4, parent_type = $5, parent_id = $6, uri = $7, \
         attributes = $8::text::json, domain_id = $9, updated = $10 \
         WHERE object_type = $1 AND object_id = $2",
        &[
            &object.key.object_type,
            &object.key.object_id,
            &object.name,
            &object.state,
            &object.parent.as_ref().map(|p| p.object_type.clone()),
            &object.parent.as_ref().map(|p| p.object_id.clone()),
            &object.uri,
            &attributes,
            &object.domain_id,
            &object.updated.micros(),
        ],
    )
    .await?;
    Ok(object)
}

async fn remove(tx: &Transaction<'_>, key: &ObjectRef) -> Result<bool> {
    Ok(tx
        .execute(
            "DELETE FROM objects WHERE object_type = $1 AND object_id = $2",
            &[&key.object_type, &key.object_id],
        )
        .await?
        > 0)
}

pub async fn load(client: &impl GenericClient, key: &ObjectRef) -> Result<Option<Object>> {
    client
        .query_opt(
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE object_type = $1 AND object_id = $2"
            ),
            &[&key.object_type, &key.object_id],
        )
        .await?
        .map(|row| read_object(&row))
        .transpose()
}

fn read_object(row: &tokio_postgres::Row) -> Result<Object> {
    let parent_type: Option<String> = row.try_get(4)?;
    let parent_id: Option<String> = row.try_get(5)?;
    let attributes: String = row.try_get(7)?;
    let attributes: Map<String, Value> = match serde_json::from_str::<Value>(&attributes) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(StoreError::Internal(
                "object attributes are not a JSON object".into(),
            ))
        }
    };
    Ok(Object {
        key: ObjectRef::new(row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?),
        name: row.try_get(2)?,
        state: row.try_get(3)?,
        parent: parent_type
            .zip(parent_id)
            .map(|(t, i)| ObjectRef::new(t, i)),
        uri: row.try_get(6)?,
        attributes,
        domain_id: row.try_get(8)?,
        updated: Timestamp(row.try_get(9)?),
    })
}

/// Locks the existing rows of the objects `writes` touch, in key order.
async fn lock_objects(tx: &Transaction<'_>, writes: &[ObjectWrite]) -> Result<()> {
    let mut keys: Vec<(&str, &str)> = writes
        .iter()
        .filter_map(|w| match w {
            ObjectWrite::Put(update) => update.key.as_ref(),
            ObjectWrite::Remove(key) => Some(key),
        })
        .map(|k| (k.object_type.as_str(), k.object_id.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let (types, ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    tx.execute(
        "SELECT 1 FROM objects o JOIN unnest($1::text[], $2::text[]) AS k (t, i) \
         ON o.object_type = k.t AND o.object_id = k.i \
         ORDER BY o.object_type, o.object_id FOR UPDATE OF o",
        &[&types, &ids],
    )
    .await?;
    Ok(())
}
