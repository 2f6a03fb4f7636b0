//! The Docker Cloud audit dialect and the native actions API, judged by the real
//! python-dockercloud 1.0.12 (scripts in `tests/python/dockercloud_*.py`) against a
//! live node; the platform side is driven through `/logbook/v1/actions`.

mod support;

use base64::Engine;
use logbook_core::Role;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use support::{Backend, TestServer};

store_tests!(
    lists_every_page_and_filter_through_the_client,
    include_related_follows_the_object_tree,
    logs_replay_the_tail_and_follow_until_the_action_ends,
    cancel_and_retry_are_allowed_and_refused_by_state,
    events_stream_delivers_a_state_change,
    native_api_validates_and_refuses_illegal_transitions,
    streams_answer_pings_take_namespaces_and_carry_object_changes,
);

/// A node with a platform (writer), alice (a user of acme) and bob (of globex).
struct Fixture {
    server: TestServer,
    platform: String,
    alice: String,
    bob: String,
}

impl Fixture {
    async fn start(backend: Backend) -> Fixture {
        let server = TestServer::start(backend).await;
        let platform = server
            .user_with_token("platform", Role::Writer, "acme")
            .await;
        let alice = server.user_with_token("alice", Role::User, "acme").await;
        let bob = server.user_with_token("bob", Role::Writer, "globex").await;
        Fixture {
            server,
            platform,
            alice,
            bob,
        }
    }

    fn native(&self, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(token)
    }

