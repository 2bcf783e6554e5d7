//! Sparse vectors: `(index, value)` pairs over a vocabulary of `u32` dimensions, as BM25 term
//! weights or learned sparse encoders (SPLADE) produce them; compared by dot product.
//!
//! Invariant of a checked vector ([`SparseVector::check`]): `indices` strictly increase (so no
//! index repeats), `values` has the same length, and every value is finite. Everything that
//! stores or scores a sparse vector relies on that order (merge joins, posting lists).

use serde::{Deserialize, Serialize};

use crate::model::error::EntityProblem;

/// A sparse vector: `values[i]` is the weight of dimension `indices[i]`; dimensions not listed
/// weigh 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVector {
    /// Dimensions with a weight, strictly increasing.
    pub indices: Vec<u32>,
    /// Their weights, finite, one per index.
    pub values: Vec<f32>,
}

impl SparseVector {
    /// A sparse vector from its parts (checked when written or searched).
    pub fn new(indices: Vec<u32>, values: Vec<f32>) -> Self {
        SparseVector { indices, values }
    }

    /// A sparse vector from `(index, value)` pairs in any order; pairs of the same index are
    /// summed. Use this when the pairs come unsorted (a tokenizer's counts, say).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, f32)>) -> Self {
        let mut pairs: Vec<(u32, f32)> = pairs.into_iter().collect();
        pairs.sort_by_key(|p| p.0);
        let mut out = SparseVector::default();
        for (i, v) in pairs {
            match out.indices.last() {
                Some(&last) if last == i => {
                    if let Some(w) = out.values.last_mut() {
                        *w += v;
                    }
                }
                _ => {
                    out.indices.push(i);
                    out.values.push(v);
                }
            }
        }
        out
    }

    /// Number of stored (non-zero) dimensions.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether no dimension has a weight.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Checks the invariant (see the module docs).
    pub fn check(&self) -> Result<(), EntityProblem> {
        if self.indices.len() != self.values.len() {
            return Err(EntityProblem::SparseShape {
                indices: self.indices.len(),
                values: self.values.len(),
            });
        }
        if let Some(position) = self.indices.windows(2).position(|w| w[0] >= w[1]) {
            return Err(EntityProblem::SparseOrder {
                position: position + 1,
                index: self.indices[position + 1],
            });
        }
        if let Some((position, &value)) =
            self.values.iter().enumerate().find(|(_, v)| !v.is_finite())
        {
            return Err(EntityProblem::NonFinite { position, value });
        }
        Ok(())
    }

    /// The dot product with `other` (both checked): a merge join over the indices, summed in
    /// index order, so the same two vectors always give the same `f32`.
    pub fn dot(&self, other: &SparseVector) -> f32 {
        let (mut i, mut j, mut sum) = (0, 0, 0.0f32);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * other.values[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_vectors_are_named() {
        let ok = SparseVector::new(vec![1, 5, 9], vec![0.5, -1.0, 2.0]);
        assert!(ok.check().is_ok());
        assert!(SparseVector::default().check().is_ok());
        assert_eq!(
            SparseVector::new(vec![1, 2], vec![1.0]).check(),
            Err(EntityProblem::SparseShape {
                indices: 2,
                values: 1
            })
        );
        assert_eq!(
            SparseVector::new(vec![3, 1], vec![1.0, 1.0]).check(),
            Err(EntityProblem::SparseOrder {
                position: 1,
                index: 1
            })
        );
        assert_eq!(
            SparseVector::new(vec![1, 4, 4], vec![1.0, 1.0, 1.0]).check(),
            Err(EntityProblem::SparseOrder {
                position: 2,
                index: 4
            })
        );
        assert!(matches!(
            SparseVector::new(vec![1, 2], vec![1.0, f32::NAN]).check(),
            Err(EntityProblem::NonFinite { position: 1, .. })
        ));
    }

    #[test]
    fn pairs_sort_and_merge_and_dot_is_a_merge_join() {
        let v = SparseVector::from_pairs([(9, 1.0), (2, 0.5), (9, 2.0), (0, -1.0)]);
        assert_eq!(v, SparseVector::new(vec![0, 2, 9], vec![-1.0, 0.5, 3.0]));
        assert!(v.check().is_ok());
        let w = SparseVector::new(vec![2, 3, 9], vec![2.0, 7.0, 1.0]);
        assert_eq!(v.dot(&w), 0.5 * 2.0 + 3.0);
    }
}
