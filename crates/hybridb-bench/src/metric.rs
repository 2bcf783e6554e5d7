//! Similarity metrics as named on the command line and in reports.
//!
//! Every metric is reduced to a distance where smaller is better: squared L2 for `l2`, and the
//! negated inner product for `dot` and `cosine` (cosine works on unit-normalised vectors).

use clap::ValueEnum;

/// A similarity metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Metric {
    /// Euclidean distance (ranked by its square).
    L2,
    /// Cosine similarity (vectors are normalised to unit length first).
    Cosine,
    /// Inner product, higher is better. `ip` is accepted as in peers.py.
    #[value(alias = "ip")]
    Dot,
}

impl Metric {
    /// The name written in JSON reports, chosen to match `shared/bench/peers.py`
    /// (`l2`, `cosine`, and `ip` for the inner product) so that rows from both line up.
    pub fn report_name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "ip",
        }
    }

    /// Distance between `a` and `b` (smaller is better), using the fastest kernels of this CPU.
    /// For [`Metric::Cosine`] both vectors must already be unit-normalised.
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        let k = hybridb::index::distance::kernels();
        match self {
            Metric::L2 => (k.l2_squared)(a, b),
            Metric::Cosine | Metric::Dot => -(k.dot)(a, b),
        }
    }

    /// True when vectors must be unit-normalised before [`Metric::distance`] is meaningful.
    pub fn needs_normalising(self) -> bool {
        self == Metric::Cosine
    }
}

/// Scales `v` to unit Euclidean length; a zero vector is left unchanged.
pub fn normalise(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let inv = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

/// Normalises every `dim`-long row of a flat buffer in place.
pub fn normalise_rows(data: &mut [f32], dim: usize) {
    data.chunks_exact_mut(dim).for_each(normalise);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_rank_smaller_as_better() {
        let q = [1.0, 0.0];
        let near = [0.9, 0.1];
        let far = [-1.0, 0.0];
        for m in [Metric::L2, Metric::Dot, Metric::Cosine] {
            assert!(m.distance(&q, &near) < m.distance(&q, &far), "{m:?}");
        }
        assert_eq!(Metric::L2.distance(&[0.0, 0.0], &[3.0, 4.0]), 25.0);
    }

    #[test]
    fn normalise_gives_unit_length() {
        let mut v = [3.0, 4.0];
        normalise(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = [0.0, 0.0];
        normalise(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }
}
