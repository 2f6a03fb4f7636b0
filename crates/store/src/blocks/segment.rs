//! What the query engine reads: segments, each a run of records in id order with a
//! summary and columns in pages. A hot segment (the newest records, one per group
//! commit) holds its columns decoded in memory, one page each; a sealed block reads
//! its pages from its blob on demand. The engine treats both alike.

use super::format::{
    self, Columns, Dictionary, Layout, Page, COLUMNS, DATA, IDS, KIND, LEVEL, TEXT, TEXT_FIELDS, TS,
};
use super::summary::{Summary, SummaryBuilder};
use crate::Result;
use logbook_core::Record;
use std::sync::{Arc, OnceLock};

/// Gives the pages of one segment's columns.
pub trait PageSource: Send + Sync {
    fn layout(&self) -> &Layout;
    /// The page of a column; [`Page::Absent`] for a column the segment does not store.
    fn page(&self, column: usize, page: usize) -> Result<Arc<Page>>;
    /// The page `page` of each of these columns, in their order (a source that reads
    /// from disk reads them together).
    fn pages(&self, columns: &[usize], page: usize) -> Result<Vec<Arc<Page>>> {
        columns.iter().map(|&c| self.page(c, page)).collect()
    }
    /// The record at row `row` of page `page`. This default decodes the page of
    /// every column; a sealed block decodes each only as far as that row.
    fn record(&self, page: usize, row: usize) -> Result<Record> {
        let all: Vec<usize> = (0..COLUMNS).collect();
        let pages = self.pages(&all, page)?;
        let pages: Vec<&Page> = pages.iter().map(|p| &**p).collect();
        let start = self.layout().rows_of_page(page).start;
        Ok(format::record_at(self.layout(), &pages, row, start + row)?)
    }
    /// The page that would hold this id, when pages are cut by id rather than by
    /// row (rows with gaps, e.g. those of the previous layout).
    fn page_of_id(&self, _id: i64) -> Option<usize> {
        None
    }
    /// The source as a single pass over all its pages (an export) reads it best:
    /// a block on disk read whole at once and its pages kept out of the shared
    /// cache (where they would push out what other queries use). `None`: as it is.
    fn for_scan(&self) -> Option<Arc<dyn PageSource>> {
        None
    }
    /// The first and last id a page can hold, when known without reading it: a
    /// block whose ids are contiguous (not stored) has them by arithmetic.
    fn page_ids(&self, page: usize) -> Option<(i64, i64)> {
        let layout = self.layout();
        let ids = layout.columns.get(IDS)?;
        (ids.encoding == format::Encoding::Absent).then(|| contiguous_page_ids(layout, page))
    }
    /// The distinct trigram keys of the segment's messages, when kept (a hot
    /// segment keeps them for the block it is sealed into).
    fn trigram_keys(&self) -> Option<&[u64]> {
        None
    }
}

/// The ids of page `page` of a layout whose ids run on without gaps.
pub fn contiguous_page_ids(layout: &Layout, page: usize) -> (i64, i64) {
    let rows = layout.rows_of_page(page);
    (
        layout.first_id + rows.start as i64,
        layout.first_id + rows.end as i64 - 1,
    )
}

#[derive(Clone)]
pub struct Segment {
    pub summary: Arc<Summary>,
    pub source: Arc<dyn PageSource>,
}

impl Segment {
    pub fn first_id(&self) -> i64 {
        self.summary.first_id
    }

    pub fn last_id(&self) -> i64 {
        self.summary.last_id
    }

    /// A hot segment of these records (ascending ids, at least one).
    pub fn hot(records: &[Record]) -> Segment {
        let data = format::data_texts(records);
        Segment::hot_of(&Columns::of_records(records, &data))
    }

    /// A hot segment of these rows (ascending ids, at least one).
    pub fn hot_of(rows: &Columns<'_>) -> Segment {
        let (hot, summary) = HotSegment::new(rows);
        Segment {
            summary: Arc::new(summary),
            source: Arc::new(hot),
        }
    }

    /// A sealed block held in memory as its blob.
    pub fn sealed(blob: Arc<Vec<u8>>, summary: Arc<Summary>) -> Result<Segment> {
        Ok(Segment {
            summary,
            source: Arc::new(BlobBlock::new(blob)?),
        })
    }

    /// The segment as a single pass over its pages reads it (see
    /// [`PageSource::for_scan`]).
    pub fn for_scan(&self) -> Segment {
        match self.source.for_scan() {
            Some(source) => Segment {
                summary: Arc::clone(&self.summary),
                source,
            },
            None => self.clone(),
        }
    }
}

// The columns are pushed in this order below.
const _: () = assert!(
    TS == 0
        && KIND == 1
        && LEVEL == 2
        && TEXT == 3
        && TEXT + TEXT_FIELDS == DATA
        && DATA + 1 == IDS
);

/// A hot segment built before its records' ids are known (rows numbered from 0,
/// ids implicit), so it can be built off the writer, which numbers it.
pub struct UnnumberedHot {
    hot: HotSegment,
    summary: Summary,
}

