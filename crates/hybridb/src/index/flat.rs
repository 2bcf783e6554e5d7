//! Exact search: every vector of a collection in one contiguous slot-ordered array, scanned
//! with the SIMD kernels.
//!
//! Invariant: `data` holds `dim` floats per slot up to the highest slot ever set; slots that
//! were removed keep stale values, which is harmless because only `allowed` slots are scanned.

use std::sync::RwLock;

use crate::index::bitset::SlotBitset;
use crate::index::distance::DistanceFn;
use crate::index::{HeldVectors, IndexMetric, VectorIndex, top_k};
use crate::model::sync::{read, write};

/// Contiguous vectors with an exact top-k scan.
#[derive(Debug)]
pub(crate) struct FlatIndex {
    dim: usize,
    distance: DistanceFn,
    sign: f32,
    data: RwLock<Vec<f32>>,
}

impl FlatIndex {
    pub(crate) fn new(dim: usize, metric: IndexMetric) -> Self {
        let (distance, sign) = metric.kernel();
        FlatIndex {
            dim,
            distance,
            sign,
            data: RwLock::new(Vec::new()),
        }
    }
}

impl VectorIndex for FlatIndex {
    fn reserve(&mut self, slots: usize) {
        let data = self.data.get_mut().unwrap_or_else(|e| e.into_inner());
        if data.len() < slots * self.dim {
            data.resize(slots * self.dim, 0.0);
        }
    }

    fn insert(&self, items: &[(u32, &[f32])]) -> Result<(), String> {
        let mut data = write(&self.data);
        for (slot, v) in items {
            let s = *slot as usize;
            if data.len() < (s + 1) * self.dim {
                data.resize((s + 1) * self.dim, 0.0);
            }
            data[s * self.dim..(s + 1) * self.dim].copy_from_slice(v);
        }
        Ok(())
    }

    fn remove(&self, _slots: &[u32]) {}

    fn search(
        &self,
        query: &[f32],
        k: usize,
        _ef: usize,
        _oversampling: f32,
        allowed: &SlotBitset,
        _all_held: bool,
    ) -> Vec<(u32, f32)> {
        let data = read(&self.data);
        let dim = self.dim;
        let (distance, sign) = (self.distance, self.sign);
        let slots = data.len() / dim;
        // The scan is memory-bound: walk the bitset a word at a time and the vectors in order,
        // so the hardware prefetcher sees one sequential stream.
        let scan = allowed
            .words()
            .iter()
            .enumerate()
            .flat_map(move |(w, &word)| {
                let mut bits = word;
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let b = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        w * 64 + b
                    })
                })
            })
            .filter(move |&s| s < slots)
            .map(|s| {
                let row = &data[s * dim..(s + 1) * dim];
                (s as u32, sign * distance(query, row))
            });
        top_k(scan, k)
    }

    fn search_by(
        &self,
        query: &[f32],
        k: usize,
        _ef: usize,
        _oversampling: f32,
        allowed: &dyn Fn(u32) -> bool,
        _share: f64,
    ) -> Vec<(u32, f32)> {
        let data = read(&self.data);
        let dim = self.dim;
        let (distance, sign) = (self.distance, self.sign);
        let scan = (0..data.len() / dim)
            .filter(|&s| allowed(s as u32))
            .map(|s| {
                (
                    s as u32,
                    sign * distance(query, &data[s * dim..(s + 1) * dim]),
                )
            });
        top_k(scan, k)
    }

    fn scan(
        &self,
        query: &[f32],
        k: usize,
        _oversampling: f32,
        allowed: &SlotBitset,
    ) -> Vec<(u32, f32)> {
        self.search(query, k, k, 1.0, allowed, false)
    }

    fn with_vectors(&self, slots: &[u32], f: &mut dyn FnMut(&HeldVectors<'_>)) {
        let data = read(&self.data);
        let dim = self.dim;
        let vectors: Vec<Option<&[f32]>> = slots
            .iter()
            .map(|&s| data.get(s as usize * dim..(s as usize + 1) * dim))
            .collect();
        f(&vectors);
    }

    fn memory_bytes(&self) -> usize {
        read(&self.data).capacity() * 4
    }
}
