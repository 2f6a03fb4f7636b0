//! What a Docker Cloud user reads through python-dockercloud: listings over several
//! pages with every filter, include_related over an object tree, fetches, and logs.

use super::fixture::{doc_date, strings, Fixture};
use crate::support::Backend;
use reqwest::Method;
use serde_json::{json, Value};

store_tests!(
    lists_every_page_and_filter_through_the_client,
    include_related_follows_the_object_tree,
    logs_replay_the_tail_and_follow_until_the_action_ends,
);

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
