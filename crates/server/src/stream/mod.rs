//! The stream engine: every live stream of every API is a [`Subscription`] over a
//! [`Feed`], which delivers each item once and in order, catching up from the store
//! instead of dropping when a subscriber falls behind. Records come from the
//! [`Hub`], one dispatcher that wakes only the subscribers a batch matches;
//! `actions::follow_logs` is the feed of an action's log lines. Protocol modules
//! parse their parameters into a scoped filter and a resume point, ask for a
//! subscription, and render what it yields.

pub mod hub;
pub mod records;
pub mod subscription;

pub use hub::Hub;
pub use records::{LiveRecord, RecordFeed, Shape, NATIVE_JSON};
pub use subscription::{Arrival, Caught, End, Feed, Subscription};
