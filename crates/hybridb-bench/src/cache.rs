//! `cache`: what the read caches buy, caches off against caches on, in one run.
//!
//! One database of `--n` entities (payload of a few hundred bytes, random vectors, HNSW) is
//! built once; then it is opened twice, first with every cache level off, then with the
//! default sizes, and each time two workloads run on one thread:
//! - `get_hot`: `get` of keys drawn uniformly from a hot set of `--hot` ids (L1 records + L2
//!   vectors);
//! - `search_repeated`: `--queries` distinct queries (k 10, with payloads), each asked
//!   `--repeats` times in a shuffled order (L3 results; the first ask of each is a miss).
//!
//! Output: one JSON line per (workload, caches), and on stderr the speedups and the hybridb
//! metrics exported by the Prometheus recorder during the run (counters and gauges; histogram
//! buckets left out).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Args;
use hybridb::prometheus::Prometheus;
use hybridb::{CacheSizes, CollectionConfig, Database, Entity, EntityId, Metric, SearchRequest};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::report::{emit, round};

/// Arguments of `cache`.
#[derive(Args, Debug)]
pub struct CacheArgs {
    /// Entities in the collection.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Size of the hot key set of `get_hot`.
    #[arg(long, default_value_t = 1_000)]
    pub hot: usize,
    /// `get` calls of `get_hot`.
    #[arg(long, default_value_t = 200_000)]
    pub gets: usize,
    /// Distinct queries of `search_repeated`.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// How often each query is asked.
    #[arg(long, default_value_t = 20)]
    pub repeats: usize,
    /// Folder in which the temporary database directory is created (default: system temp).
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
    /// Install no metrics recorder (to see what recording costs).
    #[arg(long)]
    pub no_metrics: bool,
}

/// One line of `cache` output.
#[derive(Debug, Serialize)]
pub struct CacheRecord {
    /// Always `"cache"`.
    pub bench: &'static str,
    /// `get_hot` or `search_repeated`.
    pub workload: &'static str,
    /// `off` or `on` (default sizes).
    pub caches: &'static str,
    /// Calls made.
    pub ops: usize,
    /// Calls per second.
    pub ops_per_s: f64,
    /// Median call latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile call latency, microseconds.
    pub p99_us: f64,
    /// Share of the workload's lookups answered by the cache level it exercises.
    pub hit_rate: f64,
}

fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random::<f32>() - 0.5).collect()
}

fn id(i: usize) -> EntityId {
    EntityId::from_u128(i as u128 + 1)
}

