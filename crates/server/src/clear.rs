//! An administrator's clear, for every API that offers one: the matching records
//! (scoped like any read) are deleted and the journal entry saying who cleared how
//! many commits in the same transaction, so a clear is never left unaudited and a
//! failed audit never answers an error for a delete that happened.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use logbook_core::{Kind, NewRecord, Query};
use logbook_store::Removal;
use serde_json::json;

/// What a clear is, as its journal entry names it.
#[derive(Debug, Clone, Copy)]
pub struct Clearing {
    /// The journal `action`, e.g. `logbook.log.clear`.
    pub action: &'static str,
    /// The journal `object_type` of what was cleared, e.g. `log`.
    pub object_type: &'static str,
    /// The records in words, e.g. `system log records`.
    pub records: &'static str,
}

/// Deletes what `query` matches (within the principal's domains) and journals it;
/// returns how many records went.
pub async fn clear(
    state: &AppState,
    principal: &Principal,
    query: Query,
    clearing: Clearing,
) -> Result<u64, ApiError> {
    principal.require_admin()?;
    let query = principal.scope(query);
    let (user, user_id, domain) = (
        principal.name.clone(),
        principal.user_id.to_string(),
        principal.domain.clone(),
    );
    let journal = Box::new(move |removal: &Removal| {
        let deleted = removal.count;
        let mut entry = NewRecord::new(Kind::Journal);
        entry.action = Some(clearing.action.into());
        entry.status = Some("success".into());
        entry.object_type = Some(clearing.object_type.into());
        entry.message = Some(format!(
            "User {user:?} cleared {deleted} {}.",
            clearing.records
        ));
        entry.data = json!({
            "records": deleted,
            "removed": { "count": deleted, "first_id": removal.first_id, "last_id": removal.last_id },
        })
        .as_object()
        .cloned();
        entry.user = Some(user.clone());
        entry.user_id = Some(user_id.clone());
        entry.domain_id = Some(domain.clone());
        entry
    });
    Ok(state.store.delete_recorded(&query, journal).await?)
}
