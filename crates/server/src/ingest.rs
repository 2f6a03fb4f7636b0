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
use logbook_core::object::{container_change, ContainerChange, ContainerTransition};
use logbook_core::{Kind, NewRecord, ObjectRef};
use logbook_store::{Appended, ObjectUpdate, ObjectWrite, RecordBatch};
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
    let mut batch = Batch::new(state, principal)?;
    batch.push(records, &names)?;
    batch.commit().await
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
    let mut batch = Batch::of(state, Writer::Principal(principal));
    batch.push(entries, &names)?;
    batch.commit().await
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

/// Appends records that arrive on a listener without credentials (syslog): each
/// lands in the domain the operator configured for the listener, by the same path
/// as any other write.
pub async fn append_to_domain(
    state: &AppState,
    domain: &str,
    records: Vec<NewRecord>,
) -> Result<Appended, ApiError> {
    let mut batch = Batch::of(state, Writer::Listener { domain });
    batch.push(records, &|i: usize, field: &str| format!("[{i}].{field}"))?;
    batch.commit().await
}

/// A batch being received, appended atomically and durably at [`Batch::commit`].
/// Each chunk pushed is placed in its domain, its container events noted, and
/// handed to the store, which may turn it into its own forms at once and drop the
/// records: a large NDJSON body pushed as it is parsed is never held whole as
/// records (issue 20). Nothing is written before the commit, so a batch dropped
/// after a refused chunk leaves no trace.
pub struct Batch<'a> {
    state: &'a AppState,
    writer: Writer<'a>,
    records: RecordBatch,
    /// Each container event, with the domain of its record, in record order.
    changes: Vec<(ContainerChange, Option<String>)>,
    kinds: Vec<Kind>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("records", &self.records.len())
            .field("changes", &self.changes.len())
            .finish()
    }
}

/// Whose write a batch is, which decides the domain of its records.
enum Writer<'a> {
    /// Each record lands in the principal's domain unless it may name another.
    Principal(&'a Principal),
    /// A listener's records land in the domain configured for it.
    Listener { domain: &'a str },
}

impl<'a> Batch<'a> {
    /// An empty batch of the principal, which must hold a writing role.
    pub fn new(state: &'a AppState, principal: &'a Principal) -> Result<Batch<'a>, ApiError> {
        principal.require_write()?;
        Ok(Batch::of(state, Writer::Principal(principal)))
    }

    fn of(state: &'a AppState, writer: Writer<'a>) -> Batch<'a> {
        Batch {
            state,
            writer,
            records: state.store.record_batch(),
            changes: Vec::new(),
            kinds: Vec::new(),
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds `records`, which follow those pushed before (`names` gets each one's
    /// index in the whole batch).
    pub fn push(
        &mut self,
        mut records: Vec<NewRecord>,
        names: &impl FieldNames,
    ) -> Result<(), ApiError> {
        let first = self.records.len();
        for (i, record) in records.iter_mut().enumerate() {
            let domain = match self.writer {
                Writer::Principal(principal) => principal
                    .write_domain(record.domain_id.as_deref(), &names(first + i, "domain_id"))?,
                Writer::Listener { domain } => domain.to_string(),
            };
            record.domain_id = Some(domain);
            if let Some(change) = container_change(record) {
                self.changes.push((change, record.domain_id.clone()));
            }
            self.kinds.push(record.kind.unwrap_or(Kind::Log));
        }
        self.records.push(records);
        Ok(())
    }

    /// Appends the batch, with the object-registry changes its container events
    /// imply.
    pub async fn commit(self) -> Result<Appended, ApiError> {
        // Admins and any-domain writers may move objects of other domains.
        let overrides = match self.writer {
            Writer::Principal(principal) => principal.role.is_admin() || principal.any_domain,
            Writer::Listener { .. } => false,
        };
        let state = self.state;
        let writes = container_writes(state, overrides, self.changes).await?;
        let appended = if writes.is_empty() {
            state.store.append_batch(self.records).await?
        } else {
            // One transaction: the events and the objects they move commit together, and
            // concurrent batches apply their changes in the order of their record ids.
            state
                .store
                .append_with_objects(self.records, writes)
                .await?
        };
        state.metrics.ingested(self.kinds);
        Ok(appended)
    }
}

/// The registry writes a batch's container events imply, in record order: put the
/// object in its new state (created if needed) or remove it on `destroy`. A new
/// object gets the event's domain; an existing one keeps its own, and one of a
/// domain the writer may not write is left alone.
async fn container_writes(
    state: &AppState,
    overrides: bool,
    changes: Vec<(ContainerChange, Option<String>)>,
) -> Result<Vec<ObjectWrite>, ApiError> {
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
