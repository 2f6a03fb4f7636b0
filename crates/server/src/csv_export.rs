//! Streaming exports shared by every API: records flow from the store in batches
//! and leave as CSV or NDJSON without ever being held all at once. CSV cells that a
//! spreadsheet would evaluate are neutralised (see `core::spreadsheet`).

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{BoxStream, StreamExt};
use logbook_core::spreadsheet::would_be_evaluated;
use logbook_core::Record;
use logbook_store::StoreError;
use std::borrow::Cow;

/// Builds one CSV row per record, borrowing from it where it can: an export writes
/// millions of cells, and an allocation per cell was a fifth of its time.
pub type RowFn = for<'a> fn(&'a Record) -> Vec<Cow<'a, str>>;

/// A CSV download: `header` first, then one row per record, RFC 4180 quoting.
pub fn csv_response(
    batches: BoxStream<'static, Result<Vec<Record>, StoreError>>,
    header: &'static [&'static str],
    row: RowFn,
    filename: &str,
) -> Response {
    let head = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(encode_rows(std::iter::once(
            header.iter().map(|h| Cow::Borrowed(*h)).collect(),
        )))
    });
    let rows = batches.map(move |batch| {
        let batch = batch.map_err(log_failure)?;
        Ok(encode_rows(batch.iter().map(row)))
    });
    attachment(
        Body::from_stream(head.chain(rows)),
        "text/csv; charset=utf-8",
        filename,
    )
}

/// An NDJSON download of lines the store rendered already (see
/// `RecordStore::export_ndjson`).
pub fn ndjson_lines_response(
    chunks: BoxStream<'static, Result<Vec<u8>, StoreError>>,
    filename: &str,
) -> Response {
    let lines =
        chunks.map(|chunk| Ok::<_, std::io::Error>(Bytes::from(chunk.map_err(log_failure)?)));
    attachment(Body::from_stream(lines), "application/x-ndjson", filename)
}

/// RFC 4180 rows ending in CRLF. Written by hand rather than through the `csv`
/// crate: its byte-at-a-time state machine was the largest cost of an export, while
/// copying a cell that needs no quotes is one `memcpy`.
pub(crate) fn encode_rows<'a>(rows: impl ExactSizeIterator<Item = Vec<Cow<'a, str>>>) -> Bytes {
    let mut out = Vec::with_capacity(rows.len() * 256);
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_cell(&mut out, cell);
        }
        out.extend_from_slice(b"\r\n");
    }
    Bytes::from(out)
}

/// One cell, neutralised if a spreadsheet would evaluate it, quoted if it holds a
/// comma, a quote or a line break (quotes doubled).
fn push_cell(out: &mut Vec<u8>, cell: &str) {
    let neutralise = would_be_evaluated(cell);
    // memchr compares 32 bytes at a time; a byte-at-a-time scan here was a tenth of
    // an export's time.
    let bytes = cell.as_bytes();
    let quote = memchr::memchr3(b',', b'"', b'\n', bytes).is_some()
        || memchr::memchr(b'\r', bytes).is_some();
    if quote {
        out.push(b'"');
    }
    if neutralise {
        out.push(b'\'');
    }
    if quote {
        for (i, part) in cell.split('"').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\"\"");
            }
            out.extend_from_slice(part.as_bytes());
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// A store failure mid-export cannot become an error status (the head is sent), so
/// the body is cut short and the failure is logged.
fn log_failure(e: StoreError) -> std::io::Error {
    tracing::error!(error = %e, "export aborted");
    std::io::Error::other(e.to_string())
}

fn attachment(body: Body, content_type: &'static str, filename: &str) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_back_as_written_with_formulas_neutralised() {
        let cells = [
            "plain",
            "",
            "a, b",
            "say \"hi\"",
            "two\r\nlines",
            "=1+2",
            "-3, minus",
            "@\"x\"",
            "naïve ünïcode",
        ];
        let rows = vec![cells.iter().map(|c| Cow::Borrowed(*c)).collect::<Vec<_>>(); 2];
        let bytes = encode_rows(rows.into_iter());
        assert!(bytes.ends_with(b"\r\n"));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_ref());
        let read: Vec<Vec<String>> = reader
            .records()
            .map(|r| {
                r.expect("a valid CSV row")
                    .iter()
                    .map(String::from)
                    .collect()
            })
            .collect();
        let expected: Vec<String> = cells.iter().map(|c| neutralised(c)).collect();
        assert_eq!(read, vec![expected.clone(), expected]);
    }

    fn neutralised(cell: &str) -> String {
        logbook_core::spreadsheet::neutralise_formula(cell).into_owned()
    }
}
