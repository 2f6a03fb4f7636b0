//! The embedded store's records in two tiers (docs/storage.md): hot segments, one
//! row of `hot_segments` per group-committed batch (so an append is one insert and
//! the commit's fsync), and sealed blocks, one row of `blocks` each (the blob, its
//! header and its summary), made by a background sealer. Queries go through the
//! shared engine over the catalog; block pages are read with incremental blob I/O
//! (only the pages a query needs) through a bounded cache of decoded pages.

use super::writer::{Announcement, Batch};
use crate::blocks::cache::{dictionary_bytes, page_bytes, CacheEntry, PageCache};
use crate::blocks::format::{self, Dictionary, Layout, Page};
use crate::blocks::segment::{BlobBlock, HotPages, PageSource, Segment, UnnumberedHot};
use crate::blocks::summary::Summary;
use crate::blocks::tiers::{self, Catalog, Entry, TierOptions, Tiers};
use crate::blocks::{engine, rows};
use crate::{Appended, Result, StoreError};
use logbook_core::{integrity, NewRecord, Query, Record, Timestamp};
use rusqlite::{Connection, OptionalExtension, MAIN_DB};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Bytes of decoded pages kept for reuse across queries.
const PAGE_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Reader connections kept for block reads.
const BLOB_READERS: usize = 4;

/// Everything the tiered layout shares between the writer, the sealer and readers.
pub struct Tiered {
    pub tiers: Tiers,
    path: PathBuf,
    connections: Mutex<Vec<Connection>>,
    pub(super) cache: PageCache,
    /// Numbers loaded blocks, for the cache.
    serial: AtomicU64,
}

impl Tiered {
    /// Loads the catalog from the database.
    pub fn open(conn: &Connection, path: PathBuf, options: TierOptions) -> Result<Arc<Tiered>> {
        let tiered = Arc::new(Tiered {
            tiers: Tiers::new(Catalog::default(), options),
            path,
            connections: Mutex::new(Vec::new()),
            cache: PageCache::new(PAGE_CACHE_BYTES),
            serial: AtomicU64::new(1),
        });
        let catalog = tiered.load(conn)?;
        tiered.tiers.publish(catalog);
        Ok(tiered)
    }

    /// Reads every hot segment and block summary (the blocks' pages stay on disk).
    pub fn load(self: &Arc<Self>, conn: &Connection) -> Result<Catalog> {
        let now = Instant::now();
        let mut catalog = Catalog {
            high_water: meta(conn, "last_record_id")?,
            version: meta(conn, "catalog_version")?,
            ..Catalog::default()
        };
        let mut blocks =
            conn.prepare_cached("SELECT first_id, header, summary FROM blocks ORDER BY first_id")?;
        let rows = blocks.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        for row in rows {
            let (key, header, summary) = row?;
            let segment = self.block_segment(key, &header, Summary::read(&summary)?)?;
            catalog.entries.push(Entry {
                segment,
                hot: false,
                seen: now,
            });
        }
        if let Some(legacy) = self.legacy_segment(conn)? {
            catalog.insert(Entry {
                segment: legacy,
                hot: false,
                seen: now,
            });
        }
        let mut hot = conn.prepare_cached("SELECT records FROM hot_segments ORDER BY first_id")?;
        let rows = hot.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for row in rows {
            let records = rows::decode(&row?)?;
            if !records.is_empty() {
                catalog.insert(Entry {
                    segment: Segment::hot(&records),
                    hot: true,
                    seen: now,
                });
            }
        }
        Ok(catalog)
    }

    fn block_segment(
        self: &Arc<Self>,
        key: i64,
        header: &[u8],
        summary: Summary,
    ) -> Result<Segment> {
        let layout = Layout::parse(header)?;
        Ok(Segment {
            summary: Arc::new(summary),
            source: Arc::new(DbBlock {
                key,
                serial: self.serial.fetch_add(1, Ordering::Relaxed),
                identity: header[..header.len().min(IDENTITY_BYTES)].into(),
                layout,
                tiered: Arc::downgrade(self),
            }),
        })
    }

    /// The rows the previous layout left in `records`, not yet sealed, as one
    /// segment read page by page by id.
    fn legacy_segment(self: &Arc<Self>, conn: &Connection) -> Result<Option<Segment>> {
        let (first, last, rows): (Option<i64>, Option<i64>, i64) = conn
            .prepare_cached("SELECT min(id), max(id), count(*) FROM records")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        let page_rows = self.tiers.options.page_rows.max(1);
        let positions = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
        Ok(Some(Segment {
            summary: Arc::new(Summary::opaque(first, last, rows.max(0) as u64)),
            source: Arc::new(LegacyRows {
                serial: self.serial.fetch_add(1, Ordering::Relaxed),
                layout: Layout {
                    first_id: first,
                    last_id: last,
                    rows: positions,
                    page_rows,
                    columns: Vec::new(),
                    body_offset: 0,
                },
                tiered: Arc::downgrade(self),
            }),
        }))
    }

    fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.connections.lock().ok().and_then(|mut c| c.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => super::pool::open_reader(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.connections.lock() {
            if idle.len() < BLOB_READERS {
                idle.push(conn);
            }
        }
        result
    }

    /// The catalog a query should read: the current one, or, if another process
    /// wrote to the file since (the CLI beside a server), one reloaded from it.
    pub fn catalog(self: &Arc<Self>, conn: &Connection) -> Result<Arc<Catalog>> {
        let current = self.tiers.snapshot();
        let (last, version): (i64, i64) = conn
            .prepare_cached(
                "SELECT (SELECT value FROM meta WHERE key = 'last_record_id'), \
                        (SELECT value FROM meta WHERE key = 'catalog_version')",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if last == current.high_water && version == current.version {
            return Ok(current);
        }
        // A read transaction, so the rows and the counters agree.
        conn.execute_batch("BEGIN")?;
        let loaded = self.load(conn);
        conn.execute_batch("COMMIT")?;
        Ok(Arc::new(loaded?))
    }

    /// Runs `f` on the current catalog, again on a fresh one if a block it read was
    /// replaced meanwhile (a delete rewrites blocks).
    pub fn read<T>(
        self: &Arc<Self>,
        conn: &Connection,
        f: impl Fn(&[Segment], &Catalog) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let catalog = self.catalog(conn)?;
            let answer = f(&catalog.segments(), &catalog);
            // Rows of the previous layout are read as they are now: if they were
            // sealed meanwhile (the version moved), read again from the new catalog.
            let moved = catalog.entries.iter().any(|e| e.segment.summary.opaque)
                && meta(conn, "catalog_version")? != catalog.version;
            match answer {
                Err(StoreError::NotFound) if attempt < 3 => attempt += 1,
                Ok(_) if moved && attempt < 8 => attempt += 1,
                other => return other,
            }
        }
    }
}

impl Tiered {
    /// The pages of an export, in the query's order, handed to `found` until it
    /// answers false: none above `high_water`, each segment read as one pass (see
    /// [`PageSource::for_scan`]) from the catalog current when its turn comes, after
    /// the last row handed on (so a block a delete replaced meanwhile is read again
    /// as it is now, from that row).
    pub fn export_pages(
        self: &Arc<Self>,
        conn: &Connection,
        query: &Query,
        high_water: i64,
        mut found: impl FnMut(engine::ExportPage) -> bool,
    ) -> Result<()> {
        let mut after: Option<i64> = None;
        let mut retries = 0;
        'fresh: loop {
            let catalog = self.catalog(conn)?;
            let mut segments = catalog.segments();
            if query.order == logbook_core::Order::NewestFirst {
                segments.reverse();
            }
            for segment in &segments {
                let scanned = segment.for_scan();
                let mut stopped = false;
                let read = engine::export_pages(
                    std::slice::from_ref(&scanned),
                    query,
                    high_water,
                    after,
                    |page| {
                        // Rows of the previous layout are read as they are now: if
                        // they were sealed meanwhile, read on from the new catalog.
                        if segment.summary.opaque
                            && meta(conn, "catalog_version")? != catalog.version
                        {
                            return Err(StoreError::NotFound);
                        }
                        let last = page.last_id();
                        if !found(page) {
                            stopped = true;
                            return Ok(false);
                        }
                        after = last.or(after);
                        Ok(true)
                    },
                );
                match read {
                    Ok(_) if stopped => return Ok(()),
                    Ok(_) => retries = 0,
                    Err(StoreError::NotFound) if retries < 8 => {
                        retries += 1;
                        continue 'fresh;
                    }
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
    }
}

fn meta(conn: &Connection, key: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))?)
}

/// Bytes of a block's start that tell it from the block a delete rewrote under its
/// key: magic, header length, first and last id and row count (a rewrite always has
/// fewer rows).
const IDENTITY_BYTES: usize = 48;

/// A sealed block in the `blocks` table, its pages read on demand.
struct DbBlock {
    key: i64,
    /// Unique per loaded block, so the cache never serves a rewritten block's pages.
    serial: u64,
    /// The first bytes of the blob this catalog entry describes.
    identity: Box<[u8]>,
    layout: Layout,
    tiered: std::sync::Weak<Tiered>,
}

/// The blob of the block stored under `key`.
fn open_block<'c>(conn: &'c Connection, key: i64) -> Result<rusqlite::blob::Blob<'c>> {
    match conn.blob_open(MAIN_DB, "blocks", "data", key, true) {
        Ok(blob) => Ok(blob),
        // The block was replaced after this catalog was taken: retry.
        Err(rusqlite::Error::SqliteFailure(_, _)) => Err(StoreError::NotFound),
        Err(e) => Err(e.into()),
    }
}

