//! `POST /logbook/v1/actions/{uuid}/cancel` and `.../retry`: a user's requests about
//! an action, with the rules every API shares (`crate::actions`): any role but the
//! auditor, on actions of its own domain, where the lifecycle and the platform's
//! flags allow. The Docker Cloud dialect answers the same requests in its shapes.

use super::actions::action_json;
use crate::actions;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

/// Moves a cancelable action to Canceling; the platform finishes it.
#[utoipa::path(
    post, path = "/logbook/v1/actions/{uuid}/cancel", tag = "actions",
    params(("uuid" = String, Path, description = "The action's uuid")),
    responses(
        (status = 200, description = "The action, now Canceling", body = super::openapi::Action),
        (status = 404, description = "No such action", body = super::openapi::ErrorBody),
        (status = 409, description = "The action cannot be canceled now", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let action = actions::cancel(&state, &principal, &uuid).await?;
    Ok(Json(action_json(&action)))
}

/// Starts a new Pending action that repeats a finished one; answers the new action.
#[utoipa::path(
    post, path = "/logbook/v1/actions/{uuid}/retry", tag = "actions",
    params(("uuid" = String, Path, description = "The action's uuid")),
    responses(
        (status = 200, description = "The new Pending action that repeats it", body = super::openapi::Action),
        (status = 404, description = "No such action", body = super::openapi::ErrorBody),
        (status = 409, description = "The action cannot be retried", body = super::openapi::ErrorBody),
    )
)]
pub(super) async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let action = actions::retry(&state, &principal, &uuid).await?;
    Ok(Json(action_json(&action)))
}
