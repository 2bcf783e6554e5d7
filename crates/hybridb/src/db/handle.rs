//! The database handle: opening a file (then running the layers' open work, `crate::ON_OPEN`),
//! the collection catalogue as users see it, sync, checkpoint, compact and statistics.
//!
//! Invariant: a [`Database`] is a reference to the store's [`DbInner`]; clones share one
//! database, and it closes when the last handle (including collections) is gone.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::db::collection::Collection;
use crate::model::config::{CollectionConfig, validate_collection_name};
use crate::model::error::Result;
use crate::model::sync::read;
use crate::store::collection::CollectionInfo;
use crate::store::inner::DbInner;
use crate::store::options::Options;
use crate::store::schema::{META, META_LAST_SEQ};
use crate::store::shared::Shared;
use crate::store::shared::WriterStats;
use crate::store::storage::Storage;
use crate::store::writer::Command;

/// An open hybridb database. Cheap to clone; all clones share one file, one writer thread and
/// one in-memory state. The file is closed (and any [`crate::Durability::None`] writes made durable)
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

impl Database {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.inner
    }

    pub(crate) fn open_storage(storage: Storage, options: Options) -> Result<Database> {
        let db = Database {
            inner: Arc::new(DbInner::open(storage, options)?),
        };
        // The layers above this one finish what they left in the file (see `crate::ON_OPEN`).
        for on_open in crate::ON_OPEN {
            on_open(&db);
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

    /// Creates a collection. Fails with [`crate::Error::CollectionExists`], or with
    /// [`crate::Error::InvalidCollectionName`] / [`crate::Error::InvalidConfig`] for bad input.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        let label = crate::observe::OpMetrics::new(name);
        crate::observe::op(crate::observe::Op::CreateCollection, &label, 1, || {
            self.create_collection_now(name, config)
        })
    }

    fn create_collection_now(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        validate_collection_name(name)?;
        let config = config.resolved();
        config.validate()?;
        let name_owned = name.to_string();
        let shared = self.inner.call(|reply| Command::CreateCollection {
            name: name_owned,
            config,
            reply,
        })?;
        Ok(Collection::new(Arc::clone(&self.inner), shared))
    }

    /// A handle to an existing collection, by name or by alias ([`crate::Database::create_alias`]),
    /// or [`crate::Error::CollectionNotFound`]. A handle obtained through an alias stays bound to the
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
    /// [`crate::Error::CollectionNotFound`]. Refused with [`crate::Error::CollectionHasAliases`] while an
    /// alias points to it, [`crate::Error::CollectionInUse`] while a prepared two-phase-commit
    /// transaction holds writes to it, and [`crate::Error::NameIsAlias`] for an alias's name
    /// (aliases never resolve here: use [`crate::Database::delete_alias`]).
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
    /// (writes wait); reads get [`crate::Error::Recovering`] while it runs. Returns true if it ran.
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
        self.inner.shared.record_gauges();
    }

    /// Hits, misses and sizes of the read caches since open.
    pub fn cache_stats(&self) -> crate::observe::cache::CacheStats {
        self.inner.shared.caches.stats()
    }

    /// Makes every committed write durable (matters only with [`crate::Durability::None`]).
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
