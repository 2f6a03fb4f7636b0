//! Log queries: the matching lines of a time range, newest or oldest first by
//! timestamp (ties by id), through the store's conditions and then the in-memory
//! pipeline, read in pages so memory stays bounded whatever the range holds; and
//! their rendering as Loki's streams.

use super::labels::LabelMap;
use super::pipeline::Entry;
use super::plan::Selection;
use super::stats::Stats;
use super::Context;
use crate::error::ApiError;
use logbook_core::query::{Comparison, Scalar};
use logbook_core::{Condition, Field, Order, Record, SortKey};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Records read per page when the pipeline filters in memory.
const PAGE: u64 = 1000;

/// `[start, end)` in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn conditions(self) -> [Condition; 2] {
        [
            Condition::Compare(Field::Ts, Comparison::Ge, Scalar::Int(self.start)),
            Condition::Compare(Field::Ts, Comparison::Lt, Scalar::Int(self.end)),
        ]
    }
}

/// Turns the selection's open matchers into conditions from the distinct values of
/// their fields within the span (one grouped read each), so the store selects.
pub async fn resolve_open(
    ctx: &Context<'_>,
    selection: &mut Selection,
    span: Span,
) -> Result<(), ApiError> {
    while let Some((field, _, _)) = selection.open.first().cloned() {
        let mut conditions = selection.conditions.clone();
        conditions.extend(span.conditions());
        let query = ctx.scoped(conditions);
        let groups = ctx.state.store.group(&query, &[field]).await?;
        let distinct: Vec<Option<String>> = groups
            .into_iter()
            .map(|g| g.key.into_iter().next().flatten())
            .collect();
        selection.resolve(field, &distinct);
    }
    Ok(())
}

/// Matching records in time order, page by page, continuing after the last one seen
/// (timestamp, then id) so no page depends on an offset.
pub struct Pages {
    conditions: Vec<Condition>,
    forward: bool,
    after: Option<(i64, i64)>,
    page: u64,
    done: bool,
}

impl Pages {
    pub fn new(conditions: Vec<Condition>, forward: bool, page: u64) -> Pages {
        Pages {
            conditions,
            forward,
            after: None,
            page: page.max(1),
            done: false,
        }
    }

    pub async fn next(
        &mut self,
        ctx: &Context<'_>,
        stats: &mut Stats,
    ) -> Result<Option<Vec<Record>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut conditions = self.conditions.clone();
        if let Some((ts, id)) = self.after {
            let (bound, beyond, later) = if self.forward {
                (Comparison::Ge, Comparison::Gt, Comparison::Gt)
            } else {
                (Comparison::Le, Comparison::Lt, Comparison::Lt)
            };
            conditions.push(Condition::Compare(Field::Ts, bound, Scalar::Int(ts)));
            conditions.push(Condition::Any(vec![
                Condition::Compare(Field::Ts, beyond, Scalar::Int(ts)),
                Condition::Compare(Field::Id, later, Scalar::Int(id)),
            ]));
        }
        let mut query = ctx.scoped(conditions);
        query.order = if self.forward {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        };
        query.sort = vec![SortKey {
            field: Field::Ts,
            descending: !self.forward,
        }];
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

/// What a log query asks for, beside its selection.
#[derive(Debug, Clone, Copy)]
pub struct LineRequest {
    pub span: Span,
    pub forward: bool,
    pub limit: u64,
    /// Loki's `interval`: per stream, at most one line per this many microseconds.
    pub interval: i64,
}

pub async fn select(
    ctx: &Context<'_>,
    mut selection: Selection,
    request: LineRequest,
    stats: &mut Stats,
) -> Result<Vec<Entry>, ApiError> {
    resolve_open(ctx, &mut selection, request.span).await?;
    let mut conditions = selection.conditions.clone();
    conditions.extend(request.span.conditions());
    let exact = !selection.pipeline.filters() && request.interval == 0;
    let page = if exact { request.limit } else { PAGE };
    let mut pages = Pages::new(conditions, request.forward, page);
    let mut entries = Vec::new();
    let mut last_kept: HashMap<LabelMap, i64> = HashMap::new();
    while let Some(records) = pages.next(ctx, stats).await? {
        for record in &records {
            let Some(entry) = selection.pipeline.process(record) else {
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
                stats.returned(entries.len());
                return Ok(entries);
            }
        }
    }
    stats.returned(entries.len());
    Ok(entries)
}

/// A line's timestamp as Loki writes it: nanoseconds since the epoch, as a string.
pub fn nanos_text(micros: i64) -> String {
    format!("{}", i128::from(micros) * 1000)
}

/// The lines as Loki's streams, in the order given. With categorised labels the
/// stream is the stream labels and each line carries its structured metadata and
/// parsed labels; without, every label is a stream label (Loki's older form).
pub fn streams(entries: &[Entry], categorize: bool) -> Value {
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
