//! Tracked actions and their log lines in SQLite.

use super::writer::{Announcement, Batch};
use super::SqliteStore;
use crate::notifier::ActionLogAppended;
use crate::sql::{Placeholders, SqlBuilder};
use crate::{ActionLogLine, ActionQuery, ActionStore, Result, StoreError};
use async_trait::async_trait;
use logbook_core::query::Scalar;
use logbook_core::{Action, ActionState, NewAction, Timestamp};
use rusqlite::{Connection, OptionalExtension};
use std::sync::Arc;

const ACTION_COLUMNS: &str = "uuid, object, action, method, path, user_agent, start_date, end_date, state, ip, location, is_user_action, can_be_canceled, can_be_retried, \"user\", domain_id, retry_of";

#[async_trait]
impl ActionStore for SqliteStore {
    async fn create_action(&self, new: NewAction) -> Result<Action> {
        self.writer
            .write(move |conn, batch| insert_action(conn, batch, new.clone()))
            .await
    }

    async fn get_action(&self, uuid: &str) -> Result<Option<Action>> {
        let uuid = uuid.to_string();
        self.readers.read(move |conn| load(conn, &uuid)).await
    }

    async fn list_actions(&self, query: &ActionQuery) -> Result<(Vec<Action>, u64)> {
        let query = query.clone();
        self.readers
            .read(move |conn| {
                let mut b = SqlBuilder::new(Placeholders::Question);
                let filter = action_filter(&mut b, &query);
                super::counted_page(
                    conn,
                    "actions",
                    ACTION_COLUMNS,
                    &filter,
                    "start_date, seq",
                    &b.params,
                    (query.limit, query.offset),
                    read_action,
                )
            })
            .await
    }

    async fn transition_action(
        &self,
        uuid: &str,
        to: ActionState,
        end_date: Option<Timestamp>,
    ) -> Result<Action> {
        let uuid = uuid.to_string();
        self.writer
            .write(move |conn, batch| apply_transition(conn, batch, &uuid, to, end_date))
            .await
    }

