//! The test harness: a real Logbook node on an ephemeral port, spoken to over HTTP
//! exactly as a client would. Each test gets its own store (a temporary data
//! directory, or its own PostgreSQL schema), so tests run in parallel safely.

pub mod fuse;
pub mod npm;
pub mod postgres;
pub mod process;
pub mod python;

use logbook_core::Role;
use logbook_server::auth::{ensure_admin, secrets, Bootstrap};
use logbook_server::{router, AppState, Config};
use logbook_store::postgres::PostgresStore;
use logbook_store::sqlite::SqliteStore;
use logbook_store::{NewUser, Store};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A stable digest (FNV-1a) of what a marker file stands for: pins, a lock file.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Which store a behavioural test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` once per store, as separate
/// tests named `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
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

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    /// The admin's API token.
    pub token: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    /// The node's state, for tests that wait on an observable signal (a waiter
    /// registered, a subscription open) instead of sleeping.
    pub state: AppState,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
    database: Option<postgres::TestDatabase>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, Config::default()).await
    }

    pub async fn start_with(backend: Backend, config: Config) -> TestServer {
        let (store, dir, database): (Arc<dyn Store>, _, _) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let store = SqliteStore::open(dir.path()).expect("open store");
                (Arc::new(store), Some(dir), None)
            }
            Backend::Postgres => {
                let database = postgres::TestDatabase::create().await;
                let store = PostgresStore::open(&database.url)
                    .await
                    .expect("open store");
                (Arc::new(store), None, Some(database))
            }
        };
        let token = secrets::new_token();
        let bootstrap = Bootstrap {
            admin_password: Some(ADMIN_PASSWORD.into()),
            admin_token: Some(token.clone()),
        };
        ensure_admin(store.as_ref(), &bootstrap)
            .await
            .expect("bootstrap admin");
        let mut server = TestServer::serve(store, config, token, dir).await;
        server.database = database;
        server
    }

    /// A server on a store the test opened itself (small blocks, sealed when the
    /// test says), living in `dir` or `database`, kept for the server's life.
    pub async fn start_on(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        database: Option<postgres::TestDatabase>,
    ) -> TestServer {
        let token = secrets::new_token();
        let bootstrap = Bootstrap {
            admin_password: Some(ADMIN_PASSWORD.into()),
            admin_token: Some(token.clone()),
        };
        ensure_admin(store.as_ref(), &bootstrap)
            .await
            .expect("bootstrap admin");
        let mut server = TestServer::serve(store, Config::default(), token, dir).await;
        server.database = database;
        server
    }

    async fn serve(
        store: Arc<dyn Store>,
        config: Config,
        token: String,
        dir: Option<tempfile::TempDir>,
    ) -> TestServer {
        let (stop, stopped) = watch::channel(false);
        let state = AppState::new(Arc::clone(&store), config, stopped);
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut stop_rx = stop.subscribe();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
        });
        TestServer {
            addr,
            base: format!("http://{addr}"),
            token,
            http: reqwest::Client::new(),
            store,
            state,
            stop,
            task,
            _dir: dir,
            database: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The embedded store's data directory (SQLite only).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    /// The URL of the store's own schema (PostgreSQL only).
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.url.as_str())
    }

    /// A request authenticated as the admin.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Ingests records through the native API and returns their ids.
    pub async fn ingest(&self, records: Value) -> Vec<i64> {
        let response = self.post_json("/logbook/v1/records", &records).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "ingest failed: {body}");
        let (first, last) = (
            body["first_id"].as_i64().expect("first"),
            body["last_id"].as_i64().expect("last"),
        );
        (first..=last).collect()
    }

    /// Creates an account directly in the store and returns an API token for it.
    pub async fn user_with_token(&self, name: &str, role: Role, domain: &str) -> String {
        let user = self
            .store
            .create_user(NewUser {
                name: name.into(),
                password_hash: Some(
                    secrets::hash_password(&format!("{name}-password")).expect("hash"),
                ),
                role,
                domain: domain.into(),
                any_domain: false,
            })
            .await
            .expect("create user");
        let token = secrets::new_token();
        self.store
            .create_token(user.id, Some("test".into()), secrets::digest(&token), None)
            .await
            .expect("create token");
        token
    }

    /// Resolves once at least `n` object waiters are subscribed on this node.
    pub async fn object_waiters(&self, n: usize) {
        let mut waiters = self.state.object_watch.waiters();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            waiters.wait_for(|w| *w >= n),
        )
        .await
        .expect("waiters subscribe within 30 s")
        .expect("the node is running");
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(database) = self.database {
            drop(self.store);
            drop(self.state);
            database.drop().await;
        }
    }
}

/// The path of the `logbook` binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_logbook")
}
