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

#[utoipa::path(
    post, path = "/logbook/v1/login", tag = "session",
    security(()),
    request_body(content((super::openapi::Credentials = "application/json"), (super::openapi::Credentials = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = super::openapi::Whoami,
            headers(("Set-Cookie" = String, description = "logbook_session"))),
        (status = 401, description = "Wrong user name or password", body = super::openapi::ErrorBody),
    )
)]
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

#[utoipa::path(
    post, path = "/logbook/v1/logout", tag = "session",
    responses((status = 200, description = "The session ends (a token or basic caller has none)", body = super::openapi::LoggedOut))
)]
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

#[utoipa::path(
    get, path = "/logbook/v1/whoami", tag = "session",
    responses((status = 200, description = "Who the caller is", body = super::openapi::Whoami))
)]
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
