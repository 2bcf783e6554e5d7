//! The encoder's search: the magnitudes `m_i` of the grid point `ȳ_i = ±(m_i + 1/2)`,
//! `m_i = min(⌊t a_i⌋, cap)` for `a = |z|`, closest in angle to `z` over every scale `t`.
//!
//! The cosine `f(t) = Σ (m_i + 1/2) a_i / √Σ (m_i + 1/2)²` changes only at the points
//! `t = m / a_i` (`m = 1..=cap`) where a magnitude steps up ("events"). Sorting all `cap · p`
//! events and walking them in order is exact but costs `O(cap · p log p)` (40-80 µs per
//! 4-bit code at 384-784 dimensions); this search gives the same result walking a few of them:
//!
//! 1. `a` is scaled to `Σ a² = p` (the cosine does not depend on the scale); then the best `t`
//!    concentrates, about 1.0 at 2 bits and 3.0 at 4 bits (2.0-4.2 on real and Gaussian
//!    data). Each `a_i` falls in a bin `b_i = ⌊64 a_i⌋` (exact: 64 is a power of two); for
//!    `t = 64 / q` with an integer `q`, `⌊t a_i⌋ = ⌊b_i / q⌋`, so with prefix sums of the bins'
//!    counts and `Σ a`, the sums `n = Σ (m_i + 1/2) a_i` and `d = Σ (m_i + 1/2)²` at such a
//!    boundary cost `cap + 1` look-ups instead of a pass over `a`.
//! 2. Between boundaries `t0 < t1` the walk adds events in increasing `t`; one adds `a_i` to
//!    `n` and `2m = 2 t_e a_i` to `d`, so `d` grows as a convex function of `n` with slopes
//!    in `[2 t0, 2 t1]`. Below both tangents, `f² = n² / d` is largest at an end or where the
//!    tangents cross: a bound for the whole interval. An interval whose bound is below the
//!    best boundary's `f²` cannot hold the optimum. Coarse boundaries first ([`COARSE_2`],
//!    [`COARSE_4`]), then every `q` between the first and last interval left.
//! 3. The events between the first and last interval left (a few per cent of them) are bucket
//!    sorted and walked from the window's first boundary in `f64`, keeping the best prefix as
//!    the exhaustive walk does.
//!
//! So the result is the exhaustive walk's (up to the order of events less than an `f32` ulp
//! apart, which the two walks may take differently); test
//! `windowed_search_matches_the_exhaustive_walk` compares them.

use std::cell::RefCell;

/// Bins per unit of `a` (scaled to `Σ a² = p`): a power of two, so `64 a` is exact.
const GRID: u32 = 64;

/// The `q` of the coarse boundaries `t = 64 / q` for 2-bit codes (`cap = 1`), decreasing: `t`
/// 0.35, 0.5, 0.7, 0.8, 0.85, 0.91, 0.96, 1.0, 1.05, 1.1, 1.16, 1.28, 1.49, 2, 3.
const COARSE_2: [u32; 15] = [183, 128, 91, 80, 75, 70, 67, 64, 61, 58, 55, 50, 43, 32, 21];

/// The `q` of the coarse boundaries for 4-bit codes (`cap = 7`): `t` 0.35, 0.6, 1.0, 1.4, 1.7,
/// 2.0, 2.3, 2.6, 2.9, 3.2, 3.6, 3.8, 4.0, 4.6, 5.3, 7.1.
const COARSE_4: [u32; 16] = [
    183, 107, 64, 46, 38, 32, 28, 25, 22, 20, 18, 17, 16, 14, 12, 9,
];

/// The scale of the fixed-point sums of `a`, 2^23 (exact in `f32`): each term rounds down by
/// less than 2^-23, at most a relative 2e-7 of the sums, below [`MARGIN`].
const FIXED: f64 = (1u64 << 23) as f64;

/// Relative margin on squared cosines before an interval is dropped: above the `f64`
/// rounding of the sums.
const MARGIN: f64 = 1e-6;

