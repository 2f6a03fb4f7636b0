//! The compatible dialects. Each translates one public API document onto the core
//! model and owns nothing else; see `docs/dialects.md` for the field mapping.

mod journal;
pub mod waldur;

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(waldur::router())
        .merge(journal::router())
}
