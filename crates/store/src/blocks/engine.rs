//! The one query engine over segments (hot segments and sealed blocks alike), for
//! both stores. Segments are walked newest- or oldest-first by id; a segment whose
//! summary says no record can match is skipped without reading it; otherwise its
//! pages are read one at a time, only the columns the filter needs first, and each
//! row is tested with `Query::matches_fields` (the one definition of the filter
//! model); the other columns of a page are read only when a row of it matches.
//! "Newest N" stops as soon as it has N. Counts are taken from summaries wherever
//! the conditions allow.

use super::format::{self, Layout, Page, COLUMNS, DATA, IDS, KIND, LEVEL, TEXT, TEXT_FIELDS, TS};
use super::segment::Segment;
use crate::{Group, GroupBy, GroupQuery, Result};
use logbook_core::histogram::Bucket;
use logbook_core::query::{field_value, Comparison, Condition, Field, FieldRef, Fields, Scalar};
use logbook_core::record::TEXT_FIELD_NAMES;
use logbook_core::Histogram;
use logbook_core::{Order, Query, Record};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The column a field is stored in.
fn column_of(field: Field) -> usize {
    match field {
        Field::Id => IDS,
        Field::Ts => TS,
        Field::Kind => KIND,
        Field::Level => LEVEL,
        Field::Data | Field::DataText(_) => DATA,
        other => TEXT_FIELD_NAMES
            .iter()
            .position(|n| *n == other.name())
            .map_or(DATA, |i| TEXT + i),
    }
}

fn columns_of(conditions: &[Condition], out: &mut Vec<usize>) {
    for c in conditions {
        match c {
            Condition::In(f, _)
            | Condition::NotIn(f, _)
            | Condition::Compare(f, _, _)
            | Condition::Contains(f, _)
            | Condition::ContainsCaseSensitive(f, _)
            | Condition::StartsWith(f, _) => out.push(column_of(*f)),
            Condition::Any(cs) | Condition::All(cs) => columns_of(cs, out),
            Condition::Not(c) => columns_of(std::slice::from_ref(&**c), out),
        }
    }
}

/// One page of a segment, its columns read as they are needed.
struct PageView<'a> {
    segment: &'a Segment,
    layout: &'a Layout,
    page: usize,
    /// Row offset of the page in the segment.
    start: usize,
    rows: usize,
    columns: Vec<Option<Arc<Page>>>,
}

impl<'a> PageView<'a> {
    fn new(segment: &'a Segment, page: usize) -> PageView<'a> {
        let layout = segment.source.layout();
        let range = layout.rows_of_page(page);
        PageView {
            segment,
            layout,
            page,
            start: range.start,
            rows: range.len(),
            columns: vec![None; COLUMNS],
        }
    }

    fn load(&mut self, columns: &[usize]) -> Result<()> {
        let missing: Vec<usize> = columns
            .iter()
            .copied()
            .filter(|&c| self.columns[c].is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let pages = self.segment.source.pages(&missing, self.page)?;
        for (c, page) in missing.into_iter().zip(pages) {
            if c == IDS {
                if let Page::Ints(ids) = &*page {
                    // Ids with gaps: the page holds as many rows as it has ids.
                    self.rows = ids.len();
                }
            }
            self.columns[c] = Some(page);
        }
        Ok(())
    }

    fn load_all(&mut self) -> Result<()> {
        let all: Vec<usize> = (0..COLUMNS).collect();
        self.load(&all)
    }

    fn column(&self, c: usize) -> &Page {
        self.columns[c].as_deref().unwrap_or(&Page::Absent)
    }

    fn id(&self, i: usize) -> i64 {
        match self.columns[IDS].as_deref() {
            Some(Page::Absent) | None => self.layout.first_id + (self.start + i) as i64,
            Some(p) => p.int(i).unwrap_or(i64::MIN),
        }
    }

    fn row(&self, i: usize) -> Row<'_, 'a> {
        Row { view: self, i }
    }

    fn record(&mut self, i: usize) -> Result<Record> {
        self.load_all()?;
        let pages: Vec<&Page> = (0..COLUMNS).map(|c| self.column(c)).collect();
        Ok(format::record_at(self.layout, &pages, i, self.start + i)?)
    }
}

/// A row of a page, as conditions read it.
struct Row<'v, 'a> {
    view: &'v PageView<'a>,
    i: usize,
}

impl Fields for Row<'_, '_> {
    fn field(&self, field: Field) -> Option<FieldRef<'_>> {
        let page = self.view.column(column_of(field));
        match field {
            Field::Id => Some(FieldRef::Int(self.view.id(self.i))),
            Field::Ts | Field::Kind | Field::Level => page.int(self.i).map(FieldRef::Int),
            Field::DataText(key) => page
                .text(self.i)
                .and_then(|json| FieldRef::data_text(json, key)),
            _ => page.text(self.i).map(|t| FieldRef::Text(Cow::Borrowed(t))),
        }
    }
}

/// The condition a cursor adds (`after` is exclusive in the query's order).
pub fn cursor_condition(query: &Query) -> Option<Condition> {
    let cursor = query.after?;
    let cmp = match query.order {
        Order::NewestFirst => Comparison::Lt,
        Order::OldestFirst => Comparison::Gt,
    };
    Some(Condition::Compare(Field::Id, cmp, Scalar::Int(cursor.0)))
}

/// The segments in the order a query walks them.
fn in_order(segments: &[Segment], order: Order) -> Box<dyn Iterator<Item = &Segment> + '_> {
    match order {
        Order::OldestFirst => Box::new(segments.iter()),
        Order::NewestFirst => Box::new(segments.iter().rev()),
    }
}

