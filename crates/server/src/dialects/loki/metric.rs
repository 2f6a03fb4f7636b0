//! Metric queries, evaluated at every step of a range (or at one instant).
//!
//! A range aggregation counts lines in windows `[t - offset - range, t - offset)`:
//! closed at the start and open at the end, like every Logbook time range and like
//! the histogram's buckets, so the store's histogram answers it. (Loki's windows
//! are open at the start and closed at the end; a line stamped exactly on a
//! boundary is counted one step later here. See docs/loki.md.)
//!
//! How each is answered, cheapest first:
//! - the store's histogram, when the store selects the lines exactly and the series
//!   need at most one field (the Explore logs volume, `sum by (level) (...)`);
//! - the store's count or group, for an instant;
//! - otherwise the lines themselves, read page by page in time order through the
//!   pipeline (regular expressions, parsers, `bytes_*`), counted in memory.

use super::labels::{label_field, render_value, stream_fields, LabelMap, STREAM_LABELS};
use super::lines::{resolve_open, Pages, Reading, Span};
use super::logql::{
    AggregationOp, BinaryExpr, BinaryOp, Comparison, MetricExpr, RangeAggregation,
    VectorAggregation,
};
use super::pipeline::{Entry, Pipeline};
use super::plan::plan;
use super::stats::Stats;
use super::Context;
use crate::error::ApiError;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use logbook_core::histogram::Histogram;
use logbook_core::query::Scalar;
use logbook_core::{Field, Timestamp};
use logbook_store::GroupQuery;
use std::collections::{BTreeMap, HashMap};

/// Most series one query may produce (Loki's default `max_query_series`).
pub(super) const MAX_SERIES: usize = 500;
/// Records read per page on the counting-in-memory path.
const SCAN_PAGE: u64 = 2000;

/// The instants a query is evaluated at, in microseconds: `count` steps from
/// `first`, `step` apart (an instant query has one).
#[derive(Debug, Clone, Copy)]
pub(super) struct Steps {
    pub first: i64,
    pub step: i64,
    pub count: usize,
}

impl Steps {
    pub(super) fn at(&self, k: usize) -> i64 {
        self.first + self.step * k as i64
    }

    fn last(&self) -> i64 {
        self.at(self.count.saturating_sub(1))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Series {
    pub labels: LabelMap,
    /// One per step; `None` where the series has no sample.
    pub points: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Scalar(f64),
    Vector(Vec<Series>),
}

fn too_many_series() -> ApiError {
    ApiError::bad_request(
        "query",
        format!(
            "maximum number of series ({MAX_SERIES}) reached for a single query; aggregate \
             (e.g. sum by (level) (...)), select fewer streams or shorten the range"
        ),
    )
}

pub(super) fn evaluate<'a>(
    ctx: &'a Context<'a>,
    expr: &'a MetricExpr,
    steps: Steps,
    stats: &'a mut Stats,
) -> BoxFuture<'a, Result<Value, ApiError>> {
    async move {
        match expr {
            MetricExpr::Literal(value) => Ok(Value::Scalar(*value)),
            MetricExpr::Vector(value) => Ok(Value::Vector(vec![Series {
                labels: LabelMap::new(),
                points: vec![Some(*value); steps.count],
            }])),
            MetricExpr::Range(range) => Ok(Value::Vector(
                range_aggregation(ctx, range, steps, Keys::All, stats).await?,
            )),
            MetricExpr::Aggregate(aggregation) => {
                // `sum by (x) (count_over_time(...))` sums lines into the series of
                // x directly, so the store can count them per x.
                let summed = aggregation.op == AggregationOp::Sum
                    && aggregation.grouping.as_ref().is_none_or(|g| !g.without);
                let inner = match (&*aggregation.inner, summed) {
                    (MetricExpr::Range(range), true) => {
                        let names = aggregation
                            .grouping
                            .as_ref()
                            .map(|g| g.labels.clone())
                            .unwrap_or_default();
                        Value::Vector(
                            range_aggregation(ctx, range, steps, Keys::Only(names), stats).await?,
                        )
                    }
                    (inner, _) => evaluate(ctx, inner, steps, stats).await?,
                };
                match inner {
                    Value::Vector(series) => {
                        Ok(Value::Vector(aggregate(aggregation, series, steps.count)))
                    }
                    Value::Scalar(_) => Err(ApiError::bad_request(
                        "query",
                        format!(
                            "{} needs a vector, not a scalar; wrap the number in vector()",
                            aggregation.op.name()
                        ),
                    )),
                }
            }
            MetricExpr::Binary(binary) => {
                let left = evaluate(ctx, &binary.left, steps, stats).await?;
                let right = evaluate(ctx, &binary.right, steps, stats).await?;
                combine(binary, left, right)
            }
        }
    }
    .boxed()
}

