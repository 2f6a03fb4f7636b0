//! Login sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure over
//! TLS), stored as a digest with an expiry.

use super::audit::{self, actions, SecurityEvent};
use super::credentials::SESSION_COOKIE;
use super::secrets;
use crate::error::ApiError;
use crate::state::AppState;
use logbook_core::Timestamp;
use logbook_store::User;
use std::net::IpAddr;

/// Starts a session for the user; returns the `Set-Cookie` value.
pub async fn start(state: &AppState, user_id: i64) -> Result<String, ApiError> {
    let secret = secrets::new_token();
    let ttl = state.config.session_ttl;
    let expires = Timestamp(Timestamp::now().micros() + ttl.as_micros() as i64);
    state
        .store
        .create_session(secrets::digest(&secret), user_id, expires)
        .await?;
    Ok(cookie(&secret, ttl.as_secs(), state.config.tls))
}

/// Ends the session with this digest; returns the `Set-Cookie` value that clears it.
pub async fn end(state: &AppState, digest: &str) -> Result<String, ApiError> {
    state.store.delete_session(digest).await?;
    Ok(cookie("", 0, state.config.tls))
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// Reads `username` and `password` from a JSON or form-encoded login body, for
/// every login that sets the cookie. A login forged by another site (which would
/// sign the browser in as the attacker) is refused first.
pub fn credentials_from_body(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<(String, String), ApiError> {
    super::cross_site::check(&axum::http::Method::POST, headers)?;
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let fields: std::collections::HashMap<String, String> = if is_json {
        let value = crate::body::parse_json(bytes)?;
        let map = value
            .as_object()
            .ok_or_else(|| ApiError::bad_request("body", "must be a JSON object"))?;
        map.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect()
    } else {
        serde_urlencoded::from_bytes(bytes)
            .map_err(|e| ApiError::bad_request("body", format!("is not a form: {e}")))?
    };
    let get = |name: &str| {
        fields
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::bad_request(name, "is required"))
    };
    Ok((get("username")?, get("password")?))
}

/// Verifies a password login and starts a session; see [`login_from`].
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<(super::Principal, String), ApiError> {
    login_from(state, None, username, password).await
}

/// Verifies a password login from `client` and starts a session. Failures are
/// throttled per account and per address (429 + `Retry-After`); success and failure
/// are both journaled.
pub async fn login_from(
    state: &AppState,
    client: Option<IpAddr>,
    username: &str,
    password: &str,
) -> Result<(super::Principal, String), ApiError> {
    state.logins.check(username, client)?;
    let user = match check_password(state, username, password).await? {
        Ok(user) => user,
        Err(domain) => {
            state.logins.failed(username, client);
            let mut event = SecurityEvent::new(actions::LOGIN, "failure", username)
                .message(format!("Login failed for user {username:?}."))
                .from_client(client);
            event.domain = domain;
            audit::journal(state.store.as_ref(), event).await;
            return Err(ApiError::unauthorized());
        }
    };
    state.logins.succeeded(username);
    let cookie = start(state, user.id).await?;
    let principal = super::Principal::from_user(&user, super::Credential::Password);
    let event = SecurityEvent::by(actions::LOGIN, &principal)
        .message(format!("User {username:?} was successfully logged in."))
        .from_client(client);
    audit::journal(state.store.as_ref(), event).await;
    Ok((principal, cookie))
}

/// The active account if the password is right; otherwise `Err` with the domain of
/// the account tried, if it exists (to file the failure there). Unknown accounts
/// cost one argon2 verification too, so timing does not tell which names exist.
pub(super) async fn check_password(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Result<User, Option<String>>, ApiError> {
    let user = state.store.user_by_name(username).await?;
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash.clone());
    let verified = match hash {
        Some(hash) => secrets::verify_password(password.to_string(), hash).await,
        None => {
            let _ = secrets::verify_password(password.to_string(), decoy_hash()).await;
            false
        }
    };
    Ok(match user {
        Some(user) if verified => Ok(user),
        other => Err(other.map(|u| u.domain)),
    })
}

fn decoy_hash() -> String {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY
        .get_or_init(|| secrets::hash_password("no such account").unwrap_or_default())
        .clone()
}

/// Ends the caller's session, if it used one; returns the cookie that clears it.
pub async fn logout(
    state: &AppState,
    principal: &super::Principal,
) -> Result<Option<String>, ApiError> {
    let cookie = match &principal.credential {
        super::Credential::Session { digest } => Some(end(state, digest).await?),
        _ => None,
    };
    let event = SecurityEvent::by(actions::LOGOUT, principal)
        .message(format!("User {:?} logged out.", principal.name));
    audit::journal(state.store.as_ref(), event).await;
    Ok(cookie)
}
