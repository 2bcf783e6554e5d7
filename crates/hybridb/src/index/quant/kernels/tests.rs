//! Every kernel against a reference that unpacks the layout field by field, at every block
//! count up to 20, with all byte values (including query values of -128 and codes with every
//! bit set), and with slices of mismatched lengths.

use super::*;

/// A small deterministic generator (xorshift64*).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// The reference: field of dimension `d` read through [`slot`].
fn field(codes: &[u8], bits: usize, d: usize) -> i32 {
    let (b, j) = (d / 64, d % 64);
    let (byte, shift) = slot(j, bits);
    i32::from((codes[b * 8 * bits + byte] >> shift) & ((1u8 << bits) - 1))
}

fn reference_bytes(codes: &[u8], bits: usize, q: &[i8]) -> i32 {
    let n = (codes.len() / (8 * bits)).min(q.len() / 64);
    (0..64 * n)
        .map(|d| field(codes, bits, d) * i32::from(q[d]))
        .sum()
}

/// The 4-bit two's complement value of dimension `d` from the planes.
fn plane_value(planes: &[u64], d: usize) -> i32 {
    let stride = planes.len() / QUERY_PLANES;
    let (b, j) = (d / 64, d % 64);
    let (byte, shift) = slot(j, 1);
    let bit = 8 * byte + shift;
    let v: i32 = (0..QUERY_PLANES)
        .map(|p| (((planes[p * stride + b] >> bit) & 1) as i32) << p)
        .sum();
    if v >= 8 { v - 16 } else { v }
}

fn reference_bits(codes: &[u8], planes: &[u64]) -> i32 {
    let n = (codes.len() / 8).min(planes.len() / QUERY_PLANES);
    (0..64 * n)
        .map(|d| field(codes, 1, d) * plane_value(planes, d))
        .sum()
}

fn check(k: &CodeKernels, name: &str) {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for blocks in 0..=20usize {
        for round in 0..4 {
            let q: Vec<i8> = g.bytes(64 * blocks).into_iter().map(|b| b as i8).collect();
            let mut c4 = g.bytes(32 * blocks);
            let mut c2 = g.bytes(16 * blocks);
            let mut c1 = g.bytes(8 * blocks);
            if round == 3 {
                // Extremes: every field at its top, every query value at -128.
                c4.fill(0xFF);
                c2.fill(0xFF);
                c1.fill(0xFF);
            }
            let q = if round == 3 { vec![-128i8; q.len()] } else { q };
            let planes: Vec<u64> = (0..QUERY_PLANES * blocks)
                .map(|_| if round == 3 { u64::MAX } else { g.next() })
                .collect();
            assert_eq!(
                (k.ip_u4)(&c4, &q),
                reference_bytes(&c4, 4, &q),
                "{name} u4, {blocks} blocks"
            );
            assert_eq!(
                (k.ip_u2)(&c2, &q),
                reference_bytes(&c2, 2, &q),
                "{name} u2, {blocks} blocks"
            );
            assert_eq!(
                (k.ip_b1)(&c1, &planes),
                reference_bits(&c1, &planes),
                "{name} b1, {blocks} blocks"
            );
            // Mismatched lengths read only the blocks both hold, and never out of bounds.
            if blocks > 1 {
                let short = &q[..64 * (blocks - 1) + 13];
                assert_eq!((k.ip_u4)(&c4, short), reference_bytes(&c4, 4, short));
                assert_eq!((k.ip_u2)(&c2[..17], &q), reference_bytes(&c2[..17], 2, &q));
                assert_eq!(
                    (k.ip_b1)(&c1[..9], &planes),
                    reference_bits(&c1[..9], &planes)
                );
            }
        }
    }
}

#[test]
fn scalar_kernels_match_the_layout() {
    check(&SCALAR, "scalar");
}

#[test]
fn detected_kernels_match_scalar() {
    let k = code_kernels();
    check(k, k.isa);
}

