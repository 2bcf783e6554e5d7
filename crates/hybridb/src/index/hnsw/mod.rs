//! An in-memory HNSW graph (hierarchical navigable small world) over dense `u32` slots.
//!
//! The engine assigns slots (reusing them after deletes); this index stores each slot's vector
//! and links and answers approximate k-nearest-neighbour queries. It is derived state: redb holds
//! the vectors, and the index can always be rebuilt from them or loaded from a checkpoint
//! ([`Hnsw::write_to`], [`Hnsw::read_from`]).
//!
//! # Metrics
//! [`Metric::L2`] ranks by squared Euclidean distance; [`Metric::Dot`] by `-dot(a, b)`. Cosine
//! similarity is served by the caller normalising every vector and every query to unit length
//! and using [`Metric::Dot`] (then distance = cosine distance - 1).
//!
//! # Layout
//! - vectors: one flat array, `slot * dim`;
//! - layer 0: one flat `u32` array with `1 + 2m` words per slot (a count, then up to `2m` ids);
//! - upper layers: a sparse map from the few slots with level > 0 to their lists (`1 + m` words
//!   per layer);
//! - per slot: a state byte (free, busy, live), a level and a spin lock;
//! - once quantized ([`Hnsw::quantize`]): a trained [`Quantizer`] and a code row per slot, which
//!   the walk (and an insert's construction search) ranks by before rescoring with the
//!   vectors (`codes.rs`).
//!
//! # Invariants
//! 1. Searches return only `Live` slots; a slot leaves results as soon as [`Hnsw::remove`]
//!    returns (removal holds the index gate exclusively, searches hold it shared).
//! 2. Every id stored in a list is below the capacity. Lists may briefly name a non-live slot (a
//!    link missed by removal's repair, or a node still being inserted); traversal skips them and
//!    the next rewrite of the list drops them, so no tombstones accumulate.
//! 3. A list is rewritten only under its node's lock; readers load it without locks (each word is
//!    atomic, so a reader sees a valid, possibly mixed, list).
//! 4. A slot's vector is written only by the thread that claimed the slot, before the slot is
//!    linked (a never-used slot), or under the exclusive gate (a reused slot). See `raw.rs`.
//! 5. The entry point is a live node of the highest level, or none when the index is empty.
//! 6. Single-threaded, the graph is a deterministic function of the parameters (seed included)
//!    and the sequence of operations.
//!
//! # Concurrency
//! Searches, [`Hnsw::insert_concurrent`] and [`Hnsw::remove`] take `&self` and may run from any
//! number of threads. Inserts proceed in parallel (per-node locks); removals and updates of a
//! live slot run one at a time and wait for in-flight searches and inserts; a consolidated batch
//! removal ([`Hnsw::remove_batch_parallel`]) repairs the lists while searches go on (other
//! changes wait) and holds the gate exclusively only for its short final pass. Growing the capacity
//! ([`Hnsw::reserve`]) takes `&mut self`, so the arrays are never reallocated under readers.

mod codes;
#[cfg(test)]
mod codes_tests;
mod error;
mod graph;
mod persist;
mod raw;
mod remove;
mod search;
#[cfg(test)]
mod tests;
mod visited;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Mutex, RwLock};

pub use codes::{DEFAULT_OVERSAMPLING, MAX_OVERSAMPLING, Quantizer};
pub use error::{DecodeError, HnswError};
pub use search::POOL_WALK_SHARE;

use crate::index::HeldVectors;
use crate::index::distance::{DistanceFn, kernels};
use raw::VectorStore;

/// How distance between two vectors is measured; smaller is closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2,
    /// Negated dot product. For cosine similarity, normalise vectors and queries first.
    Dot,
    /// Manhattan (L1) distance.
    L1,
}

