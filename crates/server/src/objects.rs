//! Objects as every API changes and reads them: a direct change by the platform
//! (with tenancy, and the `event` record it leaves in the same transaction), and
//! what an event record did to an object, so streams can show object changes from
//! the records alone (and so catch up from the store like any other stream).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::scoped;
use crate::state::AppState;
use logbook_core::object::{stored_container_change, ContainerTransition};
use logbook_core::{Kind, NewRecord, Object, ObjectRef, Record};
use logbook_store::{ObjectUpdate, ObjectWrite};
use serde_json::{Map, Value};

/// The category of the event written for a direct change to an object. Not
/// `container`: only container events drive container state.
pub const EVENT_CATEGORY: &str = "object";

/// Creates or changes an object the principal may write. An update that names no
/// domain keeps the object where it is (an admin's state change must not move a
/// tenant's object into the admin's domain); another domain's object is "not
/// found". `changed` (the fields as the client sent them) becomes the `data` of the
/// event record, committed with the change, so event views and streams see it.
pub async fn put(
    state: &AppState,
    principal: &Principal,
    key: ObjectRef,
    mut update: ObjectUpdate,
    changed: Map<String, Value>,
) -> Result<Object, ApiError> {
    principal.require_write()?;
    let existing = scoped::object_before_write(state, principal, &key).await?;
    let kept = existing.and_then(|o| o.domain_id);
    let requested = update.domain_id.as_deref().or(kept.as_deref());
    update.domain_id = Some(principal.write_domain(requested, "domain_id")?);
    update.key = Some(key.clone());
    let event = NewRecord {
        kind: Some(Kind::Event),
        category: Some(EVENT_CATEGORY.into()),
        object_type: Some(key.object_type.clone()),
        object_id: Some(key.object_id.clone()),
        user: Some(principal.name.clone()),
        user_id: Some(principal.user_id.to_string()),
        domain_id: update.domain_id.clone(),
        message: Some(format!(
            "object {}/{} updated",
            key.object_type, key.object_id
        )),
        data: Some(changed),
        ..NewRecord::default()
    };
    state
        .store
        .append_with_objects(vec![event].into(), vec![ObjectWrite::Put(Box::new(update))])
        .await?;
    // Not found if a concurrent destroy event removed it between the write and now.
    scoped::object(state, principal, &key).await
}

/// What an event record did to an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEvent {
    pub key: ObjectRef,
    /// The state it set, if it set one.
    pub state: Option<String>,
    /// The object was removed (a container's `destroy`).
    pub removed: bool,
}

/// The object change a record stands for: a direct change (category `object`) or
/// a container event; `None` for any other record.
pub fn event_of(record: &Record) -> Option<ObjectEvent> {
    if record.kind != Kind::Event {
        return None;
    }
    if record.category.as_deref() == Some(EVENT_CATEGORY) {
        let key = ObjectRef::new(record.object_type.clone()?, record.object_id.clone()?);
        let state = record
            .data
            .as_ref()
            .and_then(|d| d.get("state"))
            .and_then(Value::as_str)
            .map(str::to_string);
        return Some(ObjectEvent {
            key,
            state,
            removed: false,
        });
    }
    let change = stored_container_change(record)?;
    Some(match change.transition {
        ContainerTransition::Destroy => ObjectEvent {
            key: change.key,
            state: None,
            removed: true,
        },
        ContainerTransition::State(state) => ObjectEvent {
            key: change.key,
            state: Some(state.to_string()),
            removed: false,
        },
    })
}

/// An object change as a principal's stream shows it: what the event did, the
/// object as the registry holds it now and its parent's URI.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenChange {
    pub event: ObjectEvent,
    /// `None` once the object is gone.
    pub current: Option<Object>,
    pub parent_uri: Option<String>,
}

/// The object change `record` stands for, as `principal` may see it; `None` for a
/// record that changes no object, or one about an object of a domain the principal
/// may not read (an event the registry refused to apply).
pub async fn seen_change(
    state: &AppState,
    principal: &Principal,
    record: &Record,
) -> Result<Option<SeenChange>, ApiError> {
    let Some(event) = event_of(record) else {
        return Ok(None);
    };
    if event.removed {
        return Ok(Some(SeenChange {
            event,
            current: None,
            parent_uri: None,
        }));
    }
    let current = state.store.get_object(&event.key).await?;
    if current.as_ref().is_some_and(|o| !principal.may_read(o)) {
        return Ok(None);
    }
    let parent_uri = match current.as_ref().and_then(|o| o.parent.as_ref()) {
        Some(parent) => scoped::object_or_none(state, principal, parent)
            .await?
            .and_then(|p| p.uri),
        None => None,
    };
    Ok(Some(SeenChange {
        event,
        current,
        parent_uri,
    }))
}
