//! `GET /api/v1/log` (system-log records, newest first) and `DELETE /api/v1/log`
//! (an administrator's clear), with the filters the list and the export share.

use super::{caller, reject_unknown, user_of, Answer};
use crate::auth::Principal;
use crate::clear::{self, Clearing};
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use logbook_core::{Field, Kind, Query, Record, Timestamp};
use serde_json::{json, Value};

/// The document's default page size.
pub(super) const DEFAULT_LIMIT: u64 = 20;
/// The largest page one call returns; larger requests get this many.
pub(super) const MAX_LIMIT: u64 = 1000;

/// The filters of the list and the export: `time_start`, `time_end`, `user`,
/// `level` and `category` (comma lists) and `text`, on `kind: log` records.
pub(super) fn filters(params: &Params, query: Query) -> Result<Query, ApiError> {
    let mut query = query.kinds(&[Kind::Log]);
    if let Some(start) = epoch(params, "time_start")? {
        query = query.since(start);
    }
    if let Some(end) = epoch(params, "time_end")? {
        query = query.until(end);
    }
    if let Some(user) = params.non_empty("user") {
        query = query.values(Field::User, &[user.trim()])?;
    }
    for (name, field) in [("level", Field::Level), ("category", Field::Category)] {
        let values = params.list(name);
        if !values.is_empty() {
            query = query.values(field, &values).map_err(|e| {
                // Name the QNAP parameter, which is also the core field here.
                ApiError::bad_request(name, e.problem)
            })?;
        }
    }
    if let Some(text) = params.non_empty("text") {
        query = query.text_contains(text);
    }
    Ok(query)
}

/// An epoch bound; `0` or absent is unbounded, as the document says. `time_end`
/// covers the whole second it names, since the list shows whole seconds.
fn epoch(params: &Params, name: &str) -> Result<Option<Timestamp>, ApiError> {
    let Some(seconds) = params.parsed::<f64>(name, "epoch seconds")? else {
        return Ok(None);
    };
    if seconds == 0.0 {
        return Ok(None);
    }
    let bound = if name == "time_end" && seconds.fract() == 0.0 {
        seconds + 0.999_999
    } else {
        seconds
    };
    Timestamp::from_epoch_seconds(bound)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(name, format!("{seconds} is not epoch seconds in range"))
        })
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = caller(principal)?;
    let query = principal.scope(list_query(raw.as_deref())?);
    let page = state.store.query(&query).await?;
    Ok(Json(Value::Array(
        page.records.iter().map(log_json).collect(),
    )))
}

/// The list's query string.
pub(super) fn list_query(raw: Option<&str>) -> Result<Query, ApiError> {
    let params = Params::parse(raw)?;
    let mut query = filters(&params, Query::newest_first())?;
    query.limit = Some(
        params
            .parsed::<u64>("limit", "a non-negative integer")?
            .unwrap_or(DEFAULT_LIMIT)
            .min(MAX_LIMIT),
    );
    query.offset = params
        .parsed::<u64>("offset", "a non-negative integer")?
        .unwrap_or(0);
    reject_unknown(&params)?;
    Ok(query)
}

/// One row of the list, with the document's keys (alphabetical, as it shows them).
fn log_json(record: &Record) -> Value {
    json!({
        "category": record.category,
        "id": record.id,
        "level": record.level.map(|l| l.name()),
        "message": record.message,
        "ts": record.ts.epoch_seconds(),
        "user": user_of(record),
    })
}

/// Deletes every system-log record (events and journal entries stay); the clear
/// engine journals who cleared how many.
pub(super) async fn clear(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = caller(principal)?;
    principal.require_admin()?;
    {
        let params = Params::parse(raw.as_deref())?;
        reject_unknown(&params)?;
    }
    let logs = Query::newest_first().kinds(&[Kind::Log]);
    let deleted = clear::clear(&state, &principal, logs, CLEARING).await?;
    Ok(Json(json!({"records": deleted})))
}

const CLEARING: Clearing = Clearing {
    action: "logbook.log.clear",
    object_type: "log",
    records: "system log records",
};
