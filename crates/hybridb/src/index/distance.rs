//! Distance kernels: dot product, squared L2 and L1 (Manhattan) over `f32` slices.
//!
//! The best kernel for the running CPU is chosen once, at first use, by runtime feature
//! detection: AVX-512F, then AVX2+FMA on x86_64, NEON on aarch64, else a portable scalar loop
//! written so that the compiler auto-vectorises it. All kernels accept any length (a tail loop
//! handles the remainder) and require `a.len() == b.len()` (checked in debug builds).
//!
//! Invariant: this file and its per-ISA submodules are the only places in the crate that use
//! `unsafe` for SIMD (with `index/quant/kernels`, the quantized codes' kernels); every `unsafe`
//! call is guarded by the feature check made in [`kernels`].

use std::sync::OnceLock;

/// A distance function over two equal-length vectors.
pub type DistanceFn = fn(&[f32], &[f32]) -> f32;

/// The dot-product and squared-L2 kernels selected for this CPU.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    /// Sum of `a[i] * b[i]`.
    pub dot: DistanceFn,
    /// Sum of `(a[i] - b[i])^2`.
    pub l2_squared: DistanceFn,
    /// Sum of `|a[i] - b[i]|` (Manhattan distance).
    pub l1: DistanceFn,
    /// Sum of `a[i] * codes[i]` over `f32` weights and `u8` codes (the scalar-quantized
    /// estimators of `quant::sq8` reduce to it).
    pub dot_u8: fn(&[f32], &[u8]) -> f32,
    /// Name of the instruction set in use (`"avx512f"`, `"avx2+fma"`, `"neon"` or `"scalar"`).
    pub isa: &'static str,
}

/// Returns the kernels for this CPU, detecting features on the first call.
pub fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(detect)
}

/// Dot product with the best kernel for this CPU.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Squared Euclidean distance with the best kernel for this CPU.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2_squared)(a, b)
}

/// Manhattan (L1) distance with the best kernel for this CPU.
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l1)(a, b)
}

/// The portable kernels, exported so that tests and benchmarks can compare against them.
pub const SCALAR: Kernels = Kernels {
    dot: scalar::dot,
    l2_squared: scalar::l2_squared,
    l1: scalar::l1,
    dot_u8: scalar::dot_u8,
    isa: "scalar",
};

fn detect() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernels {
                dot: x86::dot_avx512,
                l2_squared: x86::l2_squared_avx512,
                l1: x86::l1_avx512,
                dot_u8: x86::dot_u8_avx512,
                isa: "avx512f",
            };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernels {
                dot: x86::dot_avx2,
                l2_squared: x86::l2_squared_avx2,
                l1: x86::l1_avx2,
                dot_u8: x86::dot_u8_avx2,
                isa: "avx2+fma",
            };
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Kernels {
                dot: arm::dot_neon,
                l2_squared: arm::l2_squared_neon,
                l1: arm::l1_neon,
                dot_u8: arm::dot_u8_neon,
                isa: "neon",
            };
        }
    }
    SCALAR
}

