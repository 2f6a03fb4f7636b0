//! The journal dialect (`/v1/journal/`): the document's curl commands verbatim, every
//! filter and modifier, project and domain filtering, identity, tenancy and errors.

mod support;

use logbook_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Backend, TestServer, ADMIN_PASSWORD};

/// The document's three commands, exactly as printed.
const CURL_POST: &str = r#"curl -X POST -H "X-Auth-Token: $token" -H "Content-Type: application/json" -d '{"journal": {"object_id": "4", "object_type": "node", "action": "node_control.power_on", "status": "Success"}}' http://controller:9360/v1/journal/ | python -m json.tool"#;
const CURL_LIST: &str = r#"curl -X GET -H "X-Auth-Token: $token" -H "Content-Type: application/json" http://controller:9360/v1/journal/ | python -m json.tool"#;
const CURL_COUNT: &str = r#"curl -X GET -H "X-Auth-Token: $token" -H "Content-Type: application/json" http://controller:9360/v1/journal/count | python -m json.tool"#;

const DOCUMENT_KEYS: [&str; 14] = [
    "action",
    "action_arguments",
    "event_time",
    "id",
    "message",
    "object_id",
    "object_type",
    "parent_request_id",
    "request_id",
    "response_code",
    "status",
    "user_id",
    "user_name",
    "domain_id",
];

/// Runs a documented command through a shell, substituting only host, port and token.
async fn curl(server: &TestServer, command: &str) -> Value {
    let command = command.replace("http://controller:9360", &server.base);
    let token = server.token.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("token", token)
            .output()
            .expect("run curl")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = server.http.request(method, server.url(path));
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, value)
}

async fn post(server: &TestServer, token: &str, path: &str, entry: Value) -> (StatusCode, Value) {
    let body = json!({ "journal": entry }).to_string();
    call(server, Some(token), Method::POST, path, Some(&body)).await
}

async fn posted(server: &TestServer, token: &str, path: &str, entry: Value) -> Value {
    let (status, body) = post(server, token, path, entry).await;
    assert_eq!(status, 201, "{body}");
    body["journal"].clone()
}

