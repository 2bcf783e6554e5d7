//! The database handle: opening the file, the collection catalogue, the change log, and the
//! state shared with the writer thread.
//!
//! Invariants:
//! - one [`Shared`] per open file, owned jointly by the handles and the writer thread; the
//!   writer thread ([`crate::writer`]) is the only code that begins redb write transactions;
//! - the catalogue (`collections`) holds exactly the collections committed in the file;
//! - `progress.committed` is the highest committed sequence number, `progress.applied` the
//!   highest one whose effects are in the in-memory indexes; `applied <= committed`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cache::{CacheSizes, Caches};
use crate::change::{ChangeEvent, ChangeKind};
use crate::collection::{Collection, CollectionShared};
use crate::config::{CollectionConfig, IndexKind, StoredCollection, validate_collection_name};
use crate::entity::{decode_record, decode_vector, index_form};
use crate::error::{Error, Result, corrupted};
use crate::id::EntityId;
use crate::index::checkpoint;
use crate::index::hnsw_index::HnswIndex;
use crate::index::slots::SlotTable;
use crate::index::state::{Apply, IndexState};
use crate::schema::{
    CHANGES, COLLECTIONS, CollectionTables, FORMAT_VERSION, META, META_FORMAT_VERSION,
    META_LAST_CID, META_LAST_SEQ,
};
use crate::storage::{BackendFactory, Storage};
use crate::sync::{block_on, lock, now_ms, read, write};
use crate::writer::{self, Command};

/// When a committed write becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The write is on disk when the call returns. The default.
    #[default]
    Immediate,
    /// The write is visible at once but reaches the disk with the next `Immediate` commit, with
    /// [`Database::sync`], or when the last handle is dropped: a crash before then loses it.
    None,
}

/// Settings of an open database. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct Options {
    /// redb page cache, in bytes. Default 256 MiB.
    pub cache_size: usize,
    /// Default durability of writes (a handle may override it per write, see
    /// [`Collection::with_durability`]). Default [`Durability::Immediate`].
    pub durability: Durability,
    /// Largest accepted payload, as encoded JSON bytes. Default 1 MiB.
    pub max_payload_bytes: usize,
    /// Largest accepted `k` for search and `limit` for scroll. Default 10,000.
    pub max_k: usize,
    /// Capacity of the writer's command queue (commands, not entities). Default 1,024.
    pub queue_capacity: usize,
    /// A write group stops taking queued commands once it holds this many items. Default 16,384.
    pub max_group_ops: usize,
    /// ... or this many bytes of vectors and payload estimates. Default 64 MiB.
    pub max_group_bytes: usize,
    /// When recent group commits held several commands (concurrent callers), the writer
    /// waits for a group to fill to the largest recent size before committing, for at most
    /// half as long as the last group took, never longer than this, and no longer once
    /// nothing has arrived for a quarter of that; a lone caller never waits. Zero disables
    /// it. Default 1 ms.
    pub group_linger: Duration,
    /// How long a sync-API caller waits for room in a full queue before getting
    /// [`Error::Busy`]. Async callers wait without limit. Default 5 s.
    pub busy_timeout: Duration,
    /// Threads that insert a write group's vectors into an HNSW index (and rebuild indexes on
    /// open). Default: the number of CPUs.
    pub index_threads: usize,
    /// An HNSW index is checkpointed once this many items were applied to it since its last
    /// checkpoint (0: never by count). Default 50,000.
    pub checkpoint_every_ops: u64,
    /// ... or when it changed at all and this much time passed since its last checkpoint
    /// (zero: never by time). Default 5 minutes. Every changed index is also checkpointed when
    /// the database closes.
    pub checkpoint_interval: Duration,
    /// Called while an index is rebuilt from the tables on open (no usable checkpoint).
    pub rebuild_progress: Option<ProgressCallback>,
    /// Retention keeps at least this many of the most recent change events, whatever the
    /// cursors say. Default 100,000.
    pub retain_changes: u64,
    /// redb quick-repair: every commit also saves the allocator state (and uses two-phase
    /// commit), so that reopening after a crash is almost instant instead of a walk over the
    /// whole file. Commits are somewhat slower. Default true.
    pub quick_repair: bool,
    /// Checkpoint every changed HNSW index when the database closes. Default true.
    pub checkpoint_on_close: bool,
    /// Byte bounds of the read caches (decoded records, vectors, search results); see
    /// [`CacheSizes`] for the defaults. [`CacheSizes::OFF`] switches them all off.
    pub caches: CacheSizes,
    /// Failpoints for fault-injection tests (feature `failpoints`). Default none.
    #[cfg(feature = "failpoints")]
    pub failpoints: Option<Arc<crate::failpoint::Failpoints>>,
}

/// Progress of an index rebuild on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The collection.
    pub collection: String,
    /// Entities indexed so far.
    pub done: u64,
    /// Entities in all.
    pub total: u64,
    /// Why the index is rebuilt (no checkpoint, a damaged one, ...).
    pub reason: String,
}