/// Buffers reused across calls on one thread, so that encoding allocates nothing once warm.
#[derive(Default)]
pub(super) struct Scratch {
    /// The rotated vector.
    pub z: Vec<f32>,
    /// The magnitudes found.
    pub mag: Vec<u8>,
    /// `|z_i|`, scaled to `Σ a² = p`.
    abs: Vec<f32>,
    /// `⌊64 a_i⌋`, at most the last bin.
    bin: Vec<u32>,
    /// Prefix sums over the bins: vectors, and their `Σ a` in units of 2^-23 (integers, so
    /// that the sums are exact and the prefix loop has no floating-point latency chain).
    below: Vec<u32>,
    below_sum: Vec<u64>,
    /// Boundaries: `q` (0 for `t = ∞`, `u32::MAX` for `t = 0`), `t`, `n`, `d`.
    at: Vec<Boundary>,
    /// Magnitudes per bin at the window's first and last boundaries.
    lut_lo: Vec<u8>,
    lut_hi: Vec<u8>,
    /// Magnitudes at the window's last boundary.
    high: Vec<u8>,
    /// The window's events: `t` as `f32` bits in the high half, the dimension in the low half.
    keys: Vec<u64>,
    /// The events in order.
    sorted: Vec<u64>,
    /// The bucket sort's buffers.
    buckets: Buckets,
}

/// A boundary `t = 64 / q` and the sums there.
#[derive(Clone, Copy)]
struct Boundary {
    q: u32,
    t: f64,
    n: f64,
    d: f64,
}

/// Buffers of [`bucket_sort`].
#[derive(Default)]
struct Buckets {
    /// Each key's bucket.
    of: Vec<u32>,
    /// Bucket starts, then ends.
    counts: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with_borrow_mut(f)
}

/// The magnitude of every bin below `bins` at boundary `q` (see [`Boundary`]),
/// `min(⌊b / q⌋, cap)`, into `out`: runs of `q` equal values, no division per vector.
fn levels_of_bins(q: u32, cap: u8, bins: usize, out: &mut Vec<u8>) {
    out.clear();
    match q {
        0 => out.resize(bins, cap),
        u32::MAX => out.resize(bins, 0),
        _ => {
            for m in 0..cap {
                let end = ((u32::from(m) + 1) * q) as usize;
                out.resize(end.min(bins), m);
            }
            out.resize(bins, cap);
        }
    }
}

/// The largest value of `a` (non-negative), in eight lanes so that the loop vectorises.
fn max(a: &[f32]) -> f32 {
    let (chunks, rest) = a.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x > *m { x } else { *m };
        }
    }
    rest.iter().chain(&lanes).fold(0.0, |m, &x| m.max(x))
}

/// `Σ (m_i + 1/2) a_i` and `Σ (m_i + 1/2)²`, in `f64`.
fn start_sums(mag: &[u8], a: &[f32]) -> (f64, f64) {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&m, &x) in mag.iter().zip(a) {
        let y = f64::from(m) + 0.5;
        num += y * f64::from(x);
        den += y * y;
    }
    (num, den)
}

