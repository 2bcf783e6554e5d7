//! [`DatabaseBuilder`]: options set one by one with their documented defaults, then `open`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::db::handle::Database;
use crate::model::error::Result;
use crate::observe::cache::CacheSizes;
use crate::store::options::Durability;
use crate::store::options::Options;
use crate::store::options::ProgressCallback;
use crate::store::options::RebuildProgress;
use crate::store::storage::{BackendFactory, Storage};

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

    /// Sets how long sync callers wait for room in a full queue before [`crate::Error::Busy`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.busy_timeout = timeout;
        self
    }

    /// Sets where quantized HNSW indexes keep their `f32` originals (default: in a mapped
    /// file beside the database, see [`crate::Originals`]).
    pub fn originals(mut self, originals: crate::store::options::Originals) -> Self {
        self.options.originals = originals;
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

    /// Uses `failpoints` (feature `failpoints`): see [`crate::store::failpoint`].
    #[cfg(feature = "failpoints")]
    pub fn failpoints(mut self, failpoints: Arc<crate::store::failpoint::Failpoints>) -> Self {
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
    /// Fails with [`crate::Error::AlreadyOpen`] at once (no waiting) if another process or handle has
    /// the file open, and with [`crate::Error::IncompatibleFormat`] for files of another format version.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        Database::open_storage(Storage::File(path.as_ref().to_path_buf()), self.options)
    }

    /// Opens a database on custom redb storage: `factory` is called on open and again each time
    /// the writer reopens after a failed commit. `label` names it in errors and [`crate::Database::path`].
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

/// The entry points that start from a handle type.
impl Database {
    /// A builder with default [`Options`].
    pub fn builder() -> DatabaseBuilder {
        DatabaseBuilder::default()
    }

    /// Opens or creates the database at `path` with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        DatabaseBuilder::default().open(path)
    }
}
