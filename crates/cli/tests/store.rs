//! The store's promises, tested at the trait where they are made, once per store:
//! each test drives `Arc<dyn Store>` of a running node directly.

use crate::support::{Backend, TestServer};
use logbook_core::Role;
use logbook_store::NewUser;

store_tests!(users_of_a_domain_are_listed_by_name);

async fn users_of_a_domain_are_listed_by_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (name, domain) in [("zed", "acme"), ("amy", "acme"), ("bob", "other")] {
        server
            .store
            .create_user(NewUser {
                name: name.into(),
                password_hash: None,
                role: Role::User,
                domain: domain.into(),
                any_domain: false,
            })
            .await
            .expect("create user");
    }
    let names = |users: Vec<logbook_store::User>| -> Vec<String> {
        users.into_iter().map(|u| u.name).collect()
    };
    let acme = server
        .store
        .users_in_domain("acme", 100)
        .await
        .expect("users");
    assert_eq!(names(acme), ["amy", "zed"]);
    let first = server
        .store
        .users_in_domain("acme", 1)
        .await
        .expect("users");
    assert_eq!(names(first), ["amy"]);
    let none = server
        .store
        .users_in_domain("nowhere", 100)
        .await
        .expect("users");
    assert!(none.is_empty());
    server.stop().await;
}
