//! The database handle: opening the redb file, the collection catalogue and the change log.
//!
//! Invariants:
//! - one [`DbInner`] per open file; [`Database`] handles are cheap clones of an `Arc` to it;
//! - `write_lock` is held for the whole of every write (validate, transaction, commit, apply to
//!   the in-memory index), so the in-memory state changes in commit order and always equals the
//!   last committed state, except for slots hidden by a deletion that is committing;
//! - the catalogue (`collections`) holds exactly the collections committed in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::change::{ChangeEvent, ChangeKind};
use crate::collection::{Collection, CollectionShared};
use crate::config::{CollectionConfig, StoredCollection, validate_collection_name};
use crate::entity::{decode_record, decode_vector, index_form};
use crate::error::{Error, Result, corrupted};
use crate::index::flat::FlatIndex;
use crate::schema::{
    CHANGES, COLLECTIONS, CollectionTables, FORMAT_VERSION, META, META_FORMAT_VERSION,
    META_LAST_CID, META_LAST_SEQ,
};
use crate::sync::{lock, now_ms, read, write};

/// When a committed write becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The write is on disk when the call returns (one fsync per commit). The default.
    #[default]
    Immediate,
    /// The write is visible at once but reaches the disk with the next `Immediate` commit, with
    /// [`Database::sync`], or when the last handle is dropped: a crash before then loses it.
    None,
}

/// Settings of an open database. Defaults are documented per field.
#[derive(Debug, Clone)]
pub struct Options {
    /// redb page cache, in bytes. Default 256 MiB.
    pub cache_size: usize,
    /// Durability of every write. Default [`Durability::Immediate`].
    pub durability: Durability,
    /// Largest accepted payload, as encoded JSON bytes. Default 1 MiB.
    pub max_payload_bytes: usize,
    /// Largest accepted `k` for search and `limit` for scroll. Default 10,000.
    pub max_k: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_size: 256 << 20,
            durability: Durability::Immediate,
            max_payload_bytes: 1 << 20,
            max_k: 10_000,
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

    /// Sets the durability of writes.
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

    /// Opens the database at `path`, creating the file if it does not exist.
    ///
    /// Fails with [`Error::AlreadyOpen`] at once (no waiting) if another process or handle has
    /// the file open, and with [`Error::IncompatibleFormat`] for files of another format version.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        Database::open_with(path.as_ref(), self.options)
    }
}

/// An open hybridb database. Cheap to clone; all clones share one file and one state.
/// The file is closed (and any [`Durability::None`] writes made durable) when the last clone
/// is dropped or [`Database::close`]d.
#[derive(Clone)]
pub struct Database {
    inner: Arc<DbInner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

pub(crate) struct DbInner {
    pub(crate) redb: redb::Database,
    pub(crate) path: PathBuf,
    pub(crate) options: Options,
    /// Serialises writes; see the module invariants.
    pub(crate) write_lock: Mutex<()>,
    collections: RwLock<BTreeMap<String, Arc<CollectionShared>>>,
    /// Set by a [`Durability::None`] commit, cleared by an `Immediate` one.
    pub(crate) unsynced: AtomicBool,
}

impl Drop for DbInner {
    fn drop(&mut self) {
        // Best effort: errors here have no caller to go to; `Database::close` reports them.
        let _ = self.sync();
    }
}

impl DbInner {
    /// Makes every committed write durable (an empty `Immediate` commit).
    pub(crate) fn sync(&self) -> Result<()> {
        if self.unsynced.swap(false, Ordering::AcqRel) {
            let txn = self.redb.begin_write()?;
            if let Err(e) = txn.commit() {
                self.unsynced.store(true, Ordering::Release);
                return Err(e.into());
            }
        }
        Ok(())
    }

    pub(crate) fn redb_durability(&self) -> redb::Durability {
        match self.options.durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        }
    }

    /// Commits `txn` with the database's durability and records whether a sync is owed.
    pub(crate) fn commit(&self, mut txn: redb::WriteTransaction) -> Result<()> {
        let durability = self.redb_durability();
        txn.set_durability(durability)
            .map_err(|e| Error::Storage(redb::Error::from(e)))?;
        txn.commit()?;
        match durability {
            redb::Durability::None => self.unsynced.store(true, Ordering::Release),
            _ => self.unsynced.store(false, Ordering::Release),
        }
        Ok(())
    }

