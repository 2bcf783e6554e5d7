//! Recall against a ground truth, computed exactly as `shared/bench/peers.py` does:
//! the mean over queries of |returned top-k ∩ ground-truth top-k| / k.

use std::collections::HashSet;

use crate::vecs::Vecs;

/// Recall@k of `results` (one list of row indices per query, best first) against `gt`
/// (one row per query, nearest first). Only the first `k` entries of each side count, and
/// duplicates in a result list count once. Returns 0.0 when there are no queries.
///
/// Panics if `gt` has fewer rows than `results` or fewer than `k` columns.
pub fn recall_at_k(results: &[Vec<usize>], gt: &Vecs<i32>, k: usize) -> f64 {
    assert!(
        k > 0 && k <= gt.dim,
        "k = {k} but ground truth has {} columns",
        gt.dim
    );
    assert!(
        gt.len() >= results.len(),
        "fewer ground-truth rows than queries"
    );
    if results.is_empty() {
        return 0.0;
    }
    let total: f64 = results
        .iter()
        .enumerate()
        .map(|(i, found)| {
            let truth: HashSet<i64> = gt.row(i)[..k].iter().map(|&x| i64::from(x)).collect();
            let found: HashSet<i64> = found.iter().take(k).map(|&x| x as i64).collect();
            found.intersection(&truth).count() as f64 / k as f64
        })
        .sum();
    total / results.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_matches_hand_computation() {
        // k = 2; ground truth has 3 columns, only the first 2 count.
        let gt = Vecs::new(3, vec![0, 1, 2, 5, 6, 7]).unwrap();
        // Query 0: {0, 2} ∩ {0, 1} = 1 → 0.5. Query 1: {6, 5} → 1.0. Mean 0.75.
        assert_eq!(recall_at_k(&[vec![0, 2], vec![6, 5, 9]], &gt, 2), 0.75);
        // Short or duplicated results are not rewarded.
        assert_eq!(recall_at_k(&[vec![1, 1], vec![]], &gt, 2), 0.25);
        assert_eq!(recall_at_k(&[], &gt, 2), 0.0);
    }
}