impl UnnumberedHot {
    /// `rows` must be numbered `0..n`.
    pub fn of(rows: &Columns<'_>) -> UnnumberedHot {
        debug_assert!(rows.ids.iter().enumerate().all(|(i, id)| *id == i as i64));
        let (hot, summary) = HotSegment::new(rows);
        UnnumberedHot { hot, summary }
    }

    /// The segment of pages made a chunk at a time, rows numbered from 0.
    pub fn of_pages(pages: HotPages) -> UnnumberedHot {
        let pages = pages.finish().into_iter().map(Arc::new).collect();
        let (hot, summary) = HotSegment::of_pages(pages, 0);
        UnnumberedHot { hot, summary }
    }

    /// Its columns, one page each, rows numbered from 0.
    pub fn pages(&self) -> &[Arc<Page>] {
        &self.hot.pages
    }

    /// The segment, its rows numbered from `first_id`.
    pub fn numbered(mut self, first_id: i64) -> Segment {
        let shift = first_id.wrapping_sub(self.hot.layout.first_id);
        for id in [
            &mut self.hot.layout.first_id,
            &mut self.hot.layout.last_id,
            &mut self.summary.first_id,
            &mut self.summary.last_id,
        ] {
            *id = id.wrapping_add(shift);
        }
        Segment {
            summary: Arc::new(self.summary),
            source: Arc::new(self.hot),
        }
    }
}

/// The newest records, decoded: each column one page.
pub struct HotSegment {
    layout: Layout,
    pages: Vec<Arc<Page>>,
    /// Of its summary's trigram filter: about 5,000 keys, 40 KB, a segment of
    /// 1000 gen.py records.
    trigram_keys: Box<[u64]>,
}

/// Rows as decoded pages, one page of each column holding them all (a hot
/// segment, or one page of rows read back from the previous layout).
pub fn pages_of(rows: &Columns<'_>) -> Vec<Page> {
    let mut pages = HotPages::with_capacity(rows.rows());
    pages.push(rows);
    pages.finish()
}

/// One text column being gathered: each row's span in the bytes (`u32::MAX` for
/// none), the bytes, whether any row has a value.
type TextColumn = (Vec<(u32, u32)>, String, bool);

/// The pages of [`pages_of`], made a chunk of rows at a time, so a large batch
/// need not be whole in another form meanwhile.
pub struct HotPages {
    ids: Vec<i64>,
    ts: Vec<i64>,
    kinds: Vec<u8>,
    levels: Vec<u8>,
    texts: Vec<TextColumn>,
}

impl HotPages {
    pub fn with_capacity(rows: usize) -> HotPages {
        HotPages {
            ids: Vec::with_capacity(rows),
            ts: Vec::with_capacity(rows),
            kinds: Vec::with_capacity(rows),
            levels: Vec::with_capacity(rows),
            texts: (0..=TEXT_FIELDS)
                .map(|_| (Vec::with_capacity(rows), String::new(), false))
                .collect(),
        }
    }

    /// Appends `rows`, whose ids continue those pushed before.
    pub fn push(&mut self, rows: &Columns<'_>) {
        self.ids.extend_from_slice(&rows.ids);
        self.ts.extend_from_slice(&rows.ts);
        self.kinds.extend_from_slice(&rows.kinds);
        self.levels.extend_from_slice(&rows.levels);
        for ((spans, bytes, any), values) in self.texts.iter_mut().zip(&rows.texts) {
            bytes.reserve(values.iter().flatten().map(|v| v.len()).sum());
            spans.extend(values.iter().map(|v| match v {
                None => (u32::MAX, 0),
                Some(v) => {
                    *any = true;
                    let start = bytes.len() as u32;
                    bytes.push_str(v);
                    (start, bytes.len() as u32)
                }
            }));
        }
    }

    pub fn rows(&self) -> usize {
        self.ts.len()
    }

    /// One page per column. A text field no row has takes no memory (8 bytes a
    /// row otherwise, for most of the 16 fields of the hot tier's records); ids
    /// that run on without gaps are not stored. Each page is as large as its rows
    /// (a hot segment keeps them until it is sealed).
    pub fn finish(self) -> Vec<Page> {
        let mut pages = Vec::with_capacity(COLUMNS);
        pages.push(Page::Ints(shrunk(self.ts)));
        pages.push(Page::Bytes(shrunk(self.kinds)));
        pages.push(Page::Bytes(shrunk(self.levels)));
        for (spans, mut bytes, any) in self.texts {
            pages.push(match any {
                false => Page::Absent,
                true => {
                    bytes.shrink_to_fit();
                    Page::Text {
                        spans: shrunk(spans),
                        bytes,
                    }
                }
            });
        }
        let contiguous = self.ids.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
        pages.push(match contiguous {
            true => Page::Absent,
            false => Page::Ints(shrunk(self.ids)),
        });
        debug_assert_eq!(pages.len(), COLUMNS);
        pages
    }
}

fn shrunk<T>(mut values: Vec<T>) -> Vec<T> {
    values.shrink_to_fit();
    values
}

