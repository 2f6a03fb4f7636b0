//! API tokens: named, optionally expiring, shown once, listable and revocable,
//! refused from the very next request once revoked or expired.

use crate::accounts_support::send;
use crate::support::{Backend, TestServer};
use logbook_core::{Role, Timestamp};
use logbook_server::auth::secrets;
use reqwest::{Method, StatusCode};
use serde_json::json;

store_tests!(
    tokens_are_named_expire_and_revoke_at_once,
    owners_manage_their_own_tokens_only,
);

async fn tokens_are_named_expire_and_revoke_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, created) = send(
        &server,
        Method::POST,
        "/logbook/v1/tokens",
        &server.token,
        Some(json!({"name": "ci", "expires": "30d"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("lbk_"));
    assert_eq!(created["name"], "ci");
    assert_eq!(created["state"], "active");
    let expires = Timestamp::parse(created["expires"].as_str().expect("expires")).expect("time");
    let days = (expires.micros() - Timestamp::now().micros()) as f64 / 86_400e6;
    assert!((29.9..=30.0).contains(&days), "{days}");

    let (status, _) = send(&server, Method::GET, "/logbook/v1/records", &secret, None).await;
    assert_eq!(status, 200);
    let (status, listed) = send(
        &server,
        Method::GET,
        "/logbook/v1/tokens",
        &server.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let listed = listed["tokens"].as_array().expect("tokens").clone();
    assert!(
        listed.iter().all(|t| t.get("token").is_none()),
        "secrets are shown once only"
    );
    let id = created["id"].as_i64().expect("id");
    assert!(listed.iter().any(|t| t["id"] == id && t["name"] == "ci"));

    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("/logbook/v1/tokens/{id}"),
        &server.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // Every way of presenting it is refused from the very next request.
    let (status, _) = send(&server, Method::GET, "/logbook/v1/records", &secret, None).await;
    assert_eq!(status, 401);
    let response = server
        .http
        .get(server.url("/logbook/v1/records"))
        .header("x-auth-token", &secret)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let response = server
        .http
        .get(server.url("/logbook/v1/records"))
        .basic_auth("admin", Some(&secret))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let (_, listed) = send(
        &server,
        Method::GET,
        "/logbook/v1/tokens",
        &server.token,
        None,
    )
    .await;
    assert!(listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .any(|t| t["id"] == id && t["state"] == "revoked"));
    // Revoking twice is harmless; an unknown id is 404.
    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("/logbook/v1/tokens/{id}"),
        &server.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server,
        Method::DELETE,
        "/logbook/v1/tokens/99999",
        &server.token,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // An expired token is refused like a revoked one.
    let admin = server
        .store
        .user_by_name("admin")
        .await
        .expect("store")
        .expect("admin");
    let old = secrets::new_token();
    server
        .store
        .create_token(
            admin.id,
            Some("old".into()),
            secrets::digest(&old),
            Some(Timestamp(Timestamp::now().micros() - 1)),
        )
        .await
        .expect("token");
    let (status, _) = send(&server, Method::GET, "/logbook/v1/records", &old, None).await;
    assert_eq!(status, 401);
    let (_, listed) = send(
        &server,
        Method::GET,
        "/logbook/v1/tokens",
        &server.token,
        None,
    )
    .await;
    assert!(listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .any(|t| t["name"] == "old" && t["state"] == "expired"));

    let (status, bad) = send(
        &server,
        Method::POST,
        "/logbook/v1/tokens",
        &server.token,
        Some(json!({"expires": "yesterday"})),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expires"))
    );
    server.stop().await;
}

async fn owners_manage_their_own_tokens_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user_with_token("alice", Role::User, "acme").await;
    let bob = server
        .user_with_token("bob", Role::Auditor, "default")
        .await;
    let (status, created) = send(
        &server,
        Method::POST,
        "/logbook/v1/tokens",
        &alice,
        Some(json!({"name": "laptop"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"], "alice");
    let id = created["id"].as_i64().expect("id");
    let (status, _) = send(
        &server,
        Method::POST,
        "/logbook/v1/tokens",
        &alice,
        Some(json!({"user": "admin"})),
    )
    .await;
    assert_eq!(status, 403);
    let (_, listed) = send(&server, Method::GET, "/logbook/v1/tokens", &alice, None).await;
    let owners: Vec<&str> = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["user"].as_str())
        .collect();
    assert_eq!(owners, ["alice", "alice"], "only alice's own tokens");
    // Someone else's token answers like a missing one, and stays usable.
    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("/logbook/v1/tokens/{id}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let laptop = created["token"].as_str().expect("secret");
    let (status, _) = send(&server, Method::GET, "/logbook/v1/whoami", laptop, None).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("/logbook/v1/tokens/{id}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(&server, Method::GET, "/logbook/v1/whoami", laptop, None).await;
    assert_eq!(status, 401);
    // An admin may issue a token for another account.
    let (status, created) = send(
        &server,
        Method::POST,
        "/logbook/v1/tokens",
        &server.token,
        Some(json!({"user": "bob", "name": "for bob"})),
    )
    .await;
    assert_eq!(
        (status, created["user"].as_str()),
        (StatusCode::CREATED, Some("bob"))
    );
    server.stop().await;
}
