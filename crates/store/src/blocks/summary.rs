//! A block's summary: what a query needs to skip the block, or to count it without
//! decompressing anything. Kept apart from the block (a few kilobytes against the
//! block's megabytes) so that every block's summary can be held or cached while
//! the blocks stay on disk.
//!
//! - the id range and rows, the `ts` range;
//! - per text field, its distinct values when it has at most [`MAX_VALUES`] in the
//!   block (category, user, instance, logger...), or else a bloom filter of them
//!   (object ids, request ids, messages aside);
//! - a bloom filter of the case-folded byte trigrams of the messages;
//! - the number of rows per (kind, level, category), in all and per time bucket
//!   (a width from [`BUCKET_WIDTHS`], the finest that keeps at most [`MAX_BUCKETS`]
//!   non-empty buckets), so a count in a time window or a histogram reads rows
//!   only of the buckets that straddle a bound;
//! - each page's `ts` range, so a scan with a time bound skips the other pages.
//!
//! Stored as version 2; version 1 (before buckets and page ranges) is still read,
//! with no buckets and no page ranges: such a block is counted and scanned as before.

use super::filter::{hash_bytes, message_trigrams, needle_trigrams, Bloom, Keys};
use super::format::{Columns, MESSAGE, TEXT, TEXT_FIELDS};
use super::wire::{put_bytes, put_varint, unzigzag, zigzag, Corrupt, Reader};
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::record::TEXT_FIELD_NAMES;
use logbook_core::{Kind, Level, NewRecord, Record, Timestamp};

/// Most distinct values of a field kept as a list; beyond it, a bloom filter.
pub const MAX_VALUES: usize = 1024;
/// The text field counts are kept per (with kind and level).
const CATEGORY: usize = 0;
/// Widths a block's time buckets may have, in microseconds: each divides the next
/// and the histogram's automatic widths from its own up (1 s, 5 s, 15 s, 1 min,
/// 5 min, 15 min, 1 h, 3 h, 1 day), so a bucket mostly lies within one of theirs.
pub const BUCKET_WIDTHS: [i64; 9] = [
    1_000_000,
    5_000_000,
    15_000_000,
    60_000_000,
    300_000_000,
    900_000_000,
    3_600_000_000,
    10_800_000_000,
    86_400_000_000,
];
/// Most non-empty time buckets a block keeps at the finest width that allows it
/// (beyond them at a day's width, every non-empty one).
pub const MAX_BUCKETS: usize = 64;

/// Rows per (kind code, level number or 0, category index + 1 or 0).
pub type Counts = Vec<(u8, u8, u32, u64)>;

/// The rows of one time bucket: `[start, start + width)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBucket {
    pub start: i64,
    pub counts: Counts,
}

/// What a block holds of one text field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// The distinct values, sorted, and whether some rows have none.
    Listed { values: Vec<String>, none: bool },
    /// Too many values to list: a filter of them, and whether some rows have none.
    Filtered { filter: Bloom, none: bool },
    /// Nothing kept (the message, which has its trigram filter instead).
    Unlisted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub first_id: i64,
    pub last_id: i64,
    pub rows: u64,
    pub ts_min: i64,
    pub ts_max: i64,
    /// Per text field (in `Record::text_fields` order; `message` has no list).
    pub fields: Vec<Values>,
    pub trigrams: Option<Bloom>,
    /// Rows per (kind code, level number or 0, index into the category list + 1 or 0
    /// for none); empty when the categories are too many to list.
    pub counts: Counts,
    /// Width of [`Summary::buckets`] in microseconds; 0 when none are kept (a
    /// version-1 summary, or too many categories to count).
    pub bucket_width: i64,
    /// The non-empty time buckets, by start, each with its counts as `counts`.
    pub buckets: Vec<TimeBucket>,
    /// Each page's `(min, max)` ts, in page order; empty when not known.
    pub page_ts: Vec<(i64, i64)>,
    /// Nothing is known but the id range (rows of the previous layout, being
    /// sealed): every record may match, nothing is counted from here. Never stored.
    pub opaque: bool,
}

pub struct SummaryBuilder<'a> {
    rows: &'a Columns<'a>,
    fields: Vec<Values>,
    trigrams: Option<Bloom>,
    page_rows: usize,
    /// The message trigram keys of rows `..known_rows`, already known (from the
    /// hot segments a block is sealed from).
    known_trigrams: Option<(Keys, usize)>,
    /// The distinct message trigram keys, once the message field is summarised
    /// (made a list only if a hot segment takes them).
    trigram_keys: Keys,
}

