//! The native endpoints and parameters the web UI needs beyond the records API:
//! excluding values (`not_<field>`), a record's context, the object listing and the
//! user's cancel and retry requests.

use crate::accounts_support::send;
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

store_tests!(
    excluded_values_leave_every_other_record,
    context_is_the_same_source_and_instance_around_a_record,
    objects_are_listed_by_root_parent_type_and_domain,
    users_cancel_and_retry_actions_through_the_native_api,
);

/// A GET the server answers with 400 naming `field`.
async fn refused(server: &TestServer, path: &str, field: &str) {
    let (status, body) = send(server, Method::GET, path, &server.token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    assert_eq!(body["field"], field, "{path}: {body}");
}

fn ids(answer: &Value, key: &str) -> Vec<i64> {
    answer[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {answer}"))
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

async fn excluded_values_leave_every_other_record(backend: Backend) {
    let server = TestServer::start(backend).await;
    let all = server
        .ingest(json!([
            {"kind": "log", "level": "INFO", "category": "image", "message": "a"},
            {"kind": "log", "level": "ERROR", "category": "network", "message": "b"},
            {"kind": "log", "level": "WARN", "message": "c, no category"},
            {"kind": "event", "level": "INFO", "category": "volume", "message": "d"},
        ]))
        .await;
    let listed = |query: &'static str| {
        let server = &server;
        async move {
            let mut found = ids(
                &server
                    .get_json(&format!("/logbook/v1/records?{query}"))
                    .await,
                "records",
            );
            found.sort();
            let count = server
                .get_json(&format!("/logbook/v1/records/count?{query}"))
                .await;
            assert_eq!(count["count"], found.len(), "{query}");
            found
        }
    };
    // A record without the field is not one of the excluded values.
    assert_eq!(
        listed("not_category=image,volume").await,
        vec![all[1], all[2]]
    );
    assert_eq!(
        listed("not_category=image&not_category=network&kind=log").await,
        vec![all[2]]
    );
    assert_eq!(listed("not_level=INFO").await, vec![all[1], all[2]]);
    assert_eq!(
        listed("category=image,network&not_category=network").await,
        vec![all[0]]
    );
    let histogram = server
        .get_json("/logbook/v1/histogram?not_level=info&since=0")
        .await;
    assert_eq!(histogram["total"], 2);
    refused(&server, "/logbook/v1/records?not_level=LOUD", "not_level").await;
    server.stop().await;
}

async fn context_is_the_same_source_and_instance_around_a_record(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut batch = Vec::new();
    for i in 0..30 {
        // Every third record is of the same source and instance; the rest interleave.
        let (source, instance) = match i % 3 {
            0 => ("api", "node-1"),
            1 => ("api", "node-2"),
            _ => ("worker", "node-1"),
        };
        batch.push(json!({"kind": "log", "source": source, "instance": instance, "message": format!("line {i}")}));
    }
    let written = server.ingest(Value::Array(batch)).await;
    let same: Vec<i64> = written.iter().copied().step_by(3).collect();
    let middle = same[5];
    let context = server
        .get_json(&format!(
            "/logbook/v1/records/{middle}/context?before=3&after=2"
        ))
        .await;
    assert_eq!(context["record"]["id"], middle);
    assert_eq!(context["by"], json!(["source", "instance"]));
    assert_eq!(ids(&context, "before"), same[2..5].to_vec(), "oldest first");
    assert_eq!(ids(&context, "after"), same[6..8].to_vec());
    // At the edges there is simply less.
    let first = server
        .get_json(&format!("/logbook/v1/records/{}/context", same[0]))
        .await;
    assert_eq!(ids(&first, "before"), Vec::<i64>::new());
    assert_eq!(ids(&first, "after"), same[1..].to_vec());
    // Another grouping, e.g. the instance alone.
    let by_instance = server
        .get_json(&format!(
            "/logbook/v1/records/{middle}/context?by=instance&before=1&after=1"
        ))
        .await;
    assert_eq!(ids(&by_instance, "before"), vec![middle - 1]);
    assert_eq!(ids(&by_instance, "after"), vec![middle + 2]);

    // A domain user sees only its domain around the record, and another domain's
    // record is not found.
    let user = server.user_with_token("ctx-user", Role::User, "acme").await;
    let acme = server
        .ingest(json!([
            {"kind": "log", "source": "api", "instance": "node-1", "domain_id": "acme", "message": "acme 1"},
            {"kind": "log", "source": "api", "instance": "node-1", "domain_id": "acme", "message": "acme 2"},
        ]))
        .await;
    let (status, mine) = send(
        &server,
        Method::GET,
        &format!("/logbook/v1/records/{}/context", acme[1]),
        &user,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(ids(&mine, "before"), vec![acme[0]]);
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("/logbook/v1/records/{middle}/context"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (query, field) in [
        ("before=501", "before"),
        ("after=-1", "after"),
        ("by=message", "by"),
        ("limit=3", "limit"),
    ] {
        refused(
            &server,
            &format!("/logbook/v1/records/{middle}/context?{query}"),
            field,
        )
        .await;
    }
    server.stop().await;
}

async fn put_object(server: &TestServer, path: &str, body: Value) {
    let response = server
        .request(Method::PUT, &format!("/logbook/v1/objects/{path}"))
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200, "{path}");
}

fn keys(answer: &Value) -> Vec<String> {
    answer["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("no objects in {answer}"))
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["type"].as_str().expect("type"),
                o["id"].as_str().expect("id")
            )
        })
        .collect()
}

async fn objects_are_listed_by_root_parent_type_and_domain(backend: Backend) {
    let server = TestServer::start(backend).await;
    put_object(
        &server,
        "stack/shop",
        json!({"name": "shop", "state": "Running"}),
    )
    .await;
    for (id, state) in [("web", "Running"), ("db", "Stopped")] {
        put_object(
            &server,
            &format!("service/{id}"),
            json!({"state": state, "parent": {"type": "stack", "id": "shop"}}),
        )
        .await;
    }
    put_object(
        &server,
        "container/web-1",
        json!({"state": "Running", "parent": {"type": "service", "id": "web"}}),
    )
    .await;
    put_object(
        &server,
        "node/acme-1",
        json!({"state": "Deployed", "domain_id": "acme"}),
    )
    .await;

    let roots = server.get_json("/logbook/v1/objects?root=true").await;
    assert_eq!(keys(&roots), ["node/acme-1", "stack/shop"]);
    assert_eq!(roots["total"], 2);
    let children = server
        .get_json("/logbook/v1/objects?parent_type=stack&parent_id=shop")
        .await;
    assert_eq!(keys(&children), ["service/db", "service/web"]);
    assert_eq!(
        children["objects"][1]["parent"],
        json!({"type": "stack", "id": "shop"})
    );
    let running = server
        .get_json("/logbook/v1/objects?state=Running&type=service,container")
        .await;
    assert_eq!(keys(&running), ["container/web-1", "service/web"]);
    let page = server
        .get_json("/logbook/v1/objects?limit=2&offset=1")
        .await;
    assert_eq!(keys(&page), ["node/acme-1", "service/db"]);
    assert_eq!(page["total"], 5);

    put_object(
        &server,
        "service/web",
        json!({"uri": "/api/app/v1/service/web/"}),
    )
    .await;
    let by_uri = server
        .get_json("/logbook/v1/objects?uri=/api/app/v1/service/web/")
        .await;
    assert_eq!(keys(&by_uri), ["service/web"]);

    let user = server.user_with_token("obj-user", Role::User, "acme").await;
    let (status, mine) = send(&server, Method::GET, "/logbook/v1/objects", &user, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&mine), ["node/acme-1"]);
    assert_eq!(mine["total"], 1);
    let (_, foreign) = send(
        &server,
        Method::GET,
        "/logbook/v1/objects?uri=/api/app/v1/service/web/",
        &user,
        None,
    )
    .await;
    assert_eq!(
        foreign["total"], 0,
        "another domain's object is not found by uri"
    );

    for (query, field) in [
        ("parent_type=stack", "parent_id"),
        ("root=true&parent_type=stack&parent_id=shop", "root"),
        ("limit=0", "limit"),
        ("kind=x", "kind"),
    ] {
        refused(&server, &format!("/logbook/v1/objects?{query}"), field).await;
    }
    server.stop().await;
}

