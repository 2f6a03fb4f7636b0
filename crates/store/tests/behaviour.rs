//! The promises of the `Store` traits, pinned without HTTP, on both stores: ids in
//! commit order, acknowledged means durable, the notifier fires after the commit,
//! what `Page::high_water` means, the export's snapshot, `delete`, `group`,
//! `size_on_disk`, `related_objects`. The differential test (`differential.rs`)
//! checks the query model itself against `Query::matches`.

mod support;

use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{Cursor, Kind, Level, NewRecord, ObjectRef, Query, Record, Timestamp};
use logbook_store::{GroupQuery, ObjectUpdate, ObjectWrite, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use support::records::{self, log};
use support::{Backend, TestStore};

store_suite!(
    ids_are_contiguous_per_batch_and_follow_commit_order,
    a_batch_pushed_in_parts_is_one_append_in_order_with_its_leaves,
    a_reader_tailing_by_cursor_sees_every_id_once_in_order,
    acknowledged_records_survive_reopening_and_ids_continue,
    the_notifier_announces_only_what_is_already_visible,
    high_water_is_the_snapshot_of_the_page,
    an_export_covers_what_was_committed_when_it_started,
    delete_removes_exactly_the_matches_and_ids_are_never_reused,
    group_counts_per_key_in_key_order_with_the_latest_ts,
    size_on_disk_grows_with_records_and_splits_by_kind,
    related_objects_are_the_tree_around_an_object_in_key_order,
    get_finds_a_record_by_id_and_nothing_else,
    an_export_and_gets_over_blocks_hot_rows_and_deletions_see_every_record,
    gets_and_queries_while_deletes_rewrite_their_blocks_see_the_kept_records,
    records_and_their_object_writes_commit_together_in_order,
    every_field_round_trips,
    complete_chunks_keep_their_root_and_fingerprints_and_removals_their_leaves,
    leaves_read_while_a_removal_commits_are_read_again,
);

/// The tiered layout's own promise: the sealer moves the oldest records into full
/// blocks in id order, keeps the hot tier within its bound, and changes no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sealer_moves_old_records_into_blocks_without_changing_any_answer() {
    let mut t = TestStore::open(Backend::SqliteTiered).await;
    for b in 0..10 {
        t.store
            .append(numbered(&format!("b{b}"), 1 + b % 4))
            .await
            .expect("append");
    }
    let before = all_records(t.store.as_ref()).await;
    t.seal().await;
    let store = t.tiered.clone().expect("tiered store");
    let status = store.tier_status();
    assert_eq!(status.sealed_records + status.hot_records, 23);
    assert!(status.hot_records <= 10, "{status:?}");
    assert_eq!(status.sealed_records % 7, 0, "full blocks of 7: {status:?}");
    assert_eq!(status.blocks * 7, status.sealed_records);
    assert_eq!(all_records(t.store.as_ref()).await, before);
    // A restart reads the same tiers back.
    drop(store);
    t.reopen().await;
    assert_eq!(all_records(t.store.as_ref()).await, before);
    t.close().await;
}

/// PostgreSQL's sealed tier: a seal by one node (blocks of 7, more than 10 hot
/// records sealed) is seen by another node's reads, which were served from the
/// rows before; pages, gets, counts, groups and histograms answer the same
/// across it, and the records keep their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_by_one_postgres_node_is_seen_by_the_others_reads() {
    use logbook_store::RecordStore;
    // No background sealer: the seal happens where the test says.
    let t = TestStore::open_postgres(false).await;
    let other = t.open_again_pg(false).await.expect("a PostgreSQL store");
    for b in 0..10 {
        t.store
            .append(numbered(&format!("b{b}"), 1 + b % 4))
            .await
            .expect("append");
    }
    let answers = |store: Arc<logbook_store::postgres::PostgresStore>| async move {
        let all = all_records(store.as_ref()).await;
        let newest = store
            .query(&Query {
                limit: Some(5),
                offset: 2,
                ..Query::default()
            })
            .await
            .expect("query")
            .records;
        let count = store.count(&Query::default()).await.expect("count");
        let groups = store
            .group(
                &Query::default(),
                &GroupQuery {
                    fields: vec![Field::Level],
                    ..GroupQuery::default()
                },
            )
            .await
            .expect("group");
        let mut got = Vec::new();
        for r in &all {
            got.push(store.get(r.id).await.expect("get").expect("found"));
        }
        (all, newest, count, groups, got)
    };
    let before = answers(Arc::clone(&other)).await;
    assert_eq!(before.0.len(), 23);
    let unsealed =
        t.pg.clone()
            .expect("pg")
            .tier_status()
            .await
            .expect("status");
    assert_eq!(unsealed.blocks, 0, "{unsealed:?}");
    let pg = t.pg.clone().expect("a PostgreSQL store");
    t.seal().await;
    let status = pg.tier_status().await.expect("status");
    assert_eq!(status.sealed_records + status.hot_records, 23, "{status:?}");
    assert!(status.hot_records <= 10, "{status:?}");
    assert!(status.blocks >= 1, "{status:?}");
    assert_eq!(status.blocks * 7, status.sealed_records, "{status:?}");
    assert_eq!(answers(Arc::clone(&other)).await, before);
    assert_eq!(answers(pg).await, before);
    drop(other);
    t.close().await;
}

/// Reserves the next id for the transaction `xid` of another connection, committed
/// at once on `side`, as a node's writer does beside its append: the id below the
/// reservation (its floor).
async fn reserve_one_id(side: &tokio_postgres::Client, xid: &str) -> i64 {
    side.query_one(
        "WITH counter AS (UPDATE id_counter SET last = last + 1 RETURNING last - 1 AS before) \
         INSERT INTO appending (xid, floor) SELECT $1::text::xid8, before FROM counter \
         RETURNING floor",
        &[&xid],
    )
    .await
    .expect("reserve")
    .get(0)
}

