//! The PostgreSQL store: several Logbook nodes share one database and behave as one
//! service. Nodes append in parallel (each batching what is queued into one
//! transaction); ids are reserved ahead in short, separately committed statements,
//! and readers stop at a visibility horizon below every append still in flight, so
//! cursors never skip a record (see `writer`). LISTEN/NOTIFY carries hints between
//! nodes; the store is always the truth. See docs/postgres.md for the design, the
//! horizon argument and the trade-offs.

mod accounts;
mod actions;
mod auth_cache;
pub mod baseline;
mod blocks;
mod idempotency;
mod integrity;
mod listen;
mod objects;
mod records;
mod schema;
mod writer;

use crate::{Notifier, Result, Store, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use listen::Publisher;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;
use writer::Writer;

pub use crate::blocks::tiers::{TierOptions, TierStatus};
pub use schema::latest_version as latest_schema_version;
pub use schema::migrate_up_to;

/// Pooled connections per node (readers and writers share them), per core of the
/// machine: enough that a request rarely queues while PostgreSQL works, few enough
/// that a node does not swamp a database that other nodes share.
const POOL_PER_CORE: usize = 8;
/// Side connections per node, for id reservations and partitions (see `writer`):
/// a separate pool, so an append holding a pooled connection never waits for a
/// second one from the same pool.
const SIDE_POOL_SIZE: usize = 4;
/// Writer tasks per node, i.e. appending transactions one node has in flight. One,
/// as in the embedded store: whatever arrives while it commits goes into the next
/// transaction, so under load the batches are as large as they can be. Measured
/// against 2 and 4 (docs/postgres.md, "Round trips"): fewer, larger transactions
/// cost PostgreSQL less per record, and with several nodes fewer appends are in
/// flight for an acknowledgement to wait behind.
const WRITER_TASKS: usize = 1;
/// How long a request queues for a free pooled connection when all are busy: a busy
/// pool is back-pressure, not a fault, so this is longer than the connect timeout.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long a request waits for a connection or a new connection: short, so that a
/// request fails fast with 503 while the database is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First part of every advisory lock key Logbook takes ("LB").
const LOCK_CLASS: i32 = 0x4C42;
/// First part of the lock held while attaching partitions ("LP").
const PARTITION_LOCK_CLASS: i32 = 0x4C50;
/// First part of the lock every append holds on its transaction id ("LA").
const APPEND_LOCK_CLASS: i32 = 0x4C41;
/// How long the publisher waits at a time for an append that holds the horizon
/// back to end: an append that hangs open (a frozen node) then costs a horizon
/// read every 100-200 ms, as the rechecks did before.
const APPEND_WAIT_TIMEOUT: &str = "lock_timeout=100ms";

pub struct PostgresStore {
    pool: Pool,
    /// The schema the tables live in (the first of the connection's search_path).
    schema: String,
    /// The NOTIFY channel of this schema, so stores in other schemas stay apart.
    channel: String,
    /// This node's identity in notifications, to skip hints about its own changes.
    node: String,
    writer: Writer,
    /// Whether appends go through (a full tablespace stops them).
    write_state: Arc<crate::write_state::WriteStateTracker>,
    /// What appends outside the writer (riding along with another change) need.
    target: writer::Target,
    publisher: Arc<Publisher>,
    notifier: Arc<Notifier>,
    listener: tokio::task::JoinHandle<()>,
    follower: tokio::task::JoinHandle<()>,
    /// Token, session and account lookups, valid while the listener listens.
    auth: Arc<auth_cache::AuthCache>,
    barriers: tokio::task::JoinHandle<()>,
    /// The sealed tier (docs/postgres.md).
    tiers: Arc<blocks::PgTiers>,
    sealer: Option<tokio::task::JoinHandle<()>>,
}

/// How a node sizes the tiers, and whether it runs a sealer (one node at a time
/// seals, whichever holds the lock; every node may run one).
#[derive(Debug, Clone)]
pub struct PgLayout {
    pub options: TierOptions,
    pub seal: bool,
}

impl Default for PgLayout {
    fn default() -> Self {
        PgLayout {
            options: TierOptions::default(),
            seal: true,
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or key=value string), applies the
    /// migrations the database lacks and starts listening for other nodes' changes.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        PostgresStore::open_with(url, PgLayout::default()).await
    }

    /// As [`PostgresStore::open`], with the tiers sized by `layout`.
    pub async fn open_with(url: &str, layout: PgLayout) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Invalid {
            field: "database".into(),
            problem: format!("not a PostgreSQL connection string: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("logbook");
        }
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let pool = build_pool(config.clone(), POOL_PER_CORE * cores)?;
        let side = build_pool(
            with_option(&config, "synchronous_commit=off"),
            SIDE_POOL_SIZE,
        )?;
        let waits = build_pool(with_option(&config, APPEND_WAIT_TIMEOUT), 1)?;
        let mut client = pool.get().await?;
        let schema: Option<String> = client
            .query_one("SELECT current_schema()", &[])
            .await?
            .get(0);
        let schema = schema.ok_or_else(|| {
            StoreError::Unavailable(
                "no schema of the connection's search_path exists; create it first".into(),
            )
        })?;
        schema::migrate(&mut client, &schema).await?;
        let channel = format!("logbook.{schema}");
        let node = uuid::Uuid::new_v4().to_string();
        let (committed, hinted) = tokio::sync::watch::channel(0);
        // Ends when the last `Target` (and so the last sender) goes.
        tokio::spawn(writer::send_hints(
            side.clone(),
            channel.clone(),
            node.clone(),
            hinted,
        ));
        let target = writer::Target {
            side: side.clone(),
            lock_key: lock_key(&schema),
            covered: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            reserved: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            partition_ids: writer::partition_ids(&layout.options),
            batches: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            committed: Arc::new(committed),
        };
        let reserved: i64 = client
            .query_one("SELECT last FROM id_counter", &[])
            .await?
            .get(0);
        target
            .reserved
            .fetch_max(reserved, std::sync::atomic::Ordering::AcqRel);
        writer::ensure_covered(&target, reserved).await?;
        writer::sweep(&side).await?;
        integrity::backfill(&mut client, lock_key(&schema)).await?;
        let horizon: i64 = client.query_one(writer::HORIZON, &[]).await?.get(0);
        drop(client);
        let notifier = Arc::new(Notifier::new(horizon));
        let tiers = blocks::PgTiers::new(pool.clone(), layout.options, lock_key(&schema));
        let publisher = Arc::new(Publisher::new(
            pool.clone(),
            waits,
            Arc::clone(&tiers),
            Arc::clone(&notifier),
        ));
        publisher.reached(reserved);
        let follower = tokio::spawn(Arc::clone(&publisher).run());
        let write_state = Arc::new(crate::write_state::WriteStateTracker::new());
        let writer = Writer::start(
            pool.clone(),
            target.clone(),
            Arc::clone(&publisher),
            Arc::clone(&write_state),
            WRITER_TASKS,
        );
        let auth = Arc::new(auth_cache::AuthCache::default());
        let barriers = tokio::spawn(Arc::clone(&auth).run_barriers());
        let listener = tokio::spawn(listen::run(
            config,
            channel.clone(),
            node.clone(),
            Arc::clone(&publisher),
            pool.clone(),
            Arc::clone(&auth),
        ));
        // After the backfill above: rows are sealed only once they have leaves.
        let sealer = layout
            .seal
            .then(|| tokio::spawn(Arc::clone(&tiers).run_sealer()));
        Ok(PostgresStore {
            pool,
            schema,
            channel,
            node,
            writer,
            write_state,
            target,
            publisher,
            notifier,
            listener,
            follower,
            auth,
            barriers,
            tiers,
            sealer,
        })
    }

    /// Seals what the hot tier's bounds call for, now (waiting for another node's
    /// seal to finish); returns the blocks made.
    pub async fn seal_pending(&self) -> Result<u64> {
        let mut sealed = 0;
        while self.tiers.seal_once(true).await? {
            sealed += 1;
        }
        Ok(sealed)
    }

    /// Vacuums the partitions of the rows this node sealed since it last did (the
    /// background sealer does so itself); returns the partitions vacuumed.
    pub async fn reclaim_sealed(&self) -> Result<u64> {
        self.tiers.reclaim().await
    }

    /// Drops the partitions sealing has emptied for good (the background sealer
    /// does so itself); returns how many went.
    pub async fn drop_sealed_partitions(&self) -> Result<u64> {
        self.tiers.drop_emptied_partitions().await
    }

    /// Partitions this node's sealer has vacuumed after sealing.
    pub fn vacuums(&self) -> u64 {
        self.tiers
            .vacuums
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the tiers hold now.
    pub async fn tier_status(&self) -> Result<TierStatus> {
        self.tiers.status().await
    }

    /// Records this node has sealed and the time its seals took in all.
    pub fn sealer_work(&self) -> (u64, Duration) {
        use std::sync::atomic::Ordering;
        (
            self.tiers.sealed_records.load(Ordering::Relaxed),
            Duration::from_micros(self.tiers.sealing_micros.load(Ordering::Relaxed)),
        )
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Announces a change to the other nodes, inside the transaction that makes it
    /// (PostgreSQL delivers the notification only if and when it commits).
    async fn notify(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        mut hint: serde_json::Value,
    ) -> Result<()> {
        hint["n"] = serde_json::Value::String(self.node.clone());
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&self.channel, &hint.to_string()],
        )
        .await?;
        Ok(())
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.follower.abort();
        self.barriers.abort();
        if let Some(sealer) = &self.sealer {
            // A seal in progress rolls back with its transaction.
            sealer.abort();
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Follows the record appends (ingest and the journal), which are most of what
    /// a node writes; other writes failing for lack of space still answer 507.
    fn write_state(&self) -> tokio::sync::watch::Receiver<crate::WriteState> {
        self.write_state.subscribe()
    }

    async fn tier_figures(&self) -> Result<Option<crate::TierFigures>> {
        Ok(Some(crate::TierFigures {
            status: self.tier_status().await?,
            hot_bound: self.tiers.options.hot_records as u64,
        }))
    }

    async fn create_action_recorded(
        &self,
        new: logbook_core::NewAction,
        event: crate::ActionEvent,
    ) -> Result<logbook_core::Action> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let action = actions::insert(&tx, new).await?;
        self.notify(&tx, serde_json::json!({"k": "a", "u": action.uuid}))
            .await?;
        let stored = writer::append_in(&tx, &self.target, vec![event(&action)]).await?;
        tx.commit().await?;
        writer::hint_committed(&self.target, &stored);
        // Give the connection back first: announcing may need one to catch up.
        drop(client);
        self.notifier.publish_action(Arc::new(action.clone()));
        self.publisher.announce(stored).await;
        Ok(action)
    }

    async fn transition_action_recorded(
        &self,
        uuid: &str,
        to: logbook_core::ActionState,
        end_date: Option<logbook_core::Timestamp>,
        event: crate::ActionEvent,
    ) -> Result<logbook_core::Action> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The transition locked the action's row first, so transitions of one
        // action get their events' ids in the order they commit.
        let action = actions::transition(&tx, uuid, to, end_date).await?;
        self.notify(&tx, serde_json::json!({"k": "a", "u": uuid}))
            .await?;
        let stored = writer::append_in(&tx, &self.target, vec![event(&action)]).await?;
        tx.commit().await?;
        writer::hint_committed(&self.target, &stored);
        // Give the connection back first: announcing may need one to catch up.
        drop(client);
        self.notifier.publish_action(Arc::new(action.clone()));
        self.publisher.announce(stored).await;
        Ok(action)
    }
}

/// `config` with the run-time parameter `setting` (`name=value`) added.
fn with_option(config: &tokio_postgres::Config, setting: &str) -> tokio_postgres::Config {
    let mut config = config.clone();
    let options = match config.get_options() {
        Some(existing) => format!("{existing} -c {setting}"),
        None => format!("-c {setting}"),
    };
    config.options(&options);
    config
}

/// A pool of `size` connections configured by `config`.
fn build_pool(config: tokio_postgres::Config, size: usize) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the pool: {e}")))
}