impl DbBlock {
    /// The blob under this block's key, if it is still this block: a delete that
    /// kept the block's first record rewrote it under the same key, and a reader
    /// holding the catalog from before must read again from a fresh one (the
    /// blob connections see each commit at once) rather than read the new blob
    /// with this layout's offsets.
    fn open_blob<'c>(&self, conn: &'c Connection) -> Result<rusqlite::blob::Blob<'c>> {
        let blob = open_block(conn, self.key)?;
        if read_range(&blob, 0..self.identity.len().min(blob.len()))? != *self.identity {
            return Err(StoreError::NotFound);
        }
        Ok(blob)
    }

    fn read(&self, tiered: &Tiered, range: std::ops::Range<usize>) -> Result<Vec<u8>> {
        tiered.with_connection(|conn| read_range(&self.open_blob(conn)?, range))
    }

    fn dictionary(&self, tiered: &Tiered, column: usize) -> Result<Option<Arc<Dictionary>>> {
        let Some(range) = self.layout.dictionary_range(column) else {
            return Ok(None);
        };
        let key = (self.serial, column as u16, u32::MAX);
        if let Some(CacheEntry::Dictionary(d)) = tiered.cache.get(&key) {
            return Ok(Some(d));
        }
        let d = format::decode_dictionary(&self.read(tiered, range)?)?;
        tiered.cache.put(
            key,
            CacheEntry::Dictionary(Arc::clone(&d)),
            dictionary_bytes(&d),
        );
        Ok(Some(d))
    }

    fn decode(
        &self,
        tiered: &Tiered,
        column: usize,
        page: usize,
        part: &[u8],
    ) -> Result<Arc<Page>> {
        let encoding = self
            .layout
            .columns
            .get(column)
            .map_or(format::Encoding::Absent, |c| c.encoding);
        let dictionary = self.dictionary(tiered, column)?;
        let rows = self.layout.rows_of_page(page).len();
        let decoded = Arc::new(format::decode_page(
            encoding,
            part,
            rows,
            dictionary.as_ref(),
        )?);
        tiered.cache.put(
            (self.serial, column as u16, page as u32),
            CacheEntry::Page(Arc::clone(&decoded)),
            page_bytes(&decoded),
        );
        Ok(decoded)
    }
}

fn read_range(blob: &rusqlite::blob::Blob<'_>, range: std::ops::Range<usize>) -> Result<Vec<u8>> {
    let mut buf = vec![0; range.len()];
    blob.read_at_exact(&mut buf, range.start)?;
    Ok(buf)
}

impl PageSource for DbBlock {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn page(&self, column: usize, page: usize) -> Result<Arc<Page>> {
        Ok(self
            .pages(&[column], page)?
            .pop()
            .unwrap_or_else(|| Arc::new(Page::Absent)))
    }

    /// Every column's value of one row: a cached page gives it, the others are read
    /// through one blob handle and decompressed only as far as the row, and kept
    /// nowhere (a get by id of a random record would only push other pages out).
    fn record(&self, page: usize, row: usize) -> Result<Record> {
        let tiered = self.tiered.upgrade().ok_or(StoreError::Closed)?;
        let rows = self.layout.rows_of_page(page);
        let mut cells = vec![format::Cell::None; format::COLUMNS];
        let mut wanted = Vec::new();
        for (c, cell) in cells.iter_mut().enumerate() {
            let Some(range) = self.layout.page_range(c, page) else {
                continue;
            };
            match tiered.cache.get(&(self.serial, c as u16, page as u32)) {
                Some(CacheEntry::Page(p)) => *cell = p.cell(row),
                _ => wanted.push((c, range)),
            }
        }
        if !wanted.is_empty() {
            let parts = tiered.with_connection(|conn| {
                let blob = self.open_blob(conn)?;
                wanted
                    .iter()
                    .map(|(_, range)| read_range(&blob, range.clone()))
                    .collect::<Result<Vec<_>>>()
            })?;
            for ((c, _), part) in wanted.into_iter().zip(parts) {
                let encoding = self
                    .layout
                    .columns
                    .get(c)
                    .map_or(format::Encoding::Absent, |l| l.encoding);
                let dictionary = self.dictionary(&tiered, c)?;
                cells[c] =
                    format::decode_cell(encoding, &part, rows.len(), row, dictionary.as_ref())?;
            }
        }
        Ok(format::record_of_cells(
            &self.layout,
            cells,
            rows.start + row,
        )?)
    }

    fn for_scan(&self) -> Option<Arc<dyn PageSource>> {
        Some(Arc::new(ScannedBlock {
            key: self.key,
            layout: self.layout.clone(),
            tiered: self.tiered.clone(),
            block: OnceLock::new(),
        }))
    }

    /// The pages not in the cache are read through one blob handle (a get by id
    /// reads every column's page).
    fn pages(&self, columns: &[usize], page: usize) -> Result<Vec<Arc<Page>>> {
        let tiered = self.tiered.upgrade().ok_or(StoreError::Closed)?;
        let mut out: Vec<Option<Arc<Page>>> = vec![None; columns.len()];
        let mut wanted = Vec::new();
        for (i, &c) in columns.iter().enumerate() {
            let Some(range) = self.layout.page_range(c, page) else {
                out[i] = Some(Arc::new(Page::Absent));
                continue;
            };
            match tiered.cache.get(&(self.serial, c as u16, page as u32)) {
                Some(CacheEntry::Page(p)) => out[i] = Some(p),
                _ => wanted.push((i, c, range)),
            }
        }
        if !wanted.is_empty() {
            let parts = tiered.with_connection(|conn| {
                let blob = self.open_blob(conn)?;
                wanted
                    .iter()
                    .map(|(_, _, range)| read_range(&blob, range.clone()))
                    .collect::<Result<Vec<_>>>()
            })?;
            for ((i, c, _), part) in wanted.into_iter().zip(parts) {
                out[i] = Some(self.decode(&tiered, c, page, &part)?);
            }
        }
        Ok(out
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Arc::new(Page::Absent)))
            .collect())
    }
}

/// A block read whole, for a single pass over its pages (an export): one read of
/// its blob rather than one per page, and its pages decoded for this pass alone,
/// never put in the shared cache (a pass would only push out what other queries
/// use).
struct ScannedBlock {
    key: i64,
    layout: Layout,
    tiered: std::sync::Weak<Tiered>,
    block: OnceLock<BlobBlock>,
}

