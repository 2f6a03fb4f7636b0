//! Requests a browser sends with the session cookie because another site asked it
//! to are refused when they would change something; the same requests from this
//! origin, and from programs that are not browsers, pass.

use crate::accounts_support::{login, session_cookie};
use crate::support::{self, Backend, TestServer};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

store_tests!(cross_site_requests_with_the_cookie_are_refused);

async fn cross_site_requests_with_the_cookie_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = login(&server, "admin", support::ADMIN_PASSWORD).await;
    let (cookie, _) = session_cookie(&response);
    let host = server.addr.to_string();
    let write = |headers: &[(&str, &str)]| {
        let mut request = server
            .http
            .request(Method::POST, server.url("/logbook/v1/records"))
            .header("cookie", &cookie)
            .json(&json!({"kind": "log", "message": "written with the cookie"}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let same_origin = format!("http://{host}");
    for allowed in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("origin", same_origin.as_str())],
        vec![],
    ] {
        let response = write(&allowed).await.expect("post");
        assert_eq!(response.status(), 201, "{allowed:?}");
    }
    for forged in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://evil.example")],
    ] {
        let response = write(&forged).await.expect("post");
        assert_eq!(response.status(), 403, "{forged:?}");
        let body: Value = response.json().await.expect("json");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("cross-site")),
            "{body}"
        );
    }
    let count = server
        .get_json("/logbook/v1/records/count?q=written%20with%20the%20cookie")
        .await;
    assert_eq!(count["count"], 3, "only the three allowed writes landed");

    // A token in a header is never ambient: a cross-site header does not matter.
    let response = server
        .request(Method::POST, "/logbook/v1/records")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"kind": "log", "message": "with a token"}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);

    // Reads with the cookie pass from anywhere (the answer is not readable there).
    let response = server
        .http
        .get(server.url("/logbook/v1/whoami"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("whoami");
    assert_eq!(response.status(), 200);

    // A forged login would sign the browser in as someone else.
    let response = server
        .http
        .post(server.url("/logbook/v1/login"))
        .header("origin", "http://evil.example")
        .json(&json!({"username": "admin", "password": support::ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());

    // A WebSocket opened by another site's page with the cookie is refused at the
    // handshake; one from this origin is opened.
    let handshake = |origin: &str| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{host}/logbook/v1/stream"),
            )
            .expect("request");
        let headers = request.headers_mut();
        headers.insert("cookie", cookie.parse().expect("cookie"));
        headers.insert("origin", origin.parse().expect("origin"));
        tokio_tungstenite::connect_async(request)
    };
    match handshake("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!(
            "a cross-site WebSocket was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    let (mut socket, _) = handshake(&same_origin).await.expect("same-origin socket");
    server
        .ingest(json!({"kind": "log", "message": "seen on the socket"}))
        .await;
    let message = socket.next().await.expect("message").expect("frame");
    assert!(message
        .to_text()
        .expect("text")
        .contains("seen on the socket"));
    server.stop().await;
}