/// The second part of the schema's lock keys: one lock per schema.
fn lock_key(schema: &str) -> i32 {
    // FNV-1a, folded to 32 bits; collisions only make two schemas share a lock.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in schema.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// A bound parameter of a dynamically built statement.
type Param = Box<dyn ToSql + Sync + Send>;

/// One page of `table`'s rows matching `filter`, in `order`, and how many match in
/// all, read in one repeatable-read snapshot so that the two agree (action and object
/// listings).
pub(crate) async fn counted_page<T>(
    pool: &deadpool_postgres::Pool,
    table: &str,
    columns: &str,
    (filter, params): (&str, &[logbook_core::query::Scalar]),
    order: &str,
    (limit, offset): (Option<u64>, u64),
    read: impl Fn(&tokio_postgres::Row) -> Result<T>,
) -> Result<(Vec<T>, u64)> {
    let params = params_of(params);
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let total: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE {filter}"),
            &refs(&params),
        )
        .await?
        .get(0);
    let limit = limit.map(|l| l.to_string()).unwrap_or_else(|| "ALL".into());
    let rows = tx
        .query(
            &format!(
                "SELECT {columns} FROM {table} WHERE {filter} \
                 ORDER BY {order} LIMIT {limit} OFFSET {offset}"
            ),
            &refs(&params),
        )
        .await?;
    tx.commit().await?;
    let found = rows.iter().map(read).collect::<Result<Vec<_>>>()?;
    Ok((found, total.max(0) as u64))
}

fn params_of(values: &[logbook_core::query::Scalar]) -> Vec<Param> {
    use logbook_core::query::Scalar;
    values
        .iter()
        .map(|v| -> Param {
            match v {
                Scalar::Int(n) => Box::new(*n),
                Scalar::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let message = db.message().to_string();
            if code == "53100" {
                return StoreError::DiskFull(message);
            }
            return match code.get(..2).unwrap_or("") {
                // Connection exceptions, insufficient resources, operator
                // intervention (shutdown, restart), system errors.
                "08" | "53" | "57" | "58" => StoreError::Unavailable(message),
                // Serialisation failures and deadlocks: retrying works.
                "40" => StoreError::Busy,
                "23" if code == "23505" => StoreError::Exists { what: message },
                // Data the database cannot store (e.g. a NUL character in text).
                "22" => StoreError::Invalid {
                    field: "record".into(),
                    problem: message,
                },
                _ => StoreError::Internal(format!("{code}: {message}")),
            };
        }
        let text = match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        };
        if text.starts_with("error serializing") || text.starts_with("error deserializing") {
            StoreError::Internal(text)
        } else {
            // Closed connections, I/O errors, timeouts: the database is away.
            StoreError::Unavailable(text)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Closed => StoreError::Closed,
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
