//! [`VectorIndex`] over the [`Hnsw`] graph.
//!
//! Inserts of a whole write group run on up to `threads` threads (`insert_concurrent` is safe
//! from many threads). Searches pass the collection's live-slot bitset as the filter, so a
//! slot hidden by a committing delete never comes back; when the graph holds exactly the live
//! slots (the common case: no delete committing, no insert in flight) the cheaper unfiltered
//! search gives the same answer.
//!
//! # Deferred linking
//! A reopen loads the checkpoint's graph and replays the later changes into a [`Delta`]
//! instead of the graph: deleted and replaced nodes become *stale* (traversed but never
//! returned), new vectors wait in a list that every search scans exactly and merges with the
//! graph's answer. The collection is searchable at once; a background linker
//! ([`VectorIndex::link_step`], under the collection's apply lock) then removes the stale
//! nodes by consolidated removals and links the pending vectors, batch by batch. While a delta
//! exists, a write of a slot it knows (pending or stale) goes to it, so that the slot's newest
//! state is the delta's; other writes go straight to the graph, so the delta only shrinks.
//! Searches then always pass their allowed set to the graph, and a checkpoint links
//! everything first. Once drained the delta is gone for good (`deferred` never becomes true
//! again).
//!
//! # Quantization
//! An index configured with a [`Quantization`] walks `f32` until the graph holds
//! [`TRAIN_MIN`] vectors; then it trains the quantizer from a sample of them and encodes them
//! all ([`Hnsw::quantize`]), and retrains each time the graph has grown [`RETRAIN_GROWTH`]
//! times past its last sample, until a sample reaches [`TRAIN_SAMPLE`] vectors. Training runs
//! in an insert or a link step (under the collection's apply lock, so no other change runs),
//! while searches go on. From the first training on, inserts also search for their neighbours
//! on the codes (exact distances still choose the links: `hnsw/codes.rs`, invariant 1). A
//! checkpoint keeps the trained state, so a reopen does not retrain.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::index::bitset::SlotBitset;
use crate::index::delta::{Delta, merge};
use crate::index::hnsw::{Hnsw, HnswParams, Metric as HnswMetric, Quantizer};
use crate::index::{HeldVectors, IndexMetric, VectorIndex, top_k};
use crate::model::config::Quantization;
use crate::model::sync::{read, write};

/// Items below which a batch is inserted on the calling thread.
const PARALLEL_MIN: usize = 64;

/// Pending vectors linked per [`VectorIndex::link_step`] (the apply lock is held meanwhile,
/// so this bounds how long a write waits for the linker: tens of milliseconds).
const LINK_BATCH: usize = 256;

/// Stale nodes removed per [`VectorIndex::link_step`]. Each step is one consolidated removal
/// (a pass over every list), holding off inserts, and so writes, meanwhile; smaller steps
/// repair some lists more than once but keep a write's wait to a fraction of a second.
/// (Small in unit tests, so that they meet several steps.)
const STALE_BATCH: usize = if cfg!(test) { 128 } else { 2048 };

/// Vectors the graph holds before a quantized index trains its quantizer (the walk uses
/// `f32` until then).
pub(crate) const TRAIN_MIN: usize = if cfg!(test) { 256 } else { 1024 };

/// A quantized index retrains once the graph holds this many times the vectors of its last
/// training sample: at 1 k, 8 k and 64 k vectors when inserted one by one. Each retraining
/// re-encodes every vector while inserts wait; with inserts searching on the codes that wait
/// is a visible share of a build. 8 (from 4) dropped the retraining at 8 k of a 9 k build
/// (mnist10k: 1.04 -> 0.91 s with 2 threads) and one of two on pydoc (34 k: 3.29 -> 3.19 s),
/// with recall@10 unchanged or higher: a rotated code trains a mean and a few dozen centers,
/// which a sample of a few thousand already fixes (`docs/quantization.md`).
pub(crate) const RETRAIN_GROWTH: u64 = 8;

/// The largest training sample; once one is this large the index stops retraining.
pub(crate) const TRAIN_SAMPLE: usize = 32_768;

/// Whether an index of `len` vectors whose codes were trained from a sample of `trained` (0:
/// never) trains now. Samples hold `min(len, TRAIN_SAMPLE)` vectors, so this holds at most
/// `⌈log8(TRAIN_SAMPLE / TRAIN_MIN)⌉ + 1` times over an index's life (3; 4 in unit tests).
fn training_due(len: u64, trained: u64) -> bool {
    if trained == 0 {
        len >= TRAIN_MIN as u64
    } else {
        trained < TRAIN_SAMPLE as u64 && len >= trained * RETRAIN_GROWTH
    }
}

