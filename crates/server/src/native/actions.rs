//! `/logbook/v1/actions`: how a platform drives tracked operations (create, move
//! along the lifecycle, append log lines) and reads them back with native names.

use crate::actions;
use crate::auth::Principal;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::params::{parse_date, parse_state, Params};
use crate::scoped;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use logbook_core::{Action, ActionState, NewAction, Timestamp};
use logbook_store::ActionQuery;
use serde_json::{json, Map, Value};

/// Page size of a listing without `limit`, and the largest one accepted.
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

#[utoipa::path(
    post, path = "/logbook/v1/actions", tag = "actions",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry within 24 h answer the original answer and write nothing (at most 255 characters); the same key with another body answers 422")),
    request_body = super::openapi::NewAction,
    responses(
        (status = 201, description = "The new action", body = super::openapi::Action),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = super::openapi::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used with another body", body = super::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object_body(&state, body).await?;
    let new = new_action_from_json(body)?;
    let action = actions::create(&state, &principal, new).await?;
    Ok((StatusCode::CREATED, Json(action_json(&action))))
}

#[utoipa::path(
    patch, path = "/logbook/v1/actions/{uuid}", tag = "actions",
    params(("uuid" = String, Path, description = "The action's uuid")),
    request_body = super::openapi::ActionUpdate,
    responses(
        (status = 200, description = "The action after the move", body = super::openapi::Action),
        (status = 404, description = "No such action", body = super::openapi::ErrorBody),
        (status = 409, description = "The lifecycle does not allow this move", body = super::openapi::ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = object_body(&state, body).await?;
    let (mut to, mut end_date) = (None, None);
    for (key, value) in body {
        match key.as_str() {
            "state" => to = Some(state_value(&value)?),
            "end_date" => end_date = date_value(&key, &value)?,
            _ => {
                return Err(ApiError::bad_request(
                    key,
                    "unknown field (state, end_date)",
                ))
            }
        }
    }
    let to = to.ok_or_else(|| ApiError::bad_request("state", "is required"))?;
    let action = actions::transition(&state, &principal, &uuid, to, end_date).await?;
    Ok(Json(action_json(&action)))
}

#[utoipa::path(
    post, path = "/logbook/v1/actions/{uuid}/logs", tag = "actions",
    params(("uuid" = String, Path, description = "The action's uuid")),
    request_body = super::openapi::LogLines,
    responses(
        (status = 201, description = "Appended", body = super::openapi::LogsAppended),
        (status = 404, description = "No such action", body = super::openapi::ErrorBody),
        (status = 409, description = "The action has finished", body = super::openapi::ErrorBody),
    )
)]
pub async fn append_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let lines = match parse_json(&bytes)? {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| log_line(item, &format!("[{i}].log")))
            .collect::<Result<Vec<_>, _>>()?,
        item => vec![log_line(item, "log")?],
    };
    if lines.is_empty() {
        return Err(ApiError::bad_request("body", "has no log lines"));
    }
    let appended = actions::append_logs(&state, &principal, &uuid, lines).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "appended": appended.len(),
            "first_seq": appended.first().map(|l| l.seq),
            "last_seq": appended.last().map(|l| l.seq),
        })),
    ))
}

#[utoipa::path(
    get, path = "/logbook/v1/actions/{uuid}", tag = "actions",
    params(("uuid" = String, Path, description = "The action's uuid")),
    responses(
        (status = 200, description = "The action", body = super::openapi::Action),
        (status = 404, description = "No such action", body = super::openapi::ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let action = scoped::action(&state, &principal, &uuid).await?;
    Ok(Json(action_json(&action)))
}

#[utoipa::path(
    get, path = "/logbook/v1/actions", tag = "actions",
    params(
        ("uuid" = Option<String>, Query, description = "Uuids (comma list)"),
        ("state" = Option<String>, Query, description = "States (comma list): Pending, In progress, Canceling, Canceled, Success, Failed"),
        ("start_from" = Option<String>, Query, description = "Started at or after (RFC 2822, ISO 8601 or epoch seconds)"),
        ("start_to" = Option<String>, Query, description = "Started at or before"),
        ("end_from" = Option<String>, Query, description = "Ended at or after"),
        ("end_to" = Option<String>, Query, description = "Ended at or before"),
        ("object" = Option<String>, Query, description = "Actions on the object with this URI"),
        ("include_related" = Option<bool>, Query, description = "With object: also actions on its descendants"),
        ("limit" = Option<u64>, Query, maximum = 1000, description = "Page size (default 100)"),
        ("offset" = Option<u64>, Query, maximum = 9223372036854775807_u64),
    ),
    responses((status = 200, description = "A page of actions, newest first", body = super::openapi::ActionList))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::strict(raw.as_deref())?;
    let mut query = ActionQuery {
        uuids: params.list("uuid"),
        states: params
            .list("state")
            .iter()
            .map(|s| parse_state(s))
            .collect::<Result<_, _>>()?,
        start_from: date_param(&params, "start_from")?,
        start_to: date_param(&params, "start_to")?,
        end_from: date_param(&params, "end_from")?,
        end_to: date_param(&params, "end_to")?,
        offset: params.offset()?,
        limit: Some(
            params
                .parsed("limit", "a non-negative integer")?
                .unwrap_or(DEFAULT_LIMIT),
        ),
        ..ActionQuery::default()
    };
    if query.limit > Some(MAX_LIMIT) {
        return Err(ApiError::bad_request(
            "limit",
            format!("may be at most {MAX_LIMIT}"),
        ));
    }
    let object = params.non_empty("object").map(str::to_string);
    let related = params
        .parsed::<bool>("include_related", "true or false")?
        .unwrap_or(false);
    params.reject_unknown()?;
    let related_to = match (&object, related) {
        (Some(uri), true) => Some(uri.as_str()),
        (Some(uri), false) => {
            query.objects = vec![uri.clone()];
            None
        }
        (None, true) => return Err(ApiError::bad_request("include_related", "needs object")),
        (None, false) => None,
    };
    let (offset, limit) = (query.offset, query.limit);
    let (found, total) = actions::list(&state, &principal, query, related_to).await?;
    Ok(Json(json!({
        "actions": found.iter().map(action_json).collect::<Vec<_>>(),
        "total": total,
        "offset": offset,
        "limit": limit,
    })))
}

