//! `GET /logbook/v1/objects`: the object registry listed, for browsing its tree: the
//! roots (`root=true`), the children of one object (`parent_type` and `parent_id`),
//! or every object, optionally of some types and states; by type, then id. `uri`
//! finds the object an action names.

use super::objects::object_json;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use logbook_core::ObjectRef;
use logbook_store::ObjectQuery;
use serde_json::{json, Value};

pub(super) const DEFAULT_LIMIT: u64 = 100;
pub(super) const MAX_LIMIT: u64 = 1000;

#[utoipa::path(
    get, path = "/logbook/v1/objects", tag = "objects",
    params(
        ("type" = Option<String>, Query, description = "Object types (comma list)"),
        ("state" = Option<String>, Query, description = "States (comma list)"),
        ("parent_type" = Option<String>, Query, description = "Children of this parent (with parent_id)"),
        ("parent_id" = Option<String>, Query, description = "Children of this parent (with parent_type)"),
        ("root" = Option<bool>, Query, description = "Only objects without a parent"),
        ("uri" = Option<String>, Query, description = "The object with this URI"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("offset" = Option<u64>, Query, maximum = 9223372036854775807_u64),
    ),
    responses((status = 200, description = "A page of objects", body = super::openapi::ObjectList))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::strict(raw.as_deref())?;
    let parent = match (
        params.non_empty("parent_type"),
        params.non_empty("parent_id"),
    ) {
        (Some(t), Some(i)) => Some(Some(ObjectRef::new(t, i))),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::bad_request(
                "parent_id",
                "is required with parent_type",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "parent_type",
                "is required with parent_id",
            ))
        }
    };
    let root = params
        .parsed::<bool>("root", "true or false")?
        .unwrap_or(false);
    if root && parent.is_some() {
        return Err(ApiError::bad_request(
            "root",
            "cannot be combined with parent_type and parent_id",
        ));
    }
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let query = ObjectQuery {
        types: params.list("type"),
        states: params.list("state"),
        parent: if root { Some(None) } else { parent },
        domains: principal.readable_domains(),
        offset: params.offset()?,
        limit: Some(limit),
    };
    let uri = params.non_empty("uri").map(str::to_string);
    params.reject_unknown()?;
    let (objects, total) = match uri {
        // An action names its object by URI; the registry indexes it.
        Some(uri) => {
            let found: Vec<_> =
                scoped::visible(&principal, state.store.find_object_by_uri(&uri).await?)
                    .into_iter()
                    .collect();
            let total = found.len() as u64;
            (found, total)
        }
        None => state.store.list_objects(&query).await?,
    };
    Ok(Json(json!({
        "objects": objects.iter().map(object_json).collect::<Vec<_>>(),
        "total": total,
        "offset": query.offset,
        "limit": limit,
    })))
}