    async fn append_action_logs(
        &self,
        uuid: &str,
        lines: Vec<String>,
    ) -> Result<Vec<ActionLogLine>> {
        let uuid = uuid.to_string();
        self.writer
            .write(move |conn, batch| {
                if load(conn, &uuid)?.is_none() {
                    return Err(StoreError::NotFound);
                }
                let last: i64 = conn.query_row(
                    "SELECT coalesce(max(seq), 0) FROM action_logs WHERE uuid = ?1",
                    [&uuid],
                    |r| r.get(0),
                )?;
                let ts = Timestamp::now();
                let mut insert = conn.prepare_cached(
                    "INSERT INTO action_logs (uuid, seq, ts, line) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut appended = Vec::with_capacity(lines.len());
                for (i, line) in lines.iter().cloned().enumerate() {
                    let seq = last + 1 + i as i64;
                    insert.execute(rusqlite::params![uuid, seq, ts.micros(), line])?;
                    appended.push(ActionLogLine { seq, ts, line });
                }
                batch
                    .announcements
                    .push(Announcement::ActionLogs(ActionLogAppended {
                        uuid: uuid.clone(),
                        lines: Arc::new(appended.clone()),
                    }));
                Ok(appended)
            })
            .await
    }

    async fn action_logs(&self, uuid: &str, tail: u64) -> Result<Vec<ActionLogLine>> {
        let uuid = uuid.to_string();
        self.readers
            .read(move |conn| {
                let tail = i64::try_from(tail).unwrap_or(i64::MAX);
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, ts, line FROM (SELECT seq, ts, line FROM action_logs WHERE uuid = ?1 \
                     ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
                )?;
                let rows = stmt.query_map(rusqlite::params![uuid, tail], read_line)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn action_logs_after(
        &self,
        uuid: &str,
        seq: i64,
        limit: u64,
    ) -> Result<Vec<ActionLogLine>> {
        let uuid = uuid.to_string();
        self.readers
            .read(move |conn| {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, ts, line FROM action_logs WHERE uuid = ?1 AND seq > ?2 \
                     ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt.query_map(rusqlite::params![uuid, seq, limit], read_line)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}

fn read_line(row: &rusqlite::Row<'_>) -> rusqlite::Result<ActionLogLine> {
    Ok(ActionLogLine {
        seq: row.get(0)?,
        ts: Timestamp(row.get(1)?),
        line: row.get(2)?,
    })
}

/// Inserts a new action (its uuid chosen here) inside a writer batch.
pub(super) fn insert_action(
    conn: &Connection,
    batch: &mut Batch,
    new: NewAction,
) -> Result<Action> {
    let action = new.into_action(uuid::Uuid::new_v4().to_string());
    let seq = batch.next_action_seq;
    batch.next_action_seq += 1;
    conn.execute(
        &format!("INSERT INTO actions (seq, {ACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"),
        rusqlite::params![
            seq,
            action.uuid,
            action.object,
            action.action,
            action.method,
            action.path,
            action.user_agent,
            action.start_date.micros(),
            action.end_date.map(Timestamp::micros),
            action.state.name(),
            action.ip,
            action.location,
            action.is_user_action,
            action.can_be_canceled,
            action.can_be_retried,
            action.user,
            action.domain_id,
            action.retry_of,
        ],
    )?;
    batch
        .announcements
        .push(Announcement::Action(Box::new(action.clone())));
    Ok(action)
}

/// Moves an action if its lifecycle allows it, inside a writer batch; the check and
/// the update are under the same write lock, so no other move can come between.
pub(super) fn apply_transition(
    conn: &Connection,
    batch: &mut Batch,
    uuid: &str,
    to: ActionState,
    end_date: Option<Timestamp>,
) -> Result<Action> {
    let mut action = load(conn, uuid)?.ok_or(StoreError::NotFound)?;
    action
        .transition(to, end_date)
        .map_err(|from| StoreError::Conflict { from, to })?;
    conn.execute(
        "UPDATE actions SET state = ?1, end_date = ?2 WHERE uuid = ?3",
        rusqlite::params![
            action.state.name(),
            action.end_date.map(Timestamp::micros),
            uuid
        ],
    )?;
    batch
        .announcements
        .push(Announcement::Action(Box::new(action.clone())));
    Ok(action)
}

/// The WHERE clause for an action listing; shared SQL shape with the other store.
pub fn action_filter(b: &mut SqlBuilder, query: &ActionQuery) -> String {
    let mut parts = vec!["1=1".to_string()];
    let mut list = |b: &mut SqlBuilder, column: &str, values: Vec<Scalar>| {
        if !values.is_empty() {
            let ps: Vec<String> = values.into_iter().map(|v| b.bind(v)).collect();
            parts.push(format!("{column} IN ({})", ps.join(", ")));
        }
    };
    list(
        b,
        "uuid",
        query.uuids.iter().cloned().map(Scalar::Text).collect(),
    );
    list(
        b,
        "state",
        query
            .states
            .iter()
            .map(|s| Scalar::Text(s.name().into()))
            .collect(),
    );
    list(
        b,
        "object",
        query.objects.iter().cloned().map(Scalar::Text).collect(),
    );
    if let Some(domains) = &query.domains {
        let ps: Vec<String> = domains
            .iter()
            .map(|d| b.bind(Scalar::Text(d.clone())))
            .collect();
        parts.push(if ps.is_empty() {
            "1=0".into()
        } else {
            format!("domain_id IN ({})", ps.join(", "))
        });
    }
    for (column, op, bound) in [
        ("start_date", ">=", query.start_from),
        ("start_date", "<=", query.start_to),
        ("end_date", ">=", query.end_from),
        ("end_date", "<=", query.end_to),
    ] {
        if let Some(ts) = bound {
            let p = b.bind(Scalar::Int(ts.micros()));
            parts.push(format!("{column} {op} {p}"));
        }
    }
    parts.join(" AND ")
}

fn load(conn: &Connection, uuid: &str) -> Result<Option<Action>> {
    conn.query_row(
        &format!("SELECT {ACTION_COLUMNS} FROM actions WHERE uuid = ?1"),
        [uuid],
        read_action,
    )
    .optional()?
    .transpose()
}

fn read_action(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Action>> {
    let state_name: String = row.get(8)?;
    let Some(state) = ActionState::parse(&state_name) else {
        return Ok(Err(StoreError::Internal(format!(
            "action has unknown state {state_name:?}"
        ))));
    };
    Ok(Ok(Action {
        uuid: row.get(0)?,
        object: row.get(1)?,
        action: row.get(2)?,
        method: row.get(3)?,
        path: row.get(4)?,
        user_agent: row.get(5)?,
        start_date: Timestamp(row.get(6)?),
        end_date: row.get::<_, Option<i64>>(7)?.map(Timestamp),
        state,
        ip: row.get(9)?,
        location: row.get(10)?,
        is_user_action: row.get(11)?,
        can_be_canceled: row.get(12)?,
        can_be_retried: row.get(13)?,
        user: row.get(14)?,
        domain_id: row.get(15)?,
        retry_of: row.get(16)?,
    }))
}
