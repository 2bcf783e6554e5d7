//! k-means for the centers of [`super::RqCenters`]: k-means++ seeding from a seeded SplitMix64
//! stream, then a few Lloyd iterations, on an evenly spaced subsample.
//!
//! # Invariants
//! 1. Deterministic: the same sample, `k` and seed give the same centers on every machine
//!    (sums in `f64`, the random stream written here, ties to the lower index).
//! 2. Every center returned is finite and distinct from the others at seeding: when fewer
//!    than `k` distinct points exist, fewer centers come back (at least one for a non-empty
//!    sample). A cluster that empties keeps its previous center.

use crate::index::distance::kernels;

/// At most this many sample vectors are clustered (evenly spaced over the sample): the
/// centers need only a coarse partition, and the cost is `n · k · dim` per iteration.
pub(super) const MAX_POINTS: usize = 4096;

/// Lloyd iterations after seeding (fewer when the assignment stops changing).
pub(super) const ITERATIONS: usize = 6;

/// The probe's share of the work: at most this many points and [`PROBE_ITERATIONS`]
/// iterations, to tell unclustered data (most real embeddings) cheaply (see
/// `RqCenters::train`).
pub(super) const PROBE_POINTS: usize = 1024;

/// Lloyd iterations of the probe.
pub(super) const PROBE_ITERATIONS: usize = 2;

/// SplitMix64 (the rotation's stream): uniform `f64` in `[0, 1)`.
struct SplitMix(u64);

impl SplitMix {
    fn uniform(&mut self) -> f64 {
        crate::index::quant::rotation::uniform(&mut self.0)
    }
}

/// The index of the nearest of `centers` (rows of `dim`) to `v` and its squared distance;
/// ties go to the lower index.
pub(super) fn nearest(centers: &[f32], dim: usize, v: &[f32]) -> (usize, f32) {
    let l2 = kernels().l2_squared;
    let mut best = (0, f32::INFINITY);
    for (j, c) in centers.chunks_exact(dim).enumerate() {
        let d = l2(v, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// The clustering of a sample: centers and the mean squared distance of the clustered
/// points to their nearest one.
pub(super) struct Clustering {
    /// `k' ≤ k` centers, rows of `dim`.
    pub(super) centers: Vec<f32>,
    /// Mean `|x - c_j|²` over the clustered points, `c_j` the nearest center.
    pub(super) mean_sq: f64,
}

/// Clusters `sample` (rows of `dim`, all finite, at least one) into at most `k` centers,
/// from at most `max_points` of its rows (evenly spaced) and `iterations` Lloyd steps.
pub(super) fn kmeans(
    sample: &[&[f32]],
    dim: usize,
    k: usize,
    seed: u64,
    max_points: usize,
    iterations: usize,
) -> Clustering {
    let step = sample.len().div_ceil(max_points.max(1)).max(1);
    let points: Vec<&[f32]> = sample.iter().step_by(step).copied().collect();
    let n = points.len();
    let k = k.clamp(1, n.max(1));
    let l2 = kernels().l2_squared;
    let mut rng = SplitMix(seed ^ 0x6B6D_6561_6E73_2B2B);

    // k-means++: each next center drawn with probability proportional to D², the squared
    // distance to the nearest center so far.
    let first = ((rng.uniform() * n as f64) as usize).min(n - 1);
    let mut centers: Vec<f32> = points[first].to_vec();
    let mut d2: Vec<f64> = points
        .iter()
        .map(|p| f64::from(l2(p, points[first])))
        .collect();
    while centers.len() / dim < k {
        let total: f64 = d2.iter().sum();
        if total <= 0.0 || !total.is_finite() {
            break; // every point sits on a center already
        }
        let mut target = rng.uniform() * total;
        let mut pick = n - 1;
        for (i, &d) in d2.iter().enumerate() {
            if target < d {
                pick = i;
                break;
            }
            target -= d;
        }
        if d2[pick] == 0.0 {
            // Rounding walked past the last positive weight: take the farthest point.
            pick = (0..n).fold(0, |b, i| if d2[i] > d2[b] { i } else { b });
        }
        let c = points[pick];
        centers.extend_from_slice(c);
        for (d, p) in d2.iter_mut().zip(&points) {
            *d = d.min(f64::from(l2(p, c)));
        }
    }

    // Lloyd iterations.
    let k = centers.len() / dim;
    let mut assign: Vec<usize> = vec![usize::MAX; n];
    for _ in 0..iterations {
        let mut changed = false;
        for (a, p) in assign.iter_mut().zip(&points) {
            let (j, _) = nearest(&centers, dim, p);
            changed |= *a != j;
            *a = j;
        }
        if !changed {
            break;
        }
        let mut sums = vec![0.0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (&j, p) in assign.iter().zip(&points) {
            counts[j] += 1;
            for (s, &x) in sums[j * dim..(j + 1) * dim].iter_mut().zip(*p) {
                *s += f64::from(x);
            }
        }
        for j in 0..k {
            if counts[j] > 0 {
                let inv = 1.0 / counts[j] as f64;
                for (c, &s) in centers[j * dim..(j + 1) * dim]
                    .iter_mut()
                    .zip(&sums[j * dim..(j + 1) * dim])
                {
                    *c = (s * inv) as f32;
                }
            }
        }
    }
    let mean_sq = points
        .iter()
        .map(|p| f64::from(nearest(&centers, dim, p).1))
        .sum::<f64>()
        / n as f64;
    Clustering { centers, mean_sq }
}
