//! aarch64 code kernels (NEON). Each public function is selected by `detect` only after NEON
//! was detected; the `unsafe` bodies load only whole blocks that both slices hold.

use std::arch::aarch64::*;

use super::{QUERY_PLANES, blocks, scalar};

pub fn ip_u4_neon(codes: &[u8], q: &[i8]) -> i32 {
    // SAFETY: only selected by `detect` after checking neon.
    unsafe { ip_u4_neon_impl(codes, q) }
}

pub fn ip_u2_neon(codes: &[u8], q: &[i8]) -> i32 {
    // SAFETY: only selected by `detect` after checking neon.
    unsafe { ip_u2_neon_impl(codes, q) }
}

pub fn ip_b1_neon(codes: &[u8], planes: &[u64]) -> i32 {
    // SAFETY: only selected by `detect` after checking neon.
    unsafe { ip_b1_neon_impl(codes, planes) }
}

/// Adds `Σ u[i] * s[i]` over 16 lanes to four `i32` lanes. A field is at most 15, so it is
/// also a valid `i8`, and a sum of two products fits an `i16` (2 * 15 * 128).
#[target_feature(enable = "neon")]
fn dot16(acc: int32x4_t, u: uint8x16_t, s: int8x16_t) -> int32x4_t {
    let u = vreinterpretq_s8_u8(u);
    let lo = vmull_s8(vget_low_s8(u), vget_low_s8(s));
    let pair = vmlal_s8(lo, vget_high_s8(u), vget_high_s8(s));
    vpadalq_s16(acc, pair)
}

#[target_feature(enable = "neon")]
unsafe fn ip_u4_neon_impl(codes: &[u8], q: &[i8]) -> i32 {
    let n = blocks(codes.len(), 32, q.len(), 64);
    let (pc, pq) = (codes.as_ptr(), q.as_ptr());
    let mask = vdupq_n_u8(0x0F);
    let mut acc = vdupq_n_s32(0);
    for b in 0..n {
        // SAFETY: b < n, so codes[32b..32b + 32] and q[64b..64b + 64] are in bounds.
        unsafe {
            let c0 = vld1q_u8(pc.add(32 * b));
            let c1 = vld1q_u8(pc.add(32 * b + 16));
            let s = pq.add(64 * b);
            acc = dot16(acc, vandq_u8(c0, mask), vld1q_s8(s));
            acc = dot16(acc, vandq_u8(c1, mask), vld1q_s8(s.add(16)));
            acc = dot16(acc, vshrq_n_u8::<4>(c0), vld1q_s8(s.add(32)));
            acc = dot16(acc, vshrq_n_u8::<4>(c1), vld1q_s8(s.add(48)));
        }
    }
    vaddvq_s32(acc)
}

#[target_feature(enable = "neon")]
unsafe fn ip_u2_neon_impl(codes: &[u8], q: &[i8]) -> i32 {
    let n = blocks(codes.len(), 16, q.len(), 64);
    let (pc, pq) = (codes.as_ptr(), q.as_ptr());
    let mask = vdupq_n_u8(0x03);
    let mut acc = vdupq_n_s32(0);
    for b in 0..n {
        // SAFETY: b < n, so codes[16b..16b + 16] and q[64b..64b + 64] are in bounds.
        unsafe {
            let c = vld1q_u8(pc.add(16 * b));
            let s = pq.add(64 * b);
            acc = dot16(acc, vandq_u8(c, mask), vld1q_s8(s));
            acc = dot16(acc, vandq_u8(vshrq_n_u8::<2>(c), mask), vld1q_s8(s.add(16)));
            acc = dot16(acc, vandq_u8(vshrq_n_u8::<4>(c), mask), vld1q_s8(s.add(32)));
            acc = dot16(acc, vshrq_n_u8::<6>(c), vld1q_s8(s.add(48)));
        }
    }
    vaddvq_s32(acc)
}

#[target_feature(enable = "neon")]
unsafe fn ip_b1_neon_impl(codes: &[u8], planes: &[u64]) -> i32 {
    let stride = planes.len() / QUERY_PLANES;
    let n = blocks(codes.len(), 8, stride, 1);
    let (pc, pp) = (codes.as_ptr(), planes.as_ptr());
    let mut acc = [vdupq_n_u32(0); QUERY_PLANES];
    let mut b = 0;
    // Two blocks (16 bytes) at a time; per-byte counts are at most 8, widened at once.
    while b + 2 <= n {
        // SAFETY: b + 2 <= n, so codes[8b..8b + 16] and each plane's words b, b + 1 are in
        // bounds (n <= stride).
        unsafe {
            let c = vld1q_u8(pc.add(8 * b));
            for (p, a) in acc.iter_mut().enumerate() {
                let w = vreinterpretq_u8_u64(vld1q_u64(pp.add(p * stride + b)));
                *a = vpadalq_u16(*a, vpaddlq_u8(vcntq_u8(vandq_u8(c, w))));
            }
        }
        b += 2;
    }
    let mut counts = acc.map(|a| vaddvq_u32(a));
    if b < n {
        // The odd last block, as in the scalar kernel.
        let mut word = [0u8; 8];
        word.copy_from_slice(&codes[8 * b..8 * b + 8]);
        let w = u64::from_le_bytes(word);
        for (p, count) in counts.iter_mut().enumerate() {
            *count += (w & planes[p * stride + b]).count_ones();
        }
    }
    scalar::weigh(counts)
}
