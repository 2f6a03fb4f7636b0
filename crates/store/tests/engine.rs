//! The block query engine against `Query::matches`: the random records of the
//! differential test are cut into segments at random points, each either a hot
//! segment (decoded, in memory) or a sealed block (encoded with tiny pages so that
//! queries cross pages, then read back through its blob), and every query, page by
//! cursor, count, group, export and get must answer what the records in memory say.

mod support;

use logbook_core::{Cursor, Query, Record, Timestamp};
use logbook_store::blocks::engine;
use logbook_store::blocks::format::{self, Options};
use logbook_store::blocks::segment::Segment;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::Arc;
use support::generate::{case, Case};
use support::records;

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

fn fail(e: logbook_store::StoreError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Cuts `all` into segments: `cuts` decides where, `sealed` which are blocks.
fn segments(all: &[Record], cuts: &[usize], sealed: &[bool], page_rows: usize) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (all.len() + 1)).collect();
    points.push(all.len());
    points.sort_unstable();
    for (i, end) in points.into_iter().enumerate() {
        if end <= start {
            continue;
        }
        let part = &all[start..end];
        let segment = if sealed.get(i).copied().unwrap_or(true) {
            let encoded = format::encode(
                part,
                &Options {
                    page_rows,
                    zstd_level: 1,
                },
            );
            Segment::sealed(Arc::new(encoded.blob), Arc::new(encoded.summary)).expect("sealed")
        } else {
            Segment::hot(part)
        };
        out.push(segment);
        start = end;
    }
    out
}