mod scalar {
    /// Eight independent accumulators so that the loop vectorises without `-ffast-math`.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let mut acc = [0.0f32; 8];
        let (ca, ra) = a.as_chunks::<8>();
        let (cb, rb) = b.as_chunks::<8>();
        for (x, y) in ca.iter().zip(cb) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            sum += x * y;
        }
        sum
    }

    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let mut acc = [0.0f32; 8];
        let (ca, ra) = a.as_chunks::<8>();
        let (cb, rb) = b.as_chunks::<8>();
        for (x, y) in ca.iter().zip(cb) {
            for i in 0..8 {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            let d = x - y;
            sum += d * d;
        }
        sum
    }

    pub fn dot_u8(a: &[f32], c: &[u8]) -> f32 {
        debug_assert_eq!(a.len(), c.len());
        let mut acc = [0.0f32; 8];
        let (ca, ra) = a.as_chunks::<8>();
        let (cc, rc) = c.as_chunks::<8>();
        for (x, y) in ca.iter().zip(cc) {
            for i in 0..8 {
                acc[i] += x[i] * f32::from(y[i]);
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rc) {
            sum += x * f32::from(*y);
        }
        sum
    }

    pub fn l1(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let mut acc = [0.0f32; 8];
        let (ca, ra) = a.as_chunks::<8>();
        let (cb, rb) = b.as_chunks::<8>();
        for (x, y) in ca.iter().zip(cb) {
            for i in 0..8 {
                acc[i] += (x[i] - y[i]).abs();
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            sum += (x - y).abs();
        }
        sum
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx2 and fma.
        unsafe { dot_avx2_impl(a, b) }
    }

    pub fn l2_squared_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx2 and fma.
        unsafe { l2_squared_avx2_impl(a, b) }
    }

    pub fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx512f.
        unsafe { dot_avx512_impl(a, b) }
    }

    pub fn l2_squared_avx512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx512f.
        unsafe { l2_squared_avx512_impl(a, b) }
    }

    pub fn dot_u8_avx2(a: &[f32], c: &[u8]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx2 and fma.
        unsafe { dot_u8_avx2_impl(a, c) }
    }

    pub fn dot_u8_avx512(a: &[f32], c: &[u8]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx512f.
        unsafe { dot_u8_avx512_impl(a, c) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_u8_avx2_impl(a: &[f32], c: &[u8]) -> f32 {
        debug_assert_eq!(a.len(), c.len());
        let n = a.len().min(c.len());
        let (pa, pc) = (a.as_ptr(), c.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (all loads): i + 16 <= n or i + 8 <= n is checked before each load; an
        // 8-byte code load reads exactly c[i..i + 8].
        while i + 16 <= n {
            unsafe {
                let c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                    pc.add(i).cast::<__m128i>(),
                )));
                let c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                    pc.add(i + 8).cast::<__m128i>(),
                )));
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), c0, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), c1, acc1);
            }
            i += 16;
        }
        if i + 8 <= n {
            unsafe {
                let c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                    pc.add(i).cast::<__m128i>(),
                )));
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), c0, acc0);
            }
            i += 8;
        }
        let mut sum = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            sum += a[i] * f32::from(c[i]);
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_u8_avx512_impl(a: &[f32], c: &[u8]) -> f32 {
        debug_assert_eq!(a.len(), c.len());
        let n = a.len().min(c.len());
        let (pa, pc) = (a.as_ptr(), c.as_ptr());
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY (all loads): i + 16 <= n is checked before each load; a 16-byte code load
        // reads exactly c[i..i + 16].
        while i + 16 <= n {
            unsafe {
                let codes = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                    pc.add(i).cast::<__m128i>(),
                )));
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), codes, acc);
            }
            i += 16;
        }
        let mut sum = _mm512_reduce_add_ps(acc);
        while i < n {
            sum += a[i] * f32::from(c[i]);
            i += 1;
        }
        sum
    }

    pub fn l1_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx2 and fma.
        unsafe { l1_avx2_impl(a, b) }
    }

    pub fn l1_avx512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking avx512f.
        unsafe { l1_avx512_impl(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l1_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // |x| clears the sign bit.
        let sign = _mm256_set1_ps(-0.0);
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (all loads): i + 16 <= n or i + 8 <= n is checked before each load.
        while i + 16 <= n {
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
                acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, d1));
            }
            i += 16;
        }
        if i + 8 <= n {
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, d0));
            }
            i += 8;
        }
        let mut sum = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            sum += (a[i] - b[i]).abs();
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn l1_avx512_impl(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            unsafe {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                );
                acc0 = _mm512_add_ps(acc0, _mm512_abs_ps(d0));
                acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(d1));
            }
            i += 32;
        }
        if i < n {
            // Masked tail: lanes out of bounds load as 0 on both sides, so add |0 - 0|.
            let rest = n - i;
            let m0: __mmask16 = if rest >= 16 {
                0xFFFF
            } else {
                (1u16 << rest) - 1
            };
            unsafe {
                let d0 = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m0, pa.add(i)),
                    _mm512_maskz_loadu_ps(m0, pb.add(i)),
                );
                acc0 = _mm512_add_ps(acc0, _mm512_abs_ps(d0));
            }
            if rest > 16 {
                let m1: __mmask16 = (1u16 << (rest - 16)) - 1;
                unsafe {
                    let d1 = _mm512_sub_ps(
                        _mm512_maskz_loadu_ps(m1, pa.add(i + 16)),
                        _mm512_maskz_loadu_ps(m1, pb.add(i + 16)),
                    );
                    acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(d1));
                }
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (all loads): i + 16 <= n or i + 8 <= n is checked before each load.
        while i + 16 <= n {
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
            }
            i += 16;
        }
        if i + 8 <= n {
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            }
            i += 8;
        }
        let mut sum = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_squared_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            }
            i += 16;
        }
        if i + 8 <= n {
            unsafe {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            }
            i += 8;
        }
        let mut sum = hsum256(_mm256_add_ps(acc0, acc1));
        while i < n {
            let d = a[i] - b[i];
            sum += d * d;
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512_impl(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            unsafe {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                    acc1,
                );
            }
            i += 32;
        }
        if i < n {
            // Masked tail: at most two 16-lane steps, loading only the lanes in bounds.
            let rest = n - i;
            let m0: __mmask16 = if rest >= 16 {
                0xFFFF
            } else {
                (1u16 << rest) - 1
            };
            unsafe {
                acc0 = _mm512_fmadd_ps(
                    _mm512_maskz_loadu_ps(m0, pa.add(i)),
                    _mm512_maskz_loadu_ps(m0, pb.add(i)),
                    acc0,
                );
            }
            if rest > 16 {
                let m1: __mmask16 = (1u16 << (rest - 16)) - 1;
                unsafe {
                    acc1 = _mm512_fmadd_ps(
                        _mm512_maskz_loadu_ps(m1, pa.add(i + 16)),
                        _mm512_maskz_loadu_ps(m1, pb.add(i + 16)),
                        acc1,
                    );
                }
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn l2_squared_avx512_impl(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            unsafe {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                acc1 = _mm512_fmadd_ps(d1, d1, acc1);
            }
            i += 32;
        }
        if i < n {
            let rest = n - i;
            let m0: __mmask16 = if rest >= 16 {
                0xFFFF
            } else {
                (1u16 << rest) - 1
            };
            unsafe {
                let d0 = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m0, pa.add(i)),
                    _mm512_maskz_loadu_ps(m0, pb.add(i)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            }
            if rest > 16 {
                let m1: __mmask16 = (1u16 << (rest - 16)) - 1;
                unsafe {
                    let d1 = _mm512_sub_ps(
                        _mm512_maskz_loadu_ps(m1, pa.add(i + 16)),
                        _mm512_maskz_loadu_ps(m1, pb.add(i + 16)),
                    );
                    acc1 = _mm512_fmadd_ps(d1, d1, acc1);
                }
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    pub fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking neon.
        unsafe { dot_neon_impl(a, b) }
    }

    pub fn l2_squared_neon(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking neon.
        unsafe { l2_squared_neon_impl(a, b) }
    }

    pub fn dot_u8_neon(a: &[f32], c: &[u8]) -> f32 {
        // SAFETY: only selected by `detect` after checking neon.
        unsafe { dot_u8_neon_impl(a, c) }
    }

    #[target_feature(enable = "neon")]
    unsafe fn dot_u8_neon_impl(a: &[f32], c: &[u8]) -> f32 {
        let n = a.len().min(c.len());
        let (pa, pc) = (a.as_ptr(), c.as_ptr());
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut i = 0;
        while i + 8 <= n {
            unsafe {
                let wide = vmovl_u8(vld1_u8(pc.add(i)));
                let lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(wide)));
                let hi = vcvtq_f32_u32(vmovl_u16(vget_high_u16(wide)));
                acc0 = vfmaq_f32(acc0, vld1q_f32(pa.add(i)), lo);
                acc1 = vfmaq_f32(acc1, vld1q_f32(pa.add(i + 4)), hi);
            }
            i += 8;
        }
        let mut sum = vaddvq_f32(vaddq_f32(acc0, acc1));
        while i < n {
            sum += a[i] * f32::from(c[i]);
            i += 1;
        }
        sum
    }

    pub fn l1_neon(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only selected by `detect` after checking neon.
        unsafe { l1_neon_impl(a, b) }
    }

    #[target_feature(enable = "neon")]
    unsafe fn l1_neon_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut i = 0;
        while i + 8 <= n {
            unsafe {
                acc0 = vaddq_f32(acc0, vabdq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i))));
                acc1 = vaddq_f32(
                    acc1,
                    vabdq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4))),
                );
            }
            i += 8;
        }
        let mut sum = vaddvq_f32(vaddq_f32(acc0, acc1));
        while i < n {
            sum += (a[i] - b[i]).abs();
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "neon")]
    unsafe fn dot_neon_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut i = 0;
        while i + 8 <= n {
            unsafe {
                acc0 = vfmaq_f32(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                acc1 = vfmaq_f32(acc1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
            }
            i += 8;
        }
        let mut sum = vaddvq_f32(vaddq_f32(acc0, acc1));
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "neon")]
    unsafe fn l2_squared_neon_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = vdupq_n_f32(0.0);
        let mut acc1 = vdupq_n_f32(0.0);
        let mut i = 0;
        while i + 8 <= n {
            unsafe {
                let d0 = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                let d1 = vsubq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
                acc0 = vfmaq_f32(acc0, d0, d0);
                acc1 = vfmaq_f32(acc1, d1, d1);
            }
            i += 8;
        }
        let mut sum = vaddvq_f32(vaddq_f32(acc0, acc1));
        while i < n {
            let d = a[i] - b[i];
            sum += d * d;
            i += 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(len: usize, seed: u32) -> (Vec<f32>, Vec<f32>) {
        // A small deterministic generator keeps the test free of extra dependencies.
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        };
        let a = (0..len).map(|_| next()).collect();
        let b = (0..len).map(|_| next()).collect();
        (a, b)
    }

    fn close(x: f32, y: f32) -> bool {
        (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs()))
    }

    #[test]
    fn detected_kernels_match_scalar_at_every_length() {
        let k = kernels();
        for len in 0..=70 {
            let (a, b) = vectors(len, len as u32 + 7);
            let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let naive_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            let naive_l1: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
            let codes: Vec<u8> = b.iter().map(|x| ((x + 1.0) * 127.0) as u8).collect();
            let naive_u8: f32 = a.iter().zip(&codes).map(|(x, &c)| x * f32::from(c)).sum();
            assert!(
                close((k.dot_u8)(&a, &codes), naive_u8),
                "dot_u8 len {len} isa {}",
                k.isa
            );
            assert!(
                close((SCALAR.dot_u8)(&a, &codes), naive_u8),
                "scalar dot_u8 len {len}"
            );
            assert!(
                close((k.l1)(&a, &b), naive_l1),
                "l1 len {len} isa {}",
                k.isa
            );
            assert!(close((SCALAR.l1)(&a, &b), naive_l1), "scalar l1 len {len}");
            assert!(
                close((k.dot)(&a, &b), naive_dot),
                "dot len {len} isa {}",
                k.isa
            );
            assert!(
                close((k.l2_squared)(&a, &b), naive_l2),
                "l2 len {len} isa {}",
                k.isa
            );
            assert!(
                close((SCALAR.dot)(&a, &b), naive_dot),
                "scalar dot len {len}"
            );
            assert!(
                close((SCALAR.l2_squared)(&a, &b), naive_l2),
                "scalar l2 len {len}"
            );
        }
    }

    #[test]
    fn large_dimensions_agree() {
        let k = kernels();
        for len in [128, 384, 768, 1536, 4096, 4095] {
            let (a, b) = vectors(len, 3);
            assert!(close((k.dot)(&a, &b), (SCALAR.dot)(&a, &b)));
            assert!(close((k.l2_squared)(&a, &b), (SCALAR.l2_squared)(&a, &b)));
            assert!(close((k.l1)(&a, &b), (SCALAR.l1)(&a, &b)));
        }
    }

    /// The AVX2 kernels, also on machines whose detected kernels are AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_match_scalar_at_every_length() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        for len in 0..=70 {
            let (a, b) = vectors(len, len as u32 + 11);
            let codes: Vec<u8> = b.iter().map(|x| ((x + 1.0) * 127.0) as u8).collect();
            assert!(
                close(x86::dot_avx2(&a, &b), (SCALAR.dot)(&a, &b)),
                "dot {len}"
            );
            assert!(
                close(x86::l2_squared_avx2(&a, &b), (SCALAR.l2_squared)(&a, &b)),
                "l2 {len}"
            );
            assert!(close(x86::l1_avx2(&a, &b), (SCALAR.l1)(&a, &b)), "l1 {len}");
            assert!(
                close(x86::dot_u8_avx2(&a, &codes), (SCALAR.dot_u8)(&a, &codes)),
                "u8 {len}"
            );
        }
    }
}
