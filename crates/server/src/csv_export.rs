//! Streaming exports shared by every API: records flow from the store in batches
//! and leave as CSV or NDJSON without ever being held all at once. CSV cells that a
//! spreadsheet would evaluate are neutralised (see `core::spreadsheet`).

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{BoxStream, StreamExt};
use logbook_core::spreadsheet::neutralise_formula;
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
        encode_rows(std::iter::once(
            header.iter().map(|h| Cow::Borrowed(*h)).collect(),
        ))
    });
    let rows = batches.map(move |batch| {
        let batch = batch.map_err(log_failure)?;
        encode_rows(batch.iter().map(row))
    });
    attachment(
        Body::from_stream(head.chain(rows)),
        "text/csv; charset=utf-8",
        filename,
    )
}

/// An NDJSON download: one record per line, rendered by `render`.
pub fn ndjson_response(
    batches: BoxStream<'static, Result<Vec<Record>, StoreError>>,
    render: fn(&Record) -> serde_json::Value,
    filename: &str,
) -> Response {
    let lines = batches.map(move |batch| {
        let batch = batch.map_err(log_failure)?;
        let mut out = Vec::with_capacity(batch.len() * 256);
        for record in &batch {
            // Serialising a serde_json::Value into memory cannot fail.
            let _ = serde_json::to_writer(&mut out, &render(record));
            out.push(b'\n');
        }
        Ok::<_, std::io::Error>(Bytes::from(out))
    });
    attachment(Body::from_stream(lines), "application/x-ndjson", filename)
}

fn encode_rows<'a>(rows: impl Iterator<Item = Vec<Cow<'a, str>>>) -> Result<Bytes, std::io::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256 * 1024));
    for row in rows {
        for cell in &row {
            writer
                .write_field(neutralise_formula(cell).as_bytes())
                .map_err(std::io::Error::other)?;
        }
        writer
            .write_record(None::<&[u8]>)
            .map_err(std::io::Error::other)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
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
