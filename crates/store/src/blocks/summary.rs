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
//! - the number of rows per (kind, level, category).

use super::filter::{hash_bytes, message_trigrams, needle_trigrams, Bloom};
use super::format::{MESSAGE, TEXT, TEXT_FIELDS};
use super::wire::{put_bytes, put_varint, unzigzag, zigzag, Corrupt, Reader};
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::record::TEXT_FIELD_NAMES;
use logbook_core::{Kind, Level, NewRecord, Record, Timestamp};

/// Most distinct values of a field kept as a list; beyond it, a bloom filter.
pub const MAX_VALUES: usize = 1024;
/// The text field counts are kept per (with kind and level).
const CATEGORY: usize = 0;

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
    pub counts: Vec<(u8, u8, u32, u64)>,
    /// Nothing is known but the id range (rows of the previous layout, being
    /// sealed): every record may match, nothing is counted from here. Never stored.
    pub opaque: bool,
}

pub struct SummaryBuilder<'a> {
    records: &'a [Record],
    fields: Vec<Values>,
    trigrams: Option<Bloom>,
}

impl<'a> SummaryBuilder<'a> {
    pub fn new(records: &'a [Record]) -> SummaryBuilder<'a> {
        SummaryBuilder {
            records,
            fields: Vec::with_capacity(TEXT_FIELDS),
            trigrams: None,
        }
    }

    /// Summarises text field `field` (its values, one per record).
    pub fn text_field(&mut self, field: usize, values: &[Option<&str>]) {
        let none = values.iter().any(Option::is_none);
        if field + TEXT == MESSAGE {
            let _ = none;
            let mut hashes = Vec::new();
            for v in values.iter().flatten() {
                message_trigrams(v, &mut hashes);
            }
            if hashes.is_empty() && !values.iter().any(Option::is_some) {
                self.trigrams = None;
            } else {
                self.trigrams = Some(Bloom::from_hashes(&hashes));
            }
            self.fields.push(Values::Unlisted);
            return;
        }
        let mut distinct: Vec<&str> = values.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.fields.push(if distinct.len() <= MAX_VALUES {
            Values::Listed {
                values: distinct.into_iter().map(str::to_string).collect(),
                none,
            }
        } else {
            let hashes: Vec<u64> = distinct.iter().map(|v| hash_bytes(v.as_bytes())).collect();
            Values::Filtered {
                filter: Bloom::from_hashes(&hashes),
                none,
            }
        });
    }

    pub fn finish(self) -> Summary {
        let records = self.records;
        let ts = records.iter().map(|r| r.ts.micros());
        let mut counts = Vec::new();
        if let Some(Values::Listed { values, .. }) = self.fields.get(CATEGORY) {
            let mut keyed = std::collections::BTreeMap::<(u8, u8, u32), u64>::new();
            for r in records {
                let category = r.category.as_deref().map_or(0, |c| {
                    values
                        .binary_search_by(|v| v.as_str().cmp(c))
                        .map_or(0, |i| i as u32 + 1)
                });
                let key = (
                    r.kind.code() as u8,
                    r.level.map_or(0, |l| l.number() as u8),
                    category,
                );
                *keyed.entry(key).or_default() += 1;
            }
            counts = keyed
                .into_iter()
                .map(|((k, l, c), n)| (k, l, c, n))
                .collect();
        }
        Summary {
            first_id: records.first().map_or(0, |r| r.id),
            last_id: records.last().map_or(0, |r| r.id),
            rows: records.len() as u64,
            ts_min: ts.clone().min().unwrap_or(0),
            ts_max: ts.max().unwrap_or(0),
            fields: self.fields,
            trigrams: self.trigrams,
            counts,
            opaque: false,
        }
    }
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
        if self.counts.is_empty() || self.opaque {
            return None;
        }
        let Some(Values::Listed { values, .. }) = self.fields.get(CATEGORY) else {
            return None;
        };
        if !conditions.iter().all(countable) {
            return None;
        }
        let mut out: Vec<(K, u64)> = Vec::new();
        for &(kind, level, category, n) in &self.counts {
            let mut new = NewRecord::new(Kind::from_code(i64::from(kind))?);
            new.level = Level::from_number(i64::from(level));
            new.category = match category {
                0 => None,
                i => Some(values.get(i as usize - 1)?.clone()),
            };
            let record = new.into_record(0, Timestamp(0));
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

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(1); // version
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
        put_varint(out, self.counts.len() as u64);
        for &(kind, level, category, n) in &self.counts {
            out.push(kind);
            out.push(level);
            put_varint(out, u64::from(category));
            put_varint(out, n);
        }
    }

    pub fn read(bytes: &[u8]) -> Result<Summary, Corrupt> {
        let mut r = Reader::new(bytes);
        let version = r.u8("summary version")?;
        if version != 1 {
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
        let n = r.count("counts", 1 << 20)?;
        let mut counts = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = r.u8("kind")?;
            let level = r.u8("level")?;
            let category = u32::try_from(r.varint("category")?)
                .map_err(|_| Corrupt("category index out of range".into()))?;
            counts.push((kind, level, category, r.varint("count")?));
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
