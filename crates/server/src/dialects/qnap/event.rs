//! `GET /api/v1/event`: the event feed, `{"index", "messages", "offset"}` with each
//! message `category:user:ts:JSON`. `index` and `offset` are record ids, so a client
//! polling with `index` = the previous answer's `offset` sees every event once.

use super::{caller, reject_unknown, user_of, Answer};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use logbook_core::query::{Comparison, Condition, Scalar};
use logbook_core::{Cursor, Field, Kind, Query, Record};
use serde_json::{json, Value};
use std::fmt::Write;

/// Without `index`: the latest this many events, as the document says.
pub(super) const LATEST: u64 = 20;
/// With `index`: at most this many events per answer, oldest first from the cursor,
/// so a client that fell behind catches up in a few polls.
pub(super) const PER_POLL: u64 = 100;

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = caller(principal)?;
    let (index, upto) = {
        let params = Params::parse(raw.as_deref())?;
        let index = params.parsed::<u64>("index", "a non-negative event index")?;
        let upto = params.parsed::<u64>("offset", "a non-negative event index")?;
        reject_unknown(&params)?;
        (index.map(clamp), upto.map(clamp))
    };
    let mut query = principal.scope(Query::newest_first().kinds(&[Kind::Event]));
    if let Some(upto) = upto {
        query = query.with(Condition::Compare(
            Field::Id,
            Comparison::Le,
            Scalar::Int(upto),
        ));
    }
    let (index, offset, mut records) = match index {
        None => {
            query.limit = Some(LATEST);
            let page = state.store.query(&query).await?;
            let empty_at = upto.map_or(page.high_water, |u| u.min(page.high_water));
            let offset = page.records.first().map_or(empty_at, |r| r.id);
            // The answer covers (index, offset]: index sits just below its oldest event.
            let index = page.records.last().map_or(offset, |r| r.id - 1);
            (index, offset, page.records)
        }
        Some(index) => {
            query.order = logbook_core::Order::OldestFirst;
            query.after = Some(Cursor(index));
            query.limit = Some(PER_POLL);
            let page = state.store.query(&query).await?;
            let offset = page.resume_after(&query).map_or(index, |c| c.0);
            let mut records = page.records;
            records.reverse();
            (index, offset, records)
        }
    };
    let messages: Vec<Value> = records
        .drain(..)
        .map(|r| Value::from(message(&r)))
        .collect();
    Ok(Json(
        json!({"index": index, "messages": messages, "offset": offset}),
    ))
}

/// Record ids are `i64`; a larger index is simply past every record.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `category:user:ts:JSON`, the JSON as the original's Python wrote it.
pub(super) fn message(record: &Record) -> String {
    let mut out = format!(
        "{}:{}:{}:",
        record.category.as_deref().unwrap_or(""),
        user_of(record),
        record.ts.epoch_seconds()
    );
    match &record.data {
        Some(data) => python_json(&Value::Object(data.clone()), &mut out),
        None => out.push_str("{}"),
    }
    out
}

/// `json.dumps` with its defaults: `", "` and `": "` separators, keys in the order
/// they were written, non-ASCII escaped as `\uXXXX`.
pub(super) fn python_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(key, out);
                out.push_str(": ");
                python_json(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(item, out);
            }
            out.push(']');
        }
        Value::String(text) => python_string(text, out),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
    }
}

fn python_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_rendered_as_python_writes_it() {
        let value: Value = serde_json::from_str(
            r#"{"tid": 1, "b": [true, null, 0.5], "text": "caf\u00e9 \"q\"\n\ud83d\ude00"}"#,
        )
        .expect("json");
        let mut out = String::new();
        python_json(&value, &mut out);
        assert_eq!(
            out,
            r#"{"tid": 1, "b": [true, null, 0.5], "text": "caf\u00e9 \"q\"\n\ud83d\ude00"}"#
        );
    }
}
