//! Accounts over the native API: admins manage users (nobody else may), and
//! records carry their writer's domain unless the writer holds the grant.

use crate::accounts_support::{login, send};
use crate::support::{Backend, TestServer};
use logbook_core::Role;
use logbook_server::auth::secrets;
use reqwest::{Method, StatusCode};
use serde_json::json;

store_tests!(
    admins_manage_users_and_nobody_else_may,
    records_carry_the_writers_domain_unless_granted,
);

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

async fn records_carry_the_writers_domain_unless_granted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let writer = server.user_with_token("svc", Role::Writer, "acme").await;
    let (status, body) = send(
        &server,
        Method::POST,
        "/logbook/v1/records",
        &writer,
        Some(json!({"kind": "log", "message": "mine"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["first_id"].as_i64().expect("id");
    assert_eq!(
        server.get_json(&format!("/logbook/v1/records/{id}")).await["domain_id"],
        "acme"
    );
    let (status, body) = send(
        &server,
        Method::POST,
        "/logbook/v1/records",
        &writer,
        Some(json!([{"kind": "log"}, {"kind": "log", "domain_id": "other"}])),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("[1].domain_id"))
    );
    assert_eq!(
        server.get_json("/logbook/v1/records/count").await["count"],
        1,
        "nothing of the refused batch was written"
    );
    // With the grant, the writer may file records for any tenant.
    let (status, _) = send(
        &server,
        Method::PATCH,
        "/logbook/v1/users/svc",
        &server.token,
        Some(json!({"any_domain": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(
        &server,
        Method::POST,
        "/logbook/v1/records",
        &writer,
        Some(json!({"kind": "journal", "domain_id": "other", "user": "bob"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["first_id"].as_i64().expect("id");
    let record = server.get_json(&format!("/logbook/v1/records/{id}")).await;
    assert_eq!(
        (record["domain_id"].as_str(), record["user"].as_str()),
        (Some("other"), Some("bob"))
    );
    // Reading stays confined to its own domain.
    let (_, count) = send(
        &server,
        Method::GET,
        "/logbook/v1/records/count?kind=log,event",
        &writer,
        None,
    )
    .await;
    assert_eq!(count["count"], 1);
    server.stop().await;
}
