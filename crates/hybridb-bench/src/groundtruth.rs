//! Exact k-nearest-neighbour ground truth, computed on all cores.
//!
//! Queries are split into small blocks handed out through an atomic counter to one worker per
//! core (`std::thread::scope`). Each worker walks the base in tiles sized to stay in the L2 cache
//! and scores every query of its block against the tile, so each base tile is read from memory
//! once per query block rather than once per query. On x86_64 with AVX2+FMA, four queries are
//! scored per pass over a row; elsewhere hybridb's distance kernels score one pair at a time.
//! Rows are visited in increasing order, so ties go to the smaller row index and the result does
//! not depend on the thread count.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::metric::{Metric, normalise_rows};
use crate::topk::TopK;
use crate::vecs::Vecs;

/// Queries scored together against one base tile.
const QUERY_BLOCK: usize = 64;
/// Target size of one base tile in bytes.
const TILE_BYTES: usize = 256 * 1024;

/// Exact top-`k` base rows for each query by `metric` (nearest first), using `threads` workers
/// (0 = all available cores). For [`Metric::Cosine`] both sets are normalised internally.
/// Returns one row of `min(k, base.len())` indices per query.
pub fn ground_truth(
    base: &Vecs<f32>,
    queries: &Vecs<f32>,
    metric: Metric,
    k: usize,
    threads: usize,
) -> Vecs<i32> {
    let tile_rows = (TILE_BYTES / (base.dim * 4)).max(1);
    ground_truth_blocked(base, queries, metric, k, threads, QUERY_BLOCK, tile_rows)
}

/// [`ground_truth`] with explicit block sizes (exposed to tests so that they cross tile edges).
pub(crate) fn ground_truth_blocked(
    base: &Vecs<f32>,
    queries: &Vecs<f32>,
    metric: Metric,
    k: usize,
    threads: usize,
    query_block: usize,
    tile_rows: usize,
) -> Vecs<i32> {
    assert_eq!(base.dim, queries.dim, "base and query dimensions differ");
    assert!(
        base.len() <= i32::MAX as usize,
        "too many base rows for ivecs"
    );
    let dim = base.dim;
    let k = k.min(base.len());
    let (base, queries) = if metric.needs_normalising() {
        let mut b = base.data.clone();
        let mut q = queries.data.clone();
        normalise_rows(&mut b, dim);
        normalise_rows(&mut q, dim);
        (Cow::Owned(b), Cow::Owned(q))
    } else {
        (Cow::Borrowed(&base.data), Cow::Borrowed(&queries.data))
    };
    let nq = queries.len() / dim;
    let blocks = nq.div_ceil(query_block);
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
    .clamp(1, blocks.max(1));
    let next = AtomicUsize::new(0);

    let worker = || {
        let mut done: Vec<(usize, Vec<Vec<u32>>)> = Vec::new();
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= blocks {
                return done;
            }
            let qs = b * query_block..((b + 1) * query_block).min(nq);
            let mut tops: Vec<TopK> = qs.clone().map(|_| TopK::new(k)).collect();
            let block = &queries[qs.start * dim..qs.end * dim];
            for (t, tile) in base.chunks(tile_rows * dim).enumerate() {
                score_tile(metric, block, tile, dim, t * tile_rows, &mut tops);
            }
            done.push((b, tops.into_iter().map(TopK::into_sorted_rows).collect()));
        }
    };

    let mut out = vec![0i32; nq * k];
    let parts: Vec<Vec<(usize, Vec<Vec<u32>>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ground-truth worker panicked"))
            .collect()
    });
    for (b, rows) in parts.into_iter().flatten() {
        for (i, r) in rows.into_iter().enumerate() {
            let qi = b * query_block + i;
            for (o, x) in out[qi * k..(qi + 1) * k].iter_mut().zip(r) {
                *o = x as i32;
            }
        }
    }
    Vecs { dim: k, data: out }
}

