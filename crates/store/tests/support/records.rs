//! What a query should answer, computed in memory from the records with
//! `Query::matches`, the executable definition of the filter model; and records
//! to write.

use logbook_core::query::{field_value, Comparison, Condition, Field, Scalar};
use logbook_core::{Kind, Level, NewRecord, Order, Query, Record, Timestamp};
use logbook_store::Group;
use std::cmp::Ordering;

/// A log record with a level, category and message.
pub fn log(level: Level, category: &str, message: &str) -> NewRecord {
    NewRecord {
        kind: Some(Kind::Log),
        ts: Some(Timestamp(1_700_000_000_000_000)),
        level: Some(level),
        category: Some(category.into()),
        message: Some(message.into()),
        ..NewRecord::default()
    }
}

/// The condition a cursor adds: only records after it in the query's order.
fn after_cursor(query: &Query, record: &Record) -> bool {
    match (query.after, query.order) {
        (None, _) => true,
        (Some(c), Order::NewestFirst) => record.id < c.0,
        (Some(c), Order::OldestFirst) => record.id > c.0,
    }
}

fn by_id(order: Order) -> impl Fn(&Record, &Record) -> Ordering {
    move |a, b| match order {
        Order::NewestFirst => b.id.cmp(&a.id),
        Order::OldestFirst => a.id.cmp(&b.id),
    }
}

/// Absent values sort lowest; ties go by id in the query's order.
fn sort_order(query: &Query) -> impl Fn(&Record, &Record) -> Ordering + '_ {
    move |a, b| {
        for key in &query.sort {
            let (x, y) = (field_value(a, key.field), field_value(b, key.field));
            let ordering = if key.descending { y.cmp(&x) } else { x.cmp(&y) };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        by_id(query.order)(a, b)
    }
}

/// Every match in the query's order, cursor applied, before offset and limit.
pub fn matching(all: &[Record], query: &Query) -> Vec<Record> {
    let mut found: Vec<Record> = all
        .iter()
        .filter(|r| query.matches(r) && after_cursor(query, r))
        .cloned()
        .collect();
    found.sort_by(sort_order(query));
    found
}

/// The page `RecordStore::query` returns.
pub fn page(all: &[Record], query: &Query) -> Vec<Record> {
    let found = matching(all, query);
    let limit = query.limit.map_or(usize::MAX, |l| l as usize);
    found
        .into_iter()
        .skip(query.offset as usize)
        .take(limit)
        .collect()
}

/// What `RecordStore::count` answers (the cursor counts; offset and limit do not).
pub fn count(all: &[Record], query: &Query) -> u64 {
    all.iter()
        .filter(|r| query.matches(r) && after_cursor(query, r))
        .count() as u64
}

/// What `RecordStore::export` yields: every match in the query's order after its
/// cursor, up to `high_water`; sort, offset and limit do not apply.
pub fn export(all: &[Record], query: &Query, high_water: i64) -> Vec<Record> {
    let mut found: Vec<Record> = all
        .iter()
        .filter(|r| r.id <= high_water && query.matches(r) && after_cursor(query, r))
        .cloned()
        .collect();
    found.sort_by(by_id(query.order));
    found
}

/// What `RecordStore::group` answers: groups in key order (absent first, integers
/// by value), keys as text (integers in decimal). The cursor does not apply.
pub fn groups(all: &[Record], query: &Query, fields: &[Field]) -> Vec<Group> {
    let mut keyed: std::collections::BTreeMap<Vec<Option<Scalar>>, (u64, i64)> =
        std::collections::BTreeMap::new();
    for r in all.iter().filter(|r| query.matches(r)) {
        let key: Vec<Option<Scalar>> = fields.iter().map(|f| field_value(r, *f)).collect();
        let entry = keyed.entry(key).or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(r.ts.micros());
    }
    keyed
        .into_iter()
        .map(|(key, (count, last_ts))| Group {
            key: key
                .into_iter()
                .map(|v| {
                    v.map(|v| match v {
                        Scalar::Int(n) => n.to_string(),
                        Scalar::Text(t) => t,
                    })
                })
                .collect(),
            count,
            last_ts: Timestamp(last_ts),
        })
        .collect()
}

/// Ids a cursor-paged, oldest-first read from `after` must deliver.
pub fn ids_after(all: &[Record], after: i64) -> Vec<i64> {
    all.iter().map(|r| r.id).filter(|id| *id > after).collect()
}

/// `id <op> n`
pub fn id_is(cmp: Comparison, n: i64) -> Condition {
    Condition::Compare(Field::Id, cmp, Scalar::Int(n))
}

/// A histogram for a test case: its width and split drawn from the case's group
/// fields, so every split field and a few widths are exercised.
pub fn histogram_for(fields: &[Field], query: &Query) -> logbook_core::Histogram {
    let widths = [1_000_000, 7_000_000, 3_600_000_000];
    let width = widths[(query.conditions.len() + fields.len()) % widths.len()];
    let by = fields
        .first()
        .copied()
        .filter(|f| logbook_core::Field::LISTED.contains(f))
        .filter(|_| fields.len() == 1);
    logbook_core::Histogram::new(width, by)
        .unwrap_or_else(|_| logbook_core::Histogram::new(width, None).expect("a positive width"))
}
