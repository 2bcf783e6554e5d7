//! The state shared by the handles and the writer thread of one open file ([`Shared`]): the redb
//! handle, the collection catalogue, commit progress, caches, and the writer-side operations on
//! them (commit, sync, checkpoint, compact, create and drop collection, reopen).
//!
//! Invariants:
//! - one [`Shared`] per open file, owned jointly by the handles and the writer thread; the
//!   writer thread ([`crate::store::writer`]) is the only code that begins redb write transactions;
//! - the catalogue (`collections`) holds exactly the collections committed in the file;
//! - `progress.committed` is the highest committed sequence number, `progress.applied` the
//!   highest one whose effects are in the in-memory indexes; `applied <= committed`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTable};
use tokio::sync::watch;

use crate::index::checkpoint;
use crate::model::change::ChangeEvent;
use crate::model::change::ChangeKind;
use crate::model::config::{CollectionConfig, StoredCollection};
use crate::model::error::{Error, Result, corrupted};
use crate::model::sync::{lock, now_ms, read, write};
use crate::observe::cache::Caches;
use crate::store::collection::CollectionShared;
use crate::store::load::config_hash;
use crate::store::load::init_format;
use crate::store::load::load_collections;
use crate::store::load::start_linkers;
use crate::store::options::Durability;
use crate::store::options::Options;
use crate::store::schema::CHANGES;
use crate::store::schema::META_LAST_SEQ;
use crate::store::schema::{COLLECTIONS, CollectionTables, META, META_LAST_CID};
use crate::store::storage::Storage;

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

