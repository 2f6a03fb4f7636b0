//! Reading request bodies with the configured size limit, so an oversize body is a
//! clear 413 naming the limit rather than a dropped connection.

use crate::error::{ApiError, ErrorKind};
use axum::body::{Body, Bytes};
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(read_error(e.as_ref(), limit)),
    }
}

/// Reads a body to its end within the size limit, handing each chunk to `take` as
/// it arrives and keeping none, so a large body is never held whole.
pub async fn read_chunks(
    body: Body,
    limit: usize,
    mut take: impl FnMut(&[u8]),
) -> Result<(), ApiError> {
    let mut body = Limited::new(body, limit);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| read_error(e.as_ref(), limit))?;
        if let Some(data) = frame.data_ref() {
            take(data);
        }
    }
    Ok(())
}

fn read_error(e: &(dyn std::error::Error + Send + Sync + 'static), limit: usize) -> ApiError {
    if e.is::<LengthLimitError>() {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("is larger than the limit of {limit} bytes"),
        )
        .at("body")
    } else if timed_out(e) {
        ApiError::new(
            ErrorKind::RequestTimeout,
            "stopped arriving before it was complete (the body-read timeout)",
        )
        .at("body")
    } else {
        ApiError::bad_request("body", format!("could not be read: {e}"))
    }
}

/// Whether a body error is the body-read timeout (`limits`), anywhere in its chain.
fn timed_out(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        match e.source() {
            Some(next) => e = next,
            None => return false,
        }
    }
}

/// Parses a JSON body, naming the position of a syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("body", format!("is not valid JSON: {e}")))
}

/// Reads a body and undoes its `Content-Encoding` (gzip, deflate, or none), with
/// the limit applied to both the bytes received and the bytes they expand to, so a
/// small compressed body cannot grow without bound in memory.
pub async fn read_decoded(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let raw = read_limited(body, limit).await?;
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(&raw[..]), limit),
        "deflate" => inflate(flate2::read::ZlibDecoder::new(&raw[..]), limit),
        "snappy" => decompress_snappy(&raw, limit),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("{other:?} is not supported (gzip, deflate, snappy or none)"),
        )
        .at("content-encoding")),
    }
}

fn inflate(decoder: impl std::io::Read, limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request("body", format!("cannot be decompressed: {e}")))?;
    if out.len() > limit {
        return Err(too_large_decompressed(limit));
    }
    Ok(Bytes::from(out))
}

/// Undoes snappy's raw block format (Loki push, Prometheus remote write). The block
/// states its decompressed length up front, so an oversize body is refused before
/// anything is allocated.
pub fn decompress_snappy(raw: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let length = snap::raw::decompress_len(raw)
        .map_err(|e| ApiError::bad_request("body", format!("is not snappy-compressed: {e}")))?;
    if length > limit {
        return Err(too_large_decompressed(limit));
    }
    snap::raw::Decoder::new()
        .decompress_vec(raw)
        .map(Bytes::from)
        .map_err(|e| ApiError::bad_request("body", format!("is not snappy-compressed: {e}")))
}

fn too_large_decompressed(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::TooLarge,
        format!("decompresses to more than the limit of {limit} bytes"),
    )
    .at("body")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("compress");
        encoder.finish().expect("compress")
    }

    fn encoded(name: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-encoding", name.parse().expect("header"));
        headers
    }

    #[tokio::test]
    async fn the_limit_applies_to_the_decompressed_size() {
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 8192, "a megabyte of one byte compresses well");
        let err = read_decoded(&encoded("gzip"), Body::from(bomb.clone()), 64 * 1024)
            .await
            .expect_err("too large once decompressed");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read_decoded(&encoded("gzip"), Body::from(bomb), 1 << 20)
            .await
            .expect("exactly the limit");
        assert_eq!(ok.len(), 1 << 20);

        let snappy = snap::raw::Encoder::new()
            .compress_vec(&vec![b'a'; 1 << 20])
            .expect("compress");
        let err = decompress_snappy(&snappy, 1000).expect_err("too large");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let err = decompress_snappy(&snappy[..snappy.len() / 2], 1 << 30).expect_err("cut");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn unknown_encodings_and_corrupt_bodies_are_named() {
        let err = read_decoded(&encoded("br"), Body::from("x"), 100)
            .await
            .expect_err("brotli");
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(err.field.as_deref(), Some("content-encoding"));
        let err = read_decoded(&encoded("gzip"), Body::from("not gzip"), 100)
            .await
            .expect_err("corrupt");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
