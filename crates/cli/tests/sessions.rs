//! Sessions (cookies, expiry, logout), failed-login throttling per account and
//! per address, and the security audit trail.

use crate::accounts_support::{login, send, session_cookie};
use crate::support::{Backend, TestServer};
use logbook_core::{Role, Timestamp};
use logbook_server::auth::rate_limit::LoginLimits;
use logbook_server::auth::secrets;
use logbook_server::Config;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

store_tests!(
    sessions_expire_end_on_logout_and_set_safe_cookies,
    failed_logins_are_throttled_per_account,
    failed_logins_are_throttled_per_address,
    security_events_are_journaled,
);

async fn sessions_expire_end_on_logout_and_set_safe_cookies(backend: Backend) {
    let config = Config {
        session_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    let server = TestServer::start_with(backend, config).await;
    let response = login(&server, "admin", crate::support::ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let (cookie, set) = session_cookie(&response);
    for attribute in ["HttpOnly", "SameSite=Lax", "Max-Age=3600", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing in {set}");
    }
    assert!(!set.contains("Secure"), "no Secure without TLS: {set}");
    let who: Value = server
        .http
        .get(server.url("/logbook/v1/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (who["user"].as_str(), who["session"].as_bool()),
        (Some("admin"), Some(true))
    );

    let response = server
        .http
        .post(server.url("/logbook/v1/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 200);
    let (_, cleared) = session_cookie(&response);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let response = server
        .http
        .get(server.url("/logbook/v1/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("whoami");
    assert_eq!(response.status(), 401, "the session ended on logout");

    // A session past its expiry is refused though it is still stored.
    let admin = server
        .store
        .user_by_name("admin")
        .await
        .expect("store")
        .expect("admin");
    let secret = secrets::new_token();
    server
        .store
        .create_session(
            secrets::digest(&secret),
            admin.id,
            Timestamp(Timestamp::now().micros() - 1),
        )
        .await
        .expect("session");
    let response = server
        .http
        .get(server.url("/logbook/v1/whoami"))
        .header("cookie", format!("logbook_session={secret}"))
        .send()
        .await
        .expect("whoami");
    assert_eq!(response.status(), 401);
    assert_eq!(
        login(&server, "admin", "wrong password").await.status(),
        401
    );
    server.stop().await;
}

fn limits(per_account: usize, per_address: usize) -> Config {
    Config {
        login_limits: LoginLimits {
            per_account,
            per_address,
            window: Duration::from_secs(600),
        },
        ..Config::default()
    }
}

async fn assert_throttled(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=600).contains(&retry), "{retry}");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], 429);
    assert!(body["error"]
        .as_str()
        .expect("error")
        .contains("too many failed logins"));
}

async fn failed_logins_are_throttled_per_account(backend: Backend) {
    let server = TestServer::start_with(backend, limits(3, 100)).await;
    for _ in 0..3 {
        assert_eq!(login(&server, "admin", "guess").await.status(), 401);
    }
    assert_throttled(login(&server, "admin", "guess").await).await;
    // Even the right password waits: the guesser must not learn it is right.
    assert_throttled(login(&server, "admin", crate::support::ADMIN_PASSWORD).await).await;
    // HTTP Basic passwords count as logins too; API tokens are not affected.
    let response = server
        .http
        .get(server.url("/logbook/v1/whoami"))
        .basic_auth("admin", Some(crate::support::ADMIN_PASSWORD))
        .send()
        .await
        .expect("basic");
    assert_throttled(response).await;
    let (status, _) = send(
        &server,
        Method::GET,
        "/logbook/v1/whoami",
        &server.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // Other accounts are unaffected.
    server.user_with_token("erin", Role::User, "default").await;
    assert_eq!(login(&server, "erin", "erin-password").await.status(), 200);
    server.stop().await;
}

async fn failed_logins_are_throttled_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, limits(100, 4)).await;
    for name in ["a1", "a2"] {
        assert_eq!(login(&server, name, "guess").await.status(), 401);
    }
    for _ in 0..2 {
        let response = server
            .http
            .get(server.url("/logbook/v1/records"))
            .basic_auth("a3", Some("guess"))
            .send()
            .await
            .expect("basic");
        assert_eq!(response.status(), 401);
    }
    assert_throttled(login(&server, "admin", crate::support::ADMIN_PASSWORD).await).await;
    server.stop().await;
}

async fn security_events_are_journaled(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user_with_token("alice", Role::User, "acme").await;
    assert_eq!(login(&server, "alice", "nope").await.status(), 401);
    let response = login(&server, "alice", "alice-password").await;
    let (cookie, _) = session_cookie(&response);
    let response = server
        .http
        .post(server.url("/logbook/v1/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 200);
    let (_, created) = send(
        &server,
        Method::POST,
        "/logbook/v1/tokens",
        &alice,
        Some(json!({"name": "t"})),
    )
    .await;
    let id = created["id"].as_i64().expect("id");
    send(
        &server,
        Method::DELETE,
        &format!("/logbook/v1/tokens/{id}"),
        &alice,
        None,
    )
    .await;

    let listed = server
        .get_json("/logbook/v1/records?kind=journal&category=security&order=asc")
        .await;
    let events: Vec<(String, String, String, String)> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                text("action"),
                text("status"),
                text("user"),
                text("domain_id"),
            )
        })
        .collect();
    let expected = [
        ("dashboard.user.login", "failure"),
        ("dashboard.user.login", "success"),
        ("dashboard.user.logout", "success"),
        ("logbook.token.create", "success"),
        ("logbook.token.revoke", "success"),
    ];
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|(a, s, _, _)| (a.as_str(), s.as_str()))
        .collect();
    assert_eq!(got, expected);
    assert!(
        events
            .iter()
            .all(|(_, _, user, domain)| user == "alice" && domain == "acme"),
        "{events:?}"
    );
    let failure = &listed["records"][0];
    assert_eq!(failure["data"]["client_address"], "127.0.0.1");
    // Alice sees her own domain's trail.
    let (_, mine) = send(
        &server,
        Method::GET,
        "/logbook/v1/records/count?category=security",
        &alice,
        None,
    )
    .await;
    assert_eq!(mine["count"], 5);
    server.stop().await;
}