impl ScannedBlock {
    fn block(&self) -> Result<&BlobBlock> {
        if let Some(block) = self.block.get() {
            return Ok(block);
        }
        let tiered = self.tiered.upgrade().ok_or(StoreError::Closed)?;
        let blob = tiered.with_connection(|conn| {
            let blob = open_block(conn, self.key)?;
            read_range(&blob, 0..blob.len())
        })?;
        let block = BlobBlock::new(Arc::new(blob))?;
        if block.layout() != &self.layout {
            // A delete rewrote the block under the same key since the catalog was
            // taken: read again from a fresh one.
            return Err(StoreError::NotFound);
        }
        Ok(self.block.get_or_init(|| block))
    }
}

impl PageSource for ScannedBlock {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn page(&self, column: usize, page: usize) -> Result<Arc<Page>> {
        self.block()?.page(column, page)
    }
}

/// Rows of the previous layout still in the `records` table, pages cut by id.
struct LegacyRows {
    serial: u64,
    layout: Layout,
    tiered: std::sync::Weak<Tiered>,
}

impl PageSource for LegacyRows {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn page(&self, column: usize, page: usize) -> Result<Arc<Page>> {
        let tiered = self.tiered.upgrade().ok_or(StoreError::Closed)?;
        let key = (self.serial, column as u16, page as u32);
        if let Some(CacheEntry::Page(p)) = tiered.cache.get(&key) {
            return Ok(p);
        }
        let lo = self.layout.first_id + (page * self.layout.page_rows) as i64;
        let hi = (lo + self.layout.page_rows as i64 - 1).min(self.layout.last_id);
        let records = tiered.with_connection(|conn| {
            let sql = format!(
                "SELECT {} FROM records WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
                super::records::RECORD_COLUMNS
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map([lo, hi], super::records::read_record)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row??);
            }
            Ok(out)
        })?;
        let data = format::data_texts(&records);
        let mut pages =
            crate::blocks::segment::pages_of(&format::Columns::of_records(&records, &data));
        // Always explicit: the page's rows need not start at its first id.
        pages[crate::blocks::format::IDS] = Page::Ints(records.iter().map(|r| r.id).collect());
        let mut wanted = Arc::new(Page::Absent);
        for (c, p) in pages.into_iter().enumerate() {
            let p = Arc::new(p);
            let bytes = page_bytes(&p);
            if c == column {
                wanted = Arc::clone(&p);
            }
            tiered.cache.put(
                (self.serial, c as u16, page as u32),
                CacheEntry::Page(p),
                bytes,
            );
        }
        Ok(wanted)
    }

    fn page_of_id(&self, id: i64) -> Option<usize> {
        usize::try_from(id - self.layout.first_id)
            .ok()
            .map(|offset| offset / self.layout.page_rows)
    }

    fn page_ids(&self, page: usize) -> Option<(i64, i64)> {
        // Pages are cut by id: page p holds ids of its positions (some missing).
        Some(crate::blocks::segment::contiguous_page_ids(
            &self.layout,
            page,
        ))
    }
}

/// Seals the oldest rows of the previous layout into a block: the block appears
/// and the rows go in one transaction. True if there was anything to seal.
pub fn upgrade_once(
    tiered: &Arc<Tiered>,
    apply: &dyn Fn(super::sealer::SealJob) -> Result<bool>,
) -> Result<bool> {
    let catalog = tiered.tiers.snapshot();
    let Some(legacy) = catalog.entries.iter().find(|e| e.segment.summary.opaque) else {
        return Ok(false);
    };
    let (first, block_rows) = (legacy.segment.first_id(), tiered.tiers.options.block_rows);
    let records = tiered.with_connection(|conn| {
        let sql = format!(
            "SELECT {} FROM records WHERE id >= ?1 ORDER BY id LIMIT ?2",
            super::records::RECORD_COLUMNS
        );
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map([first, block_rows as i64], super::records::read_record)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    })?;
    let Some(last) = records.last().map(|r| r.id) else {
        return Ok(false);
    };
    let options = &tiered.tiers.options;
    let block = Arc::new(format::encode(
        &records,
        &format::Options {
            page_rows: options.page_rows,
            zstd_level: options.zstd_level,
        },
    ));
    let tiered = Arc::clone(tiered);
    apply(Box::new(move |conn, batch| {
        let Some(draft) = batch.catalog(conn)? else {
            return Ok(false);
        };
        let Some(legacy) = draft
            .entries
            .iter()
            .find(|e| e.segment.summary.opaque)
            .map(|e| e.segment.first_id())
        else {
            return Ok(false);
        };
        if legacy != first {
            return Ok(false); // another process sealed these first
        }
        conn.prepare_cached("DELETE FROM records WHERE id <= ?1")?
            .execute([last])?;
        draft.remove(legacy);
        let segment = insert_block(&tiered, conn, &block)?;
        draft.insert(Entry {
            segment,
            hot: false,
            seen: Instant::now(),
        });
        if let Some(rest) = tiered.legacy_segment(conn)? {
            draft.insert(Entry {
                segment: rest,
                hot: false,
                seen: Instant::now(),
            });
        }
        draft.version = bump_version(conn)?;
        batch.truncate_wal = true;
        Ok(true)
    }))
}

