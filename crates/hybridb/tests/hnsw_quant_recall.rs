//! Recall of the HNSW walk on quantized codes on real data (issue 21): SIFT (bigann10k, 128-d,
//! L2) and MiniLM text embeddings (pydoc, 384-d, cosine), with each code. One graph per data
//! set (its quality does not depend on the code), quantized in turn with every code.
//!
//! Checked: rescoring an oversampled list brings every code to recall@10 >= 0.95 (rq1, whose
//! error falls as `1/√d`, at 8x; the others at 4x); codes alone (oversampling 1) rank as
//! their bits say (rq4 >= rq2 >= rq1); and every returned distance is the exact `f32` one.

mod hnsw_common;

use hnsw_common::*;
use hybridb::Quantization;
use hybridb::index::hnsw::{Hnsw, HnswParams, Metric, Quantizer};

const K: usize = 10;
const EF: usize = 64;

/// Rows of an `.fvecs` file.
fn fvecs(path: &std::path::Path) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let d = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let row = bytes[at + 4..at + 4 + 4 * d]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        rows.push(row);
        at += 4 + 4 * d;
    }
    rows
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / n).collect()
}

/// The graph, at half the default `ef_construction` (an unoptimised test build is slow; the
/// f32 walk's recall is checked below, and the codes are compared on the same graph).
fn build(base: &[Vec<f32>], metric: Metric) -> Hnsw {
    let mut index = Hnsw::new(HnswParams {
        seed: 7,
        ef_construction: 100,
        ..HnswParams::new(base[0].len(), metric)
    });
    index.reserve(base.len());
    let items: Vec<(u32, &[f32])> = base
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32, v.as_slice()))
        .collect();
    index.insert_batch_parallel(&items, 2).expect("build");
    index
}

/// Exact top-k by the index's own distance.
fn truth(index: &Hnsw, base: &[Vec<f32>], queries: &[Vec<f32>]) -> Vec<Vec<u32>> {
    queries
        .iter()
        .map(|q| {
            let mut all: Vec<(f32, u32)> = base
                .iter()
                .enumerate()
                .map(|(i, v)| (index.distance(q, v), i as u32))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all.into_iter().take(K).map(|p| p.1).collect()
        })
        .collect()
}

/// Recall@10 of the walk at `oversampling`, checking each returned distance against `f32`.
fn walk_recall(
    index: &Hnsw,
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    truth: &[Vec<u32>],
    oversampling: f32,
) -> f64 {
    let found: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| {
            let hits = index.search_oversampled(q, K, EF, oversampling, None, 1.0);
            for &(s, d) in &hits {
                let exact = index.distance(q, &base[s as usize]);
                assert!(
                    (d - exact).abs() <= 1e-4 * exact.abs().max(1.0),
                    "slot {s}: {d} returned, {exact} exact"
                );
            }
            hits.into_iter().map(|(s, _)| s).collect()
        })
        .collect();
    recall(&found, truth, K)
}

/// Quantizes `index` with every code in turn and checks the recalls.
fn check_codes(name: &str, index: &Hnsw, base: &[Vec<f32>], queries: &[Vec<f32>]) {
    let truth = truth(index, base, queries);
    let plain = walk_recall(index, base, queries, &truth, 1.0);
    eprintln!("{name} f32: recall@10 {plain:.3}");
    assert!(plain >= 0.95, "{name}: f32 recall {plain}");
    let sample = index.sample(4096);
    let rows: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
    let p = index.params();
    let mut alone = Vec::new();
    for (kind, oversampling) in [
        (Quantization::Sq8, 4.0),
        (Quantization::Rq1, 8.0),
        (Quantization::Rq2, 4.0),
        (Quantization::Rq4, 4.0),
    ] {
        let q = Quantizer::train(kind, &rows, p.dim, p.metric, 11).expect("train");
        index.quantize(q, rows.len() as u64, 2).expect("quantize");
        let codes = walk_recall(index, base, queries, &truth, 1.0);
        let rescored = walk_recall(index, base, queries, &truth, oversampling);
        eprintln!("{name} {kind:?}: codes alone {codes:.3}, {oversampling}x {rescored:.3}");
        assert!(
            rescored >= 0.95,
            "{name} {kind:?}: recall {rescored} at {oversampling}x (codes alone {codes})"
        );
        alone.push((kind, codes));
    }
    let of = |k| {
        alone
            .iter()
            .find(|p| p.0 == k)
            .map(|p| p.1)
            .expect("measured")
    };
    assert!(
        of(Quantization::Rq4) >= of(Quantization::Rq2)
            && of(Quantization::Rq2) >= of(Quantization::Rq1),
        "{name}: more bits, worse codes: {alone:?}"
    );
}

#[test]
fn bigann10k_recall_with_each_code() {
    let (base, queries, _) = bigann();
    let index = build(&base, Metric::L2);
    check_codes("bigann10k", &index, &base, &queries[..100]);
}

#[test]
fn pydoc_recall_with_each_code() {
    // The first 5,000 paragraphs and 100 queries: enough for the codes' statistics, small
    // enough for an unoptimised test build.
    let dir = data_dir("pydoc");
    let base: Vec<Vec<f32>> = fvecs(&dir.join("base.fvecs"))[..5000]
        .iter()
        .map(|v| unit(v))
        .collect();
    let queries: Vec<Vec<f32>> = fvecs(&dir.join("queries.fvecs"))[..100]
        .iter()
        .map(|v| unit(v))
        .collect();
    let index = build(&base, Metric::Dot);
    check_codes("pydoc", &index, &base, &queries);
}
