//! The sealer: a thread that moves the oldest hot records into a sealed block
//! whenever the hot tier is over its bounds. The block is encoded here, off the
//! writer; the writer then applies it in one short transaction (the block appears,
//! the hot rows it came from go), provided nothing changed those rows meanwhile.

use super::tiered::{self, Tiered};
use super::writer::WriterHandle;
use crate::blocks::tiers;
use crate::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the sealer looks at the hot tier when it has nothing to do.
const IDLE: Duration = Duration::from_millis(100);

pub struct Sealer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sealer {
    pub fn start(tiered: Arc<Tiered>, writer: WriterHandle) -> Sealer {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("logbook-sealer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let apply = |job| writer.write_blocking(job);
                        // New records first; then the rows an upgrade left behind.
                        let work = seal_once(&tiered, &apply).and_then(|sealed| {
                            if sealed {
                                Ok(true)
                            } else {
                                tiered::upgrade_once(&tiered, &apply)
                            }
                        });
                        match work {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "sealing failed; retrying"),
                        }
                        std::thread::park_timeout(IDLE);
                    }
                })
                .ok()
        };
        Sealer { stop, thread }
    }
}

impl Drop for Sealer {
    /// Stops the thread (a seal in progress either commits or never happened).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The writer job that applies a seal.
pub type SealJob =
    Box<dyn Fn(&rusqlite::Connection, &mut super::writer::Batch) -> Result<bool> + Send + 'static>;

/// Seals one block if the hot tier is over its bounds; true if it did.
pub fn seal_once(tiered: &Arc<Tiered>, apply: &dyn Fn(SealJob) -> Result<bool>) -> Result<bool> {
    let catalog = tiered.tiers.snapshot();
    let Some(seal) = tiers::plan_seal(&catalog, &tiered.tiers.options, Instant::now())? else {
        return Ok(false);
    };
    let read_from = tiered::planned_from(&catalog, &seal);
    let seal = Arc::new(seal);
    let job_tiered = Arc::clone(tiered);
    apply(Box::new(move |conn, batch| {
        tiered::apply_seal(&job_tiered, conn, batch, &seal, &read_from)
    }))
}
