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

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::config::{CollectionConfig, IndexKind};
use crate::error::{FilterProblem, Result, corrupted};
use crate::filter::Filter;
use crate::id::EntityId;
use crate::index::bitset::SlotBitset;
use crate::index::flat::FlatIndex;
use crate::index::hnsw_index::HnswIndex;
use crate::index::slots::{SlotCursor, SlotTable};
use crate::index::{IndexMetric, VectorIndex, plan};
use crate::payload::PostingKey;
use crate::payload::eval::{Checker, Context, evaluate, upper_bound};
use crate::payload::postings::PayloadIndex;
use crate::search::Plan;
use crate::sync::{lock, read, write};

/// What a commit does to the index for one item.
pub(crate) enum Apply {
    /// New entity, or a new vector for an existing one.
    Set {
        slot: u32,
        id: EntityId,
        vector: Vec<f32>,
    },
    /// Deleted entity.
    Remove { slot: u32 },
    /// Changed payload index values of the entity in `slot` (applied with the slot table).
    Postings {
        slot: u32,
        remove: Vec<PostingKey>,
        add: Vec<PostingKey>,
    },
}

/// What a planned search searches among.
pub(crate) enum FilterInput<'f> {
    /// The slots a filter over the payload indexes allows.
    Filter {
        filter: &'f Filter,
        id_slots: &'f HashMap<EntityId, u32>,
    },
    /// Slots decided from payloads, each valid only while it holds the id `expect` names.
    Slots {
        bits: SlotBitset,
        expect: &'f HashMap<u32, EntityId>,
    },
}

/// The outcome of [`IndexState::search_planned`].
pub(crate) enum Searched {
    Done(Planned),
    /// The filter has conditions the postings cannot answer: check the payloads of these
    /// slots (a superset of the matching ones) and search again with [`FilterInput::Slots`].
    NeedsPayloads(SlotBitset),
}

/// The matching set: `bits` if it was computed, else computed now from the postings.
fn materialise<'b>(
    bits: &'b Option<Arc<SlotBitset>>,
    filter_cx: Option<&(&Filter, Context<'_>)>,
) -> Result<Cow<'b, SlotBitset>, FilterProblem> {
    match (bits, filter_cx) {
        (Some(b), _) => Ok(Cow::Borrowed(&**b)),
        (None, Some((f, cx))) => evaluate(f, cx).map(|e| Cow::Owned(e.bits)),
        (None, None) => Ok(Cow::Owned(SlotBitset::new())),
    }
}

/// Live slots looked at to estimate a filter's selectivity (a standard error under 2.3
/// percentage points).
const SAMPLE: usize = 512;
/// Fewer sample hits than this (a selectivity under about 6 %) and the matching set is
/// computed exactly from the postings instead.
const MIN_SAMPLE_HITS: usize = 32;

/// Runs `pred` on up to [`SAMPLE`] live slots spread evenly (a golden-ratio sequence, the same
/// for every call) and returns `(hits, sampled)`; every live slot when there are few.
fn sample(live: &SlotBitset, mut pred: impl FnMut(u32) -> bool) -> (usize, usize) {
    if live.len() <= SAMPLE {
        let hits = live.iter().filter(|&s| pred(s)).count();
        return (hits, live.len());
    }
    let span = (live.words().len() * 64) as f64;
    let (mut hits, mut sampled) = (0, 0);
    let mut x = 0.5f64;
    for _ in 0..SAMPLE * 16 {
        x += 0.618_033_988_749_895;
        if x >= 1.0 {
            x -= 1.0;
        }
        let slot = (x * span) as u32;
        if live.contains(slot) {
            sampled += 1;
            hits += usize::from(pred(slot));
            // Stop early when the hits so far already say "rare" (the caller then counts
            // exactly): none in 128, or under 4 in 256, means a selectivity of a few percent
            // at most.
            if sampled == SAMPLE || (sampled == 128 && hits == 0) || (sampled == 256 && hits < 4) {
                break;
            }
        }
    }
    (hits, sampled)
}

