//! `GET|POST /loki/api/v1/query_range` and `/loki/api/v1/query`: parse the LogQL,
//! evaluate it, answer in Loki's envelope (`status`, `data.resultType`, `result`,
//! `stats`).

use super::lines::{self, Span, Take};
use super::logql::{self, Expr};
use super::metric::{self, Steps};
use super::params::{self, micros_ceil, Form, Nanos};
use super::plan::plan;
use super::stats::Stats;
use super::{Context, LokiError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use logbook_core::Timestamp;
use serde_json::{json, Value};

/// Lines a log query returns unless told otherwise, and at most (the native API's).
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 10_000;
/// Points per series a range query may ask for (Loki's limit).
const MAX_POINTS: i64 = 11_000;

pub(super) async fn query_range(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<Json<Value>, LokiError> {
    let expr = parse_query(params.get("query"))?;
    let (start, end) = params::bounds(&params, params::QUERY_LOOKBACK)?;
    let limit = params::limit(&params, DEFAULT_LIMIT, MAX_LIMIT)?;
    let forward = params::forward(&params)?;
    let step = params::duration(&params, "step")?;
    let interval = params::duration(&params, "interval")?.unwrap_or(0);
    let ctx = Context::new(&state, &principal);
    let mut stats = Stats::default();
    let (result_type, result) = match &expr {
        Expr::Log(query) => {
            if interval < 0 {
                return Err(ApiError::bad_request("interval", "must not be negative").into());
            }
            let selection = plan(query).map_err(regex_error)?;
            let span = Span {
                start: micros_ceil(start),
                end: micros_ceil(end),
            };
            let take = Take {
                forward,
                limit,
                interval: interval / 1000,
            };
            let entries = lines::select(&ctx, selection, span, take, &mut stats).await?;
            (
                "streams",
                lines::streams(&entries, params::categorize_labels(&headers)),
            )
        }
        Expr::Metric(metric_expr) => {
            let steps = range_steps(start, end, step)?;
            let value = metric::evaluate(&ctx, metric_expr, steps, &mut stats).await?;
            ("matrix", metric::matrix(value, steps))
        }
    };
    Ok(Json(envelope(result_type, result, &stats, &headers)))
}

pub(super) async fn query(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<Json<Value>, LokiError> {
    let expr = parse_query(params.get("query"))?;
    let at = params::time(&params, "time")?.unwrap_or_else(params::now);
    let _ = params::limit(&params, DEFAULT_LIMIT, MAX_LIMIT)?;
    let _ = params::forward(&params)?;
    let Expr::Metric(metric_expr) = &expr else {
        return Err(ApiError::bad_request(
            "query",
            "log queries are not supported as an instant query type, please change your query to a range query type",
        )
        .into());
    };
    let at = micros_ceil(at);
    let steps = Steps {
        first: at,
        step: 0,
        count: 1,
    };
    let ctx = Context::new(&state, &principal);
    let mut stats = Stats::default();
    let value = metric::evaluate(&ctx, metric_expr, steps, &mut stats).await?;
    let (result_type, result) = metric::instant(value, Timestamp(at));
    Ok(Json(envelope(result_type, result, &stats, &headers)))
}

pub(super) fn parse_query(text: Option<&str>) -> Result<Expr, ApiError> {
    let text = text
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("query", "query parameter is required"))?;
    logql::parse(text).map_err(|e| ApiError::bad_request("query", e.to_string()))
}

pub(super) fn regex_error(e: regex::Error) -> ApiError {
    ApiError::bad_request("query", format!("error parsing regexp: {e}"))
}

/// The evaluation instants of a range query: multiples of the step from `start` to
/// `end` (as Loki's query frontend aligns them), the step defaulting to a 250th of
/// the range (at least a second).
pub(super) fn range_steps(start: Nanos, end: Nanos, step: Option<i64>) -> Result<Steps, ApiError> {
    let step = match step {
        Some(step) => step,
        None => (((end - start) / 250_000_000_000).max(1) * 1_000_000_000) as i64,
    };
    if step <= 0 {
        return Err(ApiError::bad_request(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Loki resolves steps to the millisecond.
    let step_micros = (step / 1_000_000).max(1) * 1000;
    let first = micros_ceil(start).div_euclid(step_micros) * step_micros;
    let last = micros_ceil(end).div_euclid(step_micros) * step_micros;
    let points = (last - first) / step_micros + 1;
    if points > MAX_POINTS {
        return Err(ApiError::bad_request(
            "step",
            format!(
                "exceeded maximum resolution of {MAX_POINTS} points per timeseries. Try increasing the value of the step parameter"
            ),
        ));
    }
    Ok(Steps {
        first,
        step: step_micros,
        count: points.max(1) as usize,
    })
}

/// Loki's success envelope. With categorised labels it says so in `encodingFlags`.
fn envelope(result_type: &str, result: Value, stats: &Stats, headers: &HeaderMap) -> Value {
    let mut data = json!({ "resultType": result_type, "result": result, "stats": stats.to_json() });
    if params::categorize_labels(headers) {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    json!({ "status": "success", "data": data })
}
