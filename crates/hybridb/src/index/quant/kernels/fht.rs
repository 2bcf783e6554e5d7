//! The rotation's rounds (sign flips, fast Walsh-Hadamard transforms, the half mix; see
//! [`crate::index::quant::Rotation`]) as one portable body, compiled once for baseline x86-64
//! (SSE2) and again with AVX2 and with AVX-512 enabled, where LLVM vectorises the same loops 8
//! and 16 lanes wide. The wider variants run exactly the scalar operations in the same order
//! on every element (LLVM does not reassociate floating-point arithmetic, and the body has no
//! `mul_add`), so every variant returns the same bits (test `rotation_kernels_match_scalar`):
//! a seed means one rotation whatever the CPU. Invariant as in the parent module: the only
//! `unsafe` here calls a `#[target_feature]` body, and only from a function that
//! [`super::rotation_kernel`] selects after detecting the feature.

/// The rounds over `x`: for each pair of `x.len()`-long rows of `signs` (`±1`), multiply by
/// the first row, transform the first `block` values; and when `block < x.len()`, multiply by
/// the second row, transform the last `block` values, and mix the halves. `block` is a power
/// of two, at least 8 and at most `x.len()`; `x.len()` is even.
#[inline(always)]
fn rounds_body<F: FirstStages>(x: &mut [f32], signs: &[f32], block: usize) {
    let padded = x.len();
    let scale = 1.0 / (block as f32).sqrt();
    let last = padded - block;
    for signs in signs.chunks_exact(2 * padded) {
        let (first_signs, last_signs) = signs.split_at(padded);
        x.iter_mut().zip(first_signs).for_each(|(v, s)| *v *= s);
        fht_with::<F>(&mut x[..block], scale);
        if block != padded {
            x.iter_mut().zip(last_signs).for_each(|(v, s)| *v *= s);
            fht_with::<F>(&mut x[last..], scale);
            half_mix(x);
        }
    }
}

/// The portable rounds (see [`rounds_body`]).
pub fn rounds(x: &mut [f32], signs: &[f32], block: usize) {
    rounds_body::<Portable>(x, signs, block);
}

/// The transform's first three stages (butterflies within each group of 8 values), over a
/// slice whose length is a multiple of 8. Every implementation computes, per group, exactly
/// the sums and differences of [`Portable`], operand for operand, so all give the same bits.
trait FirstStages {
    fn apply(x: &mut [f32]);
}

/// The first stages in scalar code, one group of 8 at a time.
struct Portable;

impl FirstStages for Portable {
    #[inline(always)]
    fn apply(x: &mut [f32]) {
        for c in x.as_chunks_mut::<8>().0 {
            let [a0, a1, a2, a3, a4, a5, a6, a7] = *c;
            let (b0, b1, b2, b3) = (a0 + a1, a0 - a1, a2 + a3, a2 - a3);
            let (b4, b5, b6, b7) = (a4 + a5, a4 - a5, a6 + a7, a6 - a7);
            let (d0, d1, d2, d3) = (b0 + b2, b1 + b3, b0 - b2, b1 - b3);
            let (d4, d5, d6, d7) = (b4 + b6, b5 + b7, b4 - b6, b5 - b7);
            *c = [
                d0 + d4,
                d1 + d5,
                d2 + d6,
                d3 + d7,
                d0 - d4,
                d1 - d5,
                d2 - d6,
                d3 - d7,
            ];
        }
    }
}

/// The portable [`fht_with`] (tests compare it with the Hadamard matrix).
#[cfg(test)]
pub(crate) fn fht_scaled(x: &mut [f32], scale: f32) {
    fht_with::<Portable>(x, scale);
}

/// The Walsh-Hadamard transform times `scale`, in place; `x.len()` is a power of two, at
/// least 8. The first three stages run per group of 8 in registers ([`FirstStages`]); the
/// wider ones are loops over contiguous halves, which vectorise.
#[inline(always)]
fn fht_with<F: FirstStages>(x: &mut [f32], scale: f32) {
    let n = x.len();
    debug_assert!(n.is_power_of_two() && n >= 8);
    F::apply(x);
    let mut h = 8;
    while h < n {
        for pair in x.chunks_exact_mut(2 * h) {
            let (a, b) = pair.split_at_mut(h);
            for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*u + *v, *u - *v);
                *u = s;
                *v = d;
            }
        }
        h *= 2;
    }
    x.iter_mut().for_each(|v| *v *= scale);
}