/// Calls `found` with each matching record of the segments, in `order`, until it
/// answers false.
fn scan(
    segments: &[Segment],
    conditions: &[Condition],
    order: Order,
    mut found: impl FnMut(Record) -> bool,
) -> Result<()> {
    scan_rows(segments, conditions, order, &[], |view, i| {
        Ok(found(view.record(i)?))
    })
}

/// As [`scan`], handing `found` each matching row in place (its page and index)
/// instead of a record: only the filter's columns and `columns` are decoded, and
/// nothing is copied (counts, groups and histograms read a field or two).
fn scan_rows(
    segments: &[Segment],
    conditions: &[Condition],
    order: Order,
    columns: &[usize],
    mut found: impl FnMut(&mut PageView<'_>, usize) -> Result<bool>,
) -> Result<()> {
    let filter = Query {
        conditions: conditions.to_vec(),
        ..Query::default()
    };
    each_page(segments, conditions, order, columns, |view, every_row| {
        for i in rows_in(order, view.rows) {
            if (every_row || filter.matches_fields(&view.row(i))) && !found(view, i)? {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(())
}

/// A page's row indexes in `order`.
fn rows_in(order: Order, rows: usize) -> Box<dyn Iterator<Item = usize>> {
    match order {
        Order::OldestFirst => Box::new(0..rows),
        Order::NewestFirst => Box::new((0..rows).rev()),
    }
}

/// Calls `found` with each page the conditions may match, in `order`, its
/// conditions' columns and `columns` loaded, and whether every row of it matches
/// (judged from its ids alone), until it answers false. True if it never did.
fn each_page(
    segments: &[Segment],
    conditions: &[Condition],
    order: Order,
    columns: &[usize],
    mut found: impl FnMut(&mut PageView<'_>, bool) -> Result<bool>,
) -> Result<bool> {
    let mut needed = vec![IDS];
    columns_of(conditions, &mut needed);
    needed.extend_from_slice(columns);
    needed.sort_unstable();
    needed.dedup();
    for segment in in_order(segments, order) {
        if !conditions.iter().all(|c| segment.summary.may_match(c)) {
            continue;
        }
        let pages = segment.source.layout().pages();
        let page_order: Box<dyn Iterator<Item = usize>> = match order {
            Order::OldestFirst => Box::new(0..pages),
            Order::NewestFirst => Box::new((0..pages).rev()),
        };
        for page in page_order {
            if let Some(&(lo, hi)) = segment.summary.page_ts.get(page) {
                if !conditions
                    .iter()
                    .all(|c| range_may_match(Field::Ts, c, lo, hi))
                {
                    continue;
                }
            }
            // A cursor (an export's next batch) skips the pages before it, and rows
            // of a page whose every id satisfies the conditions (an export's bounds)
            // need no test.
            let mut every_row = false;
            if let Some((lo, hi)) = segment.source.page_ids(page) {
                if !conditions
                    .iter()
                    .all(|c| range_may_match(Field::Id, c, lo, hi))
                {
                    continue;
                }
                every_row = conditions
                    .iter()
                    .all(|c| range_must_match(Field::Id, c, lo, hi));
            }
            let mut view = PageView::new(segment, page);
            view.load(&needed)?;
            if !found(&mut view, every_row)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// False when no record whose `field` (`ts` or `id`) lies in `lo..=hi` can satisfy
/// the condition (only comparisons of that field are judged; anything else may
/// match).
fn range_may_match(field: Field, condition: &Condition, lo: i64, hi: i64) -> bool {
    match condition {
        Condition::Compare(f, cmp, Scalar::Int(b)) if *f == field => match cmp {
            Comparison::Lt => lo < *b,
            Comparison::Le => lo <= *b,
            Comparison::Gt => hi > *b,
            Comparison::Ge => hi >= *b,
        },
        Condition::In(f, values) if *f == field => values
            .iter()
            .any(|v| !matches!(v, Scalar::Int(n) if !(lo..=hi).contains(n))),
        Condition::All(cs) => cs.iter().all(|c| range_may_match(field, c, lo, hi)),
        Condition::Any(cs) => cs.iter().any(|c| range_may_match(field, c, lo, hi)),
        _ => true,
    }
}

/// True when every record whose `field` (`ts` or `id`) lies in `lo..=hi` satisfies
/// the condition (judged for comparisons of that field, and all of them).
fn range_must_match(field: Field, condition: &Condition, lo: i64, hi: i64) -> bool {
    match condition {
        Condition::Compare(f, cmp, Scalar::Int(b)) if *f == field => match cmp {
            Comparison::Lt => hi < *b,
            Comparison::Le => hi <= *b,
            Comparison::Gt => lo > *b,
            Comparison::Ge => lo >= *b,
        },
        Condition::All(cs) => cs.iter().all(|c| range_must_match(field, c, lo, hi)),
        _ => false,
    }
}

/// The condition that `ts` lies in one of these inclusive ranges.
fn ts_in(ranges: &[(i64, i64)]) -> Condition {
    Condition::Any(
        ranges
            .iter()
            .map(|&(lo, hi)| {
                Condition::All(vec![
                    Condition::Compare(Field::Ts, Comparison::Ge, Scalar::Int(lo)),
                    Condition::Compare(Field::Ts, Comparison::Le, Scalar::Int(hi)),
                ])
            })
            .collect(),
    )
}

/// A field of a row as a value, as `field_value` reads it from a record.
fn row_value(view: &PageView<'_>, i: usize, field: Field) -> Option<Scalar> {
    view.row(i).field(field).map(FieldRef::into_scalar)
}

fn with_cursor(query: &Query) -> Vec<Condition> {
    let mut conditions = query.conditions.clone();
    conditions.extend(cursor_condition(query));
    conditions
}

/// One page of a query: its order, cursor, sort, offset and limit.
pub fn query(segments: &[Segment], query: &Query) -> Result<Vec<Record>> {
    let conditions = with_cursor(query);
    let limit = query.limit.map_or(usize::MAX, |l| l as usize);
    let offset = query.offset as usize;
    if query.sort.is_empty() {
        let mut skipped = 0;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        scan(segments, &conditions, query.order, |record| {
            if skipped < offset {
                skipped += 1;
                return true;
            }
            out.push(record);
            out.len() < limit
        })?;
        return Ok(out);
    }
    let mut all = Vec::new();
    scan(segments, &conditions, query.order, |record| {
        all.push(record);
        true
    })?;
    // Ties keep the scan's id order (a stable sort).
    all.sort_by(|a, b| {
        for key in &query.sort {
            let (x, y) = (field_value(a, key.field), field_value(b, key.field));
            let ordering = if key.descending { y.cmp(&x) } else { x.cmp(&y) };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
    Ok(all.into_iter().skip(offset).take(limit).collect())
}

/// Whether every record of the segment satisfies an id or ts comparison.
fn holds_for_whole(segment: &Segment, condition: &Condition) -> bool {
    let s = &segment.summary;
    let (lo, hi, cmp, bound) = match condition {
        Condition::Compare(Field::Id, cmp, Scalar::Int(b)) => (s.first_id, s.last_id, cmp, *b),
        Condition::Compare(Field::Ts, cmp, Scalar::Int(b)) if !s.opaque => {
            (s.ts_min, s.ts_max, cmp, *b)
        }
        _ => return false,
    };
    match cmp {
        Comparison::Lt => hi < bound,
        Comparison::Le => hi <= bound,
        Comparison::Gt => lo > bound,
        Comparison::Ge => lo >= bound,
    }
}

/// How many records match (the cursor counts; offset and limit do not). A segment
/// is counted from its summary when the remaining conditions are on kind, level
/// and category; with `ts` bounds too, from its time buckets, reading rows only of
/// the buckets that straddle a bound.
pub fn count(segments: &[Segment], query: &Query) -> Result<u64> {
    let conditions = with_cursor(query);
    let mut total = 0u64;
    let mut rest = Vec::new();
    for segment in segments {
        if !conditions.iter().all(|c| segment.summary.may_match(c)) {
            continue;
        }
        let mut remaining: Vec<Condition> = conditions
            .iter()
            .filter(|c| !holds_for_whole(segment, c))
            .cloned()
            .collect();
        if let Some(n) = segment.summary.count(&remaining) {
            total += n;
            continue;
        }
        if let Some(buckets) = segment
            .summary
            .count_buckets(&remaining, |_, _| true, |_, _| ())
        {
            total += buckets.counted.iter().map(|(_, n)| n).sum::<u64>();
            if buckets.straddling.is_empty() {
                continue;
            }
            remaining.push(ts_in(&buckets.straddling));
        }
        rest.push((segment.clone(), remaining));
    }
    for (segment, remaining) in rest {
        scan_rows(
            std::slice::from_ref(&segment),
            &remaining,
            Order::OldestFirst,
            &[],
            |_, _| {
                total += 1;
                Ok(true)
            },
        )?;
    }
    Ok(total)
}

/// Matching records per distinct value of the group fields, ordered and paged as
/// `groups` says (ties, and no order, go by the key ascending, absent first); the
/// cursor does not apply.
pub fn group(segments: &[Segment], query: &Query, groups: &GroupQuery) -> Result<Vec<Group>> {
    let mut all = all_groups(segments, query, &groups.fields)?;
    all.sort_by(|(a_key, a), (b_key, b)| {
        for sort in &groups.sort {
            let ordering = match sort.by {
                GroupBy::LastTs => a.last_ts.cmp(&b.last_ts),
                GroupBy::Key(i) => a_key.get(i).cmp(&b_key.get(i)),
            };
            let ordering = if sort.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a_key.cmp(b_key)
    });
    let limit = groups.limit.map_or(usize::MAX, |l| l as usize);
    Ok(all
        .into_iter()
        .skip(groups.offset as usize)
        .take(limit)
        .map(|(_, g)| g)
        .collect())
}

/// How many groups [`group`] has in all.
pub fn count_groups(segments: &[Segment], query: &Query, fields: &[Field]) -> Result<u64> {
    Ok(all_groups(segments, query, fields)?.len() as u64)
}

/// Every group of `fields` in key order, with the key as values.
fn all_groups(
    segments: &[Segment],
    query: &Query,
    fields: &[Field],
) -> Result<Vec<(Vec<Option<Scalar>>, Group)>> {
    let mut groups: BTreeMap<Vec<Option<Scalar>>, (u64, i64)> = BTreeMap::new();
    let mut columns: Vec<usize> = fields.iter().map(|f| column_of(*f)).collect();
    columns.push(TS);
    scan_rows(
        segments,
        &query.conditions,
        Order::OldestFirst,
        &columns,
        |view, i| {
            let key = fields.iter().map(|f| row_value(view, i, *f)).collect();
            let ts = view.column(TS).int(i).unwrap_or(i64::MIN);
            let entry = groups.entry(key).or_insert((0, i64::MIN));
            entry.0 += 1;
            entry.1 = entry.1.max(ts);
            Ok(true)
        },
    )?;
    Ok(groups
        .into_iter()
        .map(|(key, (count, last_ts))| {
            let text = key
                .iter()
                .map(|v| {
                    v.as_ref().map(|v| match v {
                        Scalar::Int(n) => n.to_string(),
                        Scalar::Text(t) => t.clone(),
                    })
                })
                .collect();
            (
                key,
                Group {
                    key: text,
                    count,
                    last_ts: logbook_core::Timestamp(last_ts),
                },
            )
        })
        .collect())
}

/// The non-empty buckets of matching records, as `Histogram::count` defines them
/// (the cursor does not apply). A segment whose `ts` range lies in one bucket is
/// counted from its summary when the conditions and the split allow; else from its
/// time buckets that lie within one of the histogram's, reading the rows of the
/// others; a segment whose summary cannot tell is read row by row.
pub fn histogram(
    segments: &[Segment],
    query: &Query,
    histogram: &Histogram,
) -> Result<Vec<Bucket>> {
    use logbook_core::Timestamp;
    let conditions = &query.conditions;
    let mut counts: BTreeMap<(Timestamp, Option<Scalar>), u64> = BTreeMap::new();
    let summary_split = match histogram.by() {
        None => true,
        Some(f) => matches!(f, Field::Kind | Field::Level | Field::Category),
    };
    let mut rest = Vec::new();
    for segment in segments {
        if !conditions.iter().all(|c| segment.summary.may_match(c)) {
            continue;
        }
        let s = &segment.summary;
        let start = histogram.bucket_start(Timestamp(s.ts_min));
        let one_bucket = !s.opaque && start == histogram.bucket_start(Timestamp(s.ts_max));
        let mut remaining: Vec<Condition> = conditions
            .iter()
            .filter(|c| !holds_for_whole(segment, c))
            .cloned()
            .collect();
        if !summary_split {
            rest.push((segment.clone(), remaining));
            continue;
        }
        if one_bucket {
            if let Some(by_key) = s.count_by(&remaining, |r| histogram.key_of(r)) {
                for (key, n) in by_key {
                    *counts.entry((start, key)).or_default() += n;
                }
                continue;
            }
        }
        let buckets = s.count_buckets(
            &remaining,
            |lo, hi| histogram.bucket_start(Timestamp(lo)) == histogram.bucket_start(Timestamp(hi)),
            |r, lo| (histogram.bucket_start(Timestamp(lo)), histogram.key_of(r)),
        );
        if let Some(buckets) = buckets {
            for (key, n) in buckets.counted {
                *counts.entry(key).or_default() += n;
            }
            if buckets.straddling.is_empty() {
                continue;
            }
            remaining.push(ts_in(&buckets.straddling));
        }
        rest.push((segment.clone(), remaining));
    }
    let mut columns = vec![TS];
    if let Some(by) = histogram.by() {
        columns.push(column_of(by));
    }
    for (segment, remaining) in rest {
        scan_rows(
            std::slice::from_ref(&segment),
            &remaining,
            Order::OldestFirst,
            &columns,
            |view, i| {
                let ts = Timestamp(view.column(TS).int(i).unwrap_or(0));
                let key = histogram.by().and_then(|by| row_value(view, i, by));
                *counts.entry((histogram.bucket_start(ts), key)).or_default() += 1;
                Ok(true)
            },
        )?;
    }
    Ok(counts
        .into_iter()
        .map(|((start, key), count)| Bucket { start, key, count })
        .collect())
}

/// The next export batch: up to `batch` matching records after `after` in the
/// query's order (its own cursor applies too), none above `high_water`; sort, offset
/// and limit do not apply.
pub fn export_batch(
    segments: &[Segment],
    query: &Query,
    high_water: i64,
    after: Option<i64>,
    batch: usize,
) -> Result<Vec<Record>> {
    let conditions = export_conditions(query, high_water, after);
    let mut out = Vec::new();
    scan(segments, &conditions, query.order, |record| {
        out.push(record);
        out.len() < batch
    })?;
    Ok(out)
}

/// The conditions of an export batch: the query's own with its cursor, none above
/// `high_water`, and after the last id of the batch before.
fn export_conditions(query: &Query, high_water: i64, after: Option<i64>) -> Vec<Condition> {
    let mut conditions = with_cursor(query);
    conditions.push(Condition::Compare(
        Field::Id,
        Comparison::Le,
        Scalar::Int(high_water),
    ));
    if let Some(after) = after {
        let cmp = match query.order {
            Order::NewestFirst => Comparison::Lt,
            Order::OldestFirst => Comparison::Gt,
        };
        conditions.push(Condition::Compare(Field::Id, cmp, Scalar::Int(after)));
    }
    conditions
}

/// What an NDJSON export batch wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    pub rows: usize,
    pub last_id: Option<i64>,
}

/// One page of an export, decoded, with the rows of it to write in the export's
/// order: what the reading side of an export hands the writing side, so that each
/// can run on a thread of its own.
pub struct ExportPage {
    segment: Segment,
    /// Row offset of the page in its segment.
    start: usize,
    columns: Vec<Arc<Page>>,
    /// Each row to write: its index in the page, and its id.
    rows: Vec<(usize, i64)>,
}

impl ExportPage {
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    pub fn last_id(&self) -> Option<i64> {
        self.rows.last().map(|&(_, id)| id)
    }

    fn pages(&self) -> Vec<&Page> {
        self.columns.iter().map(|p| &**p).collect()
    }

    /// Appends the page's rows to `out` as records.
    pub fn push_records(&self, out: &mut Vec<Record>) -> Result<()> {
        let layout = self.segment.source.layout();
        let pages = self.pages();
        for &(i, _) in &self.rows {
            out.push(format::record_at(layout, &pages, i, self.start + i)?);
        }
        Ok(())
    }
}

/// The pages of an export holding rows to write (as [`export_batch`] selects
/// them, but without a batch's bound), each with every column decoded, handed to
/// `found` in the query's order until it answers false. True if none did.
pub fn export_pages(
    segments: &[Segment],
    query: &Query,
    high_water: i64,
    after: Option<i64>,
    mut found: impl FnMut(ExportPage) -> Result<bool>,
) -> Result<bool> {
    let conditions = export_conditions(query, high_water, after);
    let filter = Query {
        conditions: conditions.clone(),
        ..Query::default()
    };
    let all: Vec<usize> = (0..COLUMNS).collect();
    each_page(
        segments,
        &conditions,
        query.order,
        &all,
        |view, every_row| {
            let rows: Vec<(usize, i64)> = rows_in(query.order, view.rows)
                .filter(|&i| every_row || filter.matches_fields(&view.row(i)))
                .map(|i| (i, view.id(i)))
                .collect();
            if rows.is_empty() {
                return Ok(true);
            }
            let columns = std::mem::take(&mut view.columns)
                .into_iter()
                .map(|p| p.unwrap_or_else(|| Arc::new(Page::Absent)))
                .collect();
            found(ExportPage {
                segment: view.segment.clone(),
                start: view.start,
                columns,
                rows,
            })
        },
    )
}

/// As [`export_batch`], but each matching record is appended to `out` as its
/// NDJSON line (see [`RowWriter`]).
pub fn export_ndjson_batch(
    segments: &[Segment],
    query: &Query,
    high_water: i64,
    after: Option<i64>,
    batch: usize,
    out: &mut Vec<u8>,
) -> Result<Written> {
    let mut written = Written::default();
    let mut writer = RowWriter::default();
    export_pages(segments, query, high_water, after, |mut page| {
        page.rows.truncate(batch.saturating_sub(written.rows));
        writer.write_page(&page, out)?;
        written.rows += page.rows();
        written.last_id = page.last_id().or(written.last_id);
        Ok(written.rows < batch)
    })?;
    Ok(written)
}

/// Writes rows as NDJSON lines, each the bytes [`Record::write_json`] and a newline
/// give for the record the row holds, straight from the page's columns: no record
/// is made, and `data` is copied as the JSON text it is stored as instead of being
/// parsed and serialised again (that was most of an export's time). The same keys
/// in the same order, the same escapes (serde_json's, for every string). What
/// rows share is formatted once: the date and time of a second (an export's rows
/// mostly share it with the row before; chrono's formatting was a fifth of an
/// export's time), and each dictionary value as a JSON string.
#[derive(Default)]
pub struct RowWriter {
    timestamps: TimestampWriter,
    /// Per text field: the dictionary last seen, and its values as JSON strings.
    escaped: [Option<EscapedDictionary>; TEXT_FIELDS],
}

/// A dictionary and its values as JSON strings, each escaped the first time a row
/// has it.
type EscapedDictionary = (Arc<format::Dictionary>, Vec<Option<Box<[u8]>>>);

impl RowWriter {
    /// Appends the page's rows to `out`, a line each.
    pub fn write_page(&mut self, page: &ExportPage, out: &mut Vec<u8>) -> Result<()> {
        let pages = page.pages();
        for &(i, id) in &page.rows {
            self.write(&pages, i, id, out)?;
            out.push(b'\n');
        }
        Ok(())
    }

    fn write(&mut self, pages: &[&Page], i: usize, id: i64, out: &mut Vec<u8>) -> Result<()> {
        let column = |c: usize| pages.get(c).copied().unwrap_or(&Page::Absent);
        let kind_code = column(KIND).int(i).unwrap_or(0);
        let kind = logbook_core::Kind::from_code(kind_code).ok_or_else(|| {
            crate::StoreError::Internal(format!("record {id} has unknown kind {kind_code}"))
        })?;
        out.extend_from_slice(b"{\"id\":");
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        out.extend_from_slice(b",\"ts\":\"");
        let ts = logbook_core::Timestamp(column(TS).int(i).unwrap_or(0));
        self.timestamps.write(ts, out);
        out.extend_from_slice(b"\",\"kind\":\"");
        out.extend_from_slice(kind.name().as_bytes());
        out.push(b'"');
        if let Some(level) = column(LEVEL)
            .int(i)
            .and_then(logbook_core::Level::from_number)
        {
            out.extend_from_slice(b",\"level\":\"");
            out.extend_from_slice(level.name().as_bytes());
            out.push(b'"');
        }
        for (field, name) in TEXT_FIELD_NAMES.iter().enumerate() {
            let page = column(TEXT + field);
            if let Page::Codes { codes, dictionary } = page {
                let Some(value) = codes.get(i).and_then(|c| usize::from(*c).checked_sub(1)) else {
                    continue;
                };
                let escaped = match &mut self.escaped[field] {
                    Some((seen, escaped)) if Arc::ptr_eq(seen, dictionary) => escaped,
                    slot => {
                        let values = vec![None; dictionary.values.len()];
                        &mut slot.insert((Arc::clone(dictionary), values)).1
                    }
                };
                let (Some(text), Some(json)) =
                    (dictionary.values.get(value), escaped.get_mut(value))
                else {
                    continue;
                };
                let json = json.get_or_insert_with(|| json_string(text).into_boxed_slice());
                write_key(out, name);
                out.extend_from_slice(json);
            } else if let Some(value) = page.text(i) {
                write_key(out, name);
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
        if let Some(json) = column(DATA).text(i) {
            out.extend_from_slice(b",\"data\":");
            out.extend_from_slice(json.as_bytes());
        }
        out.push(b'}');
        Ok(())
    }
}

/// `,"name":`
fn write_key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn json_string(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, text);
    out
}

/// Writes timestamps as [`logbook_core::Timestamp::rfc3339`] does, formatting the
/// date and time only when the second changes.
#[derive(Default)]
struct TimestampWriter {
    /// The second last formatted, and its `YYYY-MM-DDTHH:MM:SS`.
    second: Option<(i64, [u8; 19])>,
}

/// The seconds of years 0000 to 9999, whose RFC 3339 form is always
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (outside them chrono writes a sign and more digits,
/// or `rfc3339` falls back to the epoch).
const FOUR_DIGIT_YEARS: std::ops::RangeInclusive<i64> = -62_167_219_200..=253_402_300_799;

impl TimestampWriter {
    fn write(&mut self, ts: logbook_core::Timestamp, out: &mut Vec<u8>) {
        let micros = ts.micros();
        let second = micros.div_euclid(1_000_000);
        let fraction = micros.rem_euclid(1_000_000);
        let prefix = match self.second {
            Some((cached, prefix)) if cached == second => prefix,
            _ => {
                let full = ts.rfc3339();
                let prefix = full
                    .as_bytes()
                    .get(..19)
                    .and_then(|p| <[u8; 19]>::try_from(p).ok())
                    .filter(|_| FOUR_DIGIT_YEARS.contains(&second) && full.len() == 27);
                let Some(prefix) = prefix else {
                    out.extend_from_slice(full.as_bytes());
                    return;
                };
                self.second = Some((second, prefix));
                prefix
            }
        };
        out.extend_from_slice(&prefix);
        out.push(b'.');
        // Six digits, zero-padded: the fraction plus a million, without its leading 1.
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(&digits.format(fraction + 1_000_000).as_bytes()[1..]);
        out.push(b'Z');
    }
}

/// The record with this id: its segment is found by id range.
pub fn get(segments: &[Segment], id: i64) -> Result<Option<Record>> {
    let at = segments.partition_point(|s| s.last_id() < id);
    let Some(segment) = segments.get(at).filter(|s| s.first_id() <= id) else {
        return Ok(None);
    };
    let layout = segment.source.layout();
    if let Some(page) = segment.source.page_of_id(id) {
        let mut view = PageView::new(segment, page);
        view.load(&[IDS])?;
        let Some(row) = (0..view.rows).find(|i| view.id(*i) == id) else {
            return Ok(None);
        };
        return view.record(row).map(Some);
    }
    if matches!(*segment.source.page(IDS, 0)?, Page::Absent) {
        // Contiguous ids: the row is the id's offset, its page found by arithmetic.
        let offset = usize::try_from(id - layout.first_id).unwrap_or(usize::MAX);
        if offset >= layout.rows {
            return Ok(None);
        }
        let page = offset / layout.page_rows;
        let row = offset - layout.rows_of_page(page).start;
        return segment.source.record(page, row).map(Some);
    }
    if let Some(found) = get_among_gaps(segment, id)? {
        return Ok(found);
    }
    let condition = Condition::Compare(Field::Id, Comparison::Ge, Scalar::Int(id));
    let mut found = None;
    scan(
        std::slice::from_ref(segment),
        &[condition],
        Order::OldestFirst,
        |record| {
            if record.id == id {
                found = Some(record);
            }
            false
        },
    )?;
    Ok(found)
}

/// The record with this id in a segment whose ids have gaps (stored, ascending):
/// its page found by bisecting on the pages' last ids, its row by bisecting the
/// page's, so a get reads a few pages of ids rather than every page before its
/// own. `None` if the segment's ids are not stored as expected (the caller scans).
fn get_among_gaps(segment: &Segment, id: i64) -> Result<Option<Option<Record>>> {
    let ids_of = |page: usize| -> Result<Option<Arc<Page>>> {
        let ids = segment.source.page(IDS, page)?;
        Ok(matches!(&*ids, Page::Ints(v) if !v.is_empty()).then_some(ids))
    };
    let last_of = |ids: &Page| match ids {
        Page::Ints(v) => v.last().copied().unwrap_or(i64::MIN),
        _ => i64::MIN,
    };
    let pages = segment.source.layout().pages();
    // The first page whose last id is at least `id`.
    let (mut lo, mut hi) = (0, pages);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Some(ids) = ids_of(mid)? else {
            return Ok(None);
        };
        if last_of(&ids) < id {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == pages {
        return Ok(Some(None));
    }
    let Some(ids) = ids_of(lo)? else {
        return Ok(None);
    };
    let Page::Ints(values) = &*ids else {
        return Ok(None);
    };
    match values.binary_search(&id) {
        Ok(row) => segment.source.record(lo, row).map(|r| Some(Some(r))),
        Err(_) => Ok(Some(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::TimestampWriter;
    use logbook_core::Timestamp;

    #[test]
    fn timestamps_are_written_as_rfc3339_writes_them() {
        let mut writer = TimestampWriter::default();
        let mut micros = vec![
            0,
            -1,
            -1_000_000,
            -999_999,
            1_760_000_000_000_000,
            -62_167_219_200_000_000,
            -62_167_219_200_000_001,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            i64::MIN,
            i64::MAX,
        ];
        // Runs within one second and across seconds, both ways.
        micros.extend((0..3000).map(|i| 1_760_000_000_000_000 + i * 777));
        micros.extend((0..3000).map(|i| 1_760_000_000_000_000 - i * 777));
        for m in micros {
            let mut out = Vec::new();
            writer.write(Timestamp(m), &mut out);
            assert_eq!(String::from_utf8_lossy(&out), Timestamp(m).rfc3339(), "{m}");
        }
    }
}
