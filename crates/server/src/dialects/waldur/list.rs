//! `GET|HEAD /api/system-logs/` and `GET /api/system-logs/{id}/`: log records as
//! Waldur's `SystemLog`.

use super::filters;
use super::paging::{self, LinkBase, Paging};
use super::{Caller, DrfError};
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::Json;
use logbook_core::{Query, Record};
use serde_json::{json, Value};

pub(super) const PATH: &str = "/api/system-logs/";

/// The list; HEAD (the client's `system_logs_count`) only counts, whatever the page.
pub(super) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, DrfError> {
    let (query, paging) = list_request(raw.as_deref())?;
    let mut query = principal.scope(query);
    let total = state.store.count(&query).await?;
    let mut body = Vec::new();
    if method != Method::HEAD {
        paging.check(total)?;
        query.offset = paging.offset();
        query.limit = Some(paging.size);
        let page = state.store.query(&query).await?;
        body = page.records.iter().map(render).collect();
    }
    let base = LinkBase {
        path: PATH,
        raw_query: raw.as_deref(),
        request_headers: &headers,
        tls: state.config.tls,
    };
    Ok(paging::respond(body, &paging, total, &base))
}

/// The list's query string: filters, ordering and page.
pub(super) fn list_request(raw: Option<&str>) -> Result<(Query, Paging), DrfError> {
    let params = Params::parse(raw)?;
    let query = filters::order_records(&params, filters::filtered(&params)?)?;
    let paging = Paging::parse(&params)?;
    filters::reject_unknown(&params)?;
    Ok((query, paging))
}

/// One record; anything outside the view or the caller's domains is "Not found.".
pub(super) async fn retrieve(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, DrfError> {
    // A non-integer id cannot name a row, so like Django it is simply not found.
    let id: i64 = id.trim().parse().map_err(|_| DrfError::not_found())?;
    let record = scoped::record(&state, &principal, id, &filters::view()).await?;
    Ok(Json(render(&record)))
}

/// A record as `SystemLog`: every key present, absent text as `""`, `context` `{}`.
pub(super) fn render(record: &Record) -> Value {
    let text = |v: &Option<String>| Value::from(v.clone().unwrap_or_default());
    // The view only holds leveled records; Python's NOTSET covers the impossible rest.
    let (level, level_number) = record
        .level
        .map(|l| (l.python_name(), l.number()))
        .unwrap_or(("NOTSET", 0));
    json!({
        "id": record.id,
        "created": record.ts.rfc3339(),
        "source": text(&record.source),
        "instance": text(&record.instance),
        "level": level,
        "level_number": level_number,
        "logger_name": text(&record.logger),
        "message": text(&record.message),
        "context": Value::Object(record.data.clone().unwrap_or_default()),
    })
}
