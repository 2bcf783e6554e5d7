//! The database handle: opening the file, the collection catalogue, the change log, and the
//! state shared with the writer thread.
//!
//! Invariants:
//! - one [`Shared`] per open file, owned jointly by the handles and the writer thread; the
//!   writer thread ([`crate::writer`]) is the only code that begins redb write transactions;
//! - the catalogue (`collections`) holds exactly the collections committed in the file;
//! - `progress.committed` is the highest committed sequence number, `progress.applied` the
//!   highest one whose effects are in the in-memory indexes; `applied <= committed`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::{mpsc, oneshot};

use crate::change::{ChangeEvent, ChangeKind};
use crate::collection::{Collection, CollectionShared};
use crate::config::{CollectionConfig, StoredCollection, validate_collection_name};
use crate::entity::{decode_record, decode_vector, index_form};
use crate::error::{Error, Result, corrupted};
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
    /// How long a sync-API caller waits for room in a full queue before getting
    /// [`Error::Busy`]. Async callers wait without limit. Default 5 s.
    pub busy_timeout: Duration,
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

    /// Sets how long sync callers wait for room in a full queue before [`Error::Busy`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.busy_timeout = timeout;
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
        self.applied(seq);
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
}

impl Shared {
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

    /// Commits `txn` with `durability` and records whether a sync is owed.
    pub(crate) fn commit(
        &self,
        mut txn: redb::WriteTransaction,
        durability: Durability,
    ) -> Result<()> {
        let d = match durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        };
        txn.set_durability(d)
            .map_err(|e| Error::Storage(redb::Error::from(e)))?;
        txn.commit()?;
        self.unsynced
            .store(durability == Durability::None, Ordering::Release);
        Ok(())
    }

    /// Makes every committed write durable (an empty `Immediate` commit). Writer thread only,
    /// or after it has stopped.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.unsynced.load(Ordering::Acquire) {
            let txn = self.redb()?.begin_write()?;
            self.commit(txn, Durability::Immediate)?;
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
            let seq = append_collection_event(&txn, name, ChangeKind::CollectionCreated, now)?;
            (stored, seq)
        };
        self.commit(txn, self.options.durability)?;
        let shared = Arc::new(CollectionShared::new(name.to_string(), stored));
        write(&self.collections).insert(name.to_string(), Arc::clone(&shared));
        self.progress.reset(seq);
        Ok(shared)
    }

    /// Writer thread: drops a collection and all its tables in one transaction.
    pub(crate) fn drop_collection_txn(&self, name: &str) -> Result<()> {
        let shared = self.collection_shared(name)?;
        let tables = CollectionTables::new(shared.stored.cid);
        let txn = self.redb()?.begin_write()?;
        txn.delete_table(tables.entities())?;
        txn.delete_table(tables.vectors())?;
        txn.delete_table(tables.slots())?;
        txn.open_table(COLLECTIONS)?.remove(name)?;
        let seq = append_collection_event(&txn, name, ChangeKind::CollectionDropped, now_ms())?;
        self.commit(txn, self.options.durability)?;
        shared.mark_dropped();
        write(&self.collections).remove(name);
        self.progress.reset(seq);
        Ok(())
    }

    /// Writer thread, after a failed commit or a panic: closes redb, opens the file again and
    /// reloads every collection's in-memory state from it. Handles stay valid.
    pub(crate) fn reopen(&self) -> Result<()> {
        // Drop our handle first: the file stays locked until every handle and read is gone.
        write(&self.redb).take();
        let db = self.storage.open(self.options.cache_size)?;
        init_format(&db)?;
        let (loaded, last_seq) = load_collections(&db)?;
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
        drop(catalogue);
        self.unsynced.store(false, Ordering::Release);
        *write(&self.redb) = Some(Arc::new(db));
        self.progress.reset(last_seq);
        Ok(())
    }
}

