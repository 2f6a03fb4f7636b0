//! The one way records enter the store from any API: the writer's permission and
//! identity rules (who may record what, and on whose behalf), tenancy (each record
//! lands in the writer's domain unless it may name another), then the batch is
//! appended atomically and durably, together with the object-registry changes its
//! container events imply. (The server's own security journal, written whatever the
//! caller's role, goes through `auth::audit`.)

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use futures_util::future::join_all;
use logbook_core::object::{container_change, ContainerTransition};
use logbook_core::{NewRecord, ObjectRef};
use logbook_store::{Appended, ObjectUpdate, ObjectWrite};
use std::collections::HashMap;

/// How a dialect names a record's fields in errors: `(index in the batch, core
/// field name)` to the client's name, e.g. `[3].domain_id` or `journal.user_name`.
pub trait FieldNames: Fn(usize, &str) -> String {}

impl<F: Fn(usize, &str) -> String> FieldNames for F {}

/// Appends the batch for the principal, which must hold a writing role.
pub async fn append(
    state: &AppState,
    principal: &Principal,
    records: Vec<NewRecord>,
    names: impl FieldNames,
) -> Result<Appended, ApiError> {
    principal.require_write()?;
    append_in_domains(state, principal, records, names).await
}

/// Appends journal entries of users' actions. Every role but the read-only auditor
/// may record its own actions (a dashboard journals what a user did with the user's
/// own token); recording someone else's is for service accounts (writers) and
/// administrators. An entry that names nobody is the principal's; one that names
/// someone else only in part is not completed with the principal's identity.
pub async fn append_actions(
    state: &AppState,
    principal: &Principal,
    mut entries: Vec<NewRecord>,
    names: impl FieldNames,
) -> Result<Appended, ApiError> {
    if !principal.role.may_journal_own_actions() {
        return Err(ApiError::forbidden(format!(
            "the {} role cannot write",
            principal.role
        )));
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        identify(principal, entry, |field| names(i, field))?;
    }
    append_in_domains(state, principal, entries, names).await
}

/// Who did it: the principal, unless it may act for others and the entry names
/// another user.
fn identify(
    principal: &Principal,
    entry: &mut NewRecord,
    name: impl Fn(&str) -> String,
) -> Result<(), ApiError> {
    let own_id = principal.user_id.to_string();
    let other_id = entry.user_id.as_deref().is_some_and(|id| id != own_id);
    let other_name = entry.user.as_deref().is_some_and(|n| n != principal.name);
    if !principal.role.may_act_for_others() && (other_id || other_name) {
        let field = if other_id { "user_id" } else { "user" };
        return Err(ApiError::forbidden(
            "only a service account or an administrator may record another user's action",
        )
        .at(name(field)));
    }
    if !other_id && !other_name {
        entry.user_id.get_or_insert(own_id);
        entry.user.get_or_insert_with(|| principal.name.clone());
    }
    Ok(())
}

async fn append_in_domains(
    state: &AppState,
    principal: &Principal,
    mut records: Vec<NewRecord>,
    names: impl FieldNames,
) -> Result<Appended, ApiError> {
    for (i, record) in records.iter_mut().enumerate() {
        let field = names(i, "domain_id");
        record.domain_id = Some(principal.write_domain(record.domain_id.as_deref(), &field)?);
    }
    let overrides = principal.role.is_admin() || principal.any_domain;
    commit(state, overrides, records).await
}

/// Appends records that arrive on a listener without credentials (syslog): each
/// lands in the domain the operator configured for the listener, by the same path
/// as any other write.
pub async fn append_to_domain(
    state: &AppState,
    domain: &str,
    mut records: Vec<NewRecord>,
) -> Result<Appended, ApiError> {
    for record in &mut records {
        record.domain_id = Some(domain.to_string());
    }
    commit(state, false, records).await
}

/// `overrides`: the writer may move objects of other domains (admins, any-domain
/// writers).
async fn commit(
    state: &AppState,
    overrides: bool,
    records: Vec<NewRecord>,
) -> Result<Appended, ApiError> {
    let writes = container_writes(state, overrides, &records).await?;
    let kinds: Vec<logbook_core::Kind> = records
        .iter()
        .map(|r| r.kind.unwrap_or(logbook_core::Kind::Log))
        .collect();
    let appended = if writes.is_empty() {
        state.store.append(records).await?
    } else {
        // One transaction: the events and the objects they move commit together, and
        // concurrent batches apply their changes in the order of their record ids.
        state.store.append_with_objects(records, writes).await?
    };
    state.metrics.ingested(kinds);
    Ok(appended)
}

/// The registry writes a batch's container events imply, in record order: put the
/// object in its new state (created if needed) or remove it on `destroy`. A new
/// object gets the event's domain; an existing one keeps its own, and one of a
/// domain the writer may not write is left alone.
async fn container_writes(
    state: &AppState,
    overrides: bool,
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
            Some(owner_domain) => overrides || owner_domain.is_none() || *owner_domain == domain,
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
