//! `filter_project_id` and `filter_domain_id` translated onto a plain core
//! [`Condition`]: the store's own queries (an object's descendants, a domain's
//! accounts) say which objects and accounts belong, and the store then filters the
//! entries as it filters anything else.

use crate::error::ApiError;
use crate::state::AppState;
use logbook_core::query::{Condition, Field, Scalar};
use logbook_core::ObjectRef;
use std::collections::BTreeMap;

/// The registry type of a project object.
pub(super) const PROJECT_TYPE: &str = "project";

/// Most objects (or accounts) one filter may expand to: each becomes a bound value,
/// and SQLite allows at most 32766 per statement.
pub(super) const MAX_EXPANSION: usize = 10_000;

/// Entries of project `P`: entries recorded in it (`project_id = P`, as
/// `POST /v1/P/journal/` sets), entries about the project object itself
/// (`object_type = project, object_id = P`), and entries about every registered
/// object whose parent chain contains `{"type": "project", "id": P}` (the store's
/// `descendants`).
pub(super) async fn project(state: &AppState, project_id: &str) -> Result<Condition, ApiError> {
    let project = ObjectRef::new(PROJECT_TYPE, project_id);
    let below = state
        .store
        .descendants(&project, MAX_EXPANSION as u64)
        .await?;
    if below.len() >= MAX_EXPANSION {
        return Err(too_many("filter_project_id", "objects"));
    }
    let mut ids_by_type: BTreeMap<String, Vec<Scalar>> = BTreeMap::new();
    for key in std::iter::once(project).chain(below) {
        ids_by_type
            .entry(key.object_type)
            .or_default()
            .push(Scalar::Text(key.object_id));
    }
    let mut any = vec![Condition::In(
        Field::ProjectId,
        vec![Scalar::Text(project_id.to_string())],
    )];
    for (object_type, ids) in ids_by_type {
        any.push(Condition::All(vec![
            Condition::In(Field::ObjectType, vec![Scalar::Text(object_type)]),
            Condition::In(Field::ObjectId, ids),
        ]));
    }
    Ok(Condition::Any(any))
}

/// Entries of domain `D`: entries recorded in it (`domain_id = D`) and entries whose
/// `user_id` is the id of an account of `D` (entries made by its users elsewhere).
pub(super) async fn domain(state: &AppState, domain: &str) -> Result<Condition, ApiError> {
    let users = state
        .store
        .users_in_domain(domain, MAX_EXPANSION as u64 + 1)
        .await?;
    if users.len() > MAX_EXPANSION {
        return Err(too_many("filter_domain_id", "accounts"));
    }
    let ids = users
        .into_iter()
        .map(|u| Scalar::Text(u.id.to_string()))
        .collect();
    Ok(Condition::Any(vec![
        Condition::In(Field::DomainId, vec![Scalar::Text(domain.to_string())]),
        Condition::In(Field::UserId, ids),
    ]))
}

fn too_many(name: &str, what: &str) -> ApiError {
    ApiError::bad_request(
        name,
        format!("covers more than {MAX_EXPANSION} {what}; narrow the query with object_type or user_id instead"),
    )
}
