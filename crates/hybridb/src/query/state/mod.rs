//! A collection's in-memory search state: its [`SlotTable`] and its [`VectorIndex`], changed
//! only by the writer thread after a commit and read by searches from any thread.
//!
//! Invariants:
//! - a search holds the slot table's read lock for its whole duration, so the set of live slots
//!   and their ids cannot change under it;
//! - a new slot's vector enters the vector index *before* the slot becomes live; a deleted
//!   slot is hidden *before* its commit and its vector leaves the index *before* the slot is
//!   freed for reuse. So every live slot's vector in the index belongs to its current entity.
//! - the payload postings change together with the slot table (under its write lock), so a
//!   search that holds the slot table's read lock sees postings and live slots of one moment.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::index::VectorIndex;
use crate::index::bitset::SlotBitset;
use crate::index::originals::IndexEnv;
use crate::index::slots::{SlotCursor, SlotTable};
use crate::model::config::{CollectionConfig, IndexKind};
use crate::model::entity::NamedVector;
use crate::model::error::{FilterProblem, Result, corrupted};
use crate::model::id::EntityId;
use crate::model::sync::{lock, read, write};

use memory::filter_hash;
use memory::{Estimate, KeptSet, WalkCost};
pub(crate) use named::{Named, NamedIndexes};
pub(crate) use planned::{FilterInput, Planned, Searched};

mod memory;
mod named;
mod planned;
mod sparse_search;
pub(crate) mod text;
use crate::query::payload::PostingKey;
use crate::query::payload::postings::PayloadIndex;
use crate::query::plan;

/// What a commit does to the index for one item.
pub(crate) enum Apply {
    /// New entity, or a new default vector for an existing one (empty in a collection without
    /// a default vector: the slot is claimed, no vector is indexed).
    Set {
        slot: u32,
        id: EntityId,
        vector: Vec<f32>,
    },
    /// Deleted entity (its named vectors go too).
    Remove { slot: u32 },
    /// A new value of a named vector of the entity in `slot` (dense: in index form).
    SetNamed {
        slot: u32,
        name: std::sync::Arc<str>,
        value: NamedVector,
    },
    /// The entity in `slot` no longer has the named vector.
    RemoveNamed {
        slot: u32,
        name: std::sync::Arc<str>,
    },
    /// The analyzed terms of the text-indexed `field` of the entity in `slot` (`None`: it has
    /// no text there now).
    Text {
        slot: u32,
        field: std::sync::Arc<str>,
        terms: Option<Vec<String>>,
    },
    /// Changed payload index values of the entity in `slot` (applied with the slot table).
    Postings {
        slot: u32,
        remove: Vec<PostingKey>,
        add: Vec<PostingKey>,
    },
}

/// Slot table plus vector index of one collection.
pub(crate) struct IndexState {
    slots: RwLock<SlotTable>,
    vectors: RwLock<Box<dyn VectorIndex>>,
    /// Named vectors' indexes; locked after the slot table (never before it).
    named: RwLock<NamedIndexes>,
    /// Text indexes, by field; locked after the slot table (never before it).
    texts: RwLock<text::TextIndexes>,
    /// Payload index postings; locked only while the slot table's lock is held.
    payload: RwLock<PayloadIndex>,
    /// Held by [`IndexState::apply`] and while a checkpoint image is taken, so that the image
    /// is the state between two applies.
    apply_lock: Mutex<()>,
    /// Items applied since the last checkpoint.
    changed: AtomicU64,
    /// Seq covered by the checkpoint file of this index (`u64::MAX`: none).
    checkpoint_seq: AtomicU64,
    /// When that checkpoint was written (ms since the Unix epoch).
    checkpoint_ms: AtomicU64,
    /// Measured plan costs (see [`plan`]).
    costs: Mutex<Option<plan::Costs>>,
    /// Version of the slot table and postings: items applied since creation, plus one per
    /// other change; moves only under the slot table's write lock. Dates the kept matching
    /// sets and estimates.
    applied_items: AtomicU64,
    /// The last sample of each filter, by the filter's hash.
    estimates: Mutex<HashMap<u64, Vec<Estimate>>>,
    /// Matching sets of repeated filters.
    filter_sets: Mutex<Vec<KeptSet>>,
    /// Filters evaluated lately: `(hash, applied_items)`, to notice repeats.
    seen: Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// The measured walk of each filter lately walked, by the filter's hash.
    walks: Mutex<HashMap<u64, WalkCost>>,
}

