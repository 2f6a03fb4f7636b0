//! Log queries: the matching lines of a time range, newest or oldest first by
//! timestamp (ties by id), through the store's conditions and then the in-memory
//! pipeline, read in pages so memory stays bounded whatever the range holds; and
//! their rendering as Loki's streams.

use super::labels::LabelMap;
use super::pipeline::Entry;
use super::pipeline::Pipeline;
use super::plan::Selection;
use super::stats::Stats;
use super::Context;
use crate::error::ApiError;
use logbook_core::query::{Comparison, Scalar};
use logbook_core::{Condition, Cursor, Field, Order, Query, Record, SortKey};
use logbook_store::GroupQuery;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Records read per page when the pipeline filters in memory.
const PAGE: u64 = 1000;

/// `[start, end)` in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub(super) fn conditions(self) -> [Condition; 2] {
        [
            Condition::Compare(Field::Ts, Comparison::Ge, Scalar::Int(self.start)),
            Condition::Compare(Field::Ts, Comparison::Lt, Scalar::Int(self.end)),
        ]
    }
}

/// Turns the selection's open matchers into conditions from the distinct values of
/// their fields within the span (one grouped read each), so the store selects.
pub(super) async fn resolve_open(
    ctx: &Context<'_>,
    selection: &mut Selection,
    span: Span,
) -> Result<(), ApiError> {
    while let Some((field, _, _)) = selection.open.first().cloned() {
        let mut conditions = selection.conditions.clone();
        conditions.extend(span.conditions());
        let query = ctx.scoped(conditions);
        let groups = ctx
            .state
            .store
            .group(&query, &GroupQuery::by(&[field]))
            .await?;
        let distinct: Vec<Option<String>> = groups
            .into_iter()
            .map(|g| g.key.into_iter().next().flatten())
            .collect();
        selection.resolve(field, &distinct);
    }
    Ok(())
}

/// The order pages are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// By record id, through the store's planner (its fast path for "newest N"),
    /// continuing after the last id.
    ById,
    /// By timestamp, ties by id, continuing after the last (timestamp, id).
    ByTime,
}

/// Matching records page by page in one direction, continuing after the last one
/// seen so no page depends on an offset.
pub(super) struct Pages {
    conditions: Vec<Condition>,
    forward: bool,
    reading: Reading,
    after: Option<(i64, i64)>,
    page: u64,
    done: bool,
}

impl Pages {
    pub(super) fn new(
        conditions: Vec<Condition>,
        forward: bool,
        reading: Reading,
        page: u64,
    ) -> Pages {
        Pages {
            conditions,
            forward,
            reading,
            after: None,
            page: page.max(1),
            done: false,
        }
    }

    pub(super) async fn next(
        &mut self,
        ctx: &Context<'_>,
        stats: &mut Stats,
    ) -> Result<Option<Vec<Record>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut conditions = self.conditions.clone();
        let (bound, beyond) = if self.forward {
            (Comparison::Ge, Comparison::Gt)
        } else {
            (Comparison::Le, Comparison::Lt)
        };
        let mut after_cursor = None;
        match (self.reading, self.after) {
            (_, None) => {}
            (Reading::ById, Some((_, id))) => after_cursor = Some(Cursor(id)),
            (Reading::ByTime, Some((ts, id))) => {
                conditions.push(Condition::Compare(Field::Ts, bound, Scalar::Int(ts)));
                conditions.push(Condition::Any(vec![
                    Condition::Compare(Field::Ts, beyond, Scalar::Int(ts)),
                    Condition::Compare(Field::Id, beyond, Scalar::Int(id)),
                ]));
            }
        }
        let mut query = ctx.scoped(conditions);
        query.order = if self.forward {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        };
        if self.reading == Reading::ByTime {
            query.sort = vec![SortKey {
                field: Field::Ts,
                descending: !self.forward,
            }];
        }
        query.after = after_cursor;
        query.limit = Some(self.page);
        let records = ctx.state.store.query(&query).await?.records;
        if (records.len() as u64) < self.page {
            self.done = true;
        }
        if let Some(last) = records.last() {
            self.after = Some((last.ts.micros(), last.id));
        }
        for record in &records {
            stats.read(record);
        }
        Ok((!records.is_empty()).then_some(records))
    }
}

