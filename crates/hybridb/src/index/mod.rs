//! Vector search: distance kernels, the slot table, the vector indexes behind the
//! `VectorIndex` trait (exact scan and HNSW), the sparse-vector index (`sparse`: posting
//! lists with MaxScore top-k), and quantized codes (`quant`: SQ8 and rotated 1-, 2- and 4-bit
//! codes with asymmetric estimators and their SIMD kernels).
//!
//! Distances inside the engine are "lower is better": squared L2, or the negated dot product
//! (cosine is the dot product of unit vectors).

pub mod bitset;
pub mod bm25;
pub(crate) mod checkpoint;
pub(crate) mod delta;
pub mod distance;
pub(crate) mod flat;
pub mod hnsw;
pub(crate) mod hnsw_index;
mod maxscore;
pub(crate) mod originals;
pub mod quant;
pub(crate) mod slots;
pub mod sparse;
pub mod text;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bitset::SlotBitset;
use distance::{DistanceFn, kernels};

/// The distance an index ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexMetric {
    /// Squared Euclidean distance.
    L2,
    /// Negated dot product (cosine uses unit vectors).
    Dot,
    /// Manhattan (L1) distance.
    L1,
}

impl IndexMetric {
    /// The kernel and the sign to apply to its result.
    pub(crate) fn kernel(self) -> (DistanceFn, f32) {
        let k = kernels();
        match self {
            IndexMetric::L2 => (k.l2_squared, 1.0),
            IndexMetric::Dot => (k.dot, -1.0),
            IndexMetric::L1 => (k.l1, 1.0),
        }
    }
}

impl From<crate::model::config::Metric> for IndexMetric {
    fn from(m: crate::model::config::Metric) -> Self {
        match m {
            crate::model::config::Metric::L2 => IndexMetric::L2,
            crate::model::config::Metric::Manhattan => IndexMetric::L1,
            crate::model::config::Metric::Cosine | crate::model::config::Metric::Dot => {
                IndexMetric::Dot
            }
        }
    }
}

/// Vectors an index lends for some slots, in their order (`None`: not held).
pub(crate) type HeldVectors<'a> = [Option<&'a [f32]>];

