//! Scalar quantization to 8 bits (SQ8): each dimension of a vector is stored as one byte, a
//! quarter of its `f32`, and distances to a full-precision query are estimated from the bytes.
//!
//! Per dimension `i`, a code `c` stands for `offset[i] + step[i] * c` (`c` in `0..=255`);
//! `offset` and `step` are trained from a sample, from the `clip` and `1 - clip` quantiles of
//! each dimension, so that a few outliers do not stretch the grid (values outside are clamped).
//!
//! The estimators are asymmetric (the query stays `f32`) and reduce to one `f32 x u8` dot
//! product ([`crate::index::distance::Kernels::dot_u8`]):
//! - `q · x̂ = q · offset + Σ (q[i] * step[i]) * c[i]`, the first term and the scaled query
//!   computed once per query ([`Sq8::prepare`]);
//! - `|q - x̂|² = |q|² - 2 q · x̂ + |x̂|²`, with `|x̂|²` computed once per vector at encoding
//!   ([`Sq8::encode`] returns it).
//!
//! Error bound (the property test checks it): for a vector inside the trained range each
//! dimension is off by at most `step[i] / 2`, so the dot-product estimate is off by at most
//! `Σ |q[i]| * step[i] / 2`. Searches use the estimate to walk and rank candidates and rescore
//! an oversampled list with the `f32` originals.

use crate::index::distance::kernels;

/// A trained SQ8 grid (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Sq8 {
    offset: Vec<f32>,
    step: Vec<f32>,
}

/// A query prepared for estimates against SQ8 codes.
#[derive(Debug, Clone)]
pub struct Sq8Query {
    /// `q[i] * step[i]`.
    scaled: Vec<f32>,
    /// `q · offset`.
    base: f32,
    /// `|q|²`.
    norm2: f32,
}

impl Sq8 {
    /// Trains the grid from `sample` (rows of `dim` values, at least one), clipping each
    /// dimension at its `clip` and `1 - clip` quantiles (`clip` in `[0, 0.5)`; 0 keeps the full
    /// range). Returns `None` for an empty sample or a row of another length.
    pub fn train(sample: &[&[f32]], dim: usize, clip: f32) -> Option<Sq8> {
        if sample.is_empty() || dim == 0 || sample.iter().any(|r| r.len() != dim) {
            return None;
        }
        let clip = clip.clamp(0.0, 0.499);
        let mut offset = Vec::with_capacity(dim);
        let mut step = Vec::with_capacity(dim);
        let mut column: Vec<f32> = Vec::with_capacity(sample.len());
        for d in 0..dim {
            column.clear();
            column.extend(sample.iter().map(|r| r[d]));
            column.sort_by(f32::total_cmp);
            let at = |q: f32| column[((column.len() - 1) as f32 * q).round() as usize];
            let (lo, hi) = (at(clip), at(1.0 - clip));
            offset.push(lo);
            // A constant dimension still gets a usable (tiny) step.
            step.push(((hi - lo) / 255.0).max(f32::MIN_POSITIVE));
        }
        Some(Sq8 { offset, step })
    }

    /// Rebuilds a trained grid from what [`Sq8::offset`] and [`Sq8::step`] return (a
    /// checkpoint stores these). `None` if their lengths differ or are 0, or a value is not
    /// finite, or a step is not positive.
    pub fn from_parts(offset: Vec<f32>, step: Vec<f32>) -> Option<Sq8> {
        let ok = !offset.is_empty()
            && offset.len() == step.len()
            && offset.iter().all(|x| x.is_finite())
            && step.iter().all(|s| s.is_finite() && *s > 0.0);
        ok.then_some(Sq8 { offset, step })
    }

    /// The value of code 0, per dimension.
    pub fn offset(&self) -> &[f32] {
        &self.offset
    }

    /// The value between two codes, per dimension.
    pub fn step(&self) -> &[f32] {
        &self.step
    }

    /// Estimated Manhattan (L1) distance `Σ |q[i] - x̂[i]|` between `query` and the vector
    /// of `codes` (a scalar loop over the decoded values; no kernel).
    pub fn l1(&self, query: &[f32], codes: &[u8]) -> f32 {
        query
            .iter()
            .zip(codes)
            .zip(self.offset.iter().zip(&self.step))
            .map(|((q, &c), (o, s))| (q - (o + s * f32::from(c))).abs())
            .sum()
    }

    /// Dimensions.
    pub fn dim(&self) -> usize {
        self.offset.len()
    }

