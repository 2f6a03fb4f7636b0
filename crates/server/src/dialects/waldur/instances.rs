//! `GET|HEAD /api/system-logs/instances/`: one row per `(source, instance)` with its
//! count and last activity, grouped by the store over the same filtered view.

use super::filters;
use super::paging::{self, LinkBase, Paging};
use super::{Caller, DrfError};
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use logbook_core::Field;
use logbook_store::Group;
use serde_json::{json, Value};
use std::cmp::Ordering;

pub const PATH: &str = "/api/system-logs/instances/";

pub async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, DrfError> {
    let params = Params::parse(raw.as_deref())?;
    let query = filters::filtered(&params)?;
    let orderings = filters::orderings(&params)?;
    if let Some((name, _)) = orderings.iter().find(|(name, _)| name == "level_number") {
        return Err(DrfError::field(
            "o",
            format!("{name} cannot order instances (use created or instance)."),
        ));
    }
    let paging = Paging::parse(&params)?;
    filters::reject_unknown(&params)?;
    let mut groups = state
        .store
        .group(&principal.scope(query), &[Field::Source, Field::Instance])
        .await?;
    groups.sort_by(|a, b| compare(a, b, &orderings));
    let total = groups.len() as u64;
    let mut body = Vec::new();
    if method != Method::HEAD {
        paging.check(total)?;
        body = groups
            .iter()
            .skip(usize::try_from(paging.offset()).unwrap_or(usize::MAX))
            .take(usize::try_from(paging.size).unwrap_or(usize::MAX))
            .map(render)
            .collect();
    }
    let base = LinkBase {
        path: PATH,
        raw_query: raw.as_deref(),
        request_headers: &headers,
        tls: state.config.tls,
    };
    Ok(paging::respond(body, &paging, total, &base))
}

/// `o=created` orders by last activity, `o=instance` by instance name; `(source,
/// instance)` breaks ties, and is the order when `o` is absent.
fn compare(a: &Group, b: &Group, orderings: &[(String, bool)]) -> Ordering {
    let by_key = |a: &Group, b: &Group| a.key.cmp(&b.key);
    orderings
        .iter()
        .map(|(name, descending)| {
            let o = match name.as_str() {
                "created" => a.last_ts.cmp(&b.last_ts),
                _ => a.key.get(1).cmp(&b.key.get(1)),
            };
            if *descending {
                o.reverse()
            } else {
                o
            }
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| by_key(a, b))
}

/// Shared by `/stats/`: the group's `(source, instance)` as text.
pub fn key_text(group: &Group, i: usize) -> String {
    group.key.get(i).cloned().flatten().unwrap_or_default()
}

fn render(group: &Group) -> Value {
    json!({
        "source": key_text(group, 0),
        "instance": key_text(group, 1),
        "last_seen": group.last_ts.rfc3339(),
        "count": group.count,
    })
}