impl<'a> SummaryBuilder<'a> {
    /// A summary of rows kept in one page (a hot segment); see [`Self::page_rows`].
    pub fn new(rows: &'a Columns<'a>) -> SummaryBuilder<'a> {
        SummaryBuilder {
            rows,
            fields: Vec::with_capacity(TEXT_FIELDS),
            trigrams: None,
            page_rows: rows.rows().max(1),
            known_trigrams: None,
            trigram_keys: Keys::default(),
        }
    }

    /// The message trigram keys of the first `rows` rows are `keys` (a seal knows
    /// them from the hot segments' summaries): only the rest are taken from the
    /// messages. Taking every trigram of a block's 65,536 messages again was a
    /// quarter of the sealer's samples; the filter is the same either way, since it
    /// is made from the distinct keys.
    pub fn known_trigrams(mut self, keys: Keys, rows: usize) -> Self {
        self.known_trigrams = Some((keys, rows));
        self
    }

    /// The distinct message trigram keys (empty until the message is summarised),
    /// for a hot segment to keep until it is sealed.
    pub fn take_trigram_keys(&mut self) -> Box<[u64]> {
        std::mem::take(&mut self.trigram_keys).to_list()
    }

    /// The rows per page of the block summarised (for the pages' ts ranges).
    pub fn page_rows(mut self, page_rows: usize) -> Self {
        self.page_rows = page_rows.max(1);
        self
    }

    /// Summarises text field `field` (its values, one per record).
    pub fn text_field(&mut self, field: usize, values: &[Option<&str>]) {
        let none = values.iter().any(Option::is_none);
        if field + TEXT == MESSAGE {
            let _ = none;
            let (mut keys, known) = self.known_trigrams.take().unwrap_or_default();
            for v in values.iter().skip(known).flatten() {
                message_trigrams(v, &mut keys);
            }
            if keys.is_empty() && !values.iter().any(Option::is_some) {
                self.trigrams = None;
            } else {
                self.trigrams = Some(keys.bloom());
            }
            self.trigram_keys = keys;
            self.fields.push(Values::Unlisted);
            return;
        }
        // Through a hash set, given up past the list's size (sorting every value of
        // a high-cardinality field was a visible share of ingest and sealing).
        self.fields
            .push(match super::format::distinct_up_to(values, MAX_VALUES) {
                Some(mut distinct) => {
                    distinct.sort_unstable();
                    Values::Listed {
                        values: distinct.into_iter().map(str::to_string).collect(),
                        none,
                    }
                }
                None => {
                    let mut keys = Keys::default();
                    keys.extend(values.iter().flatten().map(|v| hash_bytes(v.as_bytes())));
                    Values::Filtered {
                        filter: keys.bloom(),
                        none,
                    }
                }
            });
    }

    pub fn finish(self) -> Summary {
        let rows = self.rows;
        let ts = rows.ts.iter().copied();
        let mut counts = Vec::new();
        let mut buckets = Vec::new();
        let mut bucket_width = 0;
        if let Some(Values::Listed { values, .. }) = self.fields.get(CATEGORY) {
            let key = |row: usize| {
                let category = rows.texts[CATEGORY][row].map_or(0, |c| {
                    values
                        .binary_search_by(|v| v.as_str().cmp(c))
                        .map_or(0, |i| i as u32 + 1)
                });
                (rows.kinds[row], rows.levels[row], category)
            };
            let flat = |keyed: std::collections::BTreeMap<(u8, u8, u32), u64>| -> Counts {
                keyed
                    .into_iter()
                    .map(|((k, l, c), n)| (k, l, c, n))
                    .collect()
            };
            let mut keyed = std::collections::BTreeMap::<(u8, u8, u32), u64>::new();
            for row in 0..rows.rows() {
                *keyed.entry(key(row)).or_default() += 1;
            }
            counts = flat(keyed);
            bucket_width = bucket_width_for(&rows.ts);
            let mut per_bucket =
                std::collections::BTreeMap::<i64, std::collections::BTreeMap<_, u64>>::new();
            for (row, &t) in rows.ts.iter().enumerate() {
                let start = t - t.rem_euclid(bucket_width);
                *per_bucket
                    .entry(start)
                    .or_default()
                    .entry(key(row))
                    .or_default() += 1;
            }
            buckets = per_bucket
                .into_iter()
                .map(|(start, keyed)| TimeBucket {
                    start,
                    counts: flat(keyed),
                })
                .collect();
        }
        let page_ts = rows
            .ts
            .chunks(self.page_rows)
            .map(|page| {
                let ts = page.iter().copied();
                (ts.clone().min().unwrap_or(0), ts.max().unwrap_or(0))
            })
            .collect();
        Summary {
            first_id: rows.ids.first().copied().unwrap_or(0),
            last_id: rows.ids.last().copied().unwrap_or(0),
            rows: rows.rows() as u64,
            ts_min: ts.clone().min().unwrap_or(0),
            ts_max: ts.max().unwrap_or(0),
            fields: self.fields,
            trigrams: self.trigrams,
            counts,
            bucket_width,
            buckets,
            page_ts,
            opaque: false,
        }
    }
}