/// A callback for [`RebuildProgress`] reports.
#[derive(Clone)]
pub struct ProgressCallback(pub Arc<dyn Fn(RebuildProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressCallback")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_size: 256 << 20,
            durability: Durability::Immediate,
            max_payload_bytes: 1 << 20,
            max_k: 10_000,
            queue_capacity: 1024,
            max_group_ops: 16_384,
            max_group_bytes: 64 << 20,
            busy_timeout: Duration::from_secs(5),
            group_linger: Duration::from_millis(1),
            index_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            checkpoint_every_ops: 50_000,
            checkpoint_interval: Duration::from_secs(300),
            rebuild_progress: None,
            retain_changes: 100_000,
            quick_repair: true,
            checkpoint_on_close: true,
            caches: CacheSizes::default(),
            #[cfg(feature = "failpoints")]
            failpoints: None,
        }
    }
}

/// Opens or creates a database.
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use hybridb::{Database, Durability};
/// let db = Database::builder()
///     .cache_size(64 << 20)
///     .durability(Durability::Immediate)
///     .open(dir.path().join("app.redb"))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct DatabaseBuilder {
    options: Options,
}

impl DatabaseBuilder {
    /// Sets the redb page cache size in bytes.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.options.cache_size = bytes;
        self
    }

    /// Sets the default durability of writes.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    /// Sets the largest accepted payload in encoded JSON bytes.
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.options.max_payload_bytes = bytes;
        self
    }

    /// Sets the largest accepted search `k` and scroll `limit`.
    pub fn max_k(mut self, k: usize) -> Self {
        self.options.max_k = k;
        self
    }

    /// Sets the writer queue's capacity (at least 1).
    pub fn queue_capacity(mut self, commands: usize) -> Self {
        self.options.queue_capacity = commands.max(1);
        self
    }

    /// Sets the most items one group commit takes (at least 1).
    pub fn max_group_ops(mut self, ops: usize) -> Self {
        self.options.max_group_ops = ops.max(1);
        self
    }

    /// Sets the most bytes one group commit takes.
    pub fn max_group_bytes(mut self, bytes: usize) -> Self {
        self.options.max_group_bytes = bytes;
        self
    }

    /// Sets how long the writer lingers to fill a group when callers are concurrent.
    pub fn group_linger(mut self, linger: Duration) -> Self {
        self.options.group_linger = linger;
        self
    }

    /// Sets how long sync callers wait for room in a full queue before [`Error::Busy`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.busy_timeout = timeout;
        self
    }

    /// Sets the threads used for HNSW inserts and index rebuilds (at least 1).
    pub fn index_threads(mut self, threads: usize) -> Self {
        self.options.index_threads = threads.max(1);
        self
    }

    /// Sets when HNSW indexes are checkpointed: after `ops` applied items (0: never by count)
    /// or after `interval` if changed (zero: never by time).
    pub fn checkpoint_every(mut self, ops: u64, interval: Duration) -> Self {
        self.options.checkpoint_every_ops = ops;
        self.options.checkpoint_interval = interval;
        self
    }

    /// Sets a callback for progress reports while indexes are rebuilt on open.
    pub fn on_rebuild_progress(
        mut self,
        f: impl Fn(RebuildProgress) + Send + Sync + 'static,
    ) -> Self {
        self.options.rebuild_progress = Some(ProgressCallback(Arc::new(f)));
        self
    }

    /// Sets how many recent change events retention always keeps.
    pub fn retain_changes(mut self, events: u64) -> Self {
        self.options.retain_changes = events;
        self
    }

    /// Sets redb quick-repair (see [`Options::quick_repair`]).
    pub fn quick_repair(mut self, enabled: bool) -> Self {
        self.options.quick_repair = enabled;
        self
    }

    /// Sets the byte bounds of the read caches ([`Options::caches`]).
    pub fn caches(mut self, sizes: CacheSizes) -> Self {
        self.options.caches = sizes;
        self
    }

    /// Sets whether closing checkpoints changed HNSW indexes.
    pub fn checkpoint_on_close(mut self, enabled: bool) -> Self {
        self.options.checkpoint_on_close = enabled;
        self
    }

    /// Uses `failpoints` (feature `failpoints`): see [`crate::failpoint`].
    #[cfg(feature = "failpoints")]
    pub fn failpoints(mut self, failpoints: Arc<crate::failpoint::Failpoints>) -> Self {
        self.options.failpoints = Some(failpoints);
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Opens the database at `path`, creating the file if it does not exist.
    ///
    /// Fails with [`Error::AlreadyOpen`] at once (no waiting) if another process or handle has
    /// the file open, and with [`Error::IncompatibleFormat`] for files of another format version.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        Database::open_storage(Storage::File(path.as_ref().to_path_buf()), self.options)
    }

    /// Opens a database on custom redb storage: `factory` is called on open and again each time
    /// the writer reopens after a failed commit. `label` names it in errors and [`Database::path`].
    /// Meant for fault injection and special storage; files should use [`DatabaseBuilder::open`].
    pub fn open_with_backend(
        self,
        label: impl AsRef<Path>,
        factory: BackendFactory,
    ) -> Result<Database> {
        Database::open_storage(
            Storage::Backend {
                label: label.as_ref().to_path_buf(),
                factory,
            },
            self.options,
        )
    }
}

/// Sequence numbers committed and applied, with a condition variable to wait on.
#[derive(Default)]
pub(crate) struct Progress {
    committed: AtomicU64,
    /// Highest sequence number known to be on disk.
    durable: AtomicU64,
    applied: Mutex<u64>,
    changed: Condvar,
}

impl Progress {
    pub(crate) fn committed(&self, seq: u64) {
        self.committed.store(seq, Ordering::Release);
    }

    pub(crate) fn applied(&self, seq: u64) {
        *lock(&self.applied) = seq;
        self.changed.notify_all();
    }

