//! Graph traversal: greedy descent through the upper layers and the best-first beam search of
//! one layer, plain or filtered.
//!
//! Traversal expands only `LIVE` nodes (invariant 1); a filtered search walks every live node
//! but collects only allowed ones, so it stops once `ef` allowed nodes bound the frontier.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};

use super::codes::{Coded, DEFAULT_OVERSAMPLING, Exact, Scorer, candidates};
use super::raw::prefetch;
use super::visited::{PoolEntry, Spill, Visited, with_visited};
use super::{Hnsw, UpperMap, state, unpack_entry};

/// A node with its distance to the query; ordered by distance, then slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Cand {
    pub(super) d: f32,
    pub(super) id: u32,
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.d.total_cmp(&other.d).then(self.id.cmp(&other.id))
    }
}

/// The ids of a list block (`[count, ids...]`); an empty block has none.
#[inline(always)]
pub(super) fn list_ids(block: &[AtomicU32]) -> &[AtomicU32] {
    match block.split_first() {
        Some((count, ids)) => {
            let n = (count.load(Ordering::Acquire) as usize).min(ids.len());
            &ids[..n]
        }
        None => &[],
    }
}

/// Restores the beam's invariant after an insertion: at most `ef` allowed entries, and once
/// there are `ef`, none after the last of them. Allowed entries let go are offered to `spill`.
#[inline(always)]
fn settle(pool: &mut Vec<PoolEntry>, matched: &mut usize, ef: usize, spill: &mut Spill) {
    while *matched > ef {
        if let Some(e) = pool.pop().filter(|e| e.ok) {
            *matched -= 1;
            spill.offer(Cand { d: e.d, id: e.id });
        }
    }
    if *matched >= ef {
        while pool.last().is_some_and(|e| !e.ok) {
            pool.pop();
        }
    }
}

/// Filtered searches told that at least this share of the live nodes is allowed walk with the
/// sorted pool of `Hnsw::beam` (about `ef / share` entries; measured faster than the two
/// heaps); smaller shares use `Hnsw::search_layer`, whose cost per step does not grow with
/// its frontier.
pub const POOL_WALK_SHARE: f64 = 0.05;

/// How many vectors ahead of the distance computation the beam prefetches.
const PREFETCH_AHEAD: usize = 2;

impl Hnsw {
    #[inline(always)]
    pub(super) fn dist(&self, a: &[f32], b: &[f32]) -> f32 {
        self.sign * (self.kernel)(a, b)
    }

    /// The distance this index ranks by (smaller is closer; see [`super::Metric`]) between
    /// two vectors of its dimension.
    pub fn distance(&self, a: &[f32], b: &[f32]) -> f32 {
        self.dist(a, b)
    }

    #[inline(always)]
    pub(super) fn is_live(&self, slot: u32) -> bool {
        self.states[slot as usize].load(Ordering::Acquire) == state::LIVE
    }

    /// Layer-0 block of `slot`: `[count, ids; 2m]`.
    #[inline(always)]
    pub(super) fn block0(&self, slot: u32) -> &[AtomicU32] {
        let s = slot as usize * self.stride0;
        &self.links0[s..s + self.stride0]
    }