    /// Creates an action as `token`'s account and returns its JSON.
    async fn create(&self, token: &str, body: Value) -> Value {
        let response = self
            .native(token, Method::POST, "/logbook/v1/actions")
            .json(&body)
            .send()
            .await
            .expect("create action");
        let status = response.status();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "{answer}");
        answer
    }

    async fn uuid(&self, body: Value) -> String {
        let answer = self.create(&self.platform, body).await;
        answer["uuid"].as_str().expect("uuid").to_string()
    }

    /// Runs a client script as alice (Basic alice:<API key>) and parses its output.
    async fn client(&self, script: &str, scenario: Value) -> Value {
        self.client_as(script, scenario, &format!("alice:{}", self.alice))
            .await
    }

    async fn client_as(&self, script: &str, scenario: Value, credentials: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let out = support::python::run_script(
            &path,
            &[
                ("LOGBOOK_URL", self.server.base.clone()),
                ("DOCKERCLOUD_REST_HOST", format!("{}/", self.server.base)),
                (
                    "DOCKERCLOUD_STREAM_HOST",
                    format!("ws://{}/", self.server.addr),
                ),
                ("DOCKERCLOUD_AUTH", format!("Basic {basic}")),
                ("PLATFORM_TOKEN", self.platform.clone()),
                ("SCENARIO", scenario.to_string()),
            ],
        )
        .await;
        let last = out.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{script}: {e}: {out}"))
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// `Wed, 17 Sep 2014 08:26:22 +0000` plus `minutes`, in the document's form.
fn doc_date(minutes: i64) -> String {
    let ts = logbook_core::Timestamp(1_410_942_382_000_000 + minutes * 60_000_000);
    ts.rfc2822()
}

async fn lists_every_page_and_filter_through_the_client(backend: Backend) {
    let f = Fixture::start(backend).await;
    // 30 actions, one minute apart, created out of order: the listing is by start date.
    let mut by_minute = Vec::new();
    for i in (0..30i64).rev() {
        let state = ["Success", "Failed", "In progress"][(i % 3) as usize];
        let mut body = json!({
            "action": format!("Service Redeploy {i}"), "method": "POST",
            "path": "/api/app/v1/service/x/redeploy/", "user_agent": "tests/1.0",
            "start_date": doc_date(i), "state": state, "ip": "10.0.0.1",
            "location": "Lisbon, PT", "is_user_action": true,
            "object": format!("/api/app/v1/service/s{}/", i % 2),
        });
        if state != "In progress" {
            body["end_date"] = json!(doc_date(i + 1));
        }
        by_minute.push((i, state, f.uuid(body).await));
    }
    by_minute.sort();
    let all: Vec<String> = by_minute.iter().map(|(_, _, u)| u.clone()).collect();
    // Another domain's action is invisible to alice, in lists and fetches.
    let foreign = f
        .create(
            &f.bob,
            json!({"action": "Stack Start", "start_date": doc_date(5)}),
        )
        .await["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();

    // The envelope the client pages through: ints in meta, next until the last page.
    let page = f
        .server
        .http
        .get(f.server.url("/api/audit/v1/action/?offset=25"))
        .basic_auth("alice", Some(&f.alice))
        .send()
        .await
        .expect("page");
    let page: Value = page.json().await.expect("json");
    assert_eq!(page["meta"]["limit"], 25);
    assert_eq!(page["meta"]["offset"], 25);
    assert_eq!(page["meta"]["total_count"], 30);
    assert_eq!(page["meta"]["next"], Value::Null);
    assert_eq!(
        page["meta"]["previous"],
        "/api/audit/v1/action/?limit=25&offset=0"
    );
    assert_eq!(page["objects"].as_array().expect("objects").len(), 5);

    let pick = |pred: &dyn Fn(i64, &str) -> bool| -> Vec<String> {
        by_minute
            .iter()
            .filter(|(i, s, _)| pred(*i, s))
            .map(|(_, _, u)| u.clone())
            .collect()
    };
    let result = f
        .client(
            "dockercloud_list.py",
            json!({
                "lists": {
                    "all": {},
                    "success": {"state": "Success"},
                    "in_progress": {"state": "In progress"},
                    "by_uuid": {"uuid": all[7]},
                    "start_gte_doc": {"start_date__gte": doc_date(20)},
                    "start_lte_iso": {"start_date__lte": "2014-09-17T08:29:22+00:00"},
                    "end_gte_iso": {"end_date__gte": "2014-09-17T08:52:22Z"},
                    "end_lte_doc": {"end_date__lte": doc_date(4)},
                    "object": {"object": "/api/app/v1/service/s1/"},
                    "combined": {"state": "Failed", "start_date__gte": doc_date(10),
                                 "start_date__lte": doc_date(19)},
                },
                "fetch": [all[0], all[2]],
                "fetch_missing": [foreign, "00000000-0000-4000-8000-000000000000"],
            }),
        )
        .await;
    let lists = &result["lists"];
    assert_eq!(strings(&lists["all"]), all, "two pages, chronological");
    assert_eq!(strings(&lists["success"]), pick(&|i, _| i % 3 == 0));
    assert_eq!(strings(&lists["in_progress"]), pick(&|i, _| i % 3 == 2));
    assert_eq!(strings(&lists["by_uuid"]), vec![all[7].clone()]);
    assert_eq!(strings(&lists["start_gte_doc"]), pick(&|i, _| i >= 20));
    assert_eq!(strings(&lists["start_lte_iso"]), pick(&|i, _| i <= 3));
    // end = start + 1 minute for finished actions (so end <= minute 4 means i < 4);
    // in-progress ones have no end.
    assert_eq!(
        strings(&lists["end_gte_iso"]),
        pick(&|i, s| s != "In progress" && i + 1 >= 26)
    );
    assert_eq!(
        strings(&lists["end_lte_doc"]),
        pick(&|i, s| s != "In progress" && i < 4)
    );
    assert_eq!(strings(&lists["object"]), pick(&|i, _| i % 2 == 1));
    assert_eq!(
        strings(&lists["combined"]),
        pick(&|i, _| i % 3 == 1 && (10..=19).contains(&i))
    );

    let first = &result["fetched"][&all[0]];
    assert_eq!(
        first["resource_uri"],
        format!("/api/audit/v1/action/{}/", all[0])
    );
    assert_eq!(first["action"], "Service Redeploy 0");
    assert_eq!(first["object"], "/api/app/v1/service/s0/");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/api/app/v1/service/x/redeploy/");
    assert_eq!(first["user_agent"], "tests/1.0");
    assert_eq!(first["start_date"], "Wed, 17 Sep 2014 08:26:22 +0000");
    assert_eq!(first["end_date"], "Wed, 17 Sep 2014 08:27:22 +0000");
    assert_eq!(first["state"], "Success");
    assert_eq!(first["ip"], "10.0.0.1");
    assert_eq!(first["location"], "Lisbon, PT");
    assert_eq!(first["is_user_action"], true);
    assert_eq!(first["can_be_canceled"], false);
    assert_eq!(first["can_be_retried"], false);
    assert_eq!(first["user"], "platform");
    assert_eq!(result["fetched"][&all[2]]["end_date"], Value::Null);
    assert_eq!(result["fetched"][&all[2]]["state"], "In progress");
    for uuid in [
        &foreign,
        &"00000000-0000-4000-8000-000000000000".to_string(),
    ] {
        let error = &result["fetch_errors"][uuid];
        assert_eq!(error["error"], "ApiError", "{error}");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .starts_with("Status 404"),
            "{error}"
        );
    }
    f.server.stop().await;
}

async fn include_related_follows_the_object_tree(backend: Backend) {
    let f = Fixture::start(backend).await;
    let put = |path: &str, body: Value| f.native(&f.platform, Method::PUT, path).json(&body).send();
    let uri = |kind: &str, id: &str| format!("/api/app/v1/{kind}/{id}/");
    for (kind, id, parent) in [
        ("stack", "st1", None),
        ("service", "web", Some(("stack", "st1"))),
        ("service", "db", Some(("stack", "st1"))),
        ("container", "web-1", Some(("service", "web"))),
        ("container", "web-2", Some(("service", "web"))),
        ("container", "db-1", Some(("service", "db"))),
        ("service", "lone", None),
        ("container", "lone-1", Some(("service", "lone"))),
    ] {
        let parent = parent.map(|(t, i)| json!({"type": t, "id": i}));
        let response = put(
            &format!("/logbook/v1/objects/{kind}/{id}"),
            json!({"uri": uri(kind, id), "parent": parent}),
        )
        .await
        .expect("put object");
        assert_eq!(response.status(), 200);
    }
    let mut on = std::collections::BTreeMap::new();
    for (minute, (kind, id)) in [
        ("stack", "st1"),
        ("service", "web"),
        ("service", "db"),
        ("container", "web-1"),
        ("container", "web-2"),
        ("container", "db-1"),
        ("service", "lone"),
        ("container", "lone-1"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"action": format!("{kind} update"), "object": uri(kind, id),
                          "start_date": doc_date(minute as i64)});
        on.insert(id, f.uuid(body).await);
    }
    let ids = |names: &[&str]| -> Vec<String> { names.iter().map(|n| on[n].clone()).collect() };
    let result = f
        .client(
            "dockercloud_list.py",
            json!({"lists": {
                "stack": {"object": uri("stack", "st1"), "include_related": "true"},
                "service": {"object": uri("service", "web"), "include_related": "true"},
                "container": {"object": uri("container", "db-1"), "include_related": "true"},
                "only_service": {"object": uri("service", "web"), "include_related": "false"},
                "unregistered": {"object": "/api/app/v1/node/n1/", "include_related": "true"},
            }}),
        )
        .await;
    let lists = &result["lists"];
    assert_eq!(
        strings(&lists["stack"]),
        ids(&["st1", "web", "db", "web-1", "web-2", "db-1"])
    );
    assert_eq!(
        strings(&lists["service"]),
        ids(&["st1", "web", "web-1", "web-2"])
    );
    assert_eq!(strings(&lists["container"]), ids(&["st1", "db", "db-1"]));
    assert_eq!(strings(&lists["only_service"]), ids(&["web"]));
    assert!(strings(&lists["unregistered"]).is_empty());
    f.server.stop().await;
}

