//! The store's promises, tested at the trait where they are made, once per store:
//! each test drives `Arc<dyn Store>` of a running node directly.

use crate::support::{Backend, TestServer};
use logbook_core::{Field, NewRecord, ObjectRef, Query, Role, Timestamp};
use logbook_store::{GroupBy, GroupQuery, GroupSort, NewUser, ObjectUpdate};

store_tests!(
    descendants_follow_parent_chains_only_downwards,
    users_of_a_domain_are_listed_by_name,
    groups_are_ordered_paged_and_counted_by_the_store,
    a_clear_deletes_and_journals_in_one_write,
    action_log_lines_are_read_after_a_position,
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

async fn groups_are_ordered_paged_and_counted_by_the_store(backend: Backend) {
    let server = TestServer::start(backend).await;
    // (source, instance, ts in seconds) per record; "b" has no instance.
    let rows = [
        ("api", Some("n2"), 10),
        ("api", Some("n2"), 50),
        ("api", Some("n1"), 30),
        ("worker", Some("n1"), 20),
        ("worker", None, 40),
    ];
    let records = rows
        .iter()
        .map(|(source, instance, ts)| NewRecord {
            source: Some(source.to_string()),
            instance: instance.map(str::to_string),
            ts: Some(Timestamp(ts * 1_000_000)),
            ..NewRecord::new(logbook_core::Kind::Log)
        })
        .collect();
    server.store.append(records).await.expect("append");
    let fields = [Field::Source, Field::Instance];
    let all = Query::default();
    let keys = |groups: Vec<logbook_store::Group>| -> Vec<(String, String, u64)> {
        groups
            .into_iter()
            .map(|g| {
                let text = |i: usize| g.key[i].clone().unwrap_or_else(|| "-".into());
                (text(0), text(1), g.count)
            })
            .collect()
    };
    let owned = |rows: &[(&str, &str, u64)]| -> Vec<(String, String, u64)> {
        rows.iter()
            .map(|(a, b, n)| (a.to_string(), b.to_string(), *n))
            .collect()
    };
    let store = &server.store;
    // Key order without a sort: absent values first, text bytewise.
    let by_key = store
        .group(&all, &GroupQuery::by(&fields))
        .await
        .expect("group");
    assert_eq!(
        keys(by_key),
        owned(&[
            ("api", "n1", 1),
            ("api", "n2", 2),
            ("worker", "-", 1),
            ("worker", "n1", 1)
        ])
    );
    // Latest activity first, paged: groups 2 and 3 of four.
    let newest = GroupQuery {
        sort: vec![GroupSort {
            by: GroupBy::LastTs,
            descending: true,
        }],
        offset: 1,
        limit: Some(2),
        ..GroupQuery::by(&fields)
    };
    assert_eq!(
        keys(store.group(&all, &newest).await.expect("group")),
        owned(&[("worker", "-", 1), ("api", "n1", 1)])
    );
    // By instance descending, ties by the key ascending; absent instances last.
    let by_instance = GroupQuery {
        sort: vec![GroupSort {
            by: GroupBy::Key(1),
            descending: true,
        }],
        ..GroupQuery::by(&fields)
    };
    assert_eq!(
        keys(store.group(&all, &by_instance).await.expect("group")),
        owned(&[
            ("api", "n2", 2),
            ("api", "n1", 1),
            ("worker", "n1", 1),
            ("worker", "-", 1)
        ])
    );
    assert_eq!(store.count_groups(&all, &fields).await.expect("count"), 4);
    let workers = all.values(Field::Source, &["worker"]).expect("query");
    assert_eq!(
        store.count_groups(&workers, &fields).await.expect("count"),
        2
    );
    server.stop().await;
}

async fn a_clear_deletes_and_journals_in_one_write(backend: Backend) {
    use logbook_core::Kind;
    let server = TestServer::start(backend).await;
    let store = &server.store;
    let kinds = [Kind::Log, Kind::Event, Kind::Log, Kind::Journal];
    let records = kinds.iter().map(|k| NewRecord::new(*k)).collect();
    store.append(records).await.expect("append");
    let logs = Query::newest_first().kinds(&[Kind::Log]);
    let deleted = store
        .delete_recorded(
            &logs,
            Box::new(|removal: &logbook_store::Removal| NewRecord {
                action: Some("test.clear".into()),
                message: Some(format!("cleared {}", removal.count)),
                ..NewRecord::new(Kind::Journal)
            }),
        )
        .await
        .expect("clear");
    assert_eq!(deleted, 2);
    assert_eq!(store.count(&logs).await.expect("count"), 0);
    let left = store
        .query(&Query::oldest_first())
        .await
        .expect("query")
        .records;
    let summary: Vec<(i64, Kind, Option<String>)> = left
        .into_iter()
        .map(|r| (r.id, r.kind, r.message))
        .collect();
    assert_eq!(
        summary,
        [
            (2, Kind::Event, None),
            (4, Kind::Journal, None),
            (5, Kind::Journal, Some("cleared 2".into()))
        ],
        "the journal entry follows the survivors, with the count"
    );
    assert_eq!(store.notifier().high_water(), 5, "the entry was announced");
    server.stop().await;
}

async fn action_log_lines_are_read_after_a_position(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = &server.store;
    let new = |action: &str| logbook_core::NewAction {
        action: action.into(),
        ..Default::default()
    };
    let one = store.create_action(new("one")).await.expect("action");
    let other = store.create_action(new("other")).await.expect("action");
    let lines = |n: usize| (1..=n).map(|i| format!("line {i}")).collect::<Vec<_>>();
    store
        .append_action_logs(&one.uuid, lines(5))
        .await
        .expect("logs");
    store
        .append_action_logs(&other.uuid, lines(2))
        .await
        .expect("logs");
    let after = |seq, limit| {
        let (store, uuid) = (store.clone(), one.uuid.clone());
        async move {
            let read = store
                .action_logs_after(&uuid, seq, limit)
                .await
                .expect("read");
            read.into_iter()
                .map(|l| (l.seq, l.line))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        after(2, 2).await,
        [(3, "line 3".to_string()), (4, "line 4".to_string())]
    );
    assert_eq!(after(4, 100).await, [(5, "line 5".to_string())]);
    assert!(after(5, 100).await.is_empty());
    server.stop().await;
}