    pub(crate) fn reset(&self, seq: u64) {
        self.committed(seq);
        self.durable.store(seq, Ordering::Release);
        self.applied(seq);
    }

    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(crate) fn committed_seq(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    pub(crate) fn applied_seq(&self) -> u64 {
        *lock(&self.applied)
    }

    /// Waits until everything committed before this call is applied to the indexes.
    pub(crate) fn wait_for_committed(&self) {
        let target = self.committed.load(Ordering::Acquire);
        let mut applied = lock(&self.applied);
        while *applied < target {
            // Bounded waits: a writer that died never leaves a reader stuck.
            let (a, timeout) = self
                .changed
                .wait_timeout(applied, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner());
            applied = a;
            if timeout.timed_out() && *applied < target {
                // Re-read: a recovery may have lowered `committed` to the file's last seq.
                if self.committed.load(Ordering::Acquire) <= *applied {
                    break;
                }
            }
        }
    }
}

/// Counters of the writer thread since open (see [`Database::writer_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Write transactions committed for entity writes (one per group).
    pub groups: u64,
    /// Write commands (API calls) committed in those groups.
    pub commands: u64,
    /// Items (entities upserted or deleted) committed.
    pub items: u64,
    /// Commits that failed (each followed by a reopen).
    pub failed_commits: u64,
}

#[derive(Default)]
pub(crate) struct WriterCounters {
    pub(crate) groups: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) items: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
}

/// State shared by the handles and the writer thread.
pub(crate) struct Shared {
    redb: RwLock<Option<Arc<redb::Database>>>,
    storage: Storage,
    pub(crate) options: Options,
    collections: RwLock<BTreeMap<String, Arc<CollectionShared>>>,
    /// Set by a [`Durability::None`] commit, cleared by an `Immediate` one.
    unsynced: AtomicBool,
    pub(crate) progress: Progress,
    pub(crate) counters: WriterCounters,
    /// Carries the committed seq to feed subscriptions.
    feed: watch::Sender<u64>,
    feed_closed: AtomicBool,
    /// Aliases and in-process coordination state (see [`crate::coord`]).
    pub(crate) coord: crate::coord::CoordState,
    /// The read caches (see [`crate::cache`] for why they never serve stale data).
    pub(crate) caches: Caches,
    /// Counters and histograms of database-wide operations.
    pub(crate) metrics: crate::observe::OpMetrics,
    /// Held while checkpoints are written.
    checkpoint_lock: Mutex<()>,
}

impl Shared {
    /// Where this database's checkpoints live.
    pub(crate) fn checkpoint_dir(&self) -> PathBuf {
        checkpoint::dir_for(self.storage.path())
    }

    /// A receiver of commit notifications (the committed sequence number).
    pub(crate) fn feed_receiver(&self) -> watch::Receiver<u64> {
        self.feed.subscribe()
    }

    /// True once the last database handle is gone: subscriptions end.
    pub(crate) fn feed_closed(&self) -> bool {
        self.feed_closed.load(Ordering::Acquire)
    }

    /// Every open collection.
    pub(crate) fn collection_list(&self) -> Vec<Arc<CollectionShared>> {
        read(&self.collections).values().cloned().collect()
    }

