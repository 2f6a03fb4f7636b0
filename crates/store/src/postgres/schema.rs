//! Versioned, forward-only schema migrations for the PostgreSQL store, applied at
//! start in one transaction under an advisory lock, so nodes starting together
//! cannot race: the second waits, then finds nothing left to do.

use super::LOCK_CLASS;
use crate::Result;
use deadpool_postgres::Client;

/// Advisory lock (second part) held while migrating. One key for the whole database,
/// because `CREATE EXTENSION` is database-wide.
const MIGRATION_LOCK: i32 = 0;

/// Each entry is one migration; its position (1-based) is its version. Never edit a
/// released entry: append a new one. `{trgm}` is the schema pg_trgm lives in.
///
/// Text columns use the "C" collation: bytewise comparison and ordering, exactly as
/// the embedded store compares, and cheaper b-tree indexes.
const MIGRATIONS: &[&str] = &[
    // 1: everything the embedded store has at its version 3.
    r#"
    CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
    INSERT INTO meta (key, value) VALUES ('last_record_id', 0);

    -- Partitioned by id range, i.e. by arrival: ids are assigned in commit order, so
    -- each partition holds one stretch of time, and retention drops whole partitions.
    CREATE TABLE records (
        id bigint NOT NULL,
        ts bigint NOT NULL,
        kind bigint NOT NULL,
        level bigint,
        category text COLLATE "C",
        source text COLLATE "C",
        instance text COLLATE "C",
        logger text COLLATE "C",
        "user" text COLLATE "C",
        user_id text COLLATE "C",
        domain_id text COLLATE "C",
        project_id text COLLATE "C",
        object_type text COLLATE "C",
        object_id text COLLATE "C",
        action text COLLATE "C",
        status text COLLATE "C",
        response_code text COLLATE "C",
        request_id text COLLATE "C",
        parent_request_id text COLLATE "C",
        message text COLLATE "C",
        data json,
        PRIMARY KEY (id)
    ) PARTITION BY RANGE (id);
    -- Which partitions exist: [lo, hi) of ids, and the table's name.
    CREATE TABLE record_partitions (
        lo bigint PRIMARY KEY,
        hi bigint NOT NULL,
        name text NOT NULL
    );
    -- Every index ends in id, so "newest N where column = value" needs no sort.
    CREATE INDEX records_kind ON records (kind, id);
    CREATE INDEX records_level ON records (level, id);
    CREATE INDEX records_category ON records (category, id);
    CREATE INDEX records_user ON records ("user", id);
    CREATE INDEX records_source_instance ON records (source, instance, id);
    CREATE INDEX records_object ON records (object_id, id);
    CREATE INDEX records_request ON records (request_id, id);
    CREATE INDEX records_domain ON records (domain_id, id);
    CREATE INDEX records_ts ON records (ts, id);
    CREATE INDEX records_instance ON records (instance, id) WHERE instance IS NOT NULL;
    CREATE INDEX records_logger ON records (logger, id) WHERE logger IS NOT NULL;
    CREATE INDEX records_user_id ON records (user_id, id) WHERE user_id IS NOT NULL;
    CREATE INDEX records_project ON records (project_id, id) WHERE project_id IS NOT NULL;
    CREATE INDEX records_object_type ON records (object_type, id) WHERE object_type IS NOT NULL;
    CREATE INDEX records_action ON records (action, id) WHERE action IS NOT NULL;
    CREATE INDEX records_status ON records (status, id) WHERE status IS NOT NULL;
    -- Substring search: `lower(message) LIKE '%needle%'` is answered from this index.
    CREATE INDEX records_message_trgm ON records USING gin (lower(message) {trgm}.gin_trgm_ops);

    CREATE TABLE objects (
        object_type text COLLATE "C" NOT NULL,
        object_id text COLLATE "C" NOT NULL,
        name text,
        state text,
        parent_type text COLLATE "C",
        parent_id text COLLATE "C",
        uri text COLLATE "C",
        attributes json NOT NULL DEFAULT '{}',
        domain_id text,
        updated bigint NOT NULL,
        PRIMARY KEY (object_type, object_id)
    );
    CREATE INDEX objects_parent ON objects (parent_type, parent_id);
    CREATE INDEX objects_uri ON objects (uri);

    CREATE TABLE actions (
        uuid text COLLATE "C" PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        object text COLLATE "C",
        action text NOT NULL,
        method text,
        path text,
        user_agent text,
        start_date bigint NOT NULL,
        end_date bigint,
        state text COLLATE "C" NOT NULL,
        ip text,
        location text,
        is_user_action boolean NOT NULL,
        can_be_canceled boolean NOT NULL,
        can_be_retried boolean NOT NULL,
        "user" text,
        domain_id text COLLATE "C",
        retry_of text
    );
    CREATE INDEX actions_start ON actions (start_date, seq);
    CREATE INDEX actions_object ON actions (object);
    CREATE TABLE action_logs (
        uuid text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        ts bigint NOT NULL,
        line text NOT NULL,
        PRIMARY KEY (uuid, seq)
    );

    CREATE TABLE users (
        id bigserial PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE,
        password_hash text,
        role text NOT NULL,
        domain text NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        any_domain boolean NOT NULL DEFAULT false,
        created bigint NOT NULL
    );
    CREATE TABLE tokens (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users (id),
        name text,
        digest text COLLATE "C" NOT NULL UNIQUE,
        created bigint NOT NULL,
        expires bigint,
        revoked boolean NOT NULL DEFAULT false
    );
    CREATE TABLE sessions (
        digest text COLLATE "C" PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users (id),
        created bigint NOT NULL,
        expires bigint NOT NULL
    );
    "#,
    // 2: idempotency keys of writes (`Idempotency-Key`), shared by every node.
    r#"
    CREATE TABLE idempotency_keys (
        key text COLLATE "C" PRIMARY KEY,
        fingerprint text NOT NULL,
        status integer,
        body text,
        claimed bigint NOT NULL,
        expires bigint NOT NULL
    );
    CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires);
    "#,
    // 3: tamper evidence (docs/integrity.md), as the embedded store's version 7: leaf
    // runs, removed stretches, signed checkpoints, settings. A run's leaves are
    // written with its records; its place in the tree (`first_index`) is given once
    // the run is below the visibility horizon (`integrity::index_leaves`), because
    // appends run concurrently and commit out of id order. Leaves of earlier
    // records are computed at start (`integrity::backfill`).
    r#"
    CREATE TABLE record_leaves (
        first_id bigint PRIMARY KEY,
        first_index bigint UNIQUE,
        hashes bytea NOT NULL
    );
    CREATE TABLE removed_records (
        first_id bigint PRIMARY KEY,
        last_id bigint NOT NULL,
        removed_at bigint NOT NULL,
        journal_id bigint NOT NULL
    );
    CREATE TABLE checkpoints (
        seq bigserial PRIMARY KEY,
        tree_size bigint NOT NULL,
        body text NOT NULL
    );
    CREATE INDEX checkpoints_tree_size ON checkpoints (tree_size);
    CREATE TABLE integrity_settings (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
    INSERT INTO integrity_settings (key, value) VALUES ('backfill_pending', '1');
    "#,
    // 4: appends without a global lock (docs/postgres.md, "Ids and the visibility
    // horizon"). Ids are reserved from `id_counter` by short statements committed
    // ahead of the append, each registered in `appending` under the xid of the
    // transaction that will use them, until a sweep deletes it once that
    // transaction has ended (the transaction itself deleted it before c7aa9d4).
    r#"
    CREATE TABLE id_counter (last bigint NOT NULL) WITH (fillfactor = 20);
    INSERT INTO id_counter (last) SELECT value FROM meta WHERE key = 'last_record_id';
    DELETE FROM meta WHERE key = 'last_record_id';
    CREATE TABLE appending (xid xid8 PRIMARY KEY, floor bigint NOT NULL);
    "#,
    // 5: sealed blocks (docs/postgres.md, "Hot rows and sealed blocks"), the
    // embedded store's format: `records` becomes the hot tier, and the sealer
    // moves its oldest rows below the horizon into blocks, in the background
    // (rows of an upgraded schema included: nothing is renumbered). `generation`
    // names one block's content for the nodes' caches; a rewrite gets a new one.
    // The blob is stored EXTERNAL (out of line, not compressed again), so a page
    // is read by `substring` from its TOAST chunks alone.
    r#"
    CREATE SEQUENCE block_generation;
    CREATE TABLE blocks (
        first_id bigint PRIMARY KEY,
        last_id bigint NOT NULL,
        generation bigint NOT NULL UNIQUE DEFAULT nextval('block_generation'),
        rows bigint NOT NULL,
        header bytea NOT NULL,
        summary bytea NOT NULL,
        data bytea NOT NULL
    );
    ALTER TABLE blocks ALTER COLUMN data SET STORAGE EXTERNAL;
    "#,
    // 6: the hot rows keep only their primary key. Since version 5 they are a
    // bounded tier that every read hands to the block engine beside the blocks, as
    // the embedded store's hot segments (which have no index at all); the 16
    // filter indexes and the trigram index cost more per append (and more disk)
    // than scanning the bounded rows saves. The primary key stays: paging, the
    // sealer's oldest-first reads, `get` and range deletes walk it. Rows of an
    // upgraded schema that are not sealed yet are scanned until the sealer reaches
    // them (docs/postgres.md, "Indexes").
    r#"
    DROP INDEX records_kind, records_level, records_category, records_user,
        records_source_instance, records_object, records_request, records_domain,
        records_ts, records_instance, records_logger, records_user_id,
        records_project, records_object_type, records_action, records_status,
        records_message_trgm;
    "#,
    // 7: leaves kept per complete chunk of 1024, as the embedded store's version 8
    // (crate::integrity): root, ids and fingerprints replace the chunk's runs, in
    // the transaction that places the leaves completing it; whole leaves of
    // removed records. Runs of an upgraded schema are kept in chunks by the next
    // placing (`integrity::index_leaves`).
    r#"
    CREATE TABLE leaf_chunks (
        chunk bigint PRIMARY KEY,
        first_id bigint NOT NULL UNIQUE,
        last_id bigint NOT NULL,
        root bytea NOT NULL,
        id_runs bytea NOT NULL,
        fingerprints bytea NOT NULL
    );
    CREATE TABLE removed_leaves (id bigint PRIMARY KEY, hash bytea NOT NULL);
    "#,
];

pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Applies every migration newer than the schema's version and returns the version
/// the schema is at afterwards.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<i64> {
    migrate_up_to(client, schema, latest_version()).await
}

/// As [`migrate`], stopping at `target`: the upgrade tests write a schema as an
/// older release left it, by that release's own migrations.
pub async fn migrate_up_to(
    client: &mut tokio_postgres::Client,
    schema: &str,
    target: i64,
) -> Result<i64> {
    let tx = client.transaction().await?;
    // "already exists, skipping" notices are expected here, not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &MIGRATION_LOCK],
    )
    .await?;
    // The extension is database-wide; it goes into `public` when it is new, so that
    // dropping one Logbook schema never drops it under another.
    let trgm: Option<String> = tx
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    let trgm = match trgm {
        Some(schema) => schema,
        None => {
            tx.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
                .await?;
            "public".to_string()
        }
    };
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL)")
        .await?;
    let version: i64 = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0);
    let start = usize::try_from(version).unwrap_or(usize::MAX);
    let mut applied = version;
    let end = usize::try_from(target).unwrap_or(0);
    for sql in MIGRATIONS.iter().take(end).skip(start) {
        let sql = sql.replace("{trgm}", &quote_ident(&trgm));
        tx.batch_execute(&sql).await?;
        applied += 1;
        tracing::info!(version = applied, schema, "applied schema migration");
    }
    if applied != version {
        tx.execute("DELETE FROM schema_version", &[]).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&applied],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(applied)
}

/// An SQL identifier, quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