impl HotSegment {
    /// The segment and its summary, apart: the segment's `Arc<Summary>` is the one
    /// copy (a clone kept here was a sixth of the hot tier's memory).
    pub fn new(rows: &Columns<'_>) -> (HotSegment, Summary) {
        let pages = pages_of(rows).into_iter().map(Arc::new).collect();
        HotSegment::with_summary(pages, rows)
    }

    /// The segment of these pages (one of each column, as [`HotPages`] makes
    /// them), its row 0 having id `first_id` if the ids are not stored.
    pub fn of_pages(pages: Vec<Arc<Page>>, first_id: i64) -> (HotSegment, Summary) {
        let rows = match pages.get(TS).map(|p| &**p) {
            Some(Page::Ints(ts)) => ts.len(),
            _ => 0,
        };
        let mut view = Columns::with_capacity(rows);
        view.push_pages(&pages, first_id, 0..rows);
        let (layout, summary, trigram_keys) = summarise(&view);
        drop(view);
        let hot = HotSegment {
            layout,
            pages,
            trigram_keys,
        };
        (hot, summary)
    }

    fn with_summary(pages: Vec<Arc<Page>>, rows: &Columns<'_>) -> (HotSegment, Summary) {
        let (layout, summary, trigram_keys) = summarise(rows);
        let hot = HotSegment {
            layout,
            pages,
            trigram_keys,
        };
        (hot, summary)
    }
}

/// A hot segment's layout, summary and trigram keys, from its rows.
fn summarise(rows: &Columns<'_>) -> (Layout, Summary, Box<[u64]>) {
    let mut summary = SummaryBuilder::new(rows);
    for field in 0..TEXT_FIELDS {
        summary.text_field(field, &rows.texts[field]);
    }
    let layout = Layout {
        first_id: rows.ids.first().copied().unwrap_or(0),
        last_id: rows.ids.last().copied().unwrap_or(0),
        rows: rows.rows(),
        page_rows: rows.rows().max(1),
        columns: Vec::new(),
        body_offset: 0,
    };
    let trigram_keys = summary.take_trigram_keys();
    (layout, summary.finish(), trigram_keys)
}

impl PageSource for HotSegment {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn page(&self, column: usize, _page: usize) -> Result<Arc<Page>> {
        Ok(self
            .pages
            .get(column)
            .cloned()
            .unwrap_or_else(|| Arc::new(Page::Absent)))
    }

    fn trigram_keys(&self) -> Option<&[u64]> {
        Some(&self.trigram_keys)
    }
}

/// A sealed block whose blob is in memory; pages are decoded as they are asked for.
pub struct BlobBlock {
    layout: Layout,
    blob: Arc<Vec<u8>>,
    dictionaries: Vec<OnceLock<Option<Arc<Dictionary>>>>,
}

impl BlobBlock {
    pub fn new(blob: Arc<Vec<u8>>) -> Result<BlobBlock> {
        Ok(BlobBlock {
            layout: Layout::parse(&blob)?,
            blob,
            dictionaries: (0..COLUMNS).map(|_| OnceLock::new()).collect(),
        })
    }

    fn dictionary(&self, column: usize) -> Result<Option<Arc<Dictionary>>> {
        if let Some(d) = self.dictionaries[column].get() {
            return Ok(d.clone());
        }
        let decoded = match self.layout.dictionary_range(column) {
            Some(range) => Some(format::decode_dictionary(self.slice(range)?)?),
            None => None,
        };
        Ok(self.dictionaries[column].get_or_init(|| decoded).clone())
    }

    fn slice(&self, range: std::ops::Range<usize>) -> Result<&[u8]> {
        self.blob
            .get(range)
            .ok_or_else(|| crate::StoreError::Internal("a block page lies beyond its blob".into()))
    }
}

impl PageSource for BlobBlock {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn record(&self, page: usize, row: usize) -> Result<Record> {
        let rows = self.layout.rows_of_page(page);
        let mut cells = Vec::with_capacity(COLUMNS);
        for (c, column) in self.layout.columns.iter().enumerate() {
            let part = match self.layout.page_range(c, page) {
                Some(range) => self.slice(range)?,
                None => &[],
            };
            let dictionary = self.dictionary(c)?;
            cells.push(format::decode_cell(
                column.encoding,
                part,
                rows.len(),
                row,
                dictionary.as_ref(),
            )?);
        }
        Ok(format::record_of_cells(
            &self.layout,
            cells,
            rows.start + row,
        )?)
    }

    fn page(&self, column: usize, page: usize) -> Result<Arc<Page>> {
        let Some(layout) = self.layout.columns.get(column) else {
            return Ok(Arc::new(Page::Absent));
        };
        let part = match self.layout.page_range(column, page) {
            Some(range) => self.slice(range)?,
            None => &[],
        };
        let rows = self.layout.rows_of_page(page).len();
        let dictionary = self.dictionary(column)?;
        Ok(Arc::new(format::decode_page(
            layout.encoding,
            part,
            rows,
            dictionary.as_ref(),
        )?))
    }
}
