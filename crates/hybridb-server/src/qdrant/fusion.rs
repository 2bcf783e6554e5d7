//! Qdrant's fusion of prefetch results, with Qdrant's own formulas (so scores agree with a
//! Qdrant server and with `qdrant-client`'s in-memory engine):
//!
//! - RRF: a point scores `Σ 1 / ((rank + 1) / weight + k - 1)` over the lists it is in, `rank`
//!   from 0, `k` 2 by default; with weight 1 this is `1 / (rank + k)`.
//! - DBSF: each list's scores are mapped through `(s - (mean - 3σ)) / 6σ` with the sample
//!   standard deviation (`n - 1`), not clamped; a list of one point, or of equal scores,
//!   gives 0.5; then summed per point.
//!
//! `hybridb::fusion` has both methods, but its RRF weighs a list by multiplying its terms and
//! its DBSF uses the population deviation and clamps to `[0, 1]`, so neither reproduces
//! Qdrant's scores; these are a few lines each. Scores are taken as they come (a distance
//! too, as Qdrant does), and ties keep the order in which points first appear, as in
//! `qdrant-client` (a Qdrant server leaves the order of ties unspecified).

use std::collections::HashMap;

use hybridb::{EntityId, Hit};

/// Qdrant's default RRF constant.
pub(crate) const DEFAULT_RRF_K: usize = 2;

/// Sums `term(list, rank, hit)` per point over `lists`, best first, ties in order of first
/// appearance; the best `limit`.
fn fuse(
    lists: &[Vec<Hit>],
    limit: usize,
    mut term: impl FnMut(usize, usize, &Hit) -> f32,
) -> Vec<Hit> {
    let mut order: Vec<Hit> = Vec::new();
    let mut at: HashMap<EntityId, usize> = HashMap::new();
    for (l, list) in lists.iter().enumerate() {
        for (rank, hit) in list.iter().enumerate() {
            let score = term(l, rank, hit);
            match at.get(&hit.id) {
                Some(&i) => order[i].score += score,
                None => {
                    at.insert(hit.id, order.len());
                    let mut h = hit.clone();
                    h.score = score;
                    order.push(h);
                }
            }
        }
    }
    // A stable sort: equal scores keep the order of first appearance.
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    order.truncate(limit);
    order
}

/// Reciprocal Rank Fusion, Qdrant's formula (see the module docs). `weights` has one weight
/// per list (checked by the caller).
pub(crate) fn rrf(lists: &[Vec<Hit>], k: usize, weights: Option<&[f32]>, limit: usize) -> Vec<Hit> {
    fuse(lists, limit, |l, rank, _| {
        let w = weights.and_then(|w| w.get(l)).copied().unwrap_or(1.0);
        if w <= 0.0 {
            return 0.0;
        }
        1.0 / ((rank + 1) as f32 / w + k as f32 - 1.0)
    })
}

/// Distribution-Based Score Fusion, Qdrant's normalisation (see the module docs).
pub(crate) fn dbsf(lists: &[Vec<Hit>], limit: usize) -> Vec<Hit> {
    let bounds: Vec<Option<(f32, f32)>> = lists
        .iter()
        .map(|list| {
            if list.len() < 2 {
                return None;
            }
            let n = list.len() as f64;
            let mean = list.iter().map(|h| f64::from(h.score)).sum::<f64>() / n;
            let var = list
                .iter()
                .map(|h| (f64::from(h.score) - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            let sd = var.sqrt();
            (sd > 0.0).then_some(((mean - 3.0 * sd) as f32, (mean + 3.0 * sd) as f32))
        })
        .collect();
    fuse(lists, limit, |l, _, hit| match bounds[l] {
        Some((low, high)) => (hit.score - low) / (high - low),
        None => 0.5,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(ids: &[u128], scores: &[f32]) -> Vec<Hit> {
        ids.iter()
            .zip(scores)
            .map(|(&i, &s)| Hit::new(EntityId::from_u128(i), s))
            .collect()
    }

    fn pairs(h: &[Hit]) -> Vec<(u128, f32)> {
        h.iter()
            .map(|h| (h.id.as_uuid().as_u128(), h.score))
            .collect()
    }

    #[test]
    fn rrf_is_qdrants() {
        let a = hits(&[1, 2, 3], &[0.9, 0.8, 0.7]);
        let b = hits(&[3, 4], &[5.0, 4.0]);
        let fused = rrf(&[a.clone(), b.clone()], DEFAULT_RRF_K, None, 10);
        // 1/(rank + 2): point 3 is third in a and first in b.
        assert_eq!(
            pairs(&fused),
            [
                (3, 1.0 / 4.0 + 1.0 / 2.0),
                (1, 0.5),
                (2, 1.0 / 3.0),
                (4, 1.0 / 3.0)
            ]
        );
        let weighted = rrf(&[a, b], 60, Some(&[80.0, 20.0]), 2);
        let expect_1 = 1.0 / (1.0 / 80.0 + 59.0);
        assert_eq!(weighted[0].id, EntityId::from_u128(3));
        assert!((weighted[1].score - expect_1).abs() < 1e-7, "{weighted:?}");
    }

    #[test]
    fn dbsf_is_qdrants() {
        let a = hits(&[1, 2, 3], &[3.0, 2.0, 1.0]);
        let one = hits(&[4], &[7.0]);
        let fused = dbsf(&[a, one], 10);
        // mean 2, sample sd 1: (s - (-1)) / 6.
        assert_eq!(
            pairs(&fused),
            [(1, 4.0 / 6.0), (2, 0.5), (4, 0.5), (3, 2.0 / 6.0)]
        );
    }
}