/// The handle-level part: the writer's queue and thread. Dropping the last one stops the
/// writer after it drained the queue, then makes pending writes durable.
pub(crate) struct DbInner {
    pub(crate) shared: Arc<Shared>,
    sender: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DbInner {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Best effort: errors here have no caller; `Database::close` reports them.
        let _ = self.shared.sync();
    }
}

fn writer_gone() -> Error {
    Error::WriterUnavailable {
        reason: "the writer thread has stopped (database closing)".into(),
    }
}

fn writer_dropped_reply() -> Error {
    Error::WriterUnavailable {
        reason: "the writer failed while handling this request (a panic); the database was \
                 reloaded from disk, and the write did not commit"
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
        let (collections, last_seq) = load_collections(&redb)?;
        let progress = Progress::default();
        progress.reset(last_seq);
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            redb: RwLock::new(Some(Arc::new(redb))),
            storage,
            options,
            collections: RwLock::new(collections),
            unsynced: AtomicBool::new(false),
            progress,
            counters: WriterCounters::default(),
        });
        let thread = writer::spawn(Arc::clone(&shared), rx)?;
        Ok(Database {
            inner: Arc::new(DbInner {
                shared,
                sender: Some(tx),
                thread: Some(thread),
            }),
        })
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

    /// A handle to an existing collection, or [`Error::CollectionNotFound`].
    pub fn collection(&self, name: &str) -> Result<Collection> {
        let shared = self.inner.shared.collection_shared(name)?;
        Ok(Collection::new(Arc::clone(&self.inner), shared))
    }

    /// All collections, by name.
    pub fn collections(&self) -> Vec<CollectionInfo> {
        read(&self.inner.shared.collections)
            .values()
            .map(|c| c.info())
            .collect()
    }

    /// Drops a collection and all its entities in one transaction. Handles to it then fail with
    /// [`Error::CollectionNotFound`].
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.inner
            .call(|reply| Command::DropCollection { name, reply })
    }

    /// The sequence number of the last committed change (0 before any).
    pub fn last_seq(&self) -> Result<u64> {
        let txn = self.inner.shared.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value()))
    }

    /// Up to `limit` change events with a sequence number greater than `after`, in order.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeEvent>> {
        let txn = self.inner.shared.begin_read()?;
        let table = txn.open_table(CHANGES)?;
        let mut out = Vec::new();
        for row in table.range(after.saturating_add(1)..)?.take(limit) {
            let (_, v) = row?;
            out.push(ChangeEvent::decode(v.value())?);
        }
        Ok(out)
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

    /// Makes every committed write durable (matters only with [`Durability::None`]).
    pub fn sync(&self) -> Result<()> {
        self.inner.call(|reply| Command::Sync { reply })
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
    }
    txn.commit()?;
    Ok(())
}

type Catalogue = BTreeMap<String, Arc<CollectionShared>>;

/// Entities handed to the index at a time while loading.
const LOAD_BATCH: usize = 8192;

/// Reads every collection's config and loads its vectors into memory, cross-checking the
/// entities, vectors and slots tables. Returns the catalogue and the last sequence number.
fn load_collections(redb: &redb::Database) -> Result<(Catalogue, u64)> {
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
        let dim = stored.config.dim as usize;
        let metric = stored.config.metric;
        let index = IndexState::new(&stored.config);
        let mut batch: Vec<Apply> = Vec::with_capacity(LOAD_BATCH);
        let entities = txn.open_table(tables.entities())?;
        let vectors = txn.open_table(tables.vectors())?;
        let slots = txn.open_table(tables.slots())?;
        if entities.len()? != vectors.len()? || entities.len()? != slots.len()? {
            return Err(corrupted(format!(
                "collection {name}: {} entities, {} vectors, {} slots",
                entities.len()?,
                vectors.len()?,
                slots.len()?
            )));
        }
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
                index.apply(std::mem::take(&mut batch));
            }
        }
        index.apply(batch);
        out.insert(
            name.clone(),
            Arc::new(CollectionShared::with_index(name, stored, index)),
        );
    }
    Ok((out, last_seq))
}
