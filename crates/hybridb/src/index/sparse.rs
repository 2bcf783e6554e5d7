//! The sparse-vector index: a posting list per dimension and exact top-k by dot product with
//! the MaxScore walk of `index::maxscore`.
//!
//! Each posting list holds `(slot, weight)` in increasing slot order with the largest and
//! smallest weight it ever held, so `q * weight` has an upper bound per query dimension; the
//! documents that survive pruning are scored exactly against their stored vector.
//!
//! Invariants:
//! - results equal a brute-force scan over the documents that share a dimension with the query
//!   (recall 1.0): scores are computed by [`SparseVector::dot`], the same function a scan
//!   uses, ordered best first with ties broken by slot; pruning only skips documents whose
//!   bound is below `θ` by more than the float error of summing in another order;
//! - a filter is applied inside the walk (`allowed` before scoring), so `k` results come back
//!   whenever `k` allowed documents share a dimension with the query;
//! - per-list bounds only widen between rebuilds (a removal leaves them as they were), which
//!   keeps them upper bounds.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::index::maxscore::{List, top_k_with_ties};
use crate::model::sparse::SparseVector;

/// One dimension's documents.
#[derive(Debug, Default, Clone)]
struct Posting {
    /// Strictly increasing.
    slots: Vec<u32>,
    weights: Vec<f32>,
    /// Largest and smallest weight held since the list was made (bounds, not exact).
    max: f32,
    min: f32,
}

/// An exact sparse-vector index over slots (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct SparseIndex {
    postings: HashMap<u32, Posting>,
    /// By slot.
    docs: Vec<Option<SparseVector>>,
    /// Slots that hold a vector.
    count: usize,
}

impl SparseIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of documents held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no document is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The vector held for `slot`.
    pub fn get(&self, slot: u32) -> Option<&SparseVector> {
        self.docs.get(slot as usize)?.as_ref()
    }

    /// Inserts `vector` for `slot`, replacing what the slot held. `vector` must be checked
    /// ([`SparseVector::check`]).
    pub fn insert(&mut self, slot: u32, vector: SparseVector) {
        self.remove(slot);
        for (&dim, &w) in vector.indices.iter().zip(&vector.values) {
            let p = self.postings.entry(dim).or_insert_with(|| Posting {
                max: w,
                min: w,
                ..Posting::default()
            });
            p.max = p.max.max(w);
            p.min = p.min.min(w);
            match p.slots.last() {
                Some(&last) if last >= slot => {
                    // A reused slot below the end (the slot was removed above, so it is absent).
                    let at = p.slots.partition_point(|&s| s < slot);
                    p.slots.insert(at, slot);
                    p.weights.insert(at, w);
                }
                _ => {
                    p.slots.push(slot);
                    p.weights.push(w);
                }
            }
        }
        let at = slot as usize;
        if self.docs.len() <= at {
            self.docs.resize(at + 1, None);
        }
        self.docs[at] = Some(vector);
        self.count += 1;
    }

    /// Removes the vector of `slot`, if any.
    pub fn remove(&mut self, slot: u32) {
        let Some(old) = self.docs.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.count -= 1;
        for dim in &old.indices {
            if let Some(p) = self.postings.get_mut(dim) {
                if let Ok(at) = p.slots.binary_search(&slot) {
                    p.slots.remove(at);
                    p.weights.remove(at);
                }
                if p.slots.is_empty() {
                    self.postings.remove(dim);
                }
            }
        }
    }

    /// Number of documents holding dimension `dim`.
    pub fn document_frequency(&self, dim: u32) -> usize {
        self.postings.get(&dim).map_or(0, |p| p.slots.len())
    }

    /// The inverse document frequency of `dim`, as Qdrant's IDF modifier defines it:
    /// `ln((N - n + 0.5) / (n + 0.5) + 1)`, with `N` documents of which `n` hold `dim`.
    pub fn idf(&self, dim: u32) -> f32 {
        let n = self.document_frequency(dim) as f64;
        let total = self.count as f64;
        ((total - n + 0.5) / (n + 0.5) + 1.0).ln() as f32
    }

    /// `query` with each weight multiplied by its dimension's [`SparseIndex::idf`].
    pub fn idf_weighted(&self, query: &SparseVector) -> SparseVector {
        SparseVector {
            indices: query.indices.clone(),
            values: query
                .indices
                .iter()
                .zip(&query.values)
                .map(|(&d, &w)| w * self.idf(d))
                .collect(),
        }
    }

    /// As [`Self::search_with_ties`], cut to `k` (ties at the boundary by slot).
    pub fn search(
        &self,
        query: &SparseVector,
        k: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut out = self.search_with_ties(query, k, allowed);
        out.truncate(k);
        out
    }

    /// The `k` allowed documents that share a dimension with `query` and score highest by dot
    /// product: `(slot, score)`, best first, ties by slot, plus every further
    /// document scoring exactly the `k`-th (for callers that break ties their own way). `query` must be checked.
    pub fn search_with_ties(
        &self,
        query: &SparseVector,
        k: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        // The query's dimensions the index holds, with their weight and posting list.
        let terms: Vec<(f32, &Posting)> = query
            .indices
            .iter()
            .zip(&query.values)
            .filter_map(|(dim, &q)| Some((q, self.postings.get(dim)?)))
            .collect();
        let lists = terms
            .iter()
            .map(|&(q, p)| List {
                slots: &p.slots,
                // A document may lack the dimension, so 0 bounds the contribution too.
                bound: (q * p.max).max(q * p.min).max(0.0),
            })
            .collect();
        top_k_with_ties(
            lists,
            k,
            allowed,
            |list, pos, _| terms[list].0 * terms[list].1.weights[pos],
            |doc, _| self.get(doc).map_or(0.0, |v| v.dot(query)),
        )
    }

    /// The same answer as [`SparseIndex::search`] by scoring every held document against
    /// `query` (the baseline the pruning is measured against, and the test oracle).
    pub fn search_exhaustive(
        &self,
        query: &SparseVector,
        k: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut scored: Vec<(u32, f32)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(slot, v)| Some((slot as u32, v.as_ref()?)))
            .filter(|(slot, v)| allowed(*slot) && shares_a_dimension(query, v))
            .map(|(slot, v)| (slot, v.dot(query)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }

    /// Heap bytes held (approximate).
    pub fn memory_bytes(&self) -> usize {
        let postings: usize = self
            .postings
            .values()
            .map(|p| p.slots.capacity() * 8 + 48)
            .sum();
        let docs: usize = self
            .docs
            .iter()
            .flatten()
            .map(|v| v.indices.capacity() * 8 + 64)
            .sum::<usize>()
            + self.docs.capacity() * std::mem::size_of::<Option<SparseVector>>();
        postings + docs
    }
}

