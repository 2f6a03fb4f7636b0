//! Upgrade in place: a data directory written by the previous layout (schema 3,
//! one indexed row per record and a trigram index) opens with every record, id and
//! field unchanged, is served while its rows are read in place, and the sealer moves
//! them into blocks in the background; new ids continue after the old ones. The
//! same for a PostgreSQL schema at version 4 (`mod postgres` below), and one at
//! version 5 losing its hot rows' filter indexes.

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

/// `count` logs numbered in their messages.
fn numbered_lines(count: usize) -> Vec<logbook_core::NewRecord> {
    (0..count)
        .map(|i| {
            let mut r = logbook_core::NewRecord::new(logbook_core::Kind::Log);
            r.message = Some(format!("line {i}"));
            r
        })
        .collect()
}

/// 2500 leaves, once whole in runs, after an upgrade: the two complete chunks
/// kept as roots and fingerprints, the rest whole, every leaf what it was.
async fn assert_kept_in_two_chunks(
    store: &dyn logbook_store::IntegrityStore,
    leaves: &[logbook_core::integrity::Hash],
) {
    use logbook_core::integrity::Kept;
    assert_eq!(leaves.len(), 2500);
    assert_eq!(store.tree_size().await.expect("size"), 2500);
    assert_eq!(store.chunk_roots(0, 10).await.expect("roots").len(), 2);
    let stored = store.stored_leaves(0, 2500).await.expect("stored");
    assert!(stored[..2048]
        .iter()
        .all(|l| matches!(l.kept, Kept::Fingerprint(_))));
    assert!(stored[2048..]
        .iter()
        .all(|l| matches!(l.kept, Kept::Hash(_))));
    let now: Vec<_> = store
        .leaves(0, 2500)
        .await
        .expect("leaves")
        .iter()
        .map(|l| l.hash)
        .collect();
    assert_eq!(now, leaves);
}

/// A file of version 7 kept every leaf whole, in runs: at its first open the
/// complete chunks are kept as roots and fingerprints, their runs go, and every
/// leaf (and the tree) is what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_leaves_of_version_7_are_kept_in_chunks_at_open() {
    use logbook_core::integrity::leaf_hash;
    let dir = tempfile::tempdir().expect("dir");
    let leaves = {
        let store = SqliteStore::open_with(dir.path(), layout(false)).expect("open");
        store.append(numbered_lines(2500)).await.expect("append");
        let stored = everything(&store).await;
        stored.iter().map(leaf_hash).collect::<Vec<_>>()
    };
    // As version 7 left it: one run of whole leaves, no chunk kept.
    {
        let conn = rusqlite::Connection::open(dir.path().join("logbook.db")).expect("open");
        let first_id: i64 = conn
            .query_row("SELECT min(id) FROM records", [], |r| r.get(0))
            .unwrap_or(1);
        let first_id = conn
            .query_row("SELECT min(first_id) FROM leaf_chunks", [], |r| r.get(0))
            .unwrap_or(first_id);
        conn.execute_batch(
            "DROP TABLE leaf_chunks; DROP TABLE removed_leaves; DELETE FROM record_leaves; \
             PRAGMA user_version = 7;",
        )
        .expect("back to version 7");
        conn.execute(
            "INSERT INTO record_leaves (first_index, first_id, hashes) VALUES (0, ?1, ?2)",
            rusqlite::params![first_id, leaves.concat()],
        )
        .expect("whole leaves");
    }
    let store = SqliteStore::open_with(dir.path(), layout(false)).expect("reopen");
    assert_kept_in_two_chunks(&store, &leaves).await;
    let runs: i64 = {
        let conn = rusqlite::Connection::open(dir.path().join("logbook.db")).expect("open");
        conn.query_row(
            "SELECT count(*) FROM record_leaves WHERE first_index < 2048",
            [],
            |r| r.get(0),
        )
        .expect("runs")
    };
    assert_eq!(runs, 0, "kept chunks' runs are gone");
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

/// PostgreSQL: a schema as version 4 left it (rows only, before `blocks`), written by
/// that version's own migrations and SQL, upgraded in place by the current code.
mod postgres {
    use super::{assert_kept_in_two_chunks, everything, numbered_lines};
    use logbook_core::query::{Condition, Field, Scalar};
    use logbook_core::Query;
    use logbook_store::postgres::{migrate_up_to, PgLayout, PostgresStore, TierOptions};
    use logbook_store::{IntegrityStore, RecordStore};
    use std::time::Duration;

    const BASE: &str = "postgres://postgres@127.0.0.1:5432/test";

    fn base_url() -> String {
        std::env::var("LOGBOOK_TEST_DATABASE_URL").unwrap_or_else(|_| BASE.into())
    }

