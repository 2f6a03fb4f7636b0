//! Tracked actions and their log lines in PostgreSQL. Lifecycle moves and log
//! appends lock the action's row, so two nodes cannot both move it or number two
//! log lines alike.

use super::PostgresStore;
use crate::notifier::ActionLogAppended;
use crate::sql::{Placeholders, SqlBuilder};
use crate::sqlite::actions::action_filter;
use crate::{ActionLogLine, ActionQuery, ActionStore, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use logbook_core::{Action, ActionState, NewAction, Timestamp};
use serde_json::json;
use std::sync::Arc;

const ACTION_COLUMNS: &str = "uuid, object, action, method, path, user_agent, start_date, end_date, state, ip, location, is_user_action, can_be_canceled, can_be_retried, \"user\", domain_id, retry_of";

#[async_trait]
impl ActionStore for PostgresStore {
    async fn create_action(&self, new: NewAction) -> Result<Action> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let action = insert(&tx, new).await?;
        self.notify(&tx, json!({"k": "a", "u": action.uuid}))
            .await?;
        tx.commit().await?;
        self.notifier.publish_action(Arc::new(action.clone()));
        Ok(action)
    }

    async fn get_action(&self, uuid: &str) -> Result<Option<Action>> {
        let client = self.pool.get().await?;
        load(&client, uuid).await
    }

    async fn list_actions(&self, query: &ActionQuery) -> Result<(Vec<Action>, u64)> {
        let mut b = SqlBuilder::new(Placeholders::Dollar);
        let filter = action_filter(&mut b, query);
        super::counted_page(
            &self.pool,
            "actions",
            ACTION_COLUMNS,
            (&filter, &b.params),
            "start_date, seq",
            (query.limit, query.offset),
            read_action,
        )
        .await
    }

    async fn transition_action(
        &self,
        uuid: &str,
        to: ActionState,
        end_date: Option<Timestamp>,
    ) -> Result<Action> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let action = transition(&tx, uuid, to, end_date).await?;
        self.notify(&tx, json!({"k": "a", "u": uuid})).await?;
        tx.commit().await?;
        self.notifier.publish_action(Arc::new(action.clone()));
        Ok(action)
    }

    async fn append_action_logs(
        &self,
        uuid: &str,
        lines: Vec<String>,
    ) -> Result<Vec<ActionLogLine>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if load_for_update(&tx, uuid).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let last: i64 = tx
            .query_one(
                "SELECT coalesce(max(seq), 0)::bigint FROM action_logs WHERE uuid = $1",
                &[&uuid],
            )
            .await?
            .get(0);
        let ts = Timestamp::now();
        let appended: Vec<ActionLogLine> = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| ActionLogLine {
                seq: last + 1 + i as i64,
                ts,
                line,
            })
            .collect();
        let seqs: Vec<i64> = appended.iter().map(|l| l.seq).collect();
        let texts: Vec<&str> = appended.iter().map(|l| l.line.as_str()).collect();
        tx.execute(
            "INSERT INTO action_logs (uuid, seq, ts, line) \
             SELECT $1, s, $2, l FROM unnest($3::bigint[], $4::text[]) AS t(s, l)",
            &[&uuid, &ts.micros(), &seqs, &texts],
        )
        .await?;
        if let (Some(from), Some(to)) = (seqs.first(), seqs.last()) {
            self.notify(&tx, json!({"k": "l", "u": uuid, "from": from, "to": to}))
                .await?;
        }
        tx.commit().await?;
        self.notifier.publish_action_logs(ActionLogAppended {
            uuid: uuid.to_string(),
            lines: Arc::new(appended.clone()),
        });
        Ok(appended)
    }

    async fn action_logs(&self, uuid: &str, tail: u64) -> Result<Vec<ActionLogLine>> {
        let client = self.pool.get().await?;
        let tail = i64::try_from(tail).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT seq, ts, line FROM (SELECT seq, ts, line FROM action_logs WHERE uuid = $1 \
                 ORDER BY seq DESC LIMIT $2) AS last ORDER BY seq",
                &[&uuid, &tail],
            )
            .await?;
        rows.iter().map(read_line).collect()
    }

    async fn action_logs_after(
        &self,
        uuid: &str,
        seq: i64,
        limit: u64,
    ) -> Result<Vec<ActionLogLine>> {
        let client = self.pool.get().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT seq, ts, line FROM action_logs WHERE uuid = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
                &[&uuid, &seq, &limit],
            )
            .await?;
        rows.iter().map(read_line).collect()
    }
}