async fn object_body(state: &AppState, body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    match parse_json(&bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("body", "must be a JSON object")),
    }
}

/// Reads the document's attributes of a new action, naming the first bad field.
pub fn new_action_from_json(body: Map<String, Value>) -> Result<NewAction, ApiError> {
    let mut new = NewAction::default();
    let mut named_action = false;
    for (key, value) in body {
        let field = key.as_str();
        match field {
            "action" => {
                new.action = text(field, &value)?.unwrap_or_default();
                named_action = !new.action.trim().is_empty();
            }
            "object" => new.object = text(field, &value)?,
            "method" => new.method = text(field, &value)?,
            "path" => new.path = text(field, &value)?,
            "user_agent" => new.user_agent = text(field, &value)?,
            "ip" => new.ip = text(field, &value)?,
            "location" => new.location = text(field, &value)?,
            "user" => new.user = text(field, &value)?,
            "domain_id" => new.domain_id = text(field, &value)?,
            "start_date" => new.start_date = date_value(field, &value)?,
            "end_date" => new.end_date = date_value(field, &value)?,
            "state" => new.state = Some(state_value(&value)?),
            "is_user_action" => new.is_user_action = flag(field, &value)?,
            "can_be_canceled" => new.can_be_canceled = flag(field, &value)?,
            "can_be_retried" => new.can_be_retried = flag(field, &value)?,
            // Read-only, accepted so an answer can be sent back as it came.
            "uuid" | "resource_uri" | "retry_of" => {}
            _ => return Err(ApiError::bad_request(key, "unknown field")),
        }
    }
    if !named_action {
        return Err(ApiError::bad_request(
            "action",
            "is required (the operation's name)",
        ));
    }
    Ok(new)
}

fn text(field: &str, value: &Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::bad_request(field, "must be a string")),
    }
}

fn flag(field: &str, value: &Value) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| ApiError::bad_request(field, "must be true or false"))
}

fn state_value(value: &Value) -> Result<ActionState, ApiError> {
    match value {
        Value::String(s) => parse_state(s),
        _ => Err(ApiError::bad_request("state", "must be a string")),
    }
}

fn date_value(field: &str, value: &Value) -> Result<Option<Timestamp>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => parse_date(field, s).map(Some),
        Value::Number(n) => n
            .as_f64()
            .and_then(Timestamp::from_epoch_seconds)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(field, "is out of range")),
        _ => Err(ApiError::bad_request(
            field,
            "must be a date string or epoch seconds",
        )),
    }
}

fn date_param(params: &Params, name: &str) -> Result<Option<Timestamp>, ApiError> {
    params
        .non_empty(name)
        .map(|t| parse_date(name, t))
        .transpose()
}

fn log_line(item: Value, field: &str) -> Result<String, ApiError> {
    match item {
        Value::Object(mut map) => match map.remove("log") {
            Some(Value::String(line)) if map.is_empty() => Ok(line),
            Some(Value::String(_)) => Err(ApiError::bad_request(field, "only `log` is accepted")),
            _ => Err(ApiError::bad_request(field, "must be a string")),
        },
        _ => Err(ApiError::bad_request(field, "must be {\"log\": \"...\"}")),
    }
}

/// The native rendering: every attribute, dates in RFC 3339, flags as stored.
pub fn action_json(action: &Action) -> Value {
    json!({
        "uuid": action.uuid,
        "resource_uri": actions::resource_uri(&action.uuid),
        "object": action.object,
        "action": action.action,
        "method": action.method,
        "path": action.path,
        "user": action.user,
        "user_agent": action.user_agent,
        "start_date": action.start_date.rfc3339(),
        "end_date": action.end_date.map(Timestamp::rfc3339),
        "state": action.state.name(),
        "ip": action.ip,
        "location": action.location,
        "is_user_action": action.is_user_action,
        "can_be_canceled": action.can_be_canceled,
        "can_be_retried": action.can_be_retried,
        "retry_of": action.retry_of,
        "domain_id": action.domain_id,
    })
}
