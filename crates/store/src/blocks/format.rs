//! The sealed block: records of one id range, each field a column, each column cut
//! into pages of `page_rows` rows compressed on their own with zstd, so that "newest
//! 20" or a get by id decompresses one page per column it needs, not the block.
//!
//! ```text
//! blob   = "LBB1" varint(header length) header body
//! header = first_id last_id rows page_rows (zigzag/varints)
//!          varint(columns) { encoding:u8 [dict range] varint(pages) {page range} }
//! range  = varint(offset into body) varint(length)
//! ```
//!
//! Encodings: timestamps and ids are zigzag varints of the delta to the row before
//! (ids are stored only when the block's ids are not contiguous, e.g. after a
//! rewrite that dropped deleted rows); kind and level one byte per row (0 = none);
//! a text column with few distinct values is a dictionary (stored once per block,
//! compressed) and one code per row (0 = none, 1-byte codes up to 255 values,
//! 2-byte up to 65535); other text (messages, `data` as compact JSON) is stored
//! plain: the rows' lengths (0 = none, else length + 1) then their bytes.

use super::filter::Keys;
use super::summary::{Summary, SummaryBuilder};
use super::tiers::TierOptions;
use super::wire::{put_varint, unzigzag, zigzag, Corrupt, Reader};
use logbook_core::{Kind, Level, Record, Timestamp};
use std::ops::Range;
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"LBB1";

/// Column numbers: `ts`, `kind`, `level`, the 16 text fields in
/// [`Record::text_fields`] order (`message` last), `data`, and the ids.
pub const TS: usize = 0;
pub const KIND: usize = 1;
pub const LEVEL: usize = 2;
pub const TEXT: usize = 3;
pub const TEXT_FIELDS: usize = 16;
pub const MESSAGE: usize = TEXT + TEXT_FIELDS - 1;
pub const DATA: usize = TEXT + TEXT_FIELDS;
pub const IDS: usize = DATA + 1;
pub const COLUMNS: usize = IDS + 1;

/// Most distinct values a text column may have to be stored as a dictionary.
const MAX_DICTIONARY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Nothing stored: every row is none (or, for ids, they are contiguous).
    Absent = 0,
    Deltas = 1,
    Bytes = 2,
    Dictionary8 = 3,
    Dictionary16 = 4,
    Plain = 5,
}

impl Encoding {
    fn from_byte(b: u8) -> Result<Encoding, Corrupt> {
        Ok(match b {
            0 => Encoding::Absent,
            1 => Encoding::Deltas,
            2 => Encoding::Bytes,
            3 => Encoding::Dictionary8,
            4 => Encoding::Dictionary16,
            5 => Encoding::Plain,
            other => return Err(Corrupt(format!("unknown column encoding {other}"))),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Rows per page (the unit of decompression).
    pub page_rows: usize,
    pub zstd_level: i32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            page_rows: TierOptions::default().page_rows,
            zstd_level: 3,
        }
    }
}

/// Where a column's parts lie in the block's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLayout {
    pub encoding: Encoding,
    pub dictionary: Option<Range<usize>>,
    pub pages: Vec<Range<usize>>,
}

/// A block's header: what it holds and where each page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub first_id: i64,
    pub last_id: i64,
    pub rows: usize,
    pub page_rows: usize,
    pub columns: Vec<ColumnLayout>,
    /// Where the body starts in the blob.
    pub body_offset: usize,
}

pub struct Encoded {
    pub blob: Vec<u8>,
    pub summary: Summary,
}

/// The body of a block being written: compressed parts, one after another.
struct Body {
    bytes: Vec<u8>,
    zstd_level: i32,
    /// One compression context for the block's parts (making one per part was a
    /// visible share of sealing).
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Body {
    /// Appends `raw` compressed (after its raw length) and returns where it lies.
    fn put(&mut self, raw: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        // In-memory compression of a buffer into a Vec cannot fail.
        let compressed = match self.compressor.as_mut() {
            Some(c) => c.compress(raw).unwrap_or_default(),
            None => zstd::bulk::compress(raw, self.zstd_level).unwrap_or_default(),
        };
        put_varint(&mut self.bytes, raw.len() as u64);
        self.bytes.extend_from_slice(&compressed);
        start..self.bytes.len()
    }
}

/// Rows by column, borrowed: what a block, a hot segment and the hot tier's row
/// form are made of. From records ([`Columns::of_records`]) or from decoded pages
/// ([`Columns::push_pages`]): a seal encodes hot segments through it without
/// making a record of each row (a block's 65,536 records took about 90 MB).
pub struct Columns<'a> {
    pub ids: Vec<i64>,
    pub ts: Vec<i64>,
    pub kinds: Vec<u8>,
    /// Level numbers, 0 for none.
    pub levels: Vec<u8>,
    /// The 16 text fields in [`Record::text_fields`] order, then `data` as
    /// compact JSON.
    pub texts: Vec<Vec<Option<&'a str>>>,
}