/// A vector index over dense slots. Reads and inserts take `&self` and may run concurrently;
/// growing (`reserve`) takes `&mut self`.
///
/// Contract: `search` returns only slots in `allowed`, at most `k`, nearest first by the
/// engine distance; the caller breaks ties by entity id.
pub(crate) trait VectorIndex: Send + Sync {
    /// Makes room for slots `0..slots`.
    fn reserve(&mut self, slots: usize);
    /// Inserts or replaces the vectors of `items` (slots below the reserved capacity). An error
    /// means the index no longer matches the database: the caller rebuilds it.
    fn insert(&self, items: &[(u32, &[f32])]) -> Result<(), String>;
    /// Removes the vectors of `slots` (no longer in any `allowed` set), as one batch.
    fn remove(&self, slots: &[u32]);
    /// The nearest allowed slots to `query`; `ef` is the effort of approximate indexes, and
    /// a quantized index rescores `⌈k · oversampling⌉` candidates with `f32` vectors (others
    /// ignore it). `all_held` promises that `allowed` is exactly the set of slots the index holds, so an
    /// index may skip the per-slot check.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        allowed: &SlotBitset,
        all_held: bool,
    ) -> Vec<(u32, f32)>;
    /// As [`VectorIndex::search`] with a predicate instead of a set (graph plans that test
    /// each visited slot against a filter). `share` is the planner's estimate of the share of
    /// held slots `allowed` accepts (it picks the walk's bookkeeping, never its result).
    fn search_by(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        allowed: &dyn Fn(u32) -> bool,
        share: f64,
    ) -> Vec<(u32, f32)>;
    /// The `k` nearest among the `allowed` slots by a scan of just those: exact on `f32`
    /// vectors; a quantized index ranks by codes and rescores `⌈k · oversampling⌉`
    /// candidates. In the same form as [`VectorIndex::search`].
    fn scan(
        &self,
        query: &[f32],
        k: usize,
        oversampling: f32,
        allowed: &SlotBitset,
    ) -> Vec<(u32, f32)>;
    /// Number of vectors held, if the index tracks it (HNSW).
    fn held(&self) -> Option<usize> {
        None
    }
    /// Whether the index holds `slot`, if it tracks it (HNSW).
    fn holds(&self, _slot: u32) -> Option<bool> {
        None
    }
    /// Changes accepted but not yet built into the index structure (new vectors, searched
    /// exactly meanwhile, and removed nodes, kept out of results); [`VectorIndex::link_step`]
    /// builds them in.
    fn pending(&self) -> usize {
        0
    }
    /// Whether some changes wait in a delta (then a linker should call
    /// [`VectorIndex::link_step`] until it returns `Ok(false)`).
    fn deferring(&self) -> bool {
        false
    }
    /// Called once the changes of a reopen are applied: an index that deferred nothing
    /// stops deferring.
    fn finish_loading(&self) {}
    /// Builds one batch of deferred work into the index structure. `Ok(false)`: nothing is
    /// left, and later changes are built in directly. The caller holds the apply lock. An
    /// error means the index no longer matches the database.
    fn link_step(&self) -> Result<bool, String> {
        Ok(false)
    }
    /// Calls `f` with the vector (in index form) held for each of `slots`, `None` where the
    /// index holds none, all borrowed under one hold of the index's own locks (no copies).
    /// Callers check that each slot is live and still holds the entity they mean.
    fn with_vectors(&self, slots: &[u32], f: &mut dyn FnMut(&HeldVectors<'_>));
    /// Bytes held by vectors and structure.
    fn memory_bytes(&self) -> usize;
    /// Changes whenever a quantized index (re)trains its codes, which changes what its walk
    /// and scan cost (planner costs measured before are stale); 0 for others.
    fn codes_generation(&self) -> u64 {
        0
    }
    /// The HNSW index, if this is one (for checkpoints).
    fn as_hnsw(&self) -> Option<&hnsw_index::HnswIndex> {
        None
    }
    /// The HNSW index, if this is one, to change (placing its originals).
    fn as_hnsw_mut(&mut self) -> Option<&mut hnsw_index::HnswIndex> {
        None
    }
}

/// The `k` smallest `(slot, distance)` pairs, ascending by distance, **plus** every further
/// pair whose distance equals the k-th (so that the caller can break ties at the boundary by
/// entity id and then truncate to `k`).
pub(crate) fn top_k(items: impl Iterator<Item = (u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    #[derive(Clone, Copy)]
    struct C(f32, u32);
    impl PartialEq for C {
        fn eq(&self, o: &Self) -> bool {
            self.cmp(o) == Ordering::Equal
        }
    }
    impl Eq for C {}
    impl PartialOrd for C {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for C {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
        }
    }
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<C> = BinaryHeap::with_capacity(k + 1);
    // Pairs left out at a distance equal to the current worst kept one.
    let mut ties: Vec<(u32, f32)> = Vec::new();
    let mut worst = f32::INFINITY;
    for (slot, d) in items {
        if heap.len() == k && d >= worst {
            if d == worst {
                ties.push((slot, d));
            }
            continue;
        }
        if heap.len() < k {
            heap.push(C(d, slot));
        } else if let Some(out) = heap.pop() {
            heap.push(C(d, slot));
            if out.0 == heap.peek().map_or(f32::INFINITY, |c| c.0) {
                ties.push((out.1, out.0));
            }
        }
        if heap.len() == k {
            let w = heap.peek().map_or(f32::INFINITY, |c| c.0);
            if w < worst {
                ties.retain(|t| t.1 == w);
            }
            worst = w;
        }
    }
    let mut out: Vec<(u32, f32)> = heap
        .into_sorted_vec()
        .into_iter()
        .map(|c| (c.1, c.0))
        .collect();
    out.extend(ties.into_iter().filter(|t| t.1 == worst));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_boundary_ties() {
        let items = [
            (0, 3.0),
            (1, 1.0),
            (2, 2.0),
            (3, 2.0),
            (4, 2.0),
            (5, 0.5),
            (6, 2.0),
        ];
        let r = top_k(items.iter().copied(), 3);
        assert_eq!(&r[..2], &[(5, 0.5), (1, 1.0)]);
        let mut tied: Vec<u32> = r[2..].iter().map(|t| t.0).collect();
        tied.sort();
        assert_eq!(tied, vec![2, 3, 4, 6]);
        let r = top_k(items.iter().copied(), 1);
        assert_eq!(r, vec![(5, 0.5)]);
        assert!(top_k(items.iter().copied(), 0).is_empty());
        assert_eq!(top_k(items.iter().copied(), 10).len(), 7);
    }
}