/// `(x[i], x[i + p/2]) → ((a + b)/√2, (a − b)/√2)` for every `i < p/2`; `x.len()` is even.
#[inline(always)]
fn half_mix(x: &mut [f32]) {
    let half = x.len() / 2;
    let (a, b) = x.split_at_mut(half);
    for (u, v) in a.iter_mut().zip(b.iter_mut()) {
        let (s, d) = (*u + *v, *u - *v);
        *u = s * std::f32::consts::FRAC_1_SQRT_2;
        *v = d * std::f32::consts::FRAC_1_SQRT_2;
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    //! The rounds compiled with AVX2 and with AVX-512F, the first stages written with
    //! shuffles (LLVM leaves [`super::Portable`]'s groups of 8 scalar).

    use std::arch::x86_64::*;

    use super::{FirstStages, Portable, rounds_body};

    pub fn rounds_avx2(x: &mut [f32], signs: &[f32], block: usize) {
        // SAFETY: only selected by `detect_rotation` after checking avx2.
        unsafe { avx2(x, signs, block) }
    }

    pub fn rounds_avx512(x: &mut [f32], signs: &[f32], block: usize) {
        // SAFETY: only selected by `detect_rotation` after checking avx512f.
        unsafe { avx512(x, signs, block) }
    }

    #[target_feature(enable = "avx2")]
    fn avx2(x: &mut [f32], signs: &[f32], block: usize) {
        rounds_body::<Avx2>(x, signs, block);
    }

    #[target_feature(enable = "avx512f")]
    fn avx512(x: &mut [f32], signs: &[f32], block: usize) {
        rounds_body::<Avx512>(x, signs, block);
    }

    /// One register per group of 8. A stage pairs lane `i` with lane `i ^ h` (`h` = 1, 2, 4):
    /// with `w` the register with each pair swapped, the lower lane of a pair takes
    /// `v + w` (= `a + b`) and the upper `w - v` (= `a - b`), the operands of `Portable`.
    struct Avx2;

    impl FirstStages for Avx2 {
        #[inline(always)]
        fn apply(x: &mut [f32]) {
            let (groups, rest) = x.as_chunks_mut::<8>();
            for g in groups {
                // SAFETY: only inlined into `avx2` (avx2 detected); `g` holds 8 values.
                unsafe {
                    let p = g.as_mut_ptr();
                    let v = _mm256_loadu_ps(p);
                    let w = _mm256_permute_ps::<0b10_11_00_01>(v);
                    let v =
                        _mm256_blend_ps::<0b1010_1010>(_mm256_add_ps(v, w), _mm256_sub_ps(w, v));
                    let w = _mm256_permute_ps::<0b01_00_11_10>(v);
                    let v =
                        _mm256_blend_ps::<0b1100_1100>(_mm256_add_ps(v, w), _mm256_sub_ps(w, v));
                    let w = _mm256_permute2f128_ps::<0x01>(v, v);
                    let v =
                        _mm256_blend_ps::<0b1111_0000>(_mm256_add_ps(v, w), _mm256_sub_ps(w, v));
                    _mm256_storeu_ps(p, v);
                }
            }
            Portable::apply(rest);
        }
    }

    /// Two groups of 8 per register, as [`Avx2`].
    struct Avx512;

    impl FirstStages for Avx512 {
        #[inline(always)]
        fn apply(x: &mut [f32]) {
            let (pairs, rest) = x.as_chunks_mut::<16>();
            for g in pairs {
                // SAFETY: only inlined into `avx512` (avx512f detected); `g` holds 16 values.
                unsafe {
                    let p = g.as_mut_ptr();
                    let v = _mm512_loadu_ps(p);
                    let w = _mm512_permute_ps::<0b10_11_00_01>(v);
                    let v = _mm512_mask_blend_ps(0xAAAA, _mm512_add_ps(v, w), _mm512_sub_ps(w, v));
                    let w = _mm512_permute_ps::<0b01_00_11_10>(v);
                    let v = _mm512_mask_blend_ps(0xCCCC, _mm512_add_ps(v, w), _mm512_sub_ps(w, v));
                    let w = _mm512_shuffle_f32x4::<0b10_11_00_01>(v, v);
                    let v = _mm512_mask_blend_ps(0xF0F0, _mm512_add_ps(v, w), _mm512_sub_ps(w, v));
                    _mm512_storeu_ps(p, v);
                }
            }
            Portable::apply(rest);
        }
    }
}
