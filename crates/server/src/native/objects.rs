//! `PUT/GET /logbook/v1/objects/{type}/{id}`: the object registry, fed by the
//! platform directly (events also update it); the rules are `crate::objects`'.

use crate::auth::Principal;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::state::AppState;
use crate::{objects, scoped};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::Json;
use logbook_core::{Object, ObjectRef};
use logbook_store::ObjectUpdate;
use serde_json::{json, Map, Value};

#[utoipa::path(
    put, path = "/logbook/v1/objects/{object_type}/{object_id}", tag = "objects",
    params(("object_type" = String, Path), ("object_id" = String, Path)),
    request_body = super::openapi::ObjectUpdate,
    responses((status = 200, description = "The object after the change (created if new)", body = super::openapi::ManagedObject))
)]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path((object_type, object_id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    principal.require_write()?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let Value::Object(body) = parse_json(&bytes)? else {
        return Err(ApiError::bad_request("body", "must be a JSON object"));
    };
    let changed = body.clone();
    let update = update_from_json(body)?;
    let key = ObjectRef::new(object_type, object_id);
    let object = objects::put(&state, &principal, key, update, changed).await?;
    Ok(Json(object_json(&object)))
}

#[utoipa::path(
    get, path = "/logbook/v1/objects/{object_type}/{object_id}", tag = "objects",
    params(("object_type" = String, Path), ("object_id" = String, Path)),
    responses(
        (status = 200, description = "The object", body = super::openapi::ManagedObject),
        (status = 404, description = "No such object", body = super::openapi::ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path((object_type, object_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let key = ObjectRef::new(object_type, object_id);
    let object = scoped::object(&state, &principal, &key).await?;
    Ok(Json(object_json(&object)))
}

/// Reads the settable fields of an object, naming the first bad one.
pub fn update_from_json(body: Map<String, Value>) -> Result<ObjectUpdate, ApiError> {
    let mut update = ObjectUpdate::default();
    for (key, value) in body {
        match key.as_str() {
            "name" => update.name = Some(text(&key, value)?),
            "state" => update.state = Some(text(&key, value)?),
            "uri" => update.uri = Some(text(&key, value)?),
            "domain_id" => update.domain_id = Some(text(&key, value)?),
            "parent" => update.parent = Some(parent(value)?),
            "attributes" => match value {
                Value::Object(map) => update.attributes = Some(map),
                _ => return Err(ApiError::bad_request("attributes", "must be a JSON object")),
            },
            // Read-only fields, accepted so a GET answer can be PUT back.
            "type" | "id" | "updated" => {}
            _ => return Err(ApiError::bad_request(key, "unknown field")),
        }
    }
    Ok(update)
}

fn text(field: &str, value: Value) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(ApiError::bad_request(field, "must be a string")),
    }
}

fn parent(value: Value) -> Result<Option<ObjectRef>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => match (map.get("type"), map.get("id")) {
            (Some(Value::String(t)), Some(Value::String(i))) => Ok(Some(ObjectRef::new(t, i))),
            _ => Err(ApiError::bad_request(
                "parent",
                "must be {\"type\": string, \"id\": string}",
            )),
        },
        _ => Err(ApiError::bad_request(
            "parent",
            "must be {\"type\", \"id\"} or null",
        )),
    }
}

pub fn object_json(object: &Object) -> Value {
    json!({
        "type": object.key.object_type,
        "id": object.key.object_id,
        "name": object.name,
        "state": object.state,
        "parent": object.parent.as_ref().map(|p| json!({"type": p.object_type, "id": p.object_id})),
        "uri": object.uri,
        "attributes": object.attributes,
        "domain_id": object.domain_id,
        "updated": object.updated.rfc3339(),
    })
}
