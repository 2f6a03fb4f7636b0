//! Exports: every matching record in the query's order, in batches, in constant
//! memory. Each batch is read from the catalog current when it is read, after the
//! last id of the batch before; none is above the high-water mark at the start, so
//! the export covers what was committed when it started.

use super::pool::ReadPool;
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
const BATCH: u64 = 2000;

/// The export of the tiered layout: batches from the shared engine, each read from
/// the catalog current when it is read, none above the high-water mark at the start.
pub fn export(
    readers: Arc<ReadPool>,
    tiered: Arc<super::tiered::Tiered>,
    query: Query,
    high_water: i64,
) -> BoxStream<'static, Result<Vec<Record>>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut after: Option<i64> = None;
        loop {
            let (tiered, query) = (Arc::clone(&tiered), query.clone());
            let batch = readers
                .read(move |conn| {
                    tiered.read(conn, |segments, _| {
                        crate::blocks::engine::export_batch(
                            segments,
                            &query,
                            high_water,
                            after,
                            BATCH as usize,
                        )
                    })
                })
                .await;
            let last = match &batch {
                Ok(records) if records.is_empty() => break,
                Ok(records) => records.last().map(|r| r.id),
                Err(_) => None,
            };
            let full = matches!(&batch, Ok(records) if records.len() as u64 >= BATCH);
            if sender.send(batch).await.is_err() {
                break; // the client went away
            }
            match last {
                Some(last) if full => after = Some(last),
                _ => break,
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}