async fn logs_replay_the_tail_and_follow_until_the_action_ends(backend: Backend) {
    let f = Fixture::start(backend).await;
    let done = f.uuid(json!({"action": "Build", "state": "Success"})).await;
    let lines: Vec<Value> = (1..=5)
        .map(|i| json!({"log": format!("line {i}")}))
        .collect();
    let response = f
        .native(
            &f.platform,
            Method::POST,
            &format!("/logbook/v1/actions/{done}/logs"),
        )
        .json(&lines)
        .send()
        .await
        .expect("append");
    assert_eq!(response.status(), 201);
    let appended: Value = response.json().await.expect("json");
    assert_eq!(
        appended,
        json!({"appended": 5, "first_seq": 1, "last_seq": 5})
    );
    let running = f.uuid(json!({"action": "Deploy"})).await;
    for line in ["boot 1", "boot 2"] {
        f.native(
            &f.platform,
            Method::POST,
            &format!("/logbook/v1/actions/{running}/logs"),
        )
        .json(&json!({"log": line}))
        .send()
        .await
        .expect("append");
    }
    let result = f
        .client(
            "dockercloud_logs.py",
            json!({
                "backlog": {"uuid": done, "tails": {"tail2": 2, "default": 0}},
                "follow": {"uuid": running, "last_backlog": "boot 2",
                           "append": ["step 1", "step 2", "step 3"]},
            }),
        )
        .await;
    let logs = |frames: &Value| -> Vec<String> {
        frames
            .as_array()
            .expect("frames")
            .iter()
            .map(|f| {
                assert_eq!(f["type"], "log", "{f}");
                assert!(
                    f["timestamp"].as_i64().expect("timestamp") > 1_700_000_000,
                    "{f}"
                );
                f["log"].as_str().expect("log").to_string()
            })
            .collect()
    };
    assert_eq!(logs(&result["tail2"]), ["line 4", "line 5"]);
    assert_eq!(
        logs(&result["default"]),
        ["line 1", "line 2", "line 3", "line 4", "line 5"]
    );
    assert_eq!(
        logs(&result["follow"]),
        [
            "boot 1",
            "boot 2",
            "step 1",
            "step 2",
            "step 3",
            "last words"
        ]
    );
    assert_eq!(result["final_state"], "Success");
    f.server.stop().await;
}

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