/// Finds the magnitudes (see the module docs) of the padded rotated vector in `s.z`, with
/// `norm = |z|`, into `s.mag`; `cap` is 1 or 7.
pub(super) fn search(s: &mut Scratch, norm: f64, cap: u8) {
    let p = s.z.len();
    if norm == 0.0 || p == 0 {
        s.mag.clear();
        s.mag.resize(p, 0);
        return;
    }
    let coarse: &[u32] = if cap == 1 { &COARSE_2 } else { &COARSE_4 };
    let (q_min, q_max) = (coarse[coarse.len() - 1], coarse[0]);
    // Every bin from `cap * q_max` on is at `cap` at every finite boundary.
    let last_bin = u32::from(cap) * q_max;
    let inv = (p as f64).sqrt() / norm;
    s.abs.clear();
    s.abs
        .extend(s.z.iter().map(|&x| (f64::from(x.abs()) * inv) as f32));
    let a = &s.abs[..];
    let amax = max(a);
    // Bins are monotone in a, so the largest is amax's.
    let bin_of = |x: f32| ((x * GRID as f32) as u32).min(last_bin);
    let bins = bin_of(amax) as usize + 1;
    s.bin.clear();
    s.bin.extend(a.iter().map(|&x| bin_of(x)));
    s.below.clear();
    s.below.resize(bins + 1, 0);
    s.below_sum.clear();
    s.below_sum.resize(bins + 1, 0);
    for (&b, &x) in s.bin.iter().zip(a) {
        s.below[b as usize + 1] += 1;
        // x <= √p, so x 2^23 < 2^32 and a sum is below 2^23 p^1.5: no overflow for p < 2^27.
        s.below_sum[b as usize + 1] += u64::from((x * FIXED as f32) as u32);
    }
    for b in 1..=bins {
        s.below[b] += s.below[b - 1];
        s.below_sum[b] += s.below_sum[b - 1];
    }
    let (below, below_sum) = (&s.below[..], &s.below_sum[..]);
    let sum_between = |lo: usize, hi: usize| (below_sum[hi] - below_sum[lo]) as f64 / FIXED;
    let total = sum_between(0, bins);
    let nonzero = a.iter().map(|&x| u32::from(x > 0.0)).sum::<u32>() as f64;
    let top = f64::from(cap) + 0.5;
    let boundary = |q: u32| -> Boundary {
        match q {
            u32::MAX => Boundary {
                q,
                t: 0.0,
                n: total / 2.0,
                d: p as f64 / 4.0,
            },
            0 => Boundary {
                q,
                t: f64::INFINITY,
                n: top * total,
                d: top * top * nonzero + (p as f64 - nonzero) / 4.0,
            },
            _ => {
                let (mut n, mut d) = (0.0, 0.0);
                for m in 0..=u32::from(cap) {
                    let lo = ((m * q) as usize).min(bins);
                    let hi = if m == u32::from(cap) {
                        bins
                    } else {
                        (((m + 1) * q) as usize).min(bins)
                    };
                    let y = f64::from(m) + 0.5;
                    n += y * sum_between(lo, hi);
                    d += y * y * f64::from(below[hi] - below[lo]);
                }
                Boundary {
                    q,
                    t: f64::from(GRID) / f64::from(q),
                    n,
                    d,
                }
            }
        }
    };
    // Interval (t0, t1]'s bound (module docs), with the slope at least the first event's
    // 2 / max a.
    let bound = |b0: &Boundary, b1: &Boundary| {
        let s0 = b0.t.max(1.0 / f64::from(amax));
        let (x, dd) = ((b1.n - b0.n).max(0.0), (b1.d - b0.d).max(0.0));
        let ends = (b0.n * b0.n / b0.d).max(b1.n * b1.n / b1.d);
        let inside = if b1.t.is_finite() && b1.t > s0 {
            let kink = ((dd - 2.0 * b1.t * x) / (2.0 * (s0 - b1.t))).clamp(0.0, x);
            (b0.n + kink) * (b0.n + kink) / (b0.d + 2.0 * s0 * kink)
        } else {
            b1.n * b1.n / (b0.d + 2.0 * s0 * x)
        };
        ends.max(inside)
    };
    // The first and last intervals of `at` whose bound reaches `best`, as boundary indices.
    let window = |at: &[Boundary], best: f64| {
        let keep = |j: usize| bound(&at[j], &at[j + 1]) >= best * (1.0 - MARGIN);
        let lo = (0..at.len() - 1).find(|&j| keep(j)).unwrap_or(0);
        let hi = (0..at.len() - 1)
            .rev()
            .find(|&j| keep(j))
            .map_or(at.len() - 1, |j| j + 1);
        (lo, hi)
    };
    let f2 = |b: &Boundary| b.n * b.n / b.d;

    let at = &mut s.at;
    at.clear();
    at.push(boundary(u32::MAX));
    at.extend(coarse.iter().map(|&q| boundary(q)));
    at.push(boundary(0));
    let mut best = at.iter().map(f2).fold(0.0, f64::max);
    let (lo, hi) = window(at, best);
    // Every q between the window's ends, when there are any.
    let (q_lo, q_hi) = (at[lo].q.min(q_max + 1), at[hi].q.max(q_min - 1));
    if q_lo > q_hi + 1 {
        let (first, last) = (at[lo], at[hi]);
        at.clear();
        at.push(first);
        at.extend((q_hi + 1..q_lo).rev().map(boundary));
        at.push(last);
        best = at.iter().map(f2).fold(best, f64::max);
    }
    let (lo, hi) = window(at, best);
    levels_of_bins(at[lo].q, cap, bins, &mut s.lut_lo);
    levels_of_bins(at[hi].q, cap, bins, &mut s.lut_hi);

    // The window's first and last states, and the events between them.
    s.mag.clear();
    s.mag.resize(p, 0);
    s.high.clear();
    s.high.resize(p, 0);
    s.keys.clear();
    let (mut tmin, mut tmax) = (f32::INFINITY, 0.0f32);
    let (lut_lo, lut_hi) = (&s.lut_lo[..], &s.lut_hi[..]);
    for (i, ((&b, &x), (m0, m1))) in s
        .bin
        .iter()
        .zip(a)
        .zip(s.mag.iter_mut().zip(s.high.iter_mut()))
        .enumerate()
    {
        if x > 0.0 {
            (*m0, *m1) = (lut_lo[b as usize], lut_hi[b as usize]);
            for m in *m0 + 1..=*m1 {
                let t = f32::from(m) / x;
                tmin = tmin.min(t);
                tmax = tmax.max(t);
                s.keys.push(u64::from(t.to_bits()) << 32 | i as u64);
            }
        }
    }
    bucket_sort(&s.keys, tmin, tmax, &mut s.buckets, &mut s.sorted);

    // The walk, from the window's first state.
    let (mut num, mut den) = start_sums(&s.mag, a);
    let mut best = num * num / den;
    let mut best_len = 0;
    s.high.copy_from_slice(&s.mag);
    for (n, &e) in s.sorted.iter().enumerate() {
        let i = (e & 0xFFFF_FFFF) as usize;
        s.high[i] += 1;
        // The magnitude goes from m - 1/2 to m + 1/2.
        num += f64::from(a[i]);
        den += 2.0 * f64::from(s.high[i]);
        let cos2 = num * num / den;
        if cos2 > best {
            best = cos2;
            best_len = n + 1;
        }
    }
    for &e in &s.sorted[..best_len] {
        s.mag[(e & 0xFFFF_FFFF) as usize] += 1;
    }
}

