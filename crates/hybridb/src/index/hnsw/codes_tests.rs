//! Tests of the quantized walk: recall against brute force, exact returned distances, codes
//! for later inserts, and checkpoints that keep the trained state.

use super::codes::Exact;
use super::*;
use crate::model::config::Quantization;

const DIM: usize = 64;

/// `n` vectors around 16 centers (a clustered set, like real embeddings), from `seed`.
fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 20_000) as f32 / 10_000.0 - 1.0
    };
    let centers: Vec<Vec<f32>> = (0..16)
        .map(|_| (0..DIM).map(|_| next()).collect())
        .collect();
    (0..n)
        .map(|i| centers[i % 16].iter().map(|c| c + next()).collect())
        .collect()
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn build(data: &[Vec<f32>], metric: Metric) -> Hnsw {
    let mut index = Hnsw::new(HnswParams::new(DIM, metric));
    index.reserve(data.len() * 2);
    let items: Vec<(u32, &[f32])> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32, v.as_slice()))
        .collect();
    index.insert_batch_parallel(&items, 2).unwrap();
    index
}

/// Mean recall@10 of `search` against brute force over the live vectors of `index`.
fn recall(
    index: &Hnsw,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    search: impl Fn(&[f32]) -> Vec<(u32, f32)>,
) -> f64 {
    let mut hit = 0;
    for q in queries {
        let mut all: Vec<(u32, f32)> = (0..data.len() as u32)
            .map(|s| (s, index.distance(q, &data[s as usize])))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1));
        let truth: Vec<u32> = all[..10].iter().map(|p| p.0).collect();
        let found = search(q);
        for (s, d) in &found {
            // Every returned distance is the exact f32 one.
            let exact = index.distance(q, &data[*s as usize]);
            assert!(
                (d - exact).abs() <= 1e-4 * exact.abs().max(1.0),
                "{d} vs {exact}"
            );
        }
        hit += found.iter().filter(|(s, _)| truth.contains(s)).count();
    }
    hit as f64 / (10 * queries.len()) as f64
}

fn train(index: &Hnsw, kind: Quantization) -> Quantizer {
    let sample = index.sample(1000);
    let rows: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
    let p = index.params();
    Quantizer::train(kind, &rows, DIM, p.metric, 7).unwrap()
}

#[test]
fn quantized_walks_and_scans_keep_recall_with_exact_distances() {
    for metric in [Metric::L2, Metric::Dot] {
        let prep = |v: Vec<f32>| if metric == Metric::Dot { unit(v) } else { v };
        let data: Vec<Vec<f32>> = clustered(3000, 1).into_iter().map(prep).collect();
        let queries: Vec<Vec<f32>> = clustered(60, 2).into_iter().map(prep).collect();
        let index = build(&data, metric);
        let base = recall(&index, &data, &queries, |q| index.search(q, 10, 64));
        assert!(base > 0.9, "{metric:?}: f32 recall {base}");
        for kind in [
            Quantization::Sq8,
            Quantization::Rq1,
            Quantization::Rq2,
            Quantization::Rq4,
        ] {
            index.quantize(train(&index, kind), 1000, 2).unwrap();
            assert_eq!(index.quantizer().map(|q| q.kind()), Some(kind));
            let walk = |q: &[f32]| index.search_oversampled(q, 10, 64, 8.0, None, 1.0);
            let r = recall(&index, &data, &queries, walk);
            // One bit at 64 dimensions errs too much for a tight bound (`quantization.md`: rq1
            // wants >= 384); the others stay within 0.05 of the f32 walk at 8x.
            let (walk_min, scan_min) = if kind == Quantization::Rq1 {
                (0.6, 0.6)
            } else {
                (base - 0.05, 0.95)
            };
            assert!(
                r >= walk_min,
                "{metric:?} {kind:?}: walk recall {r}, f32 {base}"
            );
            let odd = |s: u32| s % 2 == 1;
            let filtered = |q: &[f32]| index.search_oversampled(q, 10, 64, 4.0, Some(&odd), 0.5);
            for q in &queries[..5] {
                assert!(filtered(q).iter().all(|(s, _)| odd(*s)));
            }
            // A small subset is scanned exactly (f32), whatever the code.
            let few: Vec<u32> = (0..data.len() as u32).step_by(97).collect();
            for q in &queries[..5] {
                let mut want: Vec<(u32, f32)> = few
                    .iter()
                    .map(|&s| (s, index.distance(q, &data[s as usize])))
                    .collect();
                want.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                want.truncate(10);
                assert_eq!(index.scan_top(q, few.iter().copied(), 10, 2.0), want);
            }
            // A scan of every slot, rescoring 8x the candidates.
            let scan = |q: &[f32]| index.scan_top(q, 0..data.len() as u32, 10, 8.0);
            let r = recall(&index, &data, &queries, scan);
            assert!(r >= scan_min, "{metric:?} {kind:?}: scan recall {r}");
        }
    }
}

