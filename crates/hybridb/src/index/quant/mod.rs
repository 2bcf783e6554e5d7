//! Quantized codes for vectors, each with an asymmetric estimator (the query stays at higher
//! precision than the codes): [`Sq8`], 8 bits per dimension on a trained per-dimension grid,
//! and [`Rq`], rotated codes at 1, 2 or 4 bits per dimension (RaBitQ, Gao & Long, SIGMOD 2024,
//! and its extension to more bits, Gao et al., arXiv 2409.09913). Searches rank candidates by
//! the estimates and rescore an oversampled list with the `f32` originals; `docs/quantization.md`
//! has the measured recall and speed of each code.
//!
//! # Rotated codes
//! Training takes the mean of a sample as the center `c` and draws a random orthogonal
//! rotation `P` from a seed ([`Rotation`]: sign flips and fast Hadamard transforms over the
//! dimension padded to a multiple of 64, `p`). A vector `x` becomes `z = P(x - c)`, whose
//! coordinates are spread evenly whatever `x` looks like, so one grid fits all of them. Its code
//! is the point `ȳ` of the grid `{±1/2, ±3/2, …, ±(2^B - 1)/2}^p` closest in angle to `z`
//! (for one bit, the signs of `z`; for more, found exactly by walking the points where the
//! rounding changes), stored as fields `u = ȳ + (2^B - 1)/2` in `0..2^B`, `p * B / 8` bytes,
//! with two factors ([`RqFactors`]): `r = |x - c|` and `scale = r² / ⟨ȳ, z⟩`.
//!
//! The estimator: for unit `o = z / r` and any `q`, `⟨o, q⟩ ≈ ⟨ȳ, q⟩ / ⟨ȳ, o⟩`. It is
//! unbiased over the rotation, and its error is below
//! `√(1 - cos²) / cos * ε₀ / √(p - 1) * |q|` with probability about `1 - 2e^{-ε₀²/2}`, where
//! `cos = ⟨ȳ, o⟩ / |ȳ|` concentrates near 0.80 at 1 bit, 0.94 at 2, 0.995 at 4: the 4-bit
//! error is about an eighth of the 1-bit one. So
//! - L2: `|x - q|² ≈ |q - c|² + r² - 2 scale ⟨ȳ, P(q - c)⟩`,
//! - dot (cosine on unit vectors): `⟨x, q⟩ ≈ ⟨q, c⟩ + scale ⟨ȳ, P q⟩`.
//!
//! The query is rotated once and quantized to `s` with a step `Δ` (`|s| <= 127` for 2 and 4
//! bits, `|s| <= 7` for 1 bit, whose error dominates anyway), so that
//! `2 ⟨ȳ, Δ s⟩ = Δ (2 ⟨u, s⟩ - (2^B - 1) Σ s)`: per code, one integer inner product
//! ([`kernels`]: VNNI / AVX2 byte products for 2 and 4 bits, bit planes and popcounts for 1
//! bit) and three multiply-adds. Manhattan (L1) is not kept by a rotation and has no
//! estimator here ([`RqMetric`] has no variant for it): an L1 collection keeps `f32` or SQ8.
//!
//! # Per-cluster centers
//! [`RqCenters`] refines a rotated code for clustered data (RaBitQ's IVF setting): k-means
//! centers `c_j` (up to [`MAX_CENTERS`]), each vector coded as `x - c_j` for its nearest one,
//! with the center id and one more factor, so that the estimates' error scales with
//! `|x - c_j| |q - c_j|` instead of `|x - c| |q - c|`; the query is still rotated and quantized
//! once. Training keeps them only when they shrink the sample's spread enough
//! ([`CENTERS_BELOW`]); an [`Rq`] without centers is unchanged, codes and estimates alike.

pub mod kernels;
mod rotation;
mod rq;
mod sq8;

pub use rotation::Rotation;
pub use rq::{
    CENTERS_BELOW, CenterSpread, MAX_CENTERS, Rq, RqBits, RqCenterFactors, RqCenters,
    RqCentersQuery, RqError, RqFactors, RqMetric, RqQuery, SAMPLE_PER_CENTER,
};
pub use sq8::{Sq8, Sq8Query};
