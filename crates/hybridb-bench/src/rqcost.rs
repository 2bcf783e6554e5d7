//! `rq-cost`: what the rotated codes (`index::quant::Rq`) cost to make, one thread: encoding
//! (µs per vector), the rotation alone and query preparation (µs per query), each the fastest
//! of `--repeats` passes; and the quality of every code, the cosine `⟨ȳ, z⟩ / (|ȳ| |z|)`
//! between the grid vector `ȳ` and the rotated `z = P(x - c)` (what the encoder maximises).
//!
//! `--save FILE` writes each vector's cosine (`f64`, little-endian, code after code);
//! `--compare FILE` reads such a file, written by another build on the same data and
//! arguments, and reports the mean and worst loss of cosine against it and how many codes
//! differ: the way to check that a faster encoder finds codes as good as the exact one.
//! `--gaussian DIM` replaces the data by `--n` standard Gaussian vectors of `DIM` values.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;
use hybridb::index::quant::kernels::slot;
use hybridb::index::quant::{Rotation, Rq, RqBits, RqMetric};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::commands::dataset_name;
use crate::metric::{Metric, normalise_rows};
use crate::quant::Code;
use crate::report::{emit, round};
use crate::vecs::read_vectors;

/// Arguments of `rq-cost`.
#[derive(Args, Debug)]
pub struct RqCostArgs {
    /// Vectors (.fvecs or .bvecs); not needed with `--gaussian`.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// `--n` standard Gaussian vectors of this many dimensions instead of `--base`.
    #[arg(long)]
    pub gaussian: Option<usize>,
    /// Vectors to encode (the first n of the file).
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Metric: cosine normalises the vectors first; the query preparation uses dot for
    /// cosine and dot, L2 otherwise.
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Rotated codes to measure (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = vec![Code::Rq1, Code::Rq2, Code::Rq4])]
    pub code: Vec<Code>,
    /// Seed of the rotation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Timed passes; each time is the fastest pass.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Writes every code's cosine here (one file for all codes, in `--code` order).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Compares every code's cosine with a file `--save` wrote.
    #[arg(long)]
    pub compare: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct RqCostRecord {
    bench: &'static str,
    quantization: &'static str,
    dataset: String,
    n: usize,
    dim: usize,
    encode_us: f64,
    rotate_us: f64,
    query_us: f64,
    mean_cos: f64,
    min_cos: f64,
    /// Against `--compare`: mean and worst of (saved cosine - this cosine), and the number of
    /// vectors whose cosine differs by more than 1e-9.
    mean_loss: Option<f64>,
    worst_loss: Option<f64>,
    differ: Option<usize>,
}