#[test]
fn inserts_after_quantizing_get_codes_and_are_found() {
    let data = clustered(2000, 3);
    let (first, later) = data.split_at(1000);
    let mut index = build(first, Metric::L2);
    // Samples hold exactly min(n, len) vectors (the training schedule counts on it).
    assert_eq!(index.sample(999).len(), 999);
    assert_eq!(index.sample(400).len(), 400);
    assert_eq!(index.sample(5000).len(), 1000);
    index
        .quantize(train(&index, Quantization::Rq2), 1000, 1)
        .unwrap();
    // Growing moves the code rows with the vectors.
    index.reserve(8000);
    for (i, v) in later.iter().enumerate() {
        index.insert(1000 + i as u32, v).unwrap();
    }
    // Reuse a slot: remove and insert again (the row is rewritten with the vector).
    index.remove(5);
    index.insert(5, &data[5]).unwrap();
    let found = (0..data.len() as u32)
        .filter(|&s| {
            let hits = index.search_oversampled(&data[s as usize], 1, 32, 2.0, None, 1.0);
            hits.first().map(|h| h.0) == Some(s)
        })
        .count();
    assert!(found >= data.len() * 98 / 100, "{found} of {}", data.len());
}

#[test]
fn checkpoints_keep_the_trained_state_and_codes() {
    let data = clustered(1500, 4);
    let queries = clustered(20, 5);
    for kind in [Quantization::Sq8, Quantization::Rq4, Quantization::Rq1] {
        let index = build(&data, Metric::L2);
        index.quantize(train(&index, kind), 1234, 2).unwrap();
        let bytes = index.to_bytes();
        let loaded = Hnsw::from_bytes(&bytes).unwrap();
        assert_eq!(loaded.quantizer(), index.quantizer());
        assert_eq!(loaded.trained_on(), 1234);
        for q in &queries {
            assert_eq!(
                loaded.search_oversampled(q, 10, 40, 2.0, None, 1.0),
                index.search_oversampled(q, 10, 40, 2.0, None, 1.0)
            );
        }
        // A flipped byte in the quantizer section is caught (checksum, then structure).
        let mut bad = bytes.clone();
        bad[60] ^= 0x10;
        assert!(Hnsw::from_bytes(&bad).is_err());
    }
    // An unquantized index still writes and reads (no quantizer section content).
    let plain = build(&data[..200], Metric::L2);
    let v2 = plain.to_bytes();
    let loaded = Hnsw::from_bytes(&v2).unwrap();
    assert!(loaded.quantizer().is_none());
    // A version-1 image (as written before quantization: no quantizer byte after the 49-byte
    // header) still loads, to the same index.
    let mut v1 = [&v2[..49], &v2[50..]].concat();
    assert_eq!(v2[49], 0, "the quantizer kind of an unquantized image");
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    super::persist::reseal(&mut v1);
    let old = Hnsw::from_bytes(&v1).unwrap();
    assert_eq!(old.to_bytes(), v2);
}

#[test]
fn rotated_codes_refuse_l1_and_sq8_takes_it() {
    let data = clustered(300, 6);
    let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
    for kind in [Quantization::Rq1, Quantization::Rq2, Quantization::Rq4] {
        assert!(Quantizer::train(kind, &rows, DIM, Metric::L1, 1).is_err());
    }
    assert!(Quantizer::train(Quantization::None, &rows, DIM, Metric::L2, 1).is_err());
    let index = build(&data, Metric::L1);
    index
        .quantize(train(&index, Quantization::Sq8), 300, 1)
        .unwrap();
    let r = recall(&index, &data, &data[..20], |q| {
        index.search_oversampled(q, 10, 64, 4.0, None, 1.0)
    });
    assert!(r > 0.9, "sq8 under L1: recall {r}");
}

