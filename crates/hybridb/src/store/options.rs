//! Database options ([`Options`], set through [`crate::DatabaseBuilder`]) and durability.
//!
//! They live here, below the handles, because the writer thread and the loader read them;
//! defaults are what a user who sets nothing should get (durable writes, bounded queues).

use std::sync::Arc;
use std::time::Duration;

use crate::index::originals::IndexEnv;
use crate::observe::cache::CacheSizes;

/// When a committed write becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The write is on disk when the call returns. The default.
    #[default]
    Immediate,
    /// The write is visible at once but reaches the disk with the next `Immediate` commit, with
    /// [`crate::Database::sync`], or when the last handle is dropped: a crash before then loses it.
    None,
}

/// Settings of an open database. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct Options {
    /// redb page cache, in bytes. Default 256 MiB.
    pub cache_size: usize,
    /// Default durability of writes (a handle may override it per write, see
    /// [`crate::Collection::with_durability`]). Default [`crate::Durability::Immediate`].
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
    /// [`crate::Error::Busy`]. Async callers wait without limit. Default 5 s.
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
    /// Where quantized HNSW indexes keep the `f32` originals their searches rescore with.
    /// Default [`Originals::BesideDatabase`], which an open database's options show resolved
    /// ([`Originals::In`] its file's directory, or [`Originals::Memory`] on a custom backend).
    pub originals: Originals,
    /// Failpoints for fault-injection tests (feature `failpoints`). Default none.
    #[cfg(feature = "failpoints")]
    pub failpoints: Option<Arc<crate::store::failpoint::Failpoints>>,
}

/// Where a quantized HNSW index keeps its `f32` originals (an index without quantization
/// always keeps its vectors in memory). See `docs/quantization.md`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Originals {
    /// In a file of each index's own in the database file's directory, created unlinked when
    /// the index is built or loaded and mapped: they take page cache, not the process's
    /// memory, so the resident index is codes + graph. The default. A database on a custom
    /// backend, a platform without `mmap`, or a file that cannot be made keep them in memory.
    #[default]
    BesideDatabase,
    /// In a file in this directory (as above; it should be on the database's disk, not on a
    /// memory file system, or nothing is saved).
    In(std::path::PathBuf),
    /// In memory.
    Memory,
}

impl Options {
    /// Resolves [`Originals::BesideDatabase`] for a database whose file is `db_file` (`None`:
    /// a custom backend, which keeps the originals in memory).
    pub(crate) fn resolve_originals(&mut self, db_file: Option<&std::path::Path>) {
        if self.originals == Originals::BesideDatabase {
            self.originals = match db_file.and_then(std::path::Path::parent) {
                Some(d) if d.as_os_str().is_empty() => Originals::In(".".into()),
                Some(d) => Originals::In(d.to_path_buf()),
                None => Originals::Memory,
            };
        }
    }

    /// How indexes are built under these options (originals still
    /// [`Originals::BesideDatabase`], not resolved for a file, stay in memory).
    pub(crate) fn index_env(&self) -> IndexEnv {
        IndexEnv {
            threads: self.index_threads,
            originals_dir: match &self.originals {
                Originals::In(dir) => Some(dir.clone()),
                Originals::BesideDatabase | Originals::Memory => None,
            },
        }
    }
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
            originals: Originals::BesideDatabase,
            #[cfg(feature = "failpoints")]
            failpoints: None,
        }
    }
}
