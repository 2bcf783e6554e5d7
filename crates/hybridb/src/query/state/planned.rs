//! A planned search: the planner's inputs (the filter's matching set or estimate, the measured
//! costs) and its execution (exact scan of the matches, filtered graph walk, or the plain
//! search), all under one hold of the slot table's read lock.
//!
//! Invariant: a filtered search never returns fewer than `k` hits while `k` matching entities
//! exist (no silent post-filtering); exact plans have recall 1.0 on `f32` indexes (a quantized
//! index's scan ranks by codes and rescores `⌈k · oversampling⌉` candidates with `f32`).

use super::*;
use crate::index::VectorIndex;
use crate::index::bitset::SlotBitset;
use crate::index::slots::SlotTable;
use crate::model::error::{FilterProblem, Result};
use crate::model::id::EntityId;
use crate::model::sync::{lock, read};
use crate::query::filter::Filter;
use crate::query::payload::eval::{Checker, Context, evaluate, upper_bound};
use crate::query::plan;
use crate::query::search::Plan;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// The slot of each hit, in the same order (for reads of in-memory vectors).
    pub slots: Vec<u32>,
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

impl IndexState {
    /// Searches among the live slots that `input` allows, with the plan [`plan::choose`]
    /// picks, all under one hold of the slot table's lock (so postings, live slots and vectors
    /// are of one moment). A filter with conditions the postings cannot answer comes back as
    /// [`Searched::NeedsPayloads`] with the superset to check.
    ///
    /// `using` names the dense vector searched (`""`: the default one); a named vector's
    /// search is among the live slots that have it. A quantized index rescores
    /// `⌈k · oversampling⌉` candidates with `f32` vectors.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_planned(
        &self,
        using: &str,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        input: FilterInput<'_>,
    ) -> Result<Searched, FilterProblem> {
        let t0 = Instant::now();
        let table = read(&self.slots);
        let payload = read(&self.payload);
        let texts = read(&self.texts);
        let named = read(&self.named);
        let default_vectors = read(&self.vectors);
        let target = Target::new(&table, default_vectors.as_ref(), &named, using, &self.costs);
        let live = &*target.universe;
        let live_count = live.len();
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
                let hash = filter_hash(filter) ^ target.salt;
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
                        texts: &texts,
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
        let vectors = target.vectors;
        let selectivity = matching as f64 / live_count.max(1) as f64;
        let walked = filter_key.and_then(|(hash, f)| self.walk_cost(hash, f, live_count));
        let costs = target
            .costs(query, k, ef, oversampling)
            .map(|c| c.with_walk(walked, selectivity));
        let observe = |f: &dyn Fn(&mut plan::Costs)| {
            if let Some(c) = lock(target.costs).as_mut() {
                f(c);
            }
        };
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
            Plan::Unfiltered => target.unfiltered(query, k, ef, oversampling),
            Plan::ExactScan => {
                let b = materialise(&bits)?;
                let t = Instant::now();
                let r = vectors.scan(query, k, oversampling, &b);
                observe(&|c| c.observe_scan(t.elapsed().as_nanos() as f64, b.len()));
                r
            }
            Plan::PostFilter => {
                // The plain search's whole beam, then the filter: when at least `k` of the
                // beam pass, they are the nearest matching entities the graph can see.
                let pool = target.unfiltered(query, ef, ef, oversampling);
                let r: Vec<(u32, f32)> = pool.into_iter().filter(|&(s, _)| passes(s)).collect();
                if r.len() >= k.min(matching) {
                    let ns = t_plan.elapsed().as_nanos() as f64;
                    observe(&|c| c.observe_graph(ns, 1.0, ef));
                }
                r
            }
            Plan::FilteredGraph | Plan::Sparse | Plan::Text => Vec::new(),
        };
        if plan == Plan::PostFilter && found.len() < k.min(matching) {
            // The beam held too few matches (a filter far from this query): walk instead.
            fallback = true;
        }
        if plan == Plan::FilteredGraph || (plan == Plan::PostFilter && fallback) {
            let t = Instant::now();
            found = vectors.search_by(query, k, ef, oversampling, &passes, selectivity);
            if found.len() < k.min(matching) {
                fallback = true;
                found = vectors.scan(query, k, oversampling, &*materialise(&bits)?);
            } else if plan == Plan::FilteredGraph {
                let ns = t.elapsed().as_nanos() as f64;
                observe(&|c| c.observe_graph(ns, selectivity, ef));
                if let (Some((hash, f)), Some(c)) = (filter_key, costs) {
                    let at_base = ns * c.ef.max(1) as f64 / ef.max(1) as f64;
                    self.observe_walk(hash, f, at_base, live_count);
                }
            }
        }
        if plan == Plan::Unfiltered {
            let ns = t_plan.elapsed().as_nanos() as f64;
            observe(&|c| c.observe_graph(ns, 1.0, ef));
        }
        drop(target);
        drop(default_vectors);
        drop(named);
        let (hits, slots) = ranked_hits(
            found
                .into_iter()
                .filter_map(|(slot, d)| {
                    let id = table.id(slot)?;
                    match expect {
                        Some(e) if e.get(&slot) != Some(&id) => None,
                        _ => Some((id, d, slot)),
                    }
                })
                .collect(),
            k,
        );
        Ok(Searched::Done(Planned {
            hits,
            slots,
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

    /// The `k` nearest live entities that have the dense vector `using` (`""`: the default):
    /// `(id, distance)` nearest first, ties by id, and their slots in the same order.
    pub(crate) fn search(
        &self,
        using: &str,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
    ) -> (Vec<(EntityId, f32)>, Vec<u32>) {
        let table = read(&self.slots);
        let named = read(&self.named);
        let default_vectors = read(&self.vectors);
        let target = Target::new(&table, default_vectors.as_ref(), &named, using, &self.costs);
        let found = target.unfiltered(query, k, ef, oversampling);
        drop(target);
        drop(default_vectors);
        drop(named);
        ranked_hits(
            found
                .into_iter()
                .filter_map(|(slot, d)| table.id(slot).map(|id| (id, d, slot)))
                .collect(),
            k,
        )
    }

    /// Runs `f` on the vectors `using` (`""`: the default; in index form) that the in-memory
    /// index holds for the `(id, slot)` pairs whose slot is live and still holds that entity,
    /// borrowed (no copies, no redb read), and on the ids it could not answer that way (the
    /// caller reads those from the store). The locks are held while `f` runs: keep it short.
    /// `None` (without running `f`) only if the index did not hand its vectors out.
    pub(crate) fn with_dense_vectors<T>(
        &self,
        using: &str,
        items: &[(EntityId, u32)],
        f: impl FnOnce(&[(EntityId, &[f32])], Vec<EntityId>) -> T,
    ) -> Option<T> {
        let table = read(&self.slots);
        let named = read(&self.named);
        let default_vectors = read(&self.vectors);
        let (index, present) = if using.is_empty() {
            (default_vectors.as_ref(), None)
        } else {
            match named.get(using) {
                Some(Named::Dense(d)) => (d.index.as_ref(), Some(&d.present)),
                _ => return Some(f(&[], items.iter().map(|p| p.0).collect())),
            }
        };
        let mut held = Vec::with_capacity(items.len());
        let mut missing = Vec::new();
        for &(id, slot) in items {
            if table.live().contains(slot)
                && table.id(slot) == Some(id)
                && present.is_none_or(|p| p.contains(slot))
            {
                held.push((id, slot));
            } else {
                missing.push((id, slot));
            }
        }
        let slots: Vec<u32> = held.iter().map(|p| p.1).collect();
        let mut f = Some(f);
        let mut out = None;
        index.with_vectors(&slots, &mut |vectors| {
            let mut found = Vec::with_capacity(held.len());
            for (&(id, slot), v) in held.iter().zip(vectors) {
                match v {
                    Some(v) => found.push((id, *v)),
                    None => missing.push((id, slot)),
                }
            }
            if let Some(f) = f.take() {
                out = Some(f(&found, missing.iter().map(|p| p.0).collect()));
            }
        });
        out
    }
}

/// Sorts `(id, distance, slot)` nearest first, ties by id, keeps `k`, and splits off the
/// slots (same order).
pub(crate) fn ranked_hits(
    mut hits: Vec<(EntityId, f32, u32)>,
    k: usize,
) -> (Vec<(EntityId, f32)>, Vec<u32>) {
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits.into_iter()
        .map(|(id, d, slot)| ((id, d), slot))
        .unzip()
}

/// The dense vector a search runs on: its index, the slots it searches among (the live ones
/// that have the vector), and its measured costs.
struct Target<'a> {
    vectors: &'a dyn VectorIndex,
    universe: Cow<'a, SlotBitset>,
    /// `universe` is exactly the set of slots the index holds (lets the index skip checks).
    all_held: bool,
    costs: &'a Mutex<Option<plan::Costs>>,
    /// Mixed into filter hashes, so per-filter state of different vectors never mixes.
    salt: u64,
}

impl<'a> Target<'a> {
    fn new(
        table: &'a SlotTable,
        default_vectors: &'a dyn VectorIndex,
        named: &'a NamedIndexes,
        using: &str,
        default_costs: &'a Mutex<Option<plan::Costs>>,
    ) -> Self {
        if using.is_empty() {
            // Exactly the live slots are held when nothing is hidden and no insert is in flight
            // (counts are enough: live ⊆ allocated, and held ⊇ allocated between applies).
            // (Equal counts could still hide one slot being inserted while another is
            // mid-update; the inserting one is then dropped by the caller, so such a search
            // returns one hit fewer — never a wrong one.)
            let all_held = table.live_count() == table.allocated_count()
                && default_vectors.held() == Some(table.live_count());
            return Target {
                vectors: default_vectors,
                universe: Cow::Borrowed(table.live()),
                all_held,
                costs: default_costs,
                salt: 0,
            };
        }
        let salt = crate::index::checkpoint::fnv1a(using.as_bytes());
        match named.get(using) {
            Some(Named::Dense(d)) => {
                let mut universe = table.live().clone();
                universe.intersect_with(&d.present);
                let all_held = universe.len() == d.present.len()
                    && d.index.held().is_none_or(|h| h == universe.len());
                Target {
                    vectors: d.index.as_ref(),
                    universe: Cow::Owned(universe),
                    all_held,
                    costs: &d.costs,
                    salt,
                }
            }
            // Dropped since the caller checked the name (or not dense): no entity has it.
            _ => Target {
                vectors: default_vectors,
                universe: Cow::Owned(SlotBitset::new()),
                all_held: false,
                costs: default_costs,
                salt,
            },
        }
    }

    /// The plain index search over every slot of the universe.
    fn unfiltered(&self, query: &[f32], k: usize, ef: usize, oversampling: f32) -> Vec<(u32, f32)> {
        if self.universe.is_empty() {
            return Vec::new();
        }
        self.vectors.search(
            query,
            k,
            ef.max(k),
            oversampling,
            &self.universe,
            self.all_held,
        )
    }

    /// The measured costs of this index (HNSW only), measured now if missing or stale.
    fn costs(&self, query: &[f32], k: usize, ef: usize, oversampling: f32) -> Option<plan::Costs> {
        self.vectors.as_hnsw()?;
        let live = self.universe.len();
        let mut cached = lock(self.costs);
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
            std::hint::black_box(self.unfiltered(query, k, ef, oversampling));
        });
        let mut subset = SlotBitset::new();
        sample(&self.universe, |s| {
            subset.insert(s);
            false
        });
        // One run only: a repeat would find the sample in cache, which real scans do not.
        let t = Instant::now();
        std::hint::black_box(self.vectors.scan(query, k, oversampling, &subset));
        let scan_ns = t.elapsed().as_nanos() as f64 / subset.len().max(1) as f64;
        let c = plan::Costs::new(scan_ns, subset.len(), graph_ns, ef, live);
        *cached = Some(c);
        Some(c)
    }
}
