//! `GET|HEAD /api/system-logs/stats/`: per-instance counts and the on-disk size of
//! log records as the store measures it.

use super::instances::key_text;
use super::{filters, Caller, DrfError};
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logbook_core::{Field, Kind};
use logbook_store::GroupQuery;
use serde_json::json;

pub(super) async fn stats(
    State(state): State<AppState>,
    Caller(principal): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, DrfError> {
    let params = Params::parse(raw.as_deref())?;
    filters::reject_unknown(&params)?;
    let groups = state
        .store
        .group(
            &principal.scope(filters::view()),
            &GroupQuery::by(&[Field::Source, Field::Instance]),
        )
        .await?;
    let bytes = scoped::size_on_disk(&state, &principal, Kind::Log).await?;
    let instances: Vec<_> = groups
        .iter()
        .map(|g| {
            json!({
                "source": key_text(g, 0),
                "instance": key_text(g, 1),
                "count": g.count,
            })
        })
        .collect();
    let count = instances.len() as u64;
    let megabytes = (bytes as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0;
    let mut response = Json(json!({
        "instances": instances,
        "total_size_bytes": bytes,
        "total_size_mb": megabytes,
    }))
    .into_response();
    // The client's `system_logs_stats_count` (HEAD) reads this: the number of instances.
    response
        .headers_mut()
        .insert("x-result-count", HeaderValue::from(count));
    Ok(response)
}
