//! Logbook's HTTP face: one axum router that serves the native API and every
//! compatible dialect on one port, over one store.
//!
//! Layers, bottom to top (an arrow only ever points down): `error`, `params`,
//! `body`; the per-node pieces `object_watch`, `stream` and `auth::rate_limit`;
//! `state` (`AppState`, `Config`); `auth` (who is calling); the engines every API
//! shares (`scoped`, `ingest`, `clear`, `actions`, `objects`, `csv_export`); the translating modules
//! `native/`, `dialects/` and `protocols/` (the shippers' ingest); `ui` (the web UI's
//! static pages, a client of the APIs); and `router` at the top, with `json_errors`
//! (what axum answers on its own, made JSON). See ARCHITECTURE.md.
//!
//! Invariants:
//! - *A dialect only translates*: its parameters into a core `Query`, core values
//!   into its shapes, errors into its body. Filtering, paging, tenancy and waiting
//!   live in the engines, core and store, once.
//! - *Every endpoint but `/healthz` and the UI's static pages authenticates*
//!   through [`auth::Principal`]; the pages hold no data.
//! - *Acknowledged means durable*: no handler answers 2xx before the store commits.

pub mod actions;
pub mod auth;
pub mod body;
pub mod clear;
pub mod connections;
pub mod csv_export;
pub mod delay_limit;
pub mod dialects;
pub mod disk;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod idempotency;
pub mod ingest;
pub mod integrity;
pub mod json_errors;
pub mod limits;
pub mod metrics;
pub mod native;
pub mod object_watch;
pub mod objects;
pub mod params;
pub mod protocols;
pub mod router;
pub mod scoped;
pub mod state;
pub mod stream;
pub mod ui;

pub use error::ApiError;
pub use router::router;
pub use state::{AppState, Config};
