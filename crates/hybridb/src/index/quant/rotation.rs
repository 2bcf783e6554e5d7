//! A seeded random orthogonal rotation in `O(d log d)` per vector: rounds of random sign flips
//! and normalised fast Walsh-Hadamard transforms (FHT), as the rotated codes ([`super::Rq`])
//! need to spread every vector's energy evenly over the coordinates.
//!
//! Why not a dense random matrix (Gram-Schmidt of a Gaussian matrix): applying it costs `d²`
//! multiply-adds per vector (615 k at 784-d, 2.4 M at 1,536-d) and storing it `4 d²` bytes
//! (9.4 MB at 1,536-d), against `d log d` additions here and a seed of 8 bytes: the rotation of
//! a checkpoint is the seed.
//!
//! The vector is zero-padded to [`Rotation::padded_dim`], the next multiple of 64 (the codes
//! are packed in blocks of 64 dimensions). The FHT needs a power of two, `2^k`, the largest not
//! above the padded length `p`. For `p = 2^k` a round is signs then FHT. For `p != 2^k` (384,
//! 832, …) a round is signs, FHT of the first `2^k` coordinates, signs, FHT of the last `2^k`,
//! then a butterfly `(a, b) → ((a + b)/√2, (a − b)/√2)` over the pairs `(i, i + p/2)` (a step of
//! a Kac walk). Both blocks every round, because with one block per round (alternating) a
//! coordinate outside the block's reach can keep its energy for a round and hand it, through
//! the butterfly, to a coordinate outside the next block's reach: a basis vector kept 0.32 of
//! its length in one coordinate after four rounds at p = 384 (a test checks this). The
//! butterfly, because without it energy would cross between the two ends only through the
//! overlap of the blocks, which can be a small part of them (64 of 512 at p = 960).
//!
//! Invariants: every step is orthogonal, so norms and inner products are kept (up to `f32`
//! rounding); the signs come from a SplitMix64 stream written here, not from a dependency, so
//! a seed gives the same rotation in every build and version.

/// Rounds of (signs, FHT) or (signs, FHT, signs, FHT, half mix): three, the usual choice for
/// sign-flipped Hadamard transforms.
pub const ROUNDS: usize = 3;

/// A random orthogonal map of `R^p` (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    dim: usize,
    padded: usize,
    /// The largest power of two not above `padded` (at least 64).
    block: usize,
    seed: u64,
    /// `2 * ROUNDS` rows of `padded` values, each ±1 (the odd rows unused when
    /// `block == padded`).
    signs: Vec<f32>,
}

/// One step of SplitMix64 (Steele, Lea and Flood, 2014): a full-period 64-bit generator. The
/// one stream of the rotated codes (signs here, k-means seeding in `rq/kmeans.rs`): written
/// here, so a seed draws the same values in every build.
pub(super) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform `f64` in `[0, 1)` from the next SplitMix64 value (its top 53 bits).
pub(super) fn uniform(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
}

impl Rotation {
    /// The rotation of vectors of `dim` values (at least 1) drawn from `seed`.
    pub fn new(dim: usize, seed: u64) -> Rotation {
        let padded = dim.max(1).next_multiple_of(64);
        // The largest power of two <= padded: padded >= 64, so the shift is in range.
        let block = 1usize << (usize::BITS - 1 - padded.leading_zeros());
        let mut state = seed;
        let mut signs = Vec::with_capacity(2 * ROUNDS * padded);
        let mut word = 0u64;
        for i in 0..2 * ROUNDS * padded {
            if i % 64 == 0 {
                word = splitmix64(&mut state);
            }
            signs.push(if (word >> (i % 64)) & 1 == 1 {
                -1.0
            } else {
                1.0
            });
        }
        Rotation {
            dim,
            padded,
            block,
            seed,
            signs,
        }
    }

    /// Dimensions of the input vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Dimensions of the rotated vectors: `dim` rounded up to a multiple of 64.
    pub fn padded_dim(&self) -> usize {
        self.padded
    }