/// Counters of the writer thread since open (see [`crate::Database::writer_stats`]).
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
    pub(crate) redb: RwLock<Option<Arc<redb::Database>>>,
    pub(crate) storage: Storage,
    pub(crate) options: Options,
    pub(crate) collections: RwLock<BTreeMap<String, Arc<CollectionShared>>>,
    /// Set by a [`crate::Durability::None`] commit, cleared by an `Immediate` one.
    pub(crate) unsynced: AtomicBool,
    pub(crate) progress: Progress,
    pub(crate) counters: WriterCounters,
    /// Carries the committed seq to feed subscriptions.
    pub(crate) feed: watch::Sender<u64>,
    pub(crate) feed_closed: AtomicBool,
    /// Aliases and in-process coordination state (see [`crate::coord`]).
    pub(crate) coord: crate::store::catalogue::CoordState,
    /// The read caches (see [`crate::observe::cache`] for why they never serve stale data).
    pub(crate) caches: Caches,
    /// Counters and histograms of database-wide operations.
    pub(crate) metrics: crate::observe::OpMetrics,
    /// Held while checkpoints are written.
    pub(crate) checkpoint_lock: Mutex<()>,
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
            .filter_map(|c| c.index.checkpoint_floor())
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
        let mut written = 0;
        for coll in collections {
            written += self.checkpoint_locked(&coll, min_changes)?;
        }
        Ok(written)
    }

    /// Checkpoints the HNSW indexes of `coll` (default and named) that changed by at least
    /// `min_changes` items (at least 1), durable state only. The caller holds
    /// `checkpoint_lock`. Returns how many checkpoints were written.
    pub(crate) fn checkpoint_locked(
        &self,
        coll: &CollectionShared,
        min_changes: u64,
    ) -> Result<usize> {
        let dir = self.checkpoint_dir();
        let mut written = 0;
        let label = || {
            let applied = self.progress.applied_seq();
            (applied <= self.progress.durable()).then_some(applied)
        };
        for (name, decl) in coll.named().iter() {
            let Some((seq, snap)) = coll.index.named_snapshot(name, min_changes, label) else {
                continue;
            };
            let bytes = checkpoint::encode(
                coll.stored.cid,
                crate::store::load_named::config_hash(coll.stored.cid, decl),
                seq,
                &snap.slot_ids,
                &snap.graph,
            );
            drop(snap);
            self.failpoint("checkpoint")?;
            let path = checkpoint::named_path_for(&dir, coll.stored.cid, decl.vid);
            checkpoint::write_atomic(&path, &bytes)?;
            coll.index.set_named_checkpoint_seq(name, seq);
            written += 1;
        }
        if coll.index.changed_since_checkpoint() < min_changes.max(1) {
            return Ok(written);
        }
        let Some((seq, snap)) = coll.index.snapshot(label) else {
            return Ok(written);
        };
        let bytes = checkpoint::encode(
            coll.stored.cid,
            config_hash(&coll.stored_now()),
            seq,
            &snap.slot_ids,
            &snap.graph,
        );
        drop(snap);
        self.failpoint("checkpoint")?;
        checkpoint::write_atomic(&checkpoint::path_for(&dir, coll.stored.cid), &bytes)?;
        coll.index.set_checkpoint_seq(seq, now_ms());
        Ok(written + 1)
    }

    /// Writer thread: compacts the file. Takes the redb handle away (readers get
    /// [`crate::Error::Recovering`] meanwhile), waits up to 10 s for in-flight read transactions to
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

    /// The open redb handle, or [`crate::Error::Recovering`] while the writer reopens it.
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
            let vector_ids: std::collections::BTreeMap<String, u32> =
                config.vectors.keys().cloned().zip(1..).collect();
            let first_tid = vector_ids.len() as u32 + 1;
            let text_ids: std::collections::BTreeMap<String, u32> = config
                .text_indexes
                .keys()
                .cloned()
                .zip(first_tid..)
                .collect();
            let stored = StoredCollection {
                cid,
                config_version: 1,
                created_at: now,
                last_vid: (vector_ids.len() + text_ids.len()) as u32,
                vector_ids,
                text_ids,
                config,
            };
            txn.open_table(COLLECTIONS)?
                .insert(name, stored.encode().as_slice())?;
            let tables = CollectionTables::new(cid);
            txn.open_table(tables.entities())?;
            txn.open_table(tables.vectors())?;
            txn.open_table(tables.slots())?;
            txn.open_table(tables.postings())?;
            crate::store::load_named::create_tables(&txn, &stored)?;
            crate::store::text::create_tables(&txn, &stored)?;
            let seq = append_collection_event(&txn, name, ChangeKind::CollectionCreated, now)?;
            (stored, seq)
        };
        self.commit(txn, self.options.durability, seq)?;
        let shared = Arc::new(CollectionShared::new(
            name.to_string(),
            stored,
            &self.options.index_env(),
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
        crate::store::load_named::delete_tables(&txn, &shared.stored.cid, &shared.named())?;
        crate::store::text::delete_tables(&txn, shared.stored.cid, &shared.texts())?;
        txn.open_table(COLLECTIONS)?.remove(name)?;
        let seq = append_collection_event(&txn, name, ChangeKind::CollectionDropped, now_ms())?;
        self.commit(txn, self.options.durability, seq)?;
        shared.mark_dropped();
        write(&self.collections).remove(name);
        self.progress.applied(seq);
        // Derived state only: a leftover file is ignored (its cid is never reused).
        let dir = self.checkpoint_dir();
        let _ = std::fs::remove_file(checkpoint::path_for(&dir, shared.stored.cid));
        for (_, d) in shared.named().iter() {
            let _ =
                std::fs::remove_file(checkpoint::named_path_for(&dir, shared.stored.cid, d.vid));
        }
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

impl Shared {
    /// Sets the state gauges of one database: per collection `hybridb_index_entities`,
    /// `hybridb_index_memory_bytes`, `hybridb_index_unlinked`, `hybridb_checkpoint_age_seconds`,
    /// per named vector `hybridb_vector_entities`
    /// (HNSW indexes that have a checkpoint); `hybridb_applied_lag` (committed minus applied sequence numbers),
    /// `hybridb_last_seq`; the writer's totals `hybridb_writer_{groups,commands,items,
    /// failed_commits}_total`; cache bytes and entries per level.
    pub(crate) fn record_gauges(&self) {
        let now = now_ms();
        for c in self.collection_list() {
            let name = c.metrics.label().clone();
            metrics::gauge!("hybridb_index_entities", "collection" => name.clone())
                .set(c.index.live_count() as f64);
            metrics::gauge!("hybridb_index_memory_bytes", "collection" => name.clone())
                .set(c.index.memory_bytes() as f64);
            metrics::gauge!("hybridb_index_unlinked", "collection" => name.clone())
                .set(c.index.pending() as f64);
            for (vector, count) in c.index.named_counts() {
                metrics::gauge!(
                    "hybridb_vector_entities",
                    "collection" => name.clone(),
                    "vector" => vector
                )
                .set(count as f64);
            }
            if let Some(at) = c.index.checkpoint_written_ms() {
                metrics::gauge!("hybridb_checkpoint_age_seconds", "collection" => name)
                    .set(now.saturating_sub(at) as f64 / 1000.0);
            }
        }
        let committed = self.progress.committed_seq();
        let applied = self.progress.applied_seq();
        metrics::gauge!("hybridb_applied_lag").set(committed.saturating_sub(applied) as f64);
        metrics::gauge!("hybridb_last_seq").set(committed as f64);
        let w = &self.counters;
        for (name, value) in [
            ("hybridb_writer_groups_total", &w.groups),
            ("hybridb_writer_commands_total", &w.commands),
            ("hybridb_writer_items_total", &w.items),
            ("hybridb_writer_failed_commits_total", &w.failed_commits),
        ] {
            metrics::counter!(name).absolute(value.load(std::sync::atomic::Ordering::Relaxed));
        }
        self.caches.record_gauges();
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
