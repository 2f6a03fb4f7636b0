//! The one way records enter the store from any API: tenancy is applied (each record
//! lands in the writer's domain unless it may name another), then the batch is
//! appended atomically and durably.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use logbook_core::NewRecord;
use logbook_store::Appended;

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
    Ok(state.store.append(records).await?)
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
