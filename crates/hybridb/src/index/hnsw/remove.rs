//! Removal: single removals with graph repair, consolidated batch removals, and the sweep of
//! the dead links repairs miss.
//!
//! A repair keeps the surviving links of each list that named a removed node and fills the
//! vacancies from the removed node's own links (nearest first, preferring ones the heuristic
//! would keep), with exact `f32` distances whether or not the index is quantized.

use std::sync::atomic::{AtomicU32, Ordering};

use super::codes::Exact;
use super::search::{Cand, list_ids};
use super::visited::with_visited;
use super::{Hnsw, NO_ENTRY, UpperMap, pack_entry, state, unpack_entry};

/// A removal batch at least this large is consolidated (see [`Hnsw::remove_batch_parallel`]):
/// one pass over every list (about the cost of a few dozen single removals at 200k nodes).
pub const CONSOLIDATE_MIN: usize = 32;

/// How many of the removed node's neighbours a repair tries, nearest first, for one that
/// keeps the repaired list diverse.
const REPAIR_TRIES: usize = 4;

impl Hnsw {
    /// Removes `slot`: it leaves results at once and the slot is free for reuse. The graph is
    /// repaired: each former in-neighbour (found by a search for the node's own vector on layer
    /// 0, by scanning on the sparse upper layers) keeps its other links and fills the vacancy
    /// from the removed node's neighbours; the entry point moves if it was the removed node.
    /// Returns `false` if the slot was not live.
    ///
    /// Runs alone: waits for in-flight searches and inserts, and blocks new ones meanwhile.
    /// Cost: about one search at `ef_construction / 2` plus a scan of the upper layers when the
    /// node had any, and an amortised O(m) sweep of missed links (see the module invariants).
    pub fn remove(&self, slot: u32) -> bool {
        let _changing = self.changes_shared();
        self.remove_gated(slot)
    }

    /// [`Hnsw::remove`] for a caller that holds the changes lock shared.
    pub(super) fn remove_gated(&self, slot: u32) -> bool {
        let _gate = self.gate_exclusive();
        let mut up = self.write_upper();
        self.remove_locked(&mut up, slot)
    }

    /// Removes every slot of `slots` as [`Hnsw::remove`] does, holding the gate once for the
    /// whole batch (searches wait once, not once per slot). Returns how many were live.
    /// Same as [`Hnsw::remove_batch_parallel`] with one thread.
    pub fn remove_batch(&self, slots: &[u32]) -> usize {
        self.remove_batch_parallel(slots, 1)
    }

    /// Removes every slot of `slots`; returns how many were live. Searches wait at most once
    /// per batch.
    ///
    /// Small batches remove one node at a time (a search finds each one's in-neighbours). A
    /// batch of at least `CONSOLIDATE_MIN` (32) is consolidated instead, as FreshDiskANN deletes
    /// do: one pass over all lists (on `threads` threads for layer 0) repairs each list that
    /// names a removed node, filling its vacancies from the removed nodes' own links, and then
    /// every removed node leaves at once. That costs one scan of the graph instead of one
    /// search per removal, finds every in-link (no dead link survives it, including those
    /// earlier single removals missed), and leaves the freed slots clean, so that inserts
    /// into them run in parallel. Searches go on during that scan (other changes wait); only the
    /// short final pass that frees the removed nodes holds the gate exclusively.
    pub fn remove_batch_parallel(&self, slots: &[u32], threads: usize) -> usize {
        if slots.len() < CONSOLIDATE_MIN {
            let _changing = self.changes_shared();
            let _gate = self.gate_exclusive();
            let mut up = self.write_upper();
            return slots
                .iter()
                .filter(|&&s| self.remove_locked(&mut up, s))
                .count();
        }
        self.remove_consolidated(slots, threads)
    }

