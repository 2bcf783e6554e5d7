//! Synthetic clustered vector data: a seeded gaussian mixture.
//!
//! The mixture has `clusters` components whose centres are themselves drawn from a wide gaussian
//! (so they are spread out), whose weights follow a Zipf-like law (a few big clusters, many small
//! ones), and whose spreads vary: each cluster has a log-normal overall scale, and its
//! per-dimension standard deviations follow a decaying spectrum (`(rank + 1)^-SPECTRUM_DECAY`,
//! assigned to the axes in a random order per cluster, times a log-normal jitter). The decay
//! gives each cluster a low effective dimension (a participation ratio of about 10 of 128 axes
//! at decay 0.6), as real embeddings have, rather than isotropic noise filling every axis. Base
//! vectors and queries are independent draws from the same mixture, so queries are never copies
//! of base rows.
//!
//! Invariant: the output depends only on the parameters and the seed (a ChaCha-based [`StdRng`]
//! drawn in a fixed order), not on the machine or the number of threads.

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use crate::vecs::Vecs;

/// Standard deviation of the centre coordinates.
const CENTRE_SPREAD: f64 = 1.0;
/// Median within-cluster standard deviation, relative to [`CENTRE_SPREAD`].
const CLUSTER_SPREAD: f64 = 0.45;
/// Log-normal sigma of the per-cluster scale.
const CLUSTER_SCALE_SIGMA: f64 = 0.4;
/// Log-normal sigma of the per-dimension scale within a cluster.
const AXIS_SCALE_SIGMA: f64 = 0.25;
/// Exponent of the per-cluster spectrum of axis standard deviations.
const SPECTRUM_DECAY: f64 = 0.6;
/// Zipf exponent of the cluster weights.
const ZIPF_EXPONENT: f64 = 1.1;

/// Standard normal variates by the Box–Muller transform (two per pair of uniforms).
#[derive(Debug, Default)]
pub struct Normal {
    spare: Option<f64>,
}

impl Normal {
    /// Next N(0, 1) variate.
    pub fn sample<R: Rng>(&mut self, rng: &mut R) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }
}

/// A gaussian mixture with varied cluster sizes and spreads.
#[derive(Clone, Debug)]
pub struct Mixture {
    dim: usize,
    /// `clusters * dim` centre coordinates.
    centres: Vec<f32>,
    /// `clusters * dim` per-dimension standard deviations.
    scales: Vec<f32>,
    /// Cumulative cluster weights, ending at 1.0.
    cumulative: Vec<f64>,
}

impl Mixture {
    /// Draws a mixture of `clusters` components in `dim` dimensions from `rng`.
    pub fn new<R: Rng>(dim: usize, clusters: usize, rng: &mut R, normal: &mut Normal) -> Self {
        assert!(dim > 0 && clusters > 0, "dim and clusters must be positive");
        // Decaying spectrum, normalised to a mean variance of 1 so that CLUSTER_SPREAD keeps its
        // meaning as the typical per-axis standard deviation.
        let mut spectrum: Vec<f64> = (0..dim)
            .map(|r| ((r + 1) as f64).powf(-SPECTRUM_DECAY))
            .collect();
        let rms = (spectrum.iter().map(|s| s * s).sum::<f64>() / dim as f64).sqrt();
        spectrum.iter_mut().for_each(|s| *s /= rms);

        let mut centres = Vec::with_capacity(clusters * dim);
        let mut scales = Vec::with_capacity(clusters * dim);
        let mut axes: Vec<usize> = (0..dim).collect();
        for _ in 0..clusters {
            centres.extend((0..dim).map(|_| (CENTRE_SPREAD * normal.sample(rng)) as f32));
            let cluster_scale =
                CENTRE_SPREAD * CLUSTER_SPREAD * (CLUSTER_SCALE_SIGMA * normal.sample(rng)).exp();
            // Fisher-Yates: which axis gets which rank of the spectrum, per cluster.
            for i in (1..dim).rev() {
                axes.swap(i, rng.random_range(0..=i));
            }
            scales.extend(axes.iter().map(|&rank| {
                let jitter = (AXIS_SCALE_SIGMA * normal.sample(rng)).exp();
                (cluster_scale * spectrum[rank] * jitter) as f32
            }));
        }
        // Zipf-like weights; centres are random, so rank order carries no other meaning.
        let weights: Vec<f64> = (1..=clusters)
            .map(|r| (r as f64).powf(-ZIPF_EXPONENT))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        *cumulative.last_mut().expect("clusters > 0") = 1.0;
        Self {
            dim,
            centres,
            scales,
            cumulative,
        }
    }

    /// Number of components.
    pub fn clusters(&self) -> usize {
        self.cumulative.len()
    }

    /// Draws one point into `out` (length `dim`) and returns its cluster.
    pub fn sample_into<R: Rng>(&self, rng: &mut R, normal: &mut Normal, out: &mut [f32]) -> usize {
        let u = rng.random::<f64>();
        let c = self
            .cumulative
            .partition_point(|&p| p <= u)
            .min(self.clusters() - 1);
        let centre = &self.centres[c * self.dim..(c + 1) * self.dim];
        let scale = &self.scales[c * self.dim..(c + 1) * self.dim];
        for ((o, &m), &s) in out.iter_mut().zip(centre).zip(scale) {
            *o = m + s * normal.sample(rng) as f32;
        }
        c
    }

    /// Draws `n` points as a flat set.
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R, normal: &mut Normal) -> Vecs<f32> {
        let mut data = vec![0.0f32; n * self.dim];
        for row in data.chunks_exact_mut(self.dim) {
            self.sample_into(rng, normal, row);
        }
        Vecs {
            dim: self.dim,
            data,
        }
    }
}

/// Base and query sets drawn from one seeded mixture.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The base vectors (`n` rows).
    pub base: Vecs<f32>,
    /// The query vectors (independent draws from the same mixture).
    pub queries: Vecs<f32>,
}

/// Generates `n` base vectors and `queries` query vectors of dimension `dim` from a mixture of
/// `clusters` components. Deterministic for a given seed.
pub fn generate(n: usize, queries: usize, dim: usize, clusters: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = Normal::default();
    let mixture = Mixture::new(dim, clusters, &mut rng, &mut normal);
    let base = mixture.sample(n, &mut rng, &mut normal);
    let queries = mixture.sample(queries, &mut rng, &mut normal);
    Dataset { base, queries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let a = generate(500, 20, 16, 7, 42);
        let b = generate(500, 20, 16, 7, 42);
        assert_eq!(a.base, b.base);
        assert_eq!(a.queries, b.queries);
        let c = generate(500, 20, 16, 7, 43);
        assert_ne!(a.base, c.base);
        assert_eq!((a.base.len(), a.queries.len(), a.base.dim), (500, 20, 16));
    }

    #[test]
    fn queries_are_not_copies_of_base_rows() {
        let d = generate(300, 30, 8, 5, 1);
        for q in d.queries.rows() {
            assert!(d.base.rows().all(|b| b != q));
        }
    }

    #[test]
    fn clusters_have_varied_sizes() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut normal = Normal::default();
        let m = Mixture::new(8, 10, &mut rng, &mut normal);
        let mut counts = [0usize; 10];
        let mut out = [0.0f32; 8];
        for _ in 0..20_000 {
            counts[m.sample_into(&mut rng, &mut normal, &mut out)] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 0 && *max > 5 * *min, "{counts:?}");
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut normal = Normal::default();
        let xs: Vec<f64> = (0..100_000).map(|_| normal.sample(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
    }
}