    /// The lowest seq that every HNSW checkpoint covers: events after it are needed for
    /// replay. `u64::MAX` when no checkpoint exists (a rebuild needs no events).
    pub(crate) fn checkpoint_floor(&self) -> u64 {
        read(&self.collections)
            .values()
            .filter_map(|c| c.index.checkpoint_seq())
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Checkpoints every HNSW index that changed by at least `min_changes` items (at least 1).
    /// Only durable state is checkpointed: while applied changes are not all durable yet, an
    /// index is skipped (a checkpoint is never ahead of the database). Returns how many
    /// checkpoints were written.
    pub(crate) fn checkpoint(&self, min_changes: u64) -> Result<usize> {
        // Checkpoints are derived state: a bug here must not unwind into a caller (or kill the
        // background checkpointer); the previous checkpoint file stays valid.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.checkpoint_unguarded(min_changes)
        }))
        .unwrap_or_else(|_| {
            Err(Error::Io(std::io::Error::other(
                "checkpoint failed (a panic inside hybridb); the previous checkpoint stays",
            )))
        })
    }

    fn checkpoint_unguarded(&self, min_changes: u64) -> Result<usize> {
        // One checkpoint at a time (the background thread, `Database::checkpoint`, close):
        // two writers of one file would race on its temporary name.
        let _one = lock(&self.checkpoint_lock);
        let collections: Vec<Arc<CollectionShared>> =
            read(&self.collections).values().cloned().collect();
        let dir = self.checkpoint_dir();
        let mut written = 0;
        for coll in collections {
            if coll.index.changed_since_checkpoint() < min_changes.max(1) {
                continue;
            }
            let label = || {
                let applied = self.progress.applied_seq();
                (applied <= self.progress.durable()).then_some(applied)
            };
            let Some((seq, snap)) = coll.index.snapshot(label) else {
                continue;
            };
            let bytes = checkpoint::encode(
                coll.stored.cid,
                config_hash(&coll.stored),
                seq,
                &snap.slot_ids,
                &snap.graph,
            );
            drop(snap);
            self.failpoint("checkpoint")?;
            checkpoint::write_atomic(&checkpoint::path_for(&dir, coll.stored.cid), &bytes)?;
            coll.index.set_checkpoint_seq(seq, now_ms());
            written += 1;
        }
        Ok(written)
    }

    /// Writer thread: compacts the file. Takes the redb handle away (readers get
    /// [`Error::Recovering`] meanwhile), waits up to 10 s for in-flight read transactions to
    /// finish, compacts until nothing more can be reclaimed, and puts the handle back.
    pub(crate) fn compact(&self) -> Result<bool> {
        let Some(mut arc) = write(&self.redb).take() else {
            return Err(Error::Recovering);
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            arc = match Arc::try_unwrap(arc) {
                Ok(mut db) => {
                    let r = loop {
                        match db.compact() {
                            Ok(true) => continue,
                            Ok(false) => break Ok(true),
                            Err(redb::CompactionError::TransactionInProgress)
                                if Instant::now() < deadline =>
                            {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            Err(e) => break Err(Error::Storage(e.into())),
                        }
                    };
                    *write(&self.redb) = Some(Arc::new(db));
                    break r;
                }
                Err(a) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                    a
                }
                Err(a) => {
                    *write(&self.redb) = Some(a);
                    break Err(Error::Busy { waited_ms: 10_000 });
                }
            };
        }
    }

    /// The open redb handle, or [`Error::Recovering`] while the writer reopens it.
    pub(crate) fn redb(&self) -> Result<Arc<redb::Database>> {
        read(&self.redb).clone().ok_or(Error::Recovering)
    }

    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction> {
        Ok(self.redb()?.begin_read()?)
    }

    pub(crate) fn collection_shared(&self, name: &str) -> Result<Arc<CollectionShared>> {
        read(&self.collections)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound(name.to_string()))
    }

    /// Commits `txn`, which takes the change log up to `seq`, with `durability`; records the
    /// committed (and, if `Immediate`, durable) sequence number.
    /// Passes failpoint `point` (an error or a panic when a test armed it; nothing otherwise).
    #[inline]
    pub(crate) fn failpoint(&self, point: &str) -> Result<()> {
        #[cfg(feature = "failpoints")]
        if let Some(f) = &self.options.failpoints {
            return f.pass(point);
        }
        let _ = point;
        Ok(())
    }

    pub(crate) fn commit(
        &self,
        mut txn: redb::WriteTransaction,
        durability: Durability,
        seq: u64,
    ) -> Result<()> {
        let d = match durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        };
        txn.set_durability(d)
            .map_err(|e| Error::Storage(redb::Error::from(e)))?;
        txn.set_quick_repair(self.options.quick_repair);
        self.failpoint("commit")?;
        txn.commit()?;
        self.progress.committed(seq);
        self.feed.send_replace(seq);
        if durability == Durability::Immediate {
            self.progress.durable.store(seq, Ordering::Release);
        }
        self.unsynced
            .store(durability == Durability::None, Ordering::Release);
        Ok(())
    }

    /// Makes every committed write durable (an empty `Immediate` commit). Writer thread only,
    /// or after it has stopped.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.unsynced.load(Ordering::Acquire) {
            let txn = self.redb()?.begin_write()?;
            let seq = self.progress.committed.load(Ordering::Acquire);
            self.commit(txn, Durability::Immediate, seq)?;
        }
        Ok(())
    }

    /// Writer thread: creates a collection in its own transaction.
    pub(crate) fn create_collection_txn(
        &self,
        name: &str,
        config: CollectionConfig,
    ) -> Result<Arc<CollectionShared>> {
        if read(&self.collections).contains_key(name) {
            return Err(Error::CollectionExists(name.to_string()));
        }
        self.check_not_alias(name)?;
        let now = now_ms();
        let txn = self.redb()?.begin_write()?;
        let (stored, seq) = {
            let cid = {
                let mut meta = txn.open_table(META)?;
                let cid = meta.get(META_LAST_CID)?.map_or(0, |v| v.value()) + 1;
                meta.insert(META_LAST_CID, cid)?;
                cid
            };
            let stored = StoredCollection {
                cid,
                config_version: 1,
                created_at: now,
                config,
            };
            txn.open_table(COLLECTIONS)?
                .insert(name, stored.encode().as_slice())?;
            let tables = CollectionTables::new(cid);
            txn.open_table(tables.entities())?;
            txn.open_table(tables.vectors())?;
            txn.open_table(tables.slots())?;
            txn.open_table(tables.postings())?;
            let seq = append_collection_event(&txn, name, ChangeKind::CollectionCreated, now)?;
            (stored, seq)
        };
        self.commit(txn, self.options.durability, seq)?;
        let shared = Arc::new(CollectionShared::new(
            name.to_string(),
            stored,
            self.options.index_threads,
        ));
        write(&self.collections).insert(name.to_string(), Arc::clone(&shared));
        self.progress.applied(seq);
        Ok(shared)
    }

    /// Writer thread: drops a collection and all its tables in one transaction.
    pub(crate) fn drop_collection_txn(&self, name: &str) -> Result<()> {
        self.check_not_alias(name)?;
        let shared = self.collection_shared(name)?;
        let tables = CollectionTables::new(shared.stored.cid);
        let txn = self.redb()?.begin_write()?;
        self.check_droppable(&txn, name, shared.stored.cid)?;
        txn.delete_table(tables.entities())?;
        txn.delete_table(tables.vectors())?;
        txn.delete_table(tables.slots())?;
        txn.delete_table(tables.postings())?;
        txn.open_table(COLLECTIONS)?.remove(name)?;
        let seq = append_collection_event(&txn, name, ChangeKind::CollectionDropped, now_ms())?;
        self.commit(txn, self.options.durability, seq)?;
        shared.mark_dropped();
        write(&self.collections).remove(name);
        self.progress.applied(seq);
        // Derived state only: a leftover file is ignored (its cid is never reused).
        let _ = std::fs::remove_file(checkpoint::path_for(
            &self.checkpoint_dir(),
            shared.stored.cid,
        ));
        Ok(())
    }

    /// Writer thread, after a failed commit or a panic: closes redb, opens the file again and
    /// reloads every collection's in-memory state from it. Handles stay valid.
    pub(crate) fn reopen(&self) -> Result<()> {
        // The caches are bypassed until the reload is complete (closed below, on success).
        for c in read(&self.collections).values() {
            c.window.open();
        }
        // Drop our handle first: the file stays locked until every handle and read is gone.
        write(&self.redb).take();
        let db = self.storage.open(self.options.cache_size)?;
        init_format(&db)?;
        let (loaded, last_seq) = load_collections(&db, &self.options, &self.checkpoint_dir())?;
        self.coord.aliases.reload(&db)?;
        let mut catalogue = write(&self.collections);
        for (name, old) in catalogue.iter() {
            if !loaded.contains_key(name) {
                old.mark_dropped();
            }
        }
        let mut next = BTreeMap::new();
        for (name, fresh) in loaded {
            match catalogue.get(&name) {
                Some(old) if old.stored.cid == fresh.stored.cid => {
                    let old = Arc::clone(old);
                    match Arc::try_unwrap(fresh) {
                        Ok(fresh) => old.replace_index_from(fresh),
                        Err(_) => return Err(corrupted("freshly loaded collection is shared")),
                    }
                    next.insert(name, old);
                }
                Some(old) => {
                    old.mark_dropped();
                    next.insert(name, fresh);
                }
                None => {
                    next.insert(name, fresh);
                }
            }
        }
        *catalogue = next;
        start_linkers(&catalogue);
        drop(catalogue);
        self.unsynced.store(false, Ordering::Release);
        *write(&self.redb) = Some(Arc::new(db));
        self.progress.reset(last_seq);
        self.caches.invalidate_all();
        for c in read(&self.collections).values() {
            c.window.close();
        }
        Ok(())
    }
}

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

