//! Builds an HNSW index from texmex files and measures recall and single-thread QPS per `ef`.
//!
//! ```text
//! cargo run --release -p hybridb --example hnsw_bench -- --base B.bvecs --queries Q.bvecs \
//!     --gt GT.ivecs [--m 16] [--ef-construction 200] [--ef 10,20,40,80,160] [--k 10] \
//!     [--build-threads 1] [--metric l2|cosine] [--repeat 5] [--churn 0.3]
//! ```
//! Prints one JSON line per `ef` in the schema of `shared/bench/peers.py` (engine `hybridb-hnsw`).
//! With `--churn F`, it then removes a fraction F of the rows, re-inserts them, and prints
//! lines with `"bench": "churn"` (ignored by `compare.py`): removal and re-insert rates and the
//! recall per `ef` after the churn, to compare with the fresh build's. With `--filter F`, it
//! runs filtered searches allowing a fraction F of the slots (uncorrelated with the vectors)
//! and prints `"bench": "filtered"` lines: QPS and recall against an exact scan of the allowed
//! slots (L2 only).

use std::time::Instant;

use hybridb::index::hnsw::{Hnsw, HnswParams, Metric};

fn read_vecs(path: &str) -> Result<(usize, Vec<Vec<f32>>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let kind = path.rsplit('.').next().unwrap_or("");
    let width = match kind {
        "fvecs" | "ivecs" => 4,
        "bvecs" => 1,
        _ => return Err(format!("{path}: unknown extension")),
    };
    let mut rows = Vec::new();
    let mut dim = 0;
    let mut at = 0;
    while at < bytes.len() {
        let head = bytes.get(at..at + 4).ok_or("truncated row header")?;
        let d = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let d = usize::try_from(d).map_err(|_| "negative dimension")?;
        dim = d;
        let body = bytes
            .get(at + 4..at + 4 + d * width)
            .ok_or("truncated row")?;
        let row = match kind {
            "bvecs" => body.iter().map(|&b| f32::from(b)).collect(),
            "fvecs" => body
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            _ => body
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        };
        rows.push(row);
        at += 4 + d * width;
    }
    Ok((dim, rows))
}

/// A hash of `x` mapped to [0, 1).
fn unit_hash(x: u64) -> f64 {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt() + 1e-30;
    v.iter_mut().for_each(|x| *x /= n);
}