/// Which labels a range aggregation's series carry.
#[derive(Debug, Clone)]
enum Keys {
    /// Every stream label and parsed label (metadata only when asked for by name).
    All,
    /// Only these (a `sum by` around it).
    Only(Vec<String>),
}

impl Keys {
    fn of(&self, entry: &Entry) -> LabelMap {
        match self {
            Keys::All => {
                let mut labels = entry.stream.clone();
                labels.extend(entry.parsed.iter().map(|(k, v)| (k.clone(), v.clone())));
                labels
            }
            Keys::Only(names) => names
                .iter()
                .filter_map(|n| {
                    let value = entry
                        .stream
                        .get(n)
                        .or_else(|| entry.parsed.get(n))
                        .or_else(|| label_field(n).and_then(|_| entry.metadata.get(n)))?;
                    Some((n.clone(), value.clone()))
                })
                .collect(),
        }
    }

    /// The fields the store must split by for these keys, when no stage in memory
    /// can change a label; `None` if only the lines can tell.
    fn fields(&self, pipeline: &Pipeline) -> Option<Vec<Field>> {
        match self {
            Keys::Only(names) if names.is_empty() => Some(Vec::new()),
            _ if pipeline.changes_labels() => None,
            Keys::All => Some(stream_fields()),
            Keys::Only(names) => {
                let mut fields = Vec::new();
                for field in names.iter().filter_map(|n| label_field(n)) {
                    if !fields.contains(&field) {
                        fields.push(field);
                    }
                }
                Some(fields)
            }
        }
    }

    /// The labels of a store group (values in the order of `fields`).
    fn of_values(&self, fields: &[Field], values: &[Option<Scalar>]) -> LabelMap {
        let value_of = |field: Field| {
            fields
                .iter()
                .position(|f| *f == field)
                .and_then(|i| values.get(i).cloned().flatten())
                .and_then(|v| render_value(field, &v))
        };
        match self {
            Keys::All => STREAM_LABELS
                .iter()
                .filter_map(|(name, field)| value_of(*field).map(|v| (name.to_string(), v)))
                .collect(),
            Keys::Only(names) => names
                .iter()
                .filter_map(|n| label_field(n).and_then(value_of).map(|v| (n.clone(), v)))
                .collect(),
        }
    }
}