/// The HNSW index of one collection.
pub(crate) struct HnswIndex {
    graph: Hnsw,
    threads: usize,
    /// The codes the walk should rank by (trained once the graph is large enough); changed
    /// online by [`HnswIndex::set_quantization`].
    quantization: RwLock<Quantization>,
    /// How many times [`HnswIndex::set_quantization`] ran (part of the codes' generation).
    requantized: AtomicU64,
    /// Training failed (a vector the code cannot take): the walk stays on `f32`.
    untrainable: AtomicBool,
    /// Changes accepted but not yet in the graph (see the module docs).
    delta: RwLock<Delta>,
    /// Whether `delta` may be non-empty. Starts true only for [`HnswIndex::deferred`]; set
    /// false (under `delta`'s write lock) once the delta is drained, and never true again, so
    /// a reader that sees false may use the graph alone.
    deferred: AtomicBool,
    /// Until [`VectorIndex::finish_loading`], every change goes to the delta; after, only
    /// changes of slots it already knows.
    loading: AtomicBool,
}

impl HnswIndex {
    pub(crate) fn new(
        dim: usize,
        metric: IndexMetric,
        m: usize,
        ef_construction: usize,
        threads: usize,
    ) -> Self {
        let metric = match metric {
            IndexMetric::L2 => HnswMetric::L2,
            IndexMetric::Dot => HnswMetric::Dot,
            IndexMetric::L1 => HnswMetric::L1,
        };
        let params = HnswParams {
            m,
            ef_construction,
            ..HnswParams::new(dim, metric)
        };
        Self::wrap(Hnsw::new(params), threads, false)
    }

    /// Wraps a graph loaded from a checkpoint; changes wait in a delta until
    /// [`VectorIndex::link_step`] builds them in (or [`VectorIndex::finish_loading`] finds
    /// there were none).
    pub(crate) fn deferred(graph: Hnsw, threads: usize) -> Self {
        Self::wrap(graph, threads, true)
    }

    fn wrap(graph: Hnsw, threads: usize, deferred: bool) -> Self {
        let delta = Delta::new(graph.params().dim, graph.len());
        HnswIndex {
            graph,
            threads: threads.max(1),
            quantization: RwLock::new(Quantization::None),
            requantized: AtomicU64::new(0),
            untrainable: AtomicBool::new(false),
            delta: RwLock::new(delta),
            deferred: AtomicBool::new(deferred),
            loading: AtomicBool::new(deferred),
        }
    }

    /// Sets the codes the walk ranks by, trained once the graph holds [`TRAIN_MIN`] vectors.
    pub(crate) fn with_quantization(self, quantization: Quantization) -> Self {
        *write(&self.quantization) = quantization;
        self
    }

    /// The codes the walk should rank by.
    pub(crate) fn quantization(&self) -> Quantization {
        *read(&self.quantization)
    }

    /// Changes the codes online: `None` drops them (the walk ranks by `f32`); a code trains
    /// now from a fresh sample and encodes every vector, if the graph holds [`TRAIN_MIN`]
    /// (else once it does). Called with the current code, it retrains (on request, e.g. after
    /// the data drifted). Searches go on meanwhile (on the earlier codes); inserts and removals
    /// wait for the encoding. The caller holds the apply lock.
    ///
    /// # Errors
    /// Training failed (a vector the code cannot take); the walk then stays on `f32`.
    pub(crate) fn set_quantization(&self, quantization: Quantization) -> Result<(), String> {
        *write(&self.quantization) = quantization;
        self.untrainable.store(false, Ordering::Relaxed);
        self.requantized.fetch_add(1, Ordering::Relaxed);
        if quantization.is_none() || self.graph.len() < TRAIN_MIN {
            self.graph.unquantize();
            return Ok(());
        }
        self.train().inspect_err(|_| {
            self.graph.unquantize();
            self.untrainable.store(true, Ordering::Relaxed);
        })
    }

    /// Keeps the `f32` originals of a quantized index in a file in `dir` (see
    /// `index::originals`); an unquantized index, no directory, or a file that cannot be
    /// made leave them in memory.
    pub(crate) fn with_originals_in(mut self, dir: Option<&std::path::Path>) -> Self {
        self.place_originals(dir);
        self
    }

