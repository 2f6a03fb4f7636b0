//! The native API under `/logbook/v1/`: the whole core model with its own names.

pub mod accounts;
mod action_requests;
pub mod actions;
mod context;
pub mod export;
pub mod filters;
mod histogram;
mod integrity;
mod login;
mod object_list;
pub mod objects;
pub(crate) mod records;
mod stream;

use crate::state::AppState;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/logbook/v1/records",
            post(records::ingest).get(records::list),
        )
        .route("/logbook/v1/records/count", get(records::count))
        .route("/logbook/v1/records/{id}", get(records::get_one))
        .route("/logbook/v1/records/{id}/context", get(context::context))
        .route("/logbook/v1/records/{id}/proof", get(integrity::proof))
        .route("/logbook/v1/integrity/key", get(integrity::key))
        .route(
            "/logbook/v1/integrity/checkpoints",
            get(integrity::checkpoints),
        )
        .route(
            "/logbook/v1/integrity/checkpoints/latest",
            get(integrity::latest),
        )
        .route(
            "/logbook/v1/integrity/consistency",
            get(integrity::consistency),
        )
        .route("/logbook/v1/integrity/leaves", get(integrity::leaves))
        .route("/logbook/v1/integrity/removed", get(integrity::removed))
        .route(
            "/logbook/v1/integrity/status",
            get(integrity::status).put(integrity::report_verify),
        )
        .route("/logbook/v1/export", get(export::export))
        .route("/logbook/v1/histogram", get(histogram::histogram))
        .route("/logbook/v1/stream", get(stream::stream))
        .route("/logbook/v1/objects", get(object_list::list))
        .route(
            "/logbook/v1/objects/{object_type}/{object_id}",
            put(objects::put).get(objects::get_one),
        )
        .route(
            "/logbook/v1/actions",
            post(actions::create).get(actions::list),
        )
        .route(
            "/logbook/v1/actions/{uuid}",
            get(actions::get_one).patch(actions::update),
        )
        .route(
            "/logbook/v1/actions/{uuid}/logs",
            post(actions::append_logs),
        )
        .route(
            "/logbook/v1/actions/{uuid}/cancel",
            post(action_requests::cancel),
        )
        .route(
            "/logbook/v1/actions/{uuid}/retry",
            post(action_requests::retry),
        )
        .route("/logbook/v1/login", post(login::login))
        .route("/logbook/v1/logout", post(login::logout))
        .route("/logbook/v1/whoami", get(login::whoami))
        .route(
            "/logbook/v1/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route("/logbook/v1/users/{name}", patch(accounts::update_user))
        .route(
            "/logbook/v1/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route("/logbook/v1/tokens/{id}", delete(accounts::revoke_token))
}

/// The integer id of a path segment (`/records/{id}`, `/users/{id}`), or 400 naming it.
fn path_id(id: &str) -> Result<i64, crate::error::ApiError> {
    id.parse()
        .map_err(|_| crate::error::ApiError::bad_request("id", format!("{id:?} is not an integer")))
}