fn micros(nanos: i64, name: &str) -> Result<i64, ApiError> {
    if nanos % 1000 != 0 {
        return Err(ApiError::bad_request(
            "query",
            format!("the {name} must be a whole number of microseconds"),
        ));
    }
    Ok(nanos / 1000)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// Counts (and bytes) of lines per series per bucket of `width` microseconds.
type Buckets = HashMap<LabelMap, BTreeMap<i64, (u64, u64)>>;

async fn range_aggregation(
    ctx: &Context<'_>,
    range: &RangeAggregation,
    steps: Steps,
    keys: Keys,
    stats: &mut Stats,
) -> Result<Vec<Series>, ApiError> {
    let window = micros(range.range, "range")?;
    let offset = micros(range.offset, "offset")?;
    let mut selection = plan(&range.query)
        .map_err(|e| ApiError::bad_request("query", format!("error parsing regexp: {e}")))?;
    let span = Span {
        start: steps.first - offset - window,
        end: steps.last() - offset,
    };
    resolve_open(ctx, &mut selection, span).await?;
    let mut conditions = selection.conditions.clone();
    conditions.extend(span.conditions());
    let instant = steps.count == 1;
    let width = if instant {
        window
    } else {
        gcd(steps.step, gcd(window, offset))
    };
    let counted_by_store = !selection.pipeline.filters() && range.function.counts_lines();
    let fields = keys
        .fields(&selection.pipeline)
        .filter(|_| counted_by_store);
    let buckets: Buckets = match fields {
        Some(fields) if instant => {
            let query = ctx.scoped(conditions);
            let mut buckets = Buckets::new();
            if fields.is_empty() {
                let count = ctx.state.store.count(&query).await?;
                stats.counted(count);
                if count > 0 {
                    buckets.insert(LabelMap::new(), BTreeMap::from([(span.start, (count, 0))]));
                }
            } else {
                for group in ctx
                    .state
                    .store
                    .group(&query, &GroupQuery::by(&fields))
                    .await?
                {
                    stats.counted(group.count);
                    let values: Vec<Option<Scalar>> = fields
                        .iter()
                        .zip(&group.key)
                        .map(|(field, text)| group_value(*field, text.as_deref()))
                        .collect();
                    let labels = keys.of_values(&fields, &values);
                    let bucket = buckets.entry(labels).or_default();
                    bucket.entry(span.start).or_default().0 += group.count;
                    if buckets.len() > MAX_SERIES {
                        return Err(too_many_series());
                    }
                }
            }
            buckets
        }
        Some(fields) if fields.len() <= 1 => {
            let by = fields.first().copied();
            let histogram = Histogram::new(width, by)?;
            let query = ctx.scoped(conditions);
            let mut buckets = Buckets::new();
            for bucket in ctx.state.store.histogram(&query, &histogram).await? {
                stats.counted(bucket.count);
                let labels = keys.of_values(&fields, &[bucket.key]);
                let series = buckets.entry(labels).or_default();
                series.entry(bucket.start.micros()).or_default().0 += bucket.count;
                if buckets.len() > MAX_SERIES {
                    return Err(too_many_series());
                }
            }
            buckets
        }
        _ => {
            count_lines(
                ctx,
                &selection.pipeline,
                conditions,
                &keys,
                width,
                span,
                instant,
                stats,
            )
            .await?
        }
    };
    let mut series: Vec<Series> = buckets
        .into_iter()
        .map(|(labels, buckets)| Series {
            points: windows(&buckets, steps, window, offset, range, instant),
            labels,
        })
        .filter(|s| s.points.iter().any(Option::is_some))
        .collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series)
}

/// A group's text value as the field's stored value (levels and kinds are numbers).
fn group_value(field: Field, text: Option<&str>) -> Option<Scalar> {
    let text = text?;
    Some(if field.is_integer() {
        Scalar::Int(text.parse().ok()?)
    } else {
        Scalar::Text(text.to_string())
    })
}

/// Reads the lines of the span through the pipeline and counts them per series and
/// bucket.
#[allow(clippy::too_many_arguments)] // one call site; the values are the evaluation's state
async fn count_lines(
    ctx: &Context<'_>,
    pipeline: &Pipeline,
    conditions: Vec<logbook_core::Condition>,
    keys: &Keys,
    width: i64,
    span: Span,
    instant: bool,
    stats: &mut Stats,
) -> Result<Buckets, ApiError> {
    let mut buckets = Buckets::new();
    let mut pages = Pages::new(conditions, true, Reading::ById, SCAN_PAGE);
    while let Some(records) = pages.next(ctx, stats).await? {
        for record in &records {
            let Some(entry) = pipeline.process(record) else {
                continue;
            };
            let labels = keys.of(&entry);
            if !buckets.contains_key(&labels) && buckets.len() >= MAX_SERIES {
                return Err(too_many_series());
            }
            let start = if instant {
                span.start
            } else {
                let ts = entry.ts.micros();
                ts - ts.rem_euclid(width)
            };
            let cell = buckets.entry(labels).or_default().entry(start).or_default();
            cell.0 += 1;
            cell.1 += entry.line.len() as u64;
        }
    }
    Ok(buckets)
}

