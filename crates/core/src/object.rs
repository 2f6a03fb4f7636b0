//! Objects the platform manages (containers, images, services, stacks, nodes...):
//! their last known state, attributes and place in a parent/child tree. Events
//! and the native API update them; waits and related-action filters read them.

use crate::record::{Kind, NewRecord, Record};
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

/// The container types whose events drive the object registry.
pub const CONTAINER_TYPES: [&str; 2] = ["lxc", "docker"];

/// What a container event does to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerTransition {
    /// The object exists (created if needed) and is now in this state.
    State(&'static str),
    /// The container is gone: the object is removed.
    Destroy,
}

/// A registry change read from one event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerChange {
    pub key: ObjectRef,
    pub name: Option<String>,
    pub transition: ContainerTransition,
}

/// Reads a container event: a `kind: event` record (category `container` or none)
/// whose `data` has `type` (lxc|docker), `id` or `container`, and `state` (or
/// `action`, Docker's word). The object is keyed by `id` when given (Docker's full
/// id), else by the container name (LXC names are their ids). Anything else,
/// including states that say nothing about running (`port`, `pull`), is `None`.
pub fn container_change(record: &NewRecord) -> Option<ContainerChange> {
    read_container_change(
        record.kind,
        record.category.as_deref(),
        record.data.as_ref(),
    )
}

/// [`container_change`] of a stored record (what a stream shows the event did).
pub fn stored_container_change(record: &Record) -> Option<ContainerChange> {
    read_container_change(
        Some(record.kind),
        record.category.as_deref(),
        record.data.as_ref(),
    )
}

fn read_container_change(
    kind: Option<Kind>,
    category: Option<&str>,
    data: Option<&Map<String, Value>>,
) -> Option<ContainerChange> {
    if kind != Some(Kind::Event) {
        return None;
    }
    if category.is_some_and(|c| c != "container") {
        return None;
    }
    let data = data?;
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let object_type = text("type").filter(|t| CONTAINER_TYPES.contains(t))?;
    let name = text("container");
    let object_id = text("id").or(name)?;
    let event_state = text("state").or_else(|| text("action"))?;
    let transition = if event_state == "destroy" {
        ContainerTransition::Destroy
    } else {
        ContainerTransition::State(container_state_after(event_state)?)
    };
    Some(ContainerChange {
        key: ObjectRef::new(object_type, object_id),
        name: name.map(str::to_string),
        transition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(category: Option<&str>, data: Value) -> NewRecord {
        NewRecord {
            kind: Some(Kind::Event),
            category: category.map(str::to_string),
            data: data.as_object().cloned(),
            ..NewRecord::default()
        }
    }

    #[test]
    fn container_events_become_registry_changes() {
        let docker = event(
            Some("container"),
            json!({"container": "web", "state": "die", "type": "docker", "id": "11ab"}),
        );
        assert_eq!(
            container_change(&docker),
            Some(ContainerChange {
                key: ObjectRef::new("docker", "11ab"),
                name: Some("web".into()),
                transition: ContainerTransition::State("stopped"),
            })
        );
        let lxc = event(
            None,
            json!({"container": "utest", "state": "destroy", "type": "lxc"}),
        );
        let change = container_change(&lxc).expect("a change");
        assert_eq!(change.key, ObjectRef::new("lxc", "utest"));
        assert_eq!(change.transition, ContainerTransition::Destroy);
        let by_action = event(
            None,
            json!({"id": "c1", "action": "start", "type": "docker"}),
        );
        assert_eq!(
            container_change(&by_action).map(|c| c.transition),
            Some(ContainerTransition::State("running"))
        );
    }

    #[test]
    fn other_events_leave_the_registry_alone() {
        let cases = [
            event(
                Some("container"),
                json!({"container": "u", "type": "lxc", "port": "add"}),
            ),
            event(
                Some("image"),
                json!({"id": "x:latest", "state": "create", "type": "docker"}),
            ),
            event(
                None,
                json!({"container": "u", "state": "start", "type": "vm"}),
            ),
            event(None, json!({"state": "start", "type": "lxc"})),
            event(
                None,
                json!({"container": "u", "state": "pull", "type": "lxc"}),
            ),
        ];
        for record in cases {
            assert_eq!(container_change(&record), None, "{:?}", record.data);
        }
        let mut log = event(
            None,
            json!({"container": "u", "state": "start", "type": "lxc"}),
        );
        log.kind = Some(Kind::Log);
        assert_eq!(container_change(&log), None);
    }
}