/// PostgreSQL's acknowledgement (docs/postgres.md, "Read-your-writes"): an append
/// is acknowledged only once readers see it, so it waits for an older append of
/// another node still in flight; that append ending, even by a rollback that tells
/// no one, lets it through, and the record is then visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_acknowledged_once_an_older_append_elsewhere_has_ended() {
    use logbook_store::RecordStore;
    let t = TestStore::open_postgres(false).await;
    let store = t.pg.clone().expect("a PostgreSQL store");
    store.append(numbered("before", 1)).await.expect("append");
    // Another node's append, as its writer makes it: its transaction id and the
    // lock on it, then its ids reserved beside it, its rows not yet committed.
    let url = t.url().expect("a schema");
    let connect = || async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    };
    let (older, side) = (connect().await, connect().await);
    older.batch_execute("BEGIN").await.expect("begin");
    let xid: String = older
        .query_one(
            "SELECT pg_current_xact_id()::text, pg_advisory_xact_lock(19521, \
             (pg_current_xact_id()::text::bigint & 2147483647)::int)::text",
            &[],
        )
        .await
        .expect("xid")
        .get(0);
    let floor = reserve_one_id(&side, &xid).await;
    let appending = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.append(numbered("after", 1)).await })
    };
    // Committed (`count` reads committed rows, not up to the horizon) ...
    while store.count(&Query::default()).await.expect("count") < 2 {
        tokio::task::yield_now().await;
    }
    // ... but not visible below the older append's reservation, so not yet
    // acknowledged.
    let page = store.query(&Query::oldest_first()).await.expect("query");
    assert_eq!(page.records.len(), 1, "{:?}", page.records);
    assert_eq!(page.high_water, floor);
    assert!(!appending.is_finished());
    older.batch_execute("ROLLBACK").await.expect("rollback");
    let appended = appending.await.expect("task").expect("append");
    assert_eq!(appended.first_id, Some(floor + 2));
    let page = store.query(&Query::oldest_first()).await.expect("query");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![floor, floor + 2]);
    t.close().await;
}

/// PostgreSQL's disk after sealing (docs/postgres.md): the sealer vacuums the
/// partitions it sealed rows from, and that never takes a row from a snapshot that
/// still sees it as hot (a `TRUNCATE` would: it is not MVCC-safe), nor changes any
/// answer of reads running across it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuuming_sealed_rows_keeps_every_snapshot_and_answer_whole() {
    use logbook_store::RecordStore;
    let t = TestStore::open_postgres(false).await;
    let store = t.pg.clone().expect("a PostgreSQL store");
    for b in 0..10 {
        store
            .append(numbered(&format!("b{b}"), 1 + b % 4))
            .await
            .expect("append");
    }
    let before = all_records(store.as_ref()).await;
    let url = t.url().expect("a PostgreSQL store").to_string();
    let (old, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    // A snapshot taken while every record is a row.
    old.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .expect("begin");
    let rows_then: i64 = old
        .query_one("SELECT count(*) FROM records", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows_then, before.len() as i64);
    store.seal_pending().await.expect("seal");
    let status = store.tier_status().await.expect("status");
    assert!(status.blocks >= 2, "{status:?}");
    assert!(store.reclaim_sealed().await.expect("vacuum") >= 1);
    // The sealed rows are deleted and vacuumed, yet the old snapshot still sees
    // them all: VACUUM keeps what a running snapshot can see.
    let ids: Vec<i64> = old
        .query("SELECT id FROM records ORDER BY id", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, before.iter().map(|r| r.id).collect::<Vec<_>>());
    old.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(all_records(store.as_ref()).await, before);

    // Another node's background sealer seals and vacuums while reads go on; every
    // read in between answers the same.
    let sealer = t.open_again_pg(true).await.expect("a PostgreSQL store");
    for b in 0..10 {
        store
            .append(numbered(&format!("c{b}"), 1 + b % 4))
            .await
            .expect("append");
    }
    let all = all_records(store.as_ref()).await;
    let sealed_before = store.tier_status().await.expect("status").sealed_records;
    loop {
        assert_eq!(all_records(store.as_ref()).await, all);
        let count = store.count(&Query::newest_first()).await.expect("count");
        assert_eq!(count, all.len() as u64);
        let status = store.tier_status().await.expect("status");
        if status.sealed_records > sealed_before && sealer.vacuums() > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(all_records(store.as_ref()).await, all);
    drop(sealer);
    drop(store);
    t.close().await;
}

/// PostgreSQL's partitions behind the hot rows (docs/postgres.md, "Disk after
/// sealing"): once every id of one is below the horizon and sealing has emptied
/// it, it is detached and dropped, files and all. A reader whose snapshot predates
/// the seals (taken as every read takes one: `records` locked first) holds the
/// drop back and still reads every row from it; after the drop every answer is the
/// same, now from the blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_emptied_by_sealing_is_dropped_only_after_the_snapshots_that_see_its_rows() {
    use logbook_store::RecordStore;
    let t = TestStore::open_postgres(false).await;
    let store = t.pg.clone().expect("a PostgreSQL store");
    // Tiny tiers: partitions of 256 ids (the smallest), so 1000 records fill four.
    for b in 0..10 {
        store
            .append(numbered(&format!("b{b}"), 100))
            .await
            .expect("append");
    }
    let before = all_records(store.as_ref()).await;
    assert_eq!(before.len(), 1000);
    let url = t.url().expect("a PostgreSQL store").to_string();
    let connect = || async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    };
    let (old, watcher) = (connect().await, connect().await);
    let tables = || async {
        watcher
            .query(
                "SELECT name FROM record_partitions WHERE to_regclass(name) IS NOT NULL ORDER BY lo",
                &[],
            )
            .await
            .expect("partitions")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    let partitions = tables().await;
    assert!(partitions.len() >= 5, "{partitions:?}");
    let old_pid: i32 = old
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    // A snapshot as `records::snapshot` takes one: the lock, then a first read
    // that does not touch `records` (the horizon).
    old.batch_execute(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
         LOCK TABLE records IN ACCESS SHARE MODE; SELECT last FROM id_counter",
    )
    .await
    .expect("snapshot");
    store.seal_pending().await.expect("seal");
    let status = store.tier_status().await.expect("status");
    assert!(status.sealed_records >= 768, "{status:?}");
    let dropping = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.drop_sealed_partitions().await }
    });
    // The drop waits for the old snapshot's transaction.
    loop {
        let waiting: i64 = watcher
            .query_one(
                // Someone waits for the old snapshot's transaction to end.
                "SELECT count(*) FROM pg_locks w JOIN pg_locks h \
                 ON h.locktype = 'virtualxid' AND h.virtualxid = w.virtualxid \
                 WHERE w.locktype = 'virtualxid' AND NOT w.granted AND h.granted \
                 AND h.pid = $1",
                &[&old_pid],
            )
            .await
            .expect("activity")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            !dropping.is_finished(),
            "the drop did not wait for the snapshot"
        );
        tokio::task::yield_now().await;
    }
    let ids: Vec<i64> = old
        .query("SELECT id FROM records ORDER BY id", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, before.iter().map(|r| r.id).collect::<Vec<_>>());
    let blocks: i64 = old
        .query_one("SELECT count(*) FROM blocks", &[])
        .await
        .expect("blocks")
        .get(0);
    assert_eq!(blocks, 0, "the snapshot predates every seal");
    old.batch_execute("COMMIT").await.expect("commit");
    let dropped = dropping.await.expect("drop task").expect("drop");
    assert!(dropped >= 3, "{dropped} partitions dropped");
    let left = tables().await;
    assert_eq!(left.len(), partitions.len() - dropped as usize, "{left:?}");
    assert_eq!(left[..], partitions[dropped as usize..], "the oldest went");
    assert_eq!(all_records(store.as_ref()).await, before);
    assert_eq!(
        store.count(&Query::newest_first()).await.expect("count"),
        1000
    );
    // Nothing is left to drop: the partition of the hot rows stays.
    assert_eq!(store.drop_sealed_partitions().await.expect("drop"), 0);
    // New appends still land (the partitions ahead are untouched).
    store.append(numbered("after", 5)).await.expect("append");
    assert_eq!(all_records(store.as_ref()).await.len(), 1005);
    drop(store);
    t.close().await;
}

