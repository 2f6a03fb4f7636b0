//! The one way records enter the store from any API: tenancy is applied (each record
//! lands in the writer's domain unless it may name another), then the batch is
//! appended atomically and durably, and container events update the object registry.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use futures_util::future::join_all;
use logbook_core::object::{container_change, ContainerChange, ContainerTransition};
use logbook_core::{NewRecord, ObjectRef};
use logbook_store::{Appended, ObjectUpdate};
use std::collections::HashMap;
use tokio::sync::Mutex;

/// Serialises batches that carry container events, from their append to the last
/// registry update, so an object ends in the state of its last event by id even
/// when two requests race. Batches without container events never take it.
static CONTAINER_EVENTS: Mutex<()> = Mutex::const_new(());

/// Appends the batch for the principal. `field_prefix(i)` names record `i` in errors
/// (`[3].` for batches, empty for a single record).
pub async fn append(
    state: &AppState,
    principal: &Principal,
    mut records: Vec<NewRecord>,
    field_prefix: impl Fn(usize) -> String,
) -> Result<Appended, ApiError> {
    principal.require_write()?;
    for (i, record) in records.iter_mut().enumerate() {
        let field = format!("{}domain_id", field_prefix(i));
        record.domain_id = Some(principal.write_domain(record.domain_id.as_deref(), &field)?);
    }
    let changes: Vec<(ContainerChange, Option<String>)> = records
        .iter()
        .filter_map(|r| container_change(r).map(|c| (c, r.domain_id.clone())))
        .collect();
    if changes.is_empty() {
        return Ok(state.store.append(records).await?);
    }
    let _order = CONTAINER_EVENTS.lock().await;
    let appended = state.store.append(records).await?;
    // Each object's changes apply in event order; different objects apply
    // concurrently, so the store's group commit writes them in a few transactions
    // instead of one commit per event.
    let mut position: HashMap<ObjectRef, usize> = HashMap::new();
    let mut by_object: Vec<Vec<(ContainerChange, Option<String>)>> = Vec::new();
    for (change, domain) in changes {
        let next = by_object.len();
        let at = *position.entry(change.key.clone()).or_insert(next);
        if at == next {
            by_object.push(Vec::new());
        }
        by_object[at].push((change, domain));
    }
    join_all(by_object.into_iter().map(|list| async move {
        for (change, domain) in list {
            // The events are committed: a registry failure must not turn their
            // acknowledgement into an error (a retry would duplicate them), so it
            // is logged and the registry catches up with the object's next event.
            if let Err(e) = apply_container_change(state, principal, change, domain).await {
                tracing::warn!(error = %e.describe(), "container event did not update its object");
            }
        }
    }))
    .await;
    Ok(appended)
}

/// Moves an object to the state its event describes (creating it), or removes it on
/// `destroy`. An object of a domain the writer may not write is left alone.
async fn apply_container_change(
    state: &AppState,
    principal: &Principal,
    change: ContainerChange,
    domain: Option<String>,
) -> Result<(), ApiError> {
    let existing = state.store.get_object(&change.key).await?;
    if let Some(existing) = &existing {
        let writable = principal.role.is_admin()
            || principal.any_domain
            || existing.domain_id.is_none()
            || existing.domain_id == domain;
        if !writable {
            return Ok(());
        }
    }
    match change.transition {
        ContainerTransition::Destroy => {
            state.store.remove_object(&change.key).await?;
        }
        ContainerTransition::State(new_state) => {
            state
                .store
                .put_object(ObjectUpdate {
                    key: Some(change.key),
                    name: change.name,
                    state: Some(new_state.to_string()),
                    // An existing object keeps its domain; a new one gets the event's.
                    domain_id: if existing.is_some() { None } else { domain },
                    ..ObjectUpdate::default()
                })
                .await?;
        }
    }
    Ok(())
}

/// Appends records that the server itself writes about what a principal did (the
/// audit trail: logins, clears). These bypass the write permission: an auditor's
/// login is still recorded.
pub async fn record_on_behalf(
    state: &AppState,
    principal: &Principal,
    mut record: NewRecord,
) -> Result<(), ApiError> {
    record.user = record.user.or_else(|| Some(principal.name.clone()));
    record.user_id = record
        .user_id
        .or_else(|| Some(principal.user_id.to_string()));
    record.domain_id = record.domain_id.or_else(|| Some(principal.domain.clone()));
    state.store.append(vec![record]).await?;
    Ok(())
}