fn ids(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

fn run(
    case: &Case,
    cuts: &[usize],
    sealed: &[bool],
    page_rows: usize,
) -> Result<(), TestCaseError> {
    let now = Timestamp(1_800_000_000_000_000);
    let mut all = Vec::new();
    let mut next = 1;
    for batch in &case.batches {
        for new in batch {
            all.push(new.clone().into_record(next, now));
            next += 1;
        }
    }
    // Deleted records leave gaps in the ids, as after a delete and a rewrite.
    all.retain(|r| !case.delete.matches(r) || r.id % 2 == 0);
    let segments = segments(&all, cuts, sealed, page_rows);
    for (query, fields) in &case.queries {
        let page = engine::query(&segments, query).map_err(fail)?;
        let expected = records::page(&all, query);
        check(page == expected, || {
            format!(
                "query {query:?}\n got {:?}\nwant {:?}",
                ids(&page),
                ids(&expected)
            )
        })?;
        if query.sort.is_empty() && query.offset == 0 && query.limit.is_some() {
            let mut paged = Vec::new();
            let mut q = query.clone();
            loop {
                let page = engine::query(&segments, &q).map_err(fail)?;
                let full = q.limit.is_some_and(|l| page.len() as u64 >= l);
                let last = page.last().map(|r| r.id);
                paged.extend(page);
                match (full, last) {
                    (true, Some(last)) => q.after = Some(Cursor(last)),
                    _ => break,
                }
            }
            let expected = records::matching(&all, query);
            check(paged == expected, || format!("paging {query:?}"))?;
        }
        let count = engine::count(&segments, query).map_err(fail)?;
        let expected = records::count(&all, query);
        check(count == expected, || {
            format!("count {query:?}: got {count}, want {expected}")
        })?;
        let groups = engine::group(&segments, query, &logbook_store::GroupQuery::by(fields))
            .map_err(fail)?;
        let expected = records::groups(&all, query, fields);
        check(groups == expected, || {
            format!("group {fields:?} of {query:?}\n got {groups:?}\nwant {expected:?}")
        })?;
        let histogram = records::histogram_for(fields, query);
        let buckets = engine::histogram(&segments, query, &histogram).map_err(fail)?;
        let expected = histogram.count(all.iter().filter(|r| query.matches(r)));
        check(buckets == expected, || {
            format!("histogram {histogram:?} of {query:?}\n got {buckets:?}\nwant {expected:?}")
        })?;
        let high_water = next - 3;
        let mut exported = Vec::new();
        let mut after = None;
        loop {
            let batch =
                engine::export_batch(&segments, query, high_water, after, 3).map_err(fail)?;
            after = batch.last().map(|r| r.id);
            let done = batch.len() < 3;
            exported.extend(batch);
            if done {
                break;
            }
        }
        let expected = records::export(&all, query, high_water);
        check(exported == expected, || {
            format!(
                "export {query:?}\n got {:?}\nwant {:?}",
                ids(&exported),
                ids(&expected)
            )
        })?;
        let mut lines = Vec::new();
        let mut after = None;
        loop {
            let written =
                engine::export_ndjson_batch(&segments, query, high_water, after, 3, &mut lines)
                    .map_err(fail)?;
            after = written.last_id;
            if written.rows < 3 {
                break;
            }
        }
        let mut want = Vec::new();
        for record in &expected {
            record.write_json(&mut want);
            want.push(b'\n');
        }
        check(lines == want, || {
            format!(
                "NDJSON export {query:?}\n got {}\nwant {}",
                String::from_utf8_lossy(&lines),
                String::from_utf8_lossy(&want)
            )
        })?;
    }
    for id in 0..next + 1 {
        let got = engine::get(&segments, id).map_err(fail)?;
        let expected = all.iter().find(|r| r.id == id);
        check(got.as_ref() == expected, || format!("get {id}"))?;
    }
    Ok(())
}

#[test]
fn the_engine_answers_as_the_query_model_defines() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(96);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        case(),
        proptest::collection::vec(0usize..200, 0..5),
        proptest::collection::vec(any::<bool>(), 6),
        1usize..6,
    );
    let outcome = runner.run(&strategy, |(case, cuts, sealed, page_rows)| {
        run(&case, &cuts, &sealed, page_rows)
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[test]
fn an_empty_store_answers_nothing() {
    let query = Query::newest_first();
    assert!(engine::query(&[], &query).expect("query").is_empty());
    assert_eq!(engine::count(&[], &query).expect("count"), 0);
    assert_eq!(engine::get(&[], 1).expect("get"), None);
}

#[test]
fn counts_from_summaries_agree_at_every_boundary() {
    use logbook_core::query::{Comparison, Condition, Field, Scalar};
    use logbook_core::{Kind, Level, NewRecord};
    let all: Vec<Record> = (1..=60i64)
        .map(|id| {
            let mut r = NewRecord::new(Kind::Log);
            r.ts = Some(Timestamp(1_000_000 * id));
            r.level = Some(if id % 3 == 0 {
                Level::Error
            } else {
                Level::Info
            });
            r.category = Some(["a", "b"][id as usize % 2].into());
            r.into_record(id, Timestamp(0))
        })
        .collect();
    let segments = segments(&all, &[7, 20, 21, 45], &[true, false, true, true, false], 4);
    for field in [Field::Id, Field::Ts] {
        for cmp in [
            Comparison::Lt,
            Comparison::Le,
            Comparison::Gt,
            Comparison::Ge,
        ] {
            for bound in 0..=61i64 {
                let bound = if field == Field::Ts {
                    bound * 1_000_000
                } else {
                    bound
                };
                let query = Query::newest_first()
                    .min_level(Level::Error)
                    .with(Condition::Compare(field, cmp, Scalar::Int(bound)));
                let expected = records::count(&all, &query);
                assert_eq!(
                    engine::count(&segments, &query).expect("count"),
                    expected,
                    "{field:?} {cmp:?} {bound}"
                );
            }
        }
    }
}

#[test]
fn counts_and_histograms_from_time_buckets_agree_in_every_window() {
    use logbook_core::{Kind, Level, NewRecord};
    // About 40 minutes of records, a few out of order and some far apart, so that
    // blocks get buckets of several widths and windows straddle them.
    let all: Vec<Record> = (1..=3000i64)
        .map(|id| {
            let mut r = NewRecord::new(if id % 7 == 0 { Kind::Event } else { Kind::Log });
            let jitter = (id * 7919) % 3_000_000 - 1_500_000;
            let far = if id % 500 == 0 { 7_200_000_000 } else { 0 };
            r.ts = Some(Timestamp(
                1_700_000_000_000_000 + id * 800_000 + jitter + far,
            ));
            r.level = Some([Level::Info, Level::Warn, Level::Error][id as usize % 3]);
            r.category = (id % 5 != 0).then(|| ["a", "b", "c"][id as usize % 3].into());
            r.into_record(id, Timestamp(0))
        })
        .collect();
    let with_buckets = segments(
        &all,
        &[300, 1200, 1210, 2500],
        &[true, false, true, true, false],
        97,
    );
    // The same blocks as a version-1 summary has them: no buckets, no page ranges.
    let without: Vec<Segment> = with_buckets
        .iter()
        .map(|s| Segment {
            summary: Arc::new(logbook_store::blocks::summary::Summary {
                bucket_width: 0,
                buckets: Vec::new(),
                page_ts: Vec::new(),
                ..(*s.summary).clone()
            }),
            source: Arc::clone(&s.source),
        })
        .collect();
    assert!(with_buckets.iter().all(|s| s.summary.bucket_width > 0));
    for segments in [&with_buckets, &without] {
        check_windows(&all, segments);
    }
}

fn check_windows(all: &[Record], segments: &[Segment]) {
    use logbook_core::query::{Comparison, Condition, Field, Scalar};
    use logbook_core::{Histogram, Kind, Level};
    let base = 1_700_000_000_000_000i64;
    let windows = [
        (0, 300_000_000),
        (123_456_789, 423_456_789),
        (1_000_000_000, 1_000_000_001),
        (-5, 2_700_000_000),
        (600_000_000, 9_000_000_000),
        (2_399_999_999, 2_400_000_000),
    ];
    for (since, until) in windows {
        let (since, until) = (Timestamp(base + since), Timestamp(base + until));
        let queries = [
            Query::newest_first().since(since).until(until),
            Query::newest_first()
                .since(since)
                .with(Condition::Compare(
                    Field::Ts,
                    Comparison::Lt,
                    Scalar::Int(until.micros()),
                ))
                .with(Condition::In(
                    Field::Category,
                    vec![Scalar::Text("a".into())],
                )),
            Query::newest_first().since(since).min_level(Level::Warn),
            Query::newest_first().until(until).kinds(&[Kind::Event]),
        ];
        for query in queries {
            assert_eq!(
                engine::count(segments, &query).expect("count"),
                records::count(all, &query),
                "count {query:?}"
            );
            for interval in [1_000_000, 7_000_000, 60_000_000, 864_000_000, 3_600_000_000] {
                for by in [
                    None,
                    Some(Field::Level),
                    Some(Field::Category),
                    Some(Field::Kind),
                ] {
                    let histogram = Histogram::new(interval, by).expect("histogram");
                    assert_eq!(
                        engine::histogram(segments, &query, &histogram).expect("histogram"),
                        histogram.count(all.iter().filter(|r| query.matches(r))),
                        "histogram {histogram:?} of {query:?}"
                    );
                }
            }
        }
    }
}
