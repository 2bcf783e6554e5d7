//! `quant`: exact scans over quantized codes against the `f32` scan on a real dataset — SQ8
//! (`index::quant::Sq8`) and the rotated 1-, 2- and 4-bit codes (`index::quant::Rq`). Per code:
//! recall@k of the codes alone and after rescoring `k x oversampling` candidates with the
//! `f32` originals, single-thread QPS (each query's fastest of `--repeats` runs, query
//! preparation and rescoring included) and its ratio to the `f32` scan's, and the bytes each vector keeps
//! resident. One JSON line per (code, oversampling), then a Markdown table on stderr. The
//! first measurements of the quantization work (issue 21); the HNSW walk on codes builds on the
//! same estimators.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, anyhow, ensure};
use clap::{Args, ValueEnum};
use hybridb::index::quant::{
    CENTERS_BELOW, MAX_CENTERS, Rq, RqBits, RqCenterFactors, RqCenters, RqFactors, RqMetric,
    SAMPLE_PER_CENTER, Sq8,
};
use serde::Serialize;

use crate::commands::dataset_name;
use crate::metric::{Metric, normalise_rows};
use crate::recall::recall_at_k;
use crate::report::{emit, round};
use crate::topk::TopK;
use crate::vecs::{read_ivecs, read_vectors};

/// A code `quant` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Code {
    /// 8 bits per dimension on a trained per-dimension grid.
    Sq8,
    /// Rotated, 1 bit per dimension.
    Rq1,
    /// Rotated, 2 bits per dimension.
    Rq2,
    /// Rotated, 4 bits per dimension.
    Rq4,
}

impl Code {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Code::Sq8 => "sq8",
            Code::Rq1 => "rq1",
            Code::Rq2 => "rq2",
            Code::Rq4 => "rq4",
        }
    }
}

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
    /// Codes to measure (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = vec![Code::Sq8, Code::Rq1, Code::Rq2, Code::Rq4])]
    pub code: Vec<Code>,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Queries to run (at most the file's).
    #[arg(long, default_value_t = 200)]
    pub max_queries: usize,
    /// SQ8: quantile clipped at each end of every dimension when training.
    #[arg(long, default_value_t = 0.001)]
    pub clip: f32,
    /// Rotated codes: seed of the rotation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Oversampling factors for rescoring (comma-separated; 0 = codes alone).
    #[arg(long, value_delimiter = ',', default_values_t = vec![0, 1, 2, 4])]
    pub oversampling: Vec<usize>,
    /// Timed runs of each query per measurement; QPS counts each query's fastest.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Rotated codes: per-cluster centers. Left out: the engine's rule (up to 64 by k-means,
    /// kept when they shrink the sample's mean `|x - c|²` below half); 1: one center (the
    /// mean); more: that many, always kept.
    #[arg(long)]
    pub centers: Option<usize>,
    /// Training sample: about this many base vectors, evenly spaced (the HNSW index trains
    /// at 1,024, 4,096, 16,384 and 32,768).
    #[arg(long, default_value_t = 20_000)]
    pub sample: usize,
}

/// One result line of `quant`.
#[derive(Debug, Serialize)]
struct QuantRecord {
    bench: &'static str,
    quantization: &'static str,
    dataset: String,
    n: usize,
    dim: usize,
    metric: &'static str,
    k: usize,
    /// 0: ranked by the codes alone; else candidates = k * oversampling, rescored in f32.
    oversampling: usize,
    recall: f64,
    qps: f64,
    /// `qps` over the f32 scan's.
    qps_ratio: f64,
    /// Resident bytes per vector of what the scan reads: the code and its factors (sq8: the
    /// code's `|x̂|²`; rq: `|x - c|` and the scale, with centers also `e` and the center
    /// id), or the f32 vector.
    bytes_per_vector: usize,
    /// All resident bytes of the scan: codes, factors and the trained state.
    index_bytes: usize,
    /// Training plus encoding every vector, single thread.
    encode_s: f64,
}

/// Every row's code (`bytes` each, one buffer) and what `encode` returns for it.
fn encode_rows<T>(
    rows: &[&[f32]],
    bytes: usize,
    encode: impl Fn(&[f32], &mut [u8]) -> Result<T>,
) -> Result<(Vec<u8>, Vec<T>)> {
    let mut codes = vec![0u8; rows.len() * bytes];
    let out = rows
        .iter()
        .zip(codes.chunks_mut(bytes))
        .map(|(r, c)| encode(r, c))
        .collect::<Result<Vec<T>>>()?;
    Ok((codes, out))
}

/// Codes of the whole base, ready to scan.
enum Coded {
    Sq8 {
        sq: Sq8,
        codes: Vec<u8>,
        norms: Vec<f32>,
    },
    Rq {
        rq: Rq,
        metric: RqMetric,
        codes: Vec<u8>,
        factors: Vec<RqFactors>,
    },
    RqCenters {
        rq: RqCenters,
        codes: Vec<u8>,
        factors: Vec<RqCenterFactors>,
    },
}