/// The background thread that checkpoints HNSW indexes (see [`Options::checkpoint_every_ops`]).
struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(shared: Arc<Shared>) -> std::io::Result<Option<Checkpointer>> {
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

    fn stop(self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
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

/// An open hybridb database. Cheap to clone; all clones share one file, one writer thread and
/// one in-memory state. The file is closed (and any [`Durability::None`] writes made durable)
/// when the last clone and the last [`Collection`] handle are dropped.
///
/// The sync API blocks the calling thread while the writer commits; from async code use
/// [`crate::AsyncCollection`] instead.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.shared.storage.path())
            .finish_non_exhaustive()
    }
}

/// Basic facts about a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// Collection name.
    pub name: String,
    /// Its configuration.
    pub config: CollectionConfig,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
}

impl Database {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.inner
    }

    /// A builder with default [`Options`].
    pub fn builder() -> DatabaseBuilder {
        DatabaseBuilder::default()
    }

    /// Opens or creates the database at `path` with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        DatabaseBuilder::default().open(path)
    }

    fn open_storage(storage: Storage, options: Options) -> Result<Database> {
        let redb = storage.open(options.cache_size)?;
        init_format(&redb)?;
        let ckpt_dir = checkpoint::dir_for(storage.path());
        let (collections, last_seq) = load_collections(&redb, &options, &ckpt_dir)?;
        start_linkers(&collections);
        let coord = crate::coord::CoordState::load(&redb)?;
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
        let thread = writer::spawn(Arc::clone(&shared), rx)?;
        let checkpointer = Checkpointer::start(Arc::clone(&shared))?;
        let db = Database {
            inner: Arc::new(DbInner {
                shared,
                sender: Some(tx),
                thread: Some(thread),
                checkpointer,
            }),
        };
        // Transactions involving only hybridb collections need no user code: resolve them
        // now (a failure leaves them in doubt for `recover_transactions`, as before).
        match db.recover_builtin_transactions() {
            Ok(r) if r.committed.len() + r.aborted.len() + r.unresolved.len() > 0 => {
                tracing::info!(
                    committed = r.committed.len(),
                    aborted = r.aborted.len(),
                    unresolved = r.unresolved.len(),
                    "hybridb resolved in-doubt transactions on open"
                );
            }
            Ok(_) => {}
            Err(e) => crate::observe::background_error("recover_transactions", &e),
        }
        Ok(db)
    }

    /// The file this database was opened from.
    pub fn path(&self) -> &Path {
        self.inner.shared.storage.path()
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.inner.shared.options
    }

    /// Creates a collection. Fails with [`Error::CollectionExists`], or with
    /// [`Error::InvalidCollectionName`] / [`Error::InvalidConfig`] for bad input.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        let label = crate::observe::OpMetrics::new(name);
        crate::observe::op(crate::observe::Op::CreateCollection, &label, 1, || {
            self.create_collection_now(name, config)
        })
    }

    fn create_collection_now(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        validate_collection_name(name)?;
        config.validate()?;
        let name_owned = name.to_string();
        let shared = self.inner.call(|reply| Command::CreateCollection {
            name: name_owned,
            config,
            reply,
        })?;
        Ok(Collection::new(Arc::clone(&self.inner), shared))
    }

    /// A handle to an existing collection, by name or by alias ([`Database::create_alias`]),
    /// or [`Error::CollectionNotFound`]. A handle obtained through an alias stays bound to the
    /// collection the alias pointed to at this call; call this again to follow a repoint.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        self.resolve(name)
    }

    /// All collections, by name.
    pub fn collections(&self) -> Vec<CollectionInfo> {
        read(&self.inner.shared.collections)
            .values()
            .map(|c| c.info())
            .collect()
    }

    /// Drops a collection and all its entities in one transaction. Handles to it then fail with
    /// [`Error::CollectionNotFound`]. Refused with [`Error::CollectionHasAliases`] while an
    /// alias points to it, [`Error::CollectionInUse`] while a prepared two-phase-commit
    /// transaction holds writes to it, and [`Error::NameIsAlias`] for an alias's name
    /// (aliases never resolve here: use [`Database::delete_alias`]).
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let label = crate::observe::OpMetrics::new(name);
        crate::observe::op(crate::observe::Op::DropCollection, &label, 1, || {
            let name = name.to_string();
            self.inner
                .call(|reply| Command::DropCollection { name, reply })
        })
    }

    /// Runs a database-wide public operation inside its span and metrics.
    pub(crate) fn observe<T>(
        &self,
        op: crate::observe::Op,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        crate::observe::op(op, &self.inner.shared.metrics, 1, f)
    }

    /// The sequence number of the last committed change (0 before any).
    pub fn last_seq(&self) -> Result<u64> {
        let txn = self.inner.shared.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value()))
    }

    /// Compacts the file, returning freed space to the file system. Runs on the writer thread
    /// (writes wait); reads get [`Error::Recovering`] while it runs. Returns true if it ran.
    pub fn compact(&self) -> Result<bool> {
        self.observe(crate::observe::Op::Compact, || {
            self.inner.call(|reply| Command::Compact { reply })
        })
    }

    /// What the writer thread has done since open: the mean group size is
    /// `commands / groups`.
    pub fn writer_stats(&self) -> WriterStats {
        let c = &self.inner.shared.counters;
        WriterStats {
            groups: c.groups.load(Ordering::Relaxed),
            commands: c.commands.load(Ordering::Relaxed),
            items: c.items.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
        }
    }

    /// Sets the state gauges of this database through the `metrics` facade: index sizes,
    /// applied lag, checkpoint ages, cache sizes (`docs/metrics.md`). Counters and histograms
    /// are recorded as operations run; these describe state, so call this before each scrape
    /// (the `prometheus` exporter's `render` does).
    pub fn record_metrics(&self) {
        crate::observe::record_gauges(&self.inner.shared);
    }

    /// Hits, misses and sizes of the read caches since open.
    pub fn cache_stats(&self) -> crate::CacheStats {
        self.inner.shared.caches.stats()
    }

    /// Makes every committed write durable (matters only with [`Durability::None`]).
    pub fn sync(&self) -> Result<()> {
        self.observe(crate::observe::Op::Sync, || {
            self.inner.call(|reply| Command::Sync { reply })
        })
    }

    /// Makes every write durable, then checkpoints every HNSW index that changed since its
    /// last checkpoint; returns how many were written. Checkpoints are also taken in the
    /// background ([`Options::checkpoint_every_ops`]) and on close; this is for operators and
    /// tests that want one now.
    pub fn checkpoint(&self) -> Result<usize> {
        self.observe(crate::observe::Op::Checkpoint, || {
            self.inner.call(|reply| Command::Sync { reply })?;
            self.inner.shared.checkpoint(1)
        })
    }

    /// Closes this handle: makes pending writes durable and reports any error doing so. The file
    /// itself closes when the last handle (including [`Collection`]s) is gone.
    pub fn close(self) -> Result<()> {
        self.sync()
    }
}

