//! Exports: every matching record in the query's order, in batches, in constant
//! memory, none above the high-water mark at the start (so the export covers what
//! was committed when it started). Two threads share the work: one reads and
//! decodes the pages (each block read whole, its pages kept out of the shared
//! cache: `Tiered::export_pages`), the other writes each page's rows as the
//! batch's form (records, or NDJSON lines) while the next page is decoded.

use super::pool::ReadPool;
use super::tiered::Tiered;
use crate::blocks::engine::{ExportPage, RowWriter};
use crate::Result;
use futures_util::stream::BoxStream;
use logbook_core::{Query, Record};
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

/// Rows per batch handed on: large enough to amortise a send, small enough that
/// little is held (glibc keeps a batch's worth of freed memory in each thread's
/// arena: 5000-record batches left the server about 80 MB larger after an
/// export).
const BATCH: usize = 2000;

/// Decoded pages waiting to be written: enough to keep the writer busy while the
/// reader fetches the next block, each page of 1024 rows about 400 KB decoded.
const PAGES_AHEAD: usize = 4;

/// The export as records.
pub fn export(
    readers: Arc<ReadPool>,
    tiered: Arc<Tiered>,
    query: Query,
    high_water: i64,
) -> BoxStream<'static, Result<Vec<Record>>> {
    pipeline(
        readers,
        tiered,
        query,
        high_water,
        || Vec::with_capacity(BATCH + 1024),
        |page, batch: &mut Vec<Record>| page.push_records(batch),
    )
}

/// The export as NDJSON lines, written by the engine straight from the blocks'
/// columns.
pub fn export_ndjson(
    readers: Arc<ReadPool>,
    tiered: Arc<Tiered>,
    query: Query,
    high_water: i64,
) -> BoxStream<'static, Result<Vec<u8>>> {
    let mut rows = RowWriter::default();
    pipeline(
        readers,
        tiered,
        query,
        high_water,
        // Room for a batch of lines of 320 bytes (gen.py's records) without growing.
        || Vec::with_capacity(BATCH * 400),
        move |page, out: &mut Vec<u8>| rows.write_page(page, out),
    )
}

/// Reads the export's pages on a reader's thread and writes them with `write`
/// into batches (each begun by `batch`) on another, handing each batch on once it
/// holds [`BATCH`] rows or more. Both stop when the stream is dropped.
fn pipeline<B, W>(
    readers: Arc<ReadPool>,
    tiered: Arc<Tiered>,
    query: Query,
    high_water: i64,
    batch: fn() -> B,
    mut write: W,
) -> BoxStream<'static, Result<B>>
where
    B: Send + 'static,
    W: FnMut(&ExportPage, &mut B) -> Result<()> + Send + 'static,
{
    let (pages, mut decoded) = tokio::sync::mpsc::channel::<Result<ExportPage>>(PAGES_AHEAD);
    let (batches, receiver) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let reading = pages.clone();
        // Its own connection: this read lasts as long as the client reading.
        let read = readers
            .read_unpooled(move |conn| {
                tiered.export_pages(conn, &query, high_water, |page| {
                    reading.blocking_send(Ok(page)).is_ok()
                })
            })
            .await;
        if let Err(e) = read {
            let _ = pages.send(Err(e)).await;
        }
    });
    tokio::task::spawn_blocking(move || {
        let mut current = batch();
        let mut rows = 0;
        while let Some(page) = decoded.blocking_recv() {
            match page.and_then(|page| write(&page, &mut current).map(|()| page.rows())) {
                Ok(n) => rows += n,
                Err(e) => {
                    let _ = batches.blocking_send(Err(e));
                    return;
                }
            }
            if rows >= BATCH {
                let full = std::mem::replace(&mut current, batch());
                if batches.blocking_send(Ok(full)).is_err() {
                    return; // the client went away
                }
                rows = 0;
            }
        }
        if rows > 0 {
            let _ = batches.blocking_send(Ok(current));
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}