/// Every x86 variant this machine can run, whichever was detected.
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_kernels_match_scalar() {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx2") {
        let k = CodeKernels {
            ip_u4: x86::ip_u4_avx2,
            ip_u2: x86::ip_u2_avx2,
            ..SCALAR
        };
        check(&k, "avx2");
    }
    if has!("avx512bw") && has!("avx512vnni") {
        let k = CodeKernels {
            ip_u4: x86::ip_u4_vnni,
            ip_u2: x86::ip_u2_vnni,
            ..SCALAR
        };
        check(&k, "avx512vnni");
    }
    if has!("avx512f") && has!("avx512vpopcntdq") {
        let k = CodeKernels {
            ip_b1: x86::ip_b1_avx512,
            ..SCALAR
        };
        check(&k, "avx512vpopcntdq");
    }
    if has!("popcnt") {
        let k = CodeKernels {
            ip_b1: x86::ip_b1_popcnt,
            ..SCALAR
        };
        check(&k, "popcnt");
    }
}

/// The NEON kernels (run on aarch64, or under qemu-aarch64).
#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
#[test]
fn neon_kernels_match_scalar() {
    if std::arch::is_aarch64_feature_detected!("neon") {
        let k = CodeKernels {
            ip_u4: arm::ip_u4_neon,
            ip_u2: arm::ip_u2_neon,
            ip_b1: arm::ip_b1_neon,
            isa: "neon",
        };
        check(&k, "neon");
        assert_eq!(code_kernels().isa, "neon");
    }
}

/// Every rotation variant this CPU runs returns the scalar body's bits exactly, for padded
/// lengths that are and are not powers of two (one block, or two overlapping blocks and the
/// half mix), on values spanning many magnitudes.
#[test]
fn rotation_kernels_match_scalar() {
    let mut variants: Vec<(&str, RotateFn)> = vec![("detected", rotation_kernel().rounds)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            variants.push(("avx2", fht::x86::rounds_avx2));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            variants.push(("avx512f", fht::x86::rounds_avx512));
        }
    }
    let mut g = Gen(11);
    for padded in [64usize, 128, 192, 384, 512, 832, 960, 1024, 1536] {
        let block = 1usize << (usize::BITS - 1 - padded.leading_zeros());
        let signs: Vec<f32> = (0..6 * padded)
            .map(|_| if g.next() & 1 == 1 { -1.0 } else { 1.0 })
            .collect();
        let x: Vec<f32> = (0..padded)
            .map(|_| {
                let v = g.next();
                let mantissa = (v >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                mantissa * 2f32.powi((v % 40) as i32 - 20)
            })
            .collect();
        let mut want = x.clone();
        (SCALAR_ROTATION.rounds)(&mut want, &signs, block);
        for (name, rounds) in &variants {
            let mut got = x.clone();
            rounds(&mut got, &signs, block);
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name} differs from scalar at padded {padded}");
        }
    }
}

#[test]
fn query_quantization_kernels_match_scalar() {
    let mut variants: Vec<(&str, QuantizeFn)> = vec![("detected", rotation_kernel().quantize)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            variants.push(("avx2", query::x86::quantize_avx2));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            variants.push(("avx512f", query::x86::quantize_avx512));
        }
    }
    let mut g = Gen(12);
    for len in [0usize, 1, 7, 64, 384, 833] {
        // Values around every rounding boundary and beyond the clamp, plus NaN and infinities.
        let mut z: Vec<f32> = (0..len)
            .map(|_| {
                let v = g.next();
                ((v >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 300.0
            })
            .collect();
        for (i, special) in [f32::NAN, f32::INFINITY, -0.5, 0.5, 126.5, -127.5]
            .iter()
            .enumerate()
        {
            if let Some(x) = z.get_mut(i * 5) {
                *x = *special;
            }
        }
        for qmax in [7.0f32, 127.0] {
            let mut want = vec![0i8; len];
            (SCALAR_ROTATION.quantize)(&z, 1.0, qmax, &mut want);
            for (name, f) in &variants {
                let mut got = vec![0i8; len];
                f(&z, 1.0, qmax, &mut got);
                assert_eq!(got, want, "{name}, len {len}, qmax {qmax}");
            }
        }
    }
}
