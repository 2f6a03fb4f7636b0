//! The journal dialect (`/v1/journal/`, an OpenStack-style activity journal of user
//! actions on objects): core records of kind `journal`, queried with the API
//! guideline's `field=op:value` modifiers. See `docs/journal.md`.

mod filters;
mod render;
mod scope;

use crate::auth::Principal;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::ingest;
use crate::params::Params;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use logbook_core::{FieldError, Kind, Query};
use logbook_store::StoreError;
use serde_json::{json, Value};

/// Entries per page when the client gives no `limit`.
pub(super) const DEFAULT_LIMIT: u64 = 100;
/// Larger `limit`s are lowered to this (the OpenStack `max_limit` convention).
pub(super) const MAX_LIMIT: u64 = 1000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/journal/", get(list).post(create))
        .route("/v1/journal", get(list).post(create))
        .route("/v1/journal/count", get(count))
        .route("/v1/journal/count/", get(count))
        .route("/v1/{tenant_id}/journal/", post(create_in_project))
        .route("/v1/{tenant_id}/journal", post(create_in_project))
}

/// An error in the OpenStack shape: `{"error": {"code", "title", "message", "field"}}`.
#[derive(Debug)]
pub(super) struct JournalError(ApiError);

type Answer<T> = Result<T, JournalError>;

impl From<ApiError> for JournalError {
    fn from(e: ApiError) -> Self {
        JournalError(e)
    }
}

impl From<StoreError> for JournalError {
    fn from(e: StoreError) -> Self {
        JournalError(e.into())
    }
}

impl From<FieldError> for JournalError {
    fn from(e: FieldError) -> Self {
        JournalError(e.into())
    }
}

impl IntoResponse for JournalError {
    fn into_response(self) -> Response {
        let e = self.0;
        let mut error = json!({
            "code": e.status().as_u16(),
            "title": e.status().canonical_reason().unwrap_or("Error"),
            "message": e.describe(),
        });
        if let Some(field) = &e.field {
            error["field"] = json!(field);
        }
        e.respond_with(json!({ "error": error }))
    }
}

/// `GET /v1/journal/`: newest first, `offset` and `limit` paging.
async fn list(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = principal?;
    let query = JournalQuery::parse(raw.as_deref(), true)?
        .resolve(&state, &principal)
        .await?;
    let page = state.store.query(&query).await?;
    let entries: Vec<Value> = page.records.iter().map(render::entry_json).collect();
    Ok(Json(json!({ "journal": entries })))
}

/// `GET /v1/journal/count`: the same filters; `offset` and `limit` are ignored.
async fn count(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = principal?;
    let query = JournalQuery::parse(raw.as_deref(), false)?
        .resolve(&state, &principal)
        .await?;
    let count = state.store.count(&query).await?;
    Ok(Json(json!({ "count": count })))
}

/// `POST /v1/journal/`
async fn create(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Answer<(StatusCode, Json<Value>)> {
    record(&state, &principal?, &headers, body, None).await
}

/// `POST /v1/{tenant_id}/journal/`: the entry belongs to project `tenant_id`.
async fn create_in_project(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer<(StatusCode, Json<Value>)> {
    record(&state, &principal?, &headers, body, Some(tenant_id)).await
}

async fn record(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Body,
    project_id: Option<String>,
) -> Answer<(StatusCode, Json<Value>)> {
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let mut entry = render::entry_from_body(parse_json(&bytes)?)?;
    entry.project_id = project_id;
    if entry.request_id.is_none() {
        entry.request_id = Some(request_id(headers));
    }
    let appended = ingest::append_actions(state, principal, vec![entry], journal_field).await?;
    let stored = match appended.first_id {
        Some(id) => state.store.get(id).await?,
        None => None,
    };
    let stored =
        stored.ok_or_else(|| ApiError::internal("the entry was stored but cannot be read back"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "journal": render::entry_json(&stored) })),
    ))
}

/// A core field as the journal names it in errors: `journal.user_name` for `user`.
fn journal_field(_: usize, field: &str) -> String {
    match field {
        "user" => "journal.user_name".into(),
        other => format!("journal.{other}"),
    }
}

/// The request's id, as OpenStack services pass it on, or a new one.
fn request_id(headers: &HeaderMap) -> String {
    ["x-openstack-request-id", "x-request-id"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::trim)
        .find(|v| !v.is_empty() && v.len() <= 255)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn parse_query(raw: Option<&str>) -> Result<(), ApiError> {
    JournalQuery::parse(raw, true).map(drop)
}

/// The parsed query string: plain conditions now, the project and domain filters
/// (which need the store) when resolved.
struct JournalQuery {
    query: Query,
    project: Option<String>,
    domain: Option<String>,
}

impl JournalQuery {
    fn parse(raw: Option<&str>, paged: bool) -> Result<JournalQuery, ApiError> {
        let params = Params::parse(raw)?;
        let mut query = Query::newest_first().kinds(&[Kind::Journal]);
        for (name, field) in filters::FIELDS {
            for value in params.all(name) {
                if let Some(condition) = filters::condition(name, field, value)? {
                    query = query.with(condition);
                }
            }
        }
        let offset = params.parsed::<u64>("offset", "a non-negative integer")?;
        let limit = params.parsed::<u64>("limit", "a positive integer")?;
        if limit == Some(0) {
            return Err(ApiError::bad_request("limit", "must be at least 1"));
        }
        if paged {
            query.offset = offset.unwrap_or(0);
            query.limit = Some(limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT));
        }
        let owned = |name| params.non_empty(name).map(|v| v.trim().to_string());
        let (project, domain) = (owned("filter_project_id"), owned("filter_domain_id"));
        params.reject_unknown()?;
        Ok(JournalQuery {
            query,
            project,
            domain,
        })
    }

    async fn resolve(self, state: &AppState, principal: &Principal) -> Result<Query, ApiError> {
        let mut query = self.query;
        if let Some(project) = &self.project {
            query = query.with(scope::project(state, project).await?);
        }
        if let Some(domain) = &self.domain {
            query = query.with(scope::domain(state, domain).await?);
        }
        Ok(principal.scope(query))
    }
}