/// PostgreSQL's visibility horizon (docs/postgres.md): an append still in flight
/// holds readers below its ids even after a later append has committed above them,
/// so no reader can see the later id first and skip the earlier one. The Merkle
/// tree (docs/integrity.md) follows the same horizon: the later append's leaf gets
/// no place before the earlier one's, so the tree stays in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_flight_holds_the_horizon_below_its_ids() {
    let t = TestStore::open(Backend::Postgres).await;
    t.store.append(numbered("before", 2)).await.expect("append");
    let url = t.url().expect("a PostgreSQL store").to_string();
    let connect = || async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    };
    let (slow, side) = (connect().await, connect().await);
    // A slow append, done by hand as the writer does it: its transaction's xid,
    // then the reservation, committed at once on another connection.
    slow.batch_execute("BEGIN").await.expect("begin");
    let xid: String = slow
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .expect("xid")
        .get(0);
    let floor = reserve_one_id(&side, &xid).await;
    assert_eq!(floor, 2);
    // A later append commits id 4 meanwhile.
    let store = Arc::clone(&t.store);
    let later = tokio::spawn(async move { store.append(numbered("later", 1)).await });
    loop {
        let committed: i64 = side
            .query_one("SELECT count(*) FROM records WHERE id = 4", &[])
            .await
            .expect("count")
            .get(0);
        if committed == 1 {
            break;
        }
    }
    let page = t.store.query(&Query::oldest_first()).await.expect("query");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2], "nothing above the append in flight");
    assert_eq!(page.high_water, 2);
    assert_eq!(t.store.high_water().await.expect("high water"), 2);
    assert_eq!(t.store.tree_size().await.expect("tree size"), 2);
    // The slow append commits its row and its leaf: both become visible, in id order.
    slow.execute(
        "INSERT INTO records (id, ts, kind, message) VALUES (3, 0, $1, 'slow')",
        &[&Kind::Log.code()],
    )
    .await
    .expect("insert");
    slow.execute(
        "INSERT INTO record_leaves (first_id, hashes) VALUES (3, $1)",
        &[&vec![3u8; 32]],
    )
    .await
    .expect("leaf");
    slow.execute("DELETE FROM appending WHERE xid = $1::text::xid8", &[&xid])
        .await
        .expect("unregister");
    slow.batch_execute("COMMIT").await.expect("commit");
    let appended = later.await.expect("task").expect("later append");
    assert_eq!(appended.first_id, Some(4));
    let page = t.store.query(&Query::oldest_first()).await.expect("query");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(page.high_water, 4);
    assert_eq!(t.store.tree_size().await.expect("tree size"), 4);
    let leaves = t.store.leaves(0, 4).await.expect("leaves");
    let placed: Vec<(u64, i64)> = leaves.iter().map(|l| (l.index, l.id)).collect();
    assert_eq!(placed, [(0, 1), (1, 2), (2, 3), (3, 4)]);
    assert_eq!(leaves[2].hash, [3u8; 32]);
    t.close().await;
}

async fn all_records(store: &dyn Store) -> Vec<Record> {
    let mut out = Vec::new();
    let mut query = Query::oldest_first();
    query.limit = Some(1000);
    loop {
        let page = store.query(&query).await.expect("query");
        let Some(last) = page.records.last().map(|r| r.id) else {
            return out;
        };
        out.extend(page.records);
        query.after = Some(Cursor(last));
    }
}

/// The journal record a clear leaves, from how many it deleted.
fn clear_record() -> logbook_store::ClearRecord {
    Box::new(|removal: &logbook_store::Removal| {
        let mut r = NewRecord::new(Kind::Journal);
        r.message = Some(format!("cleared {}", removal.count));
        r
    })
}

fn numbered(prefix: &str, n: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| log(Level::Info, "test", &format!("{prefix} {i}")))
        .collect()
}

