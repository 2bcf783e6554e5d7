//! Integer inner products between packed B-bit codes and a quantized query, the inner loop of
//! the rotated codes' estimator ([`super::Rq`]).
//!
//! Layout (the one every kernel reads): codes come in blocks of 64 dimensions packed into
//! `8 * B` bytes; dimension `j` of a block (`0..64`) is the `B`-bit field at bit
//! `B * (j / (8 * B))` of byte `j % (8 * B)` ([`slot`]). So at 4 bits byte `i` holds
//! dimensions `i` (low nibble) and `32 + i` (high nibble), at 2 bits dimensions `i`, `16 + i`,
//! `32 + i`, `48 + i`: one shift and mask give a run of consecutive dimensions, which is what
//! SIMD lanes want. The query is one `i8` per dimension ([`CodeKernels::ip_u4`],
//! [`CodeKernels::ip_u2`]) or, for 1-bit codes, [`QUERY_PLANES`] bit planes of a 4-bit two's
//! complement query, plane-major (`planes[p * blocks + b]` is plane `p` of block `b`, bits in
//! the codes' order) ([`CodeKernels::ip_b1`]).
//!
//! The best kernels for the running CPU are chosen once, at first use, by runtime feature
//! detection, like [`crate::index::distance::kernels`]: AVX-512 (BW + VNNI for the byte
//! products, VPOPCNTDQ for 1 bit), AVX2 (and the `popcnt` instruction for 1 bit), NEON, else
//! the scalar loops. Every kernel returns exactly the scalar result for every input (integer
//! arithmetic, no saturation: a code field is at most 15, so a pair of `u8 x i8` products fits
//! an `i16`), and reads only whole blocks present in both slices, so any slice lengths are
//! safe.
//!
//! The rotation's rounds and the rotated query's quantization ([`RotationKernel`], files
//! `fht.rs` and `query.rs`) are chosen the same way, once, by
//! [`rotation_kernel`]: one portable body compiled for baseline x86-64, AVX2 and AVX-512F, equal
//! bit for bit. Invariant: these files and `distance.rs` are the only places in the crate
//! that use `unsafe` for SIMD; every `unsafe` call is guarded by the feature check made in
//! [`code_kernels`] or [`rotation_kernel`].

use std::sync::OnceLock;

pub(crate) mod fht;
pub(crate) mod query;

// The NEON kernels read plane words as bytes, which is the codes' order on little-endian only.
#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
mod arm;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Bit planes of the query given to [`CodeKernels::ip_b1`]: a 4-bit two's complement value per
/// dimension, so planes 0-2 weigh 1, 2, 4 and plane 3 weighs -8.
pub const QUERY_PLANES: usize = 4;

/// `Σ code[j] * query[j]` over packed 2- or 4-bit codes and `i8` query values.
pub type CodeIpFn = fn(&[u8], &[i8]) -> i32;

/// `Σ bit[j] * query[j]` over packed 1-bit codes and the query's bit planes.
pub type BitIpFn = fn(&[u8], &[u64]) -> i32;

/// The code kernels selected for this CPU.
#[derive(Clone, Copy, Debug)]
pub struct CodeKernels {
    /// 4-bit codes (32 bytes per block) against 64 `i8` per block.
    pub ip_u4: CodeIpFn,
    /// 2-bit codes (16 bytes per block) against 64 `i8` per block.
    pub ip_u2: CodeIpFn,
    /// 1-bit codes (8 bytes per block) against [`QUERY_PLANES`] planes of one `u64` per block.
    pub ip_b1: BitIpFn,
    /// Instruction sets in use, byte products then bit counts (`"avx512vnni+avx512vpopcntdq"`,
    /// `"avx2+popcnt"`, `"neon"`, `"scalar"`, ...).
    pub isa: &'static str,
}

/// Returns the code kernels for this CPU, detecting features on the first call.
pub fn code_kernels() -> &'static CodeKernels {
    static KERNELS: OnceLock<CodeKernels> = OnceLock::new();
    KERNELS.get_or_init(detect)
}

/// The portable kernels, exported so that tests and benchmarks can compare against them.
pub const SCALAR: CodeKernels = CodeKernels {
    ip_u4: scalar::ip_u4,
    ip_u2: scalar::ip_u2,
    ip_b1: scalar::ip_b1,
    isa: "scalar",
};

/// The rotation's rounds over a padded vector `x`, in place: for each pair of `x.len()`-long
/// rows of `signs` (`±1`), sign flips and a normalised Walsh-Hadamard transform of the first
/// `block` values, then, when `block < x.len()`, of the last `block` values and a mix of the
/// two halves (see [`crate::index::quant::Rotation`]).
pub type RotateFn = fn(&mut [f32], &[f32], usize);

/// `out[i] = round_to_i8(z[i] * inv, qmax)`: the rotated query quantized (`query.rs`).
pub type QuantizeFn = fn(&[f32], f32, f32, &mut [i8]);

/// The rotation kernel selected for this CPU.
#[derive(Clone, Copy, Debug)]
pub struct RotationKernel {
    /// The rounds.
    pub rounds: RotateFn,
    /// The rotated query's quantization, compiled for the same instruction set.
    pub quantize: QuantizeFn,
    /// Instruction set in use: `"avx512f"`, `"avx2"` or `"scalar"`.
    pub isa: &'static str,
}

