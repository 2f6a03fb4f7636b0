//! The store's promises, tested at the trait where they are made, once per store:
//! each test drives `Arc<dyn Store>` of a running node directly.

use crate::support::{Backend, TestServer};
use logbook_core::{ObjectRef, Role};
use logbook_store::{NewUser, ObjectUpdate};

store_tests!(
    descendants_follow_parent_chains_only_downwards,
    users_of_a_domain_are_listed_by_name,
);

async fn put(server: &TestServer, key: (&str, &str), parent: Option<(&str, &str)>) {
    server
        .store
        .put_object(ObjectUpdate {
            key: Some(ObjectRef::new(key.0, key.1)),
            parent: Some(parent.map(|(t, i)| ObjectRef::new(t, i))),
            ..ObjectUpdate::default()
        })
        .await
        .expect("put object");
}

async fn descendants_follow_parent_chains_only_downwards(backend: Backend) {
    let server = TestServer::start(backend).await;
    put(&server, ("project", "p"), Some(("region", "r"))).await;
    put(&server, ("instance", "vm"), Some(("project", "p"))).await;
    put(&server, ("volume", "d"), Some(("instance", "vm"))).await;
    put(&server, ("instance", "other"), Some(("project", "q"))).await;
    // A cycle a client wrote must not loop: a -> b -> a.
    put(&server, ("loop", "a"), Some(("loop", "b"))).await;
    put(&server, ("loop", "b"), Some(("loop", "a"))).await;
    let below = |t: &str, i: &str, limit| {
        let store = server.store.clone();
        let key = ObjectRef::new(t, i);
        async move { store.descendants(&key, limit).await.expect("descendants") }
    };
    assert_eq!(
        below("project", "p", 100).await,
        vec![
            ObjectRef::new("instance", "vm"),
            ObjectRef::new("volume", "d")
        ],
        "children and grandchildren, in key order, never ancestors or cousins"
    );
    assert_eq!(below("project", "p", 1).await.len(), 1, "the limit holds");
    assert_eq!(below("volume", "d", 100).await, vec![]);
    assert_eq!(
        below("loop", "a", 100).await,
        vec![ObjectRef::new("loop", "b")]
    );
    assert_eq!(below("nothing", "here", 100).await, vec![]);
    server.stop().await;
}

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
