//! The `stats` of a query answer, in the shape of Loki's summary: what was read
//! from the store, what the pipeline let through, what was returned, how long it
//! took. Grafana shows it in the query inspector.

use logbook_core::Record;
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Stats {
    started: Instant,
    lines: u64,
    bytes: u64,
    returned: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            lines: 0,
            bytes: 0,
            returned: 0,
        }
    }
}

impl Stats {
    /// A record read from the store, whether or not the pipeline keeps it.
    pub(super) fn read(&mut self, record: &Record) {
        self.lines += 1;
        self.bytes += record.message.as_ref().map_or(0, |m| m.len() as u64);
    }

    /// Lines counted by the store without being read (the histogram and count paths).
    pub(super) fn counted(&mut self, lines: u64) {
        self.lines += lines;
    }

    pub(super) fn returned(&mut self, entries: usize) {
        self.returned = entries as u64;
    }

    pub(super) fn to_json(&self) -> Value {
        let seconds = self.started.elapsed().as_secs_f64();
        let per_second = |n: u64| {
            if seconds > 0.0 {
                (n as f64 / seconds) as u64
            } else {
                0
            }
        };
        json!({
            // Logbook has no ingesters: everything is read from the store.
            "ingester": {
                "compressedBytes": 0,
                "decompressedBytes": 0,
                "decompressedLines": 0,
                "headChunkBytes": 0,
                "headChunkLines": 0,
                "totalBatches": 0,
                "totalChunksMatched": 0,
                "totalDuplicates": 0,
                "totalLinesSent": 0,
                "totalReached": 0
            },
            "store": {
                "compressedBytes": 0,
                "decompressedBytes": self.bytes,
                "decompressedLines": self.lines,
                "chunksDownloadTime": 0,
                "totalChunksRef": 0,
                "totalChunksDownloaded": 0,
                "totalDuplicates": 0
            },
            "summary": {
                "bytesProcessedPerSecond": per_second(self.bytes),
                "linesProcessedPerSecond": per_second(self.lines),
                "totalBytesProcessed": self.bytes,
                "totalLinesProcessed": self.lines,
                "execTime": seconds,
                "queueTime": 0,
                "subqueries": 0,
                "totalEntriesReturned": self.returned,
                "splits": 0,
                "shards": 0,
                "totalPostFilterLines": self.returned,
                "totalStructuredMetadataBytesProcessed": 0
            }
        })
    }
}