/// An image of an HNSW index for a checkpoint.
pub(crate) struct Snapshot {
    pub slot_ids: Vec<EntityId>,
    pub graph: Vec<u8>,
}

impl IndexState {
    /// An empty index for `config`, built as `env` says (threads, where quantized originals
    /// live).
    pub(crate) fn new(config: &CollectionConfig, env: &IndexEnv) -> Self {
        // A collection without a default vector keeps an empty exact index in its place.
        let kind = if config.has_default_vector() {
            config.index
        } else {
            IndexKind::Exact
        };
        let vectors = named::vector_index(
            config.dim as usize,
            config.metric,
            kind,
            config.quantization,
            env,
        );
        let state = Self::from_parts(SlotTable::default(), vectors);
        *write(&state.payload) = PayloadIndex::new(&config.payload_indexes);
        state.set_named(Self::named_for(config, env));
        state
    }

    /// Empty indexes for the named vectors of `config`.
    pub(crate) fn named_for(config: &CollectionConfig, env: &IndexEnv) -> NamedIndexes {
        config
            .vectors
            .iter()
            .map(|(name, c)| (name.clone(), Named::new(c, env)))
            .collect()
    }

    /// Replaces the named vectors' indexes (loading).
    pub(crate) fn set_named(&self, named: NamedIndexes) {
        let _slots = write(&self.slots);
        *write(&self.named) = named;
    }

    /// Adds the index of a named vector that no entity has yet, or drops one (`None`).
    pub(crate) fn change_named(&self, name: &str, index: Option<Named>) {
        let _apply = lock(&self.apply_lock);
        let _slots = write(&self.slots);
        let mut named = write(&self.named);
        match index {
            Some(index) => named.insert(name.to_string(), index),
            None => named.remove(name),
        };
    }

    /// Runs `f` on the named vectors' indexes.
    pub(crate) fn with_named<T>(&self, f: impl FnOnce(&NamedIndexes) -> T) -> T {
        f(&read(&self.named))
    }