/// Appends a batch as one hot segment, prepared on the writer's thread (for the
/// records a writer job makes itself: a journal entry, an action's event).
pub fn insert_records(
    conn: &Connection,
    batch: &mut Batch,
    records: &[NewRecord],
) -> Result<Appended> {
    PreparedAppend::new(records.to_vec(), Timestamp::now()).insert(conn, batch)
}

/// An append made ready off the writer's thread, on the request's task: the writer
/// thread is the one serial stage of ingest, so everything that does not need the
/// ids it assigns (the row form, the hot segment and its summary, `data` as JSON,
/// all of each leaf's canonical form but the id) is done before the job is queued.
/// The records are turned into those forms a chunk at a time and dropped as they
/// go, so a large batch is never whole both as records and in the store's forms.
/// A writer job may run twice (see `writer::run_batch`), so a run only reads what
/// was prepared (the hot segment, moved into the catalog, is made again from the
/// row form then, as at start), and the records are handed to the notifier,
/// decoded from the row form, only once the transaction has committed.
pub struct PreparedAppend {
    prepared: Arc<Mutex<PreparedRecords>>,
}

/// A batch in every form the writer stores and publishes, its rows numbered from 0.
struct PreparedRecords {
    count: usize,
    /// Set when the records are announced; nothing may store them after.
    announced: bool,
    rows: rows::Unnumbered,
    /// Taken into the catalog by a run.
    hot: Option<UnnumberedHot>,
    /// Each record's canonical form without its id, one after the other.
    forms: Vec<u8>,
    /// Per record, where its form ends in `forms` and where its id goes; `None` for
    /// a record whose form the canonicalizer writes (a float in `data`), hashed
    /// whole once it has its id.
    leaves: Vec<Option<(usize, usize)>>,
    /// The records whose leaves are `None`, in order.
    hashed_whole: Vec<Record>,
}

/// An append being prepared as its records arrive (an NDJSON body as it is read):
/// each chunk pushed is turned into the store's forms and dropped, so the records
/// of a large batch are never all held at once, not even while they are parsed.
pub struct PreparingAppend {
    now: Timestamp,
    rows: rows::Unnumbered,
    pages: HotPages,
    forms: Vec<u8>,
    leaves: Vec<Option<(usize, usize)>>,
    hashed_whole: Vec<Record>,
}

