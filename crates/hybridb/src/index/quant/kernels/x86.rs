//! x86_64 code kernels: AVX-512 (BW + VNNI, VPOPCNTDQ), AVX2, and the `popcnt` instruction.
//! Each public function is selected by `detect` only after its features were detected; the
//! `unsafe` bodies load only whole blocks that both slices hold.

use std::arch::x86_64::*;

use super::{QUERY_PLANES, blocks, scalar};

pub fn ip_u4_avx2(codes: &[u8], q: &[i8]) -> i32 {
    // SAFETY: only selected by `detect` after checking avx2.
    unsafe { ip_u4_avx2_impl(codes, q) }
}

pub fn ip_u2_avx2(codes: &[u8], q: &[i8]) -> i32 {
    // SAFETY: only selected by `detect` after checking avx2.
    unsafe { ip_u2_avx2_impl(codes, q) }
}

pub fn ip_u4_vnni(codes: &[u8], q: &[i8]) -> i32 {
    // SAFETY: only selected by `detect` after checking avx512bw and avx512vnni.
    unsafe { ip_u4_vnni_impl(codes, q) }
}

pub fn ip_u2_vnni(codes: &[u8], q: &[i8]) -> i32 {
    // SAFETY: only selected by `detect` after checking avx512bw and avx512vnni.
    unsafe { ip_u2_vnni_impl(codes, q) }
}

pub fn ip_b1_avx512(codes: &[u8], planes: &[u64]) -> i32 {
    // SAFETY: only selected by `detect` after checking avx512f and avx512vpopcntdq.
    unsafe { ip_b1_avx512_impl(codes, planes) }
}

pub fn ip_b1_popcnt(codes: &[u8], planes: &[u64]) -> i32 {
    // SAFETY: only selected by `detect` after checking popcnt.
    unsafe { ip_b1_popcnt_impl(codes, planes) }
}

#[target_feature(enable = "popcnt")]
unsafe fn ip_b1_popcnt_impl(codes: &[u8], planes: &[u64]) -> i32 {
    // The scalar loop, compiled with the popcnt instruction instead of a bit-twiddling count.
    scalar::ip_b1_inline(codes, planes)
}

