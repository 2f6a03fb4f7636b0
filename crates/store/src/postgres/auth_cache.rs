//! A node-local cache of token, session and account lookups, so that a request
//! authenticated by a token or a session usually costs no query of the tables.
//!
//! Every change that can take a way in away (a revoked token, a disabled account, a
//! changed password or role, an ended session) commits with an `{"k":"auth"}`
//! notification, and every node's listener empties its cache the moment that
//! notification arrives. A cached entry is used only after a **barrier** on the
//! listening connection: an empty query whose answer PostgreSQL sends only after
//! every notification committed before it was asked (a backend delivers pending
//! notifications before `ReadyForQuery`). So a revocation whose commit a client has
//! seen, through any node, is refused on every node's next request. Concurrent
//! requests share one barrier; it costs one tiny round trip on one connection
//! instead of pool checkouts and joins.
//!
//! While the listener is down the cache is not used at all (a TTL of zero: every
//! request reads the tables, as without a cache), and it is emptied whenever the
//! listener (re)connects, since notifications sent meanwhile are lost. Entries also
//! expire after [`MAX_AGE`], a bound on what a silently dead connection could let
//! through. Expiry of tokens and sessions is checked by the caller on every use.

use crate::accounts::{Session, Token, User};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Longest an entry is used, whatever the listener says.
pub const MAX_AGE: Duration = Duration::from_secs(5);
/// Entries per map before the map is emptied (a bound on memory).
const MAX_ENTRIES: usize = 10_000;
/// How long a request waits for a barrier before reading the tables instead.
const BARRIER_WAIT: Duration = Duration::from_secs(1);

type Entries<K, V> = Mutex<HashMap<K, (Instant, V)>>;

#[derive(Default)]
pub struct AuthCache {
    /// Raised by every invalidation: a lookup started before it must not fill.
    generation: AtomicU64,
    tokens: Entries<String, (Token, User)>,
    sessions: Entries<String, Session>,
    users: Entries<i64, User>,
    /// The listening connection, while it listens.
    listener: Mutex<Option<Arc<tokio_postgres::Client>>>,
    /// Barriers started; the next one a request waits for is `sent + 1`.
    sent: AtomicU64,
    /// The last finished barrier and whether it succeeded.
    done: watch::Sender<(u64, bool)>,
    wake: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: a panic elsewhere leaves them consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthCache {
    /// Forgets everything (a change was committed, or notifications may have been
    /// missed).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.tokens).clear();
        lock(&self.sessions).clear();
        lock(&self.users).clear();
    }

    /// The listening connection is up (`Some`) or gone (`None`).
    pub fn set_listener(&self, client: Option<Arc<tokio_postgres::Client>>) {
        *lock(&self.listener) = client;
        self.invalidate();
    }

    /// A token lookup to be filled after reading the tables.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub async fn token(&self, digest: &str) -> Option<(Token, User)> {
        self.fresh(&self.tokens, digest).await
    }

    pub async fn session(&self, digest: &str) -> Option<Session> {
        self.fresh(&self.sessions, digest).await
    }

    pub async fn user(&self, id: i64) -> Option<User> {
        self.fresh(&self.users, &id).await
    }

    pub fn fill_token(&self, generation: u64, digest: &str, found: &(Token, User)) {
        self.fill(&self.tokens, generation, digest.to_string(), found.clone());
    }

    pub fn fill_session(&self, generation: u64, digest: &str, found: &Session) {
        self.fill(
            &self.sessions,
            generation,
            digest.to_string(),
            found.clone(),
        );
    }

    pub fn fill_user(&self, generation: u64, found: &User) {
        self.fill(&self.users, generation, found.id, found.clone());
    }

    async fn fresh<K, V, Q>(&self, entries: &Entries<K, V>, key: &Q) -> Option<V>
    where
        K: Eq + Hash + std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
        V: Clone,
    {
        let cached = |entries: &Entries<K, V>| {
            lock(entries)
                .get(key)
                .filter(|(at, _)| at.elapsed() < MAX_AGE)
                .map(|(_, v)| v.clone())
        };
        cached(entries)?;
        if !self.barrier().await {
            return None;
        }
        // Whatever was invalidated before the barrier is gone now.
        cached(entries)
    }

    fn fill<K: Eq + Hash, V>(&self, entries: &Entries<K, V>, generation: u64, key: K, value: V) {
        if lock(&self.listener).is_none() {
            return;
        }
        let mut entries = lock(entries);
        // Checked under the map's lock: an invalidation raises the generation
        // before it takes this lock to clear, so a stale fill cannot survive it.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Waits until the listener has received every notification committed before
    /// this call; false if it cannot tell (no listener, a failed query, too slow).
    async fn barrier(&self) -> bool {
        let ticket = self.sent.load(Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        self.wake.notify_one();
        let finished = tokio::time::timeout(BARRIER_WAIT, async {
            done.wait_for(|(n, _)| *n >= ticket)
                .await
                .map(|state| state.1)
        });
        matches!(finished.await, Ok(Ok(true)))
    }

    /// Runs barriers for waiting requests, one at a time, until the store is dropped.
    pub async fn run_barriers(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
            let client = lock(&self.listener).clone();
            let ok = match client {
                // Notifications arrive on this connection ahead of the answer, and
                // the listener's driver invalidates as it reads them.
                Some(client) => client.simple_query("").await.is_ok(),
                None => false,
            };
            self.done.send_replace((n, ok));
        }
    }
}
