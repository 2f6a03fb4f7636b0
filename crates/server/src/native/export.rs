//! `GET /logbook/v1/export?format=ndjson|csv`: every matching record, oldest first.

use super::filters;
use crate::auth::Principal;
use crate::csv_export::{csv_response, ndjson_lines_response};
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use logbook_core::{Order, Record};
use std::borrow::Cow;

pub const CSV_HEADER: &[&str] = &[
    "id",
    "ts",
    "kind",
    "level",
    "category",
    "source",
    "instance",
    "logger",
    "user",
    "user_id",
    "domain_id",
    "project_id",
    "object_type",
    "object_id",
    "action",
    "status",
    "response_code",
    "request_id",
    "parent_request_id",
    "message",
    "data",
];

#[utoipa::path(
    get, path = "/logbook/v1/export", tag = "records",
    params(super::openapi::RecordFilters,
        ("format" = Option<super::openapi::ExportFormat>, Query, description = "ndjson (default) or csv")),
    responses((status = 200, description = "Every matching record, oldest first unless `order` says otherwise, streamed",
        content((String = "application/x-ndjson"), (String = "text/csv"))))
)]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (query, csv) = {
        let params = Params::strict(raw.as_deref())?;
        let mut query = filters::filters(&params)?;
        if params.non_empty("order").is_none() {
            query.order = Order::OldestFirst;
        }
        let csv = match params.non_empty("format").unwrap_or("ndjson") {
            "ndjson" => false,
            "csv" => true,
            other => {
                return Err(ApiError::bad_request(
                    "format",
                    format!("{other:?} is not ndjson or csv"),
                ))
            }
        };
        params.reject_unknown()?;
        (principal.scope(query), csv)
    };
    Ok(if csv {
        csv_response(
            state.store.export(query),
            CSV_HEADER,
            csv_row,
            "logbook-export.csv",
        )
    } else {
        ndjson_lines_response(state.store.export_ndjson(query), "logbook-export.ndjson")
    })
}

fn csv_row(record: &Record) -> Vec<Cow<'_, str>> {
    let mut row = Vec::with_capacity(CSV_HEADER.len());
    row.push(Cow::Owned(record.id.to_string()));
    row.push(Cow::Owned(record.ts.rfc3339()));
    row.push(Cow::Borrowed(record.kind.name()));
    row.push(Cow::Borrowed(
        record.level.map(|l| l.name()).unwrap_or_default(),
    ));
    row.extend(
        record
            .text_fields()
            .into_iter()
            .map(|(_, v)| Cow::Borrowed(v.as_deref().unwrap_or_default())),
    );
    row.push(match &record.data {
        // Serialising a map of JSON values into a String cannot fail.
        Some(data) => Cow::Owned(serde_json::to_string(data).unwrap_or_default()),
        None => Cow::Borrowed(""),
    });
    row
}
