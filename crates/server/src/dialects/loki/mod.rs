//! The Loki query API (`/loki/api/v1/...`) for Grafana's Loki data source and
//! Loki's clients: LogQL parsed properly ([`logql`]), translated onto the core query
//! ([`plan`]) and answered from the store's count, group and histogram paths where
//! they are exact, in memory ([`pipeline`]) where not. See `docs/loki.md`.
//!
//! Errors keep the status `crate::error` gives them and take Loki's body: plain
//! text (`parse error at line 1, col 5: ...`), which Grafana shows as it is.

pub mod logql;

mod labels;
mod lines;
mod metadata;
mod metric;
mod params;
mod pipeline;
mod plan;
mod query;
mod stats;
mod tail;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use logbook_core::{Condition, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route("/loki/api/v1/query", get(query::query).post(query::query))
        .route(
            "/loki/api/v1/labels",
            get(metadata::labels).post(metadata::labels),
        )
        .route(
            "/loki/api/v1/label",
            get(metadata::labels).post(metadata::labels),
        )
        .route(
            "/loki/api/v1/label/{name}/values",
            get(metadata::label_values),
        )
        .route(
            "/loki/api/v1/series",
            get(metadata::series).post(metadata::series),
        )
        .route(
            "/loki/api/v1/index/stats",
            get(metadata::index_stats).post(metadata::index_stats),
        )
        .route("/loki/api/v1/tail", get(tail::tail))
        .route("/loki/api/v1/status/buildinfo", get(metadata::buildinfo))
        .route("/ready", get(metadata::ready))
}

/// A range query's parameters, each read as `query_range` reads it, and its plan.
#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn parse_query(raw: Option<&str>) -> Result<(), ApiError> {
    let params = crate::params::Params::parse(raw)?;
    let expr = query::parse_query(params.get("query"))?;
    let (start, end) = params::bounds(&params, params::QUERY_LOOKBACK)?;
    params::limit(&params, 100, 10_000)?;
    params::forward(&params)?;
    let step = params::duration(&params, "step")?;
    params::duration(&params, "interval")?;
    match &expr {
        logql::Expr::Log(log) => plan::plan(log).map(drop).map_err(query::regex_error),
        logql::Expr::Metric(_) => query::range_steps(start, end, step).map(drop),
    }
}

/// Plans a log query as `query_range` would (for `crate::fuzzing`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn plan_for_fuzzing(expr: &logql::Expr) {
    if let logql::Expr::Log(log) = expr {
        let _ = plan::plan(log);
    }
}

/// One request's view of the store: every read is scoped to what the caller may see.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub state: &'a AppState,
    pub principal: &'a Principal,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("principal", &self.principal.name)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    pub fn new(state: &'a AppState, principal: &'a Principal) -> Context<'a> {
        Context { state, principal }
    }

    pub fn scoped(&self, conditions: Vec<Condition>) -> Query {
        self.principal.scope(Query {
            conditions,
            ..Query::default()
        })
    }
}

/// An [`ApiError`] in Loki's body: plain text, the problem alone for the query
/// itself and prefixed by the parameter otherwise.
#[derive(Debug)]
pub struct LokiError(pub ApiError);

impl From<ApiError> for LokiError {
    fn from(e: ApiError) -> Self {
        LokiError(e)
    }
}

impl From<logbook_store::StoreError> for LokiError {
    fn from(e: logbook_store::StoreError) -> Self {
        LokiError(e.into())
    }
}

impl From<logbook_core::FieldError> for LokiError {
    fn from(e: logbook_core::FieldError) -> Self {
        LokiError(e.into())
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        let text = match self.0.field.as_deref() {
            None | Some("query") => self.0.message().to_string(),
            Some(_) => self.0.describe(),
        };
        // The shared error model decides the status and headers; only the body is ours.
        let mut response = self.0.respond_with_body(text);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}
