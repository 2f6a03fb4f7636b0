//! Core values in Docker Cloud's shapes: the action object, the Tastypie list
//! envelope, log frames and event stream messages.

use crate::actions::resource_uri as action_uri;
use crate::objects::SeenChange;
use logbook_core::{Action, ObjectRef, Record, Timestamp};
use logbook_store::ActionLogLine;
use serde_json::{json, Value};

/// The document's action object. Keys the client uses as methods or properties
/// (`pk`, `logs`, `cancel`, `retry`, `endpoint`, ...) must never appear here.
/// `can_be_canceled`/`can_be_retried` say whether the user may do it now, so a
/// finished action is not offered for cancellation.
pub(super) fn action(action: &Action) -> Value {
    json!({
        "resource_uri": action_uri(&action.uuid),
        "uuid": action.uuid,
        "object": action.object.clone().unwrap_or_default(),
        "action": action.action,
        "method": action.method,
        "path": action.path,
        "user": action.user,
        "user_agent": action.user_agent,
        "start_date": action.start_date.rfc2822(),
        "end_date": action.end_date.map(Timestamp::rfc2822),
        "state": action.state.name(),
        "ip": action.ip,
        "location": action.location,
        "is_user_action": action.is_user_action,
        "can_be_canceled": action.cancelable(),
        "can_be_retried": action.retryable(),
        "retry_of": action.retry_of.as_deref().map(action_uri),
    })
}

/// `{"meta": {...}, "objects": [...]}`; `next`/`previous` repeat the request's own
/// filters with the neighbouring page.
pub(super) fn list(
    actions: &[Action],
    total: u64,
    offset: u64,
    limit: u64,
    filters: &[(String, String)],
) -> Value {
    let page = |offset: u64| {
        let mut pairs: Vec<(String, String)> = filters.to_vec();
        pairs.push(("limit".into(), limit.to_string()));
        pairs.push(("offset".into(), offset.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("/api/audit/v1/action/?{query}")
    };
    let next = (offset + limit < total && limit > 0).then(|| page(offset + limit));
    let previous = (offset > 0).then(|| page(offset.saturating_sub(limit)));
    json!({
        "meta": {
            "limit": limit,
            "offset": offset,
            "next": next,
            "previous": previous,
            "total_count": total,
        },
        "objects": actions.iter().map(action).collect::<Vec<_>>(),
    })
}

/// One line of an action's log as a WebSocket text frame.
pub(super) fn log_frame(line: &ActionLogLine) -> String {
    json!({
        "type": "log",
        "log": line.line,
        "timestamp": line.ts.epoch_seconds(),
    })
    .to_string()
}

/// The event stream message for an action's event record (written by
/// `crate::actions`), or `None` for any other record.
pub(super) fn action_event(record: &Record) -> Option<String> {
    if record.category.as_deref() != Some(crate::actions::EVENT_CATEGORY)
        || record.object_type.as_deref() != Some(crate::actions::EVENT_CATEGORY)
    {
        return None;
    }
    let uuid = record.object_id.as_deref()?;
    let data = record.data.as_ref();
    let parents: Vec<Value> = data
        .and_then(|d| d.get("object"))
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .map(|o| vec![json!(o)])
        .unwrap_or_default();
    // Docker Cloud knew only create, update and delete; a retry creates an action.
    let verb = match record.action.as_deref() {
        Some("update") => "update",
        _ => "create",
    };
    Some(
        json!({
            "type": "action",
            "action": verb,
            "resource_uri": action_uri(uuid),
            "state": record.status,
            "uuid": uuid,
            "parents": parents,
            "datetime": record.ts.rfc2822(),
        })
        .to_string(),
    )
}

/// The event stream message for a change to a registered object: its identity and
/// the state the change set (or its current one), with its URI and its parent's as
/// the registry holds them.
pub(super) fn object_event(seen: &SeenChange, at: Timestamp) -> String {
    let current = seen.current.as_ref();
    let state = seen
        .event
        .state
        .clone()
        .or_else(|| current.and_then(|o| o.state.clone()));
    json!({
        "type": seen.event.key.object_type,
        "action": "update",
        "resource_uri": current.and_then(|o| o.uri.clone()).unwrap_or_default(),
        "state": state,
        "uuid": seen.event.key.object_id,
        "parents": seen.parent_uri.iter().collect::<Vec<_>>(),
        "datetime": at.rfc2822(),
    })
    .to_string()
}

/// The event stream message for a removed object (only its identity is left).
pub(super) fn object_removed(key: &ObjectRef, at: Timestamp) -> String {
    json!({
        "type": key.object_type,
        "action": "delete",
        "resource_uri": "",
        "state": null,
        "uuid": key.object_id,
        "parents": [],
        "datetime": at.rfc2822(),
    })
    .to_string()
}
