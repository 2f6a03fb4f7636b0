//! Login sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure over
//! TLS), stored as a digest with an expiry.

use super::credentials::SESSION_COOKIE;
use super::secrets;
use crate::error::ApiError;
use crate::AppState;
use logbook_core::Timestamp;

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

/// Reads `username` and `password` from a JSON or form-encoded login body.
pub fn credentials_from_body(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<(String, String), ApiError> {
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

/// Verifies a password login and starts a session. Both outcomes are journaled.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<(super::Principal, String), ApiError> {
    let user = state
        .store
        .user_by_name(username)
        .await?
        .filter(|u| !u.disabled);
    let verified = match user.as_ref().and_then(|u| u.password_hash.clone()) {
        Some(hash) => super::secrets::verify_password(password.to_string(), hash).await,
        None => false,
    };
    let Some(user) = user.filter(|_| verified) else {
        journal(
            state,
            None,
            username,
            "dashboard.user.login",
            "failure",
            format!("Login failed for user {username:?}."),
        )
        .await;
        return Err(ApiError::unauthorized());
    };
    let cookie = start(state, user.id).await?;
    let principal = super::Principal::from_user(&user, super::Credential::Password);
    journal(
        state,
        Some(&principal),
        username,
        "dashboard.user.login",
        "success",
        format!("User {username:?} was successfully logged in."),
    )
    .await;
    Ok((principal, cookie))
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
    let message = format!("User {:?} logged out.", principal.name);
    journal(
        state,
        Some(principal),
        &principal.name,
        "dashboard.user.logout",
        "success",
        message,
    )
    .await;
    Ok(cookie)
}

/// Writes a security event to the journal. A failure to record is logged, not fatal:
/// the login itself already succeeded or failed on its own terms.
async fn journal(
    state: &AppState,
    principal: Option<&super::Principal>,
    username: &str,
    action: &str,
    status: &str,
    message: String,
) {
    let mut record = logbook_core::NewRecord::new(logbook_core::Kind::Journal);
    record.action = Some(action.into());
    record.status = Some(status.into());
    record.object_type = Some("user".into());
    record.object_id = Some(username.into());
    record.user = Some(username.into());
    record.message = Some(message);
    record.domain_id = principal.map(|p| p.domain.clone());
    record.user_id = principal.map(|p| p.user_id.to_string());
    if let Err(e) = state.store.append(vec![record]).await {
        tracing::warn!(error = %e, action, "could not journal a security event");
    }
}
