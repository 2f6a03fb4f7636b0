//! Records: immutable, append-only entries. Three kinds share one shape: system
//! `log` lines, `event`s about objects, and `journal` entries of a user's action.

use crate::error::FieldError;
use crate::level::Level;
use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Log,
    Event,
    Journal,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Log, Kind::Event, Kind::Journal];

    pub fn parse(text: &str) -> Option<Kind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "log" => Some(Kind::Log),
            "event" => Some(Kind::Event),
            "journal" => Some(Kind::Journal),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Event => "event",
            Kind::Journal => "journal",
        }
    }

    /// The compact code stored on disk (one byte per row instead of a word).
    pub fn code(self) -> i64 {
        match self {
            Kind::Log => 1,
            Kind::Event => 2,
            Kind::Journal => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a record says, minus the identity the store gives it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewRecord {
    pub ts: Option<Timestamp>,
    pub kind: Option<Kind>,
    pub level: Option<Level>,
    pub category: Option<String>,
    pub source: Option<String>,
    pub instance: Option<String>,
    pub logger: Option<String>,
    pub user: Option<String>,
    pub user_id: Option<String>,
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub response_code: Option<String>,
    pub request_id: Option<String>,
    pub parent_request_id: Option<String>,
    pub message: Option<String>,
    pub data: Option<Map<String, Value>>,
}

/// A stored record: its id is its position in the one global order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: i64,
    pub ts: Timestamp,
    pub kind: Kind,
    pub level: Option<Level>,
    pub category: Option<String>,
    pub source: Option<String>,
    pub instance: Option<String>,
    pub logger: Option<String>,
    pub user: Option<String>,
    pub user_id: Option<String>,
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub response_code: Option<String>,
    pub request_id: Option<String>,
    pub parent_request_id: Option<String>,
    pub message: Option<String>,
    pub data: Option<Map<String, Value>>,
}

/// The optional text fields, in the fixed order of [`Record::text_fields`].
pub const TEXT_FIELD_NAMES: [&str; 16] = [
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
];

/// Longest accepted text field, in bytes; a message longer than this is a client bug.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

impl NewRecord {
    pub fn new(kind: Kind) -> Self {
        NewRecord {
            kind: Some(kind),
            ..NewRecord::default()
        }
    }

    /// Reads a record from the native JSON form, naming the first bad field.
    /// Unknown fields are refused so that a typo does not silently drop data. A
    /// record without `kind` is a `log`: nearly everything shippers and people send is.
    pub fn from_json(value: Value) -> Result<NewRecord, FieldError> {
        let Value::Object(map) = value else {
            return Err(FieldError::new("record", "must be a JSON object"));
        };
        let mut record = NewRecord::default();
        for (key, value) in map {
            record.set_from_json(&key, value)?;
        }
        record.kind.get_or_insert(Kind::Log);
        Ok(record)
    }

    fn set_from_json(&mut self, key: &str, value: Value) -> Result<(), FieldError> {
        match key {
            "kind" => {
                let text = expect_string(key, &value)?;
                self.kind = Some(Kind::parse(&text).ok_or_else(|| {
                    FieldError::new(key, format!("unknown kind {text:?} (log, event, journal)"))
                })?);
            }
            "ts" => self.ts = parse_ts_value(key, &value)?,
            "level" => self.level = parse_level_value(key, &value)?,
            "data" => match value {
                Value::Null => self.data = None,
                Value::Object(map) => self.data = Some(map),
                _ => return Err(FieldError::new(key, "must be a JSON object")),
            },
            // Accepted so a record read back from the API can be written again (import).
            "id" => {}
            other => {
                // An empty name would be an error naming no field (found by fuzzing).
                let slot = self.text_field_mut(other).ok_or_else(|| match other {
                    "" => FieldError::new("record", "has a field with an empty name"),
                    _ => FieldError::new(other, "unknown field"),
                })?;
                *slot = match value {
                    Value::Null => None,
                    Value::String(s) => Some(checked_text(key, s)?),
                    Value::Number(n) if other == "response_code" => Some(n.to_string()),
                    _ => return Err(FieldError::new(key, "must be a string")),
                };
            }
        }
        Ok(())
    }

    pub fn text_field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "category" => &mut self.category,
            "source" => &mut self.source,
            "instance" => &mut self.instance,
            "logger" => &mut self.logger,
            "user" => &mut self.user,
            "user_id" => &mut self.user_id,
            "domain_id" => &mut self.domain_id,
            "project_id" => &mut self.project_id,
            "object_type" => &mut self.object_type,
            "object_id" => &mut self.object_id,
            "action" => &mut self.action,
            "status" => &mut self.status,
            "response_code" => &mut self.response_code,
            "request_id" => &mut self.request_id,
            "parent_request_id" => &mut self.parent_request_id,
            "message" => &mut self.message,
            _ => return None,
        })
    }

    /// Gives the record its identity; `now` fills a missing timestamp.
    pub fn into_record(self, id: i64, now: Timestamp) -> Record {
        Record {
            id,
            ts: self.ts.unwrap_or(now),
            kind: self.kind.unwrap_or(Kind::Log),
            level: self.level,
            category: self.category,
            source: self.source,
            instance: self.instance,
            logger: self.logger,
            user: self.user,
            user_id: self.user_id,
            domain_id: self.domain_id,
            project_id: self.project_id,
            object_type: self.object_type,
            object_id: self.object_id,
            action: self.action,
            status: self.status,
            response_code: self.response_code,
            request_id: self.request_id,
            parent_request_id: self.parent_request_id,
            message: self.message,
            data: self.data,
        }
    }
}