/// The finest of [`BUCKET_WIDTHS`] that cuts the records' timestamps into at most
/// [`MAX_BUCKETS`] non-empty buckets (the widest when none does).
fn bucket_width_for(ts: &[i64]) -> i64 {
    let mut ts = ts.to_vec();
    ts.sort_unstable();
    let widest = BUCKET_WIDTHS[BUCKET_WIDTHS.len() - 1];
    BUCKET_WIDTHS
        .into_iter()
        .find(|width| {
            let mut buckets = 0;
            let mut last = None;
            for t in &ts {
                let start = t - t.rem_euclid(*width);
                if last != Some(start) {
                    buckets += 1;
                    last = Some(start);
                    if buckets > MAX_BUCKETS {
                        return false;
                    }
                }
            }
            true
        })
        .unwrap_or(widest)
}

fn write_counts(out: &mut Vec<u8>, counts: &Counts) {
    put_varint(out, counts.len() as u64);
    for &(kind, level, category, n) in counts {
        out.push(kind);
        out.push(level);
        put_varint(out, u64::from(category));
        put_varint(out, n);
    }
}

fn read_counts(r: &mut Reader<'_>) -> Result<Counts, Corrupt> {
    let n = r.count("counts", 1 << 20)?;
    let mut counts = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let kind = r.u8("kind")?;
        let level = r.u8("level")?;
        let category = u32::try_from(r.varint("category")?)
            .map_err(|_| Corrupt("category index out of range".into()))?;
        counts.push((kind, level, category, r.varint("count")?));
    }
    Ok(counts)
}

/// What [`Summary::count_buckets`] tells of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCounts<K> {
    /// Rows per key, of the buckets wholly within the bounds.
    pub counted: Vec<(K, u64)>,
    /// The `ts` ranges (inclusive) whose rows must be read, ascending and disjoint.
    pub straddling: Vec<(i64, i64)>,
}

/// How `ts` bounds relate to a range of timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// Every instant of the range satisfies them.
    Inside,
    /// None does.
    Outside,
    /// Some do.
    Partial,
}

fn ts_span(bounds: &[&Condition], lo: i64, hi: i64) -> Span {
    let mut span = Span::Inside;
    for c in bounds {
        let Condition::Compare(Field::Ts, cmp, Scalar::Int(b)) = c else {
            continue;
        };
        let b = *b;
        let (all, any) = match cmp {
            Comparison::Lt => (hi < b, lo < b),
            Comparison::Le => (hi <= b, lo <= b),
            Comparison::Gt => (lo > b, hi > b),
            Comparison::Ge => (lo >= b, hi >= b),
        };
        if !any {
            return Span::Outside;
        }
        if !all {
            span = Span::Partial;
        }
    }
    span
}

/// The record a count entry stands for (kind, level and category set).
fn counted_record(values: &[String], kind: u8, level: u8, category: u32) -> Option<Record> {
    let mut new = NewRecord::new(Kind::from_code(i64::from(kind))?);
    new.level = Level::from_number(i64::from(level));
    new.category = match category {
        0 => None,
        i => Some(values.get(i as usize - 1)?.clone()),
    };
    Some(new.into_record(0, Timestamp(0)))
}

/// Whether a condition reads only kind, level and category (what counts keep).
fn countable(c: &Condition) -> bool {
    match c {
        Condition::In(f, _)
        | Condition::NotIn(f, _)
        | Condition::Compare(f, _, _)
        | Condition::Contains(f, _)
        | Condition::ContainsCaseSensitive(f, _)
        | Condition::StartsWith(f, _) => matches!(f, Field::Kind | Field::Level | Field::Category),
        Condition::Any(cs) | Condition::All(cs) => cs.iter().all(countable),
        Condition::Not(c) => countable(c),
    }
}

