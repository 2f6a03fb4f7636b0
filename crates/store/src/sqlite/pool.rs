//! Reader connections. WAL lets readers run beside the single writer; each query
//! takes a connection, runs on the blocking pool, and gives it back.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct ReadPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Semaphore,
}

impl ReadPool {
    pub fn new(path: PathBuf, size: usize) -> ReadPool {
        ReadPool {
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Semaphore::new(size),
        }
    }

    /// As [`ReadPool::read`], but `f` runs on the calling worker thread, the
    /// runtime moving its other tasks to another (`block_in_place`), so a short
    /// read answers without waiting for a blocking thread to wake and hand its
    /// answer back (those two hand-offs were a tenth of a get by id). Off a
    /// multi-threaded runtime, as `read`.
    pub async fn read_here<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread {
            return self.read(f).await;
        }
        let (_permit, mut conn) = self.checkout().await?;
        let result = tokio::task::block_in_place(|| f(&mut conn));
        give_back(&self.idle, conn);
        result
    }

    /// Runs `f` on a reader connection off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (_permit, mut conn) = self.checkout().await?;
        let idle = Arc::clone(&self.idle);
        tokio::task::spawn_blocking(move || {
            let result = f(&mut conn);
            give_back(&idle, conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
    }

    /// Runs `f` off the async runtime on a connection of its own, outside the
    /// pool's permits: for a read that waits on its consumer for as long as the
    /// consumer takes (an export hands pages on to a client at the client's pace),
    /// which would otherwise hold one of the pool's few readers from every other
    /// query until the client finished or went away.
    pub async fn read_unpooled<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || f(&open_reader(&path)?))
            .await
            .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
    }

    /// Readers of the pool not in use now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// One of the pool's readers: its permit, and an idle connection or a new one.
    async fn checkout(&self) -> Result<(SemaphorePermit<'_>, Connection)> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = self.idle.lock().map_err(|_| poisoned())?.pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        Ok((permit, conn))
    }
}

/// Returns a connection to the idle ones, unless it was left inside a transaction.
fn give_back(idle: &Mutex<Vec<Connection>>, conn: Connection) {
    if conn.is_autocommit() {
        if let Ok(mut idle) = idle.lock() {
            idle.push(conn);
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Internal("reader pool lock poisoned".into())
}

pub fn open_reader(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // 4 MB each: eight readers' caches were up to 64 MB of the server's memory,
    // while the operating system's page cache holds the file anyway.
    conn.pragma_update(None, "cache_size", -4_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Room for every statement a request runs, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
