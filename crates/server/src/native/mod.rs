//! The native API under `/logbook/v1/`: the whole core model with its own names.

pub mod actions;
mod export;
pub mod filters;
mod login;
pub mod objects;
mod records;

use crate::AppState;
use axum::routing::{get, post, put};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/logbook/v1/records",
            post(records::ingest).get(records::list),
        )
        .route("/logbook/v1/records/count", get(records::count))
        .route("/logbook/v1/records/{id}", get(records::get_one))
        .route("/logbook/v1/export", get(export::export))
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
        .route("/logbook/v1/login", post(login::login))
        .route("/logbook/v1/logout", post(login::logout))
        .route("/logbook/v1/whoami", get(login::whoami))
}