/// The value of each step's window from the buckets of one series.
fn windows(
    buckets: &BTreeMap<i64, (u64, u64)>,
    steps: Steps,
    window: i64,
    offset: i64,
    range: &RangeAggregation,
    instant: bool,
) -> Vec<Option<f64>> {
    let value = |count: u64, bytes: u64| -> Option<f64> {
        if count == 0 {
            return None;
        }
        let base = if range.function.counts_lines() {
            count as f64
        } else {
            bytes as f64
        };
        Some(if range.function.per_second() {
            base / (window as f64 / 1e6)
        } else {
            base
        })
    };
    if instant {
        let (count, bytes) = buckets
            .values()
            .fold((0, 0), |(c, b), (count, bytes)| (c + count, b + bytes));
        return vec![value(count, bytes)];
    }
    let starts: Vec<i64> = buckets.keys().copied().collect();
    let mut totals = vec![(0u64, 0u64)];
    for (count, bytes) in buckets.values() {
        let (c, b) = totals[totals.len() - 1];
        totals.push((c + count, b + bytes));
    }
    (0..steps.count)
        .map(|k| {
            let end = steps.at(k) - offset;
            let from = starts.partition_point(|s| *s < end - window);
            let to = starts.partition_point(|s| *s < end);
            let (count, bytes) = (totals[to].0 - totals[from].0, totals[to].1 - totals[from].1);
            value(count, bytes)
        })
        .collect()
}

/// A vector aggregation, step by step.
fn aggregate(aggregation: &VectorAggregation, series: Vec<Series>, count: usize) -> Vec<Series> {
    let group_of = |labels: &LabelMap| -> LabelMap {
        match &aggregation.grouping {
            None => LabelMap::new(),
            Some(g) if g.without => labels
                .iter()
                .filter(|(k, _)| !g.labels.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            Some(g) => labels
                .iter()
                .filter(|(k, _)| g.labels.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    };
    let mut groups: BTreeMap<LabelMap, Vec<Series>> = BTreeMap::new();
    for s in series {
        groups.entry(group_of(&s.labels)).or_default().push(s);
    }
    let mut out = Vec::new();
    for (labels, members) in groups {
        match aggregation.op {
            AggregationOp::Topk | AggregationOp::Bottomk => {
                let k = aggregation.param.unwrap_or(1.0) as usize;
                let mut kept: Vec<Series> = members
                    .iter()
                    .map(|m| Series {
                        labels: m.labels.clone(),
                        points: vec![None; count],
                    })
                    .collect();
                for step in 0..count {
                    let mut present: Vec<(usize, f64)> = members
                        .iter()
                        .enumerate()
                        .filter_map(|(i, m)| m.points[step].map(|v| (i, v)))
                        .collect();
                    present.sort_by(|a, b| {
                        let order = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
                        match aggregation.op {
                            AggregationOp::Topk => order.reverse(),
                            _ => order,
                        }
                    });
                    for (i, v) in present.into_iter().take(k) {
                        kept[i].points[step] = Some(v);
                    }
                }
                out.extend(
                    kept.into_iter()
                        .filter(|s| s.points.iter().any(Option::is_some)),
                );
            }
            op => {
                let points = (0..count)
                    .map(|step| {
                        let values: Vec<f64> =
                            members.iter().filter_map(|m| m.points[step]).collect();
                        if values.is_empty() {
                            return None;
                        }
                        Some(match op {
                            AggregationOp::Sum => values.iter().sum(),
                            AggregationOp::Count => values.len() as f64,
                            AggregationOp::Min => {
                                values.iter().copied().fold(f64::INFINITY, f64::min)
                            }
                            AggregationOp::Max => {
                                values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                            }
                            _ => values.iter().sum::<f64>() / values.len() as f64,
                        })
                    })
                    .collect();
                out.push(Series { labels, points });
            }
        }
    }
    out.retain(|s| s.points.iter().any(Option::is_some));
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn apply(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Mod => a % b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Compare(c) => f64::from(u8::from(compares(c, a, b))),
    }
}

fn compares(c: Comparison, a: f64, b: f64) -> bool {
    c.holds(a, b)
}

/// Arithmetic and comparisons between scalars and vectors. Vectors match on
/// identical label sets (no `on`/`ignoring`); a comparison without `bool` keeps the
/// left-hand sample where it holds.
fn combine(binary: &BinaryExpr, left: Value, right: Value) -> Result<Value, ApiError> {
    let op = binary.op;
    let filter = matches!(op, BinaryOp::Compare(_)) && !binary.return_bool;
    let point = |a: f64, b: f64, keep: f64| -> Option<f64> {
        match op {
            BinaryOp::Compare(c) if filter => compares(c, a, b).then_some(keep),
            _ => Some(apply(op, a, b)),
        }
    };
    Ok(match (left, right) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if filter {
                return Err(ApiError::bad_request(
                    "query",
                    "comparisons between scalars must use the bool modifier",
                ));
            }
            Value::Scalar(apply(op, a, b))
        }
        (Value::Vector(series), Value::Scalar(b)) => {
            Value::Vector(map_points(series, |a| point(a, b, a)))
        }
        (Value::Scalar(a), Value::Vector(series)) => {
            Value::Vector(map_points(series, |b| point(a, b, b)))
        }
        (Value::Vector(left), Value::Vector(right)) => {
            let by_labels: HashMap<&LabelMap, &Series> =
                right.iter().map(|s| (&s.labels, s)).collect();
            let matched = left
                .into_iter()
                .filter_map(|l| {
                    let r = by_labels.get(&l.labels)?;
                    let points = l
                        .points
                        .iter()
                        .zip(&r.points)
                        .map(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) => point(*a, *b, *a),
                            _ => None,
                        })
                        .collect();
                    Some(Series {
                        labels: l.labels,
                        points,
                    })
                })
                .filter(|s| s.points.iter().any(Option::is_some))
                .collect();
            Value::Vector(matched)
        }
    })
}

