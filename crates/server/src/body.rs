//! Reading request bodies with the configured size limit, so an oversize body is a
//! clear 413 naming the limit rather than a dropped connection.

use crate::error::{ApiError, ErrorKind};
use axum::body::{Body, Bytes};
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("is larger than the limit of {limit} bytes"),
        )
        .at("body")),
        Err(e) => Err(ApiError::bad_request(
            "body",
            format!("could not be read: {e}"),
        )),
    }
}

/// Parses a JSON body, naming the position of a syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("body", format!("is not valid JSON: {e}")))
}
