//! Upgrade in place: a data directory written by the previous layout (schema 3,
//! one indexed row per record and a trigram index) opens with every record, id and
//! field unchanged, is served while its rows are read in place, and the sealer moves
//! them into blocks in the background; new ids continue after the old ones.

use logbook_core::query::{Condition, Field, Scalar};
use logbook_core::{Cursor, Query, Record};
use logbook_store::sqlite::{migrate_up_to, RecordLayout, SqliteStore, Tiers};
use logbook_store::{RecordStore, Store};
use std::time::Duration;

/// A store as version 3 wrote it: its rows and trigram entries, by its own SQL.
fn write_version_3(dir: &std::path::Path) {
    let mut conn = rusqlite::Connection::open(dir.join("logbook.db")).expect("open");
    assert_eq!(migrate_up_to(&mut conn, 3).expect("schema 3"), 3);
    let tx = conn.transaction().expect("transaction");
    for id in 1..=120i64 {
        if id % 17 == 0 {
            continue; // deleted by a clear, long ago
        }
        let message = format!(
            "Pull image {id} from registry{}",
            if id % 5 == 0 { " TIMEOUT" } else { "" }
        );
        let data = (id % 3 == 0).then(|| format!("{{\"n\":{id},\"k\":\"v{id}\"}}"));
        tx.execute(
            "INSERT INTO records (id, ts, kind, level, category, \"user\", message, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                id,
                1_700_000_000_000_000 + id * 1_000_000,
                1 + id % 3,
                [20i64, 30, 40][id as usize % 3],
                ["image", "network"][id as usize % 2],
                format!("user{}", id % 4),
                message,
                data
            ],
        )
        .expect("row");
        tx.execute(
            "INSERT INTO records_fts (rowid, message) VALUES (?1, ?2)",
            rusqlite::params![id, message],
        )
        .expect("trigram entry");
    }
    // The newest record was deleted too: its id must not come back.
    tx.execute(
        "UPDATE meta SET value = 121 WHERE key = 'last_record_id'",
        [],
    )
    .expect("counter");
    tx.commit().expect("commit");
}

fn layout(seal: bool) -> RecordLayout {
    RecordLayout {
        options: Tiers {
            block_rows: 32,
            page_rows: 8,
            hot_records: 16,
            hot_age: Duration::from_secs(3600),
            zstd_level: 1,
        },
        seal,
    }
}

async fn everything(store: &dyn Store) -> Vec<Record> {
    let mut out = Vec::new();
    let mut query = Query::oldest_first();
    query.limit = Some(13);
    loop {
        let page = store.query(&query).await.expect("query");
        let Some(last) = page.records.last().map(|r| r.id) else {
            return out;
        };
        out.extend(page.records);
        query.after = Some(Cursor(last));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_row_layout_is_served_and_sealed_in_place() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_version_3(dir.path());
    let store = SqliteStore::open_with(dir.path(), layout(false)).expect("open");
    let before = everything(&store).await;
    let expected_ids: Vec<i64> = (1..=120).filter(|id| id % 17 != 0).collect();
    assert_eq!(
        before.iter().map(|r| r.id).collect::<Vec<_>>(),
        expected_ids
    );
    let r = before.iter().find(|r| r.id == 30).expect("record 30");
    assert_eq!(
        r.message.as_deref(),
        Some("Pull image 30 from registry TIMEOUT")
    );
    assert_eq!(
        r.data.as_ref().and_then(|d| d.get("k")),
        Some(&serde_json::json!("v30"))
    );
    let timeouts = Query::newest_first().text_contains("timeout");
    let image = Query::newest_first().with(Condition::In(
        Field::Category,
        vec![Scalar::Text("image".into())],
    ));
    let counts = (
        store.count(&timeouts).await.expect("count"),
        store.count(&image).await.expect("count"),
    );
    assert_eq!(
        counts.0,
        before.iter().filter(|r| timeouts.matches(r)).count() as u64
    );
    assert_eq!(store.get(30).await.expect("get").as_ref(), Some(r));
    assert_eq!(store.get(17).await.expect("get"), None);
    // The upgrade gave every existing record its leaf, in id order, gaps skipped.
    use logbook_store::IntegrityStore;
    assert_eq!(store.tree_size().await.expect("size"), before.len() as u64);
    let leaf = store
        .leaf_of(30)
        .await
        .expect("leaf")
        .expect("record 30's leaf");
    assert_eq!(leaf.hash, logbook_core::integrity::leaf_hash(r));
    assert_eq!(leaf.index, 28, "ids 17 and below one gap: index 30 - 1 - 1");
    assert_eq!(store.leaf_of(17).await.expect("leaf"), None);

    let appended = store
        .append(vec![logbook_core::NewRecord::new(logbook_core::Kind::Log)])
        .await
        .expect("append");
    assert_eq!(
        appended.first_id,
        Some(122),
        "ids continue after the old ones"
    );
    let with_new = everything(&store).await;

    // The sealer moves the old rows into blocks; no answer changes on the way.
    let sealed = store.seal_pending().await.expect("seal");
    assert!(sealed >= 3, "{sealed} blocks");
    assert_eq!(everything(&store).await, with_new);
    assert_eq!(store.count(&image).await.expect("count"), counts.1);
    let status = store.tier_status();
    assert_eq!(
        status.sealed_records + status.hot_records,
        with_new.len() as u64
    );
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("logbook.db")).expect("open");
    let left: i64 = conn
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0, "every old row is in a block");
    drop(conn);

    let store = SqliteStore::open_with(dir.path(), layout(true)).expect("reopen");
    assert_eq!(
        everything(&store).await,
        with_new,
        "the same after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sealer_upgrades_while_queries_run() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_version_3(dir.path());
    let store = SqliteStore::open_with(dir.path(), layout(true)).expect("open");
    let expected: Vec<i64> = (1..=120).filter(|id| id % 17 != 0).collect();
    // Whatever the sealer has done so far, every read sees every record once.
    loop {
        let ids: Vec<i64> = everything(&store).await.iter().map(|r| r.id).collect();
        assert_eq!(ids, expected);
        let status = store.tier_status();
        if status.sealed_records == expected.len() as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
}