/// The portable rotation kernel, exported so that tests and benchmarks can compare against it.
pub const SCALAR_ROTATION: RotationKernel = RotationKernel {
    rounds: fht::rounds,
    quantize: query::quantize,
    isa: "scalar",
};

/// Returns the rotation kernel for this CPU, detecting features on the first call.
pub fn rotation_kernel() -> &'static RotationKernel {
    static KERNEL: OnceLock<RotationKernel> = OnceLock::new();
    KERNEL.get_or_init(detect_rotation)
}

fn detect_rotation() -> RotationKernel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            return RotationKernel {
                rounds: fht::x86::rounds_avx512,
                quantize: query::x86::quantize_avx512,
                isa: "avx512f",
            };
        }
        if has!("avx2") {
            return RotationKernel {
                rounds: fht::x86::rounds_avx2,
                quantize: query::x86::quantize_avx2,
                isa: "avx2",
            };
        }
    }
    SCALAR_ROTATION
}

/// Where dimension `j` (`0..64`) of a block of `bits`-bit codes lives: `(byte, shift)`.
#[inline]
pub fn slot(j: usize, bits: usize) -> (usize, usize) {
    let bytes = 8 * bits;
    (j % bytes, bits * (j / bytes))
}

fn detect() -> CodeKernels {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let mut k = SCALAR;
        let bytes = if has!("avx512bw") && has!("avx512vnni") {
            k.ip_u4 = x86::ip_u4_vnni;
            k.ip_u2 = x86::ip_u2_vnni;
            "avx512vnni"
        } else if has!("avx2") {
            k.ip_u4 = x86::ip_u4_avx2;
            k.ip_u2 = x86::ip_u2_avx2;
            "avx2"
        } else {
            "scalar"
        };
        k.isa = if has!("avx512f") && has!("avx512vpopcntdq") {
            k.ip_b1 = x86::ip_b1_avx512;
            match bytes {
                "avx512vnni" => "avx512vnni+avx512vpopcntdq",
                "avx2" => "avx2+avx512vpopcntdq",
                _ => "scalar+avx512vpopcntdq",
            }
        } else if has!("popcnt") {
            k.ip_b1 = x86::ip_b1_popcnt;
            match bytes {
                "avx512vnni" => "avx512vnni+popcnt",
                "avx2" => "avx2+popcnt",
                _ => "scalar+popcnt",
            }
        } else {
            bytes
        };
        k
    }
    #[cfg(all(target_arch = "aarch64", target_endian = "little"))]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return CodeKernels {
                ip_u4: arm::ip_u4_neon,
                ip_u2: arm::ip_u2_neon,
                ip_b1: arm::ip_b1_neon,
                isa: "neon",
            };
        }
        SCALAR
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "aarch64", target_endian = "little")
    )))]
    SCALAR
}

/// Blocks present in both `codes` (`bytes_per_block` each) and the `per_block` query items.
#[inline]
fn blocks(codes: usize, bytes_per_block: usize, query: usize, per_block: usize) -> usize {
    (codes / bytes_per_block).min(query / per_block)
}

mod scalar {
    use super::{QUERY_PLANES, blocks};

    pub fn ip_u4(codes: &[u8], q: &[i8]) -> i32 {
        let n = blocks(codes.len(), 32, q.len(), 64);
        let mut sum = 0i32;
        for (c, s) in codes.chunks_exact(32).zip(q.chunks_exact(64)).take(n) {
            let (lo, hi) = s.split_at(32);
            for j in 0..32 {
                sum += i32::from(c[j] & 0x0F) * i32::from(lo[j]);
                sum += i32::from(c[j] >> 4) * i32::from(hi[j]);
            }
        }
        sum
    }

    pub fn ip_u2(codes: &[u8], q: &[i8]) -> i32 {
        let n = blocks(codes.len(), 16, q.len(), 64);
        let mut sum = 0i32;
        for (c, s) in codes.chunks_exact(16).zip(q.chunks_exact(64)).take(n) {
            for (f, part) in s.chunks_exact(16).enumerate() {
                for j in 0..16 {
                    sum += i32::from((c[j] >> (2 * f)) & 3) * i32::from(part[j]);
                }
            }
        }
        sum
    }

    /// Shared by the `popcnt` variant, which compiles it with the instruction enabled.
    #[inline(always)]
    pub fn ip_b1_inline(codes: &[u8], planes: &[u64]) -> i32 {
        let stride = planes.len() / QUERY_PLANES;
        let n = blocks(codes.len(), 8, stride, 1);
        let mut counts = [0u32; QUERY_PLANES];
        for (b, c) in codes.chunks_exact(8).take(n).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            let w = u64::from_le_bytes(word);
            for (p, count) in counts.iter_mut().enumerate() {
                *count += (w & planes[p * stride + b]).count_ones();
            }
        }
        weigh(counts)
    }

    pub fn ip_b1(codes: &[u8], planes: &[u64]) -> i32 {
        ip_b1_inline(codes, planes)
    }

    /// Plane counts to the inner product: `c0 + 2 c1 + 4 c2 - 8 c3` (two's complement).
    #[inline(always)]
    pub fn weigh(counts: [u32; 4]) -> i32 {
        // Each count is at most the dimension, far below i32::MAX / 8.
        let c = counts.map(|x| x as i32);
        c[0] + 2 * c[1] + 4 * c[2] - 8 * c[3]
    }
}

#[cfg(test)]
mod tests;
