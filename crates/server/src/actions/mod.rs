//! Actions as every API drives them: creation, lifecycle moves, cancel, retry, logs
//! and listing, with tenancy and the `event` record each change leaves behind. The
//! native API and the Docker Cloud dialect both call these, so the rules and the
//! audit trail are the same whichever way an action is touched. Log lines, and
//! following them live, are in [`logs`].

mod logs;

pub use logs::{append_logs, follow_logs, LogFeed};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::scoped;
use crate::state::AppState;
use logbook_core::{Action, ActionState, Kind, Level, NewAction, NewRecord, Role, Timestamp};
use logbook_store::{ActionEvent, ActionQuery};
use serde_json::{json, Map, Value};

/// The `category` and `object_type` of the event records actions leave.
pub const EVENT_CATEGORY: &str = "action";

/// Where an action lives: the URI every API names it by (its `resource_uri`, and
/// what `retry_of` points to), the Docker Cloud document's form.
pub fn resource_uri(uuid: &str) -> String {
    format!("/api/audit/v1/action/{uuid}/")
}

/// Starts tracking an operation in the caller's domain (or one it may name).
pub async fn create(
    state: &AppState,
    principal: &Principal,
    mut new: NewAction,
) -> Result<Action, ApiError> {
    principal.require_write()?;
    new.domain_id = Some(principal.write_domain(new.domain_id.as_deref(), "domain_id")?);
    if new.user.is_none() {
        new.user = Some(principal.name.clone());
    }
    // An operation reported as already finished has finished by now at the latest.
    if new.state.is_some_and(ActionState::is_final) && new.end_date.is_none() {
        new.end_date = Some(Timestamp::now());
    }
    let event = event_record(principal, "create", None);
    Ok(state.store.create_action_recorded(new, event).await?)
}

/// Moves an action along its lifecycle; an illegal move is a 409 and changes nothing
/// (the store checks and applies it in one transaction).
pub async fn transition(
    state: &AppState,
    principal: &Principal,
    uuid: &str,
    to: ActionState,
    end_date: Option<Timestamp>,
) -> Result<Action, ApiError> {
    principal.require_write()?;
    let before = scoped::action(state, principal, uuid).await?;
    apply(state, principal, &before, to, end_date).await
}

async fn apply(
    state: &AppState,
    principal: &Principal,
    before: &Action,
    to: ActionState,
    end_date: Option<Timestamp>,
) -> Result<Action, ApiError> {
    let event = event_record(principal, "update", Some(before.state));
    Ok(state
        .store
        .transition_action_recorded(&before.uuid, to, end_date, event)
        .await?)
}

/// Cancel and retry are requests a user makes about actions of their own domain,
/// not writes of platform data: every role but the read-only auditor may ask.
fn require_may_request(principal: &Principal) -> Result<(), ApiError> {
    if principal.role == Role::Auditor {
        Err(ApiError::forbidden(
            "the auditor role cannot cancel or retry actions",
        ))
    } else {
        Ok(())
    }
}

/// A user's request to stop an operation: only Pending or In progress actions the
/// platform marked cancelable; they move to Canceling and the platform learns of it
/// from the event record.
pub async fn cancel(
    state: &AppState,
    principal: &Principal,
    uuid: &str,
) -> Result<Action, ApiError> {
    require_may_request(principal)?;
    let action = scoped::action(state, principal, uuid).await?;
    action.request_cancel()?;
    apply(state, principal, &action, ActionState::Canceling, None).await
}

/// A user's request to run a finished operation again: a new Pending action linked
/// to the original (`retry_of`), which stays as it was.
pub async fn retry(
    state: &AppState,
    principal: &Principal,
    uuid: &str,
) -> Result<Action, ApiError> {
    require_may_request(principal)?;
    let original = scoped::action(state, principal, uuid).await?;
    let mut again = original.request_retry(Timestamp::now())?;
    again.user = Some(principal.name.clone());
    let event = event_record(principal, "retry", None);
    Ok(state.store.create_action_recorded(again, event).await?)
}

/// Lists what the caller may read. With `related_to` (an object URI) the actions on
/// that object, its ancestors and its descendants are included, as far as the
/// object registry knows the tree; an unregistered URI matches only itself.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    mut query: ActionQuery,
    related_to: Option<&str>,
) -> Result<(Vec<Action>, u64), ApiError> {
    query.domains = principal.readable_domains();
    if let Some(uri) = related_to {
        let mut uris = vec![uri.to_string()];
        let object = scoped::visible(principal, state.store.find_object_by_uri(uri).await?);
        if let Some(object) = object {
            for related in state.store.related_objects(&object.key).await? {
                if principal.may_read(&related) {
                    uris.extend(related.uri);
                }
            }
        }
        uris.sort();
        uris.dedup();
        query.objects = uris;
    }
    Ok(state.store.list_actions(&query).await?)
}

/// The `event` record an action change leaves, so that it shows up in every dialect,
/// stream and export like any other event. The store writes it in the same
/// transaction as the change: both happen or neither does.
fn event_record(principal: &Principal, verb: &str, previous: Option<ActionState>) -> ActionEvent {
    let (user, user_id, verb) = (
        principal.name.clone(),
        principal.user_id.to_string(),
        verb.to_string(),
    );
    Box::new(move |action: &Action| {
        let mut record = NewRecord::new(Kind::Event);
        record.ts = Some(Timestamp::now());
        record.level = Some(match action.state {
            ActionState::Failed => Level::Error,
            ActionState::Canceling | ActionState::Canceled => Level::Warn,
            _ => Level::Info,
        });
        record.category = Some(EVENT_CATEGORY.into());
        record.source = Some("logbook".into());
        record.object_type = Some(EVENT_CATEGORY.into());
        record.object_id = Some(action.uuid.clone());
        record.status = Some(action.state.name().into());
        record.user = Some(user.clone());
        record.user_id = Some(user_id.clone());
        record.domain_id = action.domain_id.clone();
        record.message = Some(match previous {
            Some(from) => format!(
                "action {} {}: {from} -> {}",
                action.action, action.uuid, action.state
            ),
            None => format!("action {} {}: {}", action.action, action.uuid, action.state),
        });
        record.data = Some(event_data(action, previous));
        record.action = Some(verb.clone());
        record
    })
}

/// The `data` of an action's event record; streams rebuild their messages from it.
pub fn event_data(action: &Action, previous: Option<ActionState>) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("uuid".into(), json!(action.uuid));
    data.insert("state".into(), json!(action.state.name()));
    data.insert("object".into(), json!(action.object));
    data.insert("action".into(), json!(action.action));
    data.insert("start_date".into(), json!(action.start_date.rfc3339()));
    data.insert(
        "end_date".into(),
        json!(action.end_date.map(Timestamp::rfc3339)),
    );
    if let Some(from) = previous {
        data.insert("previous_state".into(), json!(from.name()));
    }
    if let Some(original) = &action.retry_of {
        data.insert("retry_of".into(), json!(original));
    }
    data
}
