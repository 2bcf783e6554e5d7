//! Rotated codes measured from per-cluster centers (RaBitQ's IVF setting), with one rotated
//! and quantized query for all of them.
//!
//! A single center `c` (the sample mean) scales every estimate's error by `|x - c|`; on data
//! made of far-apart clusters that is large against the distances between neighbours inside
//! a cluster. [`RqCenters`] keeps, besides `c` and the rotation `P` of an [`Rq`], `K` centers
//! `c_j` from k-means, and codes each vector relative to its nearest one: `z = P(x - c_j)`,
//! `r_j = |x - c_j|` and `scale` exactly as [`Rq::encode`] makes them, plus the center id `j`
//! and one factor `e`.
//!
//! The query is rotated and quantized once, as for [`Rq`] (`P(q - c)` for L2, `Pq` for dot),
//! and [`Rq`]'s estimate `S` from the code against it is `scale ⟨ȳ, P(q - c)⟩` (or
//! `scale ⟨ȳ, Pq⟩`). Its error grows with `|q - c|` (or `|q|`), large for a query inside a far
//! cluster; but most of `q - c` is the known `c_j - c`, and the code's estimate along it,
//! `g = scale ⟨ȳ, P(c_j - c)⟩`, is known at encode time. Subtracting it leaves the RaBitQ
//! estimate of `⟨x - c_j, q - c_j⟩`, whose error scales with `r_j |q - c_j|`: small for the
//! vectors near a query, which are the ones ranking decides. So
//! - L2: `|x - q|² = r_j² + |q - c_j|² - 2⟨x - c_j, q - c_j⟩ ≈ r_j² + |q - c_j|² - 2S + 2e`,
//!   with `e = g`;
//! - dot: `⟨x, q⟩ = ⟨c_j, q⟩ + ⟨x - c_j, q - c_j⟩ + ⟨x - c_j, c_j⟩ ≈ ⟨c_j, q⟩ + S + e`, with
//!   `e = ⟨x - c_j, c_j⟩ - scale ⟨ȳ, P c_j⟩` (exact minus estimated).
//!
//! (Storing the exact `⟨x - c_j, c_j - c⟩` instead of `g` keeps the error at `r_j |q - c|`:
//! measured on the 50k x 768 clustered set, rq2 at 2x rescoring 0.87 recall against 0.99 this
//! way; `docs/quantization.md`.) The per-center terms `|q - c_j|²` and `⟨c_j, q⟩` are
//! computed the first time an estimate meets center `j` (a walk meets few). `e` depends on
//! the metric, so a code is trained for one.
//!
//! # Invariants
//! 1. The code of `x` under center `j` is bit for bit [`Rq::encode`] of `x - c_j` with a zero
//!    center and the same rotation (`zero`); the query side is [`Rq::query`] of the trained
//!    [`Rq`] (center `c`). So a single-center [`Rq`] and its codes are untouched by this type.
//! 2. Every center is finite, there is at least one and at most [`MAX_CENTERS`], and `rotated`
//!    holds `P(c_j - c)` (L2) or `P c_j` (dot) for each (derived, never stored).
//! 3. A prepared query's per-center cache holds NaN until computed; a center id out of range
//!    (a corrupt row) estimates `+∞`, never panics.

use std::cell::Cell;

use super::kmeans::{self, nearest};
use super::{Rq, RqBits, RqError, RqFactors, RqMetric, RqQuery};
use crate::index::distance::kernels;
use crate::index::quant::kernels::slot;
use crate::model::entity::all_finite;

/// The most centers a code keeps.
pub const MAX_CENTERS: usize = 64;

/// Sample vectors per center when training: a sample of `n` vectors gets
/// `clamp(n / SAMPLE_PER_CENTER, 1, MAX_CENTERS)` centers.
pub const SAMPLE_PER_CENTER: usize = 16;

/// Training keeps per-cluster centers only when the sample's mean `|x - c_j|²` is below this
/// fraction of its mean `|x - c|²`. Measured (64 centers): 0.32 on the clustered 50k x 768
/// set, where centers lift rq2 at 2x rescoring from 0.85 to 0.99 recall; 0.52-0.77 on
/// mnist10k, bigann10k and pydoc, where they add 0.00-0.09 recall but cost 6-22 % of an
/// exact scan's speed (`docs/quantization.md`, "Per-cluster centers").
pub const CENTERS_BELOW: f64 = 0.45;

