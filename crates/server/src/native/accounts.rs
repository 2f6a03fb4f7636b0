//! Account administration over the native API. Users are managed by admins only;
//! tokens by their owner (any role may list, create and revoke its own tokens, so a
//! service account can rotate its key without an admin) and by admins for everyone.
//! A token of someone else answers exactly like one that does not exist (404).

use crate::auth::audit::{self, actions, SecurityEvent};
use crate::auth::tokens::{self, Issuer};
use crate::auth::{secrets, Principal};
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logbook_core::{Role, Timestamp};
use logbook_store::accounts::UserUpdate;
use logbook_store::{NewUser, User};
use serde_json::{json, Map, Value};

const BODY_LIMIT: usize = 64 * 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

/// `GET /logbook/v1/users`
#[utoipa::path(
    get, path = "/logbook/v1/users", tag = "accounts",
    responses((status = 200, description = "Every user (administrators)", body = super::openapi::Users))
)]
pub async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let users: Vec<Value> = state
        .store
        .list_users()
        .await?
        .iter()
        .map(user_json)
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// `POST /logbook/v1/users` `{name, role?, domain?, password?, any_domain?}`
#[utoipa::path(
    post, path = "/logbook/v1/users", tag = "accounts",
    request_body = super::openapi::NewUser,
    responses(
        (status = 201, description = "The new user", body = super::openapi::User),
        (status = 409, description = "The name is taken", body = super::openapi::ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_admin()?;
    let mut fields = object_body(body).await?;
    let name = match fields.remove("name") {
        Some(Value::String(name)) => valid_name(name)?,
        Some(_) => return Err(ApiError::bad_request("name", "must be a string")),
        None => return Err(ApiError::bad_request("name", "is required")),
    };
    let mut new = NewUser {
        name,
        password_hash: None,
        role: Role::User,
        domain: crate::auth::DEFAULT_DOMAIN.into(),
        any_domain: false,
    };
    let update = update_from_fields(fields)?;
    if update.disabled.is_some() {
        return Err(ApiError::bad_request(
            "disabled",
            "cannot be set at creation; PATCH the user",
        ));
    }
    new.password_hash = update.password_hash;
    new.role = update.role.unwrap_or(new.role);
    new.domain = update.domain.unwrap_or(new.domain);
    new.any_domain = update.any_domain.unwrap_or(false);
    let user = state.store.create_user(new).await?;
    let event = SecurityEvent::by(actions::USER_CREATE, &principal)
        .about("user", user.name.clone())
        .in_domain(&user.domain)
        .message(format!(
            "User {:?} created with role {} in domain {:?}.",
            user.name, user.role, user.domain
        ));
    audit::journal(state.store.as_ref(), event).await;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

/// `PATCH /logbook/v1/users/{name}` `{role?, domain?, disabled?, password?, any_domain?}`
#[utoipa::path(
    patch, path = "/logbook/v1/users/{name}", tag = "accounts",
    params(("name" = String, Path, description = "The user's name")),
    request_body = super::openapi::UserUpdate,
    responses(
        (status = 200, description = "The user after the change", body = super::openapi::User),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody),
        (status = 409, description = "It would leave no active administrator", body = super::openapi::ErrorBody),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let update = update_from_fields(object_body(body).await?)?;
    let before = state
        .store
        .user_by_name(&name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let stops_being_admin = before.role.is_admin()
        && !before.disabled
        && (update.disabled == Some(true) || update.role.is_some_and(|r| !r.is_admin()));
    if stops_being_admin && active_admins(&state).await? <= 1 {
        return Err(ApiError::conflict(
            "this is the last active administrator; create another one first",
        ));
    }
    let changed: Vec<&str> = [
        ("role", update.role.is_some()),
        ("domain", update.domain.is_some()),
        ("disabled", update.disabled.is_some()),
        ("password", update.password_hash.is_some()),
        ("any_domain", update.any_domain.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let user = state.store.update_user(&name, update).await?;
    let event = SecurityEvent::by(actions::USER_UPDATE, &principal)
        .about("user", user.name.clone())
        .in_domain(&user.domain)
        .message(format!(
            "User {:?} changed: {}.",
            user.name,
            changed.join(", ")
        ))
        .detail("changed", json!(changed));
    audit::journal(state.store.as_ref(), event).await;
    Ok(Json(user_json(&user)))
}

/// `GET /logbook/v1/tokens`: an admin's lists every token, anyone else's its own.
#[utoipa::path(
    get, path = "/logbook/v1/tokens", tag = "accounts",
    responses((status = 200, description = "The caller's tokens (an administrator's: every token)", body = super::openapi::Tokens))
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let now = Timestamp::now();
    let tokens: Vec<Value> = state
        .store
        .list_tokens()
        .await?
        .iter()
        .filter(|t| principal.role.is_admin() || t.user_id == principal.user_id)
        .map(|t| tokens::token_json(t, now))
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

/// `POST /logbook/v1/tokens` `{name?, expires?, user?}`; answers the secret once.
#[utoipa::path(
    post, path = "/logbook/v1/tokens", tag = "accounts",
    request_body = super::openapi::NewToken,
    responses((status = 201, description = "The new token, with its secret (shown once)", body = super::openapi::CreatedToken))
)]
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = Timestamp::now();
    let (mut name, mut expires, mut owner) = (None, None, None);
    for (key, value) in object_body(body).await? {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("name", Value::String(s)) => name = Some(s),
            ("expires", Value::String(s)) => {
                expires = Some(tokens::parse_expiry(&s, now).ok_or_else(|| {
                    ApiError::bad_request(
                        "expires",
                        "must be a lifetime like 30d or 12h, or a future RFC 3339 time",
                    )
                })?)
            }
            ("user", Value::String(s)) => owner = Some(s),
            ("name" | "expires" | "user", _) => {
                return Err(ApiError::bad_request(key, "must be a string"))
            }
            _ => return Err(ApiError::bad_request(key, "unknown field")),
        }
    }
    let owner = match owner.filter(|o| *o != principal.name) {
        None => state.store.user_by_id(principal.user_id).await?,
        Some(other) if principal.role.is_admin() => state.store.user_by_name(&other).await?,
        Some(_) => {
            return Err(
                ApiError::forbidden("only administrators may create tokens for others").at("user"),
            )
        }
    }
    .ok_or_else(|| ApiError::bad_request("user", "no such user"))?;
    let (secret, token) = tokens::issue(
        state.store.as_ref(),
        &Issuer::of(&principal),
        &owner,
        name,
        expires,
    )
    .await?;
    let mut answer = tokens::token_json(&token, now);
    answer["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `DELETE /logbook/v1/tokens/{id}`: revoking twice is harmless.
#[utoipa::path(
    delete, path = "/logbook/v1/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked (again, harmlessly, if it was)", body = super::openapi::Revoked),
        (status = 404, description = "No such token, or not the caller's", body = super::openapi::ErrorBody),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = super::path_id(&id)?;
    let token = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .filter(|t| principal.role.is_admin() || t.user_id == principal.user_id)
        .ok_or_else(ApiError::not_found)?;
    if !token.revoked {
        tokens::revoke(state.store.as_ref(), &Issuer::of(&principal), &token).await?;
    }
    Ok(Json(json!({ "id": id, "state": "revoked" })))
}

