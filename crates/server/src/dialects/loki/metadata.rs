//! What Grafana's label browser, autocompletion and query-size hint ask: label
//! names, the values of one label, the streams (`series`) and the size of a
//! selection (`index/stats`), within a time range and optionally a selector; and
//! the build information and readiness probes.

use super::labels::{names_of, stream_field, stream_fields, STREAM_LABELS};
use super::lines::{resolve_open, Span};
use super::logql::{Expr, LogQuery};
use super::params::{self, micros_ceil, Form};
use super::plan::{plan, Selection};
use super::query::{parse_query, regex_error};
use super::{Context, LokiError};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logbook_core::query::{Comparison, Scalar};
use logbook_core::{Condition, Field, Query};
use logbook_store::GroupQuery;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Distinct streams one `series` answer lists at most.
const MAX_STREAMS: usize = 10_000;

/// The time range of a request and its optional selector, read before any await
/// (parameters are not shared across tasks).
fn request_of(params: &Params, selector: &str) -> Result<(Span, Option<String>), ApiError> {
    let (start, end) = params::bounds(params, params::METADATA_LOOKBACK)?;
    let span = Span {
        start: micros_ceil(start),
        end: micros_ceil(end),
    };
    let selector = params
        .get(selector)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string);
    Ok((span, selector))
}

/// The conditions of a request's time range and `query` selector.
async fn requested(ctx: &Context<'_>, params: Params) -> Result<Vec<Condition>, ApiError> {
    let (span, selector) = request_of(&params, "query")?;
    drop(params);
    selected(ctx, span, selector.as_deref()).await
}

/// The conditions of a time range and optional selector, open matchers resolved.
async fn selected(
    ctx: &Context<'_>,
    span: Span,
    selector: Option<&str>,
) -> Result<Vec<Condition>, ApiError> {
    let mut conditions = match selector {
        None => Vec::new(),
        Some(text) => selection_of(text, ctx, span).await?.conditions,
    };
    conditions.extend(span.conditions());
    Ok(conditions)
}

/// A stream selector's conditions. Only the matchers count (as in Loki), so a
/// pipeline after them changes nothing.
async fn selection_of(text: &str, ctx: &Context<'_>, span: Span) -> Result<Selection, ApiError> {
    let query = match parse_query(Some(text))? {
        Expr::Log(query) => query,
        Expr::Metric(_) => {
            return Err(ApiError::bad_request(
                "query",
                "a stream selector is needed here, such as {source=\"api\"}",
            ))
        }
    };
    let mut selection = plan(&LogQuery {
        matchers: query.matchers,
        stages: Vec::new(),
    })
    .map_err(regex_error)?;
    resolve_open(ctx, &mut selection, span).await?;
    Ok(selection)
}

fn present(field: Field) -> Condition {
    match field {
        Field::Level | Field::Kind => {
            Condition::Compare(field, Comparison::Ge, Scalar::Int(i64::MIN))
        }
        _ => Condition::Compare(field, Comparison::Gt, Scalar::Text(String::new())),
    }
}