#[test]
fn a_walk_returns_its_beam_then_the_best_it_let_go() {
    let data = clustered(2000, 5);
    let queries = clustered(30, 6);
    let index = build(&data, Metric::L2);
    let odd = |s: u32| s % 2 == 1;
    let every = |_: u32| true;
    let filters: [(&str, &dyn Fn(u32) -> bool); 2] = [("every", &every), ("odd", &odd)];
    let _gate = index.gate_shared();
    let mut spilled = 0;
    for q in &queries {
        let exact = Exact { h: &index, q };
        for pool in [true, false] {
            for (name, allowed) in filters {
                let beam = index.walk(&exact, 10, 10, allowed, pool);
                let wide = index.walk(&exact, 40, 10, allowed, pool);
                // The same beam: the spill changes what is returned, not how the walk goes.
                assert_eq!(&wide[..beam.len()], &beam[..], "{name} pool {pool}");
                assert_eq!(wide.len(), 40, "{name} pool {pool}: the walk scored more");
                assert!(wide.windows(2).all(|w| w[0].1 <= w[1].1), "sorted");
                let mut ids: Vec<u32> = wide.iter().map(|p| p.0).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), wide.len(), "no slot twice");
                assert!(
                    wide.iter().all(|&(s, _)| allowed(s)),
                    "{name}: only allowed"
                );
                for &(s, d) in &wide {
                    assert_eq!(d, index.distance(q, &data[s as usize]));
                }
                spilled += wide.len() - beam.len();
            }
        }
    }
    assert!(spilled > 0);
    drop(_gate);

    // On codes, more candidates rescored from the same beam find at least as many of the
    // true neighbours (over the queries).
    index
        .quantize(train(&index, Quantization::Rq1), 1000, 2)
        .unwrap();
    let index = &index;
    let os = |o: f32| move |q: &[f32]| index.search_oversampled(q, 10, 10, o, None, 1.0);
    let one = recall(index, &data, &queries, os(1.0));
    let four = recall(index, &data, &queries, os(4.0));
    assert!(
        four > one,
        "rescoring 40 of a beam of 10: {four} vs 10: {one}"
    );
}

/// `clustered`, with the 16 centers spread 6x wider: far-apart clusters, where rotated codes
/// train per-cluster centers.
fn far_apart(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let near = clustered(n, seed);
    let centers = clustered(16, seed ^ 0xFA);
    near.into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.iter()
                .zip(&centers[i % 16])
                .map(|(x, c)| x + 5.0 * c)
                .collect()
        })
        .collect()
}

