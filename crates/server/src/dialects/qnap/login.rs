//! `POST /api/v1/login` with `username=...&password=...` (a form, or JSON): starts a
//! session cookie (HttpOnly, SameSite=Lax) shared with every other API.

use super::Answer;
use crate::auth::{sessions, ClientAddr};
use crate::body::read_limited;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Login bodies are two short fields; anything bigger is not a login.
const MAX_LOGIN_BYTES: usize = 64 * 1024;

pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Answer<Response> {
    let bytes = read_limited(body, MAX_LOGIN_BYTES).await?;
    let (username, password) = sessions::credentials_from_body(&headers, &bytes)?;
    let (principal, cookie) = sessions::login_from(&state, client, &username, &password).await?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({
            "username": principal.name,
            "isAdmin": principal.role.is_admin(),
        })),
    )
        .into_response())
}