/// Appends a collection-level event in `txn`, taking the next sequence number, and returns it.
fn append_collection_event(
    txn: &redb::WriteTransaction,
    name: &str,
    kind: ChangeKind,
    now: u64,
) -> Result<u64> {
    let mut meta = txn.open_table(META)?;
    let seq = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value()) + 1;
    meta.insert(META_LAST_SEQ, seq)?;
    let event = ChangeEvent {
        seq,
        collection: name.to_string(),
        id: None,
        kind,
        version: 0,
        payload_changed: false,
        timestamp: now,
    };
    txn.open_table(CHANGES)?
        .insert(seq, event.encode().as_slice())?;
    Ok(seq)
}

/// Creates the global tables of a new file, or checks the format version of an existing one.
fn init_format(redb: &redb::Database) -> Result<()> {
    let txn = redb.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        if meta.get(crate::incremental::META_INCREMENT_BASE)?.is_some() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "this file is an incremental backup; apply it to a restored backup with \
                 Database::apply_incremental",
            )));
        }
        let found = meta.get(META_FORMAT_VERSION)?.map(|v| v.value());
        match found {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(Error::IncompatibleFormat {
                    found: v as u32,
                    supported: FORMAT_VERSION as u32,
                });
            }
            None => {
                meta.insert(META_FORMAT_VERSION, FORMAT_VERSION)?;
            }
        }
        txn.open_table(COLLECTIONS)?;
        txn.open_table(CHANGES)?;
        txn.open_table(crate::schema::FEED_CURSORS)?;
        crate::coord::log::create_tables(&txn)?;
    }
    txn.commit()?;
    Ok(())
}

