//! `GET /logbook/v1/export?format=ndjson|csv`: every matching record, oldest first.

use super::filters;
use crate::auth::Principal;
use crate::csv_export::{csv_response, ndjson_response};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use logbook_core::{Order, Record};

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

pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (query, csv) = {
        let params = Params::parse(raw.as_deref())?;
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
    let batches = state.store.export(query);
    Ok(if csv {
        csv_response(batches, CSV_HEADER, csv_row, "logbook-export.csv")
    } else {
        ndjson_response(batches, Record::to_json, "logbook-export.ndjson")
    })
}

fn csv_row(record: &Record) -> Vec<String> {
    let mut row = vec![
        record.id.to_string(),
        record.ts.rfc3339(),
        record.kind.name().to_string(),
        record
            .level
            .map(|l| l.name().to_string())
            .unwrap_or_default(),
    ];
    row.extend(
        record
            .text_fields()
            .iter()
            .map(|(_, v)| (*v).clone().unwrap_or_default()),
    );
    row.push(
        record
            .data
            .as_ref()
            .map(|d| serde_json::Value::Object(d.clone()).to_string())
            .unwrap_or_default(),
    );
    row
}
