//! Ingest and read records.

use super::filters;
use crate::auth::Principal;
use crate::body::{parse_json, read_chunks, read_limited};
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use crate::{ingest, scoped};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use logbook_core::record_json::NdjsonReader;
use logbook_core::{Cursor, NewRecord, Query};
use serde_json::{json, Value};

/// `POST /logbook/v1/records`: one object, an array of objects, or NDJSON.
#[utoipa::path(
    post, path = "/logbook/v1/records", tag = "records",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry within 24 h answer the original answer and write nothing (at most 255 characters); the same key with another body answers 422")),
    request_body(description = "One record, a JSON array of records, or NDJSON (one record a line); a batch commits all or nothing and an error names the line as `[i].field`",
        content((super::openapi::RecordsBody = "application/json"), (String = "application/x-ndjson"))),
    responses(
        (status = 201, description = "Committed (durable)", body = super::openapi::Accepted),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = super::openapi::ErrorBody),
        (status = 422, description = "The Idempotency-Key was used with another body", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_write()?;
    if is_ndjson(&headers) {
        let names = |i: usize, field: &str| format!("[{i}].{field}");
        let mut batch = ingest::Batch::new(&state, &principal)?;
        read_ndjson(body, state.config.max_body_bytes, |records| {
            batch.push(records, &names)
        })
        .await?;
        return created(batch.commit().await?);
    }
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let (values, batch) = match parse_json(&bytes)? {
        Value::Array(items) => (items, true),
        value @ Value::Object(_) => (vec![value], false),
        _ => {
            return Err(ApiError::bad_request(
                "body",
                "must be a JSON object, an array of objects, or NDJSON",
            ))
        }
    };
    if values.is_empty() {
        return Err(ApiError::bad_request("body", "contains no records"));
    }
    let names = |i: usize, field: &str| match batch {
        true => format!("[{i}].{field}"),
        false => field.to_string(),
    };
    let records = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            NewRecord::from_json(v).map_err(|e| match batch {
                true => ApiError::from(e.at_index(i)),
                false => ApiError::from(e),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    created(ingest::append(&state, &principal, records, names).await?)
}

fn created(appended: logbook_store::Appended) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "accepted": appended.count,
            "first_id": appended.first_id,
            "last_id": appended.last_id,
        })),
    ))
}

/// The records of an NDJSON body, parsed line by line as it arrives and handed to
/// `take` a chunk at a time (neither the body nor its records are ever held whole).
/// The body is read to its end even after a bad line or a chunk `take` refused, so
/// the client, still sending, gets the 4xx naming the line rather than a connection
/// reset, and an `Idempotency-Key` sees the whole body; nothing of it is kept.
pub(crate) async fn read_ndjson(
    body: Body,
    limit: usize,
    mut take: impl FnMut(Vec<NewRecord>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    // The reader until a chunk is refused, then why.
    let mut reading: Result<NdjsonReader, ApiError> = Ok(NdjsonReader::default());
    read_chunks(body, limit, |chunk| {
        let Ok(reader) = reading.as_mut() else {
            return;
        };
        reader.push(chunk);
        if reader.len() >= NDJSON_CHUNK {
            if let Err(e) = take(reader.take()) {
                reading = Err(e);
            }
        }
    })
    .await?;
    take(reading?.finish()?)
}

/// Records of an NDJSON body handed on at a time: enough that the per-chunk work
/// is noise, few enough (about 1 MB of records) to be a small part of a 15 MB body.
const NDJSON_CHUNK: usize = 2048;

fn is_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|t| {
            matches!(
                t.as_str(),
                "application/x-ndjson" | "application/jsonl" | "application/ndjson"
            )
        })
}

/// `GET /logbook/v1/records`
#[utoipa::path(
    get, path = "/logbook/v1/records", tag = "records",
    params(super::openapi::RecordFilters, super::openapi::RecordPaging),
    responses((status = 200, description = "A page of records", body = super::openapi::RecordPage))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = principal.scope(filters::page_query(&Params::strict(raw.as_deref())?)?);
    let page = state.store.query(&query).await?;
    let next_cursor = page.resume_after(&query);
    let records: Vec<Value> = page.records.iter().map(|r| r.to_json()).collect();
    Ok(Json(json!({
        "records": records,
        "next_cursor": next_cursor.map(Cursor::encode),
    })))
}

/// `GET /logbook/v1/records/count`
#[utoipa::path(
    get, path = "/logbook/v1/records/count", tag = "records",
    params(super::openapi::RecordFilters),
    responses((status = 200, description = "The number of matching records", body = super::openapi::Count))
)]
pub(super) async fn count(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = {
        let params = Params::strict(raw.as_deref())?;
        let query = filters::filters(&params)?;
        params.reject_unknown()?;
        principal.scope(query)
    };
    let count = state.store.count(&query).await?;
    Ok(Json(json!({ "count": count })))
}

/// `GET /logbook/v1/records/{id}`; a record of another domain is simply not found.
#[utoipa::path(
    get, path = "/logbook/v1/records/{id}", tag = "records",
    params(("id" = i64, Path, description = "The record's id")),
    responses(
        (status = 200, description = "The record", body = super::openapi::Record),
        (status = 404, description = "No such record, or not the caller's to see", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = super::path_id(&id)?;
    let record = scoped::record(&state, &principal, id, &Query::default()).await?;
    Ok(Json(record.to_json()))
}
