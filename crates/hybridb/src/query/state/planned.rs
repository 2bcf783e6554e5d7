//! A planned search: the planner's inputs (the filter's matching set or estimate, the measured
//! costs) and its execution (exact scan of the matches, filtered graph walk, or the plain
//! search), all under one hold of the slot table's read lock.
//!
//! Invariant: a filtered search never returns fewer than `k` hits while `k` matching entities
//! exist (no silent post-filtering); exact plans have recall 1.0.

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
use std::sync::Arc;
use std::sync::atomic::Ordering;
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

    /// Folds one observed plan execution into the measured costs (if there are any).
    fn observe(&self, f: impl FnOnce(&mut plan::Costs)) {
        if let Some(c) = lock(&self.costs).as_mut() {
            f(c);
        }
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
}
