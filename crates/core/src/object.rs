//! Objects the platform manages (containers, images, services, stacks, nodes...):
//! their last known state, attributes and place in a parent/child tree. Events
//! and the native API update them; waits and related-action filters read them.

use crate::time::Timestamp;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub object_type: String,
    pub object_id: String,
}

impl ObjectRef {
    pub fn new(object_type: impl Into<String>, object_id: impl Into<String>) -> Self {
        ObjectRef {
            object_type: object_type.into(),
            object_id: object_id.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub key: ObjectRef,
    pub name: Option<String>,
    pub state: Option<String>,
    pub parent: Option<ObjectRef>,
    pub uri: Option<String>,
    pub attributes: Map<String, Value>,
    pub domain_id: Option<String>,
    pub updated: Timestamp,
}

/// The state a container is in after a container event (QNAP/Docker vocabulary).
/// `None` means the event does not change whether it runs; `destroy` is handled by
/// the caller, because it removes the object rather than changing its state.
pub fn container_state_after(event_state: &str) -> Option<&'static str> {
    match event_state {
        "start" | "restart" | "unpause" | "running" => Some("running"),
        "create" | "stop" | "die" | "kill" | "stopped" => Some("stopped"),
        "pause" | "paused" => Some("paused"),
        _ => None,
    }
}
