//! [`VectorIndex`] over the [`Hnsw`] graph.
//!
//! Inserts of a whole write group run on up to `threads` threads (`insert_concurrent` is safe
//! from many threads). Searches pass the collection's live-slot bitset as the filter, so a
//! slot hidden by a committing delete never comes back; when the graph holds exactly the live
//! slots (the common case: no delete committing, no insert in flight) the cheaper unfiltered
//! search gives the same answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::index::bitset::SlotBitset;
use crate::index::hnsw::{Hnsw, HnswParams, Metric as HnswMetric};
use crate::index::{IndexMetric, VectorIndex, top_k};

/// Items below which a batch is inserted on the calling thread.
const PARALLEL_MIN: usize = 64;

/// The HNSW index of one collection.
pub(crate) struct HnswIndex {
    graph: Hnsw,
    threads: usize,
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
        };
        let params = HnswParams {
            m,
            ef_construction,
            ..HnswParams::new(dim, metric)
        };
        HnswIndex {
            graph: Hnsw::new(params),
            threads: threads.max(1),
        }
    }

    /// Wraps a graph loaded from a checkpoint.
    pub(crate) fn from_graph(graph: Hnsw, threads: usize) -> Self {
        HnswIndex {
            graph,
            threads: threads.max(1),
        }
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

    fn remove(&self, slots: &[u32]) {
        // One exclusive section for the whole group: searches wait once, not per slot.
        self.graph.remove_batch_parallel(slots, self.threads);
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &SlotBitset,
        all_held: bool,
    ) -> Vec<(u32, f32)> {
        if all_held {
            // The graph returns only its live nodes, which are exactly the allowed slots.
            self.graph.search(query, k, ef.max(k))
        } else {
            self.graph
                .search_filtered(query, k, ef.max(k), &|s| allowed.contains(s))
        }
    }

    fn search_by(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        self.graph.search_filtered(query, k, ef.max(k), allowed)
    }

    fn scan(&self, query: &[f32], k: usize, allowed: &SlotBitset) -> Vec<(u32, f32)> {
        let mut all = Vec::with_capacity(allowed.len());
        self.graph
            .scan(query, allowed.iter(), |slot, d| all.push((slot, d)));
        top_k(all.into_iter(), k)
    }

    fn held(&self) -> Option<usize> {
        Some(self.graph.len())
    }

    fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
    }

    fn as_hnsw(&self) -> Option<&HnswIndex> {
        Some(self)
    }
}