/// The outcome of a planned search.
pub(crate) struct Planned {
    /// `(id, distance)`, nearest first, ties by id, at most `k`.
    pub hits: Vec<(EntityId, f32)>,
    pub plan: Plan,
    pub fallback: bool,
    pub matching: usize,
    /// `matching` is estimated from a sample.
    pub estimated: bool,
    pub live: usize,
    pub ef: usize,
    pub filter_micros: u64,
    pub search_micros: u64,
}

/// Slot table plus vector index of one collection.
pub(crate) struct IndexState {
    slots: RwLock<SlotTable>,
    vectors: RwLock<Box<dyn VectorIndex>>,
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

/// What one filter's graph walks cost. The planner's model prices a walk at a share `s` as
/// `1/s` plain searches, which holds for filters spread evenly over the space; a filter whose
/// matches sit in one region (a tenant, a language) can cost several times that, since the
/// walk crosses the region around the query first. Its own measurement then prices it.
struct WalkCost {
    filter: Filter,
    /// `applied_items` when last measured.
    at: u64,
    /// Nanoseconds of one walk at the beam width of the index's [`plan::Costs`].
    ns: f64,
}

/// A filter's last selectivity sample.
struct Estimate {
    filter: Filter,
    /// `applied_items` when sampled.
    at: u64,
    hits: usize,
    sampled: usize,
}

/// The exact matching set of a repeated filter at one version.
struct KeptSet {
    hash: u64,
    filter: Filter,
    /// `applied_items` when computed: valid only while it has not moved.
    version: u64,
    bits: Arc<SlotBitset>,
}

/// A filter's hash, the key of the planner's per-filter caches (equal filters hash alike; a
/// filter with a NaN bound never equals itself, so it is simply never found there).
fn filter_hash(filter: &Filter) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    filter.hash(&mut h);
    h.finish()
}

/// Matching sets kept for repeated filters (each is one bit per slot).
const SETS_KEPT: usize = 16;

/// Filters whose selectivity estimate is kept.
const ESTIMATES_KEPT: usize = 256;

/// An image of an HNSW index for a checkpoint.
pub(crate) struct Snapshot {
    pub slot_ids: Vec<EntityId>,
    pub graph: Vec<u8>,
}

impl IndexState {
    /// An empty index for `config`; HNSW inserts of a write group use up to `threads` threads.
    pub(crate) fn new(config: &CollectionConfig, threads: usize) -> Self {
        let metric = IndexMetric::from(config.metric);
        let dim = config.dim as usize;
        let vectors: Box<dyn VectorIndex> = match config.index {
            IndexKind::Exact => Box::new(FlatIndex::new(dim, metric)),
            IndexKind::Hnsw {
                m, ef_construction, ..
            } => Box::new(HnswIndex::new(
                dim,
                metric,
                m as usize,
                ef_construction as usize,
                threads,
            )),
        };
        let state = Self::from_parts(SlotTable::default(), vectors);
        *write(&state.payload) = PayloadIndex::new(&config.payload_indexes);
        state
    }

