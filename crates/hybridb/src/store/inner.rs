//! What every handle to an open database holds ([`DbInner`]): the shared state, the writer's
//! queue and thread, and the checkpointer; opening the file builds it, dropping the last handle
//! stops the writer after it drained the queue and makes pending writes durable.
//!
//! Invariant: the queue is bounded; a caller waits for room (or gets `Busy` after
//! [`crate::Options::busy_timeout`]) and then for its reply, so a write returns only after its
//! commit and index apply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::index::checkpoint;
use crate::model::error::{Error, Result};
use crate::model::sync::block_on;
use crate::observe::cache::Caches;
use crate::store::checkpointer::Checkpointer;
use crate::store::load::init_format;
use crate::store::load::load_collections;
use crate::store::load::start_linkers;
use crate::store::options::Options;
use crate::store::shared::Progress;
use crate::store::shared::Shared;
use crate::store::shared::WriterCounters;
use crate::store::storage::Storage;
use crate::store::writer::Command;

/// The handle-level part: the writer's queue and thread. Dropping the last one stops the
/// writer after it drained the queue, then makes pending writes durable.
pub(crate) struct DbInner {
    pub(crate) shared: Arc<Shared>,
    sender: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<Checkpointer>,
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        // Wake and end feed subscriptions (they may hold the shared state beyond this handle).
        self.shared.feed_closed.store(true, Ordering::Release);
        self.shared.feed.send_modify(|_| {});
        self.sender.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Best effort: errors here have no caller; `Database::close` reports them.
        if self.shared.sync().is_ok() && self.shared.options.checkpoint_on_close {
            // Everything is durable now: checkpoint what changed so reopening is quick.
            let _ = self.shared.checkpoint(1);
        }
    }
}

fn writer_gone() -> Error {
    Error::WriterUnavailable {
        reason: "the writer thread has stopped (database closing)".into(),
    }
}

fn writer_dropped_reply() -> Error {
    Error::WriterUnavailable {
        reason: "the writer failed while handling this request (a panic) and reloaded the \
                 database from disk; the write may or may not have committed: read it back"
            .into(),
    }
}

impl DbInner {
    /// Opens the file: loads the collections (from their checkpoints, replaying the change log
    /// after them), then starts the writer thread and the checkpointer.
    pub(crate) fn open(storage: Storage, mut options: Options) -> Result<DbInner> {
        options.resolve_originals(match &storage {
            Storage::File(path) => Some(path),
            Storage::Backend { .. } => None,
        });
        let redb = storage.open(options.cache_size)?;
        init_format(&redb)?;
        let ckpt_dir = checkpoint::dir_for(storage.path());
        let (collections, last_seq) = load_collections(&redb, &options, &ckpt_dir)?;
        start_linkers(&collections);
        let coord = crate::store::catalogue::CoordState::load(&redb)?;
        let progress = Progress::default();
        progress.reset(last_seq);
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let options_caches = options.caches;
        let shared = Arc::new(Shared {
            redb: RwLock::new(Some(Arc::new(redb))),
            storage,
            options,
            collections: RwLock::new(collections),
            unsynced: AtomicBool::new(false),
            progress,
            counters: WriterCounters::default(),
            feed: watch::Sender::new(last_seq),
            feed_closed: AtomicBool::new(false),
            coord,
            caches: Caches::new(options_caches),
            metrics: crate::observe::OpMetrics::new(""),
            checkpoint_lock: Mutex::new(()),
        });
        let thread = crate::store::writer::spawn(Arc::clone(&shared), rx)?;
        let checkpointer = Checkpointer::start(Arc::clone(&shared))?;
        Ok(DbInner {
            shared,
            sender: Some(tx),
            thread: Some(thread),
            checkpointer,
        })
    }
}

impl DbInner {
    fn sender(&self) -> Result<&mpsc::Sender<Command>> {
        self.sender.as_ref().ok_or_else(writer_gone)
    }

    /// Sends a command and waits for its reply. Waits up to `busy_timeout` for queue room.
    pub(crate) fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let mut cmd = make(tx);
        let sender = self.sender()?;
        let started = Instant::now();
        let mut backoff = Duration::from_micros(20);
        loop {
            match sender.try_send(cmd) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(writer_gone()),
                Err(mpsc::error::TrySendError::Full(c)) => {
                    let waited = started.elapsed();
                    if waited >= self.shared.options.busy_timeout {
                        return Err(Error::Busy {
                            waited_ms: waited.as_millis() as u64,
                        });
                    }
                    cmd = c;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(2));
                }
            }
        }
        block_on(rx).unwrap_or_else(|_| Err(writer_dropped_reply()))
    }

    /// Sends a command and awaits its reply; waits for queue room without limit.
    pub(crate) async fn call_async<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.sender()?
            .send(make(tx))
            .await
            .map_err(|_| writer_gone())?;
        rx.await.unwrap_or_else(|_| Err(writer_dropped_reply()))
    }
}