/// Each record's `data` as compact JSON, for [`Columns::of_records`].
pub fn data_texts(records: &[Record]) -> Vec<Option<String>> {
    records
        .iter()
        // Serialising a map of JSON values cannot fail.
        .map(|r| {
            r.data
                .as_ref()
                .map(|d| serde_json::to_string(d).unwrap_or_default())
        })
        .collect()
}

impl<'a> Columns<'a> {
    pub fn with_capacity(rows: usize) -> Columns<'a> {
        Columns {
            ids: Vec::with_capacity(rows),
            ts: Vec::with_capacity(rows),
            kinds: Vec::with_capacity(rows),
            levels: Vec::with_capacity(rows),
            texts: (0..=TEXT_FIELDS)
                .map(|_| Vec::with_capacity(rows))
                .collect(),
        }
    }

    /// `data` is [`data_texts`] of the same records.
    pub fn of_records(records: &'a [Record], data: &'a [Option<String>]) -> Columns<'a> {
        let mut columns = Columns::with_capacity(records.len());
        for (r, d) in records.iter().zip(data) {
            columns.ids.push(r.id);
            columns.ts.push(r.ts.micros());
            columns.kinds.push(r.kind.code() as u8);
            columns.levels.push(r.level.map_or(0, |l| l.number() as u8));
            for (slot, (_, value)) in columns.texts.iter_mut().zip(r.text_fields()) {
                slot.push(value.as_deref());
            }
            columns.texts[TEXT_FIELDS].push(d.as_deref());
        }
        columns
    }

    /// Appends `rows` of one page of every column (`pages` in column order), whose
    /// row 0 has id `first_id` when the ids are not stored.
    pub fn push_pages(&mut self, pages: &'a [Arc<Page>], first_id: i64, rows: Range<usize>) {
        let int = |column: usize, row: usize| pages.get(column).and_then(|p| p.int(row));
        for row in rows {
            self.ids
                .push(int(IDS, row).unwrap_or(first_id.wrapping_add(row as i64)));
            self.ts.push(int(TS, row).unwrap_or(0));
            self.kinds.push(int(KIND, row).unwrap_or(0) as u8);
            self.levels.push(int(LEVEL, row).unwrap_or(0) as u8);
            for (field, slot) in self.texts.iter_mut().enumerate() {
                slot.push(pages.get(TEXT + field).and_then(|p| p.text(row)));
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Whether the ids run on without gaps (then a block does not store them).
    pub fn contiguous(&self) -> bool {
        self.ids.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
    }
}

/// Encodes records (in ascending id order, at least one) as one block.
pub fn encode(records: &[Record], options: &Options) -> Encoded {
    let data = data_texts(records);
    encode_columns(&Columns::of_records(records, &data), options)
}

/// Encodes rows (in ascending id order, at least one) as one block.
pub fn encode_columns(rows: &Columns<'_>, options: &Options) -> Encoded {
    encode_columns_knowing_trigrams(rows, options, Keys::default(), 0)
}

/// As [`encode_columns`], the message trigram keys of rows `..known_rows` being
/// `known` (those of the hot segments the rows come from).
pub fn encode_columns_knowing_trigrams(
    rows: &Columns<'_>,
    options: &Options,
    known: Keys,
    known_rows: usize,
) -> Encoded {
    let page_rows = options.page_rows.max(1);
    let mut body = Body {
        bytes: Vec::new(),
        zstd_level: options.zstd_level,
        compressor: zstd::bulk::Compressor::new(options.zstd_level).ok(),
    };
    let mut columns = Vec::with_capacity(COLUMNS);
    let mut summary = SummaryBuilder::new(rows)
        .page_rows(page_rows)
        .known_trigrams(known, known_rows);

    columns.push(int_column(&mut body, &rows.ts, page_rows));
    columns.push(byte_column(&mut body, &rows.kinds, page_rows));
    columns.push(byte_column(&mut body, &rows.levels, page_rows));
    for field in 0..TEXT_FIELDS {
        summary.text_field(field, &rows.texts[field]);
        columns.push(text_column(&mut body, &rows.texts[field], page_rows));
    }
    columns.push(plain_column(&mut body, &rows.texts[TEXT_FIELDS], page_rows));
    if rows.contiguous() {
        columns.push(absent());
    } else {
        columns.push(int_column(&mut body, &rows.ids, page_rows));
    }
    debug_assert_eq!(columns.len(), COLUMNS);

    let first_id = rows.ids.first().copied().unwrap_or(0);
    let last_id = rows.ids.last().copied().unwrap_or(0);
    let mut header = Vec::new();
    put_varint(&mut header, zigzag(first_id));
    put_varint(&mut header, zigzag(last_id));
    put_varint(&mut header, rows.rows() as u64);
    put_varint(&mut header, page_rows as u64);
    put_varint(&mut header, columns.len() as u64);
    for column in &columns {
        header.push(column.encoding as u8);
        if let Some(d) = &column.dictionary {
            put_varint(&mut header, d.start as u64);
            put_varint(&mut header, d.len() as u64);
        }
        put_varint(&mut header, column.pages.len() as u64);
        for p in &column.pages {
            put_varint(&mut header, p.start as u64);
            put_varint(&mut header, p.len() as u64);
        }
    }
    let mut blob = Vec::with_capacity(body.bytes.len() + header.len() + 16);
    blob.extend_from_slice(MAGIC);
    put_varint(&mut blob, header.len() as u64);
    blob.extend_from_slice(&header);
    blob.extend_from_slice(&body.bytes);
    Encoded {
        blob,
        summary: summary.finish(),
    }
}

fn int_column(body: &mut Body, values: &[i64], page_rows: usize) -> ColumnLayout {
    let pages = values
        .chunks(page_rows)
        .map(|chunk| {
            let mut raw = Vec::with_capacity(chunk.len() * 2);
            let mut previous = 0i64;
            for &v in chunk {
                put_varint(&mut raw, zigzag(v.wrapping_sub(previous)));
                previous = v;
            }
            body.put(&raw)
        })
        .collect();
    ColumnLayout {
        encoding: Encoding::Deltas,
        dictionary: None,
        pages,
    }
}

fn byte_column(body: &mut Body, values: &[u8], page_rows: usize) -> ColumnLayout {
    if values.iter().all(|v| *v == 0) {
        return absent();
    }
    let pages = values
        .chunks(page_rows)
        .map(|chunk| body.put(chunk))
        .collect();
    ColumnLayout {
        encoding: Encoding::Bytes,
        dictionary: None,
        pages,
    }
}

fn absent() -> ColumnLayout {
    ColumnLayout {
        encoding: Encoding::Absent,
        dictionary: None,
        pages: Vec::new(),
    }
}

fn text_column(body: &mut Body, values: &[Option<&str>], page_rows: usize) -> ColumnLayout {
    if values.iter().all(Option::is_none) {
        return absent();
    }
    // Distinct values through a hash set, given up as soon as there are too many
    // for a dictionary (sorting every message to count them was most of a seal).
    let limit = MAX_DICTIONARY.min(values.len().max(64) / 4);
    let Some(mut distinct) = distinct_up_to(values, limit) else {
        return plain_column(body, values, page_rows);
    };
    distinct.sort_unstable();
    let mut raw = Vec::new();
    put_varint(&mut raw, distinct.len() as u64);
    for v in &distinct {
        super::wire::put_bytes(&mut raw, v.as_bytes());
    }
    let dictionary = Some(body.put(&raw));
    let wide = distinct.len() > 255;
    let codes: rustc_hash::FxHashMap<&str, usize> = distinct
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i + 1))
        .collect();
    let code = |v: &Option<&str>| match v {
        None => 0usize,
        // Every value is in the dictionary it was collected into.
        Some(v) => codes.get(v).copied().unwrap_or(0),
    };
    let pages = values
        .chunks(page_rows)
        .map(|chunk| {
            let mut raw = Vec::with_capacity(chunk.len() * 2);
            for v in chunk {
                let c = code(v);
                if wide {
                    raw.extend_from_slice(&(c as u16).to_le_bytes());
                } else {
                    raw.push(c as u8);
                }
            }
            body.put(&raw)
        })
        .collect();
    ColumnLayout {
        encoding: if wide {
            Encoding::Dictionary16
        } else {
            Encoding::Dictionary8
        },
        dictionary,
        pages,
    }
}

