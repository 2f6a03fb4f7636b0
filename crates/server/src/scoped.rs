//! Tenancy for what a principal reads, once for every API. Lists are scoped before
//! they reach the store ([`Principal::scope`] adds the readable domains to the
//! query); single items are read here, after the fetch, so that another domain's
//! id answers exactly like an unknown one ("not found") whichever API asks. Store
//! figures that cannot be scoped by a query (the size on disk) are shared out here
//! too, so no dialect decides a tenancy policy of its own.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use logbook_core::{Action, Kind, Object, ObjectRef, Query, Record};

/// Anything that belongs to a domain (or to none, which only all-domain readers see).
pub trait Tenanted {
    fn domain_id(&self) -> Option<&str>;
}

impl Tenanted for Record {
    fn domain_id(&self) -> Option<&str> {
        self.domain_id.as_deref()
    }
}

impl Tenanted for Object {
    fn domain_id(&self) -> Option<&str> {
        self.domain_id.as_deref()
    }
}

impl Tenanted for Action {
    fn domain_id(&self) -> Option<&str> {
        self.domain_id.as_deref()
    }
}

impl Principal {
    /// Whether the principal may read this item.
    pub fn may_read(&self, item: &impl Tenanted) -> bool {
        self.can_read_domain(item.domain_id())
    }
}

/// The fetched item if the principal may read it; `None` both when there is none
/// and when it belongs to another domain.
pub fn visible<T: Tenanted>(principal: &Principal, item: Option<T>) -> Option<T> {
    item.filter(|item| principal.may_read(item))
}

/// The fetched item if the principal may read it, "not found" otherwise.
pub fn found<T: Tenanted>(principal: &Principal, item: Option<T>) -> Result<T, ApiError> {
    visible(principal, item).ok_or_else(ApiError::not_found)
}

/// Record `id`, if it matches `within` (a dialect's view; `Query::default()` for
/// all records) and the principal may read it.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    id: i64,
    within: &Query,
) -> Result<Record, ApiError> {
    let record = state.store.get(id).await?.filter(|r| within.matches(r));
    found(principal, record)
}

/// The object if the principal may read it.
pub async fn object(
    state: &AppState,
    principal: &Principal,
    key: &ObjectRef,
) -> Result<Object, ApiError> {
    found(principal, state.store.get_object(key).await?)
}

/// The object, or `None` when it is unknown or another domain's (a wait treats both
/// as "not there yet").
pub async fn object_or_none(
    state: &AppState,
    principal: &Principal,
    key: &ObjectRef,
) -> Result<Option<Object>, ApiError> {
    Ok(visible(principal, state.store.get_object(key).await?))
}

/// The object as it is before a write: `None` when it does not exist yet (the write
/// creates it), "not found" when it belongs to a domain the principal may not read.
pub async fn object_before_write(
    state: &AppState,
    principal: &Principal,
    key: &ObjectRef,
) -> Result<Option<Object>, ApiError> {
    match state.store.get_object(key).await? {
        None => Ok(None),
        existing => found(principal, existing).map(Some),
    }
}

/// Action `uuid` if the principal may read it.
pub async fn action(
    state: &AppState,
    principal: &Principal,
    uuid: &str,
) -> Result<Action, ApiError> {
    found(principal, state.store.get_action(uuid).await?)
}

/// Bytes records of `kind` take on disk, as far as the principal may know: the
/// store measures one figure for everyone, so a principal confined to its domains
/// gets its share of it by record count, not how much other tenants log.
pub async fn size_on_disk(
    state: &AppState,
    principal: &Principal,
    kind: Kind,
) -> Result<u64, ApiError> {
    let bytes = state.store.size_on_disk(kind).await?;
    if principal.readable_domains().is_none() {
        return Ok(bytes);
    }
    let all_of_kind = Query::newest_first().kinds(&[kind]);
    let visible = state
        .store
        .count(&principal.scope(all_of_kind.clone()))
        .await?;
    let all = state.store.count(&all_of_kind).await?;
    Ok(match all {
        0 => 0,
        all => (u128::from(bytes) * u128::from(visible) / u128::from(all)) as u64,
    })
}
