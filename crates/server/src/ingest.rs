//! The one way records enter the store from any API: tenancy is applied (each record
//! lands in the writer's domain unless it may name another), then the batch is
//! appended atomically and durably, together with the object-registry changes its
//! container events imply.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use futures_util::future::join_all;
use logbook_core::object::{container_change, ContainerTransition};
use logbook_core::{NewRecord, ObjectRef};
use logbook_store::{Appended, ObjectUpdate, ObjectWrite};
use std::collections::HashMap;

/// Appends the batch for the principal. `field_prefix(i)` names record `i` in errors
/// (`[3].` for batches, empty for a single record).
pub async fn append(
    state: &AppState,
    principal: &Principal,
    records: Vec<NewRecord>,
    field_prefix: impl Fn(usize) -> String,
) -> Result<Appended, ApiError> {
    principal.require_write()?;
    append_in_domains(state, principal, records, field_prefix).await
}

/// Appends journal entries a principal records about its own actions: every role but
/// the read-only auditor may (a dashboard journals what a user did with the user's
/// own token). Whether an entry may name another user is the caller's check.
pub async fn append_own_actions(
    state: &AppState,
    principal: &Principal,
    records: Vec<NewRecord>,
    field_prefix: impl Fn(usize) -> String,
) -> Result<Appended, ApiError> {
    if !principal.role.may_journal_own_actions() {
        return Err(ApiError::forbidden(format!(
            "the {} role cannot write",
            principal.role
        )));
    }
    append_in_domains(state, principal, records, field_prefix).await
}

async fn append_in_domains(
    state: &AppState,
    principal: &Principal,
    mut records: Vec<NewRecord>,
    field_prefix: impl Fn(usize) -> String,
) -> Result<Appended, ApiError> {
    for (i, record) in records.iter_mut().enumerate() {
        let field = format!("{}domain_id", field_prefix(i));
        record.domain_id = Some(principal.write_domain(record.domain_id.as_deref(), &field)?);
    }
    let writes = container_writes(state, principal, &records).await?;
    if writes.is_empty() {
        Ok(state.store.append(records).await?)
    } else {
        // One transaction: the events and the objects they move commit together, and
        // concurrent batches apply their changes in the order of their record ids.
        Ok(state.store.append_with_objects(records, writes).await?)
    }
}

/// The registry writes a batch's container events imply, in record order: put the
/// object in its new state (created if needed) or remove it on `destroy`. A new
/// object gets the event's domain; an existing one keeps its own, and one of a
/// domain the writer may not write is left alone.
async fn container_writes(
    state: &AppState,
    principal: &Principal,
    records: &[NewRecord],
) -> Result<Vec<ObjectWrite>, ApiError> {
    let changes: Vec<_> = records
        .iter()
        .filter_map(|r| container_change(r).map(|c| (c, r.domain_id.clone())))
        .collect();
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    // Who owns each object now (`None`: it does not exist), read concurrently.
    let mut keys: Vec<&ObjectRef> = changes.iter().map(|(c, _)| &c.key).collect();
    keys.sort();
    keys.dedup();
    let existing = join_all(keys.iter().map(|key| state.store.get_object(key))).await;
    let mut owners: HashMap<ObjectRef, Option<Option<String>>> = HashMap::new();
    for (key, object) in keys.into_iter().zip(existing) {
        owners.insert(key.clone(), object?.map(|o| o.domain_id));
    }
    let mut writes = Vec::with_capacity(changes.len());
    for (change, domain) in changes {
        let owner = owners.get(&change.key).cloned().flatten();
        let may_write = match &owner {
            None => true,
            Some(owner_domain) => {
                principal.role.is_admin()
                    || principal.any_domain
                    || owner_domain.is_none()
                    || *owner_domain == domain
            }
        };
        if !may_write {
            continue;
        }
        // Track what the earlier events of this batch did to the object.
        match change.transition {
            ContainerTransition::Destroy => {
                owners.insert(change.key.clone(), None);
                writes.push(ObjectWrite::Remove(change.key));
            }
            ContainerTransition::State(new_state) => {
                if owner.is_none() {
                    owners.insert(change.key.clone(), Some(domain.clone()));
                }
                writes.push(ObjectWrite::Put(Box::new(ObjectUpdate {
                    domain_id: if owner.is_some() { None } else { domain },
                    key: Some(change.key),
                    name: change.name,
                    state: Some(new_state.to_string()),
                    ..ObjectUpdate::default()
                })));
            }
        }
    }
    Ok(writes)
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
