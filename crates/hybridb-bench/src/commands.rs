//! The subcommands: argument definitions (clap derive) and what each one runs.
//!
//! Results go to stdout as JSON lines (see [`crate::report`]); progress and timings that are not
//! results go to stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;

use crate::bandwidth;
use crate::engine::{self, Durability, EngineConfig, IndexKind, Quant};
use crate::groundtruth::ground_truth;
use crate::metric::Metric;
use crate::recall::recall_at_k;
use crate::report::{AnnRecord, ExactRecord, LoadRecord, emit, round};
use crate::synth::generate;
use crate::vecs::{Vecs, read_ivecs, read_vectors, write_fvecs, write_ivecs};

/// Arguments of `gen`.
#[derive(Args, Debug)]
pub struct GenArgs {
    /// Number of base vectors.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Number of query vectors.
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Number of gaussian clusters in the mixture.
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Random seed; the output is a pure function of the arguments.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Metric of the ground truth.
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Neighbours per query in the ground truth.
    #[arg(long, default_value_t = 100)]
    pub gt_k: usize,
    /// Threads for the ground truth (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Output folder (created if missing); its name becomes the dataset name.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes `base.fvecs`, `queries.fvecs` and `groundtruth.ivecs` into `--out`.
pub fn run_gen(a: &GenArgs) -> Result<()> {
    ensure!(
        a.n > 0 && a.queries > 0 && a.dim > 0 && a.clusters > 0,
        "sizes must be positive"
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let t = Instant::now();
    let d = generate(a.n, a.queries, a.dim, a.clusters, a.seed);
    let gen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gt = ground_truth(&d.base, &d.queries, a.metric, a.gt_k, a.threads);
    let gt_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    write_fvecs(&a.out.join("base.fvecs"), &d.base)?;
    write_fvecs(&a.out.join("queries.fvecs"), &d.queries)?;
    write_ivecs(&a.out.join("groundtruth.ivecs"), &gt)?;
    let (c1, ck) = relative_contrast(&d.base, &d.queries, &gt, a.metric);
    eprintln!(
        "gen: {} x {} base, {} queries, {} clusters, seed {}, {} top-{}: sample {gen_s:.2} s, \
         ground truth {gt_s:.2} s, write {:.2} s -> {}; relative contrast: mean/1st-NN {c1:.2}, \
         mean/last-NN {ck:.2}",
        a.n,
        a.dim,
        a.queries,
        a.clusters,
        a.seed,
        a.metric.report_name(),
        gt.dim,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

/// Difficulty indicators of a dataset, averaged over up to 100 queries: the mean distance to
/// up to 1000 evenly spaced base rows divided by the distance to the nearest neighbour, and
/// divided by the distance to the last ground-truth neighbour (values near 1 mean hard data).
/// Only meaningful for the L2 and cosine metrics (as Euclidean distances, on unit vectors for
/// cosine); returns NaN for the inner product.
pub fn relative_contrast(
    base: &Vecs<f32>,
    queries: &Vecs<f32>,
    gt: &Vecs<i32>,
    metric: Metric,
) -> (f64, f64) {
    if metric == Metric::Dot || base.is_empty() || queries.is_empty() || gt.dim == 0 {
        return (f64::NAN, f64::NAN);
    }
    let prep = |v: &[f32]| {
        let mut v = v.to_vec();
        if metric.needs_normalising() {
            crate::metric::normalise(&mut v);
        }
        v
    };
    let dist = |a: &[f32], b: &[f32]| f64::from(Metric::L2.distance(a, b)).sqrt();
    let step = base.len().div_ceil(1000);
    let nq = queries.len().min(100);
    let (mut c1, mut ck) = (0.0, 0.0);
    for qi in 0..nq {
        let q = prep(queries.row(qi));
        let (mut sum, mut cnt) = (0.0, 0usize);
        for i in (0..base.len()).step_by(step) {
            sum += dist(&q, &prep(base.row(i)));
            cnt += 1;
        }
        let mean = sum / cnt as f64;
        let first = dist(&q, &prep(base.row(gt.row(qi)[0] as usize)));
        let last = dist(&q, &prep(base.row(gt.row(qi)[gt.dim - 1] as usize)));
        c1 += mean / first.max(1e-12);
        ck += mean / last.max(1e-12);
    }
    (c1 / nq as f64, ck / nq as f64)
}

/// Arguments of `ann`.
#[derive(Args, Debug)]
pub struct AnnArgs {
    /// Base vectors (.fvecs or .bvecs); the parent folder names the dataset.
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors (.fvecs or .bvecs).
    #[arg(long)]
    pub queries: PathBuf,
    /// Ground truth (.ivecs), one row per query, nearest first.
    #[arg(long)]
    pub gt: PathBuf,
    /// Metric (`ip` is accepted for `dot`).
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW candidate list size while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Search candidate list sizes, comma-separated (each is raised to at least k).
    #[arg(long, value_delimiter = ',', default_value = "10,20,40,80,160")]
    pub ef: Vec<usize>,
    /// Threads allowed to build the index.
    #[arg(long, default_value_t = 1)]
    pub build_threads: usize,
    /// Timed runs over all queries per ef; the fastest counts.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Entities per upsert batch while loading.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Folder in which the temporary database directory is created (default: system temp).
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
    /// redb page cache of the benchmark database, MiB (hybridb's default is 256).
    #[arg(long, default_value_t = 256)]
    pub cache_mb: usize,
    /// Upserts applied after the checkpoint before the reopen measurement (0: reopen right
    /// after a checkpoint).
    #[arg(long, default_value_t = 0)]
    pub reopen_writes: usize,
    /// Codes the HNSW walk ranks by.
    #[arg(long, value_enum, default_value_t = Quant::None)]
    pub quantization: Quant,
    /// Candidates per result rescored with f32 on a quantized index, comma-separated (one
    /// row per ef and factor; ignored without quantization).
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub oversampling: Vec<f32>,
    /// Where a quantized index keeps its f32 originals, comma-separated: one database per
    /// placement, their query passes taking turns (`file,memory` compares them in one run).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "file")]
    pub originals: Vec<engine::Placement>,
}

/// Resident set size of this process, from /proc (0 where unavailable).
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// The process's own resident memory (`RssAnon`: the resident set less mapped file pages
/// and shared memory), from /proc (0 where unavailable).
pub fn rss_anon_bytes() -> u64 {
    proc_status_bytes("RssAnon:")
}

/// A `kB` field of /proc/self/status, in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Name of the folder holding `path` (the dataset name, as peers.py derives it).
pub fn dataset_name(path: &Path) -> String {
    std::path::absolute(path)
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

fn temp_dir(parent: Option<&Path>) -> Result<tempfile::TempDir> {
    let b = tempfile::Builder::new()
        .prefix("hybridb-bench-")
        .tempdir_in(parent.map_or_else(std::env::temp_dir, Path::to_path_buf));
    b.context("creating temporary database directory")
}

/// Runs every query once on this thread; returns the results and the elapsed seconds.
fn run_queries<T>(
    queries: &Vecs<f32>,
    mut f: impl FnMut(&[f32]) -> Result<T>,
) -> Result<(Vec<T>, f64)> {
    let t = Instant::now();
    let results = queries.rows().map(&mut f).collect::<Result<Vec<_>>>()?;
    Ok((results, t.elapsed().as_secs_f64()))
}

/// Best of `repeat` runs of [`run_queries`]; results are those of the last run.
fn best_of<T>(
    repeat: usize,
    queries: &Vecs<f32>,
    mut f: impl FnMut(&[f32]) -> Result<T>,
) -> Result<(Vec<T>, f64)> {
    let mut best = f64::INFINITY;
    let mut results = Vec::new();
    for _ in 0..repeat.max(1) {
        let (r, s) = run_queries(queries, &mut f)?;
        best = best.min(s);
        results = r;
    }
    Ok((results, best))
}

/// Loads the base into a fresh collection, then prints one [`AnnRecord`] per ef.
pub fn run_ann(a: &AnnArgs) -> Result<()> {
    let base = read_vectors(&a.base)?;
    let queries = read_vectors(&a.queries)?;
    let gt = read_ivecs(&a.gt)?;
    ensure!(
        base.dim == queries.dim,
        "base has dimension {} but queries have {}",
        base.dim,
        queries.dim
    );
    ensure!(
        gt.len() == queries.len(),
        "{} ground-truth rows for {} queries",
        gt.len(),
        queries.len()
    );
    ensure!(
        a.k > 0 && a.k <= gt.dim,
        "k = {} but ground truth has {} columns",
        a.k,
        gt.dim
    );
    ensure!(!a.ef.is_empty(), "no ef values given");

    ensure!(
        a.oversampling.iter().all(|&o| (1.0..=64.0).contains(&o)),
        "oversampling factors must be within 1..=64"
    );
    ensure!(!a.originals.is_empty(), "no --originals given");
    let dataset = dataset_name(&a.base);
    // One database per placement of the originals, built one after the other; their query
    // passes then take turns, so that load on the machine hits them alike.
    // An unquantized index keeps its vectors in memory wherever originals would go.
    let placements = if a.quantization == Quant::None {
        vec![engine::Placement::Memory]
    } else {
        a.originals.clone()
    };
    let mut built = Vec::new();
    for &originals in &placements {
        let dir = temp_dir(a.tmp_dir.as_deref())?;
        let config = EngineConfig {
            m: a.m,
            ef_construction: a.ef_construction,
            build_threads: a.build_threads,
            cache_mb: a.cache_mb,
            quantization: a.quantization,
            originals,
            ..EngineConfig::new(a.metric, base.dim)
        };
        let rss_before = rss_bytes();
        let anon_before = rss_anon_bytes();
        let t = Instant::now();
        let engine = engine::build(dir.path(), &config, &base, a.batch)?;
        let build_s = t.elapsed().as_secs_f64();
        let rss_after = rss_bytes();
        let anon_after = rss_anon_bytes();
        let raw = (base.len() * base.dim * 4) as u64;
        // The links a graph of this size needs: layer 0 holds 2m ids and a count per node; a
        // node has 1/(m-1) upper-layer lists of m ids and a count on average.
        let m = a.m.max(2) as f64;
        let graph = (base.len() as f64 * 4.0 * ((1.0 + 2.0 * m) + (1.0 + m) / (m - 1.0))) as u64;
        let engine_rss = rss_after.saturating_sub(rss_before);
        let index = engine::index_bytes(&engine) as u64;
        emit(&serde_json::json!({
            "bench": "memory", "engine": engine::ENGINE_NAME, "dataset": dataset, "n": base.len(),
            "dim": base.dim, "quantization": a.quantization.name(), "originals": originals.name(),
            "rss_before_build": rss_before, "rss_after_build": rss_after,
            "engine_rss": engine_rss,
            "engine_rss_anon": anon_after.saturating_sub(anon_before),
            "raw_vectors_bytes": raw,
            "cache_mb": a.cache_mb,
            "index_bytes": index,
            "engine_rss_over_index": round(engine_rss as f64 / index.max(1) as f64, 3),
            "raw_plus_graph_bytes": raw + graph,
            "index_over_raw_plus_graph": round(index as f64 / (raw + graph).max(1) as f64, 3),
            "engine_rss_over_raw_plus_graph": round(engine_rss as f64 / (raw + graph).max(1) as f64, 3),
        }))?;
        built.push((engine, dir, originals, build_s));
    }
    let factors: &[f32] = if a.quantization == Quant::None {
        &[1.0]
    } else {
        &a.oversampling
    };
    for &ef in &a.ef {
        for &oversampling in factors {
            for (engine, _, originals, build_s) in &built {
                let ef_used = ef.max(a.k);
                // Timed: the searches alone; their hits are mapped to base rows afterwards.
                let (hits, secs) = best_of(a.repeat, &queries, |q| {
                    engine::search_hits(engine, q, a.k, ef_used, oversampling)
                })?;
                let results = hits
                    .into_iter()
                    .map(|h| engine::hits_to_rows(engine, h))
                    .collect::<Result<Vec<_>>>()?;
                emit(&AnnRecord {
                    engine: engine::ENGINE_NAME.to_string(),
                    dataset: dataset.clone(),
                    n: base.len(),
                    dim: base.dim,
                    metric: a.metric.report_name().to_string(),
                    m: a.m,
                    ef_construction: a.ef_construction,
                    build_threads: a.build_threads,
                    build_s: round(*build_s, 3),
                    ef,
                    k: a.k,
                    recall: round(recall_at_k(&results, &gt, a.k), 4),
                    qps: round(queries.len() as f64 / secs, 1),
                    quantization: a.quantization.name().to_string(),
                    oversampling: f64::from(oversampling),
                    index_bytes: engine::index_bytes(engine) as u64,
                    rss_bytes: rss_bytes(),
                    originals: originals.name().to_string(),
                    rss_anon_bytes: rss_anon_bytes(),
                })?;
            }
        }
    }
    for (engine, dir, originals, build_s) in built {
        // What rescoring from redb instead would cost: reading each rescored candidate's
        // stored vector (k x 2 of them, for the first 200 queries).
        let sample = &queries.data[..queries.dim * queries.len().min(200)];
        let us = engine::vector_read_micros(&engine, sample, a.k * 2)?;
        emit(&serde_json::json!({
            "bench": "vector_reads", "engine": engine::ENGINE_NAME, "dataset": dataset,
            "quantization": a.quantization.name(), "originals": originals.name(),
            "fetch": a.k * 2, "us_per_vector_read": round(us, 3),
        }))?;
        let r = engine::reopen_after_writes(engine, dir.path(), a.reopen_writes, &base.data)?;
        emit(&serde_json::json!({
            "bench": "reopen", "engine": engine::ENGINE_NAME, "dataset": dataset, "n": base.len(),
            "quantization": a.quantization.name(), "originals": originals.name(),
            "later_writes": a.reopen_writes, "build_s": round(build_s, 3),
            "reopen_s": round(r.clean_s, 3), "rebuilt": r.clean_rebuilt,
            "reopen_over_build": round(r.clean_s / build_s, 4),
            "linked_s": round(r.clean_linked_s, 3),
            "qps_while_linking": round(r.clean_qps_while_linking, 1),
            "crash_reopen_s": round(r.crash_s, 3), "crash_rebuilt": r.crash_rebuilt,
        }))?;
        dir.close()
            .context("removing temporary database directory")?;
    }
    Ok(())
}

/// Arguments of `exact`.
#[derive(Args, Debug)]
pub struct ExactArgs {
    /// Number of base vectors.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Number of queries per timed run.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Random seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Clusters in the synthetic mixture.
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Metric.
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Timed runs over all queries; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Passes over the bandwidth buffer; the fastest counts.
    #[arg(long, default_value_t = 5)]
    pub passes: usize,
    /// Folder in which the temporary database directory is created (default: system temp).
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
}

/// Times single-thread exact search and, in the same run, the memory-read bandwidth ceiling.
pub fn run_exact(a: &ExactArgs) -> Result<()> {
    ensure!(
        a.n > 0 && a.dim > 0 && a.queries > 0,
        "sizes must be positive"
    );
    let d = generate(a.n, a.queries, a.dim, a.clusters, a.seed);
    let dir = temp_dir(a.tmp_dir.as_deref())?;
    let config = EngineConfig {
        index: IndexKind::Flat,
        ..EngineConfig::new(a.metric, a.dim)
    };
    let engine = engine::build(dir.path(), &config, &d.base, 1000)?;
    // One untimed run warms caches and any lazily built state.
    run_queries(&d.queries, |q| engine::exact_search(&engine, q, a.k))?;
    let (_, secs) = best_of(a.repeat, &d.queries, |q| {
        engine::exact_search(&engine, q, a.k)
    })?;
    drop(engine);
    dir.close()
        .context("removing temporary database directory")?;

    let bw = bandwidth::measure(a.passes);
    eprintln!(
        "exact: bandwidth buffer {} MiB (LLC {} MiB), kernels {}",
        bw.buffer_bytes >> 20,
        bw.llc_bytes >> 20,
        hybridb::index::distance::kernels().isa
    );
    let qps = a.queries as f64 / secs;
    let bytes_per_query = a.n * a.dim * 4;
    let achieved = qps * bytes_per_query as f64 / 1e9;
    let ceiling = bw.bytes_per_s / 1e9;
    emit(&ExactRecord {
        bench: "exact",
        engine: engine::ENGINE_NAME.to_string(),
        n: a.n,
        dim: a.dim,
        qps: round(qps, 1),
        bytes_per_query,
        achieved_gbps: round(achieved, 3),
        bandwidth_gbps: round(ceiling, 3),
        fraction: round(achieved / ceiling, 4),
    })
}

/// Arguments of `load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Entities to load.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Entities per upsert_batch call.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Write durability.
    #[arg(long, value_enum, default_value_t = Durability::None)]
    pub durability: Durability,
    /// Index kept by the collection.
    #[arg(long, value_enum, default_value_t = IndexKind::Hnsw)]
    pub index: IndexKind,
    /// Metric.
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Random seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Clusters in the synthetic mixture.
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Folder in which the temporary database directory is created (default: system temp).
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
}

/// Times loading `n` synthetic entities through `upsert_batch`.
pub fn run_load(a: &LoadArgs) -> Result<()> {
    ensure!(
        a.n > 0 && a.dim > 0 && a.batch > 0,
        "sizes must be positive"
    );
    let d = generate(a.n, 0, a.dim, a.clusters, a.seed);
    let dir = temp_dir(a.tmp_dir.as_deref())?;
    let config = EngineConfig {
        durability: a.durability,
        index: a.index,
        ..EngineConfig::new(a.metric, a.dim)
    };
    let mut engine = engine::open(dir.path(), &config)?;
    let t = Instant::now();
    for (b, chunk) in d.base.data.chunks(a.batch * a.dim).enumerate() {
        engine::upsert_batch(&mut engine, b * a.batch, chunk)?;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(engine);
    dir.close()
        .context("removing temporary database directory")?;
    emit(&LoadRecord {
        bench: "load",
        engine: engine::ENGINE_NAME.to_string(),
        n: a.n,
        dim: a.dim,
        batch: a.batch,
        durability: a.durability.name(),
        seconds: round(secs, 3),
        entities_per_s: round(a.n as f64 / secs, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_is_the_parent_folder_name() {
        assert_eq!(
            dataset_name(Path::new("/data/bigann10k/base.bvecs")),
            "bigann10k"
        );
    }

    #[test]
    fn ann_end_to_end_on_generated_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tiny");
        run_gen(&GenArgs {
            n: 400,
            queries: 10,
            dim: 8,
            clusters: 4,
            seed: 7,
            metric: Metric::Cosine,
            gt_k: 100,
            threads: 2,
            out: out.clone(),
        })
        .unwrap();
        let gt = read_ivecs(&out.join("groundtruth.ivecs")).unwrap();
        assert_eq!((gt.len(), gt.dim), (10, 100));
        // The engine, searched on the written files, agrees with the written ground truth.
        let base = read_vectors(&out.join("base.fvecs")).unwrap();
        let queries = read_vectors(&out.join("queries.fvecs")).unwrap();
        let config = EngineConfig::new(Metric::Cosine, 8);
        let e = engine::build(dir.path(), &config, &base, 64).unwrap();
        let (res, _) = best_of(1, &queries, |q| engine::search(&e, q, 10, 10, 1.0)).unwrap();
        let r = recall_at_k(&res, &gt, 10);
        // The collection uses the exact index for now: recall must be perfect.
        assert_eq!(r, 1.0);
    }
}
