//! Accounts end to end: the admin API, token lifecycle, sessions, login throttling,
//! the security audit trail, the CLI beside a running server, and HTTPS.

mod support;

use logbook_core::{Role, Timestamp};
use logbook_server::auth::rate_limit::LoginLimits;
use logbook_server::auth::secrets;
use logbook_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use support::process::Node;
use support::{Backend, TestServer};

store_tests!(
    admins_manage_users_and_nobody_else_may,
    tokens_are_named_expire_and_revoke_at_once,
    owners_manage_their_own_tokens_only,
    sessions_expire_end_on_logout_and_set_safe_cookies,
    failed_logins_are_throttled_per_account,
    failed_logins_are_throttled_per_address,
    security_events_are_journaled,
);

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .http
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn login(server: &TestServer, user: &str, password: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/logbook/v1/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login")
}

fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let set = response
        .headers()
        .get("set-cookie")
        .expect("set-cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    let pair = set.split(';').next().expect("pair").to_string();
    (pair, set)
}

async fn admins_manage_users_and_nobody_else_may(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.token.clone();
    let (status, created) = send(
        &server,
        Method::POST,
        "/logbook/v1/users",
        &admin,
        Some(json!({"name": "carol", "role": "writer", "domain": "acme", "password": "carol-secret-1", "any_domain": true})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role"], "writer");
    assert_eq!(created["domain"], "acme");
    assert_eq!(created["any_domain"], true);
    assert!(
        created.get("password_hash").is_none(),
        "no hash is ever shown"
    );

    let (status, again) = send(
        &server,
        Method::POST,
        "/logbook/v1/users",
        &admin,
        Some(json!({"name": "carol"})),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    let (status, bad) = send(
        &server,
        Method::POST,
        "/logbook/v1/users",
        &admin,
        Some(json!({"name": "dave", "role": "root"})),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("role"))
    );
    let (status, bad) = send(
        &server,
        Method::POST,
        "/logbook/v1/users",
        &admin,
        Some(json!({"name": "a:b"})),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name"))
    );
    let (status, bad) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/carol",
        &admin,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("password"))
    );
    let (status, bad) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/carol",
        &admin,
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("colour"))
    );
    let (status, _) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/nobody",
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 404);

    // The password set through the API logs in; a role change applies at once.
    assert_eq!(
        login(&server, "carol", "carol-secret-1").await.status(),
        200
    );
    let carol = server
        .store
        .user_by_name("carol")
        .await
        .expect("store")
        .expect("carol");
    let secret = secrets::new_token();
    server
        .store
        .create_token(carol.id, None, secrets::digest(&secret), None)
        .await
        .expect("token");
    let (status, who) = send(&server, Method::GET, "/logbook/v1/whoami", &secret, None).await;
    assert_eq!(
        (status, who["role"].as_str()),
        (StatusCode::OK, Some("writer"))
    );
    let (status, patched) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/carol",
        &admin,
        Some(json!({"role": "auditor", "domain": "other"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let (_, who) = send(&server, Method::GET, "/logbook/v1/whoami", &secret, None).await;
    assert_eq!(
        (who["role"].as_str(), who["domain"].as_str()),
        (Some("auditor"), Some("other"))
    );

    // Disabling ends every way in.
    let (status, _) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/carol",
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(&server, Method::GET, "/logbook/v1/whoami", &secret, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        login(&server, "carol", "carol-secret-1").await.status(),
        401
    );

    // The last administrator cannot be disabled or demoted.
    let (status, body) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/admin",
        &admin,
        Some(json!({"role": "user"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    let (status, listed) = send(&server, Method::GET, "/logbook/v1/users", &admin, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "carol"]);

    for role in [Role::Auditor, Role::User, Role::Writer] {
        let token = server
            .user_with_token(&format!("x-{role}"), role, "default")
            .await;
        for (method, path, body) in [
            (Method::GET, "/logbook/v1/users", None),
            (
                Method::POST,
                "/logbook/v1/users",
                Some(json!({"name": "mallory"})),
            ),
            (
                Method::PATCH,
                "/logbook/v1/users/admin",
                Some(json!({"password": "taken-over!"})),
            ),
        ] {
            let (status, body) = send(&server, method.clone(), path, &token, body).await;
            assert_eq!(status, 403, "{role} {method} {path}: {body}");
        }
    }
    server.stop().await;
}

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

async fn sessions_expire_end_on_logout_and_set_safe_cookies(backend: Backend) {
    let config = Config {
        session_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    let server = TestServer::start_with(backend, config).await;
    let response = login(&server, "admin", support::ADMIN_PASSWORD).await;
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
    assert_throttled(login(&server, "admin", support::ADMIN_PASSWORD).await).await;
    // HTTP Basic passwords count as logins too; API tokens are not affected.
    let response = server
        .http
        .get(server.url("/logbook/v1/whoami"))
        .basic_auth("admin", Some(support::ADMIN_PASSWORD))
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
    assert_throttled(login(&server, "admin", support::ADMIN_PASSWORD).await).await;
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

const TOKEN: &str = "lbk_accounts_test_admin_token_0123456789";

fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(support::binary())
        .args(args)
        .args(["--data", dir.to_str().expect("utf-8")])
        .env("LOGBOOK_PASSWORD", "cli-password-1")
        .env_remove("LOGBOOK_DATA")
        .output()
        .expect("run logbook");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_accounts_beside_a_running_server() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let node = Node::spawn_on_dir(dir.path(), TOKEN);
    let http = reqwest::Client::new();

    let (ok, out, err) = cli(
        dir.path(),
        &[
            "user", "add", "frank", "--role", "writer", "--domain", "ops",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.is_empty(), "user add prints nothing on stdout: {out}");
    let (ok, out, err) = cli(
        dir.path(),
        &[
            "token",
            "create",
            "--user",
            "frank",
            "--name",
            "deploy",
            "--expires",
            "30d",
        ],
    );
    assert!(ok, "{err}");
    // Only the token on stdout, so `$(logbook token create ...)` captures it.
    let token = out.trim_end_matches('\n');
    assert!(
        token.starts_with("lbk_") && !token.contains(char::is_whitespace),
        "{out:?}"
    );

    let who: Value = http
        .get(node.url("/logbook/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            who["user"].as_str(),
            who["role"].as_str(),
            who["domain"].as_str()
        ),
        (Some("frank"), Some("writer"), Some("ops"))
    );
    let response = http
        .post(node.url("/logbook/v1/login"))
        .json(&json!({"username": "frank", "password": "cli-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);

    let (ok, out, err) = cli(dir.path(), &["token", "list"]);
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.contains("deploy")).expect("listed");
    assert!(
        line.contains("frank") && line.contains("active") && !out.contains(token),
        "{out}"
    );
    let id = line.split_whitespace().next().expect("id");
    let (ok, _, err) = cli(dir.path(), &["token", "revoke", id]);
    assert!(ok, "{err}");
    let response = http
        .get(node.url("/logbook/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami");
    assert_eq!(
        response.status(),
        401,
        "a token revoked by the CLI is refused at once"
    );

    let (ok, _, err) = cli(dir.path(), &["user", "disable", "frank"]);
    assert!(ok, "{err}");
    let response = http
        .post(node.url("/logbook/v1/login"))
        .json(&json!({"username": "frank", "password": "cli-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 401);
    let (ok, _, err) = cli(
        dir.path(),
        &["token", "create", "--user", "frank", "--expires", "soon"],
    );
    assert!(!ok && err.contains("--expires"), "{err}");

    // The CLI's changes are in the audit trail, attributed to the CLI.
    let listed: Value = http
        .get(node.url("/logbook/v1/records?category=security&user=cli&order=asc"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "logbook.user.create",
            "logbook.token.create",
            "logbook.token.revoke",
            "logbook.user.update"
        ]
    );
    assert!(node.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_with_secure_cookies() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let (cert, key) = (
        format!("{fixtures}/tls-cert.pem"),
        format!("{fixtures}/tls-key.pem"),
    );
    let node = Node::spawn(
        &[
            "--data",
            dir.path().to_str().expect("utf-8"),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        TOKEN,
    );
    assert!(node.base.starts_with("https://"), "{}", node.base);
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let response = http
        .post(node.url("/logbook/v1/login"))
        .json(&json!({"username": "admin", "password": support::ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login over TLS");
    assert_eq!(response.status(), 200);
    let set = response
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        set.contains("; Secure") && set.contains("HttpOnly"),
        "{set}"
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(node.url("/healthz").replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    // A bad certificate path stops the start with a clear message.
    let output = Command::new(support::binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            dir.path().to_str().expect("utf-8"),
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            &key,
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-cert"));
    assert!(node.terminate());
}