#[test]
fn far_apart_clusters_get_centers_that_walk_scan_and_checkpoint() {
    for metric in [Metric::L2, Metric::Dot] {
        let prep = |v: Vec<f32>| if metric == Metric::Dot { unit(v) } else { v };
        let data: Vec<Vec<f32>> = far_apart(3000, 1).into_iter().map(prep).collect();
        let queries: Vec<Vec<f32>> = far_apart(40, 2).into_iter().map(prep).collect();
        let index = build(&data, metric);
        let base = recall(&index, &data, &queries, |q| index.search(q, 10, 64));
        for kind in [Quantization::Rq1, Quantization::Rq2, Quantization::Rq4] {
            let quantizer = train(&index, kind);
            assert!(
                matches!(&quantizer, Quantizer::RqCenters(r) if r.count() > 1),
                "{metric:?} {kind:?}: no centers"
            );
            assert_eq!(quantizer.kind(), kind);
            index.quantize(quantizer, 1000, 2).unwrap();
            // One bit at 64 dimensions errs too much for a tight bound, as with one center.
            let (walk_min, scan_min) = if kind == Quantization::Rq1 {
                (0.6, 0.6)
            } else {
                (base - 0.05, 0.95)
            };
            let walk = |q: &[f32]| index.search_oversampled(q, 10, 64, 4.0, None, 1.0);
            let r = recall(&index, &data, &queries, walk);
            assert!(r >= walk_min, "{metric:?} {kind:?}: walk {r}, f32 {base}");
            let scan = |q: &[f32]| index.scan_top(q, 0..data.len() as u32, 10, 4.0);
            let r = recall(&index, &data, &queries, scan);
            assert!(r >= scan_min, "{metric:?} {kind:?}: scan recall {r}");
            // Written as version 3, read back to the same quantizer, codes and results.
            let bytes = index.to_bytes();
            assert_eq!(bytes[8..12], 3u32.to_le_bytes());
            let loaded = Hnsw::from_bytes(&bytes).unwrap();
            assert_eq!(loaded.quantizer(), index.quantizer());
            for q in &queries[..10] {
                assert_eq!(
                    walk(q),
                    loaded.search_oversampled(q, 10, 64, 4.0, None, 1.0)
                );
            }
            // A flipped byte among the centers is caught; so is a version-2 image claiming
            // centers (kind 3 exists from version 3 on).
            let mut bad = bytes.clone();
            bad[400] ^= 0x10;
            assert!(Hnsw::from_bytes(&bad).is_err());
            let mut old = bytes.clone();
            old[8..12].copy_from_slice(&2u32.to_le_bytes());
            super::persist::reseal(&mut old);
            assert!(Hnsw::from_bytes(&old).is_err());
        }
    }
}

#[test]
fn one_center_codes_keep_the_version_2_image() {
    let data = far_apart(1200, 3);
    let index = build(&data, Metric::L2);
    let sample = index.sample(1000);
    let rows: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
    let rq =
        crate::index::quant::Rq::train(&rows, DIM, crate::index::quant::RqBits::Two, 7).unwrap();
    index.quantize(Quantizer::Rq(rq), 1000, 2).unwrap();
    let bytes = index.to_bytes();
    assert_eq!(bytes[8..12], 2u32.to_le_bytes());
    assert_eq!(bytes[49], 2, "quantizer kind: rotated, one center");
    let loaded = Hnsw::from_bytes(&bytes).unwrap();
    assert_eq!(loaded.quantizer(), index.quantizer());
    assert_eq!(loaded.to_bytes(), bytes);
}

/// Graph images of one-center rotated codes written before per-cluster centers existed
/// (version 2), by the code of main at 5619cfc: an index of `clustered(150, 9)` (unit vectors
/// for dot) inserted one by one, quantized with `train`. They load, walk with exact distances
/// and good recall, and write back byte for byte.
#[test]
fn version_2_rotated_images_from_before_centers_still_load() {
    let fixtures: [(&[u8], Metric, Quantization); 2] = [
        (
            include_bytes!("../../../tests/fixtures/hnsw-v2-rq2-l2.bin"),
            Metric::L2,
            Quantization::Rq2,
        ),
        (
            include_bytes!("../../../tests/fixtures/hnsw-v2-rq4-dot.bin"),
            Metric::Dot,
            Quantization::Rq4,
        ),
    ];
    for (bytes, metric, kind) in fixtures {
        assert_eq!(bytes[8..12], 2u32.to_le_bytes());
        let index = Hnsw::from_bytes(bytes).unwrap();
        let quantizer = index.quantizer().unwrap();
        assert!(matches!(quantizer, Quantizer::Rq(_)), "{kind:?}");
        assert_eq!(quantizer.kind(), kind);
        assert_eq!(index.trained_on(), 150);
        assert_eq!(index.to_bytes(), bytes);
        let prep = |v: Vec<f32>| if metric == Metric::Dot { unit(v) } else { v };
        let data: Vec<Vec<f32>> = clustered(150, 9).into_iter().map(prep).collect();
        let queries: Vec<Vec<f32>> = clustered(20, 10).into_iter().map(prep).collect();
        let walk = |q: &[f32]| index.search_oversampled(q, 10, 40, 4.0, None, 1.0);
        let r = recall(&index, &data, &queries, walk);
        assert!(r >= 0.9, "{kind:?}: recall {r}");
    }
}

