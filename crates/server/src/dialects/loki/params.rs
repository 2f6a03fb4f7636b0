//! Loki's request parameters: from the query string, or from a form body on POST
//! (as Loki reads `r.Form`); times as nanosecond or second epochs or RFC 3339;
//! durations as Prometheus durations or float seconds. Unknown parameters are
//! ignored, as Loki ignores them, so clients that send more than Logbook reads
//! keep working.

use super::logql::lexer::parse_duration;
use super::LokiError;
use crate::body::read_limited;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method};
use chrono::DateTime;

/// Nanoseconds since the epoch.
pub(super) type Nanos = i128;

pub(super) const NANOS_PER_MICRO: i128 = 1_000;

/// A request's parameters: the query string, plus a form body for POST. Taken as
/// the last extractor of a handler (it consumes the body).
pub(super) struct Form(pub Params);

impl FromRequest<AppState> for Form {
    type Rejection = LokiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Form, LokiError> {
        let (parts, body) = request.into_parts();
        let raw = parts.uri.query().map(str::to_string);
        let limit = state.config.max_body_bytes;
        Ok(Form(
            read(&parts.method, &parts.headers, raw, body, limit).await?,
        ))
    }
}

/// The query string, plus a form body for POST.
async fn read(
    method: &Method,
    headers: &HeaderMap,
    raw: Option<String>,
    body: Body,
    limit: usize,
) -> Result<Params, ApiError> {
    let mut text = raw.unwrap_or_default();
    if method == Method::POST {
        let form = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = read_limited(body, limit).await?;
        if !bytes.is_empty() {
            if !form {
                return Err(ApiError::bad_request(
                    "body",
                    "must be application/x-www-form-urlencoded",
                ));
            }
            let body = std::str::from_utf8(&bytes)
                .map_err(|_| ApiError::bad_request("body", "is not UTF-8"))?;
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str(body);
        }
    }
    Params::parse(Some(&text))
}

/// A time as Loki reads one: an integer of more than ten digits is nanoseconds, of
/// at most ten seconds; a decimal is seconds; otherwise RFC 3339.
pub(super) fn parse_time(text: &str) -> Option<Nanos> {
    let text = text.trim();
    if text.contains('.') {
        if let Ok(seconds) = text.parse::<f64>() {
            return seconds
                .is_finite()
                .then(|| (seconds * 1e9).round() as Nanos);
        }
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(if text.trim_start_matches('-').len() <= 10 {
            n as Nanos * 1_000_000_000
        } else {
            n as Nanos
        });
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(Nanos::from)
}

pub(super) fn time(params: &Params, name: &str) -> Result<Option<Nanos>, ApiError> {
    params
        .non_empty(name)
        .map(|text| {
            parse_time(text).ok_or_else(|| {
                ApiError::bad_request(
                    name,
                    format!(
                        "cannot parse {text:?}: give nanoseconds or seconds since the epoch, or RFC 3339"
                    ),
                )
            })
        })
        .transpose()
}

/// A duration: float seconds or a Prometheus duration (`15s`, `1m30s`, `250ms`), in
/// nanoseconds.
pub(super) fn parse_duration_param(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        return (nanos.is_finite() && nanos.abs() < i64::MAX as f64).then_some(nanos as i64);
    }
    parse_duration(text)
}

pub(super) fn duration(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .non_empty(name)
        .map(|text| {
            parse_duration_param(text).ok_or_else(|| {
                ApiError::bad_request(name, format!("cannot parse {text:?} to a valid duration"))
            })
        })
        .transpose()
}

/// Queries look back an hour by default, label and series lookups six (as in Loki).
pub(super) const QUERY_LOOKBACK: i64 = 3_600_000_000_000;
pub(super) const METADATA_LOOKBACK: i64 = 6 * QUERY_LOOKBACK;

/// `[start, end)` of a request in nanoseconds: `end` defaults to now, `start` to
/// `since` (default `lookback`) before `end` or now, whichever is earlier.
pub(super) fn bounds(params: &Params, lookback: i64) -> Result<(Nanos, Nanos), ApiError> {
    let now = now();
    let end = time(params, "end")?.unwrap_or(now);
    let since = duration(params, "since")?.unwrap_or(lookback);
    let start = match time(params, "start")? {
        Some(start) => start,
        None => end.min(now) - Nanos::from(since),
    };
    if end < start {
        return Err(ApiError::bad_request(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

pub(super) fn now() -> Nanos {
    Nanos::from(logbook_core::Timestamp::now().micros()) * NANOS_PER_MICRO
}

/// The first microsecond at or after an instant: records are stamped in
/// microseconds, so `ts * 1000 >= t` is `ts >= micros_ceil(t)`.
pub(super) fn micros_ceil(nanos: Nanos) -> i64 {
    let micros =
        nanos.div_euclid(NANOS_PER_MICRO) + Nanos::from(nanos.rem_euclid(NANOS_PER_MICRO) != 0);
    micros.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

pub(super) fn limit(params: &Params, default: u64, max: u64) -> Result<u64, ApiError> {
    let limit = params
        .parsed::<u64>("limit", "a positive integer")?
        .unwrap_or(default);
    if limit == 0 {
        return Err(ApiError::bad_request(
            "limit",
            "limit must be a positive value",
        ));
    }
    if limit > max {
        return Err(ApiError::bad_request(
            "limit",
            format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({limit} > {max})"
            ),
        ));
    }
    Ok(limit)
}

/// `forward` (oldest first) or `backward` (the default, newest first).
pub(super) fn forward(params: &Params) -> Result<bool, ApiError> {
    match params
        .non_empty("direction")
        .map(|d| d.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("backward") => Ok(false),
        Some("forward") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "direction",
            format!("invalid direction '{other}'"),
        )),
    }
}

/// Whether the client asked for labels in categories (`X-Loki-Response-Encoding-Flags:
/// categorize-labels`), as Grafana does: structured metadata and parsed labels then
/// travel beside each line instead of splitting streams.
pub(super) fn categorize_labels(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|flag| flag.trim() == "categorize-labels")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_loki() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(
            parse_time("1700000000123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.000000001Z"),
            Some(1_700_000_000_000_000_001)
        );
        assert_eq!(parse_time("soon"), None);
        assert_eq!(micros_ceil(1_001), 2);
        assert_eq!(micros_ceil(1_000), 1);
        assert_eq!(parse_duration_param("15000ms"), Some(15_000_000_000));
        assert_eq!(parse_duration_param("1.5"), Some(1_500_000_000));
        assert_eq!(parse_duration_param("x"), None);
    }
}