impl Coded {
    fn build(code: Code, a: &QuantArgs, rows: &[&[f32]], dim: usize) -> Result<Coded> {
        let sample: Vec<&[f32]> = rows
            .iter()
            .step_by((rows.len() / a.sample.max(1)).max(1))
            .copied()
            .collect();
        let bits = match code {
            Code::Sq8 => {
                let sq = Sq8::train(&sample, dim, a.clip).ok_or_else(|| anyhow!("empty sample"))?;
                let (codes, norms) = encode_rows(rows, dim, |r, c| Ok(sq.encode(r, c)))?;
                return Ok(Coded::Sq8 { sq, codes, norms });
            }
            Code::Rq1 => RqBits::One,
            Code::Rq2 => RqBits::Two,
            Code::Rq4 => RqBits::Four,
        };
        let metric = match a.metric {
            Metric::L2 => RqMetric::L2,
            Metric::Dot | Metric::Cosine => RqMetric::Dot,
        };
        let rq = if a.centers == Some(1) {
            Rq::train(&sample, dim, bits, a.seed)?
        } else {
            let max = a
                .centers
                .unwrap_or((sample.len() / SAMPLE_PER_CENTER).clamp(1, MAX_CENTERS));
            let (rq, spread) = RqCenters::train(&sample, dim, bits, metric, a.seed, max)?;
            eprintln!(
                "quant: {} centers, mean |x - c_j|² / |x - c|² = {:.3}",
                rq.count(),
                spread.ratio()
            );
            if a.centers.is_some() || spread.ratio() < CENTERS_BELOW {
                let (codes, factors) =
                    encode_rows(rows, rq.code_bytes(), |r, c| Ok(rq.encode(r, c)?))?;
                return Ok(Coded::RqCenters { rq, codes, factors });
            }
            // The rule keeps one center: the code trained beside the centers (as the engine).
            rq.rq().clone()
        };
        let (codes, factors) = encode_rows(rows, rq.code_bytes(), |r, c| Ok(rq.encode(r, c)?))?;
        Ok(Coded::Rq {
            rq,
            metric,
            codes,
            factors,
        })
    }

    fn bytes_per_vector(&self) -> usize {
        match self {
            Coded::Sq8 { sq, .. } => sq.dim() + 4,
            Coded::Rq { rq, .. } => rq.code_bytes() + 8,
            Coded::RqCenters { rq, .. } => rq.code_bytes() + 16,
        }
    }

    fn index_bytes(&self, n: usize) -> usize {
        n * self.bytes_per_vector()
            + match self {
                Coded::Sq8 { sq, .. } => sq.memory_bytes(),
                Coded::Rq { rq, .. } => rq.memory_bytes(),
                Coded::RqCenters { rq, .. } => rq.memory_bytes(),
            }
    }

    /// The `want` rows with the smallest estimated distances to `q`, best first.
    fn scan(&self, q: &[f32], metric: Metric, want: usize) -> Result<Vec<u32>> {
        let mut top = TopK::new(want);
        match self {
            Coded::Sq8 { sq, codes, norms } => {
                let pq = sq.prepare(q);
                for (row, c) in codes.chunks_exact(sq.dim()).enumerate() {
                    let d = match metric {
                        Metric::L2 => sq.l2_squared(&pq, c, norms[row]),
                        Metric::Dot | Metric::Cosine => -sq.dot(&pq, c),
                    };
                    top.push(d, row as u32);
                }
            }
            Coded::Rq {
                rq,
                metric,
                codes,
                factors,
            } => {
                let pq = rq.query(q, *metric)?;
                for (row, (c, &f)) in codes.chunks_exact(rq.code_bytes()).zip(factors).enumerate() {
                    top.push(rq.distance(&pq, c, f), row as u32);
                }
            }
            Coded::RqCenters { rq, codes, factors } => {
                let pq = rq.query(q)?;
                for (row, (c, &f)) in codes.chunks_exact(rq.code_bytes()).zip(factors).enumerate() {
                    top.push(rq.distance(&pq, c, f), row as u32);
                }
            }
        }
        Ok(top.into_sorted_rows())
    }
}

/// One row of the summary table: a code's recall and QPS ratio per oversampling factor.
struct Row {
    name: &'static str,
    bytes_per_vector: usize,
    /// (oversampling, recall, qps ratio)
    points: Vec<(usize, f64, f64)>,
}

/// Runs `search` over the `nq` queries `repeats` times: the first pass's results, and QPS as
/// `nq` over the sum of each query's fastest time. (The machine these numbers come from is
/// shared; a query's fastest run is the one least disturbed by other work, so this is steadier
/// than the fastest whole pass.)
fn timed(
    nq: usize,
    repeats: usize,
    mut search: impl FnMut(usize) -> Result<Vec<usize>>,
) -> Result<(Vec<Vec<usize>>, f64)> {
    let mut best = vec![f64::INFINITY; nq];
    let mut results = Vec::with_capacity(nq);
    for pass in 0..repeats.max(1) {
        for (qi, b) in best.iter_mut().enumerate() {
            let t = Instant::now();
            let found = search(qi)?;
            *b = b.min(t.elapsed().as_secs_f64());
            if pass == 0 {
                results.push(found);
            }
        }
    }
    Ok((results, nq as f64 / best.iter().sum::<f64>()))
}