impl PreparingAppend {
    /// An empty append with room for about `records` records, received at `now`
    /// (the `ts` of those without one).
    pub fn with_capacity(records: usize, now: Timestamp) -> PreparingAppend {
        PreparingAppend {
            now,
            rows: rows::Unnumbered::with_capacity(records),
            pages: HotPages::with_capacity(records),
            forms: Vec::with_capacity(records * 320),
            leaves: Vec::with_capacity(records),
            hashed_whole: Vec::new(),
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Prepares `records`, which follow those pushed before.
    pub fn push(&mut self, records: Vec<NewRecord>) {
        let mut input = records.into_iter();
        loop {
            let first = self.len();
            let chunk: Vec<Record> = input
                .by_ref()
                .take(PREPARED_CHUNK)
                .enumerate()
                .map(|(i, new)| new.into_record((first + i) as i64, self.now))
                .collect();
            if chunk.is_empty() {
                break;
            }
            // One columnar view for the row form and the hot pages (`data` as JSON once).
            let data = format::data_texts(&chunk);
            let columns = format::Columns::of_records(&chunk, &data);
            self.rows.push(&columns);
            self.pages.push(&columns);
            drop(columns);
            for record in chunk {
                let leaf = integrity::write_canonical_without_id(&record, &mut self.forms)
                    .map(|id_at| (self.forms.len(), id_at));
                if leaf.is_none() {
                    self.hashed_whole.push(record);
                }
                self.leaves.push(leaf);
            }
        }
    }

    /// The append, ready to be queued.
    pub fn finish(self) -> PreparedAppend {
        let prepared = PreparedRecords {
            count: self.leaves.len(),
            announced: false,
            rows: self.rows,
            hot: Some(UnnumberedHot::of_pages(self.pages)),
            forms: self.forms,
            leaves: self.leaves,
            hashed_whole: self.hashed_whole,
        };
        PreparedAppend {
            prepared: Arc::new(Mutex::new(prepared)),
        }
    }
}

/// Records turned into the store's forms at a time by [`PreparingAppend::push`]:
/// large enough that the per-chunk work is noise, small enough to be a small part
/// of a 15 MB batch.
const PREPARED_CHUNK: usize = 2048;

fn lock(prepared: &Mutex<PreparedRecords>) -> std::sync::MutexGuard<'_, PreparedRecords> {
    prepared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PreparedAppend {
    /// Prepares `records`, received at `now` (the `ts` of those without one).
    pub fn new(records: Vec<NewRecord>, now: Timestamp) -> PreparedAppend {
        let mut preparing = PreparingAppend::with_capacity(records.len(), now);
        preparing.push(records);
        preparing.finish()
    }

    /// Appends the records in the writer's transaction. A small append (a single
    /// POST) waits in the batch for the others of its transaction and is stored
    /// with them as one hot segment; a large one is a segment of its own, stored
    /// now. Either way its ids are taken now, in the order the jobs run.
    pub fn insert(&self, conn: &Connection, batch: &mut Batch) -> Result<Appended> {
        let count = lock(&self.prepared).count;
        let first_id = batch.next_record_id;
        let last_id = first_id + count as i64 - 1;
        let alone = count >= MERGED_BELOW_ROWS;
        if alone || batch.pending_hot().rows + count > MERGED_ROWS {
            batch.store_pending(conn)?;
        }
        batch.pending_hot().push(&self.prepared, first_id, count);
        if alone {
            batch.store_pending(conn)?;
        }
        batch.next_record_id += count as i64;
        batch
            .announcements
            .push(Announcement::Records(AnnouncedRecords {
                prepared: Arc::clone(&self.prepared),
                first_id,
            }));
        Ok(Appended {
            count,
            first_id: Some(first_id),
            last_id: Some(last_id),
        })
    }
}

/// Appends of fewer records than this are stored together with the other small
/// appends of their transaction. Their merged segment's summary is made on the
/// writer thread, so a large append, whose summary was made on its request's task,
/// keeps its own segment.
const MERGED_BELOW_ROWS: usize = 256;
/// Most records of merged appends in one hot segment (bounds the summary the
/// writer makes).
const MERGED_ROWS: usize = 4096;

/// The appends of the open transaction not yet stored, numbered one after the
/// other. A hot segment of one single POST each cost a row, a leaf run and a
/// catalog entry (cloned by every later transaction, walked by every query, folded
/// one by one by the sealer); stored together they cost one of each. Cloned
/// before a job that runs under its own savepoint and put back if the job fails,
/// like the batch's other state.
#[derive(Clone, Default)]
pub struct PendingHot {
    parts: Vec<PendingPart>,
    rows: usize,
}

#[derive(Clone)]
struct PendingPart {
    prepared: Arc<Mutex<PreparedRecords>>,
    first_id: i64,
    count: usize,
}

impl PendingHot {
    fn push(&mut self, prepared: &Arc<Mutex<PreparedRecords>>, first_id: i64, count: usize) {
        if count == 0 {
            return;
        }
        self.parts.push(PendingPart {
            prepared: Arc::clone(prepared),
            first_id,
            count,
        });
        self.rows += count;
    }

    /// Stores the pending appends as one hot segment: its row, its leaf run and
    /// its entry in the draft catalog.
    pub fn store(&mut self, conn: &Connection, catalog: Option<&mut Catalog>) -> Result<()> {
        let parts = std::mem::take(&mut self.parts);
        let rows = std::mem::take(&mut self.rows);
        let Some(first_id) = parts.first().map(|p| p.first_id) else {
            return Ok(());
        };
        let last_id = first_id + rows as i64 - 1;
        let mut guards: Vec<_> = parts.iter().map(|p| lock(&p.prepared)).collect();
        let mut hashes = Vec::with_capacity(rows * 32);
        for (part, prepared) in parts.iter().zip(&guards) {
            hashes.extend(
                prepared
                    .leaf_hashes(part.first_id)
                    .ok_or_else(announced_already)?,
            );
        }
        let together;
        let row_form = match guards.as_mut_slice() {
            [prepared] => prepared.rows.numbered(first_id),
            all => {
                let unnumbered: Vec<&rows::Unnumbered> = all.iter().map(|p| &p.rows).collect();
                together = rows::Unnumbered::numbered_together(&unnumbered, first_id);
                &together
            }
        };
        conn.prepare_cached(
            "INSERT INTO hot_segments (first_id, last_id, records) VALUES (?1, ?2, ?3)",
        )?
        .execute(rusqlite::params![first_id, last_id, row_form])?;
        super::integrity::insert_run(conn, first_id, &hashes)?;
        let Some(draft) = catalog else {
            return Ok(());
        };
        let segment = match guards.as_mut_slice() {
            [prepared] => match prepared.hot.take() {
                Some(hot) => hot.numbered(first_id),
                None => hot_of_records(&parts, &mut guards)?,
            },
            all if all.iter().all(|p| p.hot.is_some()) => {
                let mut columns = format::Columns::with_capacity(rows);
                for (part, prepared) in parts.iter().zip(all.iter()) {
                    if let Some(hot) = prepared.hot.as_ref() {
                        columns.push_pages(hot.pages(), part.first_id, 0..part.count);
                    }
                }
                Segment::hot_of(&columns)
            }
            // A run before this one stored an append alone and took its segment.
            _ => hot_of_records(&parts, &mut guards)?,
        };
        draft.insert(Entry {
            segment,
            hot: true,
            seen: Instant::now(),
        });
        draft.high_water = draft.high_water.max(last_id);
        Ok(())
    }
}

/// The error of a prepared append run again after its records were announced.
fn announced_already() -> StoreError {
    StoreError::Internal("a prepared append ran after it was announced".into())
}

/// A hot segment of the pending appends, made again from their row forms (as at
/// start).
fn hot_of_records(
    parts: &[PendingPart],
    prepared: &mut [std::sync::MutexGuard<'_, PreparedRecords>],
) -> Result<Segment> {
    let mut records = Vec::with_capacity(parts.iter().map(|p| p.count).sum());
    for (part, prepared) in parts.iter().zip(prepared) {
        records.extend(prepared.records(part.first_id)?);
    }
    Ok(Segment::hot(&records))
}

impl PreparedRecords {
    /// The records, numbered from `first_id`, read back from their row form.
    fn records(&mut self, first_id: i64) -> Result<Vec<Record>> {
        if self.announced {
            return Err(announced_already());
        }
        Ok(rows::decode(self.rows.numbered(first_id))?)
    }

    /// The leaf hashes, in order, of the records numbered from `first_id`; `None`
    /// once the records were announced.
    fn leaf_hashes(&self, first_id: i64) -> Option<Vec<u8>> {
        if self.announced {
            return None;
        }
        let mut hashes = Vec::with_capacity(self.count * 32);
        let mut start = 0;
        let mut hashed_whole = self.hashed_whole.iter();
        for (i, leaf) in self.leaves.iter().enumerate() {
            let id = first_id + i as i64;
            let hash = match *leaf {
                Some((end, id_at)) => {
                    let hash =
                        integrity::leaf_hash_with_id(&self.forms[start..end], id_at - start, id);
                    start = end;
                    hash
                }
                None => integrity::leaf_hash(&Record {
                    id,
                    ..hashed_whole.next()?.clone()
                }),
            };
            hashes.extend_from_slice(&hash);
        }
        Some(hashes)
    }
}

/// The records of a committed append, numbered when they are announced.
pub struct AnnouncedRecords {
    prepared: Arc<Mutex<PreparedRecords>>,
    first_id: i64,
}

impl AnnouncedRecords {
    /// The records, read back from their row form (the one copy kept after they
    /// were prepared); none if they were announced already.
    pub fn into_records(self) -> Result<Vec<Record>> {
        let mut prepared = lock(&self.prepared);
        let records = prepared.records(self.first_id);
        prepared.announced = true;
        records
    }

    /// The last id of the append (below the first if it has none).
    pub fn last_id(&self) -> i64 {
        self.first_id + lock(&self.prepared).count as i64 - 1
    }
}

/// Deletes the matching records: each hot segment or block holding some is
/// rewritten without them (one transaction), so the disk shrinks and ids stay.
/// Returns the deleted ids (their leaves stay: the caller records the removal).
pub fn delete(
    tiered: &Arc<Tiered>,
    conn: &Connection,
    batch: &mut Batch,
    query: &Query,
) -> Result<Vec<i64>> {
    let Some(draft) = batch.catalog(conn)? else {
        return Err(StoreError::Internal(
            "no catalog for the tiered layout".into(),
        ));
    };
    let filter = Query {
        conditions: query.conditions.clone(),
        ..Query::default()
    };
    let mut deleted: Vec<i64> = Vec::new();
    let entries = draft.entries.clone();
    for entry in entries {
        let segment = std::slice::from_ref(&entry.segment);
        if engine::count(segment, &filter)? == 0 {
            continue;
        }
        if entry.segment.summary.opaque {
            // Rows of the previous layout: deleted where they are.
            let matched = engine::export_batch(segment, &filter, i64::MAX, None, usize::MAX)?;
            super::integrity::keep_removed_leaves(conn, &matched)?;
            let mut statement = conn.prepare_cached("DELETE FROM records WHERE id = ?1")?;
            for record in &matched {
                statement.execute([record.id])?;
            }
            deleted.extend(matched.iter().map(|r| r.id));
            draft.remove(entry.segment.first_id());
            if let Some(rest) = tiered.legacy_segment(conn)? {
                draft.insert(Entry {
                    segment: rest,
                    ..entry
                });
            }
            continue;
        }
        let all =
            engine::export_batch(segment, &Query::oldest_first(), i64::MAX, None, usize::MAX)?;
        let (gone, kept): (Vec<Record>, Vec<Record>) =
            all.into_iter().partition(|r| filter.matches(r));
        deleted.extend(gone.iter().map(|r| r.id));
        super::integrity::keep_removed_leaves(conn, &gone)?;
        let key = entry.segment.first_id();
        draft.remove(key);
        if entry.hot {
            conn.prepare_cached("DELETE FROM hot_segments WHERE first_id = ?1")?
                .execute([key])?;
            if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
                conn.prepare_cached(
                    "INSERT INTO hot_segments (first_id, last_id, records) VALUES (?1, ?2, ?3)",
                )?
                .execute(rusqlite::params![
                    first.id,
                    last.id,
                    rows::encode(&kept)
                ])?;
                draft.insert(Entry {
                    segment: Segment::hot(&kept),
                    ..entry
                });
            }
        } else {
            conn.prepare_cached("DELETE FROM blocks WHERE first_id = ?1")?
                .execute([key])?;
            if !kept.is_empty() {
                let options = &tiered.tiers.options;
                let encoded = format::encode(
                    &kept,
                    &format::Options {
                        page_rows: options.page_rows,
                        zstd_level: options.zstd_level,
                    },
                );
                let segment = insert_block(tiered, conn, &encoded)?;
                draft.insert(Entry {
                    segment,
                    hot: false,
                    seen: entry.seen,
                });
            }
        }
    }
    if !deleted.is_empty() {
        draft.version = bump_version(conn)?;
    }
    Ok(deleted)
}

fn insert_block(
    tiered: &Arc<Tiered>,
    conn: &Connection,
    encoded: &format::Encoded,
) -> Result<Segment> {
    let end = Layout::header_end(&encoded.blob)?;
    let header = &encoded.blob[..end];
    let mut summary = Vec::new();
    encoded.summary.write(&mut summary);
    let key = encoded.summary.first_id;
    conn.prepare_cached(
        "INSERT INTO blocks (first_id, last_id, rows, header, summary, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        key,
        encoded.summary.last_id,
        encoded.summary.rows as i64,
        header,
        summary,
        encoded.blob
    ])?;
    tiered.block_segment(key, header, encoded.summary.clone())
}

fn bump_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "UPDATE meta SET value = value + 1 WHERE key = 'catalog_version' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Applies a planned seal if the hot segments it read are still as they were:
/// the block appears and they go (the remainder stays hot) in one transaction.
pub fn apply_seal(
    tiered: &Arc<Tiered>,
    conn: &Connection,
    batch: &mut Batch,
    seal: &tiers::Seal,
    read_from: &[Segment],
) -> Result<bool> {
    let Some(draft) = batch.catalog(conn)? else {
        return Ok(false);
    };
    let unchanged = seal.consumed.iter().zip(read_from).all(|(key, seen)| {
        draft.entries.iter().any(|e| {
            e.hot && e.segment.first_id() == *key && Arc::ptr_eq(&e.segment.summary, &seen.summary)
        })
    }) && seal.consumed.len() == read_from.len();
    if !unchanged {
        return Ok(false);
    }
    let mut seen = Instant::now();
    for key in &seal.consumed {
        conn.prepare_cached("DELETE FROM hot_segments WHERE first_id = ?1")?
            .execute([key])?;
        if let Some(entry) = draft.remove(*key) {
            seen = seen.min(entry.seen);
        }
    }
    let segment = insert_block(tiered, conn, &seal.block)?;
    draft.insert(Entry {
        segment,
        hot: false,
        seen,
    });
    if let Some(remainder) = &seal.remainder {
        let segment = &remainder.segment;
        conn.prepare_cached(
            "INSERT INTO hot_segments (first_id, last_id, records) VALUES (?1, ?2, ?3)",
        )?
        .execute(rusqlite::params![
            segment.first_id(),
            segment.last_id(),
            remainder.rows
        ])?;
        draft.insert(Entry {
            segment: segment.clone(),
            hot: true,
            seen,
        });
    }
    draft.version = bump_version(conn)?;
    batch.truncate_wal = true;
    Ok(true)
}

/// The hot segments a seal plan read, to check at apply time that none changed.
pub fn planned_from(catalog: &Catalog, seal: &tiers::Seal) -> Vec<Segment> {
    seal.consumed
        .iter()
        .filter_map(|key| {
            catalog
                .entries
                .iter()
                .find(|e| e.hot && e.segment.first_id() == *key)
                .map(|e| e.segment.clone())
        })
        .collect()
}

/// Bytes on disk of each tier's rows (blobs, headers and summaries).
pub fn stored_bytes(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT (SELECT coalesce(sum(length(records)), 0) FROM hot_segments) + \
                    (SELECT coalesce(sum(length(data) + length(header) + length(summary)), 0) FROM blocks)",
        )?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_from(next_record_id: i64) -> Batch {
        Batch::new(next_record_id, 1, Some(Catalog::default()))
    }

