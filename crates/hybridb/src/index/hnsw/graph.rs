//! Mutations: insert (and update), removal with graph repair, and parallel bulk insert.
//!
//! Neighbour selection is hnswlib's `getNeighborsByHeuristic2`: scanning candidates nearest
//! first, keep one only if it is closer to the base node than to every node already kept.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use super::codes::Exact;
use super::search::{Cand, list_ids};
use super::visited::with_visited;
use super::{Hnsw, HnswError, MAX_LEVEL, NO_ENTRY, UpperMap, pack_entry, state, unpack_entry};

/// Holds a node's spin lock; releases it on drop.
struct NodeGuard<'a>(&'a AtomicBool);

/// A removal batch at least this large is consolidated (see [`Hnsw::remove_batch_parallel`]):
/// one pass over every list (about the cost of a few dozen single removals at 200k nodes).
pub const CONSOLIDATE_MIN: usize = 32;

/// How many of the removed node's neighbours a repair tries, nearest first, for one that
/// keeps the repaired list diverse.
const REPAIR_TRIES: usize = 4;

impl Drop for NodeGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Hnsw {
    fn lock_node(&self, slot: u32) -> NodeGuard<'_> {
        let l = &self.locks[slot as usize];
        let mut spins = 0u32;
        while l
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        NodeGuard(l)
    }

    /// Level of the next inserted node: `floor(-ln(u) / ln(m))`, from the seed and a counter.
    pub(super) fn random_level(&self) -> usize {
        let n = self.level_counter.fetch_add(1, Ordering::Relaxed);
        let x = splitmix64(self.params.seed ^ splitmix64(n));
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
        ((-u.ln() * self.level_mult) as usize).min(MAX_LEVEL)
    }

    fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// The heuristic: from `cands` sorted nearest first, keeps at most `m` diverse nodes.
    pub(super) fn select(&self, cands: &[Cand], m: usize) -> Vec<Cand> {
        if cands.len() <= m {
            return cands.to_vec();
        }
        let mut out: Vec<Cand> = Vec::with_capacity(m);
        for &c in cands {
            if out.len() >= m {
                break;
            }
            let vc = self.vector(c.id);
            if out.iter().all(|r| self.dist(self.vector(r.id), vc) >= c.d) {
                out.push(c);
            }
        }
        out
    }

    /// Overwrites a list block with `sel` (caller holds the node lock or the gate exclusively).
    fn write_list(block: &[AtomicU32], sel: &[Cand]) {
        let Some((count, ids)) = block.split_first() else {
            return;
        };
        let n = sel.len().min(ids.len());
        for (a, c) in ids.iter().zip(&sel[..n]) {
            a.store(c.id, Ordering::Relaxed);
        }
        count.store(n as u32, Ordering::Release);
    }

    /// Adds the link `n -> new` on `layer`, pruning `n`'s list by the heuristic when full.
    fn connect<'a>(
        &'a self,
        blocks: impl Fn(u32) -> &'a [AtomicU32],
        n: u32,
        new: u32,
        new_vec: &[f32],
    ) {
        let _g = self.lock_node(n);
        let block = blocks(n);
        let Some((count, ids)) = block.split_first() else {
            return;
        };
        let cnt = (count.load(Ordering::Acquire) as usize).min(ids.len());
        if ids[..cnt].iter().any(|a| a.load(Ordering::Relaxed) == new) {
            return;
        }
        if cnt < ids.len() {
            ids[cnt].store(new, Ordering::Relaxed);
            count.store(cnt as u32 + 1, Ordering::Release);
            return;
        }
        let vn = self.vector(n);
        let mut cands = Vec::with_capacity(cnt + 1);
        cands.push(Cand {
            d: self.dist(vn, new_vec),
            id: new,
        });
        for a in &ids[..cnt] {
            let id = a.load(Ordering::Relaxed);
            let s = self.states[id as usize].load(Ordering::Acquire);
            // Free slots are dead links (invariant 2): drop them here.
            if s == state::LIVE || s == state::BUSY {
                cands.push(Cand {
                    d: self.dist(vn, self.vector(id)),
                    id,
                });
            }
        }
        cands.sort_unstable();
        let sel = self.select(&cands, ids.len());
        Self::write_list(block, &sel);
    }

    /// Links `slot` on one layer: beam search from `cur` at `ef_construction`, heuristic
    /// selection of `m` neighbours, then the reverse links. Moves `cur` to the nearest node found.
    fn link_layer<'a>(
        &'a self,
        slot: u32,
        v: &[f32],
        cur: &mut Cand,
        blocks: impl Fn(u32) -> &'a [AtomicU32] + Copy,
    ) {
        let ef = self.params.ef_construction.max(self.params.m);
        let found: Vec<Cand> = with_visited(self.capacity, |vis| {
            self.beam(
                vis,
                &Exact { h: self, q: v },
                &[*cur],
                ef,
                blocks,
                |_| true,
                |_| {},
            )
            .iter()
            .map(|e| Cand { d: e.d, id: e.id })
            .collect()
        });
        if let Some(&best) = found.first() {
            *cur = best;
        }
        let sel = self.select(&found, self.params.m);
        {
            let _g = self.lock_node(slot);
            Self::write_list(blocks(slot), &sel);
        }
        for c in &sel {
            self.connect(blocks, c.id, slot, v);
        }
    }

    /// Inserts `vector` at `slot`, growing the capacity if needed. An existing slot is updated:
    /// its vector is replaced and its links rebuilt (see [`Hnsw::insert_concurrent`]).
    pub fn insert(&mut self, slot: u32, vector: &[f32]) -> Result<(), HnswError> {
        if slot as usize >= self.capacity {
            let want = (slot as usize + 1).max(self.capacity * 2).max(16);
            self.reserve(want);
        }
        self.insert_concurrent(slot, vector)
    }

    /// Inserts `vector` at `slot` through `&self`, so several threads may insert (and search)
    /// at once. `slot` must be below [`Hnsw::capacity`].
    ///
    /// Updating a live slot removes it first (as [`Hnsw::remove`], waiting for in-flight
    /// searches) and then inserts it again; between the two it is absent from results.
    ///
    /// # Errors
    /// [`HnswError::DimensionMismatch`], [`HnswError::SlotOutOfCapacity`], or
    /// [`HnswError::SlotBusy`] when another thread is inserting the same slot. On error the
    /// index is unchanged.
    pub fn insert_concurrent(&self, slot: u32, vector: &[f32]) -> Result<(), HnswError> {
        if vector.len() != self.params.dim {
            return Err(HnswError::DimensionMismatch {
                expected: self.params.dim,
                got: vector.len(),
            });
        }
        if slot as usize >= self.capacity {
            return Err(HnswError::SlotOutOfCapacity {
                slot,
                capacity: self.capacity,
            });
        }
        let _changing = self.changes_shared();
        // Encoded before any other lock; the codes cannot change while `changes` is held.
        let coded = self.encode_row(vector)?;
        let write = |slot: u32| {
            self.write_claimed_vector(slot, vector);
            if let Some((codes, row)) = &coded {
                self.write_claimed_code(codes, slot, row);
            }
        };
        let st = &self.states[slot as usize];
        loop {
            match st.load(Ordering::Acquire) {
                state::LIVE => {
                    // (The changes lock is held already.)
                    self.remove_gated(slot);
                }
                state::BUSY => return Err(HnswError::SlotBusy { slot }),
                state::FREE_CLEAN => {
                    let gate = self.gate_shared();
                    if st
                        .compare_exchange(
                            state::FREE_CLEAN,
                            state::BUSY,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                    {
                        // Never live: no list names the slot (protocol rule 1).
                        write(slot);
                        self.link(slot, vector);
                        drop(gate);
                        return Ok(());
                    }
                }
                _ => {
                    let gate = self.gate_exclusive();
                    if st
                        .compare_exchange(
                            state::FREE_DIRTY,
                            state::BUSY,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                    {
                        // Dead links may name the slot: write under the exclusive gate (rule 2).
                        write(slot);
                        drop(gate);
                        let _gate = self.gate_shared();
                        self.link(slot, vector);
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Links a claimed (`BUSY`) slot whose vector is written, then makes it live. The caller
    /// holds the gate shared.
    fn link(&self, slot: u32, v: &[f32]) {
        let level = self.random_level();
        self.levels[slot as usize].store(level as u8, Ordering::Relaxed);
        Self::write_list(self.block0(slot), &[]);
        if level > 0 {
            let words = level * (1 + self.params.m);
            let lists = (0..words).map(|_| AtomicU32::new(0)).collect();
            self.write_upper().insert(slot, lists);
        }

        let mut entry_guard = None;
        let mut e = self.entry.load(Ordering::Acquire);
        if unpack_entry(e).is_none_or(|(_, top)| level > top) {
            entry_guard = Some(self.entry_lock.lock().unwrap_or_else(|p| p.into_inner()));
            e = self.entry.load(Ordering::Acquire);
        }
        let Some((ep, top)) = unpack_entry(e) else {
            self.states[slot as usize].store(state::LIVE, Ordering::Release);
            self.len.fetch_add(1, Ordering::AcqRel);
            self.entry.store(pack_entry(level, slot), Ordering::Release);
            return;
        };

        let mut cur = Cand {
            d: self.dist(v, self.vector(ep)),
            id: ep,
        };
        if top > 0 {
            // The upper-layer map is read-locked only here, not during the layer-0 work, so
            // inserts of new upper-layer nodes (which write-lock it) rarely wait.
            let up = self.read_upper();
            for layer in (level + 1..=top).rev() {
                self.greedy(&Exact { h: self, q: v }, &mut cur, layer, &up);
            }
            for layer in (1..=level.min(top)).rev() {
                self.link_layer(slot, v, &mut cur, |s| self.block_upper(&up, s, layer));
            }
        }
        self.link_layer(slot, v, &mut cur, |s| self.block0(s));
        self.states[slot as usize].store(state::LIVE, Ordering::Release);
        self.len.fetch_add(1, Ordering::AcqRel);
        if entry_guard.is_some() && level > top {
            self.entry.store(pack_entry(level, slot), Ordering::Release);
        }
    }

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
    fn remove_gated(&self, slot: u32) -> bool {
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

    /// Inserts many vectors using `threads` threads (0 = all cores), growing the capacity first.
    /// Each item is inserted as by [`Hnsw::insert_concurrent`]; the graph depends on thread
    /// timing, its quality does not.
    ///
    /// # Errors
    /// The first error met; items are validated for dimension before any is inserted, so a
    /// dimension error changes nothing.
    pub fn insert_batch_parallel(
        &mut self,
        items: &[(u32, &[f32])],
        threads: usize,
    ) -> Result<(), HnswError> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != self.params.dim) {
            return Err(HnswError::DimensionMismatch {
                expected: self.params.dim,
                got: v.len(),
            });
        }
        if let Some(max) = items.iter().map(|(s, _)| *s as usize).max() {
            self.reserve(max + 1);
        }
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        }
        .min(items.len().max(1));
        let this = &*self;
        if threads <= 1 {
            return items
                .iter()
                .try_for_each(|(s, v)| this.insert_concurrent(*s, v));
        }
        let next = AtomicUsize::new(0);
        let first_err = std::sync::Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((s, v)) = items.get(i) else { break };
                        if let Err(e) = this.insert_concurrent(*s, v) {
                            let mut slot = first_err.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(e);
                        }
                    }
                });
            }
        });
        match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
