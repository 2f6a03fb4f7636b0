//! `/logbook/v1/integrity/*` and `/logbook/v1/records/{id}/proof`: the public key,
//! signed checkpoints, RFC 9162 inclusion and consistency proofs (any
//! authenticated reader; a proof of a record only for one who may read it), and
//! for administrators the stored leaves, the removed stretches and the status.

use crate::auth::Principal;
use crate::body::{parse_json, read_limited};
use crate::error::{ApiError, ErrorKind};
use crate::integrity::checkpoints::PUBLIC_KEY_SETTING;
use crate::params::Params;
use crate::scoped;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use logbook_core::integrity::merkle::to_hex;
use logbook_core::integrity::SignedCheckpoint;
use logbook_core::{Query, Timestamp};
use serde_json::{json, Value};

/// The setting the last reported verification is kept under.
const LAST_VERIFY_SETTING: &str = "last_verify";
/// Most leaves one `leaves` page holds.
const MAX_LEAVES: u64 = 65_536;

fn hexes(hashes: &[logbook_core::integrity::Hash]) -> Vec<String> {
    hashes.iter().map(to_hex).collect()
}

/// `GET /logbook/v1/integrity/key`
#[utoipa::path(
    get, path = "/logbook/v1/integrity/key", tag = "integrity",
    responses((status = 200, description = "The key checkpoints are signed with", body = super::openapi::PublicKey))
)]
pub(super) async fn key(State(state): State<AppState>, _principal: Principal) -> Json<Value> {
    Json(state.integrity.public_key_json())
}

/// `GET /logbook/v1/integrity/checkpoints?limit=N`, newest first.
#[utoipa::path(
    get, path = "/logbook/v1/integrity/checkpoints", tag = "integrity",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "At most this many, newest first (default 100)")),
    responses((status = 200, description = "Signed checkpoints, newest first", body = super::openapi::Checkpoints))
)]
pub(super) async fn checkpoints(
    State(state): State<AppState>,
    _principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref())?;
    let limit = params.limit(100, 10_000)?;
    params.reject_unknown()?;
    let list = state.store.checkpoints(limit).await?;
    Ok(Json(json!({
        "checkpoints": list.iter().map(SignedCheckpoint::to_json).collect::<Vec<_>>(),
    })))
}

/// `GET /logbook/v1/integrity/checkpoints/latest`
#[utoipa::path(
    get, path = "/logbook/v1/integrity/checkpoints/latest", tag = "integrity",
    responses(
        (status = 200, description = "The newest signed checkpoint", body = super::openapi::SignedCheckpoint),
        (status = 404, description = "No checkpoint has been signed yet", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn latest(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let newest = state.store.checkpoints(1).await?.into_iter().next();
    newest
        .map(|c| Json(c.to_json()))
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no checkpoint has been signed yet"))
}

/// The checkpoint a proof is against: of exactly `tree_size` leaves, or the newest.
async fn checkpoint_for(
    state: &AppState,
    tree_size: Option<u64>,
    field: &str,
) -> Result<SignedCheckpoint, ApiError> {
    match tree_size {
        Some(size) => state.store.checkpoint_of_size(size).await?.ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("no checkpoint of {size} leaves was signed"),
            )
            .at(field)
        }),
        None => state
            .store
            .checkpoints(1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no checkpoint has been signed yet")),
    }
}