type Catalogue = BTreeMap<String, Arc<CollectionShared>>;

/// Entities handed to the index at a time while loading.
const LOAD_BATCH: usize = 8192;

/// Reads every collection's config and loads its index: from its checkpoint plus the changes
/// after it where possible, else by a rebuild from the tables. Returns the catalogue and the
/// last sequence number.
fn load_collections(
    redb: &redb::Database,
    options: &Options,
    ckpt_dir: &Path,
) -> Result<(Catalogue, u64)> {
    let txn = redb.begin_read()?;
    let last_seq = txn
        .open_table(META)?
        .get(META_LAST_SEQ)?
        .map_or(0, |v| v.value());
    let mut out = BTreeMap::new();
    for row in txn.open_table(COLLECTIONS)?.iter()? {
        let (name, value) = row?;
        let stored = StoredCollection::decode(value.value())?;
        let name = name.value().to_string();
        let tables = CollectionTables::new(stored.cid);
        check_counts(&txn, &name, &tables)?;
        let index = match stored.config.index {
            IndexKind::Hnsw { .. } => {
                match load_from_checkpoint(&txn, &name, &stored, options, ckpt_dir, last_seq) {
                    Ok(index) => index,
                    Err(reason) => rebuild_index(&txn, &name, &stored, options, &reason)?,
                }
            }
            _ => rebuild_index(&txn, &name, &stored, options, "exact index")?,
        };
        index.set_payload(load_postings(&txn, &name, &stored)?);
        out.insert(
            name.clone(),
            Arc::new(CollectionShared::with_index(name, stored, index)),
        );
    }
    Ok((out, last_seq))
}