/// Whether `a` and `b` hold a common dimension.
fn shares_a_dimension(a: &SparseVector, b: &SparseVector) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.indices.len() && j < b.indices.len() {
        match a.indices[i].cmp(&b.indices[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vector(pairs: &[(u32, f32)]) -> SparseVector {
        SparseVector::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn finds_the_best_overlapping_documents() {
        let mut ix = SparseIndex::new();
        ix.insert(0, vector(&[(1, 1.0), (2, 1.0)]));
        ix.insert(1, vector(&[(2, 3.0)]));
        ix.insert(2, vector(&[(7, 9.0)]));
        ix.insert(3, vector(&[(1, 0.5), (2, 0.5)]));
        let q = vector(&[(1, 1.0), (2, 1.0)]);
        let all = |_| true;
        assert_eq!(ix.search(&q, 10, &all), vec![(1, 3.0), (0, 2.0), (3, 1.0)]);
        assert_eq!(ix.search(&q, 1, &all), vec![(1, 3.0)]);
        assert_eq!(ix.search(&q, 2, &|s| s != 1), vec![(0, 2.0), (3, 1.0)]);
        ix.remove(1);
        ix.insert(0, vector(&[(2, 0.1)]));
        assert_eq!(ix.search(&q, 10, &all), vec![(3, 1.0), (0, 0.1)]);
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.document_frequency(2), 2);
        assert!(ix.search(&vector(&[(99, 1.0)]), 3, &all).is_empty());
    }

    #[test]
    fn ties_at_the_kth_score_all_come_back() {
        let mut index = SparseIndex::new();
        for slot in 0..6 {
            index.insert(slot, vector(&[(1, 1.0)]));
        }
        index.insert(6, vector(&[(1, 2.0)]));
        let q = vector(&[(1, 1.0)]);
        let all = |_: u32| true;
        let tied = index.search_with_ties(&q, 2, &all);
        assert_eq!(tied.len(), 7, "the best, then six tied at the 2nd score");
        assert_eq!(tied[0], (6, 2.0));
        assert_eq!(index.search(&q, 2, &all), vec![(6, 2.0), (0, 1.0)]);
    }

    #[test]
    fn idf_follows_the_bm25_formula() {
        let mut ix = SparseIndex::new();
        for s in 0..10 {
            let mut pairs = vec![(1, 1.0)];
            if s < 2 {
                pairs.push((2, 1.0));
            }
            ix.insert(s, vector(&pairs));
        }
        let want = |n: f64| ((10.0 - n + 0.5) / (n + 0.5) + 1.0).ln() as f32;
        assert!((ix.idf(1) - want(10.0)).abs() < 1e-6);
        assert!((ix.idf(2) - want(2.0)).abs() < 1e-6);
        assert!((ix.idf(3) - want(0.0)).abs() < 1e-6);
        assert!(ix.idf(2) > ix.idf(1), "rarer dimensions weigh more");
    }

    fn docs_strategy() -> impl Strategy<Value = Vec<Vec<(u32, i8)>>> {
        prop::collection::vec(prop::collection::vec((0u32..40, -3i8..=9), 0..12), 1..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Pruned search equals the exhaustive scan, with filters, removals and reused slots.
        #[test]
        fn pruned_search_equals_the_scan(
            docs in docs_strategy(),
            query in prop::collection::vec((0u32..40, -2i8..=5), 1..10),
            k in 1usize..15,
            removed in prop::collection::vec(0u32..120, 0..20),
            modulus in 1u32..5,
        ) {
            let mut ix = SparseIndex::new();
            for (slot, pairs) in docs.iter().enumerate() {
                let v = SparseVector::from_pairs(pairs.iter().map(|&(d, w)| (d, f32::from(w) / 4.0)));
                ix.insert(slot as u32, v);
            }
            for s in removed {
                ix.remove(s);
                // Reinsert some removed slots with other vectors (slot reuse).
                if s % 3 == 0 {
                    ix.insert(s, SparseVector::from_pairs([(s % 40, 1.5), ((s + 7) % 40, 0.25)]));
                }
            }
            let q = SparseVector::from_pairs(query.iter().map(|&(d, w)| (d, f32::from(w) / 2.0)));
            let allowed = |s: u32| s.is_multiple_of(modulus);
            prop_assert_eq!(ix.search(&q, k, &allowed), ix.search_exhaustive(&q, k, &allowed));
            let all = |_: u32| true;
            prop_assert_eq!(ix.search(&q, k, &all), ix.search_exhaustive(&q, k, &all));
        }
    }
}
