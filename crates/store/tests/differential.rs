//! The differential property test: random records, random queries. Whatever a store
//! answers to `query` (every page, both orders, with cursors), `count`, `group`,
//! `export` and `delete` must equal what `Query::matches` selects from the same
//! records in memory (see `support::records`). Values come from small pools so
//! that filters hit, miss and tie often.
//!
//! `PROPTEST_CASES` sets the number of random stores per backend (default 32).
//!
//! The generator keeps to what the APIs build: values typed as their field
//! (`Field::parse_value` does that for every API), substring search on text fields,
//! case folding on ASCII letters (and non-ASCII letters without case).

mod support;

use logbook_core::query::{Comparison, Condition, Field, Scalar, SortKey};
use logbook_core::{Cursor, Kind, Level, NewRecord, Order, Query, Record, Timestamp};
use logbook_store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::records;
use support::{Backend, TestStore};

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
struct Case {
    batches: Vec<Vec<NewRecord>>,
    queries: Vec<(Query, Vec<Field>)>,
    delete: Query,
}

fn case() -> impl Strategy<Value = Case> {
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

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// Every page of `query`, following `next` cursors as the native API hands them out.
async fn every_page(store: &dyn Store, query: &Query) -> Result<Vec<Record>, TestCaseError> {
    let mut out = Vec::new();
    let mut page_query = query.clone();
    for _ in 0..200 {
        let page = store
            .query(&page_query)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let full = page_query
            .limit
            .is_some_and(|l| page.records.len() as u64 >= l);
        let last = page.records.last().map(|r| r.id);
        out.extend(page.records);
        match (full, last) {
            (true, Some(last)) => page_query.after = Some(Cursor(last)),
            _ => return Ok(out),
        }
    }
    Err(TestCaseError::fail("paging did not end"))
}

async fn run_case(store: &dyn Store, case: &Case) -> Result<(), TestCaseError> {
    let fail = |e: logbook_store::StoreError| TestCaseError::fail(e.to_string());
    let now = Timestamp::now();
    let mut all = Vec::new();
    for batch in &case.batches {
        let appended = store.append(batch.clone()).await.map_err(fail)?;
        let first = appended
            .first_id
            .ok_or_else(|| TestCaseError::fail("no id"))?;
        for (i, new) in batch.iter().enumerate() {
            all.push(new.clone().into_record(first + i as i64, now));
        }
    }
    for (query, fields) in &case.queries {
        let page = store.query(query).await.map_err(fail)?;
        let expected = records::page(&all, query);
        check(page.records == expected, || {
            format!(
                "query {query:?}\n got {:?}\nwant {:?}",
                ids(&page.records),
                ids(&expected)
            )
        })?;
        if query.sort.is_empty() && query.offset == 0 {
            let paged = every_page(store, query).await?;
            let expected = records::matching(&all, query);
            check(paged == expected, || {
                format!(
                    "paging {query:?}\n got {:?}\nwant {:?}",
                    ids(&paged),
                    ids(&expected)
                )
            })?;
        }
        let count = store.count(query).await.map_err(fail)?;
        let expected = records::count(&all, query);
        check(count == expected, || {
            format!("count {query:?}: got {count}, want {expected}")
        })?;
        let groups = store.group(query, fields).await.map_err(fail)?;
        let expected = records::groups(&all, query, fields);
        check(groups == expected, || {
            format!("group {fields:?} of {query:?}\n got {groups:?}\nwant {expected:?}")
        })?;
        let exported = export(store, query).await?;
        let expected = records::export(&all, query, i64::MAX);
        check(exported == expected, || {
            format!(
                "export {query:?}\n got {:?}\nwant {:?}",
                ids(&exported),
                ids(&expected)
            )
        })?;
    }
    let deleted = store.delete(&case.delete).await.map_err(fail)?;
    let expected = all.iter().filter(|r| case.delete.matches(r)).count() as u64;
    check(deleted == expected, || {
        format!("delete {:?}: got {deleted}, want {expected}", case.delete)
    })?;
    all.retain(|r| !case.delete.matches(r));
    let remaining = every_page(store, &Query::oldest_first()).await?;
    check(remaining == all, || {
        format!(
            "after delete {:?}\n got {:?}\nwant {:?}",
            case.delete,
            ids(&remaining),
            ids(&all)
        )
    })?;
    if let Some((query, _)) = case.queries.first() {
        let page = store.query(query).await.map_err(fail)?;
        let expected = records::page(&all, query);
        check(page.records == expected, || {
            format!("query after delete {query:?}")
        })?;
    }
    Ok(())
}

async fn export(store: &dyn Store, query: &Query) -> Result<Vec<Record>, TestCaseError> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let mut batches = store.export(query.clone());
    while let Some(batch) = batches.next().await {
        out.extend(batch.map_err(|e| TestCaseError::fail(e.to_string()))?);
    }
    Ok(out)
}

fn ids(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

fn differential(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let outcome = runner.run(&case(), |case| {
        runtime.block_on(async {
            let t = TestStore::open(backend).await;
            let outcome = run_case(t.store.as_ref(), &case).await;
            t.close().await;
            outcome
        })
    });
    if let Err(e) = outcome {
        panic!("{backend:?}: {e}");
    }
}

#[test]
fn sqlite_answers_as_the_query_model_defines() {
    differential(Backend::Sqlite);
}

#[test]
fn postgres_answers_as_the_query_model_defines() {
    differential(Backend::Postgres);
}