    pub(crate) fn collection_shared(&self, name: &str) -> Result<Arc<CollectionShared>> {
        read(&self.collections)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound(name.to_string()))
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
        Self::open_with(path.as_ref(), Options::default())
    }

    fn open_with(path: &Path, options: Options) -> Result<Database> {
        let redb = redb::Database::builder()
            .set_cache_size(options.cache_size)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
                    path: path.to_path_buf(),
                },
                other => other.into(),
            })?;
        init_format(&redb)?;
        let collections = load_collections(&redb)?;
        Ok(Database {
            inner: Arc::new(DbInner {
                redb,
                path: path.to_path_buf(),
                options,
                write_lock: Mutex::new(()),
                collections: RwLock::new(collections),
                unsynced: AtomicBool::new(false),
            }),
        })
    }

    /// The file this database was opened from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Creates a collection. Fails with [`Error::CollectionExists`], or with
    /// [`Error::InvalidCollectionName`] / [`Error::InvalidConfig`] for bad input.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        validate_collection_name(name)?;
        config.validate()?;
        let inner = &self.inner;
        let _w = lock(&inner.write_lock);
        if read(&inner.collections).contains_key(name) {
            return Err(Error::CollectionExists(name.to_string()));
        }
        let now = now_ms();
        let txn = inner.redb.begin_write()?;
        let stored = {
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
            append_collection_event(&txn, name, ChangeKind::CollectionCreated, now)?;
            stored
        };
        inner.commit(txn)?;
        let shared = Arc::new(CollectionShared::new(name.to_string(), stored));
        write(&inner.collections).insert(name.to_string(), Arc::clone(&shared));
        Ok(Collection::new(Arc::clone(inner), shared))
    }

    /// A handle to an existing collection, or [`Error::CollectionNotFound`].
    pub fn collection(&self, name: &str) -> Result<Collection> {
        let shared = self.inner.collection_shared(name)?;
        Ok(Collection::new(Arc::clone(&self.inner), shared))
    }

    /// All collections, by name.
    pub fn collections(&self) -> Vec<CollectionInfo> {
        read(&self.inner.collections)
            .values()
            .map(|c| c.info())
            .collect()
    }

    /// Drops a collection and all its entities in one transaction. Handles to it then fail with
    /// [`Error::CollectionNotFound`].
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let inner = &self.inner;
        let _w = lock(&inner.write_lock);
        let shared = inner.collection_shared(name)?;
        let tables = CollectionTables::new(shared.stored.cid);
        let txn = inner.redb.begin_write()?;
        txn.delete_table(tables.entities())?;
        txn.delete_table(tables.vectors())?;
        txn.delete_table(tables.slots())?;
        txn.open_table(COLLECTIONS)?.remove(name)?;
        append_collection_event(&txn, name, ChangeKind::CollectionDropped, now_ms())?;
        inner.commit(txn)?;
        shared.mark_dropped();
        write(&inner.collections).remove(name);
        Ok(())
    }

    /// The sequence number of the last committed change (0 before any).
    pub fn last_seq(&self) -> Result<u64> {
        let txn = self.inner.redb.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value()))
    }

    /// Up to `limit` change events with a sequence number greater than `after`, in order.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeEvent>> {
        let txn = self.inner.redb.begin_read()?;
        let table = txn.open_table(CHANGES)?;
        let mut out = Vec::new();
        for row in table.range(after.saturating_add(1)..)?.take(limit) {
            let (_, v) = row?;
            out.push(ChangeEvent::decode(v.value())?);
        }
        Ok(out)
    }

    /// Makes every committed write durable (matters only with [`Durability::None`]).
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// Closes this handle: makes pending writes durable and reports any error doing so. The file
    /// itself closes when the last handle (including [`Collection`]s) is gone.
    pub fn close(self) -> Result<()> {
        self.inner.sync()
    }
}

/// Appends a collection-level event in `txn`, taking the next sequence number.
fn append_collection_event(
    txn: &redb::WriteTransaction,
    name: &str,
    kind: ChangeKind,
    now: u64,
) -> Result<()> {
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
    Ok(())
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

/// Reads every collection's config and loads its vectors into memory, cross-checking the
/// entities, vectors and slots tables.
fn load_collections(redb: &redb::Database) -> Result<BTreeMap<String, Arc<CollectionShared>>> {
    let txn = redb.begin_read()?;
    let mut out = BTreeMap::new();
    for row in txn.open_table(COLLECTIONS)?.iter()? {
        let (name, value) = row?;
        let stored = StoredCollection::decode(value.value())?;
        let name = name.value().to_string();
        let tables = CollectionTables::new(stored.cid);
        let dim = stored.config.dim as usize;
        let metric = stored.config.metric;
        let mut index = FlatIndex::new(dim, metric);
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
            index.set(header.slot, id, &index_form(&vector, metric));
        }
        out.insert(
            name.clone(),
            Arc::new(CollectionShared::with_index(name, stored, index)),
        );
    }
    Ok(out)
}
