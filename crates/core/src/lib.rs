//! The domain of Logbook: what a record, an action and an object are, how they are
//! queried and which changes are legal. Nothing here does I/O, speaks HTTP or knows
//! SQL, so every rule can be tested with plain values and shared by every dialect.

pub mod account;
pub mod action;
pub mod error;
pub mod histogram;
pub mod integrity;
pub mod level;
pub mod object;
pub mod query;
pub mod record;
pub mod record_json;
pub mod shipped;
pub mod spreadsheet;
pub mod time;

pub use account::Role;
pub use action::{Action, ActionState, NewAction};
pub use error::{Error, FieldError};
pub use histogram::Histogram;
pub use level::Level;
pub use object::{Object, ObjectRef};
pub use query::{Condition, Cursor, Field, Order, Query, SortKey};
pub use record::{Kind, NewRecord, Record};
pub use shipped::Shipped;
pub use time::Timestamp;
