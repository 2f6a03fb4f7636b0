//! `GET /api/v1/event/wait/{type}/{id}/{state}?duration=N`: answers when the container
//! reaches `running` or `stopped`, or when the duration ends, with its info. The
//! waiting is `ObjectWatch::wait_for_state`'s; this translates the path and renders.

use super::{caller, reject_unknown, Answer};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorKind};
use crate::object_watch::Waited;
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use logbook_core::object::CONTAINER_TYPES;
use logbook_core::{Object, ObjectRef};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::time::Instant;

/// The document's default.
pub(super) const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// Longer waits are shortened to this, so a forgotten client cannot hold a request
/// (and a proxy's connection) open indefinitely.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(300);

const STATES: [&str; 2] = ["running", "stopped"];

pub(super) async fn wait(
    State(state): State<AppState>,
    principal: Result<Principal, ApiError>,
    Path((container_type, container_id, target)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Answer<Json<Value>> {
    let principal = caller(principal)?;
    if !CONTAINER_TYPES.contains(&container_type.as_str()) {
        return Err(ApiError::bad_request(
            "container_type",
            format!("{container_type:?} is not lxc or docker"),
        )
        .into());
    }
    if !STATES.contains(&target.as_str()) {
        return Err(ApiError::bad_request(
            "state",
            format!("{target:?} is not running or stopped"),
        )
        .into());
    }
    let duration = {
        let params = Params::parse(raw.as_deref())?;
        let seconds = params.parsed::<f64>("duration", "a number of seconds")?;
        reject_unknown(&params)?;
        match seconds {
            None => DEFAULT_DURATION,
            Some(s) if s.is_finite() && s >= 0.0 => {
                Duration::from_secs_f64(s.min(MAX_DURATION.as_secs_f64()))
            }
            Some(s) => {
                return Err(ApiError::bad_request(
                    "duration",
                    format!("{s} is not a number of seconds"),
                )
                .into())
            }
        }
    };
    let key = ObjectRef::new(container_type, container_id);
    let waited = state
        .object_watch
        .wait_for_state(
            state.store.notifier(),
            key.clone(),
            &target,
            Instant::now() + duration,
            state.shutdown.clone(),
            || scoped::object_or_none(&state, &principal, &key),
        )
        .await?;
    match waited {
        Waited::Reached(object) | Waited::Gave(Some(object)) => Ok(Json(info(&object))),
        Waited::Gave(None) => Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "no {} container {:?} exists",
                key.object_type, key.object_id
            ),
        )
        .into()),
    }
}

/// The document's container info; numbers the platform never reported are 0.
fn info(object: &Object) -> Value {
    let a = &object.attributes;
    let number = |name: &str| {
        a.get(name)
            .filter(|v| v.is_number())
            .cloned()
            .unwrap_or(json!(0))
    };
    let ipaddress = match a.get("ipaddress") {
        Some(Value::Array(list)) => Value::Array(list.clone()),
        Some(Value::String(one)) => json!([one]),
        _ => json!([]),
    };
    json!({
        "cpu": a.get("cpu").filter(|v| v.is_number()).cloned().unwrap_or(json!(0.0)),
        "id": object.key.object_id,
        "image": text(a, "image"),
        "ipaddress": ipaddress,
        "memory": number("memory"),
        "name": object.name.as_deref().unwrap_or(&object.key.object_id),
        "rx": number("rx"),
        "state": object.state,
        "tx": number("tx"),
        "type": object.key.object_type,
    })
}

fn text(attributes: &Map<String, Value>, name: &str) -> Value {
    attributes
        .get(name)
        .filter(|v| v.is_string())
        .cloned()
        .unwrap_or(Value::Null)
}