async fn ids_are_contiguous_per_batch_and_follow_commit_order(backend: Backend) {
    let t = TestStore::open(backend).await;
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(&t.store);
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for b in 0..10 {
                let batch = numbered(&format!("w{w} b{b}"), 1 + (w * 7 + b * 3) % 17);
                let appended = store.append(batch.clone()).await.expect("append");
                acknowledged.push((appended, batch));
            }
            acknowledged
        }));
    }
    let mut batches = Vec::new();
    for writer in writers {
        batches.extend(writer.await.expect("writer"));
    }
    let stored = all_records(t.store.as_ref()).await;
    let mut expected_ids = BTreeSet::new();
    for (appended, batch) in &batches {
        let (first, last) = (
            appended.first_id.expect("first id"),
            appended.last_id.expect("last id"),
        );
        assert_eq!(appended.count, batch.len());
        assert_eq!(last - first + 1, batch.len() as i64, "one contiguous run");
        for (offset, new) in batch.iter().enumerate() {
            let id = first + offset as i64;
            assert!(expected_ids.insert(id), "id {id} given twice");
            let record = stored.iter().find(|r| r.id == id).expect("stored");
            assert_eq!(record.message, new.message, "id {id}");
        }
    }
    let ids: Vec<i64> = stored.iter().map(|r| r.id).collect();
    let total = expected_ids.len() as i64;
    assert_eq!(
        ids,
        (1..=total).collect::<Vec<_>>(),
        "ids 1..=N without gaps"
    );
    assert_eq!(t.store.high_water().await.expect("high water"), total);
    let empty = t.store.append(Vec::new()).await.expect("empty append");
    assert_eq!(
        (empty.count, empty.first_id, empty.last_id),
        (0, None, None)
    );
    t.close().await;
}

/// A batch pushed in parts as it arrives (an NDJSON body) is one append: its
/// parts in order, contiguous ids, each record's leaf; one dropped writes nothing.
async fn a_batch_pushed_in_parts_is_one_append_in_order_with_its_leaves(backend: Backend) {
    use logbook_core::integrity::{leaf_hash, merkle::root_of, Hash, Kept, CHUNK};
    let t = TestStore::open(backend).await;
    let mut records = numbered("part", 5000);
    // A float in `data`: a leaf the store hashes whole once it has its id.
    let mut data = serde_json::Map::new();
    data.insert("ratio".into(), serde_json::json!(0.25));
    records[3000].data = Some(data);
    let mut dropped = t.store.record_batch();
    dropped.push(numbered("dropped", 10));
    drop(dropped);
    let mut batch = t.store.record_batch();
    let mut rest = records.as_slice();
    for size in [1, 2047, 1500, 1452] {
        let (part, after) = rest.split_at(size);
        batch.push(part.to_vec());
        rest = after;
    }
    assert_eq!(batch.len(), 5000);
    let appended = t.store.append_batch(batch).await.expect("append");
    assert_eq!((appended.first_id, appended.last_id), (Some(1), Some(5000)));
    let stored = all_records(t.store.as_ref()).await;
    let messages: Vec<_> = stored.iter().map(|r| r.message.clone()).collect();
    let sent: Vec<_> = records.iter().map(|r| r.message.clone()).collect();
    assert_eq!(
        messages, sent,
        "the parts in order, nothing of the dropped batch"
    );
    assert_eq!(stored[3000].data, records[3000].data);
    let hashes: Vec<Hash> = stored.iter().map(leaf_hash).collect();
    assert_eq!(t.store.tree_size().await.expect("size"), 5000);
    let roots: Vec<Hash> = hashes.chunks(CHUNK as usize).take(4).map(root_of).collect();
    assert_eq!(t.store.chunk_roots(0, 10).await.expect("roots"), roots);
    let kept = t.store.stored_leaves(4096, 5000).await.expect("stored");
    assert!(kept
        .iter()
        .all(|l| l.kept == Kept::Hash(hashes[l.index as usize])));
    t.close().await;
}

async fn a_reader_tailing_by_cursor_sees_every_id_once_in_order(backend: Backend) {
    let t = TestStore::open(backend).await;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&t.store);
            tokio::spawn(async move {
                let mut last = 0;
                for b in 0..25 {
                    let appended = store
                        .append(numbered(&format!("w{w} b{b}"), 1 + b % 5))
                        .await
                        .expect("append");
                    last = last.max(appended.last_id.expect("last id"));
                }
                last
            })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move {
            // Resumes after max(last returned, high_water), as the native API's
            // oldest-first cursor does, until the writers are done and it is caught up.
            let mut seen = Vec::new();
            let mut position = 0;
            let mut idle_rounds = 0;
            while idle_rounds < 3 {
                let mut query = Query::oldest_first();
                query.limit = Some(7);
                query.after = Some(Cursor(position));
                let page = store.query(&query).await.expect("query");
                let full = page.records.len() == 7;
                let last = page.records.last().map(|r| r.id);
                seen.extend(page.records.iter().map(|r| r.id));
                position = match (full, last) {
                    (true, Some(last)) => last,
                    _ => position.max(page.high_water).max(last.unwrap_or(0)),
                };
                if page.records.is_empty() && store.high_water().await.expect("hw") == position {
                    idle_rounds += 1;
                    tokio::task::yield_now().await;
                } else {
                    idle_rounds = 0;
                }
            }
            seen
        })
    };
    let mut highest = 0;
    for writer in writers {
        highest = highest.max(writer.await.expect("writer"));
    }
    let seen = reader.await.expect("reader");
    // The reader may have stopped before the last writes; it must have missed none
    // below where it stopped, and read again from there it finds the rest.
    let stopped = seen.last().copied().unwrap_or(0);
    assert_eq!(
        seen,
        (1..=stopped).collect::<Vec<_>>(),
        "once each, in order"
    );
    let mut rest = Query::oldest_first();
    rest.after = Some(Cursor(stopped));
    let rest: Vec<i64> = t
        .store
        .query(&rest)
        .await
        .expect("rest")
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(rest, (stopped + 1..=highest).collect::<Vec<_>>());
    t.close().await;
}

async fn acknowledged_records_survive_reopening_and_ids_continue(backend: Backend) {
    let mut t = TestStore::open(backend).await;
    let mut batch = numbered("before", 50);
    batch[3].data = Some(
        serde_json::json!({"nested": {"a": [1, 2.5, null]}, "z": "last"})
            .as_object()
            .expect("object")
            .clone(),
    );
    let appended = t.store.append(batch).await.expect("append");
    let before = all_records(t.store.as_ref()).await;
    assert_eq!(before.len(), 50);
    t.reopen().await;
    assert_eq!(
        all_records(t.store.as_ref()).await,
        before,
        "the same records"
    );
    assert_eq!(t.store.high_water().await.expect("hw"), 50);
    let next = t.store.append(numbered("after", 1)).await.expect("append");
    assert_eq!(next.first_id, appended.last_id.map(|id| id + 1));
    t.close().await;
}

