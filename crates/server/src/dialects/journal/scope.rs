//! `filter_project_id` and `filter_domain_id`: the object registry and the accounts
//! decide which entries belong to a project or a domain; the result is a plain core
//! [`Condition`], so the store filters as it filters anything else.

use crate::error::ApiError;
use crate::state::AppState;
use logbook_core::query::{Condition, Field, Scalar};
use logbook_core::ObjectRef;
use std::collections::{BTreeMap, HashMap};

/// The registry type of a project object.
pub const PROJECT_TYPE: &str = "project";

/// Most objects (or accounts) one filter may expand to: each becomes a bound value,
/// and SQLite allows at most 32766 per statement.
pub const MAX_EXPANSION: usize = 10_000;

/// Deeper than the registry's own bound on a parent chain, so no descendant is lost.
const MAX_DEPTH: usize = 33;

/// Entries of project `P`: entries recorded in it (`project_id = P`, as
/// `POST /v1/P/journal/` sets), entries about the project object itself
/// (`object_type = project, object_id = P`), and entries about every registered
/// object whose parent chain contains `{"type": "project", "id": P}`.
pub async fn project(state: &AppState, project_id: &str) -> Result<Condition, ApiError> {
    let project = ObjectRef::new(PROJECT_TYPE, project_id);
    let related = state.store.related_objects(&project).await?;
    let parents: HashMap<&ObjectRef, &ObjectRef> = related
        .iter()
        .filter_map(|o| o.parent.as_ref().map(|p| (&o.key, p)))
        .collect();
    let mut ids_by_type: BTreeMap<String, Vec<Scalar>> = BTreeMap::new();
    ids_by_type
        .entry(PROJECT_TYPE.to_string())
        .or_default()
        .push(Scalar::Text(project_id.to_string()));
    for object in &related {
        if descends_from(&object.key, &project, &parents) {
            ids_by_type
                .entry(object.key.object_type.clone())
                .or_default()
                .push(Scalar::Text(object.key.object_id.clone()));
        }
    }
    if ids_by_type.values().map(Vec::len).sum::<usize>() > MAX_EXPANSION {
        return Err(too_many("filter_project_id", "objects"));
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

/// Whether `ancestor` is on the parent chain of `key` (the related set holds every
/// link of a descendant's chain up to the project).
fn descends_from(
    key: &ObjectRef,
    ancestor: &ObjectRef,
    parents: &HashMap<&ObjectRef, &ObjectRef>,
) -> bool {
    let mut current = key;
    for _ in 0..MAX_DEPTH {
        match parents.get(current) {
            Some(parent) if *parent == ancestor => return true,
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

/// Entries of domain `D`: entries recorded in it (`domain_id = D`) and entries whose
/// `user_id` is the id of an account of `D` (entries made by its users elsewhere).
pub async fn domain(state: &AppState, domain: &str) -> Result<Condition, ApiError> {
    let users: Vec<Scalar> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.domain == domain)
        .map(|u| Scalar::Text(u.id.to_string()))
        .collect();
    if users.len() > MAX_EXPANSION {
        return Err(too_many("filter_domain_id", "accounts"));
    }
    Ok(Condition::Any(vec![
        Condition::In(Field::DomainId, vec![Scalar::Text(domain.to_string())]),
        Condition::In(Field::UserId, users),
    ]))
}

fn too_many(name: &str, what: &str) -> ApiError {
    ApiError::bad_request(
        name,
        format!("covers more than {MAX_EXPANSION} {what}; narrow the query with object_type or user_id instead"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_below_the_project_descend_from_it() {
        let project = ObjectRef::new("project", "p");
        let region = ObjectRef::new("region", "r");
        let vm = ObjectRef::new("instance", "vm");
        let disk = ObjectRef::new("volume", "d");
        let parents: HashMap<&ObjectRef, &ObjectRef> =
            [(&project, &region), (&vm, &project), (&disk, &vm)]
                .into_iter()
                .collect();
        assert!(descends_from(&vm, &project, &parents));
        assert!(descends_from(&disk, &project, &parents));
        assert!(!descends_from(&region, &project, &parents));
        assert!(!descends_from(&project, &project, &parents));
    }
}