fn map_points(series: Vec<Series>, f: impl Fn(f64) -> Option<f64>) -> Vec<Series> {
    series
        .into_iter()
        .map(|s| Series {
            points: s.points.iter().map(|p| p.and_then(&f)).collect(),
            labels: s.labels,
        })
        .filter(|s| s.points.iter().any(Option::is_some))
        .collect()
}

/// A sample value as Loki writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
pub(super) fn value_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// A step's time as Loki writes it: seconds since the epoch, to the millisecond.
pub(super) fn time_json(micros: i64) -> serde_json::Value {
    let millis = micros.div_euclid(1000);
    if millis % 1000 == 0 {
        serde_json::Value::from(millis / 1000)
    } else {
        serde_json::Value::from(millis as f64 / 1000.0)
    }
}

/// The answer of a range query: a matrix (a scalar becomes one unlabelled series).
pub(super) fn matrix(value: Value, steps: Steps) -> serde_json::Value {
    let series = match value {
        Value::Scalar(v) => vec![Series {
            labels: LabelMap::new(),
            points: vec![Some(v); steps.count],
        }],
        Value::Vector(series) => series,
    };
    serde_json::Value::Array(
        series
            .into_iter()
            .map(|s| {
                let values: Vec<serde_json::Value> = s
                    .points
                    .iter()
                    .enumerate()
                    .filter_map(|(k, p)| {
                        p.map(|v| serde_json::json!([time_json(steps.at(k)), value_text(v)]))
                    })
                    .collect();
                serde_json::json!({"metric": s.labels, "values": values})
            })
            .collect(),
    )
}