/// Sorts `keys` into `out`: a counting pass over as many buckets as keys, then each bucket of
/// two or more sorted in place. The bucket of a key is linear in `1 / t` (`t` the `f32` in
/// its high half, in `tmin..=tmax`), which spreads the events evenly where `t` itself has a
/// long tail (from the small `a_i`), and is monotone in `t` (every step rounds monotonically),
/// so the buckets are in key order.
fn bucket_sort(keys: &[u64], tmin: f32, tmax: f32, s: &mut Buckets, out: &mut Vec<u64>) {
    out.clear();
    out.resize(keys.len(), 0);
    let buckets = keys.len().max(1);
    let (umax, umin) = (1.0 / tmin, 1.0 / tmax);
    let scale = if umax > umin {
        (buckets - 1) as f32 / (umax - umin)
    } else {
        0.0
    };
    s.of.clear();
    s.of.extend(keys.iter().map(|&k| {
        let u = 1.0 / f32::from_bits((k >> 32) as u32);
        (((umax - u) * scale) as u32).min(buckets as u32 - 1)
    }));
    s.counts.clear();
    s.counts.resize(buckets + 1, 0);
    for &b in &s.of {
        s.counts[b as usize + 1] += 1;
    }
    for b in 1..=buckets {
        s.counts[b] += s.counts[b - 1];
    }
    for (&k, &b) in keys.iter().zip(&s.of) {
        let c = &mut s.counts[b as usize];
        out[*c as usize] = k;
        *c += 1;
    }
    // counts[b] is now the end of bucket b, counts[b - 1] its start (0 for the first).
    let mut start = 0;
    for &end in &s.counts[..buckets] {
        let end = end as usize;
        match end - start {
            0 | 1 => {}
            2..=16 => insertion_sort(&mut out[start..end]),
            _ => out[start..end].sort_unstable(),
        }
        start = end;
    }
}

fn insertion_sort(v: &mut [u64]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}