/// `GET /logbook/v1/records/{id}/proof[?tree_size=N]`: the inclusion proof of the
/// record's leaf against a signed checkpoint. A removed record's proof says when it
/// was removed (its leaf stays); only readers of every domain see those, since the
/// record that would say whose it was is gone.
#[utoipa::path(
    get, path = "/logbook/v1/records/{id}/proof", tag = "integrity",
    params(("id" = i64, Path, description = "The record's id"),
        ("tree_size" = Option<u64>, Query, description = "Against the checkpoint of this many leaves (default the newest)")),
    responses(
        (status = 200, description = "The inclusion proof of the record's leaf", body = super::openapi::InclusionProof),
        (status = 404, description = "No such record, no leaf yet, or no such checkpoint", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn proof(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = super::path_id(&id)?;
    let params = Params::parse(raw.as_deref())?;
    let tree_size = params.parsed::<u64>("tree_size", "a non-negative integer")?;
    params.reject_unknown()?;
    let removed = match scoped::record(&state, &principal, id, &Query::default()).await {
        Ok(_) => None,
        Err(e) if e.kind == ErrorKind::NotFound && principal.readable_domains().is_none() => {
            Some(state.store.removal_of(id).await?.ok_or(e)?)
        }
        Err(e) => return Err(e),
    };
    let leaf = state
        .store
        .leaf_of(id)
        .await?
        .filter(|leaf| leaf.id == id)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("record {id} has no leaf")))?;
    let checkpoint = checkpoint_for(&state, tree_size, "tree_size").await?;
    let size = checkpoint.checkpoint.tree_size;
    if leaf.index >= size {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("record {id} is newer than the checkpoint of {size} leaves; ask again after the next one"),
        ));
    }
    let path = state
        .integrity
        .tree
        .inclusion(state.store.as_ref(), leaf.index, size)
        .await?;
    Ok(Json(json!({
        "id": id,
        "leaf_index": leaf.index,
        "leaf_hash": to_hex(&leaf.hash),
        "tree_size": size,
        "audit_path": hexes(&path),
        "checkpoint": checkpoint.to_json(),
        "removed": removed.map(|r| json!({
            "removed_at": r.removed_at.rfc3339(),
            "journal_id": r.journal_id,
            "first_id": r.first_id,
            "last_id": r.last_id,
        })),
    })))
}

/// `GET /logbook/v1/integrity/consistency?from=N&to=M`: between two checkpoints.
#[utoipa::path(
    get, path = "/logbook/v1/integrity/consistency", tag = "integrity",
    params(
        ("from" = u64, Query, minimum = 1, description = "Tree size of the older checkpoint"),
        ("to" = u64, Query, minimum = 1, description = "Tree size of the newer checkpoint"),
    ),
    responses(
        (status = 200, description = "The consistency proof between two checkpoints", body = super::openapi::ConsistencyProof),
        (status = 404, description = "No checkpoint of that size", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn consistency(
    State(state): State<AppState>,
    _principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref())?;
    let from = params
        .parsed::<u64>("from", "a non-negative integer")?
        .ok_or_else(|| ApiError::bad_request("from", "is required"))?;
    let to = params
        .parsed::<u64>("to", "a non-negative integer")?
        .ok_or_else(|| ApiError::bad_request("to", "is required"))?;
    params.reject_unknown()?;
    if from == 0 || from > to {
        return Err(ApiError::bad_request("from", "must be between 1 and to"));
    }
    let old = checkpoint_for(&state, Some(from), "from").await?;
    let new = checkpoint_for(&state, Some(to), "to").await?;
    let proof = state
        .integrity
        .tree
        .consistency(state.store.as_ref(), from, to)
        .await?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "proof": hexes(&proof),
        "from_checkpoint": old.to_json(),
        "to_checkpoint": new.to_json(),
    })))
}

/// `GET /logbook/v1/integrity/leaves?from=INDEX&limit=N` (administrators): the
/// stored leaves, for `logbook verify --server`.
#[utoipa::path(
    get, path = "/logbook/v1/integrity/leaves", tag = "integrity",
    params(
        ("from" = Option<u64>, Query, description = "First leaf index (default 0)"),
        ("limit" = Option<u64>, Query, minimum = 1, description = "At most this many leaves (default 4096)"),
    ),
    responses((status = 200, description = "Stored leaves (administrators)", body = super::openapi::Leaves))
)]
pub(super) async fn leaves(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let params = Params::parse(raw.as_deref())?;
    let from = params
        .parsed::<u64>("from", "a non-negative integer")?
        .unwrap_or(0);
    let limit = params.limit(4096, MAX_LEAVES)?;
    params.reject_unknown()?;
    let tree_size = state.store.tree_size().await?;
    let leaves = state.store.leaves(from, from.saturating_add(limit)).await?;
    Ok(Json(json!({
        "tree_size": tree_size,
        "leaves": leaves.iter().map(|l| json!({"index": l.index, "id": l.id, "hash": to_hex(&l.hash)})).collect::<Vec<_>>(),
    })))
}