async fn native_api_validates_and_refuses_illegal_transitions(backend: Backend) {
    let f = Fixture::start(backend).await;
    let send = |token: &str, method: Method, path: &str, body: Value| {
        f.native(token, method, path).json(&body).send()
    };
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("json"))
    };
    let created = f
        .create(
            &f.platform,
            json!({"action": "Deploy", "start_date": "2014-09-17T08:26:22Z"}),
        )
        .await;
    let uuid = created["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(created["state"], "In progress", "the default state");
    assert_eq!(
        created["resource_uri"],
        format!("/api/audit/v1/action/{uuid}/")
    );
    assert_eq!(created["start_date"], "2014-09-17T08:26:22.000000Z");
    assert_eq!(created["domain_id"], "acme");

    let (status, body) = answer(
        send(
            &f.platform,
            Method::POST,
            "/logbook/v1/actions",
            json!({"state": "Done", "action": "x"}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("state")),
        "{body}"
    );
    let (status, body) = answer(
        send(
            &f.platform,
            Method::POST,
            "/logbook/v1/actions",
            json!({"method": "GET"}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("action")),
        "{body}"
    );
    let (status, body) = answer(
        send(
            &f.platform,
            Method::POST,
            "/logbook/v1/actions",
            json!({"action": "x", "colour": 1}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("colour")),
        "{body}"
    );

    let path = format!("/logbook/v1/actions/{uuid}");
    let (status, body) = answer(
        send(
            &f.platform,
            Method::PATCH,
            &path,
            json!({"state": "Success", "end_date": "Wed, 17 Sep 2014 08:30:00 +0000"}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["end_date"], "2014-09-17T08:30:00.000000Z");
    // Success is final: going back is refused with 409 and nothing changes.
    let (status, body) = answer(
        send(
            &f.platform,
            Method::PATCH,
            &path,
            json!({"state": "In progress"}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("Success"),
        "{body}"
    );
    assert_eq!(f.server.get_json(&path).await["state"], "Success");

    // Tenancy: bob's domain does not see, move or log acme's action.
    for (method, target, body) in [
        (Method::GET, path.clone(), Value::Null),
        (Method::PATCH, path.clone(), json!({"state": "Failed"})),
        (Method::POST, format!("{path}/logs"), json!({"log": "x"})),
    ] {
        let response = send(&f.bob, method.clone(), &target, body)
            .await
            .expect("send");
        assert_eq!(response.status(), 404, "{method} {target}");
    }
    let dialect = f
        .server
        .http
        .get(f.server.url(&format!("/api/audit/v1/action/{uuid}/")))
        .basic_auth("bob", Some(&f.bob))
        .send()
        .await
        .expect("send");
    assert_eq!(dialect.status(), 404);
    // An auditor-less user may not drive the lifecycle through the native API.
    let (status, _) = answer(
        send(
            &f.alice,
            Method::POST,
            "/logbook/v1/actions",
            json!({"action": "x"}),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, 403);
    // Native listing: filters and paging with native names.
    let listed = f
        .server
        .get_json("/logbook/v1/actions?state=Success&start_to=2014-09-18T00:00:00Z&limit=5")
        .await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["actions"][0]["uuid"], uuid.as_str());
    let bad = f
        .server
        .get("/api/audit/v1/action/?start_date__gte=yesterday")
        .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["field"], "start_date__gte");
    // A plain GET on a WebSocket endpoint is a JSON 426, not a bare-text refusal.
    let plain = f.server.get("/api/audit/v1/events").await;
    assert_eq!(plain.status(), 426);
    let body: Value = plain.json().await.expect("json");
    assert!(body["error"].as_str().expect("error").contains("WebSocket"), "{body}");
    f.server.stop().await;
}

async fn streams_answer_pings_take_namespaces_and_carry_object_changes(backend: Backend) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};

    let f = Fixture::start(backend).await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", f.alice));
    let request = |path: &str, auth: bool| {
        let mut request = format!("ws://{}{path}", f.server.addr)
            .into_client_request()
            .expect("request");
        if auth {
            let value = format!("Basic {basic}").parse().expect("header");
            request.headers_mut().insert("authorization", value);
        }
        request
    };
    let running = f.uuid(json!({"action": "Deploy"})).await;
    let (mut logs, _) = tokio_tungstenite::connect_async(request(
        &format!("/api/audit/v1/acme/action/{running}/logs/?follow=true"),
        true,
    ))
    .await
    .expect("namespaced logs stream");
    logs.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    match logs.next().await {
        Some(Ok(Message::Pong(data))) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    let (mut events, _) =
        tokio_tungstenite::connect_async(request("/api/audit/v1/acme/events", true))
            .await
            .expect("namespaced events stream");
    for (kind, id, body) in [
        ("stack", "st1", json!({"uri": "/api/app/v1/stack/st1/"})),
        (
            "service",
            "web",
            json!({"uri": "/api/app/v1/service/web/", "state": "Running",
                   "parent": {"type": "stack", "id": "st1"}}),
        ),
    ] {
        let response = f
            .native(
                &f.platform,
                Method::PUT,
                &format!("/logbook/v1/objects/{kind}/{id}"),
            )
            .json(&body)
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 200);
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match events.next().await {
            Some(Ok(Message::Text(text))) => {
                seen.push(serde_json::from_str::<Value>(&text).expect("json"))
            }
            Some(Ok(_)) => {}
            other => panic!("events stream ended: {other:?}"),
        }
    }
    assert_eq!(seen[0]["type"], "stack");
    assert_eq!(seen[1]["type"], "service");
    assert_eq!(seen[1]["action"], "update");
    assert_eq!(seen[1]["uuid"], "web");
    assert_eq!(seen[1]["state"], "Running");
    assert_eq!(seen[1]["resource_uri"], "/api/app/v1/service/web/");
    assert_eq!(seen[1]["parents"], json!(["/api/app/v1/stack/st1/"]));

    // Handshake refusals: unknown action 404, missing credentials 401 (the only
    // status on which the events client stops reconnecting).
    let status = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("handshake accepted"),
    };
    let missing = "/api/audit/v1/action/00000000-0000-4000-8000-000000000000/logs/";
    assert_eq!(
        status(tokio_tungstenite::connect_async(request(missing, true)).await),
        404
    );
    assert_eq!(
        status(tokio_tungstenite::connect_async(request("/api/audit/v1/events", false)).await),
        401
    );
    drop((logs, events));
    f.server.stop().await;
}