/// The answer of an instant query: `(resultType, result)`.
pub(super) fn instant(value: Value, at: Timestamp) -> (&'static str, serde_json::Value) {
    match value {
        Value::Scalar(v) => (
            "scalar",
            serde_json::json!([time_json(at.micros()), value_text(v)]),
        ),
        Value::Vector(series) => (
            "vector",
            serde_json::Value::Array(
                series
                    .into_iter()
                    .filter_map(|s| {
                        let v = s.points.first().copied().flatten()?;
                        Some(serde_json::json!({
                            "metric": s.labels,
                            "value": [time_json(at.micros()), value_text(v)],
                        }))
                    })
                    .collect(),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::logql::{parse, Expr, Grouping};
    use super::*;

    fn series(labels: &[(&str, &str)], points: &[Option<f64>]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    fn aggregation(query: &str) -> VectorAggregation {
        match parse(query) {
            Ok(Expr::Metric(MetricExpr::Aggregate(a))) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aggregations_group_step_by_step() {
        let input = vec![
            series(&[("level", "error"), ("source", "a")], &[Some(1.0), None]),
            series(
                &[("level", "error"), ("source", "b")],
                &[Some(2.0), Some(5.0)],
            ),
            series(&[("level", "info"), ("source", "a")], &[None, Some(3.0)]),
        ];
        let sum = aggregate(&aggregation("sum by (level) (vector(0))"), input.clone(), 2);
        assert_eq!(
            sum,
            [
                series(&[("level", "error")], &[Some(3.0), Some(5.0)]),
                series(&[("level", "info")], &[None, Some(3.0)]),
            ]
        );
        let count = aggregate(
            &aggregation("count without (source) (vector(0))"),
            input.clone(),
            2,
        );
        assert_eq!(
            count[0],
            series(&[("level", "error")], &[Some(2.0), Some(1.0)])
        );
        let max = aggregate(&aggregation("max(vector(0))"), input.clone(), 2);
        assert_eq!(max, [series(&[], &[Some(2.0), Some(5.0)])]);
        let avg = aggregate(&aggregation("avg(vector(0))"), input.clone(), 2);
        assert_eq!(avg, [series(&[], &[Some(1.5), Some(4.0)])]);
        let top = aggregate(&aggregation("topk(1, vector(0))"), input, 2);
        assert_eq!(
            top,
            [series(
                &[("level", "error"), ("source", "b")],
                &[Some(2.0), Some(5.0)]
            )]
        );
        let _ = Grouping {
            without: false,
            labels: vec![],
        };
    }

    #[test]
    fn binary_operators_on_scalars_and_vectors() {
        let binary = |q: &str| match parse(q) {
            Ok(Expr::Metric(MetricExpr::Binary(b))) => *b,
            other => panic!("{other:?}"),
        };
        let v = |points: &[Option<f64>]| Value::Vector(vec![series(&[("a", "1")], points)]);
        assert_eq!(
            combine(
                &binary("vector(1) + vector(1)"),
                v(&[Some(1.0)]),
                v(&[Some(1.0)])
            )
            .ok(),
            Some(v(&[Some(2.0)]))
        );
        assert_eq!(
            combine(
                &binary("vector(1) > 2"),
                v(&[Some(1.0), Some(3.0)]),
                Value::Scalar(2.0)
            )
            .ok(),
            Some(v(&[None, Some(3.0)]))
        );
        assert_eq!(
            combine(
                &binary("vector(1) > bool 2"),
                v(&[Some(1.0), Some(3.0)]),
                Value::Scalar(2.0)
            )
            .ok(),
            Some(v(&[Some(0.0), Some(1.0)]))
        );
        assert!(combine(&binary("1 > 2"), Value::Scalar(1.0), Value::Scalar(2.0)).is_err());
        assert_eq!(value_text(2.0), "2");
        assert_eq!(value_text(0.25), "0.25");
        assert_eq!(value_text(f64::INFINITY), "+Inf");
        assert_eq!(
            time_json(1_700_000_000_500_000),
            serde_json::json!(1_700_000_000.5)
        );
        assert_eq!(
            time_json(1_700_000_000_000_000),
            serde_json::json!(1_700_000_000)
        );
    }

    #[test]
    fn windows_sum_the_buckets_they_cover() {
        let range = match parse(r#"count_over_time({a="b"}[2s])"#) {
            Ok(Expr::Metric(MetricExpr::Range(r))) => r,
            other => panic!("{other:?}"),
        };
        // Buckets of 1 s at 0, 1, 3 s; steps at 2, 3, 4, 5 s with a 2 s window.
        let buckets = BTreeMap::from([(0, (1, 0)), (1_000_000, (2, 0)), (3_000_000, (4, 0))]);
        let steps = Steps {
            first: 2_000_000,
            step: 1_000_000,
            count: 4,
        };
        assert_eq!(
            windows(&buckets, steps, 2_000_000, 0, &range, false),
            [Some(3.0), Some(2.0), Some(4.0), Some(4.0)]
        );
    }
}
