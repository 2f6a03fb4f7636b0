//! Random records and queries for the differential tests: values from small pools
//! so that filters hit, miss and tie often. The generator keeps to what the APIs
//! build: values typed as their field (`Field::parse_value` does that for every
//! API), substring search on text fields, case folding on ASCII letters (and
//! non-ASCII letters without case).

use logbook_core::query::{Comparison, Condition, Field, Scalar, SortKey};
use logbook_core::{Cursor, Kind, Level, NewRecord, Order, Query, Timestamp};
use proptest::prelude::*;

const BASE_TS: i64 = 1_700_000_000_000_000;

const WORDS: &[&str] = &[
    "disk", "Disk", "TIMEOUT", "timeout", "pull", "image", "café", "naïve", "abc", "ab", "x", "zz",
    "%_", "o'k", "\"q\"", "a\\b",
];
const CATEGORIES: &[&str] = &["image", "network", "Image", "café", ""];
const NAMES: &[&str] = &["alice", "bob", "Bob", "node-1", "node-2", "naïve"];
const DATA_KEYS: &[&str] = &["k", "action_arguments", "n"];

fn text(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => proptest::sample::select(pool).prop_map(|s| Some(s.to_string())),
    ]
}

fn message() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        6 => proptest::collection::vec(proptest::sample::select(WORDS), 0..5)
            .prop_map(|words| Some(words.join(" "))),
    ]
}

fn data() -> impl Strategy<Value = Option<serde_json::Map<String, serde_json::Value>>> {
    let value = prop_oneof![
        proptest::sample::select(WORDS).prop_map(serde_json::Value::from),
        (0i64..4).prop_map(serde_json::Value::from),
        Just(serde_json::json!({"inner": "disk"})),
    ];
    prop_oneof![
        1 => Just(None),
        2 => proptest::collection::vec((proptest::sample::select(DATA_KEYS), value), 0..3)
            .prop_map(|pairs| {
                Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
    ]
}

fn level() -> impl Strategy<Value = Option<Level>> {
    prop_oneof![
        1 => Just(None),
        4 => proptest::sample::select(&Level::ALL[..]).prop_map(Some),
    ]
}

fn new_record() -> impl Strategy<Value = NewRecord> {
    (
        (
            proptest::sample::select(&Kind::ALL[..]),
            0i64..40,
            level(),
            text(CATEGORIES),
            text(NAMES),
            text(NAMES),
            text(NAMES),
        ),
        (text(NAMES), text(NAMES), text(NAMES), message(), data()),
    )
        .prop_map(
            |(
                (kind, ts, level, category, source, instance, user),
                (object_id, request_id, domain_id, message, data),
            )| {
                NewRecord {
                    kind: Some(kind),
                    // Ties and timestamps out of id order, as clients send them.
                    ts: Some(Timestamp(BASE_TS + ts * 1_000_000)),
                    level,
                    category,
                    source,
                    instance,
                    user,
                    object_id,
                    request_id,
                    domain_id,
                    message,
                    data,
                    ..NewRecord::default()
                }
            },
        )
}

/// Fields a generated condition may test, each with values to test it against.
fn field_and_value() -> impl Strategy<Value = (Field, Scalar)> {
    let text_value = |field: Field, pool: &'static [&'static str]| {
        proptest::sample::select(pool).prop_map(move |v| (field, Scalar::Text(v.to_string())))
    };
    prop_oneof![
        (0i64..60).prop_map(|n| (Field::Id, Scalar::Int(n))),
        (0i64..40).prop_map(|n| (Field::Ts, Scalar::Int(BASE_TS + n * 1_000_000))),
        proptest::sample::select(&Kind::ALL[..]).prop_map(|k| (Field::Kind, Scalar::Int(k.code()))),
        proptest::sample::select(&Level::ALL[..])
            .prop_map(|l| (Field::Level, Scalar::Int(l.number()))),
        text_value(Field::Category, CATEGORIES),
        text_value(Field::Source, NAMES),
        text_value(Field::Instance, NAMES),
        text_value(Field::User, NAMES),
        text_value(Field::ObjectId, NAMES),
        text_value(Field::RequestId, NAMES),
        text_value(Field::DomainId, NAMES),
        text_value(Field::Message, WORDS),
        text_value(Field::DataText("k"), WORDS),
        text_value(Field::DataText("action_arguments"), WORDS),
    ]
}

fn needle() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(WORDS).prop_map(str::to_string),
        // Pieces of words, including across a space, and absent ones.
        (proptest::sample::select(WORDS), 0usize..4, 1usize..5).prop_map(|(w, from, len)| {
            let chars: Vec<char> = format!("{w} {w}").chars().collect();
            let from = from.min(chars.len());
            chars[from..(from + len).min(chars.len())].iter().collect()
        }),
        Just("zebrafish".to_string()),
        Just(String::new()),
    ]
}