async fn the_notifier_announces_only_what_is_already_visible(backend: Backend) {
    let t = TestStore::open(backend).await;
    let mut live = t.store.notifier().subscribe_records();
    let mut high_water = t.store.notifier().watch_high_water();
    let store = Arc::clone(&t.store);
    let appending = tokio::spawn(async move {
        for b in 0..5 {
            store
                .append(numbered(&format!("b{b}"), 3))
                .await
                .expect("append");
        }
    });
    let mut announced = Vec::new();
    while announced.len() < 15 {
        let batch = live.recv().await.expect("announcement");
        for record in batch.iter() {
            // Announced means committed: a reader finds it at once.
            let found = t.store.get(record.id).await.expect("get");
            assert_eq!(found.as_ref(), Some(record), "announced record is visible");
            announced.push(record.id);
        }
    }
    assert_eq!(announced, (1..=15).collect::<Vec<_>>(), "in id order, once");
    appending.await.expect("appends");
    // The high-water watch is raised after the broadcast, to the last id.
    high_water
        .wait_for(|hw| *hw == 15)
        .await
        .expect("high water reaches the last id");
    let page = t.store.query(&Query::newest_first()).await.expect("query");
    assert_eq!(page.records.len(), 15);
    t.close().await;
}

async fn high_water_is_the_snapshot_of_the_page(backend: Backend) {
    let t = TestStore::open(backend).await;
    let empty = t.store.query(&Query::oldest_first()).await.expect("query");
    assert_eq!((empty.records.len(), empty.high_water), (0, 0));
    let mut batch = numbered("x", 10);
    batch[9].category = Some("rare".into());
    t.store.append(batch).await.expect("append");
    t.store.append(numbered("filler", 5)).await.expect("append");
    let rare = Query::oldest_first().with(Condition::In(
        Field::Category,
        vec![Scalar::Text("rare".into())],
    ));
    // A partial oldest-first page: the high-water mark covers records that did not
    // match, so resuming after it skips them without missing anything.
    let page = t.store.query(&rare).await.expect("query");
    assert_eq!(page.records.iter().map(|r| r.id).collect::<Vec<_>>(), [10]);
    assert_eq!(page.high_water, 15);
    let mut next = numbered("later", 3);
    next[1].category = Some("rare".into());
    t.store.append(next).await.expect("append");
    let mut resumed = rare.clone();
    resumed.after = Some(Cursor(page.high_water.max(10)));
    let page = t.store.query(&resumed).await.expect("query");
    assert_eq!(page.records.iter().map(|r| r.id).collect::<Vec<_>>(), [17]);
    assert_eq!(page.high_water, 18);
    // Newest first, the mark is at least every id returned.
    let mut newest = Query::newest_first();
    newest.limit = Some(2);
    let page = t.store.query(&newest).await.expect("query");
    assert_eq!(
        page.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        [18, 17]
    );
    assert_eq!(page.high_water, 18);
    t.close().await;
}

async fn an_export_covers_what_was_committed_when_it_started(backend: Backend) {
    use futures_util::StreamExt;
    let t = TestStore::open(backend).await;
    let mut first = numbered("first", 5000);
    for (i, r) in first.iter_mut().enumerate() {
        if i % 3 == 0 {
            r.level = Some(Level::Error);
        }
    }
    t.store.append(first).await.expect("append");
    let errors = Query::oldest_first().min_level(Level::Error);
    for (query, label) in [
        (errors.clone(), "errors, oldest first"),
        (
            Query {
                order: logbook_core::Order::NewestFirst,
                after: Some(Cursor(4000)),
                ..errors.clone()
            },
            "errors before id 4000, newest first",
        ),
        (Query::oldest_first(), "everything"),
    ] {
        let all = all_records(t.store.as_ref()).await;
        let high_water = t.store.high_water().await.expect("high water");
        let mut batches = t.store.export(query.clone());
        let mut exported = batches
            .next()
            .await
            .expect("a first batch")
            .expect("export batch");
        // Written after the export started: not part of it.
        let mut more = numbered("during", 2500);
        for r in &mut more {
            r.level = Some(Level::Critical);
        }
        t.store.append(more).await.expect("append");
        while let Some(batch) = batches.next().await {
            exported.extend(batch.expect("export batch"));
        }
        let expected = records::export(&all, &query, high_water);
        assert_eq!(exported.len(), expected.len(), "{label}");
        assert!(exported == expected, "{label}: the records of the snapshot");
    }
    t.close().await;
}

async fn delete_removes_exactly_the_matches_and_ids_are_never_reused(backend: Backend) {
    let t = TestStore::open(backend).await;
    let mut batch = numbered("r", 30);
    for (i, r) in batch.iter_mut().enumerate() {
        r.category = Some(if i % 3 == 0 { "gone" } else { "kept" }.into());
    }
    t.store.append(batch).await.expect("append");
    let before = all_records(t.store.as_ref()).await;
    let gone = Query::newest_first().with(Condition::In(
        Field::Category,
        vec![Scalar::Text("gone".into())],
    ));
    // The cursor, offset and limit of a query do not narrow a delete.
    let mut narrowed = gone.clone();
    narrowed.limit = Some(1);
    narrowed.after = Some(Cursor(2));
    assert_eq!(
        t.store
            .delete_recorded(&narrowed, clear_record())
            .await
            .expect("delete"),
        10
    );
    let after = all_records(t.store.as_ref()).await;
    let (journal, after) = after.split_last().expect("the clear's journal record");
    assert_eq!(
        journal.message.as_deref(),
        Some("cleared 10"),
        "one transaction with the delete"
    );
    assert_eq!(journal.id, 31);
    let expected: Vec<Record> = before.into_iter().filter(|r| !gone.matches(r)).collect();
    assert_eq!(after, expected, "only the matches went");
    assert_eq!(t.store.get(1).await.expect("get"), None);
    assert_eq!(t.store.count(&gone).await.expect("count"), 0);
    assert_eq!(
        t.store
            .delete_recorded(&gone, clear_record())
            .await
            .expect("again"),
        0
    );
    // Deleting the newest does not make their ids available again.
    let newest = Query::newest_first().with(records::id_is(Comparison::Ge, 31));
    assert_eq!(
        t.store
            .delete_recorded(&newest, clear_record())
            .await
            .expect("delete"),
        2
    );
    let next = t.store.append(numbered("next", 1)).await.expect("append");
    assert_eq!(next.first_id, Some(34));
    assert_eq!(t.store.high_water().await.expect("hw"), 34);
    t.close().await;
}