fn success(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

/// `GET|POST /loki/api/v1/labels` (and the older `/label`): the stream label names
/// some selected record has in the range.
pub(super) async fn labels(
    State(state): State<AppState>,
    principal: Principal,
    Form(params): Form,
) -> Result<Json<Value>, LokiError> {
    let ctx = Context::new(&state, &principal);
    let conditions = requested(&ctx, params).await?;
    let mut names = BTreeSet::new();
    for field in stream_fields() {
        let query = ctx.scoped(conditions.iter().cloned().chain([present(field)]).collect());
        if ctx.state.store.count(&query).await? > 0 {
            names.extend(names_of(field).filter(|n| stream_field(n).is_some()));
        }
    }
    Ok(success(json!(names)))
}

/// `GET /loki/api/v1/label/{name}/values`: the values a stream label takes in the
/// range (and selector), sorted.
pub(super) async fn label_values(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Form(params): Form,
) -> Result<Json<Value>, LokiError> {
    let (span, selector) = request_of(&params, "query")?;
    drop(params);
    let ctx = Context::new(&state, &principal);
    let conditions = selected(&ctx, span, selector.as_deref()).await?;
    let Some(field) = stream_field(&name) else {
        return Ok(success(json!([])));
    };
    let groups = state
        .store
        .group(&ctx.scoped(conditions), &GroupQuery::by(&[field]))
        .await?;
    let values: BTreeSet<String> = groups
        .into_iter()
        .filter_map(|g| g.key.into_iter().next().flatten())
        .filter_map(|text| rendered_text(field, &text))
        .collect();
    Ok(success(json!(values)))
}

/// A group's text as the label shows it (levels and kinds are stored as numbers).
fn rendered_text(field: Field, text: &str) -> Option<String> {
    let value = if field.is_integer() {
        Scalar::Int(text.parse().ok()?)
    } else {
        Scalar::Text(text.to_string())
    };
    super::labels::render_value(field, &value)
}

/// `GET|POST /loki/api/v1/series?match[]=...`: the distinct label sets of the
/// streams any of the selectors selects in the range.
pub(super) async fn series(
    State(state): State<AppState>,
    principal: Principal,
    Form(params): Form,
) -> Result<Json<Value>, LokiError> {
    let ctx = Context::new(&state, &principal);
    let selectors: Vec<String> = params
        .all("match[]")
        .into_iter()
        .chain(params.all("match"))
        .map(str::to_string)
        .collect();
    let (span, _) = request_of(&params, "query")?;
    drop(params);
    if selectors.is_empty() {
        return Err(
            ApiError::bad_request("match[]", "at least one match[] selector is required").into(),
        );
    }
    let fields = stream_fields();
    let mut streams = BTreeSet::new();
    for selector in selectors {
        let conditions = selected(&ctx, span, Some(&selector)).await?;
        for group in state
            .store
            .group(&ctx.scoped(conditions), &GroupQuery::by(&fields))
            .await?
        {
            let labels = stream_of(&fields, &group.key);
            if !labels.is_empty() {
                streams.insert(labels);
            }
            if streams.len() > MAX_STREAMS {
                return Err(ApiError::bad_request(
                    "match[]",
                    format!(
                        "selects more than {MAX_STREAMS} streams; narrow the selector or the range"
                    ),
                )
                .into());
            }
        }
    }
    Ok(success(json!(streams.into_iter().collect::<Vec<_>>())))
}

/// The stream labels of a group over [`stream_fields`].
fn stream_of(fields: &[Field], key: &[Option<String>]) -> super::labels::LabelMap {
    STREAM_LABELS
        .iter()
        .filter_map(|(name, field)| {
            let i = fields.iter().position(|f| f == field)?;
            let text = key.get(i)?.as_deref()?;
            rendered_text(*field, text).map(|v| (name.to_string(), v))
        })
        .collect()
}

/// `GET|POST /loki/api/v1/index/stats?query=...`: streams and lines exactly; bytes
/// estimated from the newest lines (Logbook keeps no chunks, so `chunks` counts
/// streams).
pub(super) async fn index_stats(
    State(state): State<AppState>,
    principal: Principal,
    Form(params): Form,
) -> Result<Json<Value>, LokiError> {
    let ctx = Context::new(&state, &principal);
    let conditions = requested(&ctx, params).await?;
    let query = ctx.scoped(conditions);
    let entries = state.store.count(&query).await?;
    let streams = if entries == 0 {
        0
    } else {
        state
            .store
            .group(&query, &GroupQuery::by(&stream_fields()))
            .await?
            .len() as u64
    };
    let sample = state
        .store
        .query(&Query {
            limit: Some(100),
            ..query.clone()
        })
        .await?
        .records;
    let sampled: u64 = sample
        .iter()
        .map(|r| r.message.as_ref().map_or(0, |m| m.len() as u64))
        .sum();
    let bytes = if sample.is_empty() {
        0
    } else {
        sampled * entries / sample.len() as u64
    };
    Ok(Json(json!({
        "streams": streams,
        "chunks": streams,
        "bytes": bytes,
        "entries": entries,
    })))
}

/// `GET /loki/api/v1/status/buildinfo`: the Loki API level Logbook speaks (clients
/// such as Grafana choose features by it) and Logbook's own version.
pub(super) async fn buildinfo(_principal: Principal) -> Json<Value> {
    Json(json!({
        "version": "3.0.0",
        "revision": concat!("logbook-", env!("CARGO_PKG_VERSION")),
        "branch": "logbook",
        "buildUser": "logbook",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// `GET /ready`: Loki's readiness probe. Like `/healthz` it needs no credentials and
/// says only whether the store answers.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    match state.store.count_users().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => LokiError(ApiError::from(e)).into_response(),
    }
}
