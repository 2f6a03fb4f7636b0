//! How a record looks to Loki: a stream whose labels are its non-empty indexed
//! fields, a line that is its message, and structured metadata carrying its id, its
//! per-record identifiers and the keys of its `data`.

use logbook_core::query::field_value;
use logbook_core::{Field, Record};
use std::collections::BTreeMap;

pub(super) type LabelMap = BTreeMap<String, String>;

/// The stream labels and the fields they show, in Loki's names. `service_name` is
/// the `source` again: Grafana's Logs Drilldown and many dashboards select on it.
pub(super) const STREAM_LABELS: [(&str, Field); 13] = [
    ("kind", Field::Kind),
    ("level", Field::Level),
    ("category", Field::Category),
    ("source", Field::Source),
    ("service_name", Field::Source),
    ("instance", Field::Instance),
    ("logger", Field::Logger),
    ("user", Field::User),
    ("domain_id", Field::DomainId),
    ("project_id", Field::ProjectId),
    ("object_type", Field::ObjectType),
    ("action", Field::Action),
    ("status", Field::Status),
];

/// Fields that differ from record to record: structured metadata, not stream labels,
/// so that a stream stays a stream.
pub(super) const METADATA_FIELDS: [(&str, Field); 6] = [
    ("id", Field::Id),
    ("user_id", Field::UserId),
    ("object_id", Field::ObjectId),
    ("response_code", Field::ResponseCode),
    ("request_id", Field::RequestId),
    ("parent_request_id", Field::ParentRequestId),
];

/// The distinct fields behind the stream labels (`service_name` shares `source`).
pub(super) fn stream_fields() -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for (_, field) in STREAM_LABELS {
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    fields
}

pub(super) fn stream_field(name: &str) -> Option<Field> {
    STREAM_LABELS
        .iter()
        .find(|(label, _)| *label == name)
        .map(|(_, field)| *field)
}

pub(super) fn metadata_field(name: &str) -> Option<Field> {
    METADATA_FIELDS
        .iter()
        .find(|(label, _)| *label == name)
        .map(|(_, field)| *field)
}

/// A stream label or a fixed metadata field: what the store can filter and group by.
pub(super) fn label_field(name: &str) -> Option<Field> {
    stream_field(name).or_else(|| metadata_field(name))
}

/// The label names that show a field.
pub(super) fn names_of(field: Field) -> impl Iterator<Item = &'static str> {
    STREAM_LABELS
        .iter()
        .chain(METADATA_FIELDS.iter())
        .filter(move |(_, f)| *f == field)
        .map(|(name, _)| *name)
}

/// A field's value as a label shows it: level names in lower case (as Grafana
/// expects), kinds by name; `None` when absent or empty, as Loki has no empty labels.
pub(super) fn rendered(record: &Record, field: Field) -> Option<String> {
    let value = field_value(record, field)?;
    render_value(field, &value)
}

/// A stored value as a label shows it (see [`rendered`]).
pub(super) fn render_value(field: Field, value: &logbook_core::query::Scalar) -> Option<String> {
    let text = field.render_value(value);
    let text = match field {
        Field::Level => text.to_ascii_lowercase(),
        _ => text,
    };
    (!text.is_empty()).then_some(text)
}

/// The labels of a record's stream.
pub(super) fn stream_labels(record: &Record) -> LabelMap {
    STREAM_LABELS
        .iter()
        .filter_map(|(name, field)| rendered(record, *field).map(|v| (name.to_string(), v)))
        .collect()
}

/// A record's structured metadata: its id, the per-record fields, and each key of
/// its `data` (strings as they are, other values as compact JSON). A data key that
/// collides with a label name is shown as `data_<key>`.
pub(super) fn structured_metadata(record: &Record) -> LabelMap {
    let mut metadata: LabelMap = METADATA_FIELDS
        .iter()
        .filter_map(|(name, field)| rendered(record, *field).map(|v| (name.to_string(), v)))
        .collect();
    if let Some(data) = &record.data {
        for (key, value) in data {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.is_empty() {
                continue;
            }
            let mut name = sanitize(key);
            if name.is_empty() {
                continue;
            }
            if label_field(&name).is_some() {
                name = format!("data_{name}");
            }
            metadata.entry(name).or_insert(text);
        }
    }
    metadata
}

/// A valid label name from any text: characters other than ASCII letters, digits and
/// `_` become `_`, and a leading digit gets a `_` before it (as Loki's parsers do).
pub(super) fn sanitize(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::{Kind, Level, NewRecord, Timestamp};
    use serde_json::json;

    #[test]
    fn a_record_is_a_stream_a_line_and_metadata() {
        let mut new = NewRecord::new(Kind::Log);
        new.level = Some(Level::Warn);
        new.source = Some("api".into());
        new.category = Some(String::new());
        new.request_id = Some("req-1".into());
        new.data = json!({"trace-id": "abc", "status": 5, "nothing": null, "n": {"a": 1}})
            .as_object()
            .cloned();
        let record = new.into_record(42, Timestamp(1));
        assert_eq!(
            stream_labels(&record),
            LabelMap::from([
                ("kind".into(), "log".into()),
                ("level".into(), "warn".into()),
                ("service_name".into(), "api".into()),
                ("source".into(), "api".into()),
            ])
        );
        assert_eq!(
            structured_metadata(&record),
            LabelMap::from([
                ("id".into(), "42".into()),
                ("request_id".into(), "req-1".into()),
                ("trace_id".into(), "abc".into()),
                ("data_status".into(), "5".into()),
                ("n".into(), "{\"a\":1}".into()),
            ])
        );
        assert_eq!(sanitize("1a.b"), "_1a_b");
    }
}
