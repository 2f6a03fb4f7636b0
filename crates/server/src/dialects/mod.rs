//! The compatible dialects. Each translates one public API document onto the core
//! model and owns nothing else; see `docs/dialects.md` for the field mapping.

pub mod dockercloud;
mod journal;
pub mod loki;
mod qnap;
pub mod waldur;

use crate::state::AppState;
use axum::Router;

/// The query-string parsing of a dialect's listings (`dialect` picks one), what
/// their handlers run before anything is looked up; for `crate::fuzzing`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn parse_query(dialect: u8, raw: Option<&str>) -> Result<(), crate::ApiError> {
    match dialect % 5 {
        0 => qnap::parse_query(raw),
        1 => waldur::parse_query(raw),
        2 => journal::parse_query(raw),
        3 => dockercloud::parse_query(raw),
        _ => loki::parse_query(raw),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(qnap::router())
        .merge(waldur::router())
        .merge(journal::router())
        .merge(dockercloud::router())
        .merge(loki::router())
}
