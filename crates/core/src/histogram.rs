//! Counts of matching records over time: what a UI's time histogram, Grafana's logs
//! volume and Waldur-style stats ask for. Buckets are aligned to multiples of the
//! interval since the epoch (as Loki aligns `step`), so the same record always falls
//! in the same bucket whatever range a client asks for, and results can be cached.

use crate::error::FieldError;
use crate::query::{field_value, Field, Scalar};
use crate::record::Record;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// Most buckets one histogram may have; a request for more is a client's mistake
/// (a year in one-second buckets), not something to compute.
pub const MAX_BUCKETS: i64 = 10_000;

/// What to count: one bucket per `interval`, optionally one series per value of `by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    interval: i64,
    by: Option<Field>,
}

/// The count of matching records in one bucket (and one value of the split field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's first instant: a multiple of the interval.
    pub start: Timestamp,
    /// The split field's value (`None`: the record has no value, or no split asked).
    pub key: Option<Scalar>,
    pub count: u64,
}

impl Histogram {
    /// `interval` in microseconds (positive); `by` one of [`Field::LISTED`].
    pub fn new(interval_micros: i64, by: Option<Field>) -> Result<Histogram, FieldError> {
        if interval_micros <= 0 {
            return Err(FieldError::new("interval", "must be positive"));
        }
        if let Some(field) = by {
            if !Field::LISTED.contains(&field) {
                return Err(FieldError::new(
                    "by",
                    format!("cannot split by {:?}", field.name()),
                ));
            }
        }
        Ok(Histogram {
            interval: interval_micros,
            by,
        })
    }

    pub fn interval_micros(&self) -> i64 {
        self.interval
    }

    pub fn by(&self) -> Option<Field> {
        self.by
    }

    /// The start of the bucket holding `ts`.
    pub fn bucket_start(&self, ts: Timestamp) -> Timestamp {
        Timestamp(ts.micros() - ts.micros().rem_euclid(self.interval))
    }

    /// The split key of a record.
    pub fn key_of(&self, record: &Record) -> Option<Scalar> {
        self.by.and_then(|field| field_value(record, field))
    }

    /// The executable definition every store's answer must equal: the non-empty
    /// buckets of `records`, ordered by start, then key (absent first).
    pub fn count<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> Vec<Bucket> {
        let mut counts: BTreeMap<(Timestamp, Option<Scalar>), u64> = BTreeMap::new();
        for record in records {
            *counts
                .entry((self.bucket_start(record.ts), self.key_of(record)))
                .or_default() += 1;
        }
        counts
            .into_iter()
            .map(|((start, key), count)| Bucket { start, key, count })
            .collect()
    }

    /// A width for about `buckets` buckets over `[since, until]`, rounded up to a
    /// step people read easily (1, 2, 5 or 10 times a second, a minute, an hour...).
    pub fn automatic_interval(since: Timestamp, until: Timestamp, buckets: i64) -> i64 {
        const STEPS: [i64; 22] = [
            1_000,
            10_000,
            100_000,
            1_000_000,
            2_000_000,
            5_000_000,
            10_000_000,
            15_000_000,
            30_000_000,
            60_000_000,
            120_000_000,
            300_000_000,
            600_000_000,
            900_000_000,
            1_800_000_000,
            3_600_000_000,
            7_200_000_000,
            10_800_000_000,
            21_600_000_000,
            43_200_000_000,
            DAY,
            7 * DAY,
        ];
        const DAY: i64 = 86_400_000_000;
        let (span, buckets) = ((until.micros() - since.micros()).max(1), buckets.max(1));
        let wanted = span / buckets + i64::from(span % buckets != 0);
        STEPS
            .into_iter()
            .find(|step| *step >= wanted)
            .unwrap_or((wanted / DAY + i64::from(wanted % DAY != 0)) * DAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Level;
    use crate::record::{Kind, NewRecord};

    fn record(id: i64, ts: i64, level: Option<Level>) -> Record {
        NewRecord {
            kind: Some(Kind::Log),
            level,
            ..NewRecord::default()
        }
        .into_record(id, Timestamp(ts))
    }

    #[test]
    fn buckets_are_aligned_to_the_epoch_and_split_by_the_field() {
        let h = Histogram::new(10, Some(Field::Level)).expect("valid");
        let records = [
            record(1, 3, Some(Level::Info)),
            record(2, 9, Some(Level::Error)),
            record(3, 10, Some(Level::Info)),
            record(4, 12, None),
            record(5, 19, Some(Level::Info)),
        ];
        let info = Some(Scalar::Int(Level::Info.number()));
        assert_eq!(
            h.count(&records),
            [
                Bucket {
                    start: Timestamp(0),
                    key: info.clone(),
                    count: 1
                },
                Bucket {
                    start: Timestamp(0),
                    key: Some(Scalar::Int(Level::Error.number())),
                    count: 1
                },
                Bucket {
                    start: Timestamp(10),
                    key: None,
                    count: 1
                },
                Bucket {
                    start: Timestamp(10),
                    key: info,
                    count: 2
                },
            ]
        );
    }

    #[test]
    fn only_sensible_splits_and_positive_intervals_are_accepted() {
        assert_eq!(Histogram::new(0, None).expect_err("zero").field, "interval");
        assert_eq!(
            Histogram::new(1, Some(Field::Message))
                .expect_err("free text")
                .field,
            "by"
        );
    }

    #[test]
    fn automatic_intervals_are_round_and_cover_the_range() {
        let day = 86_400_000_000;
        assert_eq!(
            Histogram::automatic_interval(Timestamp(0), Timestamp(day), 100),
            900_000_000
        );
        assert_eq!(
            Histogram::automatic_interval(Timestamp(0), Timestamp(300_000_000), 100),
            5_000_000
        );
        let year = 365 * day;
        let step = Histogram::automatic_interval(Timestamp(0), Timestamp(year), 10);
        assert!(step * 10 >= year && step % day == 0, "{step}");
    }
}