/// Which lines of a selection: the first `limit` in time order, newest first
/// unless `forward`; Loki's `interval` keeps, per stream, at most one line per this
/// many microseconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Take {
    pub forward: bool,
    pub limit: u64,
    pub interval: i64,
}

/// A log query's lines within a span.
pub(super) async fn select(
    ctx: &Context<'_>,
    mut selection: Selection,
    span: Span,
    take: Take,
    stats: &mut Stats,
) -> Result<Vec<Entry>, ApiError> {
    resolve_open(ctx, &mut selection, span).await?;
    let mut conditions = selection.conditions.clone();
    conditions.extend(span.conditions());
    select_lines(ctx, conditions, &selection.pipeline, take, stats).await
}

/// Pages read by id, beyond the first, before reading by time instead.
const ID_ROUNDS: usize = 10;

/// The first `limit` lines in time order (ties by id) of the records matching
/// `conditions` that the pipeline keeps.
///
/// Records mostly arrive in about time order (concurrent writers interleave a
/// little), so they are read by id, where the store's planner is fast, keeping the
/// best `limit` lines so far; then the unread records beyond the furthest kept
/// line's time (the only ones that could still take a place) are read through the
/// timestamp index and judged in memory. Only when there are too many of those
/// after several pages (a large backfill of old timestamps among new ones) are the
/// records read by time instead.
pub(super) async fn select_lines(
    ctx: &Context<'_>,
    conditions: Vec<Condition>,
    pipeline: &Pipeline,
    request: Take,
    stats: &mut Stats,
) -> Result<Vec<Entry>, ApiError> {
    if request.interval == 0 {
        if let Some(entries) = by_id_checked(ctx, &conditions, pipeline, request, stats).await? {
            stats.returned(entries.len());
            return Ok(entries);
        }
    }
    let page = if pipeline.filters() {
        PAGE
    } else {
        request.limit
    };
    let mut pages = Pages::new(conditions, request.forward, Reading::ByTime, page);
    let entries = read(ctx, &mut pages, pipeline, request, stats).await?;
    stats.returned(entries.len());
    Ok(entries)
}

async fn by_id_checked(
    ctx: &Context<'_>,
    conditions: &[Condition],
    pipeline: &Pipeline,
    request: Take,
    stats: &mut Stats,
) -> Result<Option<Vec<Entry>>, ApiError> {
    let first = if pipeline.filters() {
        PAGE
    } else {
        request.limit
    };
    let mut pages = Pages::new(conditions.to_vec(), request.forward, Reading::ById, first);
    // The check may look at a superset: conditions an index answers, not substrings
    // (which would send it through the trigram index over every match).
    let indexed: Vec<Condition> = conditions.iter().filter(|c| indexed(c)).cloned().collect();
    let limit = request.limit as usize;
    let mut best: Vec<Entry> = Vec::new();
    for _ in 0..=ID_ROUNDS {
        let Some(records) = pages.next(ctx, stats).await? else {
            // Everything was read: nothing is left to take a place.
            sort_in_time(&mut best, request.forward);
            best.truncate(limit);
            return Ok(Some(best));
        };
        let examined = records.last().map(|r| r.id);
        best.extend(records.iter().filter_map(|r| pipeline.process(r)));
        sort_in_time(&mut best, request.forward);
        best.truncate(limit);
        if let (Some(last), true) = (examined, best.len() >= limit) {
            let beyond = beyond_edge(ctx, &indexed, &best, last, request.forward, stats).await?;
            if let Some(candidates) = beyond {
                // Every record that could still take a place is here (a superset):
                // the full conditions and the pipeline decide which do.
                let full = Query {
                    conditions: conditions.to_vec(),
                    ..Query::default()
                };
                best.extend(
                    candidates
                        .iter()
                        .filter(|r| full.matches(r))
                        .filter_map(|r| pipeline.process(r)),
                );
                sort_in_time(&mut best, request.forward);
                best.truncate(limit);
                return Ok(Some(best));
            }
        }
        pages.page = PAGE.max(request.limit);
    }
    Ok(None)
}

/// Conditions the store answers from an index or a plain comparison.
fn indexed(condition: &Condition) -> bool {
    match condition {
        Condition::In(..) | Condition::NotIn(..) | Condition::Compare(..) => true,
        Condition::All(inner) | Condition::Any(inner) => inner.iter().all(indexed),
        _ => false,
    }
}

