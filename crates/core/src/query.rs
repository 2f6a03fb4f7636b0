//! One filter model that every API translates into, and that the stores translate
//! into SQL. Live streams evaluate the same model in memory with [`Query::matches`],
//! so a record matches a stream exactly when it would match a query.

use crate::error::FieldError;
use crate::level::Level;
use crate::record::{Kind, Record};
use crate::time::Timestamp;
use base64::Engine;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A record field that can be filtered or sorted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    Ts,
    Kind,
    Level,
    Category,
    Source,
    Instance,
    Logger,
    User,
    UserId,
    DomainId,
    ProjectId,
    ObjectType,
    ObjectId,
    Action,
    Status,
    ResponseCode,
    RequestId,
    ParentRequestId,
    Message,
    /// The JSON payload, compared as its compact text.
    Data,
    /// The text stored under one key of the JSON payload (a dialect's field kept in
    /// `data`, e.g. the journal's `action_arguments`). A missing key or a value that
    /// is not a JSON string reads as absent. Not a native parameter: [`Field::parse`]
    /// never returns it. Keys are ASCII letters, digits and `_`; any other key reads
    /// as absent everywhere, so SQL never has to quote one.
    DataText(&'static str),
}

impl Field {
    pub const ALL: [Field; 21] = [
        Field::Id,
        Field::Ts,
        Field::Kind,
        Field::Level,
        Field::Category,
        Field::Source,
        Field::Instance,
        Field::Logger,
        Field::User,
        Field::UserId,
        Field::DomainId,
        Field::ProjectId,
        Field::ObjectType,
        Field::ObjectId,
        Field::Action,
        Field::Status,
        Field::ResponseCode,
        Field::RequestId,
        Field::ParentRequestId,
        Field::Message,
        Field::Data,
    ];

    /// The fields a query selects by listing values (`category=image,export`) and a
    /// histogram splits by: few distinct values, each meaningful on its own. Free text
    /// (`message`, `data`) and per-record values (`id`, `ts`) are not among them.
    pub const LISTED: [Field; 16] = [
        Field::Kind,
        Field::Level,
        Field::Category,
        Field::Source,
        Field::Instance,
        Field::Logger,
        Field::User,
        Field::UserId,
        Field::DomainId,
        Field::ProjectId,
        Field::ObjectType,
        Field::ObjectId,
        Field::Action,
        Field::Status,
        Field::ResponseCode,
        Field::RequestId,
    ];

    /// The core name, which is also the native parameter and the store column.
    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Ts => "ts",
            Field::Kind => "kind",
            Field::Level => "level",
            Field::Category => "category",
            Field::Source => "source",
            Field::Instance => "instance",
            Field::Logger => "logger",
            Field::User => "user",
            Field::UserId => "user_id",
            Field::DomainId => "domain_id",
            Field::ProjectId => "project_id",
            Field::ObjectType => "object_type",
            Field::ObjectId => "object_id",
            Field::Action => "action",
            Field::Status => "status",
            Field::ResponseCode => "response_code",
            Field::RequestId => "request_id",
            Field::ParentRequestId => "parent_request_id",
            Field::Message => "message",
            Field::Data => "data",
            Field::DataText(key) => key,
        }
    }

    /// Whether a payload key can be addressed by [`Field::DataText`].
    pub fn is_plain_data_key(key: &str) -> bool {
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Fields stored as integers (ids, microseconds, kind codes, level numbers).
    pub fn is_integer(self) -> bool {
        matches!(self, Field::Id | Field::Ts | Field::Kind | Field::Level)
    }

    /// A stored value as clients read it: level and kind names instead of their codes.
    /// The inverse of [`Field::parse_value`].
    pub fn render_value(self, value: &Scalar) -> String {
        match (self, value) {
            (Field::Level, Scalar::Int(n)) => Level::from_number(*n)
                .map(|l| l.name().to_string())
                .unwrap_or_else(|| n.to_string()),
            (Field::Kind, Scalar::Int(n)) => Kind::from_code(*n)
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| n.to_string()),
            (_, Scalar::Int(n)) => n.to_string(),
            (_, Scalar::Text(t)) => t.clone(),
        }
    }

    /// Reads a client's text as a value of this field, e.g. `WARNING` -> 30 for levels.
    pub fn parse_value(self, text: &str) -> Result<Scalar, FieldError> {
        let name = self.name();
        match self {
            Field::Id => text
                .trim()
                .parse::<i64>()
                .map(Scalar::Int)
                .map_err(|_| FieldError::new(name, format!("{text:?} is not an integer id"))),
            Field::Ts => Timestamp::parse(text)
                .map(|t| Scalar::Int(t.micros()))
                .ok_or_else(|| {
                    FieldError::new(
                        name,
                        format!("{text:?} is not an RFC 3339 timestamp or epoch seconds"),
                    )
                }),
            Field::Kind => Kind::parse(text)
                .map(|k| Scalar::Int(k.code()))
                .ok_or_else(|| {
                    FieldError::new(name, format!("unknown kind {text:?} (log, event, journal)"))
                }),
            Field::Level => Level::parse(text)
                .map(|l| Scalar::Int(l.number()))
                .ok_or_else(|| {
                    FieldError::new(
                        name,
                        format!("unknown level {text:?} (DEBUG, INFO, WARN, ERROR, CRITICAL)"),
                    )
                }),
            _ => Ok(Scalar::Text(text.to_string())),
        }
    }
}

