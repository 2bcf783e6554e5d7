//! Rotated codes at 1, 2 and 4 bits per dimension with an asymmetric estimator (RaBitQ and
//! extended RaBitQ; see the docs of [`super`] for the method and its error).

use super::kernels::{QUERY_PLANES, code_kernels, rotation_kernel};
use super::rotation::Rotation;
use crate::index::distance::kernels;
use crate::model::entity::all_finite;

pub use centers::{
    CENTERS_BELOW, CenterSpread, MAX_CENTERS, RqCenterFactors, RqCenters, RqCentersQuery,
    SAMPLE_PER_CENTER,
};

/// Bits per dimension of a rotated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RqBits {
    /// 1 bit: the signs of the rotated vector (RaBitQ).
    One,
    /// 2 bits.
    Two,
    /// 4 bits.
    Four,
}

impl RqBits {
    /// The number of bits.
    pub fn bits(self) -> usize {
        match self {
            RqBits::One => 1,
            RqBits::Two => 2,
            RqBits::Four => 4,
        }
    }

    /// `1`, `2` or `4` as [`RqBits`]; other numbers have none.
    pub fn from_bits(bits: usize) -> Option<RqBits> {
        match bits {
            1 => Some(RqBits::One),
            2 => Some(RqBits::Two),
            4 => Some(RqBits::Four),
            _ => None,
        }
    }

    /// Levels of the largest code field, `2^B - 1`.
    fn top(self) -> i32 {
        (1 << self.bits()) - 1
    }

    /// The largest magnitude of a quantized query value: 7 (4-bit query) for 1-bit codes,
    /// whose bit-plane kernel takes [`QUERY_PLANES`] planes; 127 (`i8`) otherwise.
    fn query_max(self) -> f32 {
        match self {
            RqBits::One => ((1 << (QUERY_PLANES - 1)) - 1) as f32,
            _ => 127.0,
        }
    }
}

/// The distance a prepared query estimates. Cosine is [`RqMetric::Dot`] over unit vectors
/// (the engine normalises them before they reach an index). Manhattan (L1) has no estimator
/// from these codes: a rotation does not keep it, so it has no variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RqMetric {
    /// Squared Euclidean distance.
    L2,
    /// Negated dot product.
    Dot,
}

/// Why [`Rq`] refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RqError {
    /// The training sample holds no vector, or the dimension is 0.
    #[error("empty training sample")]
    EmptySample,
    /// A vector, center or output buffer of the wrong length.
    #[error("expected {expected} values, got {got}")]
    Dimension {
        /// The length needed.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A value that is NaN or infinite, or a norm that overflows.
    #[error("a value is not finite")]
    NonFinite,
}

/// The correction factors stored beside each code (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RqFactors {
    /// `|x - c|`, the distance of the vector to the center.
    pub norm: f32,
    /// `|x - c| / ⟨ȳ, o⟩`, where `o` is the rotated unit vector of `x - c` and `ȳ` its code's
    /// grid vector, so that `⟨x - c, q⟩ ≈ scale * ⟨ȳ, P q⟩` for the rotation `P` (0 for
    /// `x == c`).
    pub scale: f32,
}

/// A trained rotated code: a center, a rotation and a bit width (see the docs of [`super`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rq {
    bits: RqBits,
    rotation: Rotation,
    center: Vec<f32>,
}

/// A query prepared for estimates against one [`Rq`]'s codes: rotated once and quantized.
#[derive(Debug, Clone)]
pub struct RqQuery {
    metric: RqMetric,
    bits: RqBits,
    /// `|q - c|²` for L2, `-⟨q, c⟩` for the dot product.
    add: f32,
    /// `-Δ` (L2) or `-Δ/2` (dot), Δ the query's quantization step.
    mult: f32,
    /// `(2^B - 1) * Σ s`, s the quantized query.
    bias: i64,
    /// The quantized query, one `i8` per padded dimension (2- and 4-bit codes).
    values: Vec<i8>,
    /// Its bit planes (1-bit codes).
    planes: Vec<u64>,
}