/// A probe clustering whose spread ratio is at least this skips the full one (and the
/// centers). Measured probe / full ratios at samples of 1k, 4k and 32k: pydoc 0.71-0.75 /
/// 0.75-0.77, mnist10k 0.50-0.54 / 0.54-0.55, bigann10k 0.55-0.59 / 0.57-0.59, synthetic
/// clusters (50k and 200k x 768) 0.25-0.30 / 0.29-0.33: fewer points fit tighter, which
/// outweighs the fewer iterations, so a probe at this margin above [`CENTERS_BELOW`] means the
/// full clustering would not clear it either.
const PROBE_SKIPS_ABOVE: f64 = 0.5;

/// The factors stored beside each code of an [`RqCenters`] (16 bytes in a row).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RqCenterFactors {
    /// `|x - c_j|` and the scale, as [`Rq::encode`] gives them for `x - c_j`.
    pub factors: RqFactors,
    /// L2: `scale ⟨ȳ, P(c_j - c)⟩`; dot: `⟨x - c_j, c_j⟩ - scale ⟨ȳ, P c_j⟩` (module docs).
    pub e: f32,
    /// The center `j`.
    pub center: u32,
}

/// A rotated code with per-cluster centers (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct RqCenters {
    /// The metric `e` is made for.
    metric: RqMetric,
    /// The trained code: center `c`, rotation, bits. Prepares queries.
    rq: Rq,
    /// The same rotation and bits with a zero center: encodes `x - c_j`.
    zero: Rq,
    /// `K` centers, rows of `dim`.
    centers: Vec<f32>,
    /// `P(c_j - c)` (L2) or `P c_j` (dot), rows of `padded_dim`.
    rotated: Vec<f32>,
}

/// A query prepared for estimates against one [`RqCenters`]' codes.
#[derive(Debug, Clone)]
pub struct RqCentersQuery {
    inner: RqQuery,
    query: Vec<f32>,
    /// `|q - c|²` (L2) or `-⟨q, c⟩` (dot): what `inner` adds to every estimate.
    base: f32,
    /// 2 (L2) or -1 (dot): the weight of `e`.
    e_weight: f32,
    /// Per center: what to add to `inner`'s estimate (`|q - c_j|² - |q - c|²` or
    /// `⟨q, c⟩ - ⟨q, c_j⟩`); NaN until first needed.
    adjust: Box<[Cell<f32>]>,
}

impl RqCentersQuery {
    /// The metric the query estimates.
    pub fn metric(&self) -> RqMetric {
        self.inner.metric()
    }
}

/// What [`RqCenters::train`] measured on the clustered sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CenterSpread {
    /// Mean `|x - c|²` (one center, the mean).
    pub single: f64,
    /// Mean `|x - c_j|²`, `c_j` the nearest center.
    pub centered: f64,
}

impl CenterSpread {
    /// `centered / single` (1 for a sample without spread): below [`CENTERS_BELOW`] the
    /// per-cluster centers pay off.
    pub fn ratio(&self) -> f64 {
        if self.single > 0.0 {
            self.centered / self.single
        } else {
            1.0
        }
    }
}

impl RqCenters {
    /// Trains a code of `bits` for vectors of `dim` values and estimates of `metric`: the
    /// center `c` and rotation as [`Rq::train`], then up to `max_centers` (at most
    /// [`MAX_CENTERS`]) centers by k-means on at most 4,096 sample vectors, seeded from
    /// `seed`. Also returns the spread of the clustered vectors around one center and around
    /// their nearest centers. Fails as [`Rq::train`].
    pub fn train(
        sample: &[&[f32]],
        dim: usize,
        bits: RqBits,
        metric: RqMetric,
        seed: u64,
        max_centers: usize,
    ) -> Result<(RqCenters, CenterSpread), RqError> {
        // A finite mean means every sample value is finite (an infinity would carry into it).
        let rq = Rq::train(sample, dim, bits, seed)?;
        let k = max_centers.clamp(1, MAX_CENTERS);
        let single = |max_points: usize| {
            let step = sample.len().div_ceil(max_points).max(1);
            let l2 = kernels().l2_squared;
            let (mut sum, mut n) = (0.0f64, 0usize);
            for row in sample.iter().step_by(step) {
                sum += f64::from(l2(row, rq.center()));
                n += 1;
            }
            sum / n.max(1) as f64
        };
        // A probe first (a quarter of the points, two iterations; see `PROBE_SKIPS_ABOVE`):
        // data without far-apart clusters (all three real sets here) stops there, and its
        // training costs a few milliseconds instead of a tenth of a second.
        let probe = kmeans::kmeans(
            sample,
            dim,
            k,
            seed,
            kmeans::PROBE_POINTS,
            kmeans::PROBE_ITERATIONS,
        );
        let probe_spread = CenterSpread {
            single: single(kmeans::PROBE_POINTS),
            centered: probe.mean_sq,
        };
        let (clustering, spread) = if probe_spread.ratio() >= PROBE_SKIPS_ABOVE {
            (probe, probe_spread)
        } else {
            let full = kmeans::kmeans(sample, dim, k, seed, kmeans::MAX_POINTS, kmeans::ITERATIONS);
            let spread = CenterSpread {
                single: single(kmeans::MAX_POINTS),
                centered: full.mean_sq,
            };
            (full, spread)
        };
        let center = rq.center().to_vec();
        Ok((
            RqCenters::from_parts(center, clustering.centers, bits, metric, rq.seed())?,
            spread,
        ))
    }