/// A value compared against a field: integers for integer fields, text otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The field equals one of the values (a one-element list is plain equality).
    In(Field, Vec<Scalar>),
    NotIn(Field, Vec<Scalar>),
    Compare(Field, Comparison, Scalar),
    /// Case-insensitive substring.
    Contains(Field, String),
    /// Case-sensitive substring (Loki's `|=`); an absent field contains nothing.
    ContainsCaseSensitive(Field, String),
    StartsWith(Field, String),
    /// Any of the conditions holds (an empty list matches nothing).
    Any(Vec<Condition>),
    /// Every condition holds (an empty list matches everything).
    All(Vec<Condition>),
    /// The condition does not hold. Conditions on an absent field never hold, so
    /// their negation always does (`Not(Contains(message, "x"))` matches a record
    /// without a message).
    Not(Box<Condition>),
}

/// The direction records are returned in when no explicit sort is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// An explicit sort key; ties are always broken by id in the query's [`Order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub field: Field,
    pub descending: bool,
}

/// A position in the global record order: the id of the last record a client saw.
/// Rendered opaquely so clients do not build them by hand or depend on their form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub i64);

impl Cursor {
    pub fn encode(self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("r{}", self.0))
    }

    pub fn decode(text: &str) -> Result<Cursor, FieldError> {
        let invalid = || FieldError::new("cursor", "is not a cursor this server issued");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let id = text
            .strip_prefix('r')
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|id| *id >= 0)
            .ok_or_else(invalid)?;
        Ok(Cursor(id))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// All must hold.
    pub conditions: Vec<Condition>,
    pub order: Order,
    /// Explicit sort (e.g. Waldur's `o`); empty means by id in `order`.
    pub sort: Vec<SortKey>,
    /// Only records after this position in `order` (exclusive).
    pub after: Option<Cursor>,
    pub offset: u64,
    /// `None` means no limit (exports, counts).
    pub limit: Option<u64>,
}

impl Query {
    pub fn newest_first() -> Query {
        Query::default()
    }

    pub fn oldest_first() -> Query {
        Query {
            order: Order::OldestFirst,
            ..Query::default()
        }
    }

    pub fn with(mut self, condition: Condition) -> Query {
        self.conditions.push(condition);
        self
    }

    pub fn kinds(self, kinds: &[Kind]) -> Query {
        self.with(Condition::In(
            Field::Kind,
            kinds.iter().map(|k| Scalar::Int(k.code())).collect(),
        ))
    }

    pub fn min_level(self, level: Level) -> Query {
        self.with(Condition::Compare(
            Field::Level,
            Comparison::Ge,
            Scalar::Int(level.number()),
        ))
    }

    pub fn since(self, ts: Timestamp) -> Query {
        self.with(Condition::Compare(
            Field::Ts,
            Comparison::Ge,
            Scalar::Int(ts.micros()),
        ))
    }