impl RqQuery {
    /// The metric the query estimates.
    pub fn metric(&self) -> RqMetric {
        self.metric
    }
}

impl Rq {
    /// Trains a code of `bits` for vectors of `dim` values: the center is the mean of
    /// `sample`, the rotation is drawn from `seed`. Fails on an empty sample, a row of
    /// another length, or a value that is not finite.
    pub fn train(sample: &[&[f32]], dim: usize, bits: RqBits, seed: u64) -> Result<Rq, RqError> {
        if sample.is_empty() || dim == 0 {
            return Err(RqError::EmptySample);
        }
        let mut sum = vec![0.0f64; dim];
        for row in sample {
            if row.len() != dim {
                return Err(RqError::Dimension {
                    expected: dim,
                    got: row.len(),
                });
            }
            for (s, &x) in sum.iter_mut().zip(*row) {
                *s += f64::from(x);
            }
        }
        let n = sample.len() as f64;
        let center = sum.into_iter().map(|s| (s / n) as f32).collect();
        Rq::from_parts(center, bits, seed)
    }

    /// Rebuilds a trained code from what [`Rq::center`], [`Rq::bits`] and [`Rq::seed`]
    /// return (a checkpoint stores these).
    pub fn from_parts(center: Vec<f32>, bits: RqBits, seed: u64) -> Result<Rq, RqError> {
        if center.is_empty() {
            return Err(RqError::EmptySample);
        }
        if center.iter().any(|x| !x.is_finite()) {
            return Err(RqError::NonFinite);
        }
        Ok(Rq {
            bits,
            rotation: Rotation::new(center.len(), seed),
            center,
        })
    }

    /// Bits per dimension.
    pub fn bits(&self) -> RqBits {
        self.bits
    }

    /// Dimensions of the vectors.
    pub fn dim(&self) -> usize {
        self.center.len()
    }

    /// Dimensions of the codes: [`Rq::dim`] rounded up to a multiple of 64.
    pub fn padded_dim(&self) -> usize {
        self.rotation.padded_dim()
    }

    /// The center vectors are coded relative to.
    pub fn center(&self) -> &[f32] {
        &self.center
    }

    /// The rotation's seed.
    pub fn seed(&self) -> u64 {
        self.rotation.seed()
    }

    /// Bytes of one code: `padded_dim * bits / 8` (the [`RqFactors`] add 8).
    pub fn code_bytes(&self) -> usize {
        self.padded_dim() * self.bits.bits() / 8
    }

    /// Bytes of the trained state (center and rotation signs); codes are on top.
    pub fn memory_bytes(&self) -> usize {
        self.center.capacity() * 4 + 2 * super::rotation::ROUNDS * self.padded_dim() * 4
    }

    /// Rotates `v - c` (or `v` when `centered` is false) into `out`, resized to the padded
    /// dimension.
    fn rotate_into(&self, v: &[f32], centered: bool, out: &mut Vec<f32>) {
        out.clear();
        if centered {
            out.extend(v.iter().zip(&self.center).map(|(x, c)| x - c));
        } else {
            out.extend_from_slice(v);
        }
        out.resize(self.padded_dim(), 0.0);
        self.rotation.apply_in_place(out);
    }

    fn check_dim(&self, got: usize) -> Result<(), RqError> {
        if got == self.dim() {
            Ok(())
        } else {
            Err(RqError::Dimension {
                expected: self.dim(),
                got,
            })
        }
    }

