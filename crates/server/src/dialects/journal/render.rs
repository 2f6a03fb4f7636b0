//! Journal entries in and out: the `{"journal": {...}}` body read into a core record,
//! and a core record rendered in the document's shape.

use super::filters::ACTION_ARGUMENTS;
use crate::error::ApiError;
use logbook_core::record::MAX_TEXT_BYTES;
use logbook_core::{Kind, NewRecord, Record, Timestamp};
use serde_json::{json, Map, Value};

/// Fields a client sets; the rest of a record is the server's (id) or not journal's.
const REQUIRED: [&str; 3] = ["object_id", "action", "status"];

/// Reads the body of `POST /v1/journal/`, naming the first bad field as
/// `journal.<field>`. Identity and tenancy are applied by the caller.
pub(super) fn entry_from_body(body: Value) -> Result<NewRecord, ApiError> {
    let Value::Object(mut outer) = body else {
        return Err(ApiError::bad_request(
            "body",
            "must be a JSON object {\"journal\": {...}}",
        ));
    };
    let inner = outer
        .remove("journal")
        .ok_or_else(|| ApiError::bad_request("journal", "is required"))?;
    if let Some(other) = outer.keys().next() {
        return Err(ApiError::bad_request(other.clone(), "unknown field"));
    }
    let Value::Object(fields) = inner else {
        return Err(ApiError::bad_request("journal", "must be a JSON object"));
    };
    let mut record = NewRecord::new(Kind::Journal);
    for (key, value) in fields {
        set(&mut record, &key, value)?;
    }
    for name in REQUIRED {
        let present = match name {
            "object_id" => &record.object_id,
            "action" => &record.action,
            _ => &record.status,
        };
        if present.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                format!("journal.{name}"),
                "is required",
            ));
        }
    }
    Ok(record)
}

fn set(record: &mut NewRecord, key: &str, value: Value) -> Result<(), ApiError> {
    let field = format!("journal.{key}");
    match key {
        // Ids like `2fee08b2...` are strings; the document also calls them integers.
        "object_id" | "user_id" | "response_code" => {
            let text = text_or_integer(&field, value)?;
            match key {
                "object_id" => record.object_id = text,
                "user_id" => record.user_id = text,
                _ => record.response_code = text,
            }
        }
        "action_arguments" => {
            if let Some(args) = text(&field, value)? {
                let mut data = Map::new();
                data.insert(ACTION_ARGUMENTS.into(), Value::String(args));
                record.data = Some(data);
            }
        }
        "event_time" => {
            record.ts = match text(&field, value)? {
                None => None,
                Some(t) => Some(Timestamp::parse(&t).ok_or_else(|| {
                    ApiError::bad_request(&field, "is not a time such as 2018-03-22T07:25:31")
                })?),
            }
        }
        "user_name" => record.user = text(&field, value)?,
        "object_type" | "action" | "status" | "message" | "request_id" | "parent_request_id"
        | "domain_id" => {
            let slot = record
                .text_field_mut(key)
                .ok_or_else(|| ApiError::bad_request(&field, "unknown field"))?;
            *slot = text(&field, value)?;
        }
        // Assigned by the server; accepted so an entry read back can be sent again.
        "id" => {}
        _ => return Err(ApiError::bad_request(field, "unknown field")),
    }
    Ok(())
}

fn text(field: &str, value: Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => checked(field, s).map(Some),
        _ => Err(ApiError::bad_request(field, "must be a string")),
    }
}

fn text_or_integer(field: &str, value: Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Value::Number(_) => Err(ApiError::bad_request(
            field,
            "must be a string or an integer",
        )),
        other => text(field, other),
    }
}

fn checked(field: &str, text: String) -> Result<String, ApiError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(
            field,
            format!("is longer than {MAX_TEXT_BYTES} bytes"),
        ));
    }
    if text.contains('\0') {
        return Err(ApiError::bad_request(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(text)
}

/// One entry in the document's shape and key order; absent values are `null`.
pub(super) fn entry_json(record: &Record) -> Value {
    let arguments = record
        .data
        .as_ref()
        .and_then(|d| d.get(ACTION_ARGUMENTS))
        .and_then(Value::as_str);
    json!({
        "action": record.action,
        "action_arguments": arguments,
        "event_time": record.ts.iso_seconds_naive(),
        "id": record.id,
        "message": record.message,
        "object_id": record.object_id,
        "object_type": record.object_type,
        "parent_request_id": record.parent_request_id,
        "request_id": record.request_id,
        "response_code": record.response_code,
        "status": record.status,
        "user_id": record.user_id,
        "user_name": record.user,
        "domain_id": record.domain_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bodies_name_the_field() {
        let cases = [
            (json!([1]), "body"),
            (json!({}), "journal"),
            (json!({"journal": "x"}), "journal"),
            (
                json!({"journal": {"action": "a", "status": "s"}}),
                "journal.object_id",
            ),
            (
                json!({"journal": {"object_id": "1", "status": "s"}}),
                "journal.action",
            ),
            (
                json!({"journal": {"object_id": "1", "action": "a", "status": ""}}),
                "journal.status",
            ),
            (
                json!({"journal": {"object_id": "1", "action": "a", "status": "s", "colour": 1}}),
                "journal.colour",
            ),
            (
                json!({"journal": {"object_id": 1.5, "action": "a", "status": "s"}}),
                "journal.object_id",
            ),
            (
                json!({"journal": {"object_id": "1", "action": "a", "status": "s", "action_arguments": {}}}),
                "journal.action_arguments",
            ),
            (
                json!({"journal": {"object_id": "1", "action": "a", "status": "s"}, "x": 1}),
                "x",
            ),
        ];
        for (body, field) in cases {
            let err = entry_from_body(body.clone()).expect_err("invalid");
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn action_arguments_round_trip_verbatim() {
        let args = "{\"user\":   \"admin\" }";
        let record = entry_from_body(json!({"journal": {"object_id": 4, "action": "a",
            "status": "s", "action_arguments": args}}))
        .expect("valid")
        .into_record(1, Timestamp(1_521_703_531_250_000));
        let out = entry_json(&record);
        assert_eq!(out["action_arguments"], args);
        assert_eq!(out["object_id"], "4");
        assert_eq!(out["event_time"], "2018-03-22T07:25:31");
    }
}