    /// Body of the consolidated batch removal, in two phases. First the repair, with every
    /// other change (inserts, single removals) held off by the changes lock but searches going
    /// on: the batch's nodes stay live (searches may still return them, as before any removal)
    /// while every other list that names them is rewritten. Then, with the gate exclusive (a
    /// short pass), they leave: lists cleared, slots clean. The changes lock is held across
    /// both, so no list can gain a link to them in between.
    fn remove_consolidated(&self, slots: &[u32], threads: usize) -> usize {
        let _changing = self.changes.write().unwrap_or_else(|e| e.into_inner());
        let gate = self.gate_shared();
        let up = self.read_upper();
        let mut dying = vec![false; self.capacity];
        for &s in slots {
            if self.contains(s) {
                dying[s as usize] = true;
            }
        }
        // Dead: this batch's nodes and any left by earlier single removals.
        let dead = |id: u32| {
            dying.get(id as usize).is_some_and(|&d| d)
                || self
                    .states
                    .get(id as usize)
                    .is_some_and(|st| st.load(Ordering::Relaxed) == state::FREE_DIRTY)
        };
        let cap = self.capacity as u32;
        let threads = threads.clamp(1, 64) as u32;
        let chunk = cap.div_ceil(threads).max(1);
        let shared: &UpperMap = &up;
        std::thread::scope(|sc| {
            for t in 0..threads {
                let dead = &dead;
                sc.spawn(move || {
                    for a in (t * chunk)..((t + 1) * chunk).min(cap) {
                        if self.is_live(a) && !dead(a) {
                            self.repair_dead(shared, a, 0, dead);
                        }
                    }
                });
            }
        });
        let holders: Vec<u32> = up.keys().copied().collect();
        for a in holders {
            if self.is_live(a) && !dead(a) {
                let level = self.levels[a as usize].load(Ordering::Relaxed) as usize;
                for layer in 1..=level {
                    self.repair_dead(&up, a, layer, &dead);
                }
            }
        }
        drop((up, gate));
        let _gate = self.gate_exclusive();
        let mut up = self.write_upper();
        // No live list names a dead node any more (no insert ran since the repair): free
        // their own lists, make them clean.
        let mut removed = 0;
        for s in 0..cap {
            if dead(s) {
                if self.is_live(s) {
                    removed += 1;
                    self.len.fetch_sub(1, Ordering::AcqRel);
                }
                Self::write_list(self.block0(s), &[]);
                up.remove(&s);
                self.states[s as usize].store(state::FREE_CLEAN, Ordering::Release);
            }
        }
        self.removed_since_sweep.store(0, Ordering::Relaxed);
        if unpack_entry(self.entry.load(Ordering::Acquire)).is_some_and(|(ep, _)| !self.is_live(ep))
        {
            self.reset_entry(&up);
        }
        removed
    }

    /// Repairs `a`'s list on `layer` after the nodes for which `dead` holds left the graph:
    /// the live links stay, and each vacancy goes to a link of a dead neighbour (nearest to `a`
    /// first, preferring one the heuristic would keep beside the others). The dead
    /// neighbours' lists must still be intact.
    fn repair_dead(&self, up: &UpperMap, a: u32, layer: usize, dead: &dyn Fn(u32) -> bool) {
        let block = self.block(up, a, layer);
        let ids = list_ids(block);
        if !ids.iter().any(|x| dead(x.load(Ordering::Relaxed))) {
            return;
        }
        let va = self.vector(a);
        let mut kept: Vec<Cand> = Vec::with_capacity(self.max_links(layer));
        let mut gone: Vec<u32> = Vec::new();
        for x in ids {
            let id = x.load(Ordering::Relaxed);
            if dead(id) {
                gone.push(id);
            } else if id != a && self.is_live(id) && !kept.iter().any(|c| c.id == id) {
                // (Not dead, so a live node that stays.)
                kept.push(Cand {
                    d: self.dist(va, self.vector(id)),
                    id,
                });
            }
        }
        let mut extra: Vec<Cand> = Vec::new();
        for &g in &gone {
            for x in list_ids(self.block(up, g, layer)) {
                let id = x.load(Ordering::Relaxed);
                if id != a
                    && self.is_live(id)
                    && !dead(id)
                    && !kept.iter().any(|c| c.id == id)
                    && !extra.iter().any(|c| c.id == id)
                {
                    extra.push(Cand {
                        d: self.dist(va, self.vector(id)),
                        id,
                    });
                }
            }
        }
        extra.sort_unstable();
        let mut vacancies = gone
            .len()
            .min(self.max_links(layer).saturating_sub(kept.len()));
        let mut tried = 0;
        let mut i = 0;
        // Diverse ones first (among the nearest few tries), then the nearest left over.
        while vacancies > 0 && i < extra.len() && tried < REPAIR_TRIES * gone.len() {
            let c = extra[i];
            let vc = self.vector(c.id);
            tried += 1;
            if kept.iter().all(|r| self.dist(self.vector(r.id), vc) >= c.d) {
                kept.push(c);
                extra.remove(i);
                vacancies -= 1;
            } else {
                i += 1;
            }
        }
        for c in extra.into_iter().take(vacancies) {
            kept.push(c);
        }
        kept.sort_unstable();
        Self::write_list(block, &kept);
    }