/// Scores every row of `tile` (whose first row has index `first_row`) against every query of
/// `block`, feeding the distances to the matching collector in `tops`.
fn score_tile(
    metric: Metric,
    block: &[f32],
    tile: &[f32],
    dim: usize,
    first_row: usize,
    tops: &mut [TopK],
) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { x86::score_tile(metric == Metric::L2, block, tile, dim, first_row, tops) };
    }
    score_tile_portable(metric, block, tile, dim, first_row, tops);
}

/// [`score_tile`] through the crate-wide distance kernels, one query-row pair at a time.
fn score_tile_portable(
    metric: Metric,
    block: &[f32],
    tile: &[f32],
    dim: usize,
    first_row: usize,
    tops: &mut [TopK],
) {
    for (top, q) in tops.iter_mut().zip(block.chunks_exact(dim)) {
        for (r, row) in tile.chunks_exact(dim).enumerate() {
            top.push(metric.distance(q, row), (first_row + r) as u32);
        }
    }
}

/// AVX2+FMA scoring: four queries against one row per pass, so each row is loaded once for four
/// distances, with two accumulators per query to shorten the dependency chains.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::topk::TopK;

    /// As [`super::score_tile`]; squared L2 if `l2`, else the negated dot product.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn score_tile(
        l2: bool,
        block: &[f32],
        tile: &[f32],
        dim: usize,
        first_row: usize,
        tops: &mut [TopK],
    ) {
        let nq = block.len() / dim;
        let mut qi = 0;
        while qi + 4 <= nq {
            let q: [&[f32]; 4] =
                std::array::from_fn(|j| &block[(qi + j) * dim..(qi + j + 1) * dim]);
            for (r, row) in tile.chunks_exact(dim).enumerate() {
                let d = distances4(l2, q, row);
                for (top, &dist) in tops[qi..qi + 4].iter_mut().zip(&d) {
                    top.push(dist, (first_row + r) as u32);
                }
            }
            qi += 4;
        }
        while qi < nq {
            let q = &block[qi * dim..(qi + 1) * dim];
            for (r, row) in tile.chunks_exact(dim).enumerate() {
                let d = distances4(l2, [q; 4], row);
                tops[qi].push(d[0], (first_row + r) as u32);
            }
            qi += 1;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
    }

    /// Distances from four queries to `row`; every query must have `row`'s length.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn distances4(l2: bool, q: [&[f32]; 4], row: &[f32]) -> [f32; 4] {
        let n = row.len();
        assert!(
            q.iter().all(|x| x.len() == n),
            "query and row lengths differ"
        );
        let pr = row.as_ptr();
        let pq = q.map(<[f32]>::as_ptr);
        let mut lo = [_mm256_setzero_ps(); 4];
        let mut hi = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): i + 16 <= n, or i + 8 <= n, is checked before each load, and every
        // query has length n (asserted above).
        while i + 16 <= n {
            unsafe {
                let r0 = _mm256_loadu_ps(pr.add(i));
                let r1 = _mm256_loadu_ps(pr.add(i + 8));
                for j in 0..4 {
                    let x0 = _mm256_loadu_ps(pq[j].add(i));
                    let x1 = _mm256_loadu_ps(pq[j].add(i + 8));
                    if l2 {
                        let d0 = _mm256_sub_ps(x0, r0);
                        let d1 = _mm256_sub_ps(x1, r1);
                        lo[j] = _mm256_fmadd_ps(d0, d0, lo[j]);
                        hi[j] = _mm256_fmadd_ps(d1, d1, hi[j]);
                    } else {
                        lo[j] = _mm256_fmadd_ps(x0, r0, lo[j]);
                        hi[j] = _mm256_fmadd_ps(x1, r1, hi[j]);
                    }
                }
            }
            i += 16;
        }
        if i + 8 <= n {
            unsafe {
                let r0 = _mm256_loadu_ps(pr.add(i));
                for j in 0..4 {
                    let x0 = _mm256_loadu_ps(pq[j].add(i));
                    if l2 {
                        let d0 = _mm256_sub_ps(x0, r0);
                        lo[j] = _mm256_fmadd_ps(d0, d0, lo[j]);
                    } else {
                        lo[j] = _mm256_fmadd_ps(x0, r0, lo[j]);
                    }
                }
            }
            i += 8;
        }
        let mut out = [0.0f32; 4];
        for j in 0..4 {
            let mut s = hsum(_mm256_add_ps(lo[j], hi[j]));
            for k in i..n {
                let (x, y) = (q[j][k], row[k]);
                s += if l2 { (x - y) * (x - y) } else { x * y };
            }
            out[j] = if l2 { s } else { -s };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::generate;

    /// Straightforward reference: score everything, sort by (distance, index), computed in f64.
    fn brute_force(
        base: &Vecs<f32>,
        queries: &Vecs<f32>,
        metric: Metric,
        k: usize,
    ) -> Vec<Vec<u32>> {
        let prep = |v: &[f32]| -> Vec<f64> {
            let x: Vec<f64> = v.iter().map(|&a| f64::from(a)).collect();
            if metric == Metric::Cosine {
                let n = x.iter().map(|a| a * a).sum::<f64>().sqrt();
                x.iter().map(|a| a / n).collect()
            } else {
                x
            }
        };
        queries
            .rows()
            .map(|q| {
                let q = prep(q);
                let mut scored: Vec<(f64, u32)> = base
                    .rows()
                    .enumerate()
                    .map(|(i, b)| {
                        let b = prep(b);
                        let d = match metric {
                            Metric::L2 => q.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum(),
                            _ => -q.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>(),
                        };
                        (d, i as u32)
                    })
                    .collect();
                scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                scored.into_iter().take(k).map(|(_, i)| i).collect()
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_a_tiny_set() {
        // Dimension 12 = 8 + 4 and 45 = 2 * 16 + 8 + 5 reach every branch of the SIMD kernel.
        for dim in [12, 45] {
            let d = generate(700, 37, dim, 6, 5);
            for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
                let want = brute_force(&d.base, &d.queries, metric, 20);
                // Odd block sizes so that query blocks and base tiles have ragged ends.
                for (threads, qb, tile) in [(1, 16, 64), (2, 5, 97), (3, 1, 700), (0, 37, 1)] {
                    let got =
                        ground_truth_blocked(&d.base, &d.queries, metric, 20, threads, qb, tile);
                    assert_eq!((got.dim, got.len()), (20, 37));
                    for (qi, w) in want.iter().enumerate() {
                        let g: Vec<u32> = got.row(qi).iter().map(|&x| x as u32).collect();
                        assert_eq!(&g, w, "{metric:?} dim {dim} query {qi} threads {threads}");
                    }
                }
            }
        }
    }

    #[test]
    fn portable_and_dispatched_scoring_agree() {
        let d = generate(300, 11, 45, 4, 8);
        for metric in [Metric::L2, Metric::Dot] {
            let mut a: Vec<TopK> = (0..11).map(|_| TopK::new(30)).collect();
            let mut b = a.clone();
            score_tile(metric, &d.queries.data, &d.base.data, 45, 0, &mut a);
            score_tile_portable(metric, &d.queries.data, &d.base.data, 45, 0, &mut b);
            for (x, y) in a.into_iter().zip(b) {
                assert_eq!(x.into_sorted_rows(), y.into_sorted_rows(), "{metric:?}");
            }
        }
    }

    #[test]
    fn k_is_capped_by_base_size_and_ties_go_to_smaller_rows() {
        let base = Vecs::new(1, vec![1.0, 0.0, 1.0, 0.0]).unwrap();
        let queries = Vecs::new(1, vec![0.0]).unwrap();
        let gt = ground_truth(&base, &queries, Metric::L2, 100, 2);
        assert_eq!(gt.data, vec![1, 3, 0, 2]);
    }
}