fn comparison() -> impl Strategy<Value = Comparison> {
    proptest::sample::select(
        &[
            Comparison::Lt,
            Comparison::Le,
            Comparison::Gt,
            Comparison::Ge,
        ][..],
    )
}

fn substring_field() -> impl Strategy<Value = Field> {
    proptest::sample::select(
        &[
            Field::Message,
            Field::Message,
            Field::Category,
            Field::User,
            Field::Data,
            Field::DataText("k"),
        ][..],
    )
}

fn leaf_condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => proptest::collection::vec(field_and_value(), 0..3).prop_map(|pairs| {
            // One field, several values: the first pair's field decides.
            let field = pairs.first().map(|p| p.0).unwrap_or(Field::Category);
            let values = pairs.into_iter().filter(|p| p.0 == field).map(|p| p.1).collect();
            Condition::In(field, values)
        }),
        1 => field_and_value().prop_map(|(f, v)| Condition::NotIn(f, vec![v])),
        3 => (field_and_value(), comparison()).prop_map(|((f, v), c)| Condition::Compare(f, c, v)),
        4 => (substring_field(), needle()).prop_map(|(f, n)| Condition::Contains(f, n)),
        1 => (substring_field(), needle()).prop_map(|(f, n)| Condition::ContainsCaseSensitive(f, n)),
        1 => (
            proptest::sample::select(&[Field::Message, Field::Source, Field::Level, Field::Id][..]),
            needle()
        )
            .prop_map(|(f, n)| Condition::StartsWith(f, n.chars().take(2).collect())),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        6 => leaf_condition(),
        1 => proptest::collection::vec(leaf_condition(), 0..3).prop_map(Condition::Any),
        1 => proptest::collection::vec(leaf_condition(), 0..3).prop_map(Condition::All),
        1 => leaf_condition().prop_map(|c| Condition::Not(Box::new(c))),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    let sort_key = (
        proptest::sample::select(&[Field::Ts, Field::Instance, Field::Level, Field::Category][..]),
        any::<bool>(),
    )
        .prop_map(|(field, descending)| SortKey { field, descending });
    (
        proptest::collection::vec(condition(), 0..3),
        any::<bool>(),
        prop_oneof![4 => Just(Vec::new()), 1 => proptest::collection::vec(sort_key, 1..3)],
        prop_oneof![3 => Just(None), 1 => (0i64..60).prop_map(|id| Some(Cursor(id)))],
        prop_oneof![4 => Just(0u64), 1 => 1u64..5],
        prop_oneof![1 => Just(None), 3 => (1u64..12).prop_map(Some)],
    )
        .prop_map(|(conditions, newest, sort, after, offset, limit)| Query {
            conditions,
            order: if newest {
                Order::NewestFirst
            } else {
                Order::OldestFirst
            },
            sort,
            after,
            offset,
            limit,
        })
}

fn group_fields() -> impl Strategy<Value = Vec<Field>> {
    proptest::collection::vec(
        proptest::sample::select(
            &[
                Field::Kind,
                Field::Level,
                Field::Category,
                Field::Source,
                Field::Instance,
                Field::User,
            ][..],
        ),
        1..3,
    )
}

/// One random store: its batches, then the queries asked of it, then a delete.
#[derive(Debug, Clone)]
pub struct Case {
    pub batches: Vec<Vec<NewRecord>>,
    pub queries: Vec<(Query, Vec<Field>)>,
    pub delete: Query,
}

pub fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(proptest::collection::vec(new_record(), 1..16), 1..8),
        proptest::collection::vec((query(), group_fields()), 10..40),
        query(),
    )
        .prop_map(|(batches, queries, delete)| Case {
            batches,
            queries,
            delete,
        })
}