    /// Puts the `f32` originals where the current quantization wants them: in a file in
    /// `dir` for a quantized index (if they are not in one yet and `dir` is given), in
    /// memory for an unquantized one, whose walk reads them at every step. Used after an
    /// online quantization change; `&mut self`, so no search runs meanwhile.
    pub(crate) fn place_originals(&mut self, dir: Option<&std::path::Path>) {
        if self.quantization().is_none() {
            self.graph.keep_vectors_in_memory();
            return;
        }
        #[cfg(unix)]
        if let Some(dir) = dir
            && !self.graph.vectors_in_file()
            && let Ok(file) = crate::index::originals::originals_file(dir)
        {
            // On failure the vectors stay in memory: only the memory saving is lost.
            let _ = self.graph.keep_vectors_in(file);
        }
        #[cfg(not(unix))]
        let _ = dir;
    }

    /// Trains (or retrains) the quantizer when the graph has grown enough (see the module
    /// docs). The caller holds the apply lock.
    fn maybe_train(&self) {
        if self.quantization().is_none() || self.untrainable.load(Ordering::Relaxed) {
            return;
        }
        let due = training_due(self.graph.len() as u64, self.graph.trained_on());
        if due && self.train().is_err() {
            self.untrainable.store(true, Ordering::Relaxed);
        }
    }

    /// Trains the quantizer from a sample of the graph's vectors and encodes them all.
    pub(crate) fn train(&self) -> Result<(), String> {
        let sample = self.graph.sample(TRAIN_SAMPLE);
        let rows: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
        let p = self.graph.params();
        let quantizer = Quantizer::train(self.quantization(), &rows, p.dim, p.metric, p.seed ^ 1)?;
        self.graph
            .quantize(quantizer, rows.len() as u64, self.threads)
            .map_err(|e| e.to_string())
    }

    /// The delta, if one may be non-empty (read-locked).
    fn delta(&self) -> Option<std::sync::RwLockReadGuard<'_, Delta>> {
        if !self.deferred.load(Ordering::Acquire) {
            return None;
        }
        let d = read(&self.delta);
        // Checked again under the lock: the flag is cleared under the write lock.
        self.deferred.load(Ordering::Acquire).then_some(d)
    }

    /// Inserts into the graph on up to `threads` threads.
    fn insert_graph(&self, items: &[(u32, &[f32])]) -> Result<(), String> {
        let threads = self.threads.min(items.len().div_ceil(PARALLEL_MIN)).max(1);
        if threads == 1 {
            for (slot, v) in items {
                self.graph
                    .insert_concurrent(*slot, v)
                    .map_err(|e| e.to_string())?;
            }
            return Ok(());
        }
        let next = AtomicUsize::new(0);
        let first_error = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((slot, v)) = items.get(i) else {
                            break;
                        };
                        if let Err(e) = self.graph.insert_concurrent(*slot, v) {
                            let mut f = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            f.get_or_insert(e.to_string());
                            break;
                        }
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Searches the graph (leaving out stale nodes) and the pending vectors, for a reader
    /// holding `delta`'s read lock.
    #[allow(clippy::too_many_arguments)]
    fn search_with_delta(
        &self,
        delta: &Delta,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        allowed: &dyn Fn(u32) -> bool,
        share: f64,
    ) -> Vec<(u32, f32)> {
        // Pending first: a vector the linker moves into the graph meanwhile is then found in
        // one place or both (merged), never in neither.
        let dist = |a: &[f32], b: &[f32]| self.graph.distance(a, b);
        let pending = top_k(delta.scan(query, dist, allowed).into_iter(), k);
        let graph = self.graph.search_oversampled(
            query,
            k,
            ef,
            oversampling,
            Some(&|s| !delta.is_stale(s) && allowed(s)),
            share,
        );
        top_k(merge(graph, pending).into_iter(), k)
    }

    /// The graph (for checkpoints).
    pub(crate) fn graph(&self) -> &Hnsw {
        &self.graph
    }
}

impl VectorIndex for HnswIndex {
    fn reserve(&mut self, slots: usize) {
        let cap = self.graph.capacity();
        if slots > cap {
            // Grow geometrically (growing moves every array), by a quarter: amortised O(1)
            // per insert while wasting at most 25 % of the memory.
            self.graph.reserve(slots.max(cap + cap / 4).max(1024));
        }
    }

