//! `quant`: scalar-quantized (SQ8) exact scan against the `f32` scan on a real dataset —
//! recall@k of the codes alone and after rescoring an oversampled candidate list with the
//! originals, single-thread QPS, and the bytes each keeps resident. The first measurements of
//! the quantization work (issue 21); the HNSW walk on codes builds on the same estimators.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use clap::Args;
use hybridb::index::quant::Sq8;
use serde::Serialize;

use crate::metric::{Metric, normalise_rows};
use crate::recall::recall_at_k;
use crate::report::{emit, round};
use crate::topk::TopK;
use crate::vecs::{read_ivecs, read_vectors};

/// Arguments of `quant`.
#[derive(Args, Debug)]
pub struct QuantArgs {
    /// Base vectors (.fvecs or .bvecs).
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors.
    #[arg(long)]
    pub queries: PathBuf,
    /// Ground truth (.ivecs, nearest first).
    #[arg(long)]
    pub gt: PathBuf,
    /// Metric the ground truth was computed with.
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Queries to run (at most the file's).
    #[arg(long, default_value_t = 200)]
    pub max_queries: usize,
    /// Quantile clipped at each end of every dimension when training.
    #[arg(long, default_value_t = 0.001)]
    pub clip: f32,
    /// Oversampling factors for rescoring (comma-separated; 0 = codes alone).
    #[arg(long, value_delimiter = ',', default_values_t = vec![0, 1, 2, 4])]
    pub oversampling: Vec<usize>,
}

/// One result line of `quant`.
#[derive(Debug, Serialize)]
struct QuantRecord {
    bench: &'static str,
    quantization: &'static str,
    n: usize,
    dim: usize,
    metric: &'static str,
    k: usize,
    /// 0: ranked by the codes alone; else candidates = k * oversampling, rescored in f32.
    oversampling: usize,
    recall: f64,
    qps: f64,
    /// Resident bytes of what the scan reads: codes (+ norms) for sq8, the vectors for f32.
    index_bytes: usize,
}

/// Runs the benchmark and prints one JSON line per oversampling factor, then the f32 scan's.
pub fn run_quant(a: &QuantArgs) -> Result<()> {
    let mut base = read_vectors(&a.base)?;
    let mut queries = read_vectors(&a.queries)?;
    if a.metric.needs_normalising() {
        normalise_rows(&mut base.data, base.dim);
        normalise_rows(&mut queries.data, queries.dim);
    }
    let gt = read_ivecs(&a.gt)?;
    ensure!(
        base.dim == queries.dim,
        "base and queries differ in dimension"
    );
    ensure!(a.k > 0 && a.k <= gt.dim, "k must be in 1..={}", gt.dim);
    let dim = base.dim;
    let nq = a.max_queries.min(queries.len()).min(gt.len());
    let rows: Vec<&[f32]> = base.rows().collect();
    let sample: Vec<&[f32]> = rows
        .iter()
        .step_by((rows.len() / 20_000).max(1))
        .copied()
        .collect();
    let t = Instant::now();
    let sq = Sq8::train(&sample, dim, a.clip).ok_or_else(|| anyhow::anyhow!("empty sample"))?;
    let mut codes = vec![0u8; base.len() * dim];
    let norms: Vec<f32> = rows
        .iter()
        .zip(codes.chunks_mut(dim))
        .map(|(r, c)| sq.encode(r, c))
        .collect();
    eprintln!(
        "quant: trained and encoded {} x {dim} in {:.2} s",
        base.len(),
        t.elapsed().as_secs_f64()
    );
    let exact = |q: &[f32], r: &[f32]| a.metric.distance(q, r);
    for &over in &a.oversampling {
        let want = if over == 0 { a.k } else { a.k * over };
        let t = Instant::now();
        let mut results = Vec::with_capacity(nq);
        for qi in 0..nq {
            let q = queries.row(qi);
            let pq = sq.prepare(q);
            let mut top = TopK::new(want);
            for (row, c) in codes.chunks(dim).enumerate() {
                let d = match a.metric {
                    Metric::L2 => sq.l2_squared(&pq, c, norms[row]),
                    _ => -sq.dot(&pq, c),
                };
                top.push(d, row as u32);
            }
            let mut cands = top.into_sorted_rows();
            if over > 0 {
                let mut rescored: Vec<(f32, u32)> = cands
                    .iter()
                    .map(|&r| (exact(q, rows[r as usize]), r))
                    .collect();
                rescored.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                cands = rescored.into_iter().take(a.k).map(|p| p.1).collect();
            }
            cands.truncate(a.k);
            results.push(cands.into_iter().map(|r| r as usize).collect::<Vec<_>>());
        }
        let qps = nq as f64 / t.elapsed().as_secs_f64();
        emit(&QuantRecord {
            bench: "quant",
            quantization: "sq8",
            n: base.len(),
            dim,
            metric: a.metric.report_name(),
            k: a.k,
            oversampling: over,
            recall: round(recall_at_k(&results, &gt, a.k), 4),
            qps: round(qps, 1),
            index_bytes: codes.len() + norms.len() * 4 + sq.memory_bytes(),
        })?;
    }
    let t = Instant::now();
    let mut results = Vec::with_capacity(nq);
    for qi in 0..nq {
        let q = queries.row(qi);
        let mut top = TopK::new(a.k);
        for (row, r) in rows.iter().enumerate() {
            top.push(exact(q, r), row as u32);
        }
        results.push(
            top.into_sorted_rows()
                .into_iter()
                .map(|r| r as usize)
                .collect::<Vec<_>>(),
        );
    }
    emit(&QuantRecord {
        bench: "quant",
        quantization: "none",
        n: base.len(),
        dim,
        metric: a.metric.report_name(),
        k: a.k,
        oversampling: 0,
        recall: round(recall_at_k(&results, &gt, a.k), 4),
        qps: round(nq as f64 / t.elapsed().as_secs_f64(), 1),
        index_bytes: base.data.len() * 4,
    })
}