    /// Writes the code of `v` into `out` ([`Rq::code_bytes`] long) and returns its factors.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) -> Result<RqFactors, RqError> {
        self.check_dim(v.len())?;
        if out.len() != self.code_bytes() {
            return Err(RqError::Dimension {
                expected: self.code_bytes(),
                got: out.len(),
            });
        }
        levels::with_scratch(|s| {
            self.rotate_into(v, true, &mut s.z);
            let norm2: f64 = s.z.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            let norm = norm2.sqrt();
            if !norm.is_finite() || !(norm as f32).is_finite() {
                return Err(RqError::NonFinite);
            }
            self.fields(s, norm);
            // ⟨ȳ, z⟩ with ȳ = field - (2^B - 1)/2: every term is |ȳ_i| |z_i| >= 0.
            let half = f64::from(self.bits.top()) / 2.0;
            let yz: f64 = s
                .mag
                .iter()
                .zip(&s.z)
                .map(|(&u, &x)| (f64::from(u) - half) * f64::from(x))
                .sum();
            pack(&s.mag, self.bits.bits(), out);
            let scale = if yz > 0.0 { norm2 / yz } else { 0.0 };
            Ok(RqFactors {
                norm: norm as f32,
                scale: scale as f32,
            })
        })
    }

    /// The code's field per padded dimension for the rotated `s.z` of norm `norm`, into
    /// `s.mag`: the point of the grid `{±1/2, ±3/2, …, ±(2^B - 1)/2}` (times any positive t)
    /// closest in angle to `z`.
    ///
    /// The sign of each field is the sign of `z_i`; its magnitude index is `⌊t |z_i|⌋`
    /// capped at `2^(B-1) - 1`, for the best `t`, found exactly by [`levels::search`].
    fn fields(&self, s: &mut levels::Scratch, norm: f64) {
        let half_levels = 1u8 << (self.bits.bits() - 1);
        let cap = half_levels - 1;
        if cap > 0 {
            levels::search(s, norm, cap);
        } else {
            s.mag.clear();
            s.mag.resize(s.z.len(), 0);
        }
        for (m, &x) in s.mag.iter_mut().zip(&s.z) {
            // Positive: half + m (ȳ = m + 1/2); negative: half - 1 - m (ȳ = -(m + 1/2)).
            *m = if x >= 0.0 {
                half_levels + *m
            } else {
                half_levels - 1 - *m
            };
        }
    }

    /// The fields of the code of the rotated `z` (tests call the search through this).
    #[cfg(test)]
    fn levels(&self, z: &[f32]) -> Vec<u8> {
        let mut s = levels::Scratch::default();
        s.z = z.to_vec();
        let norm = z
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        self.fields(&mut s, norm);
        s.mag
    }

    /// Rotates and quantizes `query` for estimates of `metric` against this code's vectors.
    pub fn query(&self, query: &[f32], metric: RqMetric) -> Result<RqQuery, RqError> {
        self.check_dim(query.len())?;
        if !all_finite(query) {
            return Err(RqError::NonFinite);
        }
        let k = kernels();
        let (centered, add, mult) = match metric {
            RqMetric::L2 => (true, (k.l2_squared)(query, &self.center), -1.0f32),
            RqMetric::Dot => (false, -(k.dot)(query, &self.center), -0.5f32),
        };
        Ok(levels::with_scratch(|s| {
            self.rotate_into(query, centered, &mut s.z);
            self.prepare(&s.z, metric, add, mult)
        }))
    }

    /// Quantizes the rotated query `z` (see [`Rq::query`]).
    fn prepare(&self, z: &[f32], metric: RqMetric, add: f32, mult: f32) -> RqQuery {
        // Eight running maxima, so that the loop vectorises (one would be a serial chain).
        let (chunks, rest) = z.as_chunks::<8>();
        let mut lanes = [0.0f32; 8];
        for c in chunks {
            for (m, x) in lanes.iter_mut().zip(c) {
                *m = m.max(x.abs());
            }
        }
        let max = rest
            .iter()
            .chain(&lanes)
            .fold(0.0f32, |m, x| m.max(x.abs()));
        let qmax = self.bits.query_max();
        // max == 0: every value quantizes to 0 and the estimate is `add` (+ |x - c|² for L2).
        let delta = if max > 0.0 { max / qmax } else { 0.0 };
        let inv = if max > 0.0 { qmax / max } else { 0.0 };
        let mut values = vec![0i8; z.len()];
        (rotation_kernel().quantize)(z, inv, qmax, &mut values);
        let sum: i64 = values.iter().map(|&s| i64::from(s)).sum();
        let planes = if self.bits == RqBits::One {
            planes(&values)
        } else {
            Vec::new()
        };
        RqQuery {
            metric,
            bits: self.bits,
            add,
            mult: mult * delta,
            bias: i64::from(self.bits.top()) * sum,
            values: if self.bits == RqBits::One {
                Vec::new()
            } else {
                values
            },
            planes,
        }
    }

    /// The estimated distance ("lower is better": squared L2, or the negated dot product)
    /// between the prepared query and the vector of `code` and `factors`, both as
    /// [`Rq::encode`] gave them. A code of another length gives a meaningless estimate.
    #[inline]
    pub fn distance(&self, q: &RqQuery, code: &[u8], factors: RqFactors) -> f32 {
        let k = code_kernels();
        debug_assert_eq!(q.bits, self.bits);
        let ip = match q.bits {
            RqBits::One => (k.ip_b1)(code, &q.planes),
            RqBits::Two => (k.ip_u2)(code, &q.values),
            RqBits::Four => (k.ip_u4)(code, &q.values),
        };
        // 2 ⟨ȳ, s⟩ = 2 ⟨u, s⟩ - (2^B - 1) Σ s, exact in integers.
        let y_s = (2 * i64::from(ip) - q.bias) as f32;
        let own = match q.metric {
            RqMetric::L2 => factors.norm * factors.norm,
            RqMetric::Dot => 0.0,
        };
        q.add + own + factors.scale * q.mult * y_s
    }
}