    /// Points the entry at the live node of the highest level (the gate held exclusively).
    fn reset_entry(&self, up: &UpperMap) {
        let best = up
            .keys()
            .copied()
            .filter(|&s| self.is_live(s))
            .map(|s| (self.levels[s as usize].load(Ordering::Relaxed) as usize, s))
            .max_by_key(|&(l, s)| (l, std::cmp::Reverse(s)));
        let best = best.or_else(|| {
            (0..self.capacity as u32)
                .find(|&s| self.is_live(s))
                .map(|s| (0, s))
        });
        let e = best.map_or(NO_ENTRY, |(l, s)| pack_entry(l, s));
        self.entry.store(e, Ordering::Release);
    }

    /// Body of [`Hnsw::remove`]; the caller holds the gate exclusively and the map's write lock.
    fn remove_locked(&self, up: &mut UpperMap, slot: u32) -> bool {
        if !self.contains(slot) {
            return false;
        }
        let level = self.levels[slot as usize].load(Ordering::Relaxed) as usize;

        // Layer 0: the in-neighbours are near the node, so a search for its own vector visits
        // (almost) all of them; its out-neighbours are checked too (links are mostly mutual).
        let mut in0: Vec<u32> = Vec::new();
        let v = self.vector(slot).to_vec();
        let names = |s: u32| {
            list_ids(self.block0(s))
                .iter()
                .any(|a| a.load(Ordering::Relaxed) == slot)
        };
        let exact = Exact { h: self, q: &v };
        if let Some(start) = self.descend(&exact, up) {
            with_visited(self.capacity, |vis| {
                // The in-neighbours are among the nodes nearest to the removed one: only the
                // final beam is checked (checking every node the beam saw cost more than the
                // beam itself). Half of ef_construction finds all but ~0.2% of in-links (the
                // sweep drops those).
                let pool = self.beam(
                    vis,
                    &exact,
                    &[start],
                    (self.params.ef_construction / 2).max(2 * self.params.m),
                    |s| self.block0(s),
                    |_| true,
                    |_| {},
                );
                for e in pool {
                    if e.id != slot && self.is_live(e.id) && names(e.id) {
                        in0.push(e.id);
                    }
                }
                for a in list_ids(self.block0(slot)) {
                    let s = a.load(Ordering::Relaxed);
                    if vis.insert(s) && s != slot && self.is_live(s) && names(s) {
                        in0.push(s);
                    }
                }
            });
        }
        self.states[slot as usize].store(state::FREE_DIRTY, Ordering::Release);
        for &a in &in0 {
            self.repair(up, a, slot, 0);
        }
        // Upper layers are sparse: scan every node that has the layer.
        for layer in 1..=level {
            let holders: Vec<u32> = up
                .keys()
                .copied()
                .filter(|&s| s != slot && self.is_live(s))
                .filter(|&s| {
                    list_ids(self.block_upper(up, s, layer))
                        .iter()
                        .any(|a| a.load(Ordering::Relaxed) == slot)
                })
                .collect();
            for a in holders {
                self.repair(up, a, slot, layer);
            }
        }
        Self::write_list(self.block0(slot), &[]);
        up.remove(&slot);
        self.len.fetch_sub(1, Ordering::AcqRel);

        if unpack_entry(self.entry.load(Ordering::Acquire)).is_some_and(|(ep, _)| ep == slot) {
            self.reset_entry(up);
        }
        let removed = self.removed_since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        if removed >= (self.len() / 16).max(256) {
            self.sweep_dead_links(up);
        }
        true
    }