fn main() {
    if let Err(e) = run() {
        eprintln!("hnsw_bench: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut base = None;
    let mut queries = None;
    let mut gt = None;
    let (mut m, mut efc, mut k, mut threads, mut repeat) =
        (16usize, 200usize, 10usize, 1usize, 5usize);
    let mut efs = vec![10usize, 20, 40, 80, 160];
    let mut metric = "l2".to_string();
    let mut churn = 0.0f64;
    let mut filter = 0.0f64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--base" => base = Some(val()?),
            "--queries" => queries = Some(val()?),
            "--gt" => gt = Some(val()?),
            "--m" => m = num(val()?)?,
            "--ef-construction" => efc = num(val()?)?,
            "--k" => k = num(val()?)?,
            "--build-threads" => threads = num(val()?)?,
            "--repeat" => repeat = num(val()?)?.max(1),
            "--metric" => metric = val()?,
            "--churn" => churn = val()?.parse::<f64>().map_err(|e| format!("--churn: {e}"))?,
            "--filter" => {
                filter = val()?
                    .parse::<f64>()
                    .map_err(|e| format!("--filter: {e}"))?
            }
            "--ef" => {
                efs = val()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().map_err(|e| format!("--ef: {e}")))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let base = base.ok_or("--base is required")?;
    let (dim, mut xs) = read_vecs(&base)?;
    let (_, mut qs) = read_vecs(&queries.ok_or("--queries is required")?)?;
    let (_, gts) = read_vecs(&gt.ok_or("--gt is required")?)?;
    let metric_kind = match metric.as_str() {
        "l2" => Metric::L2,
        "cosine" => {
            xs.iter_mut().for_each(|v| normalise(v));
            qs.iter_mut().for_each(|v| normalise(v));
            Metric::Dot
        }
        _ => return Err(format!("unknown metric {metric}")),
    };
    let dataset = std::path::Path::new(&base)
        .canonicalize()
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_default();

    let params = HnswParams {
        m,
        ef_construction: efc,
        seed: 42,
        ..HnswParams::new(dim, metric_kind)
    };
    let t = Instant::now();
    let mut index = Hnsw::with_capacity(params, xs.len());
    let items: Vec<(u32, &[f32])> = xs
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32, v.as_slice()))
        .collect();
    index
        .insert_batch_parallel(&items, threads)
        .map_err(|e| e.to_string())?;
    let build_s = t.elapsed().as_secs_f64();
    eprintln!(
        "built {} x {dim} in {build_s:.3} s ({} threads), {:.1} MiB",
        index.len(),
        threads,
        index.memory_bytes() as f64 / (1 << 20) as f64
    );

    for &ef in &efs {
        let mut best = f64::INFINITY;
        // Per query, the fastest of the repeats: a single query is rarely preempted, so the sum
        // estimates the cost without time lost to other processes (for A/B tuning on a shared
        // machine; the JSON reports plain wall-clock QPS like the peers).
        let mut fastest = vec![f64::INFINITY; qs.len()];
        let mut results = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            results = qs
                .iter()
                .zip(fastest.iter_mut())
                .map(|(q, f)| {
                    let t = Instant::now();
                    let r = index.search(q, k, ef);
                    *f = f.min(t.elapsed().as_secs_f64());
                    r
                })
                .collect::<Vec<_>>();
            best = best.min(t.elapsed().as_secs_f64());
        }
        eprintln!(
            "ef {ef}: {:.0} QPS from per-query minima",
            qs.len() as f64 / fastest.iter().sum::<f64>()
        );
        let mut hit = 0usize;
        for (res, truth) in results.iter().zip(&gts) {
            let truth: Vec<u32> = truth.iter().take(k).map(|&x| x as u32).collect();
            hit += res.iter().filter(|(s, _)| truth.contains(s)).count();
        }
        let recall = hit as f64 / (k * qs.len()) as f64;
        let qps = qs.len() as f64 / best;
        println!(
            "{{\"engine\": \"hybridb-hnsw\", \"dataset\": \"{dataset}\", \"n\": {}, \"dim\": {dim}, \"metric\": \"{metric}\", \"m\": {m}, \"ef_construction\": {efc}, \"build_threads\": {threads}, \"build_s\": {:.3}, \"ef\": {ef}, \"k\": {k}, \"recall\": {:.4}, \"qps\": {:.1}}}",
            xs.len(),
            build_s,
            recall,
            qps
        );
    }
    if filter > 0.0 && metric_kind == Metric::L2 {
        let allowed = |s: u32| unit_hash(u64::from(s) ^ 0xF17E) <= filter;
        let truth: Vec<Vec<u32>> = qs
            .iter()
            .map(|q| {
                let mut all: Vec<(f32, u32)> = xs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| allowed(*i as u32))
                    .map(|(i, v)| (hybridb::index::distance::l2_squared(q, v), i as u32))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0));
                all.into_iter().take(k).map(|(_, s)| s).collect()
            })
            .collect();
        for &ef in &efs {
            let mut best = f64::INFINITY;
            let mut results = Vec::new();
            for _ in 0..repeat {
                let t = Instant::now();
                results = qs
                    .iter()
                    .map(|q| index.search_filtered(q, k, ef, &allowed))
                    .collect::<Vec<_>>();
                best = best.min(t.elapsed().as_secs_f64());
            }
            let hit: usize = results
                .iter()
                .zip(&truth)
                .map(|(r, t)| r.iter().filter(|(s, _)| t.contains(s)).count())
                .sum();
            println!(
                "{{\"bench\": \"filtered\", \"engine\": \"hybridb-hnsw\", \"dataset\": \"{dataset}\", \"allowed\": {filter}, \"ef\": {ef}, \"k\": {k}, \"recall\": {:.4}, \"qps\": {:.1}}}",
                hit as f64 / (k * qs.len()) as f64,
                qs.len() as f64 / best
            );
        }
    }
    if churn > 0.0 {
        // Every row whose index hashes below `churn` (deterministic, spread over the data).
        let gone: Vec<u32> = (0..xs.len() as u32)
            .filter(|&i| unit_hash(u64::from(i)) <= churn)
            .collect();
        let t = Instant::now();
        for &s in &gone {
            index.remove(s);
        }
        let remove_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for &s in &gone {
            index
                .insert(s, &xs[s as usize])
                .map_err(|e| e.to_string())?;
        }
        let reinsert_s = t.elapsed().as_secs_f64();
        for &ef in &efs {
            let mut hit = 0usize;
            for (q, truth) in qs.iter().zip(&gts) {
                let truth: Vec<u32> = truth.iter().take(k).map(|&x| x as u32).collect();
                hit += index
                    .search(q, k, ef)
                    .iter()
                    .filter(|(s, _)| truth.contains(s))
                    .count();
            }
            println!(
                "{{\"bench\": \"churn\", \"engine\": \"hybridb-hnsw\", \"dataset\": \"{dataset}\", \"churn\": {churn}, \"removed\": {}, \"removes_per_s\": {:.0}, \"reinserts_per_s\": {:.0}, \"ef\": {ef}, \"k\": {k}, \"recall\": {:.4}}}",
                gone.len(),
                gone.len() as f64 / remove_s,
                gone.len() as f64 / reinsert_s,
                hit as f64 / (k * qs.len()) as f64
            );
        }
    }
    Ok(())
}