async fn object_body(body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_limited(body, BODY_LIMIT).await?;
    match parse_json(&bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("body", "must be a JSON object")),
    }
}

/// Reads the changeable fields, naming the first bad or unknown one.
fn update_from_fields(fields: Map<String, Value>) -> Result<UserUpdate, ApiError> {
    let mut update = UserUpdate::default();
    for (key, value) in fields {
        let text = |v: &Value| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad_request(&key, "must be a string"))
        };
        let flag = |v: &Value| {
            v.as_bool()
                .ok_or_else(|| ApiError::bad_request(&key, "must be true or false"))
        };
        match key.as_str() {
            "role" => {
                let role = text(&value)?;
                update.role = Some(Role::parse(&role).ok_or_else(|| {
                    ApiError::bad_request("role", "must be admin, auditor, user or writer")
                })?);
            }
            "domain" => {
                let domain = text(&value)?;
                if domain.trim().is_empty() || domain.len() > 200 {
                    return Err(ApiError::bad_request(
                        "domain",
                        "must be 1 to 200 characters",
                    ));
                }
                update.domain = Some(domain);
            }
            "password" => {
                let password = text(&value)?;
                if password.chars().count() < MIN_PASSWORD_CHARS {
                    return Err(ApiError::bad_request(
                        "password",
                        format!("must be at least {MIN_PASSWORD_CHARS} characters long"),
                    ));
                }
                update.password_hash = Some(
                    secrets::hash_password(&password)
                        .map_err(|_| ApiError::bad_request("password", "cannot be hashed"))?,
                );
            }
            "disabled" => update.disabled = Some(flag(&value)?),
            "any_domain" => update.any_domain = Some(flag(&value)?),
            _ => return Err(ApiError::bad_request(key, "unknown field")),
        }
    }
    Ok(update)
}

/// Account names appear in `user:password` (HTTP Basic), so no colon; no spaces or
/// control characters either, so they read unambiguously in the journal.
pub fn valid_name(name: String) -> Result<String, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "name",
            "must be 1 to 64 letters, digits or . _ - @",
        ))
    }
}

async fn active_admins(state: &AppState) -> Result<usize, ApiError> {
    Ok(state
        .store
        .list_users()
        .await?
        .iter()
        .filter(|u| u.role.is_admin() && !u.disabled)
        .count())
}

fn user_json(user: &User) -> Value {
    json!({
        "name": user.name,
        "role": user.role.name(),
        "domain": user.domain,
        "disabled": user.disabled,
        "any_domain": user.any_domain,
        "has_password": user.password_hash.is_some(),
        "created": user.created.rfc3339(),
    })
}