    pub fn until(self, ts: Timestamp) -> Query {
        self.with(Condition::Compare(
            Field::Ts,
            Comparison::Le,
            Scalar::Int(ts.micros()),
        ))
    }

    /// Restricts to the given domains (tenancy). Applied by the server, never by clients.
    pub fn within_domains(self, domains: &[String]) -> Query {
        self.with(Condition::In(
            Field::DomainId,
            domains.iter().cloned().map(Scalar::Text).collect(),
        ))
    }

    /// Adds `field IN (values)` parsing each value as the field's type.
    pub fn values<S: AsRef<str>>(self, field: Field, values: &[S]) -> Result<Query, FieldError> {
        let parsed = values
            .iter()
            .map(|v| field.parse_value(v.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.with(Condition::In(field, parsed)))
    }

    pub fn text_contains(self, text: &str) -> Query {
        self.with(Condition::Contains(Field::Message, text.to_string()))
    }

    /// Whether a record satisfies every condition (cursor, offset and limit aside).
    pub fn matches(&self, record: &Record) -> bool {
        self.matches_fields(record)
    }

    /// [`Query::matches`] over anything that reads a record's fields (a row of a
    /// block's columns): the one definition, wherever the record lives.
    pub fn matches_fields(&self, record: &impl Fields) -> bool {
        self.conditions.iter().all(|c| c.matches_fields(record))
    }
}

/// Reads a record's fields in place, as conditions see them: integers for `id`,
/// `ts` (microseconds), `kind` (its code) and `level` (its number), text otherwise;
/// `Field::Data` as the payload's compact JSON text.
pub trait Fields {
    fn field(&self, field: Field) -> Option<FieldRef<'_>>;
}

impl Fields for Record {
    fn field(&self, field: Field) -> Option<FieldRef<'_>> {
        field_ref(self, field)
    }
}

impl Condition {
    /// Whether the record satisfies the condition. Runs for every live record and
    /// every stream subscriber, so it reads the record's fields in place and never
    /// allocates for the common conditions.
    pub fn matches(&self, record: &Record) -> bool {
        self.matches_fields(record)
    }

    /// [`Condition::matches`] over any reader of a record's fields.
    pub fn matches_fields(&self, record: &impl Fields) -> bool {
        match self {
            Condition::In(field, values) => record
                .field(*field)
                .is_some_and(|v| values.iter().any(|s| v.cmp_scalar(s) == Ordering::Equal)),
            Condition::NotIn(field, values) => record
                .field(*field)
                .is_none_or(|v| values.iter().all(|s| v.cmp_scalar(s) != Ordering::Equal)),
            Condition::Compare(field, cmp, value) => record
                .field(*field)
                .is_some_and(|v| compare(v.cmp_scalar(value), *cmp)),
            Condition::Contains(field, needle) => record.field(*field).is_some_and(|v| match v {
                FieldRef::Text(text) => contains_ignoring_case(&text, needle),
                FieldRef::Int(_) => false,
            }),
            Condition::ContainsCaseSensitive(field, needle) => {
                record.field(*field).is_some_and(|v| match v {
                    FieldRef::Text(text) => text.contains(needle.as_str()),
                    FieldRef::Int(n) => n.to_string().contains(needle.as_str()),
                })
            }
            Condition::StartsWith(field, prefix) => record.field(*field).is_some_and(|v| match v {
                FieldRef::Text(text) => text.starts_with(prefix.as_str()),
                FieldRef::Int(n) => n.to_string().starts_with(prefix.as_str()),
            }),
            Condition::Any(conditions) => conditions.iter().any(|c| c.matches_fields(record)),
            Condition::All(conditions) => conditions.iter().all(|c| c.matches_fields(record)),
            Condition::Not(condition) => !condition.matches_fields(record),
        }
    }
}

fn compare(ordering: Ordering, cmp: Comparison) -> bool {
    match cmp {
        Comparison::Lt => ordering == Ordering::Less,
        Comparison::Le => ordering != Ordering::Greater,
        Comparison::Gt => ordering == Ordering::Greater,
        Comparison::Ge => ordering != Ordering::Less,
    }
}