    /// Drops every link to a removed slot and marks removed slots clean (gate held
    /// exclusively). Removal's repair misses a few in-links (about 0.4% of links after deleting
    /// 30% at default parameters); running this after every `len/16` (at least 256) removals
    /// bounds them, at an amortised cost of O(m) words per removal.
    fn sweep_dead_links(&self, up: &UpperMap) {
        let dead = |id: u32| self.states[id as usize].load(Ordering::Relaxed) == state::FREE_DIRTY;
        let prune = |block: &[AtomicU32]| {
            let ids = list_ids(block);
            if ids.iter().any(|a| dead(a.load(Ordering::Relaxed))) {
                let keep: Vec<Cand> = ids
                    .iter()
                    .map(|a| a.load(Ordering::Relaxed))
                    .filter(|&id| !dead(id))
                    .map(|id| Cand { d: 0.0, id })
                    .collect();
                Self::write_list(block, &keep);
            }
        };
        for slot in 0..self.capacity as u32 {
            if self.is_live(slot) {
                prune(self.block0(slot));
            }
        }
        for (&slot, _) in up.iter() {
            let level = self.levels[slot as usize].load(Ordering::Relaxed) as usize;
            for layer in 1..=level {
                prune(self.block_upper(up, slot, layer));
            }
        }
        for st in self.states.iter() {
            let _ = st.compare_exchange(
                state::FREE_DIRTY,
                state::FREE_CLEAN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.removed_since_sweep.store(0, Ordering::Relaxed);
    }

    /// Repairs `a`'s list on `layer` after `removed` left it (gate held exclusively).
    ///
    /// The remaining links stay (they were chosen by the heuristic or by reverse linking, as in a
    /// fresh build, and re-selecting them all would thin the list); the vacancy goes to the
    /// removed node's neighbour nearest to `a` that the heuristic would keep beside `a`'s
    /// current links, or else to the nearest one, so `a` keeps its degree and a path across
    /// the hole.
    fn repair(&self, up: &UpperMap, a: u32, removed: u32, layer: usize) {
        let va = self.vector(a);
        let block = self.block(up, a, layer);
        let mut kept: Vec<Cand> = Vec::with_capacity(self.max_links(layer));
        for x in list_ids(block) {
            let id = x.load(Ordering::Relaxed);
            if id != a && id != removed && self.is_live(id) && !kept.iter().any(|c| c.id == id) {
                kept.push(Cand {
                    d: self.dist(va, self.vector(id)),
                    id,
                });
            }
        }
        let mut extra: Vec<Cand> = list_ids(self.block(up, removed, layer))
            .iter()
            .map(|x| x.load(Ordering::Relaxed))
            .filter(|&id| id != a && self.is_live(id) && !kept.iter().any(|c| c.id == id))
            .map(|id| Cand {
                d: self.dist(va, self.vector(id)),
                id,
            })
            .collect();
        extra.sort_unstable();
        // Only the nearest few are tried for diversity: each try costs one distance per kept
        // link, and past the first few the nearest one serves about as well.
        let diverse = extra.iter().take(REPAIR_TRIES).position(|c| {
            let vc = self.vector(c.id);
            kept.iter().all(|r| self.dist(self.vector(r.id), vc) >= c.d)
        });
        let pick = diverse.or((!extra.is_empty()).then_some(0));
        if let Some(i) = pick
            && kept.len() < self.max_links(layer)
        {
            kept.push(extra[i]);
        }
        kept.sort_unstable();
        Self::write_list(block, &kept);
    }
}
