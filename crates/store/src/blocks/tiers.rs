//! The two tiers and the catalog that lists them, shared by both stores.
//!
//! - *Hot*: the newest records, one segment per group-committed batch (one row in
//!   the database, decoded in memory), bounded by [`TierOptions::hot_records`] and
//!   [`TierOptions::hot_age`].
//! - *Sealed*: immutable blocks of [`TierOptions::block_rows`] records each, made
//!   by the sealer from the oldest hot records, in id order.
//!
//! The catalog (every visible segment, in id order, and the high-water id) is an
//! immutable snapshot behind an `Arc`: a reader takes the current one and never
//! blocks on the writer or the sealer; the writer swaps in a new one after each
//! commit, before announcing it, so a reader sees each record in exactly one place.

use super::filter::Keys;
use super::format::{self, Columns, Options};
use super::rows;
use super::segment::{contiguous_page_ids, Segment};
use crate::Result;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TierOptions {
    /// Records per sealed block.
    pub block_rows: usize,
    /// Rows per page inside a block (the unit of decompression).
    pub page_rows: usize,
    /// Hot records beyond which the oldest are sealed.
    pub hot_records: usize,
    /// Hot records older than this (since they were written) are sealed, even into
    /// a block that is not full, so a quiet store does not keep them hot forever.
    pub hot_age: Duration,
    pub zstd_level: i32,
}

impl Default for TierOptions {
    fn default() -> Self {
        TierOptions {
            block_rows: 65_536,
            // 1024 rows: a get decompresses a page of each column as far as its row
            // (a quarter as much as with 4096, 0.22 instead of 0.72 ms a get on
            // gen.py's records), and the block is no larger (33.9 against 34.6
            // bytes a record: docs/storage.md).
            page_rows: 1024,
            hot_records: 131_072,
            hot_age: Duration::from_secs(600),
            zstd_level: 3,
        }
    }
}

/// A segment as the catalog lists it.
#[derive(Clone)]
pub struct Entry {
    pub segment: Segment,
    /// Hot (a batch in row form) or sealed (a block).
    pub hot: bool,
    /// When this process first saw it (the hot tier's age bound).
    pub seen: Instant,
}

#[derive(Clone, Default)]
pub struct Catalog {
    /// In ascending, disjoint id ranges.
    pub entries: Vec<Entry>,
    pub high_water: i64,
    /// Bumped by every change but an append (seals, deletes), so another process
    /// on the same database can tell its catalog is out of date.
    pub version: i64,
}

impl Catalog {
    pub fn segments(&self) -> Vec<Segment> {
        self.entries.iter().map(|e| e.segment.clone()).collect()
    }

    pub fn hot_records(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.hot)
            .map(|e| e.segment.summary.rows)
            .sum()
    }

    /// Inserts an entry at its place by id.
    pub fn insert(&mut self, entry: Entry) {
        let at = self
            .entries
            .partition_point(|e| e.segment.first_id() < entry.segment.first_id());
        self.entries.insert(at, entry);
    }

    pub fn remove(&mut self, first_id: i64) -> Option<Entry> {
        let at = self
            .entries
            .iter()
            .position(|e| e.segment.first_id() == first_id)?;
        Some(self.entries.remove(at))
    }
}

/// What the tiers hold, for operators, the benchmark and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierStatus {
    pub hot_segments: u64,
    pub hot_records: u64,
    pub blocks: u64,
    pub sealed_records: u64,
    pub high_water: i64,
}

impl TierStatus {
    pub fn of(catalog: &Catalog) -> TierStatus {
        let mut status = TierStatus {
            high_water: catalog.high_water,
            ..TierStatus::default()
        };
        for e in &catalog.entries {
            if e.hot {
                status.hot_segments += 1;
                status.hot_records += e.segment.summary.rows;
            } else {
                status.blocks += 1;
                status.sealed_records += e.segment.summary.rows;
            }
        }
        status
    }
}

/// The current catalog, swapped whole.
pub struct Tiers {
    current: RwLock<Arc<Catalog>>,
    pub options: TierOptions,
}

impl Tiers {
    pub fn new(catalog: Catalog, options: TierOptions) -> Tiers {
        Tiers {
            current: RwLock::new(Arc::new(catalog)),
            options,
        }
    }