/// The ids listed (unpaged) and counted for `query`; asserts both agree.
async fn ids_and_count(server: &TestServer, token: &str, query: &str) -> Vec<i64> {
    let sep = if query.is_empty() { "" } else { "&" };
    let (status, listed) = call(
        server,
        Some(token),
        Method::GET,
        &format!("/v1/journal/?limit=1000{sep}{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{query}: {listed}");
    let ids: Vec<i64> = listed["journal"]
        .as_array()
        .expect("journal list")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    let path = format!("/v1/journal/count?{query}");
    let (status, counted) = call(server, Some(token), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{query}: {counted}");
    assert_eq!(counted, json!({"count": ids.len()}), "count for {query}");
    ids
}

fn is_naive_second(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

async fn the_documents_curl_commands_work_unchanged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.store.user_by_name("admin").await.expect("store");
    let admin_id = admin.expect("admin").id.to_string();
    let created = curl(&server, CURL_POST).await;
    let entry = &created["journal"];
    let keys: Vec<&str> = entry
        .as_object()
        .expect("entry")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, DOCUMENT_KEYS, "the document's fields, in its order");
    assert_eq!(entry["action"], "node_control.power_on");
    assert_eq!(entry["action_arguments"], Value::Null);
    assert!(
        is_naive_second(entry["event_time"].as_str().expect("time")),
        "{entry}"
    );
    assert!(entry["id"].is_i64(), "{entry}");
    assert_eq!(entry["message"], Value::Null);
    assert_eq!(entry["object_id"], "4");
    assert_eq!(entry["object_type"], "node");
    assert_eq!(entry["parent_request_id"], Value::Null);
    assert_eq!(
        entry["request_id"].as_str().map(str::len),
        Some(36),
        "{entry}"
    );
    assert_eq!(entry["response_code"], Value::Null);
    assert_eq!(entry["status"], "Success");
    assert_eq!(entry["user_id"], admin_id.as_str());
    assert_eq!(entry["user_name"], "admin");
    assert_eq!(entry["domain_id"], "default");

    let listed = curl(&server, CURL_LIST).await;
    assert_eq!(listed, json!({ "journal": [entry] }));
    let counted = curl(&server, CURL_COUNT).await;
    assert_eq!(counted, json!({"count": 1}));

    // The entry is an ordinary core record; the exact arguments live in `data`.
    let args = "{\"user\":  \"admin\"}";
    let second = posted(
        &server,
        &server.token,
        "/v1/journal/",
        json!({"object_id": 5, "action": "a", "status": "s", "action_arguments": args}),
    )
    .await;
    assert_eq!(second["action_arguments"], args);
    assert_eq!(second["object_id"], "5");
    let native = server
        .get_json(&format!("/logbook/v1/records/{}", second["id"]))
        .await;
    assert_eq!(native["kind"], "journal");
    assert_eq!(native["data"], json!({"action_arguments": args}));
    assert_eq!(
        native["ts"].as_str().map(|t| &t[..19]),
        second["event_time"].as_str()
    );
    server.stop().await;
}

/// Four entries with every field set differently; returns their ids in order.
async fn seed(server: &TestServer) -> [i64; 4] {
    let entries = [
        json!({"object_id": "1", "object_type": "node", "action": "node_control.power_on",
            "status": "success", "event_time": "2018-03-22T07:25:31",
            "action_arguments": "{\"user\": \"admin\"}", "response_code": "200",
            "message": "Powered on node one", "user_id": "u1", "user_name": "alice",
            "domain_id": "d1", "request_id": "r1"}),
        json!({"object_id": "2", "object_type": "node", "action": "node_control.power_off",
            "status": "error", "event_time": "2018-03-22T07:25:32.5",
            "action_arguments": "{\"force\": true}", "response_code": 500,
            "message": "Power off failed", "user_id": "u2", "user_name": "bob",
            "domain_id": "d2", "request_id": "r2"}),
        json!({"object_id": "2fee08b2", "object_type": "project",
            "action": "dashboard.user.login", "status": "success",
            "event_time": "2018-03-23T00:00:00", "action_arguments": null,
            "message": "User \"admin\" was successfully logged in.", "user_id": "u1",
            "user_name": "alice", "domain_id": "d1", "request_id": "r3"}),
        json!({"object_id": "10", "object_type": "volume", "action": "volume.create",
            "status": "pending", "event_time": "2018-03-24T12:00:00",
            "action_arguments": "{\"size\": 10}", "response_code": "202",
            "message": "Creating", "user_id": "u3", "user_name": "carol",
            "domain_id": "d1", "request_id": "r4"}),
    ];
    let mut ids = [0; 4];
    for (i, entry) in entries.into_iter().enumerate() {
        let stored = posted(server, &server.token, "/v1/journal/", entry).await;
        ids[i] = stored["id"].as_i64().expect("id");
    }
    ids
}

async fn every_filter_and_modifier_alone_and_combined(backend: Backend) {
    let server = TestServer::start(backend).await;
    let [e1, e2, e3, e4] = seed(&server).await;
    let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let cases: Vec<(String, Vec<i64>)> = vec![
        (format!("id={e2}"), vec![e2]),
        (format!("id=eq:{e2}"), vec![e2]),
        (format!("id=neq:{e2}"), vec![e4, e3, e1]),
        (format!("id=in:{e1},{e3}"), vec![e3, e1]),
        (format!("id=nin:{e1},{e3}"), vec![e4, e2]),
        (format!("id=gt:{e2}"), vec![e4, e3]),
        (format!("id=gte:{e2}"), vec![e4, e3, e2]),
        (format!("id=lt:{e2}"), vec![e1]),
        (format!("id=lte:{e2}"), vec![e2, e1]),
        (format!("id=startswith:{e4}"), vec![e4]),
        ("object_id=2".into(), vec![e2]),
        ("object_id=like:FEE".into(), vec![e3]),
        ("object_id=startswith:1".into(), vec![e4, e1]),
        ("object_id=gt:2".into(), vec![e3]),
        ("object_type=neq:node".into(), vec![e4, e3]),
        ("object_type=in:project,volume".into(), vec![e4, e3]),
        ("object_type=nin:node,volume".into(), vec![e3]),
        ("action=startswith:node_control.".into(), vec![e2, e1]),
        ("action=like:POWER".into(), vec![e2, e1]),
        ("status=success".into(), vec![e3, e1]),
        ("status=eq:Success".into(), vec![]),
        ("status=lt:f".into(), vec![e2]),
        ("event_time=2018-03-22T07:25:32".into(), vec![e2]),
        ("event_time=eq:2018-03-22T07:25:31".into(), vec![e1]),
        (
            "event_time=neq:2018-03-22T07:25:31".into(),
            vec![e4, e3, e2],
        ),
        ("event_time=gt:2018-03-22T07:25:31".into(), vec![e4, e3, e2]),
        (
            "event_time=gte:2018-03-22T07:25:32".into(),
            vec![e4, e3, e2],
        ),
        ("event_time=lt:2018-03-22T07:25:32".into(), vec![e1]),
        ("event_time=lte:2018-03-22T07:25:32".into(), vec![e2, e1]),
        (
            "event_time=in:2018-03-22T07:25:31,2018-03-24T12:00:00".into(),
            vec![e4, e1],
        ),
        (
            "event_time=nin:2018-03-22T07:25:31,2018-03-24T12:00:00".into(),
            vec![e3, e2],
        ),
        (
            format!("action_arguments={}", enc("{\"user\": \"admin\"}")),
            vec![e1],
        ),
        (
            format!("action_arguments=neq:{}", enc("{\"user\": \"admin\"}")),
            vec![e4, e3, e2],
        ),
        ("action_arguments=like:FORCE".into(), vec![e2]),
        (
            format!("action_arguments=startswith:{}", enc("{\"s")),
            vec![e4],
        ),
        (
            format!("action_arguments=in:{}", enc("{\"size\": 10}")),
            vec![e4],
        ),
        ("response_code=500".into(), vec![e2]),
        ("response_code=in:200,202".into(), vec![e4, e1]),
        ("response_code=gte:3".into(), vec![e2]),
        ("response_code=nin:200".into(), vec![e4, e3, e2]),
        ("message=like:power".into(), vec![e2, e1]),
        ("message=startswith:User".into(), vec![e3]),
        ("user_id=u1".into(), vec![e3, e1]),
        ("user_name=in:bob,carol".into(), vec![e4, e2]),
        ("user_name=lte:b".into(), vec![e3, e1]),
        ("domain_id=d1".into(), vec![e4, e3, e1]),
        ("request_id=r4".into(), vec![e4]),
        ("request_id=nin:r1,r2".into(), vec![e4, e3]),
        // Combined: every condition holds; a repeated parameter adds a condition.
        (
            "status=success&domain_id=d1&event_time=gte:2018-03-23T00:00:00".into(),
            vec![e3],
        ),
        (
            "action=startswith:node&response_code=neq:500&user_name=alice".into(),
            vec![e1],
        ),
        (format!("id=gt:{e1}&id=lt:{e4}"), vec![e3, e2]),
        (
            "message=like:o&object_type=nin:project&request_id=in:r1,r2,r4".into(),
            vec![e2, e1],
        ),
        ("status=".into(), vec![e4, e3, e2, e1]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            ids_and_count(&server, &server.token, &query).await,
            expected,
            "{query}"
        );
    }
    // Paging: newest first, offset then limit; a limit above the maximum is lowered.
    let page = |q: &'static str| {
        let server = &server;
        async move {
            let (_, body) = call(server, Some(&server.token), Method::GET, q, None).await;
            body["journal"]
                .as_array()
                .expect("list")
                .iter()
                .map(|e| e["id"].as_i64().expect("id"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page("/v1/journal/?limit=2").await, vec![e4, e3]);
    assert_eq!(page("/v1/journal/?offset=1&limit=2").await, vec![e3, e2]);
    assert_eq!(page("/v1/journal/?offset=3").await, vec![e1]);
    assert_eq!(
        page("/v1/journal/?limit=100000").await,
        vec![e4, e3, e2, e1]
    );
    // The rendering of a fully set entry.
    let (_, one) = call(
        &server,
        Some(&server.token),
        Method::GET,
        &format!("/v1/journal/?id={e2}"),
        None,
    )
    .await;
    assert_eq!(one["journal"][0]["event_time"], "2018-03-22T07:25:32");
    assert_eq!(one["journal"][0]["response_code"], "500");
    assert_eq!(one["journal"][0]["action_arguments"], "{\"force\": true}");
    server.stop().await;
}

async fn put_object(server: &TestServer, kind: &str, id: &str, parent: Option<(&str, &str)>) {
    let parent = parent.map(|(t, i)| json!({"type": t, "id": i}));
    let response = server
        .request(Method::PUT, &format!("/logbook/v1/objects/{kind}/{id}"))
        .json(&json!({ "parent": parent }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}

async fn project_and_domain_filtering(backend: Backend) {
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

async fn identity_defaults_and_acting_for_others(backend: Backend) {
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

async fn missing_bad_and_unknown_input_is_refused(backend: Backend) {
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

async fn logins_and_logouts_are_journal_entries(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin_id = server
        .store
        .user_by_name("admin")
        .await
        .expect("store")
        .expect("admin")
        .id
        .to_string();
    let login = |password: &'static str| {
        server
            .http
            .post(server.url("/logbook/v1/login"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    assert_eq!(login("wrong").await.expect("send").status(), 401);
    let response = login(ADMIN_PASSWORD).await.expect("send");
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let out = server
        .http
        .post(server.url("/logbook/v1/logout"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(out.status(), 200);
    let (_, body) = call(
        &server,
        Some(&server.token),
        Method::GET,
        "/v1/journal/?action=startswith:dashboard.user.",
        None,
    )
    .await;
    let entries = body["journal"].as_array().expect("list");
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("dashboard.user.logout", "success"),
            ("dashboard.user.login", "success"),
            ("dashboard.user.login", "failure")
        ]
    );
    let login = &entries[1];
    assert_eq!(
        login["message"],
        "User \"admin\" was successfully logged in."
    );
    assert_eq!(
        (login["object_type"].as_str(), login["object_id"].as_str()),
        (Some("user"), Some("admin"))
    );
    assert_eq!(
        (login["user_name"].as_str(), login["user_id"].as_str()),
        (Some("admin"), Some(admin_id.as_str()))
    );
    assert_eq!(login["domain_id"], "default");
    assert!(is_naive_second(login["event_time"].as_str().expect("time")));
    assert_eq!(
        entries[2]["domain_id"],
        Value::Null,
        "a failed login has no domain"
    );
    assert_eq!(
        ids_and_count(
            &server,
            &server.token,
            "action=dashboard.user.login&status=failure"
        )
        .await
        .len(),
        1
    );
    server.stop().await;
}

store_tests!(
    the_documents_curl_commands_work_unchanged,
    every_filter_and_modifier_alone_and_combined,
    project_and_domain_filtering,
    identity_defaults_and_acting_for_others,
    missing_bad_and_unknown_input_is_refused,
    logins_and_logouts_are_journal_entries,
);
