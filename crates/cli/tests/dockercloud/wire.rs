//! The native actions API and the WebSocket endpoints at the protocol level:
//! validation, illegal transitions, tenancy, pongs, namespaces, handshake refusals.

use super::fixture::Fixture;
use crate::support::Backend;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

store_tests!(
    native_api_validates_and_refuses_illegal_transitions,
    streams_answer_pings_take_namespaces_and_carry_object_changes,
);

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
    assert!(
        body["error"].as_str().expect("error").contains("WebSocket"),
        "{body}"
    );
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
    // bob (globex) listens too: he must see his own change and none of acme's.
    let mut bobs_request = request("/api/audit/v1/events", false);
    let bob_basic = base64::engine::general_purpose::STANDARD.encode(format!("bob:{}", f.bob));
    bobs_request.headers_mut().insert(
        "authorization",
        format!("Basic {bob_basic}").parse().expect("header"),
    );
    let (mut bobs_events, _) = tokio_tungstenite::connect_async(bobs_request)
        .await
        .expect("bob's events stream");
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
    let response = f
        .native(&f.bob, Method::PUT, "/logbook/v1/objects/node/n9")
        .json(&json!({"uri": "/api/infra/v1/node/n9/"}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    // acme's two changes came first; bob's first message is his own node.
    let first = loop {
        match bobs_events.next().await {
            Some(Ok(Message::Text(text))) => {
                break serde_json::from_str::<Value>(&text).expect("json")
            }
            Some(Ok(_)) => {}
            other => panic!("bob's events stream ended: {other:?}"),
        }
    };
    assert_eq!(
        (&first["type"], &first["uuid"]),
        (&json!("node"), &json!("n9")),
        "{first}"
    );

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
    drop((logs, events, bobs_events));
    f.server.stop().await;
}