    /// Rebuilds a trained code from what [`RqCenters::center`], [`RqCenters::centers`],
    /// [`RqCenters::bits`], [`RqCenters::metric`] and [`RqCenters::seed`] return (a checkpoint
    /// stores these). Fails
    /// on an empty center, centers that are not whole rows of its dimension or more than
    /// [`MAX_CENTERS`] of them, or a value that is not finite.
    pub fn from_parts(
        center: Vec<f32>,
        centers: Vec<f32>,
        bits: RqBits,
        metric: RqMetric,
        seed: u64,
    ) -> Result<RqCenters, RqError> {
        let dim = center.len();
        let rq = Rq::from_parts(center, bits, seed)?;
        if centers.is_empty() || !centers.len().is_multiple_of(dim) {
            return Err(RqError::Dimension {
                expected: dim,
                got: centers.len(),
            });
        }
        if centers.len() / dim > MAX_CENTERS {
            return Err(RqError::Dimension {
                expected: MAX_CENTERS * dim,
                got: centers.len(),
            });
        }
        if centers.iter().any(|x| !x.is_finite()) {
            return Err(RqError::NonFinite);
        }
        let zero = Rq::from_parts(vec![0.0; dim], bits, seed)?;
        let p = zero.padded_dim();
        let mut rotated = vec![0.0; centers.len() / dim * p];
        for (cj, out) in centers.chunks_exact(dim).zip(rotated.chunks_exact_mut(p)) {
            let w: Vec<f32> = match metric {
                RqMetric::L2 => cj.iter().zip(rq.center()).map(|(a, b)| a - b).collect(),
                RqMetric::Dot => cj.to_vec(),
            };
            zero.rotation.apply(&w, out);
        }
        Ok(RqCenters {
            metric,
            zero,
            rq,
            centers,
            rotated,
        })
    }

    /// The single-center code these centers refine (center `c`, rotation, bits).
    pub fn rq(&self) -> &Rq {
        &self.rq
    }

    /// Bits per dimension.
    pub fn bits(&self) -> RqBits {
        self.rq.bits()
    }

    /// The metric the codes estimate.
    pub fn metric(&self) -> RqMetric {
        self.metric
    }

    /// Dimensions of the vectors.
    pub fn dim(&self) -> usize {
        self.rq.dim()
    }

    /// The global center `c` (the sample mean) queries are rotated around.
    pub fn center(&self) -> &[f32] {
        self.rq.center()
    }

    /// The per-cluster centers, [`RqCenters::count`] rows of [`RqCenters::dim`] values.
    pub fn centers(&self) -> &[f32] {
        &self.centers
    }

    /// How many per-cluster centers.
    pub fn count(&self) -> usize {
        self.centers.len() / self.dim()
    }

    /// The rotation's seed.
    pub fn seed(&self) -> u64 {
        self.rq.seed()
    }

    /// Bytes of one code, as [`Rq::code_bytes`] (the [`RqCenterFactors`] add 16).
    pub fn code_bytes(&self) -> usize {
        self.rq.code_bytes()
    }

    /// Bytes of the trained state: two rotations, the centers and their rotations.
    pub fn memory_bytes(&self) -> usize {
        self.rq.memory_bytes()
            + self.zero.memory_bytes()
            + (self.centers.capacity() + self.rotated.capacity()) * 4
    }