/// The distinct values, unless there are more than `limit`. With Fx rather than
/// the default SipHash: the values are short, the set is thrown away at once, and
/// every row of every text field of each batch and block goes through here.
pub(crate) fn distinct_up_to<'v>(values: &[Option<&'v str>], limit: usize) -> Option<Vec<&'v str>> {
    let mut seen = rustc_hash::FxHashSet::default();
    for v in values.iter().flatten() {
        if seen.insert(*v) && seen.len() > limit {
            return None;
        }
    }
    Some(seen.into_iter().collect())
}

fn plain_column(body: &mut Body, values: &[Option<&str>], page_rows: usize) -> ColumnLayout {
    if values.iter().all(Option::is_none) {
        return absent();
    }
    let pages = values
        .chunks(page_rows)
        .map(|chunk| {
            let total: usize = chunk.iter().flatten().map(|v| v.len()).sum();
            let mut raw = Vec::with_capacity(total + chunk.len() * 2);
            for v in chunk {
                put_varint(&mut raw, v.map_or(0, |v| v.len() as u64 + 1));
            }
            for v in chunk.iter().flatten() {
                raw.extend_from_slice(v.as_bytes());
            }
            body.put(&raw)
        })
        .collect();
    ColumnLayout {
        encoding: Encoding::Plain,
        dictionary: None,
        pages,
    }
}