    pub(crate) fn from_parts(slots: SlotTable, vectors: Box<dyn VectorIndex>) -> Self {
        IndexState {
            slots: RwLock::new(slots),
            vectors: RwLock::new(vectors),
            named: RwLock::new(NamedIndexes::new()),
            texts: RwLock::new(text::TextIndexes::new()),
            payload: RwLock::new(PayloadIndex::default()),
            apply_lock: Mutex::new(()),
            changed: AtomicU64::new(0),
            checkpoint_seq: AtomicU64::new(u64::MAX),
            checkpoint_ms: AtomicU64::new(0),
            costs: Mutex::new(None),
            applied_items: AtomicU64::new(0),
            estimates: Mutex::new(HashMap::new()),
            filter_sets: Mutex::new(Vec::new()),
            seen: Mutex::new(std::collections::VecDeque::new()),
            walks: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the payload postings (loading, and declaring or dropping a payload index).
    pub(crate) fn set_payload(&self, index: PayloadIndex) {
        let _slots = write(&self.slots);
        *write(&self.payload) = index;
        self.new_version();
    }

    /// Dates every kept matching set and estimate as older than what follows (call with the
    /// slot table's write lock held, after changing postings or live slots outside `apply`).
    fn new_version(&self) {
        self.applied_items.fetch_add(1, Ordering::Relaxed);
        lock(&self.filter_sets).clear();
    }

    /// Changes the payload postings in place (under the slot table's write lock).
    pub(crate) fn update_payload(&self, f: impl FnOnce(&mut PayloadIndex)) {
        let _slots = write(&self.slots);
        f(&mut write(&self.payload));
        self.new_version();
    }

    /// Runs `f` on the payload postings.
    pub(crate) fn with_payload<T>(&self, f: impl FnOnce(&PayloadIndex) -> T) -> T {
        let _slots = read(&self.slots);
        f(&read(&self.payload))
    }

    /// The seq the index's checkpoint file covers, if it has one.
    pub(crate) fn checkpoint_seq(&self) -> Option<u64> {
        let s = self.checkpoint_seq.load(Ordering::Acquire);
        (s != u64::MAX).then_some(s)
    }

    /// Records that a checkpoint covering `seq` was written (or loaded) at `written_ms`
    /// (milliseconds since the Unix epoch).
    pub(crate) fn set_checkpoint_seq(&self, seq: u64, written_ms: u64) {
        self.checkpoint_seq.store(seq, Ordering::Release);
        self.checkpoint_ms.store(written_ms, Ordering::Release);
    }

    /// When the index's checkpoint was written (ms since the Unix epoch), if it has one.
    pub(crate) fn checkpoint_written_ms(&self) -> Option<u64> {
        self.checkpoint_seq()
            .map(|_| self.checkpoint_ms.load(Ordering::Acquire))
    }

    /// Items applied since the last checkpoint.
    pub(crate) fn changed_since_checkpoint(&self) -> u64 {
        self.changed.load(Ordering::Relaxed)
    }

    /// Takes a checkpoint image (HNSW only) and returns it with `label()` read while no apply
    /// runs; the image holds every change up to that label (and perhaps some later ones,
    /// which replay re-applies idempotently). `None` for exact indexes or if `label` refuses.
    ///
    /// A checkpoint holds a graph only, so deferred changes (see [`IndexState::link_pending`])
    /// are built in first: batch by batch, then whatever writes added, under the lock.
    pub(crate) fn snapshot(&self, label: impl FnOnce() -> Option<u64>) -> Option<(u64, Snapshot)> {
        while self.link_pending().ok()? {}
        let _apply = lock(&self.apply_lock);
        let vectors = read(&self.vectors);
        while self.link_locked(vectors.as_ref()).ok()? {}
        let hnsw = vectors.as_hnsw()?;
        let seq = label()?;
        let slot_ids = read(&self.slots).allocated_ids();
        let graph = hnsw.graph().to_bytes();
        self.changed.store(0, Ordering::Relaxed);
        Some((seq, Snapshot { slot_ids, graph }))
    }

    /// Takes a checkpoint image of the named dense vector `name` (HNSW only) if it changed by
    /// at least `min_changes` vectors, as [`IndexState::snapshot`] does for the default one:
    /// the slot map holds the ids of the slots that have the vector (`EntityId::MIN` for the
    /// others).
    pub(crate) fn named_snapshot(
        &self,
        name: &str,
        min_changes: u64,
        label: impl FnOnce() -> Option<u64>,
    ) -> Option<(u64, Snapshot)> {
        let _apply = lock(&self.apply_lock);
        let table = read(&self.slots);
        let named = read(&self.named);
        let Some(Named::Dense(d)) = named.get(name) else {
            return None;
        };
        if d.changed.load(Ordering::Relaxed) < min_changes.max(1) {
            return None;
        }
        while d.index.deferring() && d.index.link_step().ok()? {}
        let hnsw = d.index.as_hnsw()?;
        let seq = label()?;
        let slot_ids = table
            .allocated_ids()
            .into_iter()
            .enumerate()
            .map(|(slot, id)| {
                if d.present.contains(slot as u32) {
                    id
                } else {
                    EntityId::MIN
                }
            })
            .collect();
        let graph = hnsw.graph().to_bytes();
        d.changed.store(0, Ordering::Relaxed);
        Some((seq, Snapshot { slot_ids, graph }))
    }

    /// Records that the checkpoint of the named vector `name` covers `seq`.
    pub(crate) fn set_named_checkpoint_seq(&self, name: &str, seq: u64) {
        if let Some(Named::Dense(d)) = read(&self.named).get(name) {
            d.checkpoint_seq.store(seq, Ordering::Release);
        }
    }

    /// The lowest seq the checkpoints of this collection's indexes cover (default and named);
    /// `None` when none has a checkpoint.
    pub(crate) fn checkpoint_floor(&self) -> Option<u64> {
        let named = read(&self.named)
            .values()
            .filter_map(|n| match n {
                Named::Dense(d) => d.checkpoint_seq(),
                Named::Sparse(_) => None,
            })
            .min();
        match (self.checkpoint_seq(), named) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of allocated slots and of vectors the index holds (equal when consistent).
    pub(crate) fn counts(&self) -> (usize, Option<usize>) {
        let allocated = read(&self.slots).allocated_count();
        let held = read(&self.vectors).held();
        (allocated, held)
    }

    /// Builds one batch of the vector index's deferred work in (see
    /// [`crate::index::hnsw_index`]); `Ok(false)` once nothing is left. Writes wait for at
    /// most one batch.
    pub(crate) fn link_pending(&self) -> Result<bool> {
        let _apply = lock(&self.apply_lock);
        self.link_locked(read(&self.vectors).as_ref())
    }

    /// [`IndexState::link_pending`] for a caller holding the apply lock.
    fn link_locked(&self, vectors: &dyn VectorIndex) -> Result<bool> {
        if !vectors.deferring() {
            return Ok(false);
        }
        let more = vectors
            .link_step()
            .map_err(|e| corrupted(format!("vector index refused deferred work: {e}")))?;
        if !more {
            // Costs measured meanwhile priced every search with the deferred vectors' scan.
            *lock(&self.costs) = None;
        }
        Ok(more)
    }

    /// Changes accepted but not yet built into the graph (see [`IndexState::link_pending`]).
    pub(crate) fn pending(&self) -> usize {
        read(&self.vectors).pending()
    }

    /// Whether deferred changes wait for [`IndexState::link_pending`].
    pub(crate) fn deferring(&self) -> bool {
        read(&self.vectors).deferring()
    }

    /// Ends a reopen's replay: an index with nothing deferred builds later changes in
    /// directly.
    pub(crate) fn finish_loading(&self) {
        read(&self.vectors).finish_loading();
    }

    /// Slot → id of every allocated slot (for integrity checks).
    pub(crate) fn allocated_ids(&self) -> Vec<EntityId> {
        read(&self.slots).allocated_ids()
    }

    /// Whether the vector index holds `slot` (HNSW: a live node; exact: always `None`).
    pub(crate) fn holds(&self, slot: u32) -> Option<bool> {
        read(&self.vectors).holds(slot)
    }

    /// Next slot for a new entity of the current write group.
    pub(crate) fn next_slot(&self, cursor: &mut SlotCursor) -> u32 {
        cursor.next(&read(&self.slots))
    }

    /// Hides or shows again the slots of deletions that are committing.
    pub(crate) fn set_hidden(&self, slots: &[u32], hidden: bool) {
        if slots.is_empty() {
            return;
        }
        let mut table = write(&self.slots);
        for &s in slots {
            if hidden {
                table.hide(s);
            } else {
                table.unhide(s);
            }
        }
        self.new_version();
    }

    /// Applies a committed write (see the module invariants for the order). An error means the
    /// index could not take it and no longer matches the database: rebuild it.
    pub(crate) fn apply(&self, applies: Vec<Apply>) -> Result<()> {
        if applies.is_empty() {
            return Ok(());
        }
        let _apply = lock(&self.apply_lock);
        self.changed
            .fetch_add(applies.len() as u64, Ordering::Relaxed);
        let items = applies.len() as u64;
        let needed = applies
            .iter()
            .map(|a| match a {
                Apply::Set { slot, .. } | Apply::Remove { slot } => *slot as usize + 1,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        write(&self.vectors).reserve(needed);
        let vectors = read(&self.vectors);
        let sets: Vec<(u32, &[f32])> = applies
            .iter()
            .filter_map(|a| match a {
                Apply::Set { slot, vector, .. } if !vector.is_empty() => {
                    Some((*slot, vector.as_slice()))
                }
                _ => None,
            })
            .collect();
        // New vectors for slots the index already holds (updates): take them all out in one
        // batch first, so that the inserts below are plain parallel inserts (an HNSW update
        // is a removal plus an insert, and removals run one at a time).
        let updated: Vec<u32> = {
            let table = read(&self.slots);
            sets.iter()
                .map(|(slot, _)| *slot)
                .filter(|&s| table.id(s).is_some())
                .collect()
        };
        if !updated.is_empty() {
            vectors.remove(&updated);
        }
        let codes = vectors.codes_generation();
        vectors
            .insert(&sets)
            .map_err(|e| corrupted(format!("vector index refused an insert: {e}")))?;
        if vectors.codes_generation() != codes {
            // The walk and scan now rank by new codes: measure their costs again.
            *lock(&self.costs) = None;
        }
        let removed: Vec<u32> = applies
            .iter()
            .filter_map(|a| match a {
                Apply::Remove { slot } => Some(*slot),
                _ => None,
            })
            .collect();
        if !removed.is_empty() {
            vectors.remove(&removed);
        }
        drop(vectors);
        let mut changes = named::NamedChanges {
            deleted: &removed,
            ..Default::default()
        };
        for a in &applies {
            match a {
                Apply::SetNamed { slot, name, value } => changes.sets.push((name, *slot, value)),
                Apply::RemoveNamed { slot, name } => changes.removes.push((name, *slot)),
                _ => {}
            }
        }
        if !changes.is_empty() {
            changes.apply(&mut write(&self.named))?;
        }
        self.apply_texts(&applies, &removed)?;
        let mut table = write(&self.slots);
        let mut payload = write(&self.payload);
        // The version moves under the slot table's write lock, so a search (which reads it
        // under the read lock) always pairs a version with the state it names.
        self.applied_items.fetch_add(items, Ordering::Relaxed);
        for a in applies {
            match a {
                Apply::Set { slot, id, .. } => table.claim(slot, id),
                Apply::Remove { slot } => table.release(slot),
                Apply::SetNamed { .. } | Apply::RemoveNamed { .. } | Apply::Text { .. } => {}
                Apply::Postings { slot, remove, add } => {
                    for k in &remove {
                        payload.remove(k, slot);
                    }
                    for k in &add {
                        payload.insert(k, slot);
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the text changes of a commit, and forgets the texts of deleted slots (before
    /// the slot table frees them).
    fn apply_texts(&self, applies: &[Apply], deleted: &[u32]) -> Result<()> {
        let has_text = applies.iter().any(|a| matches!(a, Apply::Text { .. }));
        if !has_text && (deleted.is_empty() || read(&self.texts).is_empty()) {
            return Ok(());
        }
        let mut texts = write(&self.texts);
        for t in texts.values_mut() {
            for &slot in deleted {
                t.index.remove(slot);
            }
        }
        for a in applies {
            if let Apply::Text { slot, field, terms } = a {
                let Some(t) = texts.get_mut(&**field) else {
                    return Err(corrupted(format!(
                        "a write named unknown text index {field:?}"
                    )));
                };
                match terms {
                    Some(terms) => t.index.insert(*slot, terms),
                    None => t.index.remove(*slot),
                }
            }
        }
        Ok(())
    }

    /// Evaluates `filter` over the live slots and the payload postings.
    pub(crate) fn evaluate(
        &self,
        filter: &crate::query::filter::Filter,
        id_slots: &HashMap<EntityId, u32>,
    ) -> Result<crate::query::payload::eval::Evaluated, FilterProblem> {
        let table = read(&self.slots);
        let payload = read(&self.payload);
        let texts = read(&self.texts);
        crate::query::payload::eval::evaluate(
            filter,
            &crate::query::payload::eval::Context {
                index: &payload,
                texts: &texts,
                universe: table.live(),
                id_slots,
            },
        )
    }

    /// The `(slot, id)` of every live slot in `bits` (candidates for payload checks).
    pub(crate) fn candidates(&self, bits: &SlotBitset) -> Vec<(u32, EntityId)> {
        let table = read(&self.slots);
        bits.iter()
            .filter_map(|s| table.id(s).map(|id| (s, id)))
            .collect()
    }

    /// Moves `other`'s contents into `self` (writer recovery: handles keep their `Arc`).
    pub(crate) fn replace_from(&self, other: IndexState) {
        let IndexState {
            slots,
            vectors,
            named,
            texts,
            payload,
            ..
        } = other;
        let _apply = lock(&self.apply_lock);
        *write(&self.vectors) = vectors.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut table = write(&self.slots);
        *write(&self.named) = named.into_inner().unwrap_or_else(|e| e.into_inner());
        *write(&self.texts) = texts.into_inner().unwrap_or_else(|e| e.into_inner());
        *table = slots.into_inner().unwrap_or_else(|e| e.into_inner());
        *write(&self.payload) = payload.into_inner().unwrap_or_else(|e| e.into_inner());
        self.new_version();
    }

    /// Number of searchable entities.
    pub(crate) fn live_count(&self) -> usize {
        read(&self.slots).live_count()
    }

    /// Bytes held by the slot table, the vector index and the payload postings.
    pub(crate) fn memory_bytes(&self) -> usize {
        let table = read(&self.slots);
        table.memory_bytes()
            + read(&self.vectors).memory_bytes()
            + read(&self.payload).memory_bytes()
            + read(&self.named)
                .values()
                .map(Named::memory_bytes)
                .sum::<usize>()
            + read(&self.texts)
                .values()
                .map(|t| t.index.memory_bytes())
                .sum::<usize>()
    }

    /// Number of entities holding each named vector.
    pub(crate) fn named_counts(&self) -> Vec<(String, usize)> {
        read(&self.named)
            .iter()
            .map(|(name, index)| (name.clone(), index.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