/// Inserts a new action inside `tx`.
pub async fn insert(tx: &impl GenericClient, new: NewAction) -> Result<Action> {
    let action = new.into_action(uuid::Uuid::new_v4().to_string());
    tx.execute(
        &format!(
            "INSERT INTO actions ({ACTION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ),
        &[
            &action.uuid,
            &action.object,
            &action.action,
            &action.method,
            &action.path,
            &action.user_agent,
            &action.start_date.micros(),
            &action.end_date.map(Timestamp::micros),
            &action.state.name(),
            &action.ip,
            &action.location,
            &action.is_user_action,
            &action.can_be_canceled,
            &action.can_be_retried,
            &action.user,
            &action.domain_id,
            &action.retry_of,
        ],
    )
    .await?;
    Ok(action)
}

/// Moves an action inside `tx`, under its row lock, if the lifecycle allows it.
pub async fn transition(
    tx: &impl GenericClient,
    uuid: &str,
    to: ActionState,
    end_date: Option<Timestamp>,
) -> Result<Action> {
    let mut action = load_for_update(tx, uuid)
        .await?
        .ok_or(StoreError::NotFound)?;
    action
        .transition(to, end_date)
        .map_err(|from| StoreError::Conflict { from, to })?;
    tx.execute(
        "UPDATE actions SET state = $1, end_date = $2 WHERE uuid = $3",
        &[
            &action.state.name(),
            &action.end_date.map(Timestamp::micros),
            &uuid,
        ],
    )
    .await?;
    Ok(action)
}

/// Log lines `from..=to` of an action (what another node's hint announced).
pub async fn lines_between(
    client: &impl GenericClient,
    uuid: &str,
    from: i64,
    to: i64,
) -> Result<Vec<ActionLogLine>> {
    let rows = client
        .query(
            "SELECT seq, ts, line FROM action_logs WHERE uuid = $1 AND seq BETWEEN $2 AND $3 \
             ORDER BY seq",
            &[&uuid, &from, &to],
        )
        .await?;
    rows.iter().map(read_line).collect()
}

fn read_line(row: &tokio_postgres::Row) -> Result<ActionLogLine> {
    Ok(ActionLogLine {
        seq: row.try_get(0)?,
        ts: Timestamp(row.try_get(1)?),
        line: row.try_get(2)?,
    })
}

pub async fn load(client: &impl GenericClient, uuid: &str) -> Result<Option<Action>> {
    client
        .query_opt(
            &format!("SELECT {ACTION_COLUMNS} FROM actions WHERE uuid = $1"),
            &[&uuid],
        )
        .await?
        .map(|row| read_action(&row))
        .transpose()
}

async fn load_for_update(client: &impl GenericClient, uuid: &str) -> Result<Option<Action>> {
    client
        .query_opt(
            &format!("SELECT {ACTION_COLUMNS} FROM actions WHERE uuid = $1 FOR UPDATE"),
            &[&uuid],
        )
        .await?
        .map(|row| read_action(&row))
        .transpose()
}

fn read_action(row: &tokio_postgres::Row) -> Result<Action> {
    let state_name: String = row.try_get(8)?;
    let state = ActionState::parse(&state_name)
        .ok_or_else(|| StoreError::Internal(format!("action has unknown state {state_name:?}")))?;
    Ok(Action {
        uuid: row.try_get(0)?,
        object: row.try_get(1)?,
        action: row.try_get(2)?,
        method: row.try_get(3)?,
        path: row.try_get(4)?,
        user_agent: row.try_get(5)?,
        start_date: Timestamp(row.try_get(6)?),
        end_date: row.try_get::<_, Option<i64>>(7)?.map(Timestamp),
        state,
        ip: row.try_get(9)?,
        location: row.try_get(10)?,
        is_user_action: row.try_get(11)?,
        can_be_canceled: row.try_get(12)?,
        can_be_retried: row.try_get(13)?,
        user: row.try_get(14)?,
        domain_id: row.try_get(15)?,
        retry_of: row.try_get(16)?,
    })
}