/// Case-insensitive substring test, without allocating when the needle is ASCII.
fn contains_ignoring_case(text: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let (text, needle) = (text.as_bytes(), needle.as_bytes());
        needle.is_empty()
            || text
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
    } else {
        text.to_lowercase().contains(&needle.to_lowercase())
    }
}

/// A field's value read in place, without copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef<'a> {
    Int(i64),
    Text(Cow<'a, str>),
}

impl<'a> FieldRef<'a> {
    /// What [`Field::DataText`] reads from a payload given as its JSON text: the
    /// string under `key`, if the key is plain and the value is a string.
    pub fn data_text(json: &str, key: &str) -> Option<FieldRef<'a>> {
        if !Field::is_plain_data_key(key) {
            return None;
        }
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).ok()?;
        match map.get(key)? {
            serde_json::Value::String(s) => Some(FieldRef::Text(Cow::Owned(s.clone()))),
            _ => None,
        }
    }

    pub fn into_scalar(self) -> Scalar {
        match self {
            FieldRef::Int(n) => Scalar::Int(n),
            FieldRef::Text(t) => Scalar::Text(t.into_owned()),
        }
    }

    /// Orders like `Scalar` (integers before text).
    pub fn cmp_scalar(&self, scalar: &Scalar) -> Ordering {
        match (self, scalar) {
            (FieldRef::Int(a), Scalar::Int(b)) => a.cmp(b),
            (FieldRef::Text(a), Scalar::Text(b)) => a.as_ref().cmp(b.as_str()),
            (FieldRef::Int(_), Scalar::Text(_)) => Ordering::Less,
            (FieldRef::Text(_), Scalar::Int(_)) => Ordering::Greater,
        }
    }
}

fn text_ref(value: &Option<String>) -> Option<FieldRef<'_>> {
    value.as_deref().map(|s| FieldRef::Text(Cow::Borrowed(s)))
}

/// A record's value of `field`, read in place (`None` when absent).
pub fn field_ref(record: &Record, field: Field) -> Option<FieldRef<'_>> {
    let text = text_ref;
    match field {
        Field::Id => Some(FieldRef::Int(record.id)),
        Field::Ts => Some(FieldRef::Int(record.ts.micros())),
        Field::Kind => Some(FieldRef::Int(record.kind.code())),
        Field::Level => record.level.map(|l| FieldRef::Int(l.number())),
        Field::Category => text(&record.category),
        Field::Source => text(&record.source),
        Field::Instance => text(&record.instance),
        Field::Logger => text(&record.logger),
        Field::User => text(&record.user),
        Field::UserId => text(&record.user_id),
        Field::DomainId => text(&record.domain_id),
        Field::ProjectId => text(&record.project_id),
        Field::ObjectType => text(&record.object_type),
        Field::ObjectId => text(&record.object_id),
        Field::Action => text(&record.action),
        Field::Status => text(&record.status),
        Field::ResponseCode => text(&record.response_code),
        Field::RequestId => text(&record.request_id),
        Field::ParentRequestId => text(&record.parent_request_id),
        Field::Message => text(&record.message),
        Field::Data => record.data.as_ref().map(|d| {
            // Serialising a map of JSON values cannot fail.
            FieldRef::Text(Cow::Owned(serde_json::to_string(d).unwrap_or_default()))
        }),
        Field::DataText(key) => record
            .data
            .as_ref()
            .filter(|_| Field::is_plain_data_key(key))
            .and_then(|d| d.get(key))
            .and_then(|v| v.as_str())
            .map(|s| FieldRef::Text(Cow::Borrowed(s))),
    }
}