async fn users_cancel_and_retry_actions_through_the_native_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user_with_token("act-user", Role::User, "acme").await;
    let auditor = server
        .user_with_token("act-auditor", Role::Auditor, "default")
        .await;
    let (status, running) = send(
        &server,
        Method::POST,
        "/logbook/v1/actions",
        &server.token,
        Some(json!({"action": "Service Redeploy", "domain_id": "acme", "can_be_canceled": true, "can_be_retried": true})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{running}");
    let uuid = running["uuid"].as_str().expect("uuid").to_string();
    let path = |verb: &str| format!("/logbook/v1/actions/{uuid}/{verb}");

    let (status, _) = send(&server, Method::POST, &path("cancel"), &auditor, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "auditors only read");
    let (status, canceled) = send(&server, Method::POST, &path("cancel"), &user, None).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["state"], "Canceling");
    let (status, again) = send(&server, Method::POST, &path("cancel"), &user, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["field"], "state");
    let (status, early) = send(&server, Method::POST, &path("retry"), &user, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "not final yet: {early}");

    let (status, _) = send(
        &server,
        Method::PATCH,
        &format!("/logbook/v1/actions/{uuid}"),
        &server.token,
        Some(json!({"state": "Canceled"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, retried) = send(&server, Method::POST, &path("retry"), &user, None).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["state"], "Pending");
    assert_eq!(retried["retry_of"], json!(uuid));
    assert_eq!(retried["user"], "act-user");

    // Another domain's action answers like an unknown one.
    let stranger = server
        .user_with_token("act-stranger", Role::User, "other")
        .await;
    let (status, _) = send(&server, Method::POST, &path("cancel"), &stranger, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}
