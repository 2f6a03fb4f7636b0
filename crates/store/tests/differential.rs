//! The differential property test: random records, random queries. Whatever a store
//! answers to `query` (every page, both orders, with cursors), `count`, `group`,
//! `export` and `delete` must equal what `Query::matches` selects from the same
//! records in memory (see `support::records`). Values come from small pools so
//! that filters hit, miss and tie often.
//!
//! `PROPTEST_CASES` sets the number of random stores per backend (default 32); the
//! generator is `support::generate`.

mod support;

use logbook_core::{Cursor, Query, Record, Timestamp};
use logbook_store::{GroupQuery, Store};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::generate::{case, Case};
use support::records;
use support::{Backend, TestStore};

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

async fn run_case(t: &TestStore, case: &Case) -> Result<(), TestCaseError> {
    let store = t.store.as_ref();
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
    t.seal().await;
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
        let groups = store
            .group(query, &GroupQuery::by(fields))
            .await
            .map_err(fail)?;
        let expected = records::groups(&all, query, fields);
        check(groups == expected, || {
            format!("group {fields:?} of {query:?}\n got {groups:?}\nwant {expected:?}")
        })?;
        let counted = store.count_groups(query, fields).await.map_err(fail)?;
        check(counted == expected.len() as u64, || {
            format!("count_groups {fields:?} of {query:?}: got {counted}")
        })?;
        let histogram = records::histogram_for(fields, query);
        let buckets = store.histogram(query, &histogram).await.map_err(fail)?;
        let expected = histogram.count(all.iter().filter(|r| query.matches(r)));
        check(buckets == expected, || {
            format!("histogram {histogram:?} of {query:?}\n got {buckets:?}\nwant {expected:?}")
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
    let journal = |n: u64| {
        let mut r = logbook_core::NewRecord::new(logbook_core::Kind::Journal);
        r.ts = Some(Timestamp(1_700_000_000_000_000));
        r.message = Some(format!("cleared {n}"));
        r
    };
    let deleted = store
        .delete_recorded(
            &case.delete,
            Box::new(move |removal: &logbook_store::Removal| journal(removal.count)),
        )
        .await
        .map_err(fail)?;
    let expected = all.iter().filter(|r| case.delete.matches(r)).count() as u64;
    check(deleted == expected, || {
        format!("delete {:?}: got {deleted}, want {expected}", case.delete)
    })?;
    let next = store.high_water().await.map_err(fail)?;
    all.retain(|r| !case.delete.matches(r));
    all.push(journal(deleted).into_record(next, now));
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
            let outcome = run_case(&t, &case).await;
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
fn sqlite_tiered_answers_as_the_query_model_defines() {
    differential(Backend::SqliteTiered);
}

#[test]
fn postgres_answers_as_the_query_model_defines() {
    differential(Backend::Postgres);
}