    /// A writer job runs again, numbered differently, when another job of its
    /// transaction failed: the second run stores and announces what a first run
    /// at those ids would have.
    #[test]
    fn a_prepared_append_run_again_after_a_rollback_is_numbered_by_the_second_run() {
        let mut conn = Connection::open_in_memory().expect("open");
        super::super::schema::migrate(&mut conn).expect("migrate");
        let mut float = serde_json::Map::new();
        float.insert("x".into(), serde_json::json!(1.5));
        let records: Vec<NewRecord> = (0..3)
            .map(|i| NewRecord {
                message: Some(format!("line {i}")),
                data: (i == 1).then(|| float.clone()),
                ..NewRecord::new(logbook_core::Kind::Log)
            })
            .collect();
        let append = PreparedAppend::new(records, Timestamp(7));
        conn.execute_batch("BEGIN").expect("begin");
        let mut first = batch_from(1);
        append.insert(&conn, &mut first).expect("first run");
        first.store_pending(&conn).expect("first run stored");
        conn.execute_batch("ROLLBACK").expect("rollback");
        conn.execute_batch("BEGIN").expect("begin");
        let mut batch = batch_from(5);
        let appended = append.insert(&conn, &mut batch).expect("second run");
        batch.store_pending(&conn).expect("second run stored");
        conn.execute_batch("COMMIT").expect("commit");
        assert_eq!((appended.first_id, appended.last_id), (Some(5), Some(7)));
        let segments = batch
            .catalog(&conn)
            .expect("stored")
            .expect("catalog")
            .segments();
        assert_eq!(segments.len(), 1);
        assert_eq!((segments[0].first_id(), segments[0].last_id()), (5, 7));
        let announced: Vec<Record> = batch
            .announcements
            .into_iter()
            .flat_map(|a| match a {
                Announcement::Records(records) => records.into_records().expect("announced once"),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            announced.iter().map(|r| r.id).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        let stored = engine::export_batch(&segments, &Query::oldest_first(), i64::MAX, None, 10)
            .expect("read");
        assert_eq!(stored, announced);
        let (first_id, hashes): (i64, Vec<u8>) = conn
            .query_row("SELECT first_id, hashes FROM record_leaves", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("one run of leaves");
        assert_eq!(first_id, 5);
        let expected: Vec<u8> = announced
            .iter()
            .flat_map(logbook_core::integrity::leaf_hash)
            .collect();
        assert_eq!(hashes, expected);
    }
}