    /// Block of `slot` on upper `layer` (>= 1); empty if the node has no such layer.
    #[inline]
    pub(super) fn block_upper<'a>(
        &self,
        up: &'a UpperMap,
        slot: u32,
        layer: usize,
    ) -> &'a [AtomicU32] {
        let w = 1 + self.params.m;
        up.get(&slot)
            .and_then(|b| b.get((layer - 1) * w..layer * w))
            .unwrap_or(&[])
    }

    /// Block of `slot` on any layer.
    #[inline]
    pub(super) fn block<'a>(
        &'a self,
        up: &'a UpperMap,
        slot: u32,
        layer: usize,
    ) -> &'a [AtomicU32] {
        if layer == 0 {
            self.block0(slot)
        } else {
            self.block_upper(up, slot, layer)
        }
    }

    /// Greedy walk on an upper layer: moves to the closest neighbour until none is closer.
    pub(super) fn greedy<S: Scorer>(&self, q: &S, cur: &mut Cand, layer: usize, up: &UpperMap) {
        loop {
            let mut moved = false;
            for a in list_ids(self.block_upper(up, cur.id, layer)) {
                let id = a.load(Ordering::Relaxed);
                if !self.is_live(id) {
                    continue;
                }
                let d = q.dist(id);
                if d < cur.d {
                    *cur = Cand { d, id };
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Beam search of one layer from `eps`. Returns a max-heap of at most `ef` allowed nodes.
    /// `on_visit` sees every slot whose id is read from a list (used by removal's repair).
    /// Allowed nodes scored but not kept are offered to `visited.spill` (closed unless the
    /// caller opened it).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn search_layer<'a, S, N, A, V>(
        &'a self,
        visited: &mut Visited,
        q: &S,
        eps: &[Cand],
        ef: usize,
        nbrs: N,
        allowed: A,
        mut on_visit: V,
    ) -> BinaryHeap<Cand>
    where
        S: Scorer,
        N: Fn(u32) -> &'a [AtomicU32],
        A: Fn(u32) -> bool,
        V: FnMut(u32),
    {
        let mut results: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
        let mut frontier: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef * 2);
        for &c in eps {
            if visited.insert(c.id) {
                frontier.push(Reverse(c));
                if allowed(c.id) {
                    results.push(c);
                }
            }
        }
        while results.len() > ef {
            if let Some(c) = results.pop() {
                visited.spill.offer(c);
            }
        }
        let mut bound = if results.len() >= ef {
            results.peek().map_or(f32::INFINITY, |c| c.d)
        } else {
            f32::INFINITY
        };
        while let Some(Reverse(c)) = frontier.pop() {
            if c.d > bound {
                break;
            }
            let ids = list_ids(nbrs(c.id));
            if let Some(first) = ids.first() {
                let f = first.load(Ordering::Relaxed);
                prefetch(visited.ptr(f));
                q.prefetch(f);
            }
            for (i, a) in ids.iter().enumerate() {
                if let Some(next) = ids.get(i + 1) {
                    let nx = next.load(Ordering::Relaxed);
                    prefetch(visited.ptr(nx));
                    q.prefetch(nx);
                }
                let id = a.load(Ordering::Relaxed);
                if !visited.insert(id) {
                    continue;
                }
                on_visit(id);
                if !self.is_live(id) {
                    continue;
                }
                let d = q.dist(id);
                if results.len() < ef || d < bound {
                    // Likely to be expanded soon: fetch its list while other work proceeds.
                    prefetch(nbrs(id).as_ptr());
                    frontier.push(Reverse(Cand { d, id }));
                    if allowed(id) {
                        results.push(Cand { d, id });
                        if results.len() > ef
                            && let Some(c) = results.pop()
                        {
                            visited.spill.offer(c);
                        }
                        if results.len() >= ef {
                            bound = results.peek().map_or(f32::INFINITY, |c| c.d);
                        }
                    }
                } else if visited.spill.wants(d) && allowed(id) {
                    visited.spill.offer(Cand { d, id });
                }
            }
        }
        results
    }

    /// Beam search of one layer from `eps`: a sorted pool of candidates, each expanded once,
    /// nearest unexpanded first, until all are expanded. Same result as the two-heap search of
    /// the HNSW paper ([`Hnsw::search_layer`]), with less bookkeeping. Returns the pool sorted
    /// nearest first; its `ok` entries are the allowed ones. `on_visit` sees every slot read
    /// from a list (used by removal's repair).
    ///
    /// Invariant: once the pool holds `ef` allowed entries, its last entry is the `ef`-th
    /// allowed one (the bound) and nothing farther is kept; before that it keeps everything it
    /// scored. With every node allowed it is the plain beam of `ef`; with a share `s` allowed it
    /// grows to about `ef / s` entries, and every insertion shifts the entries behind it: hence
    /// filtered searches use it only when `s` is known to be large ([`POOL_WALK_SHARE`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn beam<'s, 'a, S, N, A, V>(
        &'a self,
        scratch: &'s mut Visited,
        q: &S,
        eps: &[Cand],
        ef: usize,
        nbrs: N,
        allowed: A,
        mut on_visit: V,
    ) -> &'s [PoolEntry]
    where
        S: Scorer,
        N: Fn(u32) -> &'a [AtomicU32],
        A: Fn(u32) -> bool,
        V: FnMut(u32),
    {
        let ef = ef.max(1);
        let mut pool = std::mem::take(&mut scratch.pool);
        let mut fresh = std::mem::take(&mut scratch.fresh);
        let mut spill = std::mem::take(&mut scratch.spill);
        pool.clear();
        pool.reserve(ef + 1);
        // Allowed entries in the pool; the pool is full when it holds `ef` of them.
        let mut matched = 0;
        for &c in eps {
            if scratch.insert(c.id) {
                let pos = pool.partition_point(|e| e.d <= c.d);
                let ok = allowed(c.id);
                matched += usize::from(ok);
                pool.insert(
                    pos,
                    PoolEntry {
                        d: c.d,
                        id: c.id,
                        done: false,
                        ok,
                    },
                );
            }
        }
        settle(&mut pool, &mut matched, ef, &mut spill);
        let mut i = 0;
        while i < pool.len() {
            let cur = pool[i].id;
            pool[i].done = true;
            let mut next = i + 1;
            if let Some(e) = pool.get(next) {
                prefetch(nbrs(e.id).as_ptr());
            }
            // Pass 1: keep the unvisited live neighbours, so that vector prefetches are spent
            // only on nodes whose distance will be computed.
            let ids = list_ids(nbrs(cur));
            for a in ids {
                prefetch(scratch.ptr(a.load(Ordering::Relaxed)));
            }
            fresh.clear();
            for a in ids {
                let id = a.load(Ordering::Relaxed);
                if scratch.insert(id) {
                    on_visit(id);
                    if self.is_live(id) {
                        fresh.push(id);
                    }
                }
            }
            // Pass 2: distances, with the vectors two ahead in flight.
            for &id in fresh.iter().take(PREFETCH_AHEAD) {
                q.prefetch(id);
            }
            for (j, &id) in fresh.iter().enumerate() {
                if let Some(&ahead) = fresh.get(j + PREFETCH_AHEAD) {
                    q.prefetch(ahead);
                }
                let d = q.dist(id);
                if matched >= ef && pool.last().is_some_and(|w| d >= w.d) {
                    if spill.wants(d) && allowed(id) {
                        spill.offer(Cand { d, id });
                    }
                    continue;
                }
                prefetch(nbrs(id).as_ptr());
                let pos = pool.partition_point(|e| e.d <= d);
                let ok = allowed(id);
                pool.insert(
                    pos,
                    PoolEntry {
                        d,
                        id,
                        done: false,
                        ok,
                    },
                );
                matched += usize::from(ok);
                settle(&mut pool, &mut matched, ef, &mut spill);
                next = next.min(pos);
            }
            i = next;
            while pool.get(i).is_some_and(|e| e.done) {
                i += 1;
            }
        }
        scratch.pool = pool;
        scratch.fresh = fresh;
        scratch.spill = spill;
        &scratch.pool
    }

    /// Descends from the entry point to layer 0 and returns the layer-0 entry candidate.
    pub(super) fn descend<S: Scorer>(&self, q: &S, up: &UpperMap) -> Option<Cand> {
        let (ep, level) = unpack_entry(self.entry.load(Ordering::Acquire))?;
        let mut cur = Cand {
            d: q.dist(ep),
            id: ep,
        };
        for layer in (1..=level).rev() {
            self.greedy(q, &mut cur, layer, up);
        }
        Some(cur)
    }

    /// The search behind the public ones. On a quantized index (see `codes.rs`) the walk
    /// ranks by the codes' estimates and its `⌈k · oversampling⌉` best allowed candidates are
    /// rescored with the `f32` vectors; otherwise the walk uses the `f32` vectors alone.
    /// Distances returned are always exact.
    pub(super) fn search_impl<A: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        allowed: A,
        pool: bool,
        oversampling: f32,
    ) -> Vec<(u32, f32)> {
        if q.len() != self.params.dim || k == 0 {
            return Vec::new();
        }
        let _gate = self.gate_shared();
        let codes = self.codes();
        let prepared = codes
            .as_ref()
            .and_then(|c| Some((c, c.quantizer.prepare(q, self.params.metric)?)));
        match prepared {
            Some((codes, prepared)) => {
                let fetch = candidates(k, oversampling);
                let scorer = Coded {
                    codes,
                    query: &prepared,
                };
                let found = self.walk(&scorer, fetch, ef.max(k), allowed, pool);
                self.rescore(q, found, k)
            }
            None => self.walk(&Exact { h: self, q }, k, ef.max(k), allowed, pool),
        }
    }

    /// Greedy descent, then one layer-0 walk ranked by `q` with a beam of `ef`, with the
    /// sorted pool ([`Hnsw::beam`]) if `pool`, else with two heaps ([`Hnsw::search_layer`]).
    /// Returns the best `k` allowed nodes the walk scored, nearest first: when `k > ef` the
    /// ones beyond the beam come from its spill ([`Spill`]), so a quantized search rescores
    /// `⌈k · oversampling⌉` candidates without widening its beam. The caller holds the gate
    /// shared.
    pub(super) fn walk<S: Scorer, A: Fn(u32) -> bool>(
        &self,
        q: &S,
        k: usize,
        ef: usize,
        allowed: A,
        pool: bool,
    ) -> Vec<(u32, f32)> {
        let start = {
            let up = self.read_upper();
            self.descend(q, &up)
        };
        let Some(start) = start else {
            return Vec::new();
        };
        let ef = ef.max(1);
        with_visited(self.capacity, |vis| {
            vis.spill.open(k.saturating_sub(ef));
            let mut out: Vec<Cand> = if pool {
                let pool = self.beam(vis, q, &[start], ef, |s| self.block0(s), allowed, |_| {});
                pool.iter()
                    .filter(|e| e.ok)
                    .take(k)
                    .map(|e| Cand { d: e.d, id: e.id })
                    .collect()
            } else {
                let heap =
                    self.search_layer(vis, q, &[start], ef, |s| self.block0(s), allowed, |_| {});
                heap.into_sorted_vec()
            };
            // Every spilled entry is no nearer than the beam's (the spill's invariant).
            let mut spilled: Vec<Cand> = vis.spill.drain().collect();
            spilled.sort_unstable();
            out.extend(spilled);
            out.truncate(k);
            out.into_iter().map(|c| (c.id, c.d)).collect()
        })
    }

    /// The `k` nearest live slots to `query`, best first, as `(slot, distance)`.
    ///
    /// `ef` (raised to `k` if smaller) is the beam width: larger is slower and more accurate.
    /// A query whose length differs from the dimension returns no results (callers validate).
    /// A quantized index rescores [`DEFAULT_OVERSAMPLING`] candidates per result (see
    /// [`Hnsw::search_oversampled`]).
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        self.search_impl(query, k, ef, |_| true, true, DEFAULT_OVERSAMPLING)
    }

    /// As [`Hnsw::search`], but returns only slots for which `allowed` is `true`.
    ///
    /// The traversal crosses every live node and collects allowed ones until `ef` of them bound
    /// the frontier, so it slows down as the allowed fraction drops; below a few percent an exact
    /// scan of the allowed slots is the better plan. This is the walk of hnswlib's filter
    /// functor (two heaps), whose cost per step does not depend on how much is filtered out;
    /// a caller that knows the allowed share can do better with
    /// [`Hnsw::search_filtered_with_share`].
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        self.search_impl(query, k, ef, allowed, false, DEFAULT_OVERSAMPLING)
    }

    /// As [`Hnsw::search_filtered`], told which share of the live nodes `allowed` accepts (an
    /// estimate will do). The result is the same walk's; only its bookkeeping differs: from
    /// [`POOL_WALK_SHARE`] up it keeps its candidates in the sorted pool of the plain search
    /// (about `ef / share` of them), which is cheaper than two heaps but shifts more entries per
    /// insertion the smaller the share; below, it uses the two heaps.
    pub fn search_filtered_with_share(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &dyn Fn(u32) -> bool,
        share: f64,
    ) -> Vec<(u32, f32)> {
        self.search_impl(
            query,
            k,
            ef,
            allowed,
            share >= POOL_WALK_SHARE,
            DEFAULT_OVERSAMPLING,
        )
    }

    /// Exact distances from `query` to the live slots among `slots`, handed to `each` as
    /// `(slot, distance)`: the scan behind exact plans over a filtered subset.
    pub fn scan(
        &self,
        query: &[f32],
        slots: impl Iterator<Item = u32>,
        mut each: impl FnMut(u32, f32),
    ) {
        if query.len() != self.params.dim {
            return;
        }
        let _gate = self.gate_shared();
        let mut slots = slots.filter(|&s| (s as usize) < self.capacity && self.is_live(s));
        // Prefetch one vector ahead: the subset is scattered over the store.
        let Some(mut cur) = slots.next() else {
            return;
        };
        for next in slots {
            self.vectors.prefetch(next);
            each(cur, self.dist(query, self.vector(cur)));
            cur = next;
        }
        each(cur, self.dist(query, self.vector(cur)));
    }
}