/// The fastest of `repeats` runs of `f`, in seconds.
fn fastest(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The cosine between the grid vector of `code` and `z`.
fn code_cosine(code: &[u8], bits: usize, z: &[f32]) -> f64 {
    let block_bytes = 8 * bits;
    let mask = ((1u16 << bits) - 1) as u8;
    let half = f64::from((1u32 << bits) - 1) / 2.0;
    let (mut yz, mut yy, mut zz) = (0.0f64, 0.0f64, 0.0f64);
    for (d, &x) in z.iter().enumerate() {
        let (byte, shift) = slot(d % 64, bits);
        let u = (code[d / 64 * block_bytes + byte] >> shift) & mask;
        let y = f64::from(u) - half;
        yz += y * f64::from(x);
        yy += y * y;
        zz += f64::from(x) * f64::from(x);
    }
    if yy > 0.0 && zz > 0.0 {
        yz / (yy * zz).sqrt()
    } else {
        1.0
    }
}

/// Runs the measurement: one JSON line per code.
pub fn run_rq_cost(a: &RqCostArgs) -> Result<()> {
    let (dataset, dim, mut data) = match (a.gaussian, &a.base) {
        (Some(dim), _) => {
            ensure!(dim > 0, "--gaussian needs a positive dimension");
            let mut rng = StdRng::seed_from_u64(a.seed ^ 0x6A55);
            let data: Vec<f32> = (0..a.n * dim).map(|_| normal(&mut rng) as f32).collect();
            (format!("gaussian{dim}"), dim, data)
        }
        (None, Some(path)) => {
            let v = read_vectors(path)?;
            let n = a.n.min(v.len());
            let mut data = v.data;
            data.truncate(n * v.dim);
            (dataset_name(path), v.dim, data)
        }
        (None, None) => anyhow::bail!("give --base or --gaussian"),
    };
    if a.metric.needs_normalising() {
        normalise_rows(&mut data, dim);
    }
    let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
    let n = rows.len();
    ensure!(n > 0, "no vectors");
    let saved: Option<Vec<f64>> = match &a.compare {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            )
        }
        None => None,
    };
    let mut all_cos = Vec::new();
    for (ci, &code) in a.code.iter().enumerate() {
        let bits = match code {
            Code::Rq1 => RqBits::One,
            Code::Rq2 => RqBits::Two,
            Code::Rq4 => RqBits::Four,
            Code::Sq8 => continue,
        };
        let sample: Vec<&[f32]> = rows.iter().step_by((n / 20_000).max(1)).copied().collect();
        let rq = Rq::train(&sample, dim, bits, a.seed)?;
        let cb = rq.code_bytes();
        let mut codes = vec![0u8; n * cb];
        let encode_s = fastest(a.repeats, || {
            for (r, c) in rows.iter().zip(codes.chunks_mut(cb)) {
                rq.encode(r, c)?;
            }
            Ok(())
        })?;
        let rotation = Rotation::new(dim, a.seed);
        let mut z = vec![0.0f32; rotation.padded_dim()];
        let nq = n.min(2_000);
        let rotate_s = fastest(a.repeats, || {
            for r in &rows[..nq] {
                rotation.apply(r, &mut z);
                std::hint::black_box(&z);
            }
            Ok(())
        })?;
        let metric = match a.metric {
            Metric::L2 => RqMetric::L2,
            _ => RqMetric::Dot,
        };
        let query_s = fastest(a.repeats, || {
            for r in &rows[..nq] {
                std::hint::black_box(rq.query(r, metric)?);
            }
            Ok(())
        })?;
        let mut cos = Vec::with_capacity(n);
        for (r, c) in rows.iter().zip(codes.chunks(cb)) {
            let shifted: Vec<f32> = r.iter().zip(rq.center()).map(|(x, c)| x - c).collect();
            rotation.apply(&shifted, &mut z);
            cos.push(code_cosine(c, bits.bits(), &z));
        }
        let (mut mean_loss, mut worst_loss, mut differ) = (None, None, None);
        if let Some(saved) = &saved {
            let theirs = saved
                .get(ci * n..(ci + 1) * n)
                .context("the --compare file holds fewer cosines")?;
            let losses: Vec<f64> = theirs.iter().zip(&cos).map(|(t, o)| t - o).collect();
            mean_loss = Some(losses.iter().sum::<f64>() / n as f64);
            worst_loss = Some(losses.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l)));
            differ = Some(losses.iter().filter(|l| l.abs() > 1e-9).count());
        }
        emit(&RqCostRecord {
            bench: "rq-cost",
            quantization: code.name(),
            dataset: dataset.clone(),
            n,
            dim,
            encode_us: round(encode_s * 1e6 / n as f64, 3),
            rotate_us: round(rotate_s * 1e6 / nq as f64, 3),
            query_us: round(query_s * 1e6 / nq as f64, 3),
            mean_cos: cos.iter().sum::<f64>() / n as f64,
            min_cos: cos.iter().fold(f64::INFINITY, |m, &c| m.min(c)),
            mean_loss,
            worst_loss,
            differ,
        })?;
        all_cos.extend(cos);
    }
    if let Some(path) = &a.save {
        let bytes: Vec<u8> = all_cos.iter().flat_map(|c| c.to_le_bytes()).collect();
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A standard normal value (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u = 1.0 - rng.random::<f64>();
    let v = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}
