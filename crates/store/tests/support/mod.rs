//! The stores under test, opened without HTTP: the SQLite store in a temporary data
//! directory, the PostgreSQL store in a schema of its own in the test database
//! (`LOGBOOK_TEST_DATABASE_URL`, default the CI server on 127.0.0.1:5432), so tests
//! run in parallel. [`store_suite!`] runs each test once per store.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod generate;
pub mod records;

use logbook_store::postgres::{PgLayout, PostgresStore};
use logbook_store::sqlite::{RecordLayout, SqliteStore, Tiers};
use logbook_store::Store;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The embedded store with tiny blocks and pages and a sealer that runs beside
    /// every test, so records move between tiers under it.
    SqliteTiered,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` once per store, as separate
/// tests named `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod sqlite_tiered {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::SqliteTiered).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Schemas a crashed test left behind are dropped once this old.
const STALE_AFTER_SECS: u64 = 3 * 3600;

fn base_url() -> String {
    std::env::var("LOGBOOK_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// A store under test, and what it takes to open it again on the same data.
pub struct TestStore {
    pub backend: Backend,
    pub store: Arc<dyn Store>,
    /// The same store, typed, when it is a SQLite store.
    pub tiered: Option<Arc<SqliteStore>>,
    /// The same store, typed, when it is a PostgreSQL store.
    pub pg: Option<Arc<PostgresStore>>,
    dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
    /// The PostgreSQL restart test (in the cli crate) takes this lock exclusively;
    /// holding it shared means the server is not restarted under this test.
    _lock: Option<File>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl TestStore {
    pub async fn open(backend: Backend) -> TestStore {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let store = SqliteStore::open(dir.path()).expect("open the SQLite store");
                let store = Arc::new(store);
                TestStore {
                    backend,
                    store: Arc::clone(&store) as Arc<dyn Store>,
                    tiered: Some(store),
                    pg: None,
                    dir: Some(dir),
                    schema: None,
                    _lock: None,
                }
            }
            Backend::SqliteTiered => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let store = Arc::new(
                    SqliteStore::open_with(dir.path(), tiny_tiers())
                        .expect("open the SQLite store"),
                );
                TestStore {
                    backend,
                    store: Arc::clone(&store) as Arc<dyn Store>,
                    tiered: Some(store),
                    pg: None,
                    dir: Some(dir),
                    schema: None,
                    _lock: None,
                }
            }
            Backend::Postgres => TestStore::open_postgres(true).await,
        }
    }

    /// A PostgreSQL store in a fresh schema, with or without its background sealer
    /// (without it, records are sealed only by [`TestStore::seal`]).
    pub async fn open_postgres(seal: bool) -> TestStore {
        let lock = tokio::task::spawn_blocking(shared_lock)
            .await
            .expect("lock task");
        let (schema, url) = create_schema().await;
        let store = Arc::new(
            PostgresStore::open_with(&url, tiny_pg_tiers(seal))
                .await
                .expect("open the PostgreSQL store"),
        );
        TestStore {
            backend: Backend::Postgres,
            store: Arc::clone(&store) as Arc<dyn Store>,
            tiered: None,
            pg: Some(store),
            dir: None,
            schema: Some((schema, url)),
            _lock: Some(lock),
        }
    }

    /// The connection string of a PostgreSQL store's schema.
    pub fn url(&self) -> Option<&str> {
        self.schema.as_ref().map(|(_, url)| url.as_str())
    }

    /// Drops the store (its writer finishes what is queued) and opens it again on
    /// the same data, as a restarted server would.
    pub async fn reopen(&mut self) {
        self.tiered = None;
        if self.pg.take().is_some() {
            let store = match self.open_again_pg(true).await {
                Some(store) => store,
                None => unreachable!("a PostgreSQL store has a schema"),
            };
            self.store = Arc::clone(&store) as Arc<dyn Store>;
            self.pg = Some(store);
            return;
        }
        self.store = self.open_again().await;
    }

    /// Seals what the hot tier's bounds call for, now (a no-op on other stores).
    pub async fn seal(&self) {
        if let Some(store) = &self.tiered {
            store.seal_pending().await.expect("seal");
        }
        if let Some(store) = &self.pg {
            store.seal_pending().await.expect("seal");
            // Nothing is appended meanwhile: the hot tier is within its bound.
            let status = store.tier_status().await.expect("tier status");
            assert!(status.hot_records <= 10, "{status:?}");
        }
    }

    /// Another PostgreSQL node on the same schema, typed.
    pub async fn open_again_pg(&self, seal: bool) -> Option<Arc<PostgresStore>> {
        let (_, url) = self.schema.as_ref()?;
        Some(Arc::new(
            PostgresStore::open_with(url, tiny_pg_tiers(seal))
                .await
                .expect("reopen the PostgreSQL store"),
        ))
    }

    /// Another store on the same data, beside this one (another process or node).
    pub async fn open_again(&self) -> Arc<dyn Store> {
        match (&self.dir, &self.schema) {
            (Some(dir), _) => {
                let layout = match self.backend {
                    Backend::SqliteTiered => tiny_tiers(),
                    _ => RecordLayout::default(),
                };
                Arc::new(
                    SqliteStore::open_with(dir.path(), layout).expect("reopen the SQLite store"),
                )
            }
            (None, Some((_, url))) => Arc::new(
                PostgresStore::open_with(url, tiny_pg_tiers(true))
                    .await
                    .expect("reopen the PostgreSQL store"),
            ),
            (None, None) => unreachable!("a store has a directory or a schema"),
        }
    }

    pub async fn close(self) {
        let TestStore { store, schema, .. } = self;
        drop(store);
        if let Some((schema, _)) = schema {
            let client = connect().await;
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        }
    }
}

/// Blocks of 7 records in pages of 3, sealed once more than 10 are hot.
fn tiny_tiers() -> RecordLayout {
    RecordLayout {
        options: Tiers {
            block_rows: 7,
            page_rows: 3,
            hot_records: 10,
            hot_age: std::time::Duration::from_secs(3600),
            zstd_level: 1,
        },
        seal: true,
    }
}

/// The same tiny tiers on PostgreSQL, with each node's sealer running or not.
fn tiny_pg_tiers(seal: bool) -> PgLayout {
    PgLayout {
        options: tiny_tiers().options,
        seal,
    }
}

fn shared_lock() -> File {
    let path = std::env::temp_dir().join("logbook-postgres-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("open the PostgreSQL test lock file");
    file.lock_shared().expect("shared lock");
    file
}

async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is not reachable: {e}", base_url()));
    tokio::spawn(connection);
    client
}

/// A fresh schema and a URL whose connections use only it.
async fn create_schema() -> (String, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let schema = format!(
        "lbs_{now}_{}_{}",
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
    (schema, url)
}

/// Drops schemas of tests that died without cleaning up, long enough ago that they
/// cannot be running.
async fn sweep_stale(client: &tokio_postgres::Client, now: u64) {
    let Ok(rows) = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lbs\\_%'",
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
