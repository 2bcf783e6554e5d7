//! Single-thread memory-read bandwidth: the ceiling for any scan that streams vectors from RAM.
//!
//! A buffer of at least four times the last-level cache is filled once (so every page is
//! resident), then summed several times with a vectorised loop; the best pass gives bytes/s.
//! The sum is returned and consumed so that the reads cannot be optimised away.

use std::hint::black_box;
use std::time::Instant;

/// Fallback last-level cache size when sysfs does not say.
const DEFAULT_LLC_BYTES: usize = 32 << 20;
/// Smallest buffer used, whatever the cache size.
const MIN_BUFFER_BYTES: usize = 256 << 20;

/// Result of a bandwidth measurement.
#[derive(Clone, Copy, Debug)]
pub struct Bandwidth {
    /// Best observed read rate, bytes per second.
    pub bytes_per_s: f64,
    /// Buffer size used.
    pub buffer_bytes: usize,
    /// Last-level cache size assumed.
    pub llc_bytes: usize,
}

/// Largest cache size reported by Linux sysfs for CPU 0, if any.
pub fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("size")).ok())
        .filter_map(|s| parse_size(s.trim()))
        .max()
}

/// Parses sysfs cache sizes such as `32768K`, `1M` or `512`.
fn parse_size(s: &str) -> Option<usize> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok().map(|n| n * mult)
}

/// Sum with 32 independent lanes, which the compiler turns into wide vector adds.
#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    let chunks = x.chunks_exact(32);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2(x: &[f32]) -> f32 {
    sum_lanes(x)
}

/// Sums `x` with the widest vector loads available.
pub fn sum(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { sum_avx2(x) };
    }
    sum_lanes(x)
}

/// Measures read bandwidth over a buffer of `max(4 × LLC, 256 MiB)`, best of `passes`.
pub fn measure(passes: usize) -> Bandwidth {
    let llc = last_level_cache_bytes().unwrap_or(DEFAULT_LLC_BYTES);
    let bytes = (4 * llc).max(MIN_BUFFER_BYTES);
    Bandwidth {
        bytes_per_s: measure_buffer(bytes, passes),
        buffer_bytes: bytes,
        llc_bytes: llc,
    }
}

/// Best read rate in bytes/s over `passes` sums of a buffer of `bytes` bytes.
pub fn measure_buffer(bytes: usize, passes: usize) -> f64 {
    let n = bytes / 4;
    // Non-zero contents, so that every page is really allocated and touched.
    let buf: Vec<f32> = (0..n).map(|i| (i & 1023) as f32).collect();
    let mut best = f64::INFINITY;
    let mut check = 0.0f32;
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        check += sum(black_box(&buf));
        best = best.min(t.elapsed().as_secs_f64());
    }
    black_box(check);
    (n * 4) as f64 / best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_is_correct_including_tail() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(sum(&x), 499_500.0);
        assert_eq!(sum_lanes(&x[..5]), 10.0);
    }

    #[test]
    fn parses_sysfs_sizes() {
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn measures_a_positive_rate() {
        assert!(measure_buffer(1 << 20, 2) > 0.0);
    }
}
