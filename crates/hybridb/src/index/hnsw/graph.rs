//! Inserts: single (and updates), parallel bulk, and the linking behind them. Removal and
//! graph repair are in `remove.rs`.
//!
//! Neighbour selection is hnswlib's `getNeighborsByHeuristic2`: scanning candidates nearest
//! first, keep one only if it is closer to the base node than to every node already kept.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use super::codes::{Coded, Codes, Exact, Quantizer, Scorer};
use super::search::Cand;
use super::visited::with_visited;
use super::{Hnsw, HnswError, MAX_LEVEL, pack_entry, state, unpack_entry};
use crate::model::config::Quantization;

/// Holds a node's spin lock; releases it on drop.
struct NodeGuard<'a>(&'a AtomicBool);

impl Drop for NodeGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Whether an insert's construction search ranks by `quantizer`'s codes (rescoring what it
/// finds exactly) instead of by the `f32` vectors. Not for 1-bit codes: measured on pydoc
/// (384-d) and mnist10k (784-d), their graphs lost 0.002-0.007 recall@10 at ef 10-24, where
/// 2- and 4-bit and SQ8 graphs stayed within 0.002 of the exact build's
/// (`docs/quantization.md`, "Building on the codes").
fn guides_construction(quantizer: &Quantizer) -> bool {
    quantizer.kind() != Quantization::Rq1
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

    pub(super) fn max_links(&self, layer: usize) -> usize {
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
    pub(super) fn write_list(block: &[AtomicU32], sel: &[Cand]) {
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

    /// Links `slot` (vector `v`) on one layer: beam search from `cur` at `ef_construction`
    /// ranked by `q`, heuristic selection of `m` neighbours, then the reverse links. Moves
    /// `cur` to the nearest node found; its distance is by `q`, in and out.
    ///
    /// When `q` ranks by the codes' estimates (not [`Scorer::EXACT`]), the beam's candidates
    /// are rescored ([`Hnsw::rescore`]) before selection: the codes choose which nodes are
    /// candidates, every link decision (selection, pruning in [`Hnsw::connect`]) is exact.
    fn link_layer<'a, S: Scorer>(
        &'a self,
        slot: u32,
        v: &[f32],
        q: &S,
        cur: &mut Cand,
        blocks: impl Fn(u32) -> &'a [AtomicU32] + Copy,
    ) {
        let ef = self.params.ef_construction.max(self.params.m);
        let found: Vec<(u32, f32)> = with_visited(self.capacity, |vis| {
            let pool = self.beam(vis, q, &[*cur], ef, blocks, |_| true, |_| {});
            pool.iter().map(|e| (e.id, e.d)).collect()
        });
        let found: Vec<Cand> = if S::EXACT {
            found
        } else {
            let n = found.len();
            self.rescore(v, found, n)
        }
        .into_iter()
        .map(|(id, d)| Cand { d, id })
        .collect();
        if let Some(&best) = found.first() {
            // The nearest by exact distance, carried on by `q`'s.
            *cur = if S::EXACT {
                best
            } else {
                Cand {
                    d: q.dist(best.id),
                    id: best.id,
                }
            };
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
                        self.link(slot, vector, coded.as_ref().map(|(c, _)| &**c));
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
                        self.link(slot, vector, coded.as_ref().map(|(c, _)| &**c));
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Links a claimed (`BUSY`) slot whose vector (and code row, with `codes`) is written,
    /// then makes it live. The caller holds the gate shared and the changes lock, so `codes`
    /// are the published ones throughout.
    fn link(&self, slot: u32, v: &[f32], codes: Option<&Codes>) {
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

        // Prepared once for every layer; `None` (no codes yet, 1-bit codes, or none for this
        // metric): the construction search ranks by `f32`.
        let prepared = codes
            .filter(|c| guides_construction(&c.quantizer))
            .and_then(|c| Some((c, c.quantizer.prepare(v, self.params.metric)?)));
        match &prepared {
            Some((codes, query)) => {
                self.link_layers(slot, v, level, (ep, top), &Coded { codes, query });
            }
            None => self.link_layers(slot, v, level, (ep, top), &Exact { h: self, q: v }),
        }
        self.states[slot as usize].store(state::LIVE, Ordering::Release);
        self.len.fetch_add(1, Ordering::AcqRel);
        if entry_guard.is_some() && level > top {
            self.entry.store(pack_entry(level, slot), Ordering::Release);
        }
    }

    /// The descent of [`Hnsw::link`] from the entry point `ep` (on layer `top`), ranked by
    /// `q`: greedy on the layers above `level`, then [`Hnsw::link_layer`] on each layer from
    /// `min(level, top)` down to 0.
    fn link_layers<S: Scorer>(
        &self,
        slot: u32,
        v: &[f32],
        level: usize,
        (ep, top): (u32, usize),
        q: &S,
    ) {
        let mut cur = Cand {
            d: q.dist(ep),
            id: ep,
        };
        if top > 0 {
            // The upper-layer map is read-locked only here, not during the layer-0 work, so
            // inserts of new upper-layer nodes (which write-lock it) rarely wait.
            let up = self.read_upper();
            for layer in (level + 1..=top).rev() {
                self.greedy(q, &mut cur, layer, &up);
            }
            for layer in (1..=level.min(top)).rev() {
                self.link_layer(slot, v, q, &mut cur, |s| self.block_upper(&up, s, layer));
            }
        }
        self.link_layer(slot, v, q, &mut cur, |s| self.block0(s));
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