async fn group_counts_per_key_in_key_order_with_the_latest_ts(backend: Backend) {
    let t = TestStore::open(backend).await;
    let mut batch = Vec::new();
    for i in 0..40i64 {
        let mut r = log(
            [Level::Info, Level::Warn, Level::Error][i as usize % 3],
            ["b", "a", "c", "a"][i as usize % 4],
            "m",
        );
        r.ts = Some(Timestamp(
            1_700_000_000_000_000 + (i * 7919 % 40) * 1_000_000,
        ));
        r.instance = (i % 5 != 0).then(|| format!("node-{}", i % 2));
        r.kind = Some(if i % 7 == 0 { Kind::Event } else { Kind::Log });
        batch.push(r);
    }
    t.store.append(batch).await.expect("append");
    let all = all_records(t.store.as_ref()).await;
    for (query, fields) in [
        (Query::newest_first(), vec![Field::Instance]),
        (Query::newest_first(), vec![Field::Category, Field::Level]),
        (
            Query::newest_first().kinds(&[Kind::Log]),
            vec![Field::Source, Field::Instance],
        ),
        (
            Query::newest_first().min_level(Level::Warn),
            vec![Field::Kind],
        ),
    ] {
        let groups = t
            .store
            .group(&query, &GroupQuery::by(&fields))
            .await
            .expect("group");
        assert_eq!(groups, records::groups(&all, &query, &fields), "{fields:?}");
    }
    let none = Query::newest_first().with(Condition::Any(Vec::new()));
    assert!(t
        .store
        .group(&none, &GroupQuery::by(&[Field::Category]))
        .await
        .expect("group")
        .is_empty());
    t.close().await;
}

async fn size_on_disk_grows_with_records_and_splits_by_kind(backend: Backend) {
    let t = TestStore::open(backend).await;
    for kind in Kind::ALL {
        assert_eq!(t.store.size_on_disk(kind).await.expect("size"), 0, "{kind}");
    }
    let mut batch = numbered("some log line with a little text in it", 3000);
    for (i, r) in batch.iter_mut().enumerate() {
        if i % 4 == 0 {
            r.kind = Some(Kind::Event);
        }
    }
    t.store.append(batch).await.expect("append");
    let log = t.store.size_on_disk(Kind::Log).await.expect("size");
    let event = t.store.size_on_disk(Kind::Event).await.expect("size");
    let journal = t.store.size_on_disk(Kind::Journal).await.expect("size");
    assert!(log > 0 && event > 0, "log {log}, event {event}");
    assert_eq!(journal, 0, "no journal records, no journal bytes");
    // Three times the records, about three times the share (within a factor of two).
    assert!(
        log > event * 3 / 2 && log < event * 6,
        "log {log} vs event {event}"
    );
    t.store
        .append(numbered("more log lines with a little text in them", 6000))
        .await
        .expect("append");
    let grown = t.store.size_on_disk(Kind::Log).await.expect("size");
    assert!(grown > log, "{grown} after more records vs {log}");
    t.close().await;
}

async fn related_objects_are_the_tree_around_an_object_in_key_order(backend: Backend) {
    let t = TestStore::open(backend).await;
    let put = |key: ObjectRef, parent: Option<ObjectRef>| ObjectUpdate {
        key: Some(key),
        parent: Some(parent),
        name: Some("n".into()),
        ..ObjectUpdate::default()
    };
    let node = ObjectRef::new("node", "n1");
    let stack = ObjectRef::new("stack", "s1");
    let other = ObjectRef::new("stack", "s0");
    for (key, parent) in [
        (node.clone(), None),
        (stack.clone(), Some(node.clone())),
        (other.clone(), Some(node.clone())),
        (ObjectRef::new("service", "b"), Some(stack.clone())),
        (ObjectRef::new("service", "a"), Some(stack.clone())),
        (
            ObjectRef::new("container", "z"),
            Some(ObjectRef::new("service", "b")),
        ),
        (ObjectRef::new("container", "y"), Some(other.clone())),
        (ObjectRef::new("node", "unrelated"), None),
    ] {
        t.store.put_object(put(key, parent)).await.expect("put");
    }
    let related: Vec<ObjectRef> = t
        .store
        .related_objects(&stack)
        .await
        .expect("related")
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        related,
        [
            ObjectRef::new("container", "z"),
            node.clone(),
            ObjectRef::new("service", "a"),
            ObjectRef::new("service", "b"),
            stack.clone(),
        ],
        "ancestors, itself and descendants, ordered by type then id"
    );
    t.close().await;
}

async fn get_finds_a_record_by_id_and_nothing_else(backend: Backend) {
    let t = TestStore::open(backend).await;
    assert_eq!(t.store.get(1).await.expect("get"), None);
    t.store.append(numbered("g", 20)).await.expect("append");
    let all = all_records(t.store.as_ref()).await;
    for id in [1, 7, 20] {
        let found = t.store.get(id).await.expect("get");
        assert_eq!(found.as_ref(), all.iter().find(|r| r.id == id));
    }
    for id in [0, -3, 21, i64::MAX] {
        assert_eq!(t.store.get(id).await.expect("get"), None, "{id}");
    }
    t.close().await;
}