    fn insert(&self, items: &[(u32, &[f32])]) -> Result<(), String> {
        if !self.deferred.load(Ordering::Acquire) {
            self.insert_graph(items)?;
            self.maybe_train();
            return Ok(());
        }
        // Validate the whole batch first: on error nothing changes.
        let (dim, cap) = (self.graph.params().dim, self.graph.capacity());
        for (slot, v) in items {
            if v.len() != dim {
                return Err(format!(
                    "vector of slot {slot} has dimension {}, expected {dim}",
                    v.len()
                ));
            }
            if *slot as usize >= cap {
                return Err(format!("slot {slot} is beyond the capacity {cap}"));
            }
        }
        // Slots the delta knows change there (it holds their newest state); the others go
        // straight into the graph, so the delta only shrinks and the linker finishes. Only
        // apply-lock holders change the delta, so it stays as classified here.
        let mut direct: Vec<(u32, &[f32])> = Vec::with_capacity(items.len());
        let loading = self.loading.load(Ordering::Acquire);
        let mut delta = write(&self.delta);
        for &(slot, v) in items {
            if loading || delta.knows(slot) {
                delta.set(slot, v, self.graph.contains(slot));
            } else {
                direct.push((slot, v));
            }
        }
        drop(delta);
        let added = direct
            .iter()
            .filter(|(slot, _)| !self.graph.contains(*slot))
            .count();
        self.insert_graph(&direct)?;
        write(&self.delta).grew(added);
        self.maybe_train();
        Ok(())
    }

    fn remove(&self, slots: &[u32]) {
        if self.deferred.load(Ordering::Acquire) {
            let mut direct = Vec::with_capacity(slots.len());
            let loading = self.loading.load(Ordering::Acquire);
            let mut delta = write(&self.delta);
            for &s in slots {
                if loading || delta.knows(s) {
                    delta.remove(s, self.graph.contains(s));
                } else {
                    direct.push(s);
                }
            }
            drop(delta);
            let removed = self.graph.remove_batch_parallel(&direct, self.threads);
            write(&self.delta).shrank(removed);
            return;
        }
        // One exclusive section for the whole group: searches wait once, not per slot.
        self.graph.remove_batch_parallel(slots, self.threads);
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        allowed: &SlotBitset,
        all_held: bool,
    ) -> Vec<(u32, f32)> {
        if all_held && !self.deferring() {
            // The graph returns only its live nodes, which are exactly the allowed slots.
            return self
                .graph
                .search_oversampled(query, k, ef.max(k), oversampling, None, 1.0);
        }
        let held = self.held().unwrap_or(0).max(1);
        let share = allowed.len() as f64 / held as f64;
        self.search_by(query, k, ef, oversampling, &|s| allowed.contains(s), share)
    }

    fn search_by(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        allowed: &dyn Fn(u32) -> bool,
        share: f64,
    ) -> Vec<(u32, f32)> {
        if let Some(delta) = self.delta() {
            return self.search_with_delta(
                &delta,
                query,
                k,
                ef.max(k),
                oversampling,
                allowed,
                share,
            );
        }
        self.graph
            .search_oversampled(query, k, ef.max(k), oversampling, Some(allowed), share)
    }

    fn scan(
        &self,
        query: &[f32],
        k: usize,
        oversampling: f32,
        allowed: &SlotBitset,
    ) -> Vec<(u32, f32)> {
        match self.delta() {
            Some(delta) => {
                let dist = |a: &[f32], b: &[f32]| self.graph.distance(a, b);
                let pending = delta.scan(query, dist, |s| allowed.contains(s));
                let slots = allowed.iter().filter(|&s| !delta.is_stale(s));
                let graph = self.graph.scan_top(query, slots, k, oversampling);
                top_k(merge(graph, pending).into_iter(), k)
            }
            None => self.graph.scan_top(query, allowed.iter(), k, oversampling),
        }
    }

    fn held(&self) -> Option<usize> {
        match self.delta() {
            Some(delta) => Some(delta.view_len()),
            None => Some(self.graph.len()),
        }
    }

    fn holds(&self, slot: u32) -> Option<bool> {
        let in_graph = self.graph.contains(slot);
        Some(match self.delta() {
            Some(delta) => delta.holds(slot, in_graph),
            None => in_graph,
        })
    }

    fn pending(&self) -> usize {
        self.delta().map_or(0, |d| d.backlog())
    }

    fn deferring(&self) -> bool {
        self.deferred.load(Ordering::Acquire)
    }

    fn finish_loading(&self) {
        self.loading.store(false, Ordering::Release);
        let delta = write(&self.delta);
        if delta.is_empty() {
            self.deferred.store(false, Ordering::Release);
        }
    }