    async fn connect(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is not reachable: {e}"));
        tokio::spawn(connection);
        client
    }

    /// A fresh schema named for `test` and a URL whose connections use only it.
    async fn own_schema(test: &str) -> (String, String) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        // The shape the behaviour suite's sweep reads: a crashed run's schema goes.
        let schema = format!("lbs_{now}_{}_{test}", std::process::id());
        connect(&base_url())
            .await
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        let base = base_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        (schema, url)
    }

    /// A schema of its own, at `version` (4 or 5: the same rows), holding ids
    /// 1..=120 but every 17th (a clear long ago) with the counter at 121 (the
    /// newest was deleted too).
    async fn write_version(version: i64) -> (String, String) {
        let (schema, url) = own_schema(&format!("upgrade{version}")).await;
        let mut client = connect(&url).await;
        assert_eq!(
            migrate_up_to(&mut client, &schema, version)
                .await
                .expect("old schema"),
            version
        );
        let tx = client.transaction().await.expect("transaction");
        // Version 4's partitioning: ranges of 1M ids, listed in record_partitions.
        tx.batch_execute(
            "CREATE TABLE records_p0 (LIKE records INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
             ALTER TABLE records ATTACH PARTITION records_p0 FOR VALUES FROM (1) TO (1000001);
             INSERT INTO record_partitions (lo, hi, name) VALUES (1, 1000001, 'records_p0');",
        )
        .await
        .expect("partition");
        for id in 1..=120i64 {
            if id % 17 == 0 {
                continue;
            }
            let message = format!(
                "Pull image {id} from registry{}",
                if id % 5 == 0 { " TIMEOUT" } else { "" }
            );
            let data = (id % 3 == 0).then(|| format!("{{\"n\":{id},\"k\":\"v{id}\"}}"));
            tx.execute(
                "INSERT INTO records (id, ts, kind, level, category, \"user\", message, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::json)",
                &[
                    &id,
                    &(1_700_000_000_000_000 + id * 1_000_000),
                    &(1 + id % 3),
                    &[20i64, 30, 40][id as usize % 3],
                    &["image", "network"][id as usize % 2],
                    &format!("user{}", id % 4),
                    &message,
                    &data,
                ],
            )
            .await
            .expect("row");
        }
        tx.execute("UPDATE id_counter SET last = 121", &[])
            .await
            .expect("counter");
        tx.commit().await.expect("commit");
        (schema, url)
    }

    fn layout(seal: bool) -> PgLayout {
        PgLayout {
            options: TierOptions {
                block_rows: 32,
                page_rows: 8,
                hot_records: 16,
                hot_age: Duration::from_secs(3600),
                zstd_level: 1,
            },
            seal,
        }
    }

    async fn drop_schema(schema: &str) {
        let admin = connect(&base_url()).await;
        let _ = admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_4_schema_is_served_and_sealed_in_place_by_the_background_sealer() {
        let (schema, url) = write_version(4).await;
        // Opened without a sealer first, to read the answers of the rows alone.
        let store = PostgresStore::open_with(&url, layout(false))
            .await
            .expect("open");
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
        assert_eq!(
            counts.1,
            before.iter().filter(|r| image.matches(r)).count() as u64
        );
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
        let status = store.tier_status().await.expect("status");
        assert_eq!(status.blocks, 0, "nothing sealed without a sealer");
        drop(store);

        // The current code with its sealer: the old rows go into blocks in the
        // background; whatever it has done so far, every read sees the same.
        let store = PostgresStore::open_with(&url, layout(true))
            .await
            .expect("open with a sealer");
        loop {
            assert_eq!(everything(&store).await, with_new);
            let status = store.tier_status().await.expect("status");
            assert_eq!(
                status.sealed_records + status.hot_records,
                with_new.len() as u64
            );
            // 114 records, a block of 32 once more than 16 are hot: three blocks,
            // and the 18 left are not a block's worth.
            if status.blocks >= 3 {
                assert_eq!(status.sealed_records, 96, "{status:?}");
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(store.count(&timeouts).await.expect("count"), counts.0);
        assert_eq!(store.count(&image).await.expect("count"), counts.1);
        assert_eq!(store.get(30).await.expect("get").as_ref(), Some(r));
        assert_eq!(store.get(17).await.expect("get"), None);
        // The leaves computed from the rows at the upgrade still match the records,
        // now read from blocks: verifying them finds the log intact.
        assert_eq!(
            store.tree_size().await.expect("size"),
            with_new.len() as u64
        );
        let leaves = store
            .leaves(0, with_new.len() as u64)
            .await
            .expect("leaves");
        assert_eq!(leaves.len(), with_new.len());
        for (leaf, record) in leaves.iter().zip(&with_new) {
            assert_eq!(leaf.hash, logbook_core::integrity::leaf_hash(record));
        }
        drop(store);
        drop_schema(&schema).await;
    }

    /// The indexes of `records` and its partitions in `schema`, by name.
    async fn record_indexes(url: &str, schema: &str) -> Vec<String> {
        let client = connect(url).await;
        client
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 \
                 AND (tablename = 'records' OR tablename LIKE 'records\\_p%') ORDER BY 1",
                &[&schema],
            )
            .await
            .expect("indexes")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Version 6 drops the filter and trigram indexes of the hot rows (a bounded
    /// tier since version 5, scanned like the embedded store's hot segments): a
    /// version 5 schema keeps every record and answers every filter the same from
    /// its primary key alone, before and after its rows are sealed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_5_schema_drops_the_hot_rows_filter_indexes_and_answers_the_same() {
        let (schema, url) = write_version(5).await;
        let old = record_indexes(&url, &schema).await;
        assert!(old.len() > 30, "version 5 indexes every filter: {old:?}");
        let store = PostgresStore::open_with(&url, layout(false))
            .await
            .expect("open");
        assert_eq!(
            record_indexes(&url, &schema).await,
            vec!["records_p0_pkey".to_string(), "records_pkey".to_string()],
            "only the primary key is left"
        );
        let all = everything(&store).await;
        let expected_ids: Vec<i64> = (1..=120).filter(|id| id % 17 != 0).collect();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), expected_ids);
        // Filters the dropped indexes served: each answer is Query::matches'.
        let filters = [
            Query::newest_first().text_contains("timeout"),
            Query::newest_first().text_contains("TIMEOUT"),
            Query::newest_first().with(Condition::In(
                Field::Category,
                vec![Scalar::Text("image".into())],
            )),
            Query::newest_first().with(Condition::In(
                Field::User,
                vec![Scalar::Text("user3".into())],
            )),
            Query::newest_first().with(Condition::In(Field::Level, vec![Scalar::Int(40)])),
        ];
        answers(&store, &filters, &all).await;
        drop(store);
        let store = PostgresStore::open_with(&url, layout(false))
            .await
            .expect("reopen");
        assert_eq!(store.seal_pending().await.expect("seal"), 3);
        answers(&store, &filters, &all).await;
        assert_eq!(everything(&store).await, all);
        drop(store);
        drop_schema(&schema).await;
    }

    /// Each filter's count and newest five, against `Query::matches` over `all`.
    async fn answers(store: &PostgresStore, filters: &[Query], all: &[logbook_core::Record]) {
        for filter in filters {
            let expected: Vec<i64> = all
                .iter()
                .rev()
                .filter(|r| filter.matches(r))
                .map(|r| r.id)
                .collect();
            assert!(!expected.is_empty(), "{filter:?} matches something");
            assert_eq!(
                store.count(filter).await.expect("count"),
                expected.len() as u64,
                "{filter:?}"
            );
            let mut page = filter.clone();
            page.limit = Some(5);
            let got: Vec<i64> = store
                .query(&page)
                .await
                .expect("query")
                .records
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(got, expected[..expected.len().min(5)], "{filter:?}");
        }
    }

    /// A schema of version 6 kept every leaf whole, in runs: the first placing
    /// after the upgrade keeps the complete chunks, and every leaf is unchanged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whole_leaves_of_version_6_are_kept_in_chunks_at_the_next_placing() {
        use logbook_core::integrity::leaf_hash;
        let (schema, url) = own_schema("upgrade_leaves").await;
        let (leaves, first_id) = {
            let store = PostgresStore::open_with(&url, layout(false))
                .await
                .expect("open");
            let appended = store.append(numbered_lines(2500)).await.expect("append");
            assert_eq!(store.tree_size().await.expect("size"), 2500);
            let stored = everything(&store).await;
            let leaves: Vec<_> = stored.iter().map(leaf_hash).collect();
            (leaves, appended.first_id.expect("first"))
        };
        // As version 6 left it: one placed run of whole leaves, no chunk kept.
        let client = connect(&url).await;
        client
            .batch_execute(
                "DROP TABLE leaf_chunks; DROP TABLE removed_leaves; DELETE FROM record_leaves; \
                 UPDATE schema_version SET version = 6;",
            )
            .await
            .expect("back to version 6");
        client
            .execute(
                "INSERT INTO record_leaves (first_id, first_index, hashes) VALUES ($1, 0, $2)",
                &[&first_id, &leaves.concat()],
            )
            .await
            .expect("whole leaves");
        let store = PostgresStore::open_with(&url, layout(false))
            .await
            .expect("reopen");
        assert_kept_in_two_chunks(&store, &leaves).await;
        drop(store);
        drop_schema(&schema).await;
    }
}