/// Runs the benchmark: the f32 scan's line, then one line per code and oversampling factor,
/// then the summary table on stderr.
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
    let dataset = dataset_name(&a.base);
    let nq = a.max_queries.min(queries.len()).min(gt.len());
    let rows: Vec<&[f32]> = base.rows().collect();
    let exact = |q: &[f32], r: &[f32]| a.metric.distance(q, r);
    let record = |quantization, oversampling, recall, qps, qps_ratio, bpv, index_bytes, enc| {
        emit(&QuantRecord {
            bench: "quant",
            quantization,
            dataset: dataset.clone(),
            n: base.len(),
            dim,
            metric: a.metric.report_name(),
            k: a.k,
            oversampling,
            recall: round(recall, 4),
            qps: round(qps, 1),
            qps_ratio: round(qps_ratio, 2),
            bytes_per_vector: bpv,
            index_bytes,
            encode_s: round(enc, 3),
        })
    };

    let (results, f32_qps) = timed(nq, a.repeats, |qi| {
        let q = queries.row(qi);
        let mut top = TopK::new(a.k);
        for (row, r) in rows.iter().enumerate() {
            top.push(exact(q, r), row as u32);
        }
        Ok(top
            .into_sorted_rows()
            .into_iter()
            .map(|r| r as usize)
            .collect())
    })?;
    let f32_recall = recall_at_k(&results, &gt, a.k);
    record(
        "none",
        0,
        f32_recall,
        f32_qps,
        1.0,
        dim * 4,
        base.data.len() * 4,
        0.0,
    )?;

    let mut table = Vec::new();
    for &code in &a.code {
        let t = Instant::now();
        let coded = Coded::build(code, a, &rows, dim)?;
        let encode_s = t.elapsed().as_secs_f64();
        eprintln!(
            "quant: {} trained and encoded {} x {dim} in {encode_s:.2} s",
            code.name(),
            base.len()
        );
        let mut row = Row {
            name: code.name(),
            bytes_per_vector: coded.bytes_per_vector(),
            points: Vec::new(),
        };
        for &over in &a.oversampling {
            let want = if over == 0 { a.k } else { a.k * over };
            let (results, qps) = timed(nq, a.repeats, |qi| {
                let q = queries.row(qi);
                let mut cands = coded.scan(q, a.metric, want)?;
                if over > 0 {
                    let mut rescored: Vec<(f32, u32)> = cands
                        .iter()
                        .map(|&r| (exact(q, rows[r as usize]), r))
                        .collect();
                    rescored.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                    cands = rescored.into_iter().map(|p| p.1).collect();
                }
                cands.truncate(a.k);
                Ok(cands.into_iter().map(|r| r as usize).collect())
            })?;
            let recall = recall_at_k(&results, &gt, a.k);
            row.points.push((over, recall, qps / f32_qps));
            record(
                code.name(),
                over,
                recall,
                qps,
                qps / f32_qps,
                coded.bytes_per_vector(),
                coded.index_bytes(base.len()),
                encode_s,
            )?;
        }
        table.push(row);
    }
    eprint!(
        "{}",
        summary(&dataset, dim, f32_qps, f32_recall, &a.oversampling, &table)
    );
    Ok(())
}

/// The Markdown table: per code, recall@k and the QPS ratio to the f32 scan per oversampling.
fn summary(
    dataset: &str,
    dim: usize,
    f32_qps: f64,
    f32_recall: f64,
    overs: &[usize],
    table: &[Row],
) -> String {
    let label = |o: usize| {
        if o == 0 {
            "codes".to_string()
        } else {
            format!("{o}x")
        }
    };
    let mut s = format!(
        "\n{dataset} ({dim}-d): f32 scan {f32_qps:.0} QPS, recall {f32_recall:.4}, {} bytes/vector\n\n",
        dim * 4
    );
    s.push_str("| code | bytes/vector |");
    for &o in overs {
        s.push_str(&format!(" recall {} |", label(o)));
    }
    for &o in overs {
        s.push_str(&format!(" QPS/f32 {} |", label(o)));
    }
    s.push_str("\n|---|---:|");
    s.push_str(&"---:|".repeat(2 * overs.len()));
    s.push('\n');
    for r in table {
        s.push_str(&format!("| {} | {} |", r.name, r.bytes_per_vector));
        for p in &r.points {
            s.push_str(&format!(" {:.4} |", p.1));
        }
        for p in &r.points {
            s.push_str(&format!(" {:.2} |", p.2));
        }
        s.push('\n');
    }
    s
}