impl Layout {
    /// Reads the header from the start of a blob (`prefix` must hold at least
    /// [`Layout::header_end`] bytes).
    pub fn parse(prefix: &[u8]) -> Result<Layout, Corrupt> {
        let mut r = Reader::new(prefix);
        if r.take(4, "magic")? != MAGIC {
            return Err(Corrupt("not a Logbook block".into()));
        }
        let header_len = r.count("header length", 1 << 30)?;
        let header = r.take(header_len, "header")?;
        let body_offset = r.position();
        let mut r = Reader::new(header);
        let first_id = unzigzag(r.varint("first id")?);
        let last_id = unzigzag(r.varint("last id")?);
        let rows = r.count("rows", 1 << 30)?;
        let page_rows = r.count("page rows", 1 << 30)?.max(1);
        let count = r.count("columns", 64)?;
        if count != COLUMNS {
            return Err(Corrupt(format!("{count} columns, expected {COLUMNS}")));
        }
        let range = |r: &mut Reader<'_>| -> Result<Range<usize>, Corrupt> {
            let start = r.count("offset", 1 << 40)?;
            let len = r.count("length", 1 << 40)?;
            Ok(start..start + len)
        };
        let mut columns = Vec::with_capacity(count);
        for _ in 0..count {
            let encoding = Encoding::from_byte(r.u8("encoding")?)?;
            let dictionary = match encoding {
                Encoding::Dictionary8 | Encoding::Dictionary16 => Some(range(&mut r)?),
                _ => None,
            };
            let n = r.count("pages", 1 << 24)?;
            let pages = (0..n).map(|_| range(&mut r)).collect::<Result<_, _>>()?;
            columns.push(ColumnLayout {
                encoding,
                dictionary,
                pages,
            });
        }
        Ok(Layout {
            first_id,
            last_id,
            rows,
            page_rows,
            columns,
            body_offset,
        })
    }

    /// How many bytes from the start of a blob hold its header, read from its first
    /// 16 bytes (a reader fetches those, then the header, then the pages it needs).
    pub fn header_end(prefix: &[u8]) -> Result<usize, Corrupt> {
        let mut r = Reader::new(prefix);
        if r.take(4, "magic")? != MAGIC {
            return Err(Corrupt("not a Logbook block".into()));
        }
        let header_len = r.count("header length", 1 << 30)?;
        Ok(r.position() + header_len)
    }

    pub fn pages(&self) -> usize {
        self.rows.div_ceil(self.page_rows)
    }

    /// Rows of page `page` (the last one may be short).
    pub fn rows_of_page(&self, page: usize) -> Range<usize> {
        let start = page * self.page_rows;
        start..(start + self.page_rows).min(self.rows)
    }

    /// Where, in the blob, a page of a column lies (`None` for an absent column).
    pub fn page_range(&self, column: usize, page: usize) -> Option<Range<usize>> {
        let r = self.columns.get(column)?.pages.get(page)?;
        Some(self.body_offset + r.start..self.body_offset + r.end)
    }

    pub fn dictionary_range(&self, column: usize) -> Option<Range<usize>> {
        let r = self.columns.get(column)?.dictionary.as_ref()?;
        Some(self.body_offset + r.start..self.body_offset + r.end)
    }
}