/// Starts a background thread for each collection whose index deferred the changes replayed
/// at load: it links them into the graph batch by batch (searches meanwhile scan them
/// exactly) and ends when none are left, or when the collection is dropped or closed.
fn start_linkers(catalogue: &Catalogue) {
    for c in catalogue.values().filter(|c| c.index.deferring()) {
        let weak = Arc::downgrade(c);
        let spawned = std::thread::Builder::new()
            .name("hybridb-linker".into())
            .spawn(move || {
                while let Some(c) = weak.upgrade()
                    && c.check_live().is_ok()
                {
                    match c.index.link_pending() {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            crate::observe::background_error("link", &e);
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            // Searches stay correct (they scan the deferred vectors); the next checkpoint
            // links them.
            crate::observe::background_error("link", &Error::Io(e));
        }
    }
}

/// The three per-collection tables must have the same number of rows.
fn check_counts(txn: &redb::ReadTransaction, name: &str, tables: &CollectionTables) -> Result<()> {
    let entities = txn.open_table(tables.entities())?.len()?;
    let vectors = txn.open_table(tables.vectors())?.len()?;
    let slots = txn.open_table(tables.slots())?.len()?;
    if entities != vectors || entities != slots {
        return Err(corrupted(format!(
            "collection {name}: {entities} entities, {vectors} vectors, {slots} slots"
        )));
    }
    Ok(())
}

/// The hash that ties a checkpoint to one collection: its id and the parts of its config that
/// shape the vector index (not the payload indexes, which may change without touching it).
pub(crate) fn config_hash(stored: &StoredCollection) -> u64 {
    let c = &stored.config;
    let shape = serde_json::json!([stored.cid, c.dim, c.metric, c.index]);
    checkpoint::fnv1a(shape.to_string().as_bytes())
}

/// Reads a collection's payload index rows into the in-memory postings.
fn load_postings(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
) -> Result<crate::payload::postings::PayloadIndex> {
    let mut index = crate::payload::postings::PayloadIndex::new(&stored.config.payload_indexes);
    let tables = CollectionTables::new(stored.cid);
    let table = match txn.open_table(tables.postings()) {
        Ok(t) => t,
        // Files written before payload indexes existed have no such table (and no indexes).
        Err(redb::TableError::TableDoesNotExist(_)) if stored.config.payload_indexes.is_empty() => {
            return Ok(index);
        }
        Err(e) => return Err(e.into()),
    };
    for row in table.iter()? {
        let (k, _) = row?;
        let (key, slot) = crate::payload::decode_row(k.value())
            .ok_or_else(|| corrupted(format!("collection {name}: malformed payload index row")))?;
        index.insert(&key, slot);
    }
    Ok(index)
}

/// Loads the checkpoint of an HNSW collection and replays the changes after it. `Err` gives
/// the reason to rebuild instead; storage errors are reasons too (the rebuild will meet them
/// again and report them properly).
fn load_from_checkpoint(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    options: &Options,
    ckpt_dir: &Path,
    last_seq: u64,
) -> std::result::Result<IndexState, String> {
    let path = checkpoint::path_for(ckpt_dir, stored.cid);
    let bytes = std::fs::read(&path).map_err(|e| format!("no checkpoint ({e})"))?;
    let written_ms = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(now_ms, |d| d.as_millis() as u64);
    let ckpt = checkpoint::decode(&bytes, stored.cid, config_hash(stored), last_seq)?;
    drop(bytes);
    let ckpt_seq = ckpt.seq;
    let s = |e: Error| e.to_string();
    let tables = CollectionTables::new(stored.cid);
    // Entities touched after the checkpoint.
    let mut affected = BTreeSet::new();
    let changes = txn.open_table(CHANGES).map_err(|e| s(e.into()))?;
    for row in changes
        .range(ckpt.seq.saturating_add(1)..)
        .map_err(|e| s(e.into()))?
    {
        let (_, v) = row.map_err(|e| s(e.into()))?;
        let event = ChangeEvent::decode(v.value()).map_err(s)?;
        if event.collection == name
            && let Some(id) = event.id
        {
            affected.insert(id);
        }
    }
    let old_slots: HashMap<EntityId, u32> = ckpt
        .slot_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| affected.contains(id))
        .map(|(slot, id)| (*id, slot as u32))
        .collect();
    let slots = SlotTable::from_ids(ckpt.slot_ids);
    let ckpt_graph = ckpt.graph;
    // The index-form vector the checkpoint holds for `slot` (to skip unchanged ones).
    let held: HashMap<u32, Vec<f32>> = old_slots
        .values()
        .filter_map(|&slot| ckpt_graph.vector_copy(slot).map(|v| (slot, v)))
        .collect();
    // The replayed changes wait in a delta, linked in the background (`start_linkers`): the
    // collection is searchable as soon as the checkpoint is loaded.
    let graph = HnswIndex::deferred(ckpt_graph, options.index_threads);
    let index = IndexState::from_parts(slots, Box::new(graph));
    let entities = txn.open_table(tables.entities()).map_err(|e| s(e.into()))?;
    let vectors = txn.open_table(tables.vectors()).map_err(|e| s(e.into()))?;
    let dim = stored.config.dim as usize;
    let metric = stored.config.metric;
    let mut removes = Vec::new();
    let mut sets = Vec::new();
    for id in affected {
        let now = match entities.get(id).map_err(|e| s(e.into()))? {
            Some(rec) => Some(decode_record(rec.value()).map_err(s)?.0.slot),
            None => None,
        };
        if let Some(&old) = old_slots.get(&id)
            && now != Some(old)
        {
            removes.push(Apply::Remove { slot: old });
        }
        if let Some(slot) = now {
            let v = vectors
                .get(id)
                .map_err(|e| s(e.into()))?
                .ok_or_else(|| format!("entity {id} has no vector"))?;
            let vector = index_form(&decode_vector(v.value(), dim).map_err(s)?, metric);
            // Written since, but with the vector the checkpoint holds (a payload-only update):
            // the graph needs nothing.
            let unchanged = old_slots.get(&id) == Some(&slot) && held.get(&slot) == Some(&vector);
            if !unchanged {
                sets.push(Apply::Set { slot, id, vector });
            }
        }
    }
    let replayed = removes.len() + sets.len();
    index.set_checkpoint_seq(ckpt_seq, written_ms);
    index.apply(removes).map_err(s)?;
    index.apply(sets).map_err(s)?;
    index.finish_loading();
    let rows = entities.len().map_err(|e| s(e.into()))? as usize;
    match index.counts() {
        (allocated, Some(held)) if allocated == rows && held == rows => {}
        (allocated, held) => {
            return Err(format!(
                "after replaying {replayed} changes the index holds {held:?} vectors in \
                 {allocated} slots, but the collection has {rows} entities"
            ));
        }
    }
    Ok(index)
}

/// Builds a collection's index from its entities and vectors tables, cross-checking them, and
/// reports progress through [`Options::rebuild_progress`].
fn rebuild_index(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    options: &Options,
    reason: &str,
) -> Result<IndexState> {
    let tables = CollectionTables::new(stored.cid);
    let dim = stored.config.dim as usize;
    let metric = stored.config.metric;
    let index = IndexState::new(&stored.config, options.index_threads);
    let entities = txn.open_table(tables.entities())?;
    let vectors = txn.open_table(tables.vectors())?;
    let slots = txn.open_table(tables.slots())?;
    let total = entities.len()?;
    let report = |done: u64| {
        if let Some(cb) = &options.rebuild_progress {
            (cb.0)(RebuildProgress {
                collection: name.to_string(),
                done,
                total,
                reason: reason.to_string(),
            });
        }
    };
    report(0);
    let mut done = 0u64;
    let mut batch: Vec<Apply> = Vec::with_capacity(LOAD_BATCH);
    // Both tables are keyed by id, so they iterate in the same order.
    for (e, v) in entities.iter()?.zip(vectors.iter()?) {
        let (eid, record) = e?;
        let (vid, vector) = v?;
        let id = eid.value();
        if vid.value() != id {
            return Err(corrupted(format!(
                "collection {name}: entity {id} has no vector"
            )));
        }
        let (header, _) = decode_record(record.value())?;
        match slots.get(header.slot)? {
            Some(owner) if owner.value() == id => {}
            _ => {
                return Err(corrupted(format!(
                    "collection {name}: slot {} does not point back to {id}",
                    header.slot
                )));
            }
        }
        let vector = decode_vector(vector.value(), dim)?;
        batch.push(Apply::Set {
            slot: header.slot,
            id,
            vector: index_form(&vector, metric),
        });
        if batch.len() == LOAD_BATCH {
            done += batch.len() as u64;
            index.apply(std::mem::take(&mut batch))?;
            report(done);
        }
    }
    done += batch.len() as u64;
    index.apply(batch)?;
    report(done);
    Ok(index)
}