/// Records read beyond the edge at most, before reading further pages instead.
const BEYOND_EDGE: u64 = 10_000;

/// The records beyond `last_id` (the last one read, in reading order) that lie
/// beyond the kept lines' furthest time: the only ones that could still take a
/// place among them. `None` when there are more than [`BEYOND_EDGE`].
async fn beyond_edge(
    ctx: &Context<'_>,
    conditions: &[Condition],
    entries: &[Entry],
    last_id: i64,
    forward: bool,
    stats: &mut Stats,
) -> Result<Option<Vec<Record>>, ApiError> {
    let Some(edge) = entries.last().map(|e| e.ts.micros()) else {
        return Ok(Some(Vec::new()));
    };
    let (id_side, time_side) = if forward {
        (Comparison::Gt, Comparison::Lt)
    } else {
        (Comparison::Lt, Comparison::Gt)
    };
    // The narrow time bound first: a planner that drives by the first timestamp
    // condition then reads only the few index entries beyond the edge.
    let mut check = vec![
        Condition::Compare(Field::Ts, time_side, Scalar::Int(edge)),
        Condition::Compare(Field::Id, id_side, Scalar::Int(last_id)),
    ];
    check.extend_from_slice(conditions);
    let mut query = ctx.scoped(check);
    query.limit = Some(BEYOND_EDGE + 1);
    let records = ctx.state.store.query(&query).await?.records;
    for record in &records {
        stats.read(record);
    }
    Ok((records.len() as u64 <= BEYOND_EDGE).then_some(records))
}

fn sort_in_time(entries: &mut [Entry], forward: bool) {
    entries.sort_by_key(|e| (e.ts.micros(), e.id));
    if !forward {
        entries.reverse();
    }
}

/// Pages through the pipeline until `limit` lines are kept or the records end.
async fn read(
    ctx: &Context<'_>,
    pages: &mut Pages,
    pipeline: &Pipeline,
    request: Take,
    stats: &mut Stats,
) -> Result<Vec<Entry>, ApiError> {
    let mut entries = Vec::new();
    let mut last_kept: HashMap<LabelMap, i64> = HashMap::new();
    while let Some(records) = pages.next(ctx, stats).await? {
        for record in &records {
            let Some(entry) = pipeline.process(record) else {
                continue;
            };
            if request.interval > 0 {
                let ts = entry.ts.micros();
                if let Some(previous) = last_kept.get(&entry.stream) {
                    if (ts - previous).abs() < request.interval {
                        continue;
                    }
                }
                last_kept.insert(entry.stream.clone(), ts);
            }
            entries.push(entry);
            if entries.len() as u64 >= request.limit {
                return Ok(entries);
            }
        }
    }
    Ok(entries)
}

/// A line's timestamp as Loki writes it: nanoseconds since the epoch, as a string.
pub(super) fn nanos_text(micros: i64) -> String {
    format!("{}", i128::from(micros) * 1000)
}

/// The lines as Loki's streams, in the order given. With categorised labels the
/// stream is the stream labels and each line carries its structured metadata and
/// parsed labels; without, every label is a stream label (Loki's older form).
pub(super) fn streams(entries: &[Entry], categorize: bool) -> Value {
    let mut order: Vec<(LabelMap, Vec<Value>)> = Vec::new();
    let mut index: HashMap<LabelMap, usize> = HashMap::new();
    for entry in entries {
        let key = if categorize {
            entry.stream.clone()
        } else {
            entry.all_labels()
        };
        let value = if categorize {
            let mut extra = Map::new();
            if !entry.metadata.is_empty() {
                extra.insert("structuredMetadata".into(), json!(entry.metadata));
            }
            if !entry.parsed.is_empty() {
                extra.insert("parsed".into(), json!(entry.parsed));
            }
            json!([nanos_text(entry.ts.micros()), entry.line, extra])
        } else {
            json!([nanos_text(entry.ts.micros()), entry.line])
        };
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            order.push((key, Vec::new()));
            order.len() - 1
        });
        order[slot].1.push(value);
    }
    Value::Array(
        order
            .into_iter()
            .map(|(stream, values)| json!({"stream": stream, "values": values}))
            .collect(),
    )
}
