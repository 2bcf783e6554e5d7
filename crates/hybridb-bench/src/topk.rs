//! A bounded "k smallest distances" collector used by exact scans.
//!
//! Ties are broken by the smaller row index, provided rows are offered in increasing index order
//! (a later row with an equal distance is rejected), which makes results deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One candidate: a distance and a row index, ordered by distance then index.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    dist: f32,
    row: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.row.cmp(&other.row))
    }
}

/// Keeps the `k` rows with the smallest distances seen so far.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
    /// Distance a new row must beat to enter; `+inf` until `k` rows are held.
    threshold: f32,
}

impl TopK {
    /// An empty collector for the best `k` rows.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            threshold: if k == 0 {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            },
        }
    }

    /// Offers `row` at distance `dist`. NaN distances are never kept.
    #[inline]
    pub fn push(&mut self, dist: f32, row: u32) {
        if dist < self.threshold {
            // `+ 0.0` maps -0.0 to 0.0 so that total_cmp treats them as equal.
            self.heap.push(Candidate {
                dist: dist + 0.0,
                row,
            });
            if self.heap.len() > self.k {
                self.heap.pop();
            }
            if self.heap.len() == self.k {
                self.threshold = self.heap.peek().map_or(f32::INFINITY, |c| c.dist);
            }
        }
    }

    /// The kept rows, best first.
    pub fn into_sorted_rows(self) -> Vec<u32> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| c.row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_k_smallest_with_index_tie_break() {
        let mut t = TopK::new(3);
        for (row, d) in [5.0, 1.0, 3.0, 1.0, 0.5, 3.0, 9.0].into_iter().enumerate() {
            t.push(d, row as u32);
        }
        assert_eq!(t.into_sorted_rows(), vec![4, 1, 3]);
        let mut t = TopK::new(0);
        t.push(1.0, 0);
        assert!(t.into_sorted_rows().is_empty());
    }
}