/// Packs one field per padded dimension into blocks of 64 (the layout of
/// [`super::kernels`]): byte `r` of a block holds the fields of dimensions `r + 8B f`, field `f`
/// at bit `B f` ([`slot`]).
fn pack(levels: &[u8], bits: usize, out: &mut [u8]) {
    out.fill(0);
    let block_bytes = 8 * bits;
    for (block, code) in levels
        .chunks_exact(64)
        .zip(out.chunks_exact_mut(block_bytes))
    {
        for (f, fields) in block.chunks_exact(block_bytes).enumerate() {
            for (o, &u) in code.iter_mut().zip(fields) {
                *o |= u << (bits * f);
            }
        }
    }
}

/// The fields of a packed code, one per padded dimension.
#[cfg(test)]
fn unpack(code: &[u8], bits: usize) -> Vec<u8> {
    let block_bytes = 8 * bits;
    let mask = ((1u16 << bits) - 1) as u8;
    (0..code.len() * 8 / bits)
        .map(|d| {
            let (byte, shift) = super::kernels::slot(d % 64, bits);
            (code[d / 64 * block_bytes + byte] >> shift) & mask
        })
        .collect()
}

/// The [`QUERY_PLANES`] bit planes of 4-bit two's complement query values, plane-major, bits
/// placed as the 1-bit codes' (`slot(j, 1)`: dimension `j = 8k + t` of a block at bit
/// `8t + k` of the block's word). So eight consecutive values, read as the bytes of a `u64`,
/// give plane `p` at once: bit `p` of each byte, moved to the byte's bit `k`.
fn planes(values: &[i8]) -> Vec<u64> {
    const LOW_BITS: u64 = 0x0101_0101_0101_0101;
    let blocks = values.len() / 64;
    let mut planes = vec![0u64; QUERY_PLANES * blocks];
    for (b, block) in values.chunks_exact(64).enumerate() {
        for (k, eight) in block.chunks_exact(8).enumerate() {
            let bytes: [u8; 8] = std::array::from_fn(|t| eight[t] as u8);
            let w = u64::from_le_bytes(bytes);
            for p in 0..QUERY_PLANES {
                planes[p * blocks + b] |= ((w >> p) & LOW_BITS) << k;
            }
        }
    }
    planes
}

mod centers;
mod kmeans;
mod levels;
#[cfg(test)]
mod tests;