/// Parameters of an index, fixed at construction and stored in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Vector dimension (> 0).
    pub dim: usize,
    /// Distance measure.
    pub metric: Metric,
    /// Links per node on upper layers; layer 0 keeps up to `2 * m`. At least 2. Default 16.
    pub m: usize,
    /// Size of the candidate list while inserting. Default 200.
    pub ef_construction: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl HnswParams {
    /// Default parameters for `dim`-dimensional vectors under `metric`: `m = 16`,
    /// `ef_construction = 200`, seed 0.
    ///
    /// # Example
    /// ```
    /// use hybridb::index::hnsw::{HnswParams, Metric};
    /// let p = HnswParams { m: 32, ..HnswParams::new(128, Metric::L2) };
    /// assert_eq!(p.ef_construction, 200);
    /// ```
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self {
            dim,
            metric,
            m: 16,
            ef_construction: 200,
            seed: 0,
        }
    }
}

/// Slot states (one byte each).
pub(crate) mod state {
    /// Never live since the index was created or loaded: no link names it.
    pub const FREE_CLEAN: u8 = 0;
    /// Claimed by an inserting thread.
    pub const BUSY: u8 = 1;
    /// In the graph and in results.
    pub const LIVE: u8 = 2;
    /// Removed: links missed by the repair may still name it.
    pub const FREE_DIRTY: u8 = 3;
}

/// Highest level a node may get (levels above are clamped; with `m >= 2` reaching it is
/// practically impossible).
const MAX_LEVEL: usize = 30;
/// `entry` value of an empty index.
const NO_ENTRY: u64 = u64::MAX;

/// The upper layers' lists by slot (`1 + m` words per layer above 0; see the module docs).
/// A search looks one up per step of its descent, so the map hashes slots with one multiply
/// instead of SipHash: its keys are slots the index assigns, not input an attacker chooses.
pub(super) type UpperMap = HashMap<u32, Box<[AtomicU32]>, BuildHasherDefault<SlotHasher>>;

