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
pub mod openapi;
pub(crate) mod records;
mod stream;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every native route, each routed from its handler's `#[utoipa::path]`, so the
/// router and [`openapi`]'s document cannot disagree.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(records::ingest, records::list))
        .routes(routes!(records::count))
        .routes(routes!(records::get_one))
        .routes(routes!(context::context))
        .routes(routes!(integrity::proof))
        .routes(routes!(integrity::key))
        .routes(routes!(integrity::checkpoints))
        .routes(routes!(integrity::latest))
        .routes(routes!(integrity::consistency))
        .routes(routes!(integrity::leaves))
        .routes(routes!(integrity::removed))
        .routes(routes!(integrity::status, integrity::report_verify))
        .routes(routes!(export::export))
        .routes(routes!(histogram::histogram))
        .routes(routes!(stream::stream))
        .routes(routes!(object_list::list))
        .routes(routes!(objects::put, objects::get_one))
        .routes(routes!(actions::create, actions::list))
        .routes(routes!(actions::get_one, actions::update))
        .routes(routes!(actions::append_logs))
        .routes(routes!(action_requests::cancel))
        .routes(routes!(action_requests::retry))
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(login::whoami))
        .routes(routes!(accounts::list_users, accounts::create_user))
        .routes(routes!(accounts::update_user))
        .routes(routes!(accounts::list_tokens, accounts::create_token))
        .routes(routes!(accounts::revoke_token))
}

/// The integer id of a path segment (`/records/{id}`, `/users/{id}`), or 400 naming it.
fn path_id(id: &str) -> Result<i64, crate::error::ApiError> {
    id.parse()
        .map_err(|_| crate::error::ApiError::bad_request("id", format!("{id:?} is not an integer")))
}

#[cfg(test)]
mod tests {
    /// A route added with axum's plain `route` method would be served without being in
    /// the OpenAPI document; every native route goes through `routes!`.
    #[test]
    fn every_native_route_is_routed_from_its_documentation() {
        let plain = concat!(".route", "(");
        assert!(!include_str!("mod.rs").contains(plain));
        let router = include_str!("../router.rs");
        assert!(!router.contains(concat!("route(\"/logbook", "/v1")));
        let doc = crate::router::openapi();
        for path in [
            "/logbook/v1/records",
            "/logbook/v1/openapi.json",
            "/healthz",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path}");
        }
    }
}
