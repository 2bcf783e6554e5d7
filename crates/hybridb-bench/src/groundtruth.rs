//! Exact k-nearest-neighbour ground truth, computed on all cores.
//!
//! Queries are split into small blocks handed out through an atomic counter to one worker per
//! core (`std::thread::scope`). Each worker walks the base in tiles sized to stay in the L2 cache
//! and scores every query of its block against the tile, so each base tile is read from memory
//! once per query block rather than once per query. Rows are visited in increasing order, so ties
//! go to the smaller row index and the result does not depend on the thread count.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::metric::{Metric, normalise_rows};
use crate::topk::TopK;
use crate::vecs::Vecs;

/// Queries scored together against one base tile.
const QUERY_BLOCK: usize = 16;
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
            for (t, tile) in base.chunks(tile_rows * dim).enumerate() {
                let first = t * tile_rows;
                for (top, qi) in tops.iter_mut().zip(qs.clone()) {
                    let q = &queries[qi * dim..(qi + 1) * dim];
                    for (j, row) in tile.chunks_exact(dim).enumerate() {
                        top.push(metric.distance(q, row), (first + j) as u32);
                    }
                }
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
        let d = generate(700, 37, 12, 6, 5);
        for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
            let want = brute_force(&d.base, &d.queries, metric, 20);
            // Odd block sizes so that query blocks and base tiles have ragged ends.
            for (threads, qb, tile) in [(1, 16, 64), (2, 5, 97), (3, 1, 700), (0, 37, 1)] {
                let got = ground_truth_blocked(&d.base, &d.queries, metric, 20, threads, qb, tile);
                assert_eq!((got.dim, got.len()), (20, 37));
                for (qi, w) in want.iter().enumerate() {
                    let g: Vec<u32> = got.row(qi).iter().map(|&x| x as u32).collect();
                    assert_eq!(&g, w, "{metric:?} query {qi} threads {threads}");
                }
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