/// A record with only `field` set to `value`: evaluating a condition on one field
/// against it is evaluating it on every record with that value, through the one
/// definition (`Condition::matches`).
fn template(field: Field, value: Option<&str>) -> Option<Record> {
    let mut new = NewRecord::new(Kind::Log);
    *new.text_field_mut(field.name())? = value.map(str::to_string);
    Some(new.into_record(0, Timestamp(0)))
}

fn text_index(field: Field) -> Option<usize> {
    TEXT_FIELD_NAMES
        .iter()
        .position(|name| *name == field.name())
        .filter(|_| !matches!(field, Field::Data | Field::DataText(_)))
}

impl Summary {
    /// What is known of a run of ids and nothing else.
    pub fn opaque(first_id: i64, last_id: i64, rows: u64) -> Summary {
        Summary {
            first_id,
            last_id,
            rows,
            ts_min: i64::MIN,
            ts_max: i64::MAX,
            fields: Vec::new(),
            trigrams: None,
            counts: Vec::new(),
            bucket_width: 0,
            buckets: Vec::new(),
            page_ts: Vec::new(),
            opaque: true,
        }
    }

    /// False when no record of the block can satisfy the condition; true when some
    /// may (the block must then be read).
    pub fn may_match(&self, condition: &Condition) -> bool {
        if self.opaque {
            return match condition {
                Condition::In(Field::Id, _) | Condition::Compare(Field::Id, _, _) => {
                    self.range_may_match(condition, self.first_id, self.last_id)
                }
                _ => true,
            };
        }
        match condition {
            Condition::Any(cs) => cs.iter().any(|c| self.may_match(c)),
            Condition::All(cs) => cs.iter().all(|c| self.may_match(c)),
            // A negation may match wherever its condition does not match every record.
            Condition::Not(_) => true,
            // A case-sensitive match is also a case-insensitive one.
            Condition::Contains(Field::Message, needle)
            | Condition::ContainsCaseSensitive(Field::Message, needle) => {
                match (&self.trigrams, needle_trigrams(needle)) {
                    (Some(bloom), Some(trigrams)) => trigrams.iter().all(|t| bloom.may_contain(*t)),
                    (None, _) => false, // no message in the block
                    (_, None) => true,
                }
            }
            Condition::In(Field::Id, _) | Condition::Compare(Field::Id, _, _) => {
                self.range_may_match(condition, self.first_id, self.last_id)
            }
            Condition::In(Field::Ts, _) | Condition::Compare(Field::Ts, _, _) => {
                self.range_may_match(condition, self.ts_min, self.ts_max)
            }
            Condition::In(Field::Kind | Field::Level, _)
            | Condition::NotIn(Field::Kind | Field::Level, _)
            | Condition::Compare(Field::Kind | Field::Level, _, _)
                if !self.counts.is_empty() =>
            {
                self.counts.iter().any(|&(kind, level, _, _)| {
                    let mut new =
                        NewRecord::new(Kind::from_code(i64::from(kind)).unwrap_or(Kind::Log));
                    new.level = Level::from_number(i64::from(level));
                    condition.matches(&new.into_record(0, Timestamp(0)))
                })
            }
            Condition::In(field, _)
            | Condition::NotIn(field, _)
            | Condition::Compare(field, _, _)
            | Condition::Contains(field, _)
            | Condition::ContainsCaseSensitive(field, _)
            | Condition::StartsWith(field, _) => self.field_may_match(*field, condition),
        }
    }

    fn range_may_match(&self, condition: &Condition, lo: i64, hi: i64) -> bool {
        match condition {
            Condition::In(_, values) => values
                .iter()
                .any(|v| matches!(v, Scalar::Int(n) if (lo..=hi).contains(n))),
            Condition::Compare(_, cmp, Scalar::Int(bound)) => match cmp {
                Comparison::Lt => lo < *bound,
                Comparison::Le => lo <= *bound,
                Comparison::Gt => hi > *bound,
                Comparison::Ge => hi >= *bound,
            },
            _ => true,
        }
    }