#[target_feature(enable = "avx2")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// `Σ u[i] * s[i]` over 32 lanes into eight `i32` lanes: `maddubs` forms pairs (at most
/// 2 * 15 * 128 in magnitude, no saturation), `madd` with ones widens them.
#[target_feature(enable = "avx2")]
fn dot_bytes_avx2(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

#[target_feature(enable = "avx2")]
unsafe fn ip_u4_avx2_impl(codes: &[u8], q: &[i8]) -> i32 {
    let n = blocks(codes.len(), 32, q.len(), 64);
    let (pc, pq) = (codes.as_ptr(), q.as_ptr());
    let mask = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_si256();
    for b in 0..n {
        // SAFETY: b < n, so codes[32b..32b + 32] and q[64b..64b + 64] are in bounds.
        unsafe {
            let c = _mm256_loadu_si256(pc.add(32 * b).cast());
            let lo = _mm256_and_si256(c, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(c), mask);
            let s0 = _mm256_loadu_si256(pq.add(64 * b).cast());
            let s1 = _mm256_loadu_si256(pq.add(64 * b + 32).cast());
            acc = _mm256_add_epi32(acc, dot_bytes_avx2(lo, s0));
            acc = _mm256_add_epi32(acc, dot_bytes_avx2(hi, s1));
        }
    }
    hsum_epi32(acc)
}

#[target_feature(enable = "avx2")]
unsafe fn ip_u2_avx2_impl(codes: &[u8], q: &[i8]) -> i32 {
    let n = blocks(codes.len(), 16, q.len(), 64);
    let (pc, pq) = (codes.as_ptr(), q.as_ptr());
    let mask = _mm256_set1_epi8(0x03);
    // The block's 16 bytes in both 128-bit lanes, shifted by 0 | 2 (fields 0, 1: dimensions
    // 0..32), then by 4 | 6 (fields 2, 3: dimensions 32..64).
    let shift01 = _mm256_setr_epi64x(0, 0, 2, 2);
    let shift23 = _mm256_setr_epi64x(4, 4, 6, 6);
    let mut acc = _mm256_setzero_si256();
    for b in 0..n {
        // SAFETY: b < n, so codes[16b..16b + 16] and q[64b..64b + 64] are in bounds.
        unsafe {
            let c = _mm256_broadcastsi128_si256(_mm_loadu_si128(pc.add(16 * b).cast()));
            let u01 = _mm256_and_si256(_mm256_srlv_epi64(c, shift01), mask);
            let u23 = _mm256_and_si256(_mm256_srlv_epi64(c, shift23), mask);
            let s0 = _mm256_loadu_si256(pq.add(64 * b).cast());
            let s1 = _mm256_loadu_si256(pq.add(64 * b + 32).cast());
            acc = _mm256_add_epi32(acc, dot_bytes_avx2(u01, s0));
            acc = _mm256_add_epi32(acc, dot_bytes_avx2(u23, s1));
        }
    }
    hsum_epi32(acc)
}

#[target_feature(enable = "avx512bw,avx512vnni")]
unsafe fn ip_u4_vnni_impl(codes: &[u8], q: &[i8]) -> i32 {
    let n = blocks(codes.len(), 32, q.len(), 64);
    let (pc, pq) = (codes.as_ptr(), q.as_ptr());
    let mask = _mm512_set1_epi8(0x0F);
    // The block's 32 bytes in both 256-bit halves; the upper half shifted by 4: after the
    // mask, bytes 0..32 are the low nibbles (dimensions 0..32), 32..64 the high ones.
    let shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
    let mut acc0 = _mm512_setzero_si512();
    let mut acc1 = _mm512_setzero_si512();
    let mut b = 0;
    // SAFETY (all loads): b < n (or b + 1 < n) is checked first, so codes[32b..32b + 32]
    // and q[64b..64b + 64] are in bounds.
    while b + 1 < n {
        unsafe {
            let c0 = _mm512_broadcast_i64x4(_mm256_loadu_si256(pc.add(32 * b).cast()));
            let c1 = _mm512_broadcast_i64x4(_mm256_loadu_si256(pc.add(32 * b + 32).cast()));
            let u0 = _mm512_and_si512(_mm512_srlv_epi64(c0, shift), mask);
            let u1 = _mm512_and_si512(_mm512_srlv_epi64(c1, shift), mask);
            acc0 = _mm512_dpbusd_epi32(acc0, u0, _mm512_loadu_si512(pq.add(64 * b).cast()));
            acc1 = _mm512_dpbusd_epi32(acc1, u1, _mm512_loadu_si512(pq.add(64 * b + 64).cast()));
        }
        b += 2;
    }
    if b < n {
        unsafe {
            let c0 = _mm512_broadcast_i64x4(_mm256_loadu_si256(pc.add(32 * b).cast()));
            let u0 = _mm512_and_si512(_mm512_srlv_epi64(c0, shift), mask);
            acc0 = _mm512_dpbusd_epi32(acc0, u0, _mm512_loadu_si512(pq.add(64 * b).cast()));
        }
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
}

#[target_feature(enable = "avx512bw,avx512vnni")]
unsafe fn ip_u2_vnni_impl(codes: &[u8], q: &[i8]) -> i32 {
    let n = blocks(codes.len(), 16, q.len(), 64);
    let (pc, pq) = (codes.as_ptr(), q.as_ptr());
    let mask = _mm512_set1_epi8(0x03);
    // The block's 16 bytes in all four 128-bit lanes, lane f shifted by 2f: after the mask,
    // bytes 16f..16f + 16 are field f, dimensions 16f..16f + 16.
    let shift = _mm512_setr_epi64(0, 0, 2, 2, 4, 4, 6, 6);
    let mut acc0 = _mm512_setzero_si512();
    let mut acc1 = _mm512_setzero_si512();
    let mut b = 0;
    // SAFETY (all loads): b < n (or b + 1 < n) is checked first, so codes[16b..16b + 16]
    // and q[64b..64b + 64] are in bounds.
    while b + 1 < n {
        unsafe {
            let c0 = _mm512_broadcast_i32x4(_mm_loadu_si128(pc.add(16 * b).cast()));
            let c1 = _mm512_broadcast_i32x4(_mm_loadu_si128(pc.add(16 * b + 16).cast()));
            let u0 = _mm512_and_si512(_mm512_srlv_epi64(c0, shift), mask);
            let u1 = _mm512_and_si512(_mm512_srlv_epi64(c1, shift), mask);
            acc0 = _mm512_dpbusd_epi32(acc0, u0, _mm512_loadu_si512(pq.add(64 * b).cast()));
            acc1 = _mm512_dpbusd_epi32(acc1, u1, _mm512_loadu_si512(pq.add(64 * b + 64).cast()));
        }
        b += 2;
    }
    if b < n {
        unsafe {
            let c0 = _mm512_broadcast_i32x4(_mm_loadu_si128(pc.add(16 * b).cast()));
            let u0 = _mm512_and_si512(_mm512_srlv_epi64(c0, shift), mask);
            acc0 = _mm512_dpbusd_epi32(acc0, u0, _mm512_loadu_si512(pq.add(64 * b).cast()));
        }
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
}

#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn ip_b1_avx512_impl(codes: &[u8], planes: &[u64]) -> i32 {
    let stride = planes.len() / QUERY_PLANES;
    let n = blocks(codes.len(), 8, stride, 1);
    let (pc, pp) = (codes.as_ptr(), planes.as_ptr());
    let mut acc = [_mm512_setzero_si512(); QUERY_PLANES];
    let mut b = 0;
    while b < n {
        // Eight blocks at a time; the last step loads only the blocks that remain (masked
        // lanes are neither read nor faulted on, and count as zero).
        let rest = n - b;
        let m: __mmask8 = if rest >= 8 { 0xFF } else { (1u8 << rest) - 1 };
        // SAFETY: the mask admits blocks b..min(b + 8, n) only: codes[8b..8n] and, per plane
        // p, planes[p * stride + b..p * stride + n] (n <= stride) are in bounds.
        unsafe {
            let c = _mm512_maskz_loadu_epi64(m, pc.add(8 * b).cast());
            for (p, a) in acc.iter_mut().enumerate() {
                let w = _mm512_maskz_loadu_epi64(m, pp.add(p * stride + b).cast());
                *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_and_si512(c, w)));
            }
        }
        b += 8;
    }
    // The planes' weights in the lanes (1, 2, 4, -8; counts are at most the dimension, far
    // from overflow), then one reduction instead of four.
    let [a0, a1, a2, a3] = acc;
    let w = _mm512_add_epi64(
        _mm512_add_epi64(a0, _mm512_slli_epi64::<1>(a1)),
        _mm512_sub_epi64(_mm512_slli_epi64::<2>(a2), _mm512_slli_epi64::<3>(a3)),
    );
    _mm512_reduce_add_epi64(w) as i32
}
