//! What a Docker Cloud user changes through python-dockercloud (cancel, retry) and
//! the Events stream that reports changes.

use super::fixture::Fixture;
use crate::support::Backend;
use base64::Engine;
use serde_json::{json, Value};

store_tests!(
    cancel_and_retry_are_allowed_and_refused_by_state,
    events_stream_delivers_a_state_change,
);

async fn cancel_and_retry_are_allowed_and_refused_by_state(backend: Backend) {
    let f = Fixture::start(backend).await;
    let cancelable = f
        .uuid(json!({"action": "Stack Redeploy", "can_be_canceled": true,
                     "object": "/api/app/v1/stack/s/"}))
        .await;
    let pending = f
        .uuid(json!({"action": "Wait", "state": "Pending", "can_be_canceled": true}))
        .await;
    let stubborn = f.uuid(json!({"action": "Node Deploy"})).await;
    let finished = f
        .uuid(
            json!({"action": "Service Scale", "state": "Failed", "can_be_retried": true,
                     "can_be_canceled": true, "method": "POST",
                     "path": "/api/app/v1/service/x/scale/", "object": "/api/app/v1/service/x/"}),
        )
        .await;
    let once = f
        .uuid(json!({"action": "Terminate", "state": "Success"}))
        .await;
    let result = f
        .client(
            "dockercloud_lifecycle.py",
            json!({
                "cancel": [cancelable, pending],
                "retry": [finished],
                "refuse": {"cancel": [stubborn, finished], "retry": [once, stubborn]},
            }),
        )
        .await;
    for uuid in [&cancelable, &pending] {
        let canceled = &result["canceled"][uuid];
        assert_eq!(canceled["state"], "Canceling", "{canceled}");
        assert_eq!(canceled["uuid"], uuid.as_str());
        assert_eq!(
            canceled["dockercloud_action_uri"],
            format!("/api/audit/v1/action/{uuid}/")
        );
        assert_eq!(canceled["can_be_canceled"], false, "already canceling");
    }
    let retried = &result["retried"][&finished];
    let new_uuid = retried["uuid"].as_str().expect("uuid").to_string();
    assert_ne!(new_uuid, finished);
    assert_eq!(retried["state"], "Pending");
    assert_eq!(retried["action"], "Service Scale");
    assert_eq!(retried["object"], "/api/app/v1/service/x/");
    assert_eq!(retried["path"], "/api/app/v1/service/x/scale/");
    assert_eq!(retried["user"], "alice");
    assert_eq!(retried["end_date"], Value::Null);
    assert_eq!(
        retried["retry_of"],
        format!("/api/audit/v1/action/{finished}/")
    );
    assert_eq!(
        retried["dockercloud_action_uri"],
        format!("/api/audit/v1/action/{new_uuid}/")
    );
    for key in [
        format!("cancel {stubborn}"),
        format!("cancel {finished}"),
        format!("retry {once}"),
        format!("retry {stubborn}"),
    ] {
        let refused = &result["refused"][&key];
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Status 409"), "{key}: {refused}");
        assert!(
            message.contains("\"error\""),
            "{key}: a JSON error body: {refused}"
        );
    }
    // Refusals changed nothing; the original of a retry stays as it was.
    let state_of = |uuid: String| {
        let f = &f;
        async move {
            f.server
                .get_json(&format!("/logbook/v1/actions/{uuid}"))
                .await["state"]
                .clone()
        }
    };
    assert_eq!(state_of(stubborn.clone()).await, "In progress");
    assert_eq!(state_of(finished.clone()).await, "Failed");
    assert_eq!(state_of(once.clone()).await, "Success");
    // Each change is an event record, readable like any other event.
    let events = f
        .server
        .get_json(&format!(
            "/logbook/v1/records?kind=event&category=action&object_id={cancelable}&order=asc"
        ))
        .await;
    let events = events["records"].as_array().expect("records");
    let statuses: Vec<&str> = events
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["In progress", "Canceling"]);
    assert_eq!(events[1]["action"], "update");
    assert_eq!(events[1]["user"], "alice");
    assert_eq!(events[1]["domain_id"], "acme");
    assert_eq!(events[1]["data"]["previous_state"], "In progress");
    assert_eq!(events[1]["data"]["object"], "/api/app/v1/stack/s/");
    let retry_events = f
        .server
        .get_json(&format!(
            "/logbook/v1/records?kind=event&object_id={new_uuid}"
        ))
        .await;
    assert_eq!(
        retry_events["records"][0]["data"]["retry_of"],
        finished.as_str()
    );
    f.server.stop().await;
}

async fn events_stream_delivers_a_state_change(backend: Backend) {
    let f = Fixture::start(backend).await;
    let uuid = f
        .uuid(json!({"action": "Container Start", "object": "/api/app/v1/container/c1/"}))
        .await;
    let bad = base64::engine::general_purpose::STANDARD.encode("alice:wrong-key");
    // Basic user:password works as well as user:apikey.
    let result = f
        .client_as(
            "dockercloud_events.py",
            json!({"uuid": uuid, "state": "Failed", "bad_auth": bad}),
            "alice:alice-password",
        )
        .await;
    let received = result["received"].as_array().expect("received");
    let event = received
        .iter()
        .find(|e| e["type"] == "action")
        .unwrap_or_else(|| panic!("no action event in {received:?}"));
    assert_eq!(event["action"], "update");
    assert_eq!(event["uuid"], uuid.as_str());
    assert_eq!(event["state"], "Failed");
    assert_eq!(
        event["resource_uri"],
        format!("/api/audit/v1/action/{uuid}/")
    );
    assert_eq!(event["parents"], json!(["/api/app/v1/container/c1/"]));
    let datetime = event["datetime"].as_str().expect("datetime");
    assert!(
        datetime.ends_with(" +0000") && datetime.contains(", "),
        "{datetime}"
    );
    assert_eq!(result["auth_error"], "Not Authorized");
    f.server.stop().await;
}