    /// The seed the rotation was drawn from (all that must be stored to rebuild it).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Writes the rotation of `v` into `out`. `v` holds at most [`Rotation::dim`] values (the
    /// rest count as zeros) and `out` exactly [`Rotation::padded_dim`]; a longer `v` is cut.
    pub fn apply(&self, v: &[f32], out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.padded);
        let n = v.len().min(self.dim).min(out.len());
        out[..n].copy_from_slice(&v[..n]);
        out[n..].fill(0.0);
        self.apply_in_place(out);
    }

    /// Rotates `x` in place: `x` holds exactly [`Rotation::padded_dim`] values, the vector in
    /// the first [`Rotation::dim`] and zeros after them (as [`Rotation::apply`] writes them).
    /// A slice of another length is left as it is.
    pub fn apply_in_place(&self, out: &mut [f32]) {
        if out.len() != self.padded {
            return;
        }
        (super::kernels::rotation_kernel().rounds)(out, &self.signs, self.block);
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernels::fht::fht_scaled;
    use super::*;

    fn vector(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| (splitmix64(&mut s) >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn keeps_norms_and_inner_products() {
        for dim in [1, 7, 64, 100, 128, 384, 784, 960, 1536] {
            let rot = Rotation::new(dim, 42);
            let p = rot.padded_dim();
            assert_eq!(p % 64, 0);
            assert!(p >= dim && p < dim + 64);
            let (a, b) = (vector(dim, 1), vector(dim, 2));
            let (mut ra, mut rb) = (vec![0.0; p], vec![0.0; p]);
            rot.apply(&a, &mut ra);
            rot.apply(&b, &mut rb);
            let tol = 1e-4 * (dot(&a, &a) + dot(&b, &b));
            assert!((dot(&a, &a) - dot(&ra, &ra)).abs() < tol, "norm, dim {dim}");
            assert!((dot(&a, &b) - dot(&ra, &rb)).abs() < tol, "dot, dim {dim}");
        }
    }

    /// The transform against its definition, `H[i][j] = (-1)^popcount(i & j)`.
    #[test]
    fn fht_matches_the_hadamard_matrix() {
        for n in [8usize, 16, 64, 256] {
            let x = vector(n, n as u64);
            let mut y = x.clone();
            fht_scaled(&mut y, 1.0);
            for (i, yi) in y.iter().enumerate() {
                let want: f32 = x
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        if (i & j).count_ones() % 2 == 0 {
                            *v
                        } else {
                            -v
                        }
                    })
                    .sum();
                assert!((yi - want).abs() < 1e-4, "n {n}, i {i}: {yi} vs {want}");
            }
        }
    }

    #[test]
    fn a_seed_gives_one_rotation() {
        let v = vector(300, 9);
        let (mut x, mut y, mut z) = (vec![0.0; 320], vec![0.0; 320], vec![0.0; 320]);
        Rotation::new(300, 5).apply(&v, &mut x);
        Rotation::new(300, 5).apply(&v, &mut y);
        Rotation::new(300, 6).apply(&v, &mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_eq!(Rotation::new(300, 5), Rotation::new(300, 5));
    }

    /// A basis vector, the worst case for a per-coordinate code, comes out spread like a
    /// random unit vector: its largest coordinate over all `p` basis vectors stays near the
    /// Gaussian maximum of `p²` values, `√(2 ln 2p²) / √p` (0.26 at p = 384), where alternating
    /// blocks left 0.32 (across seeds 0-5, the worst was 1.03x the Gaussian maximum).
    #[test]
    fn spreads_basis_vectors() {
        for dim in [128, 384, 784, 960, 1000] {
            let rot = Rotation::new(dim, 7);
            let p = rot.padded_dim();
            let gauss_max = (2.0 * (2.0 * (p * p) as f32).ln()).sqrt() / (p as f32).sqrt();
            let mut out = vec![0.0; p];
            let mut worst = 0.0f32;
            for i in 0..dim {
                let mut e = vec![0.0; dim];
                e[i] = 1.0;
                rot.apply(&e, &mut out);
                worst = out.iter().fold(worst, |m, x| m.max(x.abs()));
            }
            assert!(
                worst <= 1.1 * gauss_max,
                "dim {dim}: {worst} vs {gauss_max}"
            );
        }
    }
}
