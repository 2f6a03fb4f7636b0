//! Native session login/logout (`POST /logbook/v1/login` with JSON or a form).

use crate::auth::{sessions, ClientAddr, Credential, Principal};
use crate::body::read_limited;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(body, 64 * 1024).await?;
    let (username, password) = sessions::credentials_from_body(&headers, &bytes)?;
    let (principal, cookie) = sessions::login_from(&state, client, &username, &password).await?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(whoami_json(&principal)),
    )
        .into_response())
}

pub(super) async fn logout(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let cookie = sessions::logout(&state, &principal).await?;
    let mut response = Json(json!({"logged_out": true})).into_response();
    if let Some(cookie) = cookie {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

pub(super) async fn whoami(principal: Principal) -> Json<Value> {
    Json(whoami_json(&principal))
}

fn whoami_json(principal: &Principal) -> Value {
    json!({
        "user": principal.name,
        "role": principal.role.name(),
        "domain": principal.domain,
        "session": matches!(principal.credential, Credential::Session { .. }),
    })
}