/// `GET /logbook/v1/integrity/removed?after=ID&limit=N` (administrators).
#[utoipa::path(
    get, path = "/logbook/v1/integrity/removed", tag = "integrity",
    params(
        ("after" = Option<i64>, Query, description = "Only removals of ids above this"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100000, description = "At most this many (default 1000)"),
    ),
    responses((status = 200, description = "Removed id ranges (administrators)", body = super::openapi::RemovedList))
)]
pub(super) async fn removed(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let params = Params::parse(raw.as_deref())?;
    let after = params.parsed::<i64>("after", "an integer")?.unwrap_or(0);
    let limit = params.limit(1000, 100_000)?;
    params.reject_unknown()?;
    let ranges = state.store.removed(after, limit).await?;
    Ok(Json(json!({
        "removed": ranges.iter().map(|r| json!({
            "first_id": r.first_id,
            "last_id": r.last_id,
            "removed_at": r.removed_at.rfc3339(),
            "journal_id": r.journal_id,
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /logbook/v1/integrity/status` (administrators): the tree, the newest
/// checkpoint, the last verification reported, the retention policy and its last run.
#[utoipa::path(
    get, path = "/logbook/v1/integrity/status", tag = "integrity",
    responses((status = 200, description = "The tree, the newest checkpoint, the last verification and retention (administrators)", body = super::openapi::IntegrityStatus))
)]
pub(super) async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let store = state.store.as_ref();
    let tree_size = store.tree_size().await?;
    let newest = store.checkpoints(1).await?.into_iter().next();
    let last_verify = store
        .integrity_setting(LAST_VERIFY_SETTING)
        .await?
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let stored_key = store.integrity_setting(PUBLIC_KEY_SETTING).await?;
    let last_retention = state
        .integrity
        .last_retention
        .lock()
        .ok()
        .and_then(|r| r.clone());
    Ok(Json(json!({
        "tree_size": tree_size,
        "public_key": state.integrity.public_key_json()["public_key"],
        "stored_public_key": stored_key,
        "last_checkpoint": newest.map(|c| c.to_json()),
        "last_verify": last_verify,
        "retention": {
            "policy": state.integrity.config.retention.to_json(),
            "last_run": last_retention,
        },
    })))
}

/// `PUT /logbook/v1/integrity/status` (administrators): `logbook verify --server`
/// reports its result, `{"ok": bool, "summary": "..."}`, shown by `status`.
#[utoipa::path(
    put, path = "/logbook/v1/integrity/status", tag = "integrity",
    request_body = super::openapi::VerifyReport,
    responses((status = 200, description = "The verification report, as stored", body = super::openapi::VerifyReported))
)]
pub(super) async fn report_verify(
    State(state): State<AppState>,
    principal: Principal,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let value = parse_json(&read_limited(body, 64 * 1024).await?)?;
    let ok = value
        .get("ok")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::bad_request("ok", "must be true or false"))?;
    let summary = value
        .get("summary")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("summary", "must be a string"))?;
    let report = json!({
        "ok": ok,
        "summary": summary,
        "at": Timestamp::now().rfc3339(),
        "by": principal.name,
        "through": "server",
    });
    state
        .store
        .set_integrity_setting(LAST_VERIFY_SETTING, &report.to_string())
        .await?;
    Ok(Json(report))
}
