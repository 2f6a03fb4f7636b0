//! The object registry in PostgreSQL. A change is read, merged and written under a
//! row lock, so concurrent updates through different nodes never lose one another.

use super::PostgresStore;
use crate::notifier::ObjectChange;
use crate::sqlite::objects::merge;
use crate::{ObjectStore, ObjectUpdate, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use logbook_core::{Object, ObjectRef, Timestamp};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const OBJECT_COLUMNS: &str =
    "object_type, object_id, name, state, parent_type, parent_id, uri, attributes::text, domain_id, updated";

#[async_trait]
impl ObjectStore for PostgresStore {
    async fn put_object(&self, update: ObjectUpdate) -> Result<Object> {
        let key = update.key.clone().ok_or_else(|| StoreError::Invalid {
            field: "object".into(),
            problem: "type and id are required".into(),
        })?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
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
        self.notify(
            &tx,
            json!({"k": "o", "t": key.object_type, "i": key.object_id}),
        )
        .await?;
        tx.commit().await?;
        self.notifier
            .publish_object(ObjectChange::Updated(Arc::new(object.clone())));
        Ok(object)
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
        let removed = tx
            .execute(
                "DELETE FROM objects WHERE object_type = $1 AND object_id = $2",
                &[&key.object_type, &key.object_id],
            )
            .await?
            > 0;
        if removed {
            self.notify(
                &tx,
                json!({"k": "o", "t": key.object_type, "i": key.object_id}),
            )
            .await?;
        }
        tx.commit().await?;
        if removed {
            self.notifier
                .publish_object(ObjectChange::Removed(key.clone()));
        }
        Ok(removed)
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