/// The new node's layer-0 list right after its insert (no later insert has touched it): the
/// neighbours and their exact distances to `v`.
fn fresh_links(index: &Hnsw, slot: u32, v: &[f32]) -> Vec<(u32, f32)> {
    super::search::list_ids(index.block0(slot))
        .iter()
        .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
        .map(|id| (id, index.distance(v, index.vector(id))))
        .collect()
}

#[test]
fn inserts_on_codes_choose_their_links_by_exact_distances() {
    // 2-bit codes at 64 dimensions: estimates coarse enough that a list chosen by them would
    // be out of exact order (invariant 1 of `codes.rs`).
    let data = clustered(1600, 11);
    let (first, later) = data.split_at(1000);
    for kind in [Quantization::Rq2, Quantization::Rq4, Quantization::Sq8] {
        let mut index = build(first, Metric::L2);
        index.quantize(train(&index, kind), 1000, 2).unwrap();
        index.reserve(data.len());
        for (i, v) in later.iter().enumerate() {
            let slot = (first.len() + i) as u32;
            index.insert(slot, v).unwrap();
            let links = fresh_links(&index, slot, v);
            assert!(!links.is_empty(), "{kind:?}: slot {slot} is linked");
            // Nearest first by exact distance, as the heuristic scans them.
            assert!(
                links.windows(2).all(|w| w[0].1 <= w[1].1),
                "{kind:?}: slot {slot}'s links are not in exact order: {links:?}"
            );
            // The heuristic on exact distances: a kept neighbour is closer to the new node
            // than to every neighbour kept before it (the list had more candidates than m).
            if links.len() == index.params().m {
                for (j, &(b, d)) in links.iter().enumerate() {
                    for &(a, _) in &links[..j] {
                        let between = index.distance(index.vector(a), index.vector(b));
                        assert!(
                            between >= d,
                            "{kind:?}: slot {slot} keeps {b} ({d}) though {a} is nearer to it \
                             ({between})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_graph_built_on_codes_keeps_the_recall_of_an_exact_build() {
    // The same vectors inserted one by one (deterministic) after the same first 500: into an
    // index quantized from then on (its inserts search on the codes) and into one left `f32`
    // (quantized only at the end, with the same quantizer). Both graphs are then walked in
    // `f32` and on the codes.
    let cases = [
        (Metric::L2, Quantization::Rq2),
        (Metric::L2, Quantization::Rq4),
        (Metric::L2, Quantization::Sq8),
        (Metric::Dot, Quantization::Rq4),
    ];
    for (metric, kind) in cases {
        let prep = |v: Vec<f32>| if metric == Metric::Dot { unit(v) } else { v };
        let data: Vec<Vec<f32>> = clustered(2500, 12).into_iter().map(prep).collect();
        let queries: Vec<Vec<f32>> = clustered(150, 13).into_iter().map(prep).collect();
        {
            let grow = |on_codes: bool| {
                let mut index = Hnsw::new(HnswParams::new(DIM, metric));
                index.reserve(data.len());
                for (i, v) in data[..500].iter().enumerate() {
                    index.insert(i as u32, v).unwrap();
                }
                let quantizer = train(&index, kind);
                if on_codes {
                    index.quantize(quantizer.clone(), 500, 1).unwrap();
                }
                for (i, v) in data.iter().enumerate().skip(500) {
                    index.insert(i as u32, v).unwrap();
                }
                if !on_codes {
                    index.quantize(quantizer, 500, 1).unwrap();
                }
                index
            };
            // Recall@10 at ef 16 and 48: on the codes (2x), then in `f32`.
            let walks = |h: &Hnsw| {
                let mut r: Vec<f64> = [16, 48]
                    .iter()
                    .map(|&ef| {
                        recall(h, &data, &queries, |q| {
                            h.search_oversampled(q, 10, ef, 2.0, None, 1.0)
                        })
                    })
                    .collect();
                h.unquantize();
                r.extend([16, 48].map(|ef| recall(h, &data, &queries, |q| h.search(q, 10, ef))));
                r
            };
            let (want, got) = (walks(&grow(false)), walks(&grow(true)));
            for (w, g) in want.iter().zip(&got) {
                assert!(
                    *g >= w - 0.02,
                    "{metric:?} {kind:?}: built on codes {got:?}, exact {want:?}"
                );
            }
        }
    }
}