thread_local! {
    /// A decompression context per thread, reused for every page it decodes (one
    /// made per page cost as much as a small page's decompression).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn decompress(part: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut r = Reader::new(part);
    let raw_len = r.count("page length", 1 << 30)?;
    let reused = DECOMPRESSOR.with(|cell| {
        let mut cell = cell.try_borrow_mut().ok()?;
        if cell.is_none() {
            *cell = zstd::bulk::Decompressor::new().ok();
        }
        Some(cell.as_mut()?.decompress(r.rest(), raw_len))
    });
    reused
        .unwrap_or_else(|| zstd::bulk::decompress(r.rest(), raw_len))
        .map_err(|e| Corrupt(format!("zstd: {e}")))
}

/// A column's dictionary, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    pub values: Vec<Box<str>>,
}

pub fn decode_dictionary(part: &[u8]) -> Result<Arc<Dictionary>, Corrupt> {
    let raw = decompress(part)?;
    let mut r = Reader::new(&raw);
    let n = r.count("dictionary size", 1 << 20)?;
    let values = (0..n)
        .map(|_| r.text("dictionary value").map(Box::from))
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(Dictionary { values }))
}

/// One decoded page of one column.
#[derive(Debug, Clone)]
pub enum Page {
    /// Every row none (an absent column).
    Absent,
    Ints(Vec<i64>),
    Bytes(Vec<u8>),
    Codes {
        codes: Vec<u16>,
        dictionary: Arc<Dictionary>,
    },
    Text {
        /// Each row's value as `start..end` in `bytes`; `start == u32::MAX` for none.
        spans: Vec<(u32, u32)>,
        bytes: String,
    },
}

/// Decodes a page of `rows` rows; `dictionary` is the column's, for coded columns.
pub fn decode_page(
    encoding: Encoding,
    part: &[u8],
    rows: usize,
    dictionary: Option<&Arc<Dictionary>>,
) -> Result<Page, Corrupt> {
    if encoding == Encoding::Absent {
        return Ok(Page::Absent);
    }
    let raw = decompress(part)?;
    let short = || Corrupt(format!("a page holds fewer than its {rows} rows"));
    Ok(match encoding {
        Encoding::Absent => Page::Absent,
        Encoding::Deltas => {
            let mut r = Reader::new(&raw);
            let mut values = Vec::with_capacity(rows);
            let mut previous = 0i64;
            for _ in 0..rows {
                previous = previous.wrapping_add(r.signed("delta")?);
                values.push(previous);
            }
            Page::Ints(values)
        }
        Encoding::Bytes => {
            if raw.len() != rows {
                return Err(short());
            }
            Page::Bytes(raw)
        }
        Encoding::Dictionary8 | Encoding::Dictionary16 => {
            let dictionary = dictionary
                .ok_or_else(|| Corrupt("a coded column without its dictionary".into()))?;
            let codes: Vec<u16> = if encoding == Encoding::Dictionary8 {
                raw.iter().map(|b| u16::from(*b)).collect()
            } else {
                raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect()
            };
            if codes.len() != rows
                || codes
                    .iter()
                    .any(|c| usize::from(*c) > dictionary.values.len())
            {
                return Err(short());
            }
            Page::Codes {
                codes,
                dictionary: Arc::clone(dictionary),
            }
        }
        Encoding::Plain => {
            let mut r = Reader::new(&raw);
            let mut lengths = Vec::with_capacity(rows);
            for _ in 0..rows {
                lengths.push(r.count("value length", 1 << 30)?);
            }
            let bytes = std::str::from_utf8(r.rest())
                .map_err(|_| Corrupt("text is not UTF-8".into()))?
                .to_string();
            let mut spans = Vec::with_capacity(rows);
            let mut at = 0usize;
            for len in lengths {
                if len == 0 {
                    spans.push((u32::MAX, 0));
                } else {
                    let end = at + len - 1;
                    if end > bytes.len() || !bytes.is_char_boundary(end) {
                        return Err(short());
                    }
                    spans.push((at as u32, end as u32));
                    at = end;
                }
            }
            if at != bytes.len() || u32::try_from(at).is_err() {
                return Err(short());
            }
            Page::Text { spans, bytes }
        }
    })
}

