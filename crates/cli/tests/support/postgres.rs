//! PostgreSQL for tests: each test gets its own schema in the test database (named
//! in the connection's search_path), so tests run in parallel on one server. The
//! database is `LOGBOOK_TEST_DATABASE_URL` (default: the CI server on 127.0.0.1:5432).
//!
//! The restart test stops the real server. Every other PostgreSQL test holds a
//! shared lock on one file while it runs and the restart test takes it exclusively,
//! so even test binaries run concurrently (two `cargo test`s) never see the restart.
#![allow(clippy::incompatible_msrv)] // File::lock_shared: the toolchain here has it

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Schemas a crashed test left behind are dropped once this old.
const STALE_AFTER_SECS: u64 = 3 * 3600;

pub fn base_url() -> String {
    std::env::var("LOGBOOK_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

fn lock_file() -> File {
    let path = std::env::temp_dir().join("logbook-postgres-tests.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("open the PostgreSQL test lock file")
}

/// Held by every ordinary PostgreSQL test: the server is not restarted meanwhile.
pub fn shared_lock() -> File {
    let file = lock_file();
    file.lock_shared().expect("shared lock");
    file
}

/// Held by the restart test: no other PostgreSQL test runs meanwhile.
pub fn exclusive_lock() -> File {
    let file = lock_file();
    file.lock().expect("exclusive lock");
    file
}

/// A schema of its own in the test database, dropped by [`TestDatabase::drop`].
pub struct TestDatabase {
    pub schema: String,
    /// A URL whose connections use only this schema.
    pub url: String,
    _lock: Option<File>,
}

async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is not reachable: {e}", base_url()));
    tokio::spawn(connection);
    client
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl TestDatabase {
    /// A fresh schema; takes the shared lock (see the module comment).
    pub async fn create() -> TestDatabase {
        let lock = tokio::task::spawn_blocking(shared_lock)
            .await
            .expect("lock task");
        let mut db = TestDatabase::create_unlocked().await;
        db._lock = Some(lock);
        db
    }

    /// A fresh schema without the shared lock (for the restart test, which holds
    /// the exclusive one).
    pub async fn create_unlocked() -> TestDatabase {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let schema = format!(
            "lbt_{now}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let client = connect().await;
        sweep_stale(&client, now).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        let base = base_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        TestDatabase {
            schema,
            url,
            _lock: None,
        }
    }

    pub async fn drop(self) {
        let client = connect().await;
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await;
    }
}

/// Drops schemas of tests that died without cleaning up, long enough ago that they
/// cannot be running.
async fn sweep_stale(client: &tokio_postgres::Client, now: u64) {
    let Ok(rows) = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lbt\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .split('_')
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > STALE_AFTER_SECS {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}