    fn field_may_match(&self, field: Field, condition: &Condition) -> bool {
        let Some(index) = text_index(field) else {
            return true;
        };
        match self.fields.get(index) {
            Some(Values::Listed { values, none }) => {
                let test = |value: Option<&str>| {
                    template(field, value).is_none_or(|r| condition.matches(&r))
                };
                (*none && test(None)) || values.iter().any(|v| test(Some(v)))
            }
            Some(Values::Filtered { filter, .. }) => match condition {
                Condition::In(_, values) => values.iter().any(|v| match v {
                    Scalar::Text(t) => filter.may_contain(hash_bytes(t.as_bytes())),
                    Scalar::Int(_) => false,
                }),
                _ => true,
            },
            Some(Values::Unlisted) | None => true,
        }
    }

    /// The rows of the block matching every condition, when the summary alone can
    /// tell (conditions on kind, level and category only); `None` otherwise.
    pub fn count(&self, conditions: &[Condition]) -> Option<u64> {
        Some(
            self.count_by(conditions, |_| ())?
                .into_iter()
                .map(|(_, n)| n)
                .sum(),
        )
    }

    /// As [`Summary::count`], per value of `key` (a function of kind, level and
    /// category only), in no particular order.
    pub fn count_by<K: PartialEq>(
        &self,
        conditions: &[Condition],
        key: impl Fn(&Record) -> K,
    ) -> Option<Vec<(K, u64)>> {
        let values = self.counted_categories()?;
        if !conditions.iter().all(countable) {
            return None;
        }
        let mut out: Vec<(K, u64)> = Vec::new();
        for &(kind, level, category, n) in &self.counts {
            let record = counted_record(values, kind, level, category)?;
            if conditions.iter().all(|c| c.matches(&record)) {
                let k = key(&record);
                match out.iter_mut().find(|(existing, _)| *existing == k) {
                    Some((_, total)) => *total += n,
                    None => out.push((k, n)),
                }
            }
        }
        Some(out)
    }

    /// The category values the counts index, when there are counts.
    fn counted_categories(&self) -> Option<&[String]> {
        if self.counts.is_empty() || self.opaque {
            return None;
        }
        match self.fields.get(CATEGORY) {
            Some(Values::Listed { values, .. }) => Some(values),
            _ => None,
        }
    }

    /// Counts the block from its time buckets, for conditions on `ts` bounds
    /// (`Compare` of `ts`), kind, level and category only: per value of `key`, the
    /// rows of every bucket that lies wholly within the bounds and for which `fits`
    /// (its first and last possible instant) holds; and, merged, the `ts` ranges of
    /// the buckets that do not (they straddle a bound), whose rows must be read.
    /// `None` when the summary cannot tell (no buckets, or other conditions).
    pub fn count_buckets<K: Ord>(
        &self,
        conditions: &[Condition],
        fits: impl Fn(i64, i64) -> bool,
        key: impl Fn(&Record, i64) -> K,
    ) -> Option<BucketCounts<K>> {
        let values = self.counted_categories()?;
        if self.bucket_width <= 0 {
            return None;
        }
        let (bounds, rest): (Vec<&Condition>, Vec<&Condition>) = conditions
            .iter()
            .partition(|c| matches!(c, Condition::Compare(Field::Ts, _, Scalar::Int(_))));
        if !rest.iter().all(|c| countable(c)) {
            return None;
        }
        let mut matching = std::collections::HashMap::<(u8, u8, u32), Option<Record>>::new();
        let mut counted = std::collections::BTreeMap::<K, u64>::new();
        let mut straddling: Vec<(i64, i64)> = Vec::new();
        for bucket in &self.buckets {
            let lo = bucket.start.max(self.ts_min);
            let hi = bucket
                .start
                .saturating_add(self.bucket_width - 1)
                .min(self.ts_max);
            match ts_span(&bounds, lo, hi) {
                Span::Outside => continue,
                Span::Inside if fits(lo, hi) => {
                    for &(kind, level, category, n) in &bucket.counts {
                        let entry = match matching.entry((kind, level, category)) {
                            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::hash_map::Entry::Vacant(e) => {
                                let record = counted_record(values, kind, level, category)?;
                                let matches = rest.iter().all(|c| c.matches(&record));
                                e.insert(matches.then_some(record))
                            }
                        };
                        if let Some(record) = entry {
                            *counted.entry(key(record, lo)).or_default() += n;
                        }
                    }
                }
                Span::Inside | Span::Partial => match straddling.last_mut() {
                    Some(last) if last.1.saturating_add(1) >= lo => last.1 = hi,
                    _ => straddling.push((lo, hi)),
                },
            }
        }
        Some(BucketCounts {
            counted: counted.into_iter().collect(),
            straddling,
        })
    }