impl Page {
    pub fn int(&self, row: usize) -> Option<i64> {
        match self {
            Page::Ints(v) => v.get(row).copied(),
            Page::Bytes(v) => v.get(row).filter(|b| **b != 0).map(|b| i64::from(*b)),
            _ => None,
        }
    }

    pub fn text(&self, row: usize) -> Option<&str> {
        match self {
            Page::Codes { codes, dictionary } => {
                let code = usize::from(*codes.get(row)?);
                code.checked_sub(1)
                    .and_then(|i| dictionary.values.get(i))
                    .map(|v| &**v)
            }
            Page::Text { spans, bytes } => {
                let (start, end) = *spans.get(row)?;
                if start == u32::MAX {
                    return None;
                }
                bytes.get(start as usize..end as usize)
            }
            _ => None,
        }
    }
}

/// A whole block decoded into records (tests, rewrites and the format spike).
pub fn decode_all(blob: &[u8]) -> Result<Vec<Record>, Corrupt> {
    let layout = Layout::parse(blob)?;
    let mut dictionaries: Vec<Option<Arc<Dictionary>>> = Vec::with_capacity(COLUMNS);
    for c in 0..COLUMNS {
        dictionaries.push(match layout.dictionary_range(c) {
            Some(r) => Some(decode_dictionary(slice(blob, r)?)?),
            None => None,
        });
    }
    let mut out = Vec::with_capacity(layout.rows);
    for page in 0..layout.pages() {
        let rows = layout.rows_of_page(page);
        let n = rows.len();
        let mut pages = Vec::with_capacity(COLUMNS);
        for (c, column) in layout.columns.iter().enumerate() {
            let part = match layout.page_range(c, page) {
                Some(r) => slice(blob, r)?,
                None => &[],
            };
            pages.push(decode_page(
                column.encoding,
                part,
                n,
                dictionaries[c].as_ref(),
            )?);
        }
        let pages: Vec<&Page> = pages.iter().collect();
        for (i, offset) in rows.enumerate() {
            out.push(record_at(&layout, &pages, i, offset)?);
        }
    }
    Ok(out)
}

fn slice(blob: &[u8], r: Range<usize>) -> Result<&[u8], Corrupt> {
    blob.get(r)
        .ok_or_else(|| Corrupt("a page lies beyond the block".into()))
}

/// The record at row `i` of a page (`offset` rows into the block), from its columns.
pub fn record_at(
    layout: &Layout,
    pages: &[&Page],
    i: usize,
    offset: usize,
) -> Result<Record, Corrupt> {
    if pages.len() != COLUMNS {
        return Err(Corrupt(format!(
            "{} columns, expected {COLUMNS}",
            pages.len()
        )));
    }
    record_of_cells(layout, pages.iter().map(|p| p.cell(i)).collect(), offset)
}