    /// Writes the code of `v` into `out` ([`RqCenters::code_bytes`] long), relative to its
    /// nearest center, and returns its factors. Fails as [`Rq::encode`].
    pub fn encode(&self, v: &[f32], out: &mut [u8]) -> Result<RqCenterFactors, RqError> {
        let dim = self.dim();
        if v.len() != dim {
            return Err(RqError::Dimension {
                expected: dim,
                got: v.len(),
            });
        }
        if !all_finite(v) {
            return Err(RqError::NonFinite);
        }
        let (j, _) = nearest(&self.centers, dim, v);
        let cj = &self.centers[j * dim..(j + 1) * dim];
        let residual: Vec<f32> = v.iter().zip(cj).map(|(x, c)| x - c).collect();
        let factors = self.zero.encode(&residual, out)?;
        let p = self.zero.padded_dim();
        let estimated = f64::from(factors.scale)
            * grid_dot(out, self.bits(), &self.rotated[j * p..(j + 1) * p]);
        let e = match self.metric {
            RqMetric::L2 => estimated as f32,
            RqMetric::Dot => (f64::from((kernels().dot)(&residual, cj)) - estimated) as f32,
        };
        if !e.is_finite() {
            return Err(RqError::NonFinite);
        }
        Ok(RqCenterFactors {
            factors,
            e,
            center: j as u32,
        })
    }

    /// Rotates and quantizes `query` for estimates of [`RqCenters::metric`] against this
    /// code's vectors (once, as [`Rq::query`]). Fails as [`Rq::query`].
    pub fn query(&self, query: &[f32]) -> Result<RqCentersQuery, RqError> {
        let inner = self.rq.query(query, self.metric)?;
        let k = kernels();
        let (base, e_weight) = match self.metric {
            RqMetric::L2 => ((k.l2_squared)(query, self.center()), 2.0),
            RqMetric::Dot => (-(k.dot)(query, self.center()), -1.0),
        };
        Ok(RqCentersQuery {
            inner,
            query: query.to_vec(),
            base,
            e_weight,
            adjust: (0..self.count()).map(|_| Cell::new(f32::NAN)).collect(),
        })
    }

    /// What center `j` adds to the single-center estimate of `q` (computed once per query).
    #[cold]
    fn adjust(&self, q: &RqCentersQuery, j: usize) -> f32 {
        let dim = self.dim();
        let cj = &self.centers[j * dim..(j + 1) * dim];
        let k = kernels();
        let own = match q.inner.metric() {
            RqMetric::L2 => (k.l2_squared)(&q.query, cj),
            RqMetric::Dot => -(k.dot)(&q.query, cj),
        };
        own - q.base
    }

    /// The estimated distance ("lower is better": squared L2, or the negated dot product)
    /// between the prepared query and the vector of `code` and `factors`, both as
    /// [`RqCenters::encode`] gave them. A code of another length gives a meaningless
    /// estimate, a center out of range `+∞`.
    #[inline]
    pub fn distance(&self, q: &RqCentersQuery, code: &[u8], f: RqCenterFactors) -> f32 {
        let j = f.center as usize;
        let Some(cell) = q.adjust.get(j) else {
            return f32::INFINITY;
        };
        let mut adjust = cell.get();
        if adjust.is_nan() {
            adjust = self.adjust(q, j);
            cell.set(adjust);
        }
        self.rq.distance(&q.inner, code, f.factors) + adjust + q.e_weight * f.e
    }
}

/// `⟨ȳ, w⟩` for the packed code of `bits` (`ȳ = u - (2^B - 1)/2` per field) and `w` of its
/// padded dimension, in `f64`. Fields past the code's end count as 0.
fn grid_dot(code: &[u8], bits: RqBits, w: &[f32]) -> f64 {
    let b = bits.bits();
    let block_bytes = 8 * b;
    let mask = ((1u16 << b) - 1) as u8;
    let half = f64::from(bits.top()) / 2.0;
    w.iter()
        .enumerate()
        .map(|(d, &x)| {
            let (byte, shift) = slot(d % 64, b);
            code.get(d / 64 * block_bytes + byte).map_or(0.0, |&v| {
                (f64::from((v >> shift) & mask) - half) * f64::from(x)
            })
        })
        .sum()
}

#[cfg(test)]
#[path = "centers_tests.rs"]
mod tests;