    /// Writes version 2, or version 1 when there are no buckets and no page ranges
    /// (what version 1 held, byte for byte).
    pub fn write(&self, out: &mut Vec<u8>) {
        let version = if self.bucket_width > 0 || !self.page_ts.is_empty() {
            2
        } else {
            1
        };
        out.push(version);
        put_varint(out, zigzag(self.first_id));
        put_varint(out, zigzag(self.last_id));
        put_varint(out, self.rows);
        put_varint(out, zigzag(self.ts_min));
        put_varint(out, zigzag(self.ts_max));
        put_varint(out, self.fields.len() as u64);
        for field in &self.fields {
            match field {
                Values::Listed { values, none } => {
                    out.push(u8::from(*none));
                    put_varint(out, values.len() as u64);
                    for v in values {
                        put_bytes(out, v.as_bytes());
                    }
                }
                Values::Filtered { filter, none } => {
                    out.push(2 | u8::from(*none));
                    filter.write(out);
                }
                Values::Unlisted => out.push(4),
            }
        }
        match &self.trigrams {
            Some(bloom) => {
                out.push(1);
                bloom.write(out);
            }
            None => out.push(0),
        }
        write_counts(out, &self.counts);
        if version == 1 {
            return;
        }
        put_varint(out, zigzag(self.bucket_width));
        put_varint(out, self.buckets.len() as u64);
        let mut previous = 0i64;
        for bucket in &self.buckets {
            put_varint(out, zigzag(bucket.start.wrapping_sub(previous)));
            previous = bucket.start;
            write_counts(out, &bucket.counts);
        }
        put_varint(out, self.page_ts.len() as u64);
        for &(lo, hi) in &self.page_ts {
            put_varint(out, zigzag(lo));
            put_varint(out, zigzag(hi.wrapping_sub(lo)));
        }
    }

    pub fn read(bytes: &[u8]) -> Result<Summary, Corrupt> {
        let mut r = Reader::new(bytes);
        let version = r.u8("summary version")?;
        if version != 1 && version != 2 {
            return Err(Corrupt(format!("summary version {version}")));
        }
        let first_id = unzigzag(r.varint("first id")?);
        let last_id = unzigzag(r.varint("last id")?);
        let rows = r.varint("rows")?;
        let ts_min = unzigzag(r.varint("ts min")?);
        let ts_max = unzigzag(r.varint("ts max")?);
        let n = r.count("fields", 64)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = r.u8("field tag")?;
            let none = tag & 1 == 1;
            fields.push(if tag == 4 {
                Values::Unlisted
            } else if tag & 2 == 0 {
                let count = r.count("values", MAX_VALUES)?;
                let values = (0..count)
                    .map(|_| r.text("value").map(str::to_string))
                    .collect::<Result<_, _>>()?;
                Values::Listed { values, none }
            } else {
                Values::Filtered {
                    filter: Bloom::read(&mut r)?,
                    none,
                }
            });
        }
        let trigrams = match r.u8("trigram tag")? {
            0 => None,
            _ => Some(Bloom::read(&mut r)?),
        };
        let counts = read_counts(&mut r)?;
        let (mut bucket_width, mut buckets, mut page_ts) = (0, Vec::new(), Vec::new());
        if version >= 2 {
            bucket_width = r.signed("bucket width")?;
            let n = r.count("buckets", 1 << 24)?;
            let mut start = 0i64;
            for _ in 0..n {
                start = start.wrapping_add(r.signed("bucket start")?);
                buckets.push(TimeBucket {
                    start,
                    counts: read_counts(&mut r)?,
                });
            }
            let n = r.count("pages", 1 << 24)?;
            for _ in 0..n {
                let lo = r.signed("page ts")?;
                page_ts.push((lo, lo.wrapping_add(r.signed("page ts span")?)));
            }
        }
        Ok(Summary {
            first_id,
            last_id,
            rows,
            ts_min,
            ts_max,
            fields,
            trigrams,
            counts,
            bucket_width,
            buckets,
            page_ts,
            opaque: false,
        })
    }

    /// Bytes the summary takes when stored.
    pub fn size_bytes(&self) -> usize {
        let mut out = Vec::new();
        self.write(&mut out);
        out.len()
    }
}