/// The record of one row's values, one per column (`offset` rows into the block).
pub fn record_of_cells(
    layout: &Layout,
    mut cells: Vec<Cell>,
    offset: usize,
) -> Result<Record, Corrupt> {
    if cells.len() != COLUMNS {
        return Err(Corrupt(format!(
            "{} columns, expected {COLUMNS}",
            cells.len()
        )));
    }
    let id = match cells[IDS] {
        Cell::None => layout.first_id + offset as i64,
        Cell::Int(id) => id,
        Cell::Text(_) => return Err(Corrupt("id missing".into())),
    };
    let int = |cell: &Cell| match cell {
        Cell::Int(n) => Some(*n),
        _ => None,
    };
    let kind_code = int(&cells[KIND]).unwrap_or(0);
    let kind = Kind::from_code(kind_code)
        .ok_or_else(|| Corrupt(format!("record {id} has unknown kind {kind_code}")))?;
    let data = match std::mem::take(&mut cells[DATA]) {
        Cell::Text(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => return Err(Corrupt(format!("record {id} data is not a JSON object"))),
        },
        _ => None,
    };
    let ts = Timestamp(int(&cells[TS]).unwrap_or(0));
    let level = int(&cells[LEVEL]).and_then(Level::from_number);
    let mut text = cells
        .drain(TEXT..TEXT + TEXT_FIELDS)
        .map(|cell| match cell {
            Cell::Text(t) => Some(t),
            _ => None,
        });
    let mut next = || text.next().flatten();
    Ok(Record {
        id,
        ts,
        kind,
        level,
        category: next(),
        source: next(),
        instance: next(),
        logger: next(),
        user: next(),
        user_id: next(),
        domain_id: next(),
        project_id: next(),
        object_type: next(),
        object_id: next(),
        action: next(),
        status: next(),
        response_code: next(),
        request_id: next(),
        parent_request_id: next(),
        message: next(),
        data,
    })
}

/// One row's value in one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cell {
    #[default]
    None,
    Int(i64),
    Text(String),
}

impl Page {
    /// Row `i`'s value.
    pub fn cell(&self, i: usize) -> Cell {
        match self {
            Page::Ints(_) | Page::Bytes(_) => self.int(i).map_or(Cell::None, Cell::Int),
            _ => self
                .text(i)
                .map_or(Cell::None, |t| Cell::Text(t.to_string())),
        }
    }
}