impl Record {
    /// The native JSON rendering: core field names, `level` as its upper-case name,
    /// `ts` as RFC 3339 with microseconds. Absent optional fields are omitted.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::from(self.id));
        map.insert("ts".into(), Value::from(self.ts.rfc3339()));
        map.insert("kind".into(), Value::from(self.kind.name()));
        if let Some(level) = self.level {
            map.insert("level".into(), Value::from(level.name()));
        }
        for (name, value) in self.text_fields() {
            if let Some(v) = value {
                map.insert(name.into(), Value::from(v.as_str()));
            }
        }
        if let Some(data) = &self.data {
            map.insert("data".into(), Value::Object(data.clone()));
        }
        Value::Object(map)
    }

    /// Appends [`Record::to_json`]'s rendering as JSON text, byte for byte what
    /// serialising it gives, without making the `Value` (an export writes millions).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Serialising into memory cannot fail.
        let _ = serde_json::to_writer(out, &JsonRendering(self));
    }

    /// The optional text fields with their names, in a fixed order.
    pub fn text_fields(&self) -> [(&'static str, &Option<String>); 16] {
        let values = [
            &self.category,
            &self.source,
            &self.instance,
            &self.logger,
            &self.user,
            &self.user_id,
            &self.domain_id,
            &self.project_id,
            &self.object_type,
            &self.object_id,
            &self.action,
            &self.status,
            &self.response_code,
            &self.request_id,
            &self.parent_request_id,
            &self.message,
        ];
        let mut i = 0;
        values.map(|v| {
            i += 1;
            (TEXT_FIELD_NAMES[i - 1], v)
        })
    }
}

/// A record as [`Record::to_json`] renders it: the same keys in the same order.
struct JsonRendering<'a>(&'a Record);

impl serde::Serialize for JsonRendering<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &r.id)?;
        map.serialize_entry("ts", &r.ts.rfc3339())?;
        map.serialize_entry("kind", r.kind.name())?;
        if let Some(level) = r.level {
            map.serialize_entry("level", level.name())?;
        }
        for (name, value) in r.text_fields() {
            if let Some(v) = value {
                map.serialize_entry(name, v)?;
            }
        }
        if let Some(data) = &r.data {
            map.serialize_entry("data", data)?;
        }
        map.end()
    }
}

fn expect_string(field: &str, value: &Value) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(FieldError::new(field, "must be a string")),
    }
}

pub(crate) fn checked_text(field: &str, text: String) -> Result<String, FieldError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(FieldError::new(
            field,
            format!("is longer than {MAX_TEXT_BYTES} bytes"),
        ));
    }
    if text.contains('\0') {
        return Err(FieldError::new(field, "must not contain NUL characters"));
    }
    Ok(text)
}

/// `ts` as RFC 3339 text or epoch seconds (a number or numeric text).
pub fn parse_ts_value(field: &str, value: &Value) -> Result<Option<Timestamp>, FieldError> {
    let parsed = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64().and_then(Timestamp::from_epoch_seconds),
        Value::String(s) => Timestamp::parse(s),
        _ => {
            return Err(FieldError::new(
                field,
                "must be RFC 3339 text or epoch seconds",
            ))
        }
    };
    parsed.map(Some).ok_or_else(|| {
        FieldError::new(
            field,
            format!("{value} is not an RFC 3339 timestamp or epoch seconds in range"),
        )
    })
}

pub(crate) fn parse_level_value(field: &str, value: &Value) -> Result<Option<Level>, FieldError> {
    let parsed = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64().and_then(Level::from_number),
        Value::String(s) => Level::parse(s),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        FieldError::new(
            field,
            format!("unknown level {value} (DEBUG, INFO, WARN, ERROR, CRITICAL or 10..50)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn write_json_writes_what_to_json_renders() {
        let full = json!({"kind": "event", "ts": 1432022739.5, "level": "warning",
            "category": "imäge \"q\"", "user": "alice", "message": "pulled\n", "response_code": 404,
            "data": {"b": 1, "a": [2.5, null, {"z": "\u{0}"}]}});
        for input in [full, json!({"kind": "log"})] {
            let record = NewRecord::from_json(input)
                .expect("valid")
                .into_record(-7, Timestamp(1_700_000_000_123_456));
            let mut out = Vec::new();
            record.write_json(&mut out);
            let expected = serde_json::to_vec(&record.to_json()).expect("serialise");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn a_full_record_round_trips_through_json() {
        let input = json!({"kind": "event", "ts": 1432022739.5, "level": "warning",
            "category": "image", "user": "alice", "message": "pulled", "data": {"b": 1, "a": 2}});
        let record = NewRecord::from_json(input)
            .expect("valid")
            .into_record(7, Timestamp(0));
        let out = record.to_json();
        assert_eq!(out["id"], 7);
        assert_eq!(out["level"], "WARN");
        assert_eq!(out["ts"], "2015-05-19T08:05:39.500000Z");
        let keys: Vec<_> = out["data"].as_object().expect("object").keys().collect();
        assert_eq!(keys, ["b", "a"], "data keeps the order it was written in");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (json!({"kind": "log", "level": "LOUD"}), "level"),
            (json!({"kind": "log", "ts": "yesterday"}), "ts"),
            (json!({"kind": "log", "user": 5}), "user"),
            (json!({"kind": "log", "data": [1]}), "data"),
            (json!({"kind": "log", "colour": "red"}), "colour"),
            (json!({"kind": "chat"}), "kind"),
            (json!([1]), "record"),
        ];
        for (input, field) in cases {
            let err = NewRecord::from_json(input.clone()).expect_err("invalid");
            assert_eq!(err.field, field, "{input}");
        }
    }

    #[test]
    fn a_record_without_kind_is_a_log() {
        let record =
            NewRecord::from_json(json!({"level": "INFO", "message": "hi"})).expect("a log");
        assert_eq!(record.kind, Some(Kind::Log));
    }
}