    fn link_step(&self) -> Result<bool, String> {
        if !self.deferred.load(Ordering::Acquire) {
            return Ok(false);
        }
        // Stale nodes leave first (a replaced node's slot must be free before its new vector
        // is linked there), by consolidated removals.
        let mut stale = read(&self.delta).stale_slots();
        stale.truncate(STALE_BATCH);
        if !stale.is_empty() {
            self.graph.remove_batch_parallel(&stale, self.threads);
            write(&self.delta).clear_stale(&stale);
            return Ok(true);
        }
        let batch = read(&self.delta).batch(LINK_BATCH);
        if !batch.is_empty() {
            let items: Vec<(u32, &[f32])> = batch.iter().map(|(s, v)| (*s, v.as_slice())).collect();
            self.insert_graph(&items)?;
            write(&self.delta).linked(&batch);
            self.maybe_train();
            return Ok(true);
        }
        let delta = write(&self.delta);
        if delta.is_empty() {
            debug_assert_eq!(delta.view_len(), self.graph.len());
            self.deferred.store(false, Ordering::Release);
            return Ok(false);
        }
        Ok(true)
    }

    fn with_vectors(&self, slots: &[u32], f: &mut dyn FnMut(&HeldVectors<'_>)) {
        // The view (see `delta`): a pending vector, else nothing for a stale node, else the
        // graph's. The delta's lock is taken before the graph's gate, as searches take them.
        let delta = self.delta();
        self.graph.with_vectors(slots, &mut |graph| match &delta {
            None => f(graph),
            Some(d) => {
                let view: Vec<Option<&[f32]>> = slots
                    .iter()
                    .zip(graph)
                    .map(|(&s, g)| match d.vector(s) {
                        Some(v) => Some(v),
                        None if d.is_stale(s) => None,
                        None => *g,
                    })
                    .collect();
                f(&view);
            }
        });
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes() + read(&self.delta).memory_bytes()
    }

    fn codes_generation(&self) -> u64 {
        // Each automatic training takes a larger sample than the one before (see the module
        // docs), and samples hold at most `TRAIN_SAMPLE` < 2^32 vectors; online changes count
        // in the high half.
        self.graph
            .trained_on()
            .wrapping_add(self.requantized.load(Ordering::Relaxed) << 32)
    }

    fn as_hnsw(&self) -> Option<&HnswIndex> {
        Some(self)
    }

    fn as_hnsw_mut(&mut self) -> Option<&mut HnswIndex> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const DIM: usize = 8;

    fn vector(i: u32, salt: u32) -> Vec<f32> {
        let mut s = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt as u64;
        (0..DIM)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    /// Checks the index against the model: counts, exact scans, and searches that return
    /// only model slots at their model distances, finding each probed vector itself.
    fn check(index: &HnswIndex, model: &HashMap<u32, Vec<f32>>, what: &str) {
        assert_eq!(index.held(), Some(model.len()), "{what}: held");
        let mut allowed = SlotBitset::new();
        for &s in model.keys() {
            allowed.insert(s);
            assert_eq!(index.holds(s), Some(true), "{what}: holds {s}");
        }
        for (n, (&slot, v)) in model.iter().enumerate().filter(|(n, _)| n % 7 == 0) {
            let exact = index.scan(v, 1, 1.0, &allowed);
            assert_eq!(exact[0], (slot, 0.0), "{what}: scan finds slot {slot}");
            let found = if n % 2 == 0 {
                index.search(v, 5, 64, 1.0, &allowed, true)
            } else {
                index.search_by(v, 5, 64, 1.0, &|s| allowed.contains(s), 1.0)
            };
            assert_eq!(found[0].0, slot, "{what}: search finds slot {slot}");
            for (s, d) in found {
                let want = model.get(&s).map(|m| l2(m, v));
                assert!(
                    want.is_some_and(|w| (w - d).abs() <= 1e-5 * w.max(1.0)),
                    "{what}: slot {s} is in the model, at distance {want:?}, not {d}"
                );
            }
        }
    }

    #[test]
    fn training_happens_a_few_times_then_never() {
        // Samples are min(len, TRAIN_SAMPLE) vectors (`Hnsw::sample`).
        for step in [1, 100, 1000, 8192, 50_000] {
            let (mut trained, mut trainings) = (0u64, 0);
            for len in (0..5_000_000u64).step_by(step) {
                if training_due(len, trained) {
                    trained = len.min(TRAIN_SAMPLE as u64);
                    trainings += 1;
                }
            }
            assert_eq!(trained, TRAIN_SAMPLE as u64, "step {step}");
            // 256, 2048, 16384 and a full sample (TRAIN_MIN is 256 in unit tests).
            assert!(trainings <= 4, "step {step}: {trainings} trainings");
        }
        assert!(!training_due(TRAIN_MIN as u64 - 1, 0));
    }

    #[test]
    fn a_deferred_batch_with_a_bad_item_changes_nothing() {
        let mut index = HnswIndex::new(DIM, IndexMetric::L2, 8, 64, 1);
        index.reserve(100);
        let v = vector(1, 0);
        index.insert(&[(1, v.as_slice())]).unwrap();
        let index = HnswIndex::deferred(index.graph, 1);
        let short = vec![0.0; DIM - 1];
        let bad_dim = [(2, v.as_slice()), (3, short.as_slice())];
        assert!(index.insert(&bad_dim).unwrap_err().contains("dimension"));
        let far = u32::try_from(index.graph().capacity()).unwrap();
        let bad_slot = [(2, v.as_slice()), (far, v.as_slice())];
        assert!(index.insert(&bad_slot).unwrap_err().contains("capacity"));
        assert_eq!((index.held(), index.pending()), (Some(1), 0));
        assert_eq!(index.holds(2), Some(false));
    }

    #[test]
    fn deferred_changes_answer_at_once_and_link_into_the_same_index() {
        let mut index = HnswIndex::new(DIM, IndexMetric::L2, 8, 64, 2);
        index.reserve(3000);
        let base: Vec<(u32, Vec<f32>)> = (0..2000).map(|i| (i, vector(i, 0))).collect();
        let items: Vec<(u32, &[f32])> = base.iter().map(|(s, v)| (*s, v.as_slice())).collect();
        index.insert(&items).unwrap();
        let mut model: HashMap<u32, Vec<f32>> = base.into_iter().collect();
        // As a reopen does: the loaded graph, then the replayed changes into a delta.
        let index = HnswIndex::deferred(index.graph, 2);
        let deleted: Vec<u32> = (0..2000).step_by(9).collect();
        index.remove(&deleted);
        for s in &deleted {
            model.remove(s);
        }
        let mut sets: Vec<(u32, Vec<f32>)> =
            (1..2000).step_by(5).map(|i| (i, vector(i, 1))).collect();
        sets.extend((2000..2600).map(|i| (i, vector(i, 0))));
        let items: Vec<(u32, &[f32])> = sets.iter().map(|(s, v)| (*s, v.as_slice())).collect();
        index.insert(&items).unwrap();
        model.extend(sets.iter().cloned());
        index.finish_loading();
        assert!(index.deferring());
        // Stale: the deleted nodes and the replaced ones (some slots are both).
        let stale: std::collections::HashSet<u32> = deleted
            .iter()
            .copied()
            .chain(sets.iter().map(|s| s.0).filter(|&s| s < 2000))
            .collect();
        assert_eq!(index.pending(), sets.len() + stale.len());
        check(&index, &model, "replayed, nothing linked");

        // Some stale nodes leave; then writes meet both the delta and the graph.
        assert_eq!(index.link_step(), Ok(true));
        check(&index, &model, "some stale nodes removed");
        let writes: Vec<(u32, Vec<f32>)> = [2001, 2002, 3, 4, 2700]
            .iter()
            .map(|&i| (i, vector(i, 2)))
            .collect();
        let updated: Vec<u32> = writes
            .iter()
            .map(|w| w.0)
            .filter(|s| model.contains_key(s))
            .collect();
        index.remove(&updated);
        let items: Vec<(u32, &[f32])> = writes.iter().map(|(s, v)| (*s, v.as_slice())).collect();
        index.insert(&items).unwrap();
        model.extend(writes.iter().cloned());
        index.remove(&[2003, 8, 2700]);
        for s in [2003, 8, 2700] {
            model.remove(&s);
        }
        check(&index, &model, "writes during linking");
        assert_eq!(index.link_step(), Ok(true));
        check(&index, &model, "one batch linked");

        let mut steps = 0;
        while index.link_step().unwrap() {
            steps += 1;
            assert!(steps < 100, "the linker finishes");
        }
        assert!(!index.deferring());
        assert_eq!(index.pending(), 0);
        assert_eq!(index.graph().len(), model.len());
        for (s, v) in &model {
            assert_eq!(
                index.graph().vector_copy(*s).as_ref(),
                Some(v),
                "slot {s} linked"
            );
        }
        check(&index, &model, "linked");
    }
}
