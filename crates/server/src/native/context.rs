//! `GET /logbook/v1/records/{id}/context`: the records just before and after one
//! record from the same source and instance (or the fields named by `by`), in id
//! order, so a reader sees what led to a line and what followed it.

use super::filters::LIST_FIELDS;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use logbook_core::query::field_value;
use logbook_core::{Condition, Cursor, Field, Order, Query};
use serde_json::{json, Value};

pub(super) const DEFAULT_RECORDS: u64 = 10;
pub(super) const MAX_RECORDS: u64 = 500;
const DEFAULT_BY: [Field; 2] = [Field::Source, Field::Instance];

#[utoipa::path(
    get, path = "/logbook/v1/records/{id}/context", tag = "records",
    params(("id" = i64, Path, description = "The record's id"),
        ("before" = Option<u64>, Query, maximum = 500, description = "Neighbours before (default 10)"),
        ("after" = Option<u64>, Query, maximum = 500, description = "Neighbours after (default 10)"),
        ("by" = Option<String>, Query, description = "Fields the neighbours share (comma list of filter fields; default source,instance)"),
    ),
    responses(
        (status = 200, description = "The record and its neighbours", body = super::openapi::Context),
        (status = 404, description = "No such record", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn context(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = super::path_id(&id)?;
    let params = Params::strict(raw.as_deref())?;
    let before = count(&params, "before")?;
    let after = count(&params, "after")?;
    let by = match params.list("by") {
        names if names.is_empty() => DEFAULT_BY.to_vec(),
        names => names
            .iter()
            .map(|name| {
                Field::parse(name)
                    .filter(|f| LIST_FIELDS.contains(f))
                    .ok_or_else(|| {
                        ApiError::bad_request("by", format!("{name:?} is not a filter field"))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    params.reject_unknown()?;
    let record = scoped::record(&state, &principal, id, &Query::default()).await?;
    // Only the fields the record has: a record without an instance is shown among
    // the records of its source, whatever their instance.
    let same: Vec<Condition> = by
        .iter()
        .filter_map(|field| field_value(&record, *field).map(|v| Condition::In(*field, vec![v])))
        .collect();
    let around = |order: Order, limit: u64| Query {
        conditions: same.clone(),
        order,
        after: Some(Cursor(id)),
        limit: Some(limit),
        ..Query::default()
    };
    let mut earlier = match before {
        0 => Vec::new(),
        n => {
            let query = principal.scope(around(Order::NewestFirst, n));
            state.store.query(&query).await?.records
        }
    };
    earlier.reverse();
    let later = match after {
        0 => Vec::new(),
        n => {
            let query = principal.scope(around(Order::OldestFirst, n));
            state.store.query(&query).await?.records
        }
    };
    let render = |records: &[logbook_core::Record]| -> Vec<Value> {
        records.iter().map(|r| r.to_json()).collect()
    };
    Ok(Json(json!({
        "record": record.to_json(),
        "by": by.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "before": render(&earlier),
        "after": render(&later),
    })))
}

fn count(params: &Params, name: &str) -> Result<u64, ApiError> {
    let n = params
        .parsed::<u64>(name, "a non-negative integer")?
        .unwrap_or(DEFAULT_RECORDS);
    if n > MAX_RECORDS {
        return Err(ApiError::bad_request(
            name,
            format!("may be at most {MAX_RECORDS}"),
        ));
    }
    Ok(n)
}
