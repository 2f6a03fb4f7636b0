//! Journal access: project and domain filters, who an entry names, tenancy, and the
//! refusal of missing, bad and unknown input.

use super::{call, ids_and_count, post, posted};
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub async fn put_object(server: &TestServer, kind: &str, id: &str, parent: Option<(&str, &str)>) {
    let parent = parent.map(|(t, i)| json!({"type": t, "id": i}));
    let response = server
        .request(Method::PUT, &format!("/logbook/v1/objects/{kind}/{id}"))
        .json(&json!({ "parent": parent }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}

pub async fn project_and_domain_filtering(backend: Backend) {
    let server = TestServer::start(backend).await;
    put_object(&server, "region", "R", None).await;
    put_object(&server, "project", "P1", Some(("region", "R"))).await;
    put_object(&server, "instance", "vm1", Some(("project", "P1"))).await;
    put_object(&server, "volume", "v1", Some(("instance", "vm1"))).await;
    put_object(&server, "project", "P2", Some(("region", "R"))).await;
    put_object(&server, "instance", "vm2", Some(("project", "P2"))).await;
    let token = server.token.clone();
    let mut ids = Vec::new();
    for (path, object_type, object_id) in [
        ("/v1/P1/journal/", "node", "77"),   // recorded in the project
        ("/v1/journal/", "instance", "vm1"), // a child of the project
        ("/v1/journal/", "volume", "v1"),    // a grandchild
        ("/v1/journal/", "project", "P1"),   // the project itself
        ("/v1/journal/", "region", "R"),     // its parent: not of the project
        ("/v1/journal/", "instance", "vm2"), // another project's instance
        ("/v1/journal/", "volume", "vm1"),   // same id, other type: unrelated
        ("/v1/P2/journal/", "node", "78"),
    ] {
        let entry = json!({"object_id": object_id, "object_type": object_type,
            "action": "x", "status": "success"});
        ids.push(
            posted(&server, &token, path, entry).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let expect = |idx: &[usize]| idx.iter().rev().map(|i| ids[*i]).collect::<Vec<_>>();
    assert_eq!(
        ids_and_count(&server, &token, "filter_project_id=P1").await,
        expect(&[0, 1, 2, 3])
    );
    assert_eq!(
        ids_and_count(&server, &token, "filter_project_id=P2").await,
        expect(&[5, 7])
    );
    assert_eq!(
        ids_and_count(&server, &token, "filter_project_id=P9").await,
        expect(&[])
    );
    assert_eq!(
        ids_and_count(
            &server,
            &token,
            "filter_project_id=P1&object_type=neq:project"
        )
        .await,
        expect(&[0, 1, 2])
    );
    let native = server
        .get_json(&format!("/logbook/v1/records/{}", ids[0]))
        .await;
    assert_eq!(native["project_id"], "P1");

    // Domains: entries in the domain, and entries its users made elsewhere.
    let alice = server.user_with_token("alice", Role::User, "dom-a").await;
    let alice_id = server
        .store
        .user_by_name("alice")
        .await
        .expect("store")
        .expect("alice")
        .id;
    let own = posted(
        &server,
        &alice,
        "/v1/journal/",
        json!({"object_id": "o1", "action": "a", "status": "s"}),
    )
    .await;
    assert_eq!(own["domain_id"], "dom-a");
    assert_eq!(own["user_id"], alice_id.to_string());
    let elsewhere = posted(
        &server,
        &token,
        "/v1/journal/",
        json!({"object_id": "o2",
        "action": "a", "status": "s", "domain_id": "dom-b", "user_id": alice_id.to_string(),
        "user_name": "alice"}),
    )
    .await;
    let stranger = posted(
        &server,
        &token,
        "/v1/journal/",
        json!({"object_id": "o3",
        "action": "a", "status": "s", "domain_id": "dom-b", "user_id": "999", "user_name": "eve"}),
    )
    .await;
    let in_a = posted(
        &server,
        &token,
        "/v1/journal/",
        json!({"object_id": "o4",
        "action": "a", "status": "s", "domain_id": "dom-a", "user_id": "999"}),
    )
    .await;
    let id = |v: &Value| v["id"].as_i64().expect("id");
    assert_eq!(
        ids_and_count(&server, &token, "filter_domain_id=dom-a").await,
        vec![id(&in_a), id(&elsewhere), id(&own)]
    );
    assert_eq!(
        ids_and_count(&server, &token, "filter_domain_id=dom-b").await,
        vec![id(&stranger), id(&elsewhere)]
    );
    assert_eq!(
        ids_and_count(&server, &token, "filter_domain_id=dom-a&user_name=alice").await,
        vec![id(&elsewhere), id(&own)]
    );
    // Tenancy: alice reads her domain only, whatever she filters on.
    assert_eq!(
        ids_and_count(&server, &alice, "").await,
        vec![id(&in_a), id(&own)]
    );
    assert_eq!(
        ids_and_count(&server, &alice, "filter_domain_id=dom-a").await,
        vec![id(&in_a), id(&own)],
        "her own entry made in dom-b is not hers to read"
    );
    assert_eq!(
        ids_and_count(&server, &alice, "filter_domain_id=dom-b").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        ids_and_count(&server, &alice, "domain_id=dom-b").await,
        Vec::<i64>::new()
    );
    server.stop().await;
}

pub async fn identity_defaults_and_acting_for_others(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user_with_token("ulla", Role::User, "dom-u").await;
    let writer = server.user_with_token("svc", Role::Writer, "dom-u").await;
    let auditor = server.user_with_token("otto", Role::Auditor, "dom-u").await;
    let ulla_id = server
        .store
        .user_by_name("ulla")
        .await
        .expect("store")
        .expect("ulla")
        .id
        .to_string();
    let base = || json!({"object_id": "4", "action": "a", "status": "s"});
    let with = |k: &str, v: &str| {
        let mut e = base();
        e[k] = json!(v);
        e
    };
    for (entry, field) in [
        (with("user_id", "12345"), "journal.user_id"),
        (with("user_name", "root"), "journal.user_name"),
    ] {
        let (status, body) = post(&server, &user, "/v1/journal/", entry).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["field"], field);
        assert_eq!(body["error"]["code"], 403);
    }
    let own = posted(&server, &user, "/v1/journal/", with("user_name", "ulla")).await;
    assert_eq!(
        (own["user_id"].as_str(), own["user_name"].as_str()),
        (Some(ulla_id.as_str()), Some("ulla"))
    );
    let mut on_behalf = with("user_id", "5e48b18b-844d-477c-ab8d-6789a5382a14");
    on_behalf["user_name"] = json!("admin");
    on_behalf["request_id"] = json!("req-1");
    on_behalf["parent_request_id"] = json!("req-0");
    let stored = posted(&server, &writer, "/v1/journal/", on_behalf).await;
    assert_eq!(stored["user_id"], "5e48b18b-844d-477c-ab8d-6789a5382a14");
    assert_eq!(stored["user_name"], "admin");
    assert_eq!(stored["domain_id"], "dom-u");
    assert_eq!(
        (
            stored["request_id"].as_str(),
            stored["parent_request_id"].as_str()
        ),
        (Some("req-1"), Some("req-0"))
    );
    let only_name = posted(
        &server,
        &writer,
        "/v1/journal/",
        with("user_name", "someone"),
    )
    .await;
    assert_eq!(
        only_name["user_id"],
        Value::Null,
        "another user's id is not invented"
    );
    let (status, body) = post(
        &server,
        &writer,
        "/v1/journal/",
        with("domain_id", "elsewhere"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("journal.domain_id"))
    );
    let (status, _) = post(&server, &auditor, "/v1/journal/", base()).await;
    assert_eq!(status, 403);
    // A client's request id header is kept.
    let response = server
        .http
        .post(server.url("/v1/journal/"))
        .header("X-Auth-Token", &user)
        .header("X-OpenStack-Request-ID", "req-abc")
        .json(&json!({"journal": base()}))
        .send()
        .await
        .expect("send");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["journal"]["request_id"], "req-abc");
    server.stop().await;
}

pub async fn missing_bad_and_unknown_input_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.token.clone();
    for path in ["/v1/journal/", "/v1/journal/count"] {
        for bad in [None, Some("lbk_not-a-real-token")] {
            let (status, body) = call(&server, bad, Method::GET, path, None).await;
            assert_eq!(status, 401, "{path}");
            assert_eq!(body["error"]["code"], 401);
        }
    }
    let (status, _) = call(&server, None, Method::POST, "/v1/journal/", Some("{}")).await;
    assert_eq!(status, 401);
    let bodies = [
        (
            r#"{"journal": {"action": "a", "status": "s"}}"#,
            "journal.object_id",
        ),
        (
            r#"{"journal": {"object_id": "1", "status": "s"}}"#,
            "journal.action",
        ),
        (
            r#"{"journal": {"object_id": "1", "action": "a"}}"#,
            "journal.status",
        ),
        (
            r#"{"journal": {"object_id": "1", "action": "a", "status": "s", "colour": 1}}"#,
            "journal.colour",
        ),
        (
            r#"{"journal": {"object_id": "1", "action": "a", "status": "s", "event_time": "soon"}}"#,
            "journal.event_time",
        ),
        (r#"[{"journal": {}}]"#, "body"),
        (r#""journal""#, "body"),
        (r#"{"journal": 5}"#, "journal"),
        (r#"{"entry": {}}"#, "journal"),
        (r#"{"journal": "#, "body"),
    ];
    for (body, field) in bodies {
        let (status, answer) = call(
            &server,
            Some(&token),
            Method::POST,
            "/v1/journal/",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let queries = [
        ("status=approx:x", "status", "approx"),
        ("colour=red", "colour", "colour"),
        ("limit=0", "limit", "limit"),
        ("limit=many", "limit", "many"),
        ("offset=-1", "offset", "offset"),
        ("id=abc", "id", "abc"),
        ("id=like:1", "id", "like"),
        ("event_time=startswith:2018", "event_time", "startswith"),
        ("event_time=tomorrow", "event_time", "tomorrow"),
        ("request_id=in:", "request_id", "at least one"),
    ];
    for path in ["/v1/journal/", "/v1/journal/count"] {
        for (query, field, mentioned) in queries {
            let (status, answer) = call(
                &server,
                Some(&token),
                Method::GET,
                &format!("{path}?{query}"),
                None,
            )
            .await;
            assert_eq!(status, 400, "{query}: {answer}");
            assert_eq!(answer["error"]["field"], field, "{query}");
            let message = answer["error"]["message"].as_str().expect("message");
            assert!(message.contains(mentioned), "{query}: {message}");
        }
    }
    assert_eq!(
        ids_and_count(&server, &token, "").await,
        Vec::<i64>::new(),
        "nothing half-written"
    );
    server.stop().await;
}
