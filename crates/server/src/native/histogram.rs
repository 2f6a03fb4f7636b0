//! `GET /logbook/v1/histogram`: counts of matching records per time bucket, optionally
//! split by one field, for time histograms (the web UI, Grafana's logs volume) and
//! dashboards. Every bucket of the range is present, empty ones with a count of 0, so
//! a client can draw the series without filling gaps itself.

use super::filters;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use logbook_core::histogram::{Bucket, MAX_BUCKETS};
use logbook_core::time::parse_duration;
use logbook_core::{Field, Histogram, Timestamp};
use serde_json::{json, Map, Value};

/// Buckets of an automatic interval: fine enough to see a burst, few enough to draw.
const AUTOMATIC_BUCKETS: i64 = 100;
/// The range when the client gives no `since`.
const DEFAULT_RANGE_MICROS: i64 = 24 * 3_600_000_000;

#[utoipa::path(
    get, path = "/logbook/v1/histogram", tag = "records",
    params(super::openapi::RecordFilters,
        ("interval" = Option<String>, Query, description = "Bucket width: 250ms, 30s, 5m, 1h, 1d or seconds (default: about 60 buckets over the range)"),
        ("by" = Option<String>, Query, description = "Count each bucket by this field's values"),
    ),
    responses((status = 200, description = "Counts per time bucket (default range: the last 24 h)", body = super::openapi::Histogram))
)]
pub(super) async fn histogram(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::strict(raw.as_deref())?;
    let mut query = filters::filters(&params)?;
    let until = filters::timestamp(&params, "until")?;
    let since = filters::timestamp(&params, "since")?;
    let interval = params
        .non_empty("interval")
        .map(parse_interval)
        .transpose()?;
    let by = params
        .non_empty("by")
        .map(|name| {
            Field::parse(name.trim())
                .ok_or_else(|| ApiError::bad_request("by", format!("unknown field {name:?}")))
        })
        .transpose()?;
    params.reject_unknown()?;

    let until = match until {
        Some(until) => until,
        None => {
            let now = Timestamp::now();
            query = query.until(now);
            now
        }
    };
    let since = match since {
        Some(since) => since,
        None => {
            let since = Timestamp((until.micros() - DEFAULT_RANGE_MICROS).max(0));
            query = query.since(since);
            since
        }
    };
    if since > until {
        return Err(ApiError::bad_request("since", "is after until"));
    }
    let interval =
        interval.unwrap_or_else(|| Histogram::automatic_interval(since, until, AUTOMATIC_BUCKETS));
    let histogram = Histogram::new(interval, by)?;
    let first = histogram.bucket_start(since).micros();
    let buckets = (until.micros() - first) / interval + 1;
    if buckets > MAX_BUCKETS {
        return Err(ApiError::bad_request(
            "interval",
            format!("gives {buckets} buckets over the range; at most {MAX_BUCKETS}"),
        ));
    }

    let counted = state
        .store
        .histogram(&principal.scope(query), &histogram)
        .await?;
    Ok(Json(render(
        &histogram, first, buckets, &counted, since, until,
    )))
}

/// A duration with a unit (`250ms`, `30s`, `5m`, `1h`, `1d`) or a number of seconds.
fn parse_interval(text: &str) -> Result<i64, ApiError> {
    let micros = match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => Some((seconds * 1e6).round() as i64),
        Ok(_) => None,
        Err(_) => parse_duration(text).and_then(|d| i64::try_from(d.as_micros()).ok()),
    };
    micros.filter(|m| *m > 0).ok_or_else(|| {
        ApiError::bad_request(
            "interval",
            format!("{text:?} is not a positive duration (e.g. 30s, 5m, 1h) or seconds"),
        )
    })
}

fn render(
    histogram: &Histogram,
    first: i64,
    buckets: i64,
    counted: &[Bucket],
    since: Timestamp,
    until: Timestamp,
) -> Value {
    let interval = histogram.interval_micros();
    let mut rows: Vec<(u64, Map<String, Value>)> = vec![(0, Map::new()); buckets as usize];
    let mut total = 0u64;
    for bucket in counted {
        let Some(row) = usize::try_from((bucket.start.micros() - first) / interval)
            .ok()
            .and_then(|i| rows.get_mut(i))
        else {
            continue;
        };
        row.0 += bucket.count;
        total += bucket.count;
        if let Some(field) = histogram.by() {
            let name = bucket
                .key
                .as_ref()
                .map(|k| field.render_value(k))
                .unwrap_or_default();
            row.1.insert(name, Value::from(bucket.count));
        }
    }
    let buckets: Vec<Value> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (count, by))| {
            let mut bucket = Map::new();
            let start = Timestamp(first + i as i64 * interval);
            bucket.insert("ts".into(), Value::from(start.rfc3339()));
            bucket.insert("count".into(), Value::from(count));
            if histogram.by().is_some() {
                bucket.insert("by".into(), Value::Object(by));
            }
            Value::Object(bucket)
        })
        .collect();
    json!({
        "since": since.rfc3339(),
        "until": until.rfc3339(),
        "interval_seconds": interval as f64 / 1e6,
        "by": histogram.by().map(Field::name),
        "total": total,
        "buckets": buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_interval;

    #[test]
    fn intervals_take_units_or_seconds() {
        assert_eq!(parse_interval("5m").ok(), Some(300_000_000));
        assert_eq!(parse_interval("250ms").ok(), Some(250_000));
        assert_eq!(parse_interval("1.5").ok(), Some(1_500_000));
        for bad in ["0", "-3", "soon", "NaN", "5y"] {
            let error = parse_interval(bad).expect_err(bad);
            assert_eq!(error.field.as_deref(), Some("interval"), "{bad}");
        }
    }
}