/// A field's value as a `Scalar` (owned).
pub fn field_value(record: &Record, field: Field) -> Option<Scalar> {
    field_ref(record, field).map(|v| match v {
        FieldRef::Int(n) => Scalar::Int(n),
        FieldRef::Text(t) => Scalar::Text(t.into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::NewRecord;

    fn record(level: Level, category: &str, message: &str) -> Record {
        NewRecord {
            kind: Some(Kind::Log),
            level: Some(level),
            category: Some(category.into()),
            message: Some(message.into()),
            ..NewRecord::default()
        }
        .into_record(1, Timestamp(5_000_000))
    }

    #[test]
    fn substring_matching_ignores_case_in_place() {
        assert!(contains_ignoring_case("Disk TIMEOUT on /var", "timeout"));
        assert!(contains_ignoring_case("abc", ""));
        assert!(!contains_ignoring_case("ab", "abc"));
        assert!(contains_ignoring_case("Größe ÜBER", "über"));
        assert!(!contains_ignoring_case("timeout", "time out"));
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = Cursor(12345);
        assert_eq!(Cursor::decode(&c.encode()).expect("valid"), c);
        for bad in ["", "12345", "!!", "cjEyMw-x"] {
            assert_eq!(
                Cursor::decode(bad).expect_err("bad").field,
                "cursor",
                "{bad}"
            );
        }
    }

    #[test]
    fn in_memory_matching_follows_the_query() {
        let q = Query::newest_first()
            .min_level(Level::Warn)
            .values(Field::Category, &["image", "export"])
            .expect("valid")
            .text_contains("TIMEOUT");
        assert!(q.matches(&record(Level::Error, "image", "pull timeout")));
        assert!(!q.matches(&record(Level::Info, "image", "pull timeout")));
        assert!(!q.matches(&record(Level::Error, "system", "pull timeout")));
        assert!(!q.matches(&record(Level::Error, "image", "pulled")));
    }

    #[test]
    fn a_data_key_is_matched_as_the_exact_text_stored_under_it() {
        let args = r#"{"user":  "Admin"}"#;
        let mut r = record(Level::Info, "x", "y");
        let mut data = serde_json::Map::new();
        data.insert("action_arguments".into(), args.into());
        data.insert("n".into(), 5.into());
        r.data = Some(data);
        let field = Field::DataText("action_arguments");
        assert_eq!(field_value(&r, field), Some(Scalar::Text(args.into())));
        assert!(Condition::In(field, vec![Scalar::Text(args.into())]).matches(&r));
        assert!(Condition::Contains(field, "\"admin\"".into()).matches(&r));
        assert!(Condition::StartsWith(field, "{\"user\":  ".into()).matches(&r));
        assert!(
            !Condition::Contains(field, "action".into()).matches(&r),
            "key text is not value"
        );
        // Non-string values, missing keys and keys SQL could not address read as absent.
        for absent in ["n", "missing", "a'b", ""] {
            assert_eq!(field_value(&r, Field::DataText(absent)), None, "{absent}");
            assert!(
                Condition::NotIn(Field::DataText(absent), vec![Scalar::Text("5".into())])
                    .matches(&r)
            );
        }
        assert_eq!(
            Field::parse("action_arguments"),
            None,
            "not a native parameter"
        );
    }

    #[test]
    fn case_sensitive_substrings_and_negation() {
        let r = record(Level::Error, "image", "Pull TIMEOUT");
        let exact = |needle: &str| Condition::ContainsCaseSensitive(Field::Message, needle.into());
        assert!(exact("TIMEOUT").matches(&r));
        assert!(!exact("timeout").matches(&r));
        assert!(Condition::Not(Box::new(exact("timeout"))).matches(&r));
        assert!(!Condition::Not(Box::new(exact("Pull"))).matches(&r));
        // An absent field satisfies no condition, so it satisfies every negation.
        let mut silent = r.clone();
        silent.message = None;
        assert!(!exact("").matches(&silent));
        assert!(Condition::Not(Box::new(exact("x"))).matches(&silent));
        assert!(Condition::Not(Box::new(Condition::Compare(
            Field::Message,
            Comparison::Gt,
            Scalar::Text(String::new())
        )))
        .matches(&silent));
    }

    #[test]
    fn parse_value_names_the_field() {
        assert_eq!(Field::Level.parse_value("warning"), Ok(Scalar::Int(30)));
        assert_eq!(
            Field::Kind.parse_value("blog").expect_err("bad").field,
            "kind"
        );
        assert_eq!(Field::Ts.parse_value("soon").expect_err("bad").field, "ts");
    }
}