/// Sealed blocks (several pages each), blocks a delete rewrote with gaps in their
/// ids, and hot rows: an export in either order, as records and as NDJSON lines, is
/// every record in order, and a get finds each id that is there and no other.
async fn an_export_and_gets_over_blocks_hot_rows_and_deletions_see_every_record(backend: Backend) {
    use futures_util::StreamExt;
    let t = TestStore::open(backend).await;
    for b in 0..6 {
        let mut batch = numbered(&format!("b{b}"), 9);
        for (i, r) in batch.iter_mut().enumerate() {
            r.category = Some(if (b * 9 + i) % 4 == 1 { "gone" } else { "kept" }.into());
        }
        t.store.append(batch).await.expect("append");
    }
    t.seal().await;
    let gone = Query::oldest_first().with(Condition::In(
        Field::Category,
        vec![Scalar::Text("gone".into())],
    ));
    let deleted = t
        .store
        .delete_recorded(&gone, clear_record())
        .await
        .expect("delete");
    assert_eq!(deleted, 14);
    t.store.append(numbered("hot", 4)).await.expect("append");
    let all = all_records(t.store.as_ref()).await;
    assert_eq!(all.len(), 54 - 14 + 1 + 4);
    for order in [
        logbook_core::Order::OldestFirst,
        logbook_core::Order::NewestFirst,
    ] {
        let query = Query {
            order,
            ..Query::default()
        };
        let mut expected = all.clone();
        if order == logbook_core::Order::NewestFirst {
            expected.reverse();
        }
        let mut exported = Vec::new();
        let mut batches = t.store.export(query.clone());
        while let Some(batch) = batches.next().await {
            exported.extend(batch.expect("export batch"));
        }
        assert!(exported == expected, "{order:?}: every record, in order");
        let mut lines = Vec::new();
        let mut chunks = t.store.export_ndjson(query);
        while let Some(chunk) = chunks.next().await {
            lines.extend(chunk.expect("export chunk"));
        }
        let mut written = Vec::new();
        for record in &expected {
            record.write_json(&mut written);
            written.push(b'\n');
        }
        assert_eq!(
            String::from_utf8_lossy(&lines),
            String::from_utf8_lossy(&written),
            "{order:?}: every record's line, in order"
        );
    }
    let last = all.last().map_or(0, |r| r.id);
    for id in 0..=last + 1 {
        let expected = all.iter().find(|r| r.id == id);
        let got = t.store.get(id).await.expect("get");
        assert_eq!(got.as_ref(), expected, "get {id}");
    }
    t.close().await;
}

/// A delete rewrites each block it takes records from, and on the embedded store the
/// rewritten block keeps its key while its first record stays: gets and queries
/// that took the catalog before a delete committed and read the block after must
/// notice and read again, never decode the new block with the old one's layout.
/// Records that no delete takes read the same throughout.
async fn gets_and_queries_while_deletes_rewrite_their_blocks_see_the_kept_records(
    backend: Backend,
) {
    let t = TestStore::open(backend).await;
    for b in 0..4 {
        let mut batch = numbered(&format!("b{b}"), 14);
        for (i, r) in batch.iter_mut().enumerate() {
            // Every block's first record is kept, so each rewrite keeps its key.
            r.category = Some(if i % 7 == 0 {
                "kept".into()
            } else {
                format!("gone{i}")
            });
        }
        t.store.append(batch).await.expect("append");
    }
    t.seal().await;
    let all = all_records(t.store.as_ref()).await;
    let kept: Vec<Record> = all
        .iter()
        .filter(|r| r.category.as_deref() == Some("kept"))
        .cloned()
        .collect();
    let kept_query = Query::default().with(Condition::In(
        Field::Category,
        vec![Scalar::Text("kept".into())],
    ));
    let deleting = {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move {
            for i in (1..14).filter(|i| i % 7 != 0) {
                let gone = Query::oldest_first().with(Condition::In(
                    Field::Category,
                    vec![Scalar::Text(format!("gone{i}"))],
                ));
                let deleted = store
                    .delete_recorded(&gone, clear_record())
                    .await
                    .expect("delete");
                assert_eq!(deleted, 4, "gone{i}");
            }
        })
    };
    let mut rounds = 0;
    while !deleting.is_finished() || rounds == 0 {
        rounds += 1;
        for record in &kept {
            let got = t.store.get(record.id).await.expect("get during deletes");
            assert_eq!(got.as_ref(), Some(record), "get {}", record.id);
        }
        let page = t
            .store
            .query(&kept_query)
            .await
            .expect("query during deletes");
        let newest: Vec<Record> = kept.iter().rev().cloned().collect();
        assert_eq!(page.records, newest, "newest kept records during deletes");
    }
    deleting.await.expect("deletes");
    let logs: Vec<Record> = all_records(t.store.as_ref())
        .await
        .into_iter()
        .filter(|r| r.kind == Kind::Log)
        .collect();
    assert_eq!(logs, kept, "what no delete took, and only that");
    t.close().await;
}

async fn records_and_their_object_writes_commit_together_in_order(backend: Backend) {
    let t = TestStore::open(backend).await;
    let key = ObjectRef::new("docker", "c1");
    let update = |state: &str| {
        ObjectWrite::Put(Box::new(ObjectUpdate {
            key: Some(key.clone()),
            state: Some(state.into()),
            ..ObjectUpdate::default()
        }))
    };
    // In the store's own batch, pushed in two parts, as an NDJSON body is.
    let mut events = t.store.record_batch();
    for part in numbered("event", 2).chunks(1) {
        events.push(part.to_vec());
    }
    let appended = t
        .store
        .append_with_objects(events, vec![update("running"), update("stopped")])
        .await
        .expect("append with objects");
    assert_eq!((appended.first_id, appended.last_id), (Some(1), Some(2)));
    let object = t
        .store
        .get_object(&key)
        .await
        .expect("get")
        .expect("object");
    assert_eq!(object.state.as_deref(), Some("stopped"), "writes in order");
    t.store
        .append_with_objects(
            numbered("gone", 1).into(),
            vec![ObjectWrite::Remove(key.clone())],
        )
        .await
        .expect("append with removal");
    assert_eq!(t.store.get_object(&key).await.expect("get"), None);
    assert_eq!(t.store.high_water().await.expect("hw"), 3);
    t.close().await;
}