    /// Writes the codes of `v` into `out` (both of length [`Sq8::dim`]) and returns `|x̂|²`,
    /// the squared norm of the vector the codes stand for.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) -> f32 {
        let mut norm2 = 0.0f32;
        for (i, (&x, c)) in v.iter().zip(out.iter_mut()).enumerate() {
            let code = ((x - self.offset[i]) / self.step[i])
                .round()
                .clamp(0.0, 255.0);
            *c = code as u8;
            let back = self.offset[i] + self.step[i] * code;
            norm2 += back * back;
        }
        norm2
    }

    /// The vector `codes` stand for.
    pub fn decode(&self, codes: &[u8]) -> Vec<f32> {
        codes
            .iter()
            .enumerate()
            .map(|(i, &c)| self.offset[i] + self.step[i] * f32::from(c))
            .collect()
    }

    /// Prepares `query` for estimates.
    pub fn prepare(&self, query: &[f32]) -> Sq8Query {
        let k = kernels();
        Sq8Query {
            scaled: query.iter().zip(&self.step).map(|(q, s)| q * s).collect(),
            base: (k.dot)(query, &self.offset),
            norm2: (k.dot)(query, query),
        }
    }

    /// Estimated `q · x` for the vector of `codes`.
    #[inline]
    pub fn dot(&self, q: &Sq8Query, codes: &[u8]) -> f32 {
        q.base + (kernels().dot_u8)(&q.scaled, codes)
    }

    /// Estimated `|q - x|²` for the vector of `codes`, whose `|x̂|²` is `norm2`.
    #[inline]
    pub fn l2_squared(&self, q: &Sq8Query, codes: &[u8], norm2: f32) -> f32 {
        (q.norm2 - 2.0 * self.dot(q, codes) + norm2).max(0.0)
    }

    /// The bound on `|q · x - estimate|` for vectors inside the trained range:
    /// `Σ |q[i]| * step[i] / 2`.
    pub fn dot_error_bound(&self, query: &[f32]) -> f32 {
        query
            .iter()
            .zip(&self.step)
            .map(|(q, s)| q.abs() * s / 2.0)
            .sum()
    }

    /// Bytes of the grid (the codes are `dim` bytes per vector on top).
    pub fn memory_bytes(&self) -> usize {
        self.offset.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(data: &[Vec<f32>]) -> Vec<&[f32]> {
        data.iter().map(Vec::as_slice).collect()
    }

    proptest! {
        /// Inside the trained range, estimates stay within the stated bound (plus f32 rounding).
        #[test]
        fn estimates_stay_within_the_bound(
            data in prop::collection::vec(prop::collection::vec(-50.0f32..50.0, 24), 2..60),
            query in prop::collection::vec(-3.0f32..3.0, 24),
        ) {
            let sq = Sq8::train(&rows(&data), 24, 0.0).unwrap();
            let q = sq.prepare(&query);
            let bound = sq.dot_error_bound(&query);
            for x in &data {
                let mut codes = vec![0u8; 24];
                let norm2 = sq.encode(x, &mut codes);
                let true_dot: f32 = query.iter().zip(x).map(|(a, b)| a * b).sum();
                let est = sq.dot(&q, &codes);
                let slack = 1e-4 * (1.0 + true_dot.abs() + bound);
                prop_assert!((est - true_dot).abs() <= bound + slack, "{est} vs {true_dot}, bound {bound}");
                // The L2 estimate is exact for the decoded vector.
                let back = sq.decode(&codes);
                let l2_back: f32 = query.iter().zip(&back).map(|(a, b)| (a - b) * (a - b)).sum();
                let l2_est = sq.l2_squared(&q, &codes, norm2);
                prop_assert!((l2_est - l2_back).abs() <= 1e-3 * (1.0 + l2_back), "{l2_est} vs {l2_back}");
            }
        }
    }

    #[test]
    fn clipping_bounds_the_grid_and_clamps_outliers() {
        let mut data: Vec<Vec<f32>> = (0..1000).map(|i| vec![i as f32 / 1000.0, 5.0]).collect();
        data.push(vec![1e6, 5.0]);
        let sq = Sq8::train(&rows(&data), 2, 0.01).unwrap();
        let mut codes = [0u8; 2];
        sq.encode(&[1e6, 5.0], &mut codes);
        assert_eq!(codes[0], 255, "an outlier is clamped to the top code");
        let back = sq.decode(&codes);
        assert!(back[0] < 1.1, "the grid ignores the outlier: {back:?}");
        assert!(
            (back[1] - 5.0).abs() < 1e-6,
            "a constant dimension decodes exactly"
        );
        assert!(Sq8::train(&[], 2, 0.0).is_none());
        assert!(Sq8::train(&[&[1.0][..]], 2, 0.0).is_none());
    }
}
