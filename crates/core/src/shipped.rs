//! Records that arrive from log shippers (syslog, OTLP, Loki push, Elasticsearch
//! bulk, journald). Every protocol maps its fields onto the core record the same way:
//! the first non-empty value offered for a core field wins, everything else goes into
//! `data`, and the text is checked by the same rules as the native API's.

use crate::error::FieldError;
use crate::level::Level;
use crate::record::{checked_text, Kind, NewRecord};
use crate::time::Timestamp;
use serde_json::{Map, Value};

/// A shipped log line being mapped onto a record.
#[derive(Debug, Clone, Default)]
pub struct Shipped {
    record: NewRecord,
    data: Map<String, Value>,
}

impl Shipped {
    pub fn new() -> Shipped {
        Shipped {
            record: NewRecord::new(Kind::Log),
            data: Map::new(),
        }
    }

    pub fn ts(&mut self, ts: Timestamp) -> &mut Self {
        self.record.ts.get_or_insert(ts);
        self
    }

    /// A timestamp in nanoseconds since the epoch, as shippers send them; 0 means
    /// "not set" in OTLP. Every `u64` of nanoseconds is within the core's range.
    pub fn ts_nanos(&mut self, nanos: u64) -> &mut Self {
        if let Some(ts) = i64::try_from(nanos / 1000)
            .ok()
            .filter(|micros| *micros > 0)
            .and_then(Timestamp::from_micros)
        {
            self.ts(ts);
        }
        self
    }

    pub fn level(&mut self, level: Option<Level>) -> &mut Self {
        if self.record.level.is_none() {
            self.record.level = level;
        }
        self
    }

    pub fn has_level(&self) -> bool {
        self.record.level.is_some()
    }

    /// Offers a value for a core text field (`source`, `instance`, `logger`,
    /// `category`, `message`, ...); taken only if the field is still empty. Returns
    /// whether it was taken, so a caller can keep a value that lost in `data`.
    pub fn offer(&mut self, field: &str, value: impl Into<String>) -> bool {
        let value = value.into();
        if value.is_empty() {
            return false;
        }
        match self.record.text_field_mut(field) {
            Some(slot) if slot.is_none() => {
                *slot = Some(value);
                true
            }
            _ => false,
        }
    }

    /// Keeps a value in `data` under `key` (the last value offered for a key wins).
    pub fn data(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.data.insert(key.into(), value);
        self
    }

    /// Keeps values in `data` under an object named `key` (`labels`, `resource`).
    pub fn data_in(&mut self, key: &str, name: impl Into<String>, value: Value) -> &mut Self {
        let entry = self
            .data
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(name.into(), value);
        }
        self
    }

    /// The record, its text checked as the native API checks it (length, NUL).
    pub fn finish(mut self) -> Result<NewRecord, FieldError> {
        for name in TEXT_FIELDS {
            if let Some(slot) = self.record.text_field_mut(name) {
                if let Some(text) = slot.take() {
                    *slot = Some(checked_text(name, text)?);
                }
            }
        }
        if !self.data.is_empty() {
            self.record.data = Some(self.data);
        }
        Ok(self.record)
    }
}

const TEXT_FIELDS: [&str; 5] = ["message", "source", "instance", "logger", "category"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_value_for_a_field_wins_and_the_rest_is_data() {
        let mut shipped = Shipped::new();
        assert!(shipped.offer("source", "sshd"));
        assert!(!shipped.offer("source", "systemd"));
        assert!(!shipped.offer("instance", ""));
        shipped.level(Some(Level::Warn)).level(Some(Level::Error));
        shipped.data("facility", json!("auth"));
        shipped.data_in("labels", "env", json!("prod"));
        let record = shipped.finish().expect("valid");
        assert_eq!(record.kind, Some(Kind::Log));
        assert_eq!(record.source.as_deref(), Some("sshd"));
        assert_eq!(record.instance, None);
        assert_eq!(record.level, Some(Level::Warn));
        assert_eq!(
            Value::Object(record.data.expect("data")),
            json!({"facility": "auth", "labels": {"env": "prod"}})
        );
    }

    #[test]
    fn text_is_checked_like_the_native_api() {
        let mut shipped = Shipped::new();
        shipped.offer("message", "a\0b");
        assert_eq!(shipped.finish().expect_err("NUL").field, "message");
        let mut shipped = Shipped::new();
        shipped.ts_nanos(0).ts_nanos(1_714_560_000_123_456_789);
        let record = shipped.finish().expect("valid");
        assert_eq!(record.ts, Some(Timestamp(1_714_560_000_123_456)));
    }
}