async fn every_field_round_trips(backend: Backend) {
    let t = TestStore::open(backend).await;
    let mut full = NewRecord::new(Kind::Journal);
    full.ts = Some(Timestamp(1_432_022_739_123_456));
    full.level = Some(Level::Critical);
    for (i, name) in [
        "category",
        "source",
        "instance",
        "logger",
        "user",
        "user_id",
        "domain_id",
        "project_id",
        "object_type",
        "object_id",
        "action",
        "status",
        "response_code",
        "request_id",
        "parent_request_id",
        "message",
    ]
    .into_iter()
    .enumerate()
    {
        *full.text_field_mut(name).expect("field") = Some(format!("{name} Ünïcode \"{i}\" \\ \t"));
    }
    full.data = Some(
        serde_json::json!({"z": 1, "a": {"deep": [true, null, "x"]}, "m": 1.5e-7, "e": "é\u{1F600}"})
            .as_object()
            .expect("object")
            .clone(),
    );
    let bare = NewRecord::new(Kind::Event);
    let appended = t
        .store
        .append(vec![full.clone(), bare.clone()])
        .await
        .expect("append");
    let stored = all_records(t.store.as_ref()).await;
    let now = stored[1].ts;
    assert!(now.micros() > 1_700_000_000_000_000, "a missing ts is now");
    assert_eq!(stored[0], full.into_record(1, now));
    assert_eq!(stored[1], bare.into_record(2, now));
    let keys: Vec<&String> = stored[0].data.as_ref().expect("data").keys().collect();
    assert_eq!(keys, ["z", "a", "m", "e"], "data keeps its key order");
    assert_eq!(appended.last_id, Some(2));
    t.close().await;
}

/// Leaves of a complete chunk are kept as its root and a fingerprint per leaf
/// (whole hashes come back recomputed from the records); a removed record's leaf
/// is kept whole, whether its chunk was kept before the removal or after.
async fn complete_chunks_keep_their_root_and_fingerprints_and_removals_their_leaves(
    backend: Backend,
) {
    use logbook_core::integrity::{leaf_hash, merkle::root_of, Hash, Kept, CHUNK};
    let t = TestStore::open(backend).await;
    for b in 0..3 {
        t.store
            .append(numbered(&format!("c{b}"), 900))
            .await
            .expect("append");
    }
    let records = all_records(t.store.as_ref()).await;
    let hashes: Vec<Hash> = records.iter().map(leaf_hash).collect();
    assert_eq!(t.store.tree_size().await.expect("size"), 2700);
    let whole = |leaves: Vec<logbook_store::integrity::Leaf>| -> Vec<Hash> {
        leaves.iter().map(|l| l.hash).collect()
    };
    assert_eq!(
        whole(t.store.leaves(0, 2700).await.expect("leaves")),
        hashes
    );
    let roots: Vec<Hash> = hashes.chunks(CHUNK as usize).take(2).map(root_of).collect();
    assert_eq!(t.store.chunk_roots(0, 10).await.expect("roots"), roots);
    let stored = t.store.stored_leaves(0, 2700).await.expect("stored");
    assert_eq!(stored.len(), 2700);
    assert!(stored[..2048]
        .iter()
        .all(|l| matches!(l.kept, Kept::Fingerprint(_))));
    assert!(stored[2048..]
        .iter()
        .all(|l| l.kept == Kept::Hash(hashes[l.index as usize])));

    // One removed from a kept chunk, one from the runs (kept with its chunk later).
    for at in [5usize, 2600] {
        let id = records[at].id;
        let query = Query::default().with(Condition::In(Field::Id, vec![Scalar::Int(id)]));
        assert_eq!(
            t.store
                .delete_recorded(&query, clear_record())
                .await
                .expect("delete"),
            1
        );
    }
    t.store
        .append(numbered("after", 400))
        .await
        .expect("append");
    let size = t.store.tree_size().await.expect("size");
    assert_eq!(size, 2700 + 2 + 400);
    assert_eq!(t.store.chunk_roots(0, 10).await.expect("roots").len(), 3);
    let leaves = whole(t.store.leaves(0, 2700).await.expect("leaves"));
    assert_eq!(leaves, hashes, "removed records' leaves are whole");
    let stored = t.store.stored_leaves(0, size).await.expect("stored");
    for at in [5usize, 2600] {
        assert_eq!(stored[at].kept, Kept::Hash(hashes[at]), "leaf {at}");
        let leaf = t.store.leaf_of(records[at].id).await.expect("leaf_of");
        assert_eq!(leaf.map(|l| l.hash), Some(hashes[at]));
    }
    assert!(matches!(stored[6].kept, Kept::Fingerprint(_)));
    t.close().await;
}

/// A removal that commits between reading a kept chunk's fingerprints and the
/// records their hashes are recomputed from: the leaves are read again, and the
/// removed record's leaf comes whole, as the removal kept it.
async fn leaves_read_while_a_removal_commits_are_read_again(backend: Backend) {
    use logbook_core::integrity::{leaf_hash, Hash, Kept, CHUNK};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t = TestStore::open(backend).await;
    t.store
        .append(numbered("r", CHUNK as usize))
        .await
        .expect("append");
    assert_eq!(t.store.tree_size().await.expect("size"), CHUNK);
    let records = all_records(t.store.as_ref()).await;
    let hashes: Vec<Hash> = records.iter().map(leaf_hash).collect();
    let store = t.store.as_ref();
    let stored = store.stored_leaves(0, CHUNK).await.expect("stored");
    assert!(matches!(stored[7].kept, Kept::Fingerprint(_)));
    let removed = Query::default().with(Condition::In(Field::Id, vec![Scalar::Int(records[7].id)]));
    let reads = AtomicUsize::new(0);
    let leaves = logbook_store::integrity::recomputed_leaves(store, || async {
        let stored = store.stored_leaves(0, CHUNK).await;
        if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            let deleted = store
                .delete_recorded(&removed, clear_record())
                .await
                .expect("delete");
            assert_eq!(deleted, 1);
        }
        stored
    })
    .await
    .expect("leaves");
    assert_eq!(reads.load(Ordering::SeqCst), 2, "read again, once");
    let leaves: Vec<Hash> = leaves.iter().map(|l| l.hash).collect();
    assert_eq!(leaves, hashes);
    t.close().await;
}