    pub fn snapshot(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn publish(&self, catalog: Catalog) {
        let catalog = Arc::new(catalog);
        match self.current.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }
}

/// What the sealer does next: the hot segments it consumes (oldest first), the
/// block it makes of their first rows, and the rows left over from the last one,
/// which stay hot as a segment of their own (made here, off the writer).
pub struct Seal {
    pub consumed: Vec<i64>,
    pub block: format::Encoded,
    pub block_first: i64,
    pub block_last: i64,
    pub remainder: Option<Remainder>,
}

/// The rows of a seal's last hot segment beyond its block: a hot segment again.
pub struct Remainder {
    pub segment: Segment,
    /// In the hot tier's row form ([`rows`]).
    pub rows: Vec<u8>,
}

/// Plans the next seal, if the hot tier is over its bounds. The block is encoded
/// from the hot segments' pages, without making a record of each row.
pub fn plan_seal(catalog: &Catalog, options: &TierOptions, now: Instant) -> Result<Option<Seal>> {
    let hot: Vec<&Entry> = catalog.entries.iter().filter(|e| e.hot).collect();
    let Some(oldest) = hot.first() else {
        return Ok(None);
    };
    let total: u64 = hot.iter().map(|e| e.segment.summary.rows).sum();
    let over_count = total as usize > options.hot_records;
    let over_age = now.duration_since(oldest.seen) >= options.hot_age;
    if !over_count && !over_age {
        return Ok(None);
    }
    // Sealed blocks must stay in id order below the hot tier: only a run of hot
    // segments with no sealed one after them in between is taken.
    let every_column: Vec<usize> = (0..format::COLUMNS).collect();
    let mut consumed = Vec::new();
    // Each page taken: its first id (when ids are not stored), its columns, its rows.
    let mut pages: Vec<(i64, Vec<Arc<format::Page>>, usize)> = Vec::new();
    let mut rows = 0usize;
    // The trigram keys of the whole segments at the block's start, from their
    // summaries, so the block's filter takes only the rest from the messages.
    let (mut known, mut known_rows) = (Keys::default(), 0usize);
    for entry in &hot {
        if rows >= options.block_rows {
            break;
        }
        let source = &entry.segment.source;
        let layout = source.layout();
        if known_rows == rows && rows + layout.rows <= options.block_rows {
            if let Some(keys) = source.trigram_keys() {
                known.extend(keys.iter().copied());
                known_rows += layout.rows;
            }
        }
        for page in 0..layout.pages() {
            let (first_id, _) = contiguous_page_ids(layout, page);
            let columns = source.pages(&every_column, page)?;
            pages.push((first_id, columns, layout.rows_of_page(page).len()));
        }
        rows += layout.rows;
        consumed.push(entry.segment.first_id());
    }
    if rows < options.block_rows && !over_age {
        return Ok(None);
    }
    let block_rows = rows.min(options.block_rows);
    let mut columns = Columns::with_capacity(block_rows);
    for (first_id, page, page_rows) in &pages {
        let take = (*page_rows).min(block_rows - columns.rows());
        columns.push_pages(page, *first_id, 0..take);
    }
    let (Some(&block_first), Some(&block_last)) = (columns.ids.first(), columns.ids.last()) else {
        return Ok(None);
    };
    let block = format::encode_columns_knowing_trigrams(
        &columns,
        &Options {
            page_rows: options.page_rows,
            zstd_level: options.zstd_level,
        },
        known,
        known_rows,
    );
    drop(columns);
    let remainder = match rows > block_rows {
        false => None,
        true => {
            // The rest of the pages, from where the block ended.
            let mut rest = Columns::with_capacity(rows - block_rows);
            let mut skip = block_rows;
            for (first_id, page, page_rows) in &pages {
                let skipped = skip.min(*page_rows);
                skip -= skipped;
                if skipped < *page_rows {
                    rest.push_pages(page, *first_id, skipped..*page_rows);
                }
            }
            Some(Remainder {
                segment: Segment::hot_of(&rest),
                rows: rows::encode_columns(&rest),
            })
        }
    };
    Ok(Some(Seal {
        consumed,
        block,
        block_first,
        block_last,
        remainder,
    }))
}
