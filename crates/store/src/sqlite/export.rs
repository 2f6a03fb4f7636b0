//! Exports: every matching record in the query's order, in batches, in constant
//! memory. Each batch is read from the catalog current when it is read, after the
//! last id of the batch before; none is above the high-water mark at the start, so
//! the export covers what was committed when it started.

use super::pool::ReadPool;
use super::tiered::Tiered;
use crate::blocks::engine::{self, Written};
use crate::blocks::segment::Segment;
use crate::Result;
use futures_util::stream::BoxStream;
use logbook_core::{Query, Record};
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

/// Records per batch: large enough to amortise a read, small enough that little is
/// held. Batches are read on whichever blocking thread is free, and glibc keeps a
/// batch's worth of freed memory in each thread's arena: 5000-record batches left
/// the server about 80 MB larger after an export; 2000 (four in flight) export as
/// fast.
const BATCH: usize = 2000;

/// The export of the tiered layout: batches from the shared engine, each read from
/// the catalog current when it is read, none above the high-water mark at the start.
pub fn export(
    readers: Arc<ReadPool>,
    tiered: Arc<Tiered>,
    query: Query,
    high_water: i64,
) -> BoxStream<'static, Result<Vec<Record>>> {
    batches(readers, tiered, move |segments, after| {
        let records = engine::export_batch(segments, &query, high_water, after, BATCH)?;
        let written = Written {
            rows: records.len(),
            last_id: records.last().map(|r| r.id),
        };
        Ok((records, written))
    })
}

/// As [`export`], each batch rendered as NDJSON lines by the engine, straight from
/// the blocks' columns, on the reader's thread.
pub fn export_ndjson(
    readers: Arc<ReadPool>,
    tiered: Arc<Tiered>,
    query: Query,
    high_water: i64,
) -> BoxStream<'static, Result<Vec<u8>>> {
    batches(readers, tiered, move |segments, after| {
        // Room for a batch of lines of 320 bytes (gen.py's records) without growing.
        let mut out = Vec::with_capacity(BATCH * 384);
        let written =
            engine::export_ndjson_batch(segments, &query, high_water, after, BATCH, &mut out)?;
        Ok((out, written))
    })
}

/// Reads batches with `read` (given the segments and the last id of the batch
/// before) until one is short, handing each on as it is read.
fn batches<T, F>(
    readers: Arc<ReadPool>,
    tiered: Arc<Tiered>,
    read: F,
) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: Fn(&[Segment], Option<i64>) -> Result<(T, Written)> + Send + Sync + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let read = Arc::new(read);
    tokio::spawn(async move {
        let mut after: Option<i64> = None;
        loop {
            let (tiered, read) = (Arc::clone(&tiered), Arc::clone(&read));
            let batch = readers
                .read(move |conn| tiered.read(conn, |segments, _| read(segments, after)))
                .await;
            let (batch, next) = match batch {
                Ok((_, written)) if written.rows == 0 => break,
                Ok((batch, written)) => {
                    (Ok(batch), written.last_id.filter(|_| written.rows >= BATCH))
                }
                Err(e) => (Err(e), None),
            };
            if sender.send(batch).await.is_err() {
                break; // the client went away
            }
            match next {
                Some(last) => after = Some(last),
                None => break,
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}
