//! `GET|HEAD /api/system-logs/instances/`: one row per `(source, instance)` with its
//! count and last activity, grouped, ordered and paged by the store over the same
//! filtered view.

use super::filters;
use super::paging::{self, LinkBase, Paging};
use super::{Caller, DrfError};
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use logbook_core::Field;
use logbook_store::{Group, GroupBy, GroupQuery, GroupSort};
use serde_json::{json, Value};

pub(super) const PATH: &str = "/api/system-logs/instances/";

pub(super) async fn list(
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
    let query = principal.scope(query);
    let fields = [Field::Source, Field::Instance];
    let total = state.store.count_groups(&query, &fields).await?;
    let mut body = Vec::new();
    if method != Method::HEAD {
        paging.check(total)?;
        let groups = GroupQuery {
            sort: orderings
                .iter()
                .map(|(name, descending)| sort(name, *descending))
                .collect(),
            offset: paging.offset(),
            limit: Some(paging.size),
            ..GroupQuery::by(&fields)
        };
        body = state
            .store
            .group(&query, &groups)
            .await?
            .iter()
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

/// `o=created` orders by last activity, `o=instance` by instance name; the store
/// breaks ties by `(source, instance)`, which is the order when `o` is absent.
fn sort(name: &str, descending: bool) -> GroupSort {
    let by = match name {
        "created" => GroupBy::LastTs,
        _ => GroupBy::Key(1),
    };
    GroupSort { by, descending }
}

/// Shared by `/stats/`: the group's `(source, instance)` as text.
pub(super) fn key_text(group: &Group, i: usize) -> String {
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
