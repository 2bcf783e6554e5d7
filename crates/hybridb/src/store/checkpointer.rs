//! The background thread that checkpoints HNSW indexes (see [`crate::Options::checkpoint_every_ops`]).
//!
//! Invariant: it only reads (one snapshot per collection) and writes checkpoint files;
//! checkpoints run one at a time (`Shared::checkpoint` holds a lock), so it cannot race an
//! explicit [`crate::Database::checkpoint`].

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::model::sync::lock;
use crate::store::shared::Shared;

/// The background thread that checkpoints HNSW indexes (see [`Options::checkpoint_every_ops`]).
pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    pub(crate) fn start(shared: Arc<Shared>) -> std::io::Result<Option<Checkpointer>> {
        let (ops, interval) = (
            shared.options.checkpoint_every_ops,
            shared.options.checkpoint_interval,
        );
        if ops == 0 && interval.is_zero() {
            return Ok(None);
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hybridb-checkpointer".into())
            .spawn(move || {
                let mut last = Instant::now();
                loop {
                    let (flag, cv) = &*stop2;
                    let guard = lock(flag);
                    let (guard, _) = cv
                        .wait_timeout(guard, Duration::from_millis(500))
                        .unwrap_or_else(|e| e.into_inner());
                    if *guard {
                        return;
                    }
                    drop(guard);
                    // Errors are retried at the next tick; the index stays correct without.
                    if ops > 0
                        && let Err(e) = shared.checkpoint(ops)
                    {
                        crate::observe::background_error("checkpoint", &e);
                    }
                    if !interval.is_zero() && last.elapsed() >= interval {
                        if let Err(e) = shared.checkpoint(1) {
                            crate::observe::background_error("checkpoint", &e);
                        }
                        last = Instant::now();
                    }
                }
            })?;
        Ok(Some(Checkpointer { stop, thread }))
    }

    pub(crate) fn stop(self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}