/// Multiplicative hashing of a slot (the map's keys are `u32`): the product's low bits, which
/// pick hashbrown's bucket, are a bijection of the slot's low bits, and its top bits (the
/// bucket's tag) depend on every bit of the slot.
#[derive(Default)]
pub(super) struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, slot: u32) {
        self.0 = (u64::from(slot) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// An HNSW index over dense `u32` slots. See the [module docs](self) for invariants.
///
/// # Example
/// ```
/// use hybridb::index::hnsw::{Hnsw, HnswParams, Metric};
/// let mut index = Hnsw::new(HnswParams::new(2, Metric::L2));
/// index.insert(0, &[0.0, 0.0]).unwrap();
/// index.insert(1, &[1.0, 1.0]).unwrap();
/// let hits = index.search(&[0.9, 0.9], 1, 16);
/// assert_eq!(hits[0].0, 1);
/// ```
pub struct Hnsw {
    params: HnswParams,
    kernel: DistanceFn,
    /// 1.0 for L2, -1.0 for Dot.
    sign: f32,
    level_mult: f64,
    capacity: usize,
    /// Words per slot in `links0`: `1 + 2m`.
    stride0: usize,
    vectors: VectorStore,
    links0: raw::Zeroed<AtomicU32>,
    states: raw::Zeroed<AtomicU8>,
    levels: raw::Zeroed<AtomicU8>,
    locks: raw::Zeroed<AtomicBool>,
    /// Lists of layers 1..=level for nodes with level > 0, `1 + m` words per layer.
    upper: RwLock<UpperMap>,
    /// `level << 32 | slot` of the entry point, or [`NO_ENTRY`].
    entry: AtomicU64,
    /// Serialises changes of the entry point by inserts.
    entry_lock: Mutex<()>,
    /// Shared by searches and inserts, exclusive for removals and slot reuse.
    gate: RwLock<()>,
    /// Shared by inserts and single removals; exclusive for a consolidated removal, which
    /// repairs the lists while searches go on and so must see no other change of them (see
    /// `remove::remove_consolidated`). Always taken before the gate.
    changes: RwLock<()>,
    len: AtomicUsize,
    level_counter: AtomicU64,
    /// Removals since dead links were last swept (see `remove::sweep_dead_links`).
    removed_since_sweep: AtomicUsize,
    /// The trained quantizer and code rows, once the index is quantized (see `codes.rs`).
    codes: RwLock<Option<std::sync::Arc<codes::Codes>>>,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("params", &self.params)
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn atomics_u32(n: usize) -> raw::Zeroed<AtomicU32> {
    raw::Zeroed::new(n)
}

fn atomics_u8(n: usize) -> raw::Zeroed<AtomicU8> {
    raw::Zeroed::new(n)
}

impl Hnsw {
    /// Creates an empty index with capacity 0 ([`Hnsw::insert`] grows it as needed).
    ///
    /// # Panics
    /// If `params.dim == 0` or `params.m < 2` (programming errors; collection configs are
    /// validated before an index is built).
    pub fn new(params: HnswParams) -> Self {
        Self::with_capacity(params, 0)
    }

    /// Creates an empty index with room for slots `0..capacity`.
    ///
    /// # Panics
    /// As [`Hnsw::new`].
    pub fn with_capacity(params: HnswParams, capacity: usize) -> Self {
        assert!(params.dim > 0, "hnsw: dim must be > 0");
        assert!(params.m >= 2, "hnsw: m must be >= 2");
        let k = kernels();
        let (kernel, sign) = match params.metric {
            Metric::L2 => (k.l2_squared, 1.0),
            Metric::Dot => (k.dot, -1.0),
            Metric::L1 => (k.l1, 1.0),
        };
        let stride0 = 1 + 2 * params.m;
        Self {
            params,
            kernel,
            sign,
            level_mult: 1.0 / (params.m as f64).ln(),
            capacity,
            stride0,
            vectors: VectorStore::new(capacity, params.dim),
            links0: atomics_u32(capacity * stride0),
            states: atomics_u8(capacity),
            levels: atomics_u8(capacity),
            locks: raw::Zeroed::new(capacity),
            upper: RwLock::new(UpperMap::default()),
            entry: AtomicU64::new(NO_ENTRY),
            entry_lock: Mutex::new(()),
            gate: RwLock::new(()),
            changes: RwLock::new(()),
            len: AtomicUsize::new(0),
            level_counter: AtomicU64::new(0),
            removed_since_sweep: AtomicUsize::new(0),
            codes: RwLock::new(None),
        }
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Number of live slots.
    pub fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::Acquire)
    }

    /// `true` when no slot is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots `0..capacity()` can be inserted without growing.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// `true` if `slot` is live (inserted and not removed).
    pub fn contains(&self, slot: u32) -> bool {
        self.states
            .get(slot as usize)
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Acquire) == state::LIVE)
    }

    /// A copy of the vector held for `slot`, if it is live.
    pub fn vector_copy(&self, slot: u32) -> Option<Vec<f32>> {
        // A live slot's vector changes only after a removal, which needs the gate exclusively.
        let _gate = self.gate_shared();
        self.contains(slot).then(|| self.vector(slot).to_vec())
    }

    /// Calls `f` with the vector of each of `slots` that is live (`None` for the others), all
    /// borrowed under one hold of the gate (a live slot's vector changes only after a removal,
    /// which needs the gate exclusively).
    pub fn with_vectors(&self, slots: &[u32], f: &mut dyn FnMut(&HeldVectors<'_>)) {
        let _gate = self.gate_shared();
        let vectors: Vec<Option<&[f32]>> = slots
            .iter()
            .map(|&s| self.contains(s).then(|| self.vector(s)))
            .collect();
        f(&vectors);
    }

    /// Links, on any layer, from a live node to a slot that is not live (removals leave a few
    /// until the next sweep; a consolidated batch removal leaves none). A full scan, for tests
    /// and diagnostics.
    pub fn dead_links(&self) -> usize {
        let _gate = self.gate_shared();
        let up = self.read_upper();
        let mut dead = 0;
        for slot in (0..self.capacity as u32).filter(|&s| self.contains(s)) {
            let level = self.levels[slot as usize].load(std::sync::atomic::Ordering::Relaxed);
            for layer in 0..=level as usize {
                dead += search::list_ids(self.block(&up, slot, layer))
                    .iter()
                    .filter(|a| !self.contains(a.load(std::sync::atomic::Ordering::Relaxed)))
                    .count();
            }
        }
        dead
    }

    /// Moves the vectors into `file`, mapped shared from it: they then take page cache, which
    /// the kernel fills on use and drops under memory pressure, instead of the process's own
    /// memory, and [`Hnsw::memory_bytes`] no longer counts them. Meant for a quantized index,
    /// whose searches read only the few vectors they rescore. The file must be this index's
    /// alone for its lifetime (e.g. created unlinked): a truncation from outside would make a
    /// read of the mapping fault. Takes `&mut self`, like [`Hnsw::reserve`].
    ///
    /// # Errors
    /// Extending or mapping the file failed (the vectors stay where they were).
    #[cfg(unix)]
    pub fn keep_vectors_in(&mut self, file: std::fs::File) -> std::io::Result<()> {
        self.vectors = self.vectors.moved_to_file(self.capacity, file)?;
        Ok(())
    }

    /// Moves the vectors from their file ([`Hnsw::keep_vectors_in`]) back into memory (a
    /// no-op when they are there): for an index whose walk reads them again.
    pub fn keep_vectors_in_memory(&mut self) {
        if self.vectors.in_a_file() {
            self.vectors = self.vectors.moved_to_memory(self.capacity);
        }
    }

    /// Whether the vectors live in a mapped file ([`Hnsw::keep_vectors_in`]).
    pub fn vectors_in_file(&self) -> bool {
        self.vectors.in_a_file()
    }

    /// Bytes of the vector file ([`Hnsw::keep_vectors_in`]; 0 when the vectors are in memory).
    pub fn vector_file_bytes(&self) -> usize {
        if self.vectors.in_a_file() {
            self.vectors.bytes()
        } else {
            0
        }
    }

    /// Bytes held in memory by vectors and graph (flat arrays at capacity plus the
    /// upper-layer lists; vectors kept in a file are not counted, see
    /// [`Hnsw::vector_file_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        let vectors = if self.vectors.in_a_file() {
            0
        } else {
            self.vectors.bytes()
        };
        let flat = vectors
            + self.links0.len() * 4
            + self.states.len()
            + self.levels.len()
            + self.locks.len();
        let upper = self.read_upper();
        let per_entry = std::mem::size_of::<u32>() + std::mem::size_of::<Box<[AtomicU32]>>() + 8;
        flat + self.code_bytes()
            + upper
                .values()
                .map(|b| b.len() * 4 + per_entry)
                .sum::<usize>()
    }

    /// Grows the capacity to at least `capacity` slots (never shrinks). Takes `&mut self`: the
    /// arrays move, so no search or insert may run meanwhile.
    pub fn reserve(&mut self, capacity: usize) {
        if capacity <= self.capacity {
            return;
        }
        let old = self.capacity;
        let stride0 = self.stride0;
        self.vectors = self.vectors.grown(capacity);
        let codes = self.codes.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = codes.as_mut() {
            // `&mut self`: no search holds a clone of the codes.
            match std::sync::Arc::get_mut(c) {
                Some(c) => c.store = c.store.grown(capacity),
                None => debug_assert!(false, "codes shared while growing"),
            }
        }
        let mut links0 = atomics_u32(capacity * stride0);
        for (d, s) in links0.iter_mut().zip(self.links0.iter_mut()) {
            *d.get_mut() = *s.get_mut();
        }
        self.links0 = links0;
        let mut states = atomics_u8(capacity);
        let mut levels = atomics_u8(capacity);
        for i in 0..old {
            *states[i].get_mut() = *self.states[i].get_mut();
            *levels[i].get_mut() = *self.levels[i].get_mut();
        }
        self.states = states;
        self.levels = levels;
        self.locks = raw::Zeroed::new(capacity);
        self.capacity = capacity;
    }

    fn read_upper(&self) -> std::sync::RwLockReadGuard<'_, UpperMap> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts or
        // removes), so a poisoned lock is still usable.
        self.upper.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_upper(&self) -> std::sync::RwLockWriteGuard<'_, UpperMap> {
        self.upper.write().unwrap_or_else(|e| e.into_inner())
    }

    fn changes_shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.changes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn gate_shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    fn gate_exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn pack_entry(level: usize, slot: u32) -> u64 {
    ((level as u64) << 32) | u64::from(slot)
}

fn unpack_entry(e: u64) -> Option<(u32, usize)> {
    (e != NO_ENTRY).then_some((e as u32, (e >> 32) as usize))
}
