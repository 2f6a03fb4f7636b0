//! `GET /api/v1/log/export`: the system log as CSV (`Date,Level,Category,User,Message`),
//! oldest first, streamed from the store in batches.

use super::{caller, log, reject_unknown, user_of, Answer};
use crate::auth::Principal;
use crate::csv_export::csv_response;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use logbook_core::{Query, Record};
use std::borrow::Cow;

const HEADER: &[&str] = &["Date", "Level", "Category", "User", "Message"];

pub(super) async fn export(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Response> {
    let principal = caller(principal)?;
    let query = {
        let params = Params::parse(raw.as_deref())?;
        let query = log::filters(&params, Query::oldest_first())?;
        reject_unknown(&params)?;
        principal.scope(query)
    };
    let batches = state.store.export(query);
    Ok(csv_response(batches, HEADER, row, "system-logs.csv"))
}

/// Dates in UTC as the document shows them: `2015-05-19 08:03:53.173968`. Text
/// cells borrow from the record (an export writes millions of them).
fn row(record: &Record) -> Vec<Cow<'_, str>> {
    vec![
        Cow::Owned(record.ts.space_separated_micros()),
        Cow::Borrowed(record.level.map(|l| l.name()).unwrap_or_default()),
        Cow::Borrowed(record.category.as_deref().unwrap_or_default()),
        Cow::Borrowed(user_of(record)),
        Cow::Borrowed(record.message.as_deref().unwrap_or_default()),
    ]
}