/// Builds the database, then measures both workloads with caches off and on.
pub fn run_cache(a: &CacheArgs) -> Result<()> {
    ensure!(
        a.n > 0 && a.dim > 0 && a.hot > 0 && a.hot <= a.n,
        "need 0 < hot <= n and dim > 0"
    );
    ensure!(
        a.gets > 0 && a.queries > 0 && a.repeats > 0,
        "workloads must be non-empty"
    );
    let exporter = if a.no_metrics {
        None
    } else {
        Some(Prometheus::install()?)
    };
    let dir = match &a.tmp_dir {
        Some(p) => tempfile::tempdir_in(p),
        None => tempfile::tempdir(),
    }
    .context("creating temporary directory")?;
    let path = dir.path().join("cache.redb");
    build(a, &path)?;

    let mut rng = StdRng::seed_from_u64(7);
    let hot: Vec<EntityId> = (0..a.hot).map(|_| id(rng.random_range(0..a.n))).collect();
    let gets: Vec<EntityId> = (0..a.gets)
        .map(|_| hot[rng.random_range(0..hot.len())])
        .collect();
    let distinct: Vec<Vec<f32>> = (0..a.queries)
        .map(|_| random_vector(&mut rng, a.dim))
        .collect();
    let mut asks: Vec<usize> = (0..a.queries)
        .flat_map(|q| std::iter::repeat_n(q, a.repeats))
        .collect();
    asks.shuffle(&mut rng);

    let mut results = Vec::new();
    for (caches, sizes) in [("off", CacheSizes::OFF), ("on", CacheSizes::default())] {
        let db = Database::builder().caches(sizes).open(&path)?;
        let coll = db.collection("bench")?;
        let before = db.cache_stats();
        let lat = time_each(&gets, |&id| {
            coll.get(id)?.context("hot entity missing")?;
            Ok(())
        })?;
        let after = db.cache_stats();
        let hits = after.records.hits - before.records.hits;
        let lookups = hits + after.records.misses - before.records.misses;
        results.push(record("get_hot", caches, lat, hits, lookups));

        let before = db.cache_stats();
        let lat = time_each(&asks, |&q| {
            let req = SearchRequest::new(distinct[q].clone(), 10).with_payload(true);
            ensure!(coll.search_with(&req)?.len() == 10, "short result");
            Ok(())
        })?;
        let after = db.cache_stats();
        let hits = after.results.hits - before.results.hits;
        let lookups = hits + after.results.misses - before.results.misses;
        results.push(record("search_repeated", caches, lat, hits, lookups));
        eprintln!("cache: caches {caches}: {:?}", db.cache_stats());
        if let (Some(exporter), "on") = (&exporter, caches) {
            let text = exporter.render(&[&db]);
            eprintln!("cache: metrics exported during the run (histogram buckets omitted):");
            for line in text.lines().filter(|l| {
                l.starts_with("hybridb_") && !l.contains("_bucket{") && !l.contains("_bucket ")
            }) {
                eprintln!("  {line}");
            }
        }
        drop(coll);
        db.close()?;
    }
    for r in &results {
        emit(r)?;
    }
    for workload in ["get_hot", "search_repeated"] {
        let rate = |c: &str| {
            results
                .iter()
                .find(|r| r.workload == workload && r.caches == c)
                .map_or(0.0, |r| r.ops_per_s)
        };
        eprintln!(
            "cache: {workload}: caches on {:.2}x the throughput of caches off",
            rate("on") / rate("off").max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}

fn build(a: &CacheArgs, path: &std::path::Path) -> Result<()> {
    let db = Database::open(path)?;
    let coll =
        db.create_collection("bench", CollectionConfig::new(a.dim as u32, Metric::Cosine))?;
    let mut rng = StdRng::seed_from_u64(1);
    let started = Instant::now();
    for start in (0..a.n).step_by(2_000) {
        let batch: Vec<Entity> = (start..(start + 2_000).min(a.n))
            .map(|i| {
                let lang = ["en", "de", "fr"][i % 3];
                let payload = serde_json::json!({
                    "title": format!("document number {i} about topic {}", i % 97),
                    "lang": lang,
                    "year": 1990 + i % 35,
                    "tags": [format!("t{}", i % 11), format!("t{}", i % 13)],
                    "body": "lorem ipsum dolor sit amet ".repeat(6),
                });
                Entity::new(id(i), payload, random_vector(&mut rng, a.dim))
            })
            .collect();
        coll.upsert_batch(batch)?;
    }
    eprintln!(
        "cache: built {} entities in {:.1} s",
        a.n,
        started.elapsed().as_secs_f64()
    );
    drop(coll);
    db.checkpoint()?;
    db.close()?;
    Ok(())
}

fn time_each<T>(items: &[T], mut f: impl FnMut(&T) -> Result<()>) -> Result<Vec<Duration>> {
    let mut lat = Vec::with_capacity(items.len());
    for item in items {
        let t = Instant::now();
        f(item)?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

fn record(
    workload: &'static str,
    caches: &'static str,
    mut lat: Vec<Duration>,
    hits: u64,
    lookups: u64,
) -> CacheRecord {
    let total: f64 = lat.iter().map(Duration::as_secs_f64).sum();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6;
    CacheRecord {
        bench: "cache",
        workload,
        caches,
        ops: lat.len(),
        ops_per_s: round(lat.len() as f64 / total.max(f64::MIN_POSITIVE), 1),
        p50_us: round(pct(0.5), 1),
        p99_us: round(pct(0.99), 1),
        hit_rate: round(hits as f64 / lookups.max(1) as f64, 4),
    }
}
