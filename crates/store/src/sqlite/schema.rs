//! Versioned, forward-only schema migrations for the embedded store, applied at
//! open under SQLite's write lock so two processes opening one file cannot race.

use rusqlite::Connection;

/// Each entry is one migration; its position (1-based) is its version. Never edit a
/// released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: records, their indexes and trigram full-text index; objects; actions; accounts.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('last_record_id', 0), ('last_action_seq', 0);

    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        level INTEGER,
        category TEXT,
        source TEXT,
        instance TEXT,
        logger TEXT,
        "user" TEXT,
        user_id TEXT,
        domain_id TEXT,
        project_id TEXT,
        object_type TEXT,
        object_id TEXT,
        action TEXT,
        status TEXT,
        response_code TEXT,
        request_id TEXT,
        parent_request_id TEXT,
        message TEXT,
        data TEXT
    );
    -- Every SQLite index ends in the rowid, so each of these also serves
    -- "newest N where column = value" without a sort.
    CREATE INDEX records_kind ON records (kind);
    CREATE INDEX records_level ON records (level);
    CREATE INDEX records_category ON records (category);
    CREATE INDEX records_user ON records ("user");
    CREATE INDEX records_source_instance ON records (source, instance);
    CREATE INDEX records_object ON records (object_id);
    CREATE INDEX records_request ON records (request_id);
    CREATE INDEX records_domain ON records (domain_id);
    CREATE INDEX records_ts ON records (ts);
    -- Contentless: the text is stored once, in records; the index answers substring
    -- searches (three characters or more) and deletes by rowid.
    CREATE VIRTUAL TABLE records_fts USING fts5 (
        message, content = '', contentless_delete = 1, tokenize = 'trigram'
    );

    CREATE TABLE objects (
        object_type TEXT NOT NULL,
        object_id TEXT NOT NULL,
        name TEXT,
        state TEXT,
        parent_type TEXT,
        parent_id TEXT,
        uri TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        domain_id TEXT,
        updated INTEGER NOT NULL,
        PRIMARY KEY (object_type, object_id)
    ) WITHOUT ROWID;
    CREATE INDEX objects_parent ON objects (parent_type, parent_id);
    CREATE INDEX objects_uri ON objects (uri);

    CREATE TABLE actions (
        uuid TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        object TEXT,
        action TEXT NOT NULL,
        method TEXT,
        path TEXT,
        user_agent TEXT,
        start_date INTEGER NOT NULL,
        end_date INTEGER,
        state TEXT NOT NULL,
        ip TEXT,
        location TEXT,
        is_user_action INTEGER NOT NULL,
        can_be_canceled INTEGER NOT NULL,
        can_be_retried INTEGER NOT NULL,
        "user" TEXT,
        domain_id TEXT,
        retry_of TEXT
    ) WITHOUT ROWID;
    CREATE INDEX actions_start ON actions (start_date, seq);
    CREATE INDEX actions_object ON actions (object);
    CREATE TABLE action_logs (
        uuid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (uuid, seq)
    ) WITHOUT ROWID;

    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        role TEXT NOT NULL,
        domain TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        any_domain INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id),
        name TEXT,
        digest TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        expires INTEGER,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        digest TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id),
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: the trigram index without positions (`detail=none`): about a third of the
    // size; substring conditions are re-checked against the row, so it only has to
    // find a superset (every trigram of the needle present).
    r#"
    DROP TABLE records_fts;
    CREATE VIRTUAL TABLE records_fts USING fts5 (
        message, content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
    );
    INSERT INTO records_fts (rowid, message)
        SELECT id, message FROM records WHERE message IS NOT NULL;
    "#,
    // 3: an index for every remaining filter of the query model. Partial: rows without
    // the field (most logs have no action, most journal entries no logger) cost nothing.
    r#"
    CREATE INDEX records_instance ON records (instance) WHERE instance IS NOT NULL;
    CREATE INDEX records_logger ON records (logger) WHERE logger IS NOT NULL;
    CREATE INDEX records_user_id ON records (user_id) WHERE user_id IS NOT NULL;
    CREATE INDEX records_project ON records (project_id) WHERE project_id IS NOT NULL;
    CREATE INDEX records_object_type ON records (object_type) WHERE object_type IS NOT NULL;
    CREATE INDEX records_action ON records (action) WHERE action IS NOT NULL;
    CREATE INDEX records_status ON records (status) WHERE status IS NOT NULL;
    -- Counts by category and level (the commonest dashboard question) read only this.
    CREATE INDEX records_category_level ON records (category, level);
    "#,
    // 4: the tiered layout (docs/storage.md): hot segments, one row per group-committed
    // batch in row form, and sealed column blocks with their headers and summaries.
    // `catalog_version` is bumped by every change to them but an append.
    r#"
    CREATE TABLE hot_segments (
        first_id INTEGER PRIMARY KEY,
        last_id INTEGER NOT NULL,
        records BLOB NOT NULL
    );
    CREATE TABLE blocks (
        first_id INTEGER PRIMARY KEY,
        last_id INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        header BLOB NOT NULL,
        summary BLOB NOT NULL,
        data BLOB NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('catalog_version', 0);
    "#,
    // 5: the row layout's indexes and trigram index are no longer read or written:
    // rows left in `records` by an earlier version are read by id range (its
    // primary key) until the sealer has moved them into blocks.
    r#"
    DROP TABLE IF EXISTS records_fts;
    DROP INDEX IF EXISTS records_kind;
    DROP INDEX IF EXISTS records_level;
    DROP INDEX IF EXISTS records_category;
    DROP INDEX IF EXISTS records_user;
    DROP INDEX IF EXISTS records_source_instance;
    DROP INDEX IF EXISTS records_object;
    DROP INDEX IF EXISTS records_request;
    DROP INDEX IF EXISTS records_domain;
    DROP INDEX IF EXISTS records_ts;
    DROP INDEX IF EXISTS records_instance;
    DROP INDEX IF EXISTS records_logger;
    DROP INDEX IF EXISTS records_user_id;
    DROP INDEX IF EXISTS records_project;
    DROP INDEX IF EXISTS records_object_type;
    DROP INDEX IF EXISTS records_action;
    DROP INDEX IF EXISTS records_status;
    DROP INDEX IF EXISTS records_category_level;
    "#,
    // 6: idempotency keys of writes (`Idempotency-Key`): the request's fingerprint,
    // its answer once stored (NULL while it runs), when it was claimed, and expiry.
    r#"
    CREATE TABLE idempotency_keys (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        status INTEGER,
        body TEXT,
        claimed INTEGER NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires);
    "#,
    // 7: tamper evidence (docs/integrity.md): the leaf hashes of the Merkle tree over
    // the records, one run per appended batch (ids consecutive within a run); the
    // stretches of removed records, whose leaves stay; signed checkpoints; settings
    // (the public key, the last verify result). Leaves of records written before
    // this version are computed when the store opens (`integrity::backfill`).
    r#"
    CREATE TABLE record_leaves (
        first_index INTEGER PRIMARY KEY,
        first_id INTEGER NOT NULL UNIQUE,
        hashes BLOB NOT NULL
    );
    CREATE TABLE removed_records (
        first_id INTEGER PRIMARY KEY,
        last_id INTEGER NOT NULL,
        removed_at INTEGER NOT NULL,
        journal_id INTEGER NOT NULL
    );
    CREATE TABLE checkpoints (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tree_size INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX checkpoints_tree_size ON checkpoints (tree_size);
    CREATE TABLE integrity_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    INSERT INTO integrity_settings (key, value) VALUES ('backfill_pending', '1');
    "#,
    // 8: leaves kept per complete chunk of 1024 (crate::integrity): the chunk's
    // root, its ids and a 2-byte fingerprint per leaf replace its runs; whole
    // leaves of removed records, which cannot be recomputed. The runs of a file
    // written before are kept in chunks when it opens (`integrity::keep_chunks`).
    r#"
    CREATE TABLE leaf_chunks (
        chunk INTEGER PRIMARY KEY,
        first_id INTEGER NOT NULL UNIQUE,
        last_id INTEGER NOT NULL,
        root BLOB NOT NULL,
        id_runs BLOB NOT NULL,
        fingerprints BLOB NOT NULL
    );
    CREATE TABLE removed_leaves (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
    "#,
];

pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Applies every migration newer than the file's version, each in its own
/// transaction, and returns the version the file is at afterwards.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    migrate_up_to(conn, latest_version())
}

/// As [`migrate`], stopping at `target`: how an upgrade test makes a file as an
/// earlier version left it.
pub fn migrate_up_to(conn: &mut Connection, target: i64) -> rusqlite::Result<i64> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(sql) = usize::try_from(version)
            .ok()
            .filter(|_| version < target)
            .and_then(|v| MIGRATIONS.get(v))
        else {
            tx.commit()?;
            return Ok(version);
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "applied schema migration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_migrates_to_the_latest_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut conn).expect("migrate"), latest_version());
        // Idempotent: a second start applies nothing.
        assert_eq!(migrate(&mut conn).expect("migrate"), latest_version());
    }

    #[test]
    fn rows_of_version_1_survive_every_migration() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO records (id, ts, kind, message) VALUES (1, 0, 1, 'Disk timeout'), (2, 0, 1, NULL), (3, 0, 1, 'all fine');
             INSERT INTO records_fts (rowid, message) VALUES (1, 'Disk timeout'), (3, 'all fine');",
        )
        .expect("old rows");
        assert_eq!(migrate(&mut conn).expect("migrate"), latest_version());
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM records ORDER BY id")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(ids, [1, 2, 3], "kept for the sealer to move into blocks");
    }
}