    pub(crate) fn from_parts(slots: SlotTable, vectors: Box<dyn VectorIndex>) -> Self {
        IndexState {
            slots: RwLock::new(slots),
            vectors: RwLock::new(vectors),
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
                Apply::Postings { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        write(&self.vectors).reserve(needed);
        let vectors = read(&self.vectors);
        let sets: Vec<(u32, &[f32])> = applies
            .iter()
            .filter_map(|a| match a {
                Apply::Set { slot, vector, .. } => Some((*slot, vector.as_slice())),
                Apply::Remove { .. } | Apply::Postings { .. } => None,
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
        vectors
            .insert(&sets)
            .map_err(|e| corrupted(format!("vector index refused an insert: {e}")))?;
        let removed: Vec<u32> = applies
            .iter()
            .filter_map(|a| match a {
                Apply::Remove { slot } => Some(*slot),
                Apply::Set { .. } | Apply::Postings { .. } => None,
            })
            .collect();
        if !removed.is_empty() {
            vectors.remove(&removed);
        }
        drop(vectors);
        let mut table = write(&self.slots);
        let mut payload = write(&self.payload);
        // The version moves under the slot table's write lock, so a search (which reads it
        // under the read lock) always pairs a version with the state it names.
        self.applied_items.fetch_add(items, Ordering::Relaxed);
        for a in applies {
            match a {
                Apply::Set { slot, id, .. } => table.claim(slot, id),
                Apply::Remove { slot } => table.release(slot),
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

    /// Evaluates `filter` over the live slots and the payload postings.
    pub(crate) fn evaluate(
        &self,
        filter: &crate::filter::Filter,
        id_slots: &HashMap<EntityId, u32>,
    ) -> Result<crate::payload::eval::Evaluated, FilterProblem> {
        let table = read(&self.slots);
        let payload = read(&self.payload);
        crate::payload::eval::evaluate(
            filter,
            &crate::payload::eval::Context {
                index: &payload,
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

    /// Searches among the live slots that `input` allows, with the plan [`plan::choose`]
    /// picks, all under one hold of the slot table's lock (so postings, live slots and vectors
    /// are of one moment). A filter with conditions the postings cannot answer comes back as
    /// [`Searched::NeedsPayloads`] with the superset to check.
    pub(crate) fn search_planned(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        input: FilterInput<'_>,
    ) -> Result<Searched, FilterProblem> {
        let t0 = Instant::now();
        let table = read(&self.slots);
        let payload = read(&self.payload);
        let live = table.live();
        let live_count = table.live_count();
        let mut checker = None;
        let mut filter_cx = None;
        // The filter and its hash, for the per-filter walk costs.
        let mut filter_key = None;
        let mut expect = None;
        let (bits, matching, exact) = match input {
            FilterInput::Slots {
                mut bits,
                expect: e,
            } => {
                bits.intersect_with(live);
                expect = Some(e);
                let n = bits.len();
                (Some(Arc::new(bits)), n, true)
            }
            FilterInput::Filter { filter, id_slots } => {
                let hash = filter_hash(filter);
                filter_key = Some((hash, filter));
                let version = self.applied_items.load(Ordering::Relaxed);
                if let Some(b) = self.cached_set(hash, filter, version) {
                    // A set computed for this filter at this same version: exact, and nothing
                    // to evaluate. Every change of the live slots (hides too) moves the
                    // version, so it holds live slots only, and it is shared, not copied.
                    debug_assert!(b.iter().all(|s| live.contains(s)));
                    let n = b.len();
                    (Some(b), n, true)
                } else {
                    let cx = Context {
                        index: &payload,
                        universe: live,
                        id_slots,
                    };
                    let Some(ch) = Checker::compile(filter, &payload, id_slots)? else {
                        return Ok(Searched::NeedsPayloads(evaluate(filter, &cx)?.bits));
                    };
                    // The same filter with no write since its last evaluation.
                    let repeated = self.seen_again(hash, version);
                    // Clearly selective filters (small postings) skip the sample.
                    let small = upper_bound(filter, &payload)
                        .is_some_and(|b| b * SAMPLE < MIN_SAMPLE_HITS * live_count);
                    let (hits, sampled) = if small {
                        (0, 0)
                    } else {
                        self.estimate(hash, filter, live_count, || sample(live, |s| ch.matches(s)))
                    };
                    let exact_set = if small
                        || sampled == live_count
                        || hits * SAMPLE < MIN_SAMPLE_HITS * sampled
                    {
                        // A small or exactly known set: materialise it from the postings (a
                        // union of postings and a pass over the live words), and keep it
                        // if the filter repeats with no write in between.
                        let b = Arc::new(evaluate(filter, &cx)?.bits);
                        if repeated {
                            self.keep_set(hash, filter, version, &b);
                        }
                        Some(b)
                    } else if repeated {
                        // The same filter again with no write in between: compute the set
                        // once (one pass over the live slots) and keep it until the next write.
                        let mut b = SlotBitset::new();
                        for s in live.iter().filter(|&s| ch.matches(s)) {
                            b.insert_uncounted(s);
                        }
                        b.recount();
                        let b = Arc::new(b);
                        self.keep_set(hash, filter, version, &b);
                        Some(b)
                    } else {
                        None
                    };
                    checker = Some(ch);
                    filter_cx = Some((filter, cx));
                    match exact_set {
                        Some(b) => {
                            let n = b.len();
                            (Some(b), n, true)
                        }
                        None => (None, hits * live_count / sampled.max(1), false),
                    }
                }
            }
        };
        let filter_micros = t0.elapsed().as_micros() as u64;
        let t1 = Instant::now();
        let vectors = read(&self.vectors);
        let selectivity = matching as f64 / live_count.max(1) as f64;
        let walked = filter_key.and_then(|(hash, f)| self.walk_cost(hash, f, live_count));
        let costs = self
            .costs(&table, vectors.as_ref(), query, k, ef)
            .map(|c| c.with_walk(walked, selectivity));
        let (mut plan, ef) = plan::choose(matching, exact, live_count, k, ef, costs.as_ref());
        if plan == Plan::FilteredGraph && plan::post_filter_pays(matching, live_count, k, ef) {
            plan = Plan::PostFilter;
        }
        let materialise = |bits| materialise(bits, filter_cx.as_ref());
        let passes = |s: u32| match (&bits, &checker) {
            (Some(b), _) => b.contains(s),
            (None, Some(ch)) => live.contains(s) && ch.matches(s),
            (None, None) => false,
        };
        let mut fallback = false;
        let t_plan = Instant::now();
        let mut found = match plan {
            Plan::NoMatches => Vec::new(),
            Plan::Unfiltered => Self::unfiltered(&table, vectors.as_ref(), query, k, ef),
            Plan::ExactScan => {
                let b = materialise(&bits)?;
                let t = Instant::now();
                let r = vectors.scan(query, k, &b);
                self.observe(|c| c.observe_scan(t.elapsed().as_nanos() as f64, b.len()));
                r
            }
            Plan::PostFilter => {
                // The plain search's whole beam, then the filter: when at least `k` of the
                // beam pass, they are the nearest matching entities the graph can see.
                let pool = Self::unfiltered(&table, vectors.as_ref(), query, ef, ef);
                let r: Vec<(u32, f32)> = pool.into_iter().filter(|&(s, _)| passes(s)).collect();
                if r.len() >= k.min(matching) {
                    let ns = t_plan.elapsed().as_nanos() as f64;
                    self.observe(|c| c.observe_graph(ns, 1.0, ef));
                }
                r
            }
            Plan::FilteredGraph => Vec::new(),
        };
        if plan == Plan::PostFilter && found.len() < k.min(matching) {
            // The beam held too few matches (a filter far from this query): walk instead.
            fallback = true;
        }
        if plan == Plan::FilteredGraph || (plan == Plan::PostFilter && fallback) {
            let t = Instant::now();
            found = vectors.search_by(query, k, ef, &passes, selectivity);
            if found.len() < k.min(matching) {
                fallback = true;
                found = vectors.scan(query, k, &*materialise(&bits)?);
            } else if plan == Plan::FilteredGraph {
                let ns = t.elapsed().as_nanos() as f64;
                self.observe(|c| c.observe_graph(ns, selectivity, ef));
                if let (Some((hash, f)), Some(c)) = (filter_key, costs) {
                    let at_base = ns * c.ef.max(1) as f64 / ef.max(1) as f64;
                    self.observe_walk(hash, f, at_base, live_count);
                }
            }
        }
        if plan == Plan::Unfiltered {
            let ns = t_plan.elapsed().as_nanos() as f64;
            self.observe(|c| c.observe_graph(ns, 1.0, ef));
        }
        drop(vectors);
        let mut hits: Vec<(EntityId, f32)> = found
            .into_iter()
            .filter_map(|(slot, d)| {
                let id = table.id(slot)?;
                match expect {
                    Some(e) if e.get(&slot) != Some(&id) => None,
                    _ => Some((id, d)),
                }
            })
            .collect();
        hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        Ok(Searched::Done(Planned {
            hits,
            plan,
            fallback,
            matching,
            estimated: !exact,
            live: live_count,
            ef,
            filter_micros,
            search_micros: t1.elapsed().as_micros() as u64,
        }))
    }

    /// A filter's sample, from the cache while the collection has changed by under 1/32 of
    /// its size since it was taken (repeated filters, such as a tenant's, skip the sampling;
    /// an outdated estimate could only make a plan slower, never a result wrong).
    ///
    /// Returns `(hits, sampled)`.
    fn estimate(
        &self,
        hash: u64,
        filter: &Filter,
        live: usize,
        take: impl FnOnce() -> (usize, usize),
    ) -> (usize, usize) {
        let now = self.applied_items.load(Ordering::Relaxed);
        let kept = lock(&self.estimates).get(&hash).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| e.filter == *filter)
                .map(|e| (e.at, e.hits, e.sampled))
        });
        if let Some((at, hits, sampled)) = kept
            && now.saturating_sub(at) <= (live / 32) as u64
        {
            return (hits, sampled);
        }
        let (hits, sampled) = take();
        let mut cache = lock(&self.estimates);
        if cache.len() >= ESTIMATES_KEPT {
            cache.clear();
        }
        let bucket = cache.entry(hash).or_default();
        bucket.retain(|e| e.filter != *filter);
        bucket.push(Estimate {
            filter: filter.clone(),
            at: now,
            hits,
            sampled,
        });
        (hits, sampled)
    }

    /// The matching set of `filter` (whose hash is `hash`) computed at `version`, if kept.
    /// Exact: every change of postings or slots, hiding included, bumps the version.
    fn cached_set(&self, hash: u64, filter: &Filter, version: u64) -> Option<Arc<SlotBitset>> {
        let sets = lock(&self.filter_sets);
        sets.iter()
            .find(|k| k.hash == hash && k.version == version && k.filter == *filter)
            .map(|k| k.bits.clone())
    }

    /// Whether a filter with this hash was already evaluated at `version` (recorded now if
    /// not): its matching set is then worth keeping. A hash collision only keeps one set that
    /// is not needed.
    fn seen_again(&self, hash: u64, version: u64) -> bool {
        let mut seen = lock(&self.seen);
        if seen.contains(&(hash, version)) {
            return true;
        }
        if seen.len() >= ESTIMATES_KEPT {
            seen.pop_front();
        }
        seen.push_back((hash, version));
        false
    }

    /// Keeps the matching set of `filter` at `version` (a few, for repeated filters).
    fn keep_set(&self, hash: u64, filter: &Filter, version: u64, bits: &Arc<SlotBitset>) {
        let mut sets = lock(&self.filter_sets);
        sets.retain(|k| k.version == version);
        if sets.len() >= SETS_KEPT {
            sets.remove(0);
        }
        sets.push(KeptSet {
            hash,
            filter: filter.clone(),
            version,
            bits: Arc::clone(bits),
        });
    }

    /// The measured walk cost of `filter` (ns at the costs' beam width), unless the collection
    /// changed by more than a 32nd of `live` since it was measured.
    fn walk_cost(&self, hash: u64, filter: &Filter, live: usize) -> Option<f64> {
        let now = self.applied_items.load(Ordering::Relaxed);
        lock(&self.walks)
            .get(&hash)
            .filter(|w| w.filter == *filter && now.saturating_sub(w.at) <= (live / 32) as u64)
            .map(|w| w.ns)
    }

    /// Folds a walk of `filter` that took `ns` (at the costs' beam width) into its cost: the
    /// first measurement (or the first since it went stale, as in [`Self::walk_cost`])
    /// replaces it.
    fn observe_walk(&self, hash: u64, filter: &Filter, ns: f64, live: usize) {
        let now = self.applied_items.load(Ordering::Relaxed);
        let mut walks = lock(&self.walks);
        if walks.len() >= ESTIMATES_KEPT && !walks.contains_key(&hash) {
            walks.clear();
        }
        match walks.get_mut(&hash) {
            Some(w) if w.filter == *filter && now.saturating_sub(w.at) <= (live / 32) as u64 => {
                w.ns += plan::OBSERVED_WEIGHT * (ns - w.ns);
                w.at = now;
            }
            _ => {
                walks.insert(
                    hash,
                    WalkCost {
                        filter: filter.clone(),
                        at: now,
                        ns,
                    },
                );
            }
        }
    }

    /// Folds one observed plan execution into the measured costs (if there are any).
    fn observe(&self, f: impl FnOnce(&mut plan::Costs)) {
        if let Some(c) = lock(&self.costs).as_mut() {
            f(c);
        }
    }

    /// The measured costs of this index (HNSW only), measured now if missing or stale.
    fn costs(
        &self,
        table: &SlotTable,
        vectors: &dyn VectorIndex,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Option<plan::Costs> {
        vectors.as_hnsw()?;
        let live = table.live_count();
        let mut cached = lock(&self.costs);
        if let Some(c) = *cached
            && c.fits(live)
        {
            return Some(c);
        }
        let best = |f: &mut dyn FnMut()| {
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_nanos() as f64
                })
                .fold(f64::INFINITY, f64::min)
        };
        let graph_ns = best(&mut || {
            std::hint::black_box(Self::unfiltered(table, vectors, query, k, ef));
        });
        let mut subset = SlotBitset::new();
        sample(table.live(), |s| {
            subset.insert(s);
            false
        });
        // One run only: a repeat would find the sample in cache, which real scans do not.
        let t = Instant::now();
        std::hint::black_box(vectors.scan(query, k, &subset));
        let scan_ns = t.elapsed().as_nanos() as f64 / subset.len().max(1) as f64;
        let c = plan::Costs::new(scan_ns, subset.len(), graph_ns, ef, live);
        *cached = Some(c);
        Some(c)
    }

    /// The plain index search over every live slot.
    fn unfiltered(
        table: &SlotTable,
        vectors: &dyn VectorIndex,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Vec<(u32, f32)> {
        // Exactly the live slots are held when nothing is hidden and no insert is in flight
        // (counts are enough: live ⊆ allocated, and held ⊇ allocated between applies).
        // (Equal counts could still hide one slot being inserted while another is mid-update;
        // the inserting one is then dropped by the caller, so such a search returns one hit
        // fewer — never a wrong one.)
        let all_held = table.live_count() == table.allocated_count()
            && vectors.held() == Some(table.live_count());
        vectors.search(query, k, ef.max(k), table.live(), all_held)
    }

    /// The `k` nearest live entities: `(id, distance)` nearest first, ties by id.
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(EntityId, f32)> {
        let table = read(&self.slots);
        let vectors = read(&self.vectors);
        let found = Self::unfiltered(&table, vectors.as_ref(), query, k, ef);
        drop(vectors);
        let mut hits: Vec<(EntityId, f32)> = found
            .into_iter()
            .filter_map(|(slot, d)| table.id(slot).map(|id| (id, d)))
            .collect();
        hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        hits
    }

    /// Moves `other`'s contents into `self` (writer recovery: handles keep their `Arc`).
    pub(crate) fn replace_from(&self, other: IndexState) {
        let IndexState {
            slots,
            vectors,
            payload,
            ..
        } = other;
        let _apply = lock(&self.apply_lock);
        *write(&self.vectors) = vectors.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut table = write(&self.slots);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Metric;

    fn id(n: u128) -> EntityId {
        EntityId::from_u128(n)
    }

    fn set(slot: u32, n: u128, v: &[f32]) -> Apply {
        Apply::Set {
            slot,
            id: id(n),
            vector: v.to_vec(),
        }
    }

    /// 3000 random 4-d points with payload `g = i % 4` (indexed as integer).
    fn grouped() -> (IndexState, Vec<Vec<f32>>) {
        use crate::config::PayloadIndexKind;
        let config =
            CollectionConfig::new(4, Metric::L2).with_payload_index("g", PayloadIndexKind::Integer);
        let s = IndexState::new(&config, 2);
        let mut x = 12345u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32
        };
        let vectors: Vec<Vec<f32>> = (0..3000).map(|_| (0..4).map(|_| rnd()).collect()).collect();
        let mut applies = Vec::new();
        for (i, v) in vectors.iter().enumerate() {
            applies.push(set(i as u32, i as u128 + 1, v));
            applies.push(Apply::Postings {
                slot: i as u32,
                remove: Vec::new(),
                add: vec![PostingKey {
                    field: "g".into(),
                    value: Some(crate::payload::int_key((i % 4) as i64)),
                }],
            });
        }
        s.apply(applies).unwrap();
        (s, vectors)
    }

    fn planned(s: &IndexState, q: &[f32], filter: &Filter) -> Planned {
        let ids = HashMap::new();
        let input = FilterInput::Filter {
            filter,
            id_slots: &ids,
        };
        match s.search_planned(q, 10, 64, input).unwrap() {
            Searched::Done(p) => p,
            Searched::NeedsPayloads(_) => panic!("every condition is indexed"),
        }
    }

    #[test]
    fn a_kept_matching_set_never_outlives_a_hide() {
        use crate::filter::{Condition, Filter};
        let (s, vectors) = grouped();
        let quarter = Filter::new().must(Condition::matches_value("g", 0i64));
        let q = &vectors[8];
        // The first search estimates, the second keeps the exact set, the third uses it.
        assert!(planned(&s, q, &quarter).estimated);
        for _ in 0..2 {
            assert_eq!(planned(&s, q, &quarter).matching, 750);
        }
        let nearest = planned(&s, q, &quarter).hits[0].0;
        let slot = (nearest.as_uuid().as_u128() - 1) as u32;
        // A hide moves the version: estimated afresh, then kept and used again, never with
        // the hidden slot.
        s.set_hidden(&[slot], true);
        for i in 0..3 {
            let p = planned(&s, q, &quarter);
            assert_eq!(p.estimated, i == 0);
            assert!(p.estimated || p.matching == 749, "{}", p.matching);
            assert!(p.hits.iter().all(|h| h.0 != nearest));
        }
        s.set_hidden(&[slot], false);
        for i in 0..3 {
            let p = planned(&s, q, &quarter);
            assert!(p.estimated || p.matching == 750, "{}", p.matching);
            assert_eq!(p.hits[0].0, nearest, "search {i}");
        }
    }

    #[test]
    fn a_filters_measured_walks_price_its_plan() {
        use crate::filter::{Condition, Filter};
        let (s, vectors) = grouped();
        let half = Filter::new().must(Condition::matches_any("g", [0i64, 1]));
        let quarter = Filter::new().must(Condition::matches_value("g", 2i64));
        // The model: walks cheap, scans dear.
        *lock(&s.costs) = Some(plan::Costs::new(1e6, 512, 1.0, 64, 3000));
        let q = &vectors[5];
        assert_eq!(planned(&s, q, &half).plan, Plan::FilteredGraph);
        let hash = filter_hash(&half);
        let measured = s.walk_cost(hash, &half, 3000);
        assert!(measured.is_some_and(|ns| ns > 0.0), "{measured:?}");
        // This filter's walks turn out to cost more than scanning its 1500 slots (1.5 s):
        // its plan follows, another filter's does not.
        s.observe_walk(hash, &half, 1e14, 3000);
        assert!(s.walk_cost(hash, &half, 3000).is_some_and(|ns| ns > 1e12));
        assert_eq!(planned(&s, q, &half).plan, Plan::ExactScan);
        assert_eq!(planned(&s, q, &quarter).plan, Plan::FilteredGraph);
        // Once the collection has changed by more than a 32nd, the measurement is dropped.
        let rewrites: Vec<Apply> = (0..100u32)
            .map(|i| set(i, i as u128 + 1, &vectors[i as usize]))
            .collect();
        s.apply(rewrites).unwrap();
        assert_eq!(s.walk_cost(hash, &half, 3000), None);
        assert_eq!(planned(&s, q, &half).plan, Plan::FilteredGraph);
    }

    #[test]
    fn plans_follow_measured_costs_and_keep_recall() {
        use crate::filter::{Condition, Filter};
        let (s, vectors) = grouped();
        let quarter = Filter::new().must(Condition::matches_value("g", 0i64));
        let most = Filter::new()
            .must_not(Condition::matches_value("g", 3i64))
            .must_not(Condition::has_id([id(7)]));
        let costs = |scan_ns, graph_ns| {
            *lock(&s.costs) = Some(plan::Costs::new(scan_ns, 512, graph_ns, 64, 3000));
        };
        for (filter, keep, scan_ns, graph_ns, want) in [
            (
                &quarter,
                [true, false, false, false],
                1e6,
                1.0,
                Plan::FilteredGraph,
            ),
            (
                &quarter,
                [true, false, false, false],
                1e-6,
                1e9,
                Plan::ExactScan,
            ),
            (&most, [true, true, true, false], 1e6, 1.0, Plan::PostFilter),
        ] {
            costs(scan_ns, graph_ns);
            lock(&s.estimates).clear();
            lock(&s.filter_sets).clear();
            lock(&s.seen).clear();
            let share = keep.iter().filter(|k| **k).count() as i64 * 750;
            let (mut found, mut wanted) = (0, 0);
            for qi in (0..3000).step_by(150) {
                let q = &vectors[qi];
                let p = planned(&s, q, filter);
                assert_eq!(p.plan, want);
                // The first search estimates from a sample; the same filter again on an
                // unchanged collection computes the set once and keeps it (exact).
                assert_eq!(p.estimated, qi == 0, "query {qi}");
                assert!((p.matching as i64 - share).abs() < 150, "{}", p.matching);
                let mut brute: Vec<(f32, EntityId)> = (0..3000)
                    .filter(|i| keep[i % 4])
                    .map(|i| {
                        let d: f32 = vectors[i]
                            .iter()
                            .zip(q)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum();
                        (d, id(i as u128 + 1))
                    })
                    .collect();
                brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let want_ids: Vec<EntityId> = brute.iter().take(10).map(|b| b.1).collect();
                assert_eq!(p.hits.len(), 10);
                for (hid, _) in &p.hits {
                    let n = (hid.as_uuid().as_u128() - 1) as usize;
                    assert!(keep[n % 4], "hit {n} fails the filter");
                }
                wanted += 10;
                found += want_ids
                    .iter()
                    .filter(|w| p.hits.iter().any(|h| h.0 == **w))
                    .count();
            }
            assert!(
                found as f64 / wanted as f64 >= 0.95,
                "{want:?}: {found}/{wanted}"
            );
        }
    }

    #[test]
    fn exact_ties_break_by_id_even_at_the_boundary() {
        let s = IndexState::new(
            &CollectionConfig::new(2, Metric::L2).with_index(IndexKind::Exact),
            1,
        );
        s.apply(vec![
            set(0, 5, &[1.0, 0.0]),
            set(1, 3, &[1.0, 0.0]),
            set(2, 9, &[0.0, 0.0]),
            set(3, 1, &[5.0, 5.0]),
            set(4, 2, &[0.0, 1.0]),
        ])
        .unwrap();
        let ids: Vec<_> = s.search(&[0.0, 0.0], 2, 2).iter().map(|h| h.0).collect();
        assert_eq!(
            ids,
            vec![id(9), id(2)],
            "three tie at distance 1: smallest id wins"
        );
        let r = s.search(&[0.0, 0.0], 4, 4);
        assert_eq!(
            r.iter().map(|h| h.0).collect::<Vec<_>>(),
            vec![id(9), id(2), id(3), id(5)]
        );
        assert_eq!(r[1].1, 1.0);
    }

    #[test]
    fn hidden_and_removed_slots_never_come_back() {
        let s = IndexState::new(
            &CollectionConfig::new(1, Metric::Dot).with_index(IndexKind::Exact),
            1,
        );
        s.apply(
            (0..4)
                .map(|i| set(i, u128::from(i) + 1, &[i as f32]))
                .collect(),
        )
        .unwrap();
        s.set_hidden(&[3], true);
        assert_eq!(s.search(&[1.0], 1, 1)[0].0, id(3));
        s.set_hidden(&[3], false);
        assert_eq!(s.search(&[1.0], 1, 1)[0].0, id(4));
        s.apply(vec![Apply::Remove { slot: 3 }]).unwrap();
        assert_eq!(s.live_count(), 3);
        assert!(s.search(&[1.0], 10, 10).iter().all(|h| h.0 != id(4)));
        let mut c = SlotCursor::default();
        assert_eq!(s.next_slot(&mut c), 3, "freed slot reused");
    }
}