thread_local! {
    /// A streaming decompression context per thread, for [`decode_cell`], and the
    /// buffer it decompresses into (a fresh one per column was a fresh mapping of
    /// zeroed pages, faulted in and unmapped, for every large page of a get).
    static STREAM: std::cell::RefCell<Option<(zstd::zstd_safe::DCtx<'static>, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The largest decompression buffer a thread keeps between pages (pages of real
/// records are well below it).
const KEPT_BUFFER: usize = 4 << 20;

/// A page decompressed only as far as it is asked for: zstd decodes a frame in
/// blocks of up to 128 KB, so a row early in a large page (a message) costs the
/// blocks before it, not the page.
struct Prefix<'p> {
    input: zstd::zstd_safe::InBuffer<'p>,
    raw: Vec<u8>,
    filled: usize,
    raw_len: usize,
    dctx: &'p mut zstd::zstd_safe::DCtx<'static>,
}

impl Prefix<'_> {
    /// Decompresses until at least `n` bytes (or the whole page) are there.
    fn ensure(&mut self, n: usize) -> Result<&[u8], Corrupt> {
        let n = n.min(self.raw_len);
        while self.filled < n {
            // At least 32 KB a step, so a row-by-row parse does not call zstd per byte.
            let target = n.max(self.filled + 32 * 1024).min(self.raw_len);
            let mut output =
                zstd::zstd_safe::OutBuffer::around_pos(&mut self.raw[..target], self.filled);
            let before = (self.filled, self.input.pos());
            let status = self
                .dctx
                .decompress_stream(&mut output, &mut self.input)
                .map_err(|code| {
                    Corrupt(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
                })?;
            self.filled = output.pos();
            if (status == 0 && self.filled < n) || (self.filled, self.input.pos()) == before {
                return Err(Corrupt("a page is shorter than its length".into()));
            }
        }
        Ok(&self.raw[..self.filled])
    }
}

/// Row `row`'s value in a page of `rows` rows, decompressing the page only as far
/// as that row (a get by id reads one row of every column: decoding whole pages
/// was most of its time).
pub fn decode_cell(
    encoding: Encoding,
    part: &[u8],
    rows: usize,
    row: usize,
    dictionary: Option<&Arc<Dictionary>>,
) -> Result<Cell, Corrupt> {
    if encoding == Encoding::Absent {
        return Ok(Cell::None);
    }
    if row >= rows {
        return Err(Corrupt(format!("row {row} of a page of {rows}")));
    }
    let mut r = Reader::new(part);
    let raw_len = r.count("page length", 1 << 30)?;
    let compressed = r.rest();
    let (mut dctx, mut raw) = STREAM
        .with(|cell| cell.try_borrow_mut().ok().and_then(|mut c| c.take()))
        .or_else(|| zstd::zstd_safe::DCtx::try_create().map(|d| (d, Vec::new())))
        .ok_or_else(|| Corrupt("zstd: no decompression context".into()))?;
    dctx.reset(zstd::zstd_safe::ResetDirective::SessionOnly)
        .map_err(|code| Corrupt(format!("zstd: {}", zstd::zstd_safe::get_error_name(code))))?;
    if raw.len() < raw_len {
        raw.resize(raw_len, 0);
    }
    let mut prefix = Prefix {
        input: zstd::zstd_safe::InBuffer::around(compressed),
        raw,
        filled: 0,
        raw_len,
        dctx: &mut dctx,
    };
    let cell = cell_of(&mut prefix, encoding, rows, row, dictionary);
    let mut raw = prefix.raw;
    // Kept for the next page, unless a damaged length made it huge.
    if raw.len() > KEPT_BUFFER {
        raw = Vec::new();
    }
    STREAM.with(|cell| {
        if let Ok(mut c) = cell.try_borrow_mut() {
            *c = Some((dctx, raw));
        }
    });
    cell
}

fn cell_of(
    prefix: &mut Prefix<'_>,
    encoding: Encoding,
    rows: usize,
    row: usize,
    dictionary: Option<&Arc<Dictionary>>,
) -> Result<Cell, Corrupt> {
    let short = || Corrupt(format!("a page holds fewer than its {rows} rows"));
    let code = |c: usize| -> Result<Cell, Corrupt> {
        let dictionary =
            dictionary.ok_or_else(|| Corrupt("a coded column without its dictionary".into()))?;
        match c.checked_sub(1) {
            None => Ok(Cell::None),
            Some(i) => dictionary
                .values
                .get(i)
                .map(|v| Cell::Text(v.to_string()))
                .ok_or_else(short),
        }
    };
    Ok(match encoding {
        Encoding::Absent => Cell::None,
        Encoding::Deltas => {
            // Varints are at most 10 bytes: the first row+1 of them lie in this prefix.
            let raw = prefix.ensure((row + 1).saturating_mul(10))?;
            let mut r = Reader::new(raw);
            let mut value = 0i64;
            for _ in 0..=row {
                value = value.wrapping_add(r.signed("delta")?);
            }
            Cell::Int(value)
        }
        Encoding::Bytes => {
            let raw = prefix.ensure(row + 1)?;
            let b = *raw.get(row).ok_or_else(short)?;
            if b == 0 {
                Cell::None
            } else {
                Cell::Int(i64::from(b))
            }
        }
        Encoding::Dictionary8 => {
            let raw = prefix.ensure(row + 1)?;
            code(usize::from(*raw.get(row).ok_or_else(short)?))?
        }
        Encoding::Dictionary16 => {
            let raw = prefix.ensure(2 * row + 2)?;
            let pair = raw.get(2 * row..2 * row + 2).ok_or_else(short)?;
            code(usize::from(u16::from_le_bytes([pair[0], pair[1]])))?
        }
        Encoding::Plain => {
            // Every row's length comes first, then the values one after another.
            let mut at = 0usize;
            let mut before = 0usize;
            let mut wanted = 0usize;
            for r in 0..rows {
                let raw = prefix.ensure(at + 10)?;
                let mut reader = Reader::new(raw.get(at..).ok_or_else(short)?);
                let len = reader.count("value length", 1 << 30)?;
                at += reader.position();
                match r.cmp(&row) {
                    std::cmp::Ordering::Less => before += len.saturating_sub(1),
                    std::cmp::Ordering::Equal => wanted = len,
                    std::cmp::Ordering::Greater => {}
                }
            }
            if wanted == 0 {
                return Ok(Cell::None);
            }
            let start = at + before;
            let end = start + wanted - 1;
            let raw = prefix.ensure(end)?;
            let bytes = raw.get(start..end).ok_or_else(short)?;
            let text =
                std::str::from_utf8(bytes).map_err(|_| Corrupt("text is not UTF-8".into()))?;
            Cell::Text(text.to_string())
        }
    })
}
