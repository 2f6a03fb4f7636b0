//! The compatible dialects. Each translates one public API document onto the core
//! model and owns nothing else; see `docs/dialects.md` for the field mapping.

pub mod dockercloud;
mod journal;
pub mod loki;
mod qnap;
pub mod waldur;

use crate::state::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(qnap::router())
        .merge(waldur::router())
        .merge(journal::router())
        .merge(dockercloud::router())
        .merge(loki::router())
}
