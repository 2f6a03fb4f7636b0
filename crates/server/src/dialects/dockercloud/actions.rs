//! The REST half of the dialect: list (Tastypie paging and the document's filters),
//! fetch, cancel and retry.

use super::{render, DockerCloudError};
use crate::actions;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::{parse_date, parse_state, Params};
use crate::scoped;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logbook_core::Action;
use logbook_store::ActionQuery;
use serde_json::Value;

/// Page size without `limit` (Docker Cloud's), and the largest page (Tastypie's
/// `max_limit`; `limit=0` asks for it).
pub(super) const DEFAULT_LIMIT: u64 = 25;
pub(super) const MAX_LIMIT: u64 = 1000;

/// The filters the document defines, in the order they are echoed in `meta.next`.
const FILTERS: [&str; 8] = [
    "uuid",
    "state",
    "start_date__gte",
    "start_date__lte",
    "end_date__gte",
    "end_date__lte",
    "object",
    "include_related",
];

type Answer<T> = Result<T, DockerCloudError>;

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = principal?;
    let request = ListRequest::parse(raw.as_deref())?;
    let offset = request.query.offset;
    let (found, total) = actions::list(
        &state,
        &principal,
        request.query,
        request.related_to.as_deref(),
    )
    .await?;
    Ok(Json(render::list(
        &found,
        total,
        offset,
        request.limit,
        &request.filters,
    )))
}

#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn parse_list(raw: Option<&str>) -> Result<(), ApiError> {
    ListRequest::parse(raw).map(drop)
}

/// A listing's query string, read and checked before anything is looked up.
struct ListRequest {
    query: ActionQuery,
    related_to: Option<String>,
    limit: u64,
    /// The filters as given, echoed into `meta.next` and `meta.previous`.
    filters: Vec<(String, String)>,
}

impl ListRequest {
    fn parse(raw: Option<&str>) -> Result<ListRequest, ApiError> {
        let params = Params::parse(raw)?;
        let date = |name: &str| {
            params
                .non_empty(name)
                .map(|t| parse_date(name, t))
                .transpose()
        };
        let mut query = ActionQuery {
            uuids: params.list("uuid"),
            states: params
                .all("state")
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_state(s))
                .collect::<Result<_, _>>()?,
            start_from: date("start_date__gte")?,
            start_to: date("start_date__lte")?,
            end_from: date("end_date__gte")?,
            end_to: date("end_date__lte")?,
            offset: params.offset()?,
            ..ActionQuery::default()
        };
        let limit = match params.parsed::<u64>("limit", "a non-negative integer")? {
            None => DEFAULT_LIMIT,
            Some(0) => MAX_LIMIT,
            Some(n) if n > MAX_LIMIT => {
                return Err(ApiError::bad_request(
                    "limit",
                    format!("may be at most {MAX_LIMIT}"),
                ))
            }
            Some(n) => n,
        };
        query.limit = Some(limit);
        let object = params.non_empty("object").map(str::to_string);
        let related = match params
            .non_empty("include_related")
            .map(str::to_ascii_lowercase)
        {
            None => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(v) => {
                return Err(ApiError::bad_request(
                    "include_related",
                    format!("{v:?} is not true or false"),
                ))
            }
        };
        params.reject_unknown()?;
        let related_to = match object {
            Some(uri) if related => Some(uri),
            Some(uri) => {
                query.objects = vec![uri];
                None
            }
            None if related => {
                return Err(ApiError::bad_request(
                    "include_related",
                    "needs the object filter",
                ))
            }
            None => None,
        };
        let filters = FILTERS
            .iter()
            .flat_map(|name| {
                params
                    .all(name)
                    .into_iter()
                    .map(|v| (name.to_string(), v.to_string()))
            })
            .collect();
        Ok(ListRequest {
            query,
            related_to,
            limit,
            filters,
        })
    }
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(uuid): Path<String>,
) -> Answer<Json<Value>> {
    let action = scoped::action(&state, &principal?, &uuid).await?;
    Ok(Json(render::action(&action)))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(uuid): Path<String>,
) -> Answer<Response> {
    let action = actions::cancel(&state, &principal?, &uuid).await?;
    Ok(with_action_header(&action))
}

pub(super) async fn retry(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path(uuid): Path<String>,
) -> Answer<Response> {
    let action = actions::retry(&state, &principal?, &uuid).await?;
    Ok(with_action_header(&action))
}

/// The action as the body, and its URI in `X-DockerCloud-Action-URI` as the document
/// says every answer that creates or changes an action carries.
fn with_action_header(action: &Action) -> Response {
    let mut response = Json(render::action(action)).into_response();
    if let Ok(value) = HeaderValue::from_str(&actions::resource_uri(&action.uuid)) {
        response
            .headers_mut()
            .insert("x-dockercloud-action-uri", value);
    }
    response
}
