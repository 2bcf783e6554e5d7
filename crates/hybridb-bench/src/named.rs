//! `named`: the cost of named vectors. The same vectors go into a one-vector collection (as
//! its default vector) and into a three-vector collection (as the named dense vector `text`,
//! beside a default vector and a sparse vector `terms`); the same queries then run on both,
//! interleaved round by round in one process, and the best round of each is compared. Issue
//! 18 asks for the named search to be within 5 % of the one-vector search.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use clap::Args;
use hybridb::{
    CollectionConfig, Database, Entity, EntityId, Metric, SearchRequest, SparseVector, VectorConfig,
};
use serde::Serialize;

use crate::recall::recall_at_k;
use crate::report::{emit, round};
use crate::vecs::{read_ivecs, read_vectors};

/// Arguments of `named`.
#[derive(Args, Debug)]
pub struct NamedArgs {
    /// Base vectors (.fvecs).
    #[arg(long, default_value = "../shared/data/pydoc/base.fvecs")]
    pub base: PathBuf,
    /// Query vectors.
    #[arg(long, default_value = "../shared/data/pydoc/queries.fvecs")]
    pub queries: PathBuf,
    /// Ground truth (.ivecs, cosine, nearest first).
    #[arg(long, default_value = "../shared/data/pydoc/groundtruth.ivecs")]
    pub gt: PathBuf,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search effort.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Rounds over all queries per collection (interleaved; the best round counts).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// One result line of `named`.
#[derive(Debug, Serialize)]
struct NamedRecord {
    bench: &'static str,
    n: usize,
    dim: usize,
    queries: usize,
    k: usize,
    ef: usize,
    recall_one: f64,
    recall_named: f64,
    qps_one: f64,
    qps_named: f64,
    /// `qps_named / qps_one`: 1.0 means no cost.
    ratio: f64,
}

/// Runs the benchmark and prints one JSON line.
pub fn run_named(a: &NamedArgs) -> Result<()> {
    ensure!(a.k > 0 && a.rounds > 0, "k and rounds must be positive");
    let base = read_vectors(&a.base)?;
    let queries = read_vectors(&a.queries)?;
    let gt = read_ivecs(&a.gt)?;
    let dim = base.row(0).len();
    let dir = tempfile::tempdir()?;
    // Caches off: every round searches (the result cache would answer repeats).
    let db = Database::builder()
        .caches(hybridb::CacheSizes::OFF)
        .open(dir.path().join("named.redb"))?;
    let one = db.create_collection("one", CollectionConfig::new(dim as u32, Metric::Cosine))?;
    let three = db.create_collection(
        "three",
        CollectionConfig::new(8, Metric::L2)
            .with_vector("text", VectorConfig::dense(dim as u32, Metric::Cosine))
            .with_vector("terms", VectorConfig::sparse(false)),
    )?;
    let id = |i: usize| EntityId::from_u128(i as u128 + 1);
    for start in (0..base.len()).step_by(1000) {
        let rows = start..(start + 1000).min(base.len());
        let plain: Vec<Entity> = rows
            .clone()
            .map(|i| Entity::new(id(i), serde_json::json!({}), base.row(i).to_vec()))
            .collect();
        one.upsert_batch(plain)?;
        let named: Vec<Entity> = rows
            .map(|i| {
                let small: Vec<f32> = base.row(i)[..8].to_vec();
                Entity::new(id(i), serde_json::json!({}), small)
                    .with_vector("text", base.row(i).to_vec())
                    .with_vector(
                        "terms",
                        SparseVector::new(
                            vec![(i % 97) as u32, 100 + (i % 13) as u32],
                            vec![1.0, 0.5],
                        ),
                    )
            })
            .collect();
        three.upsert_batch(named)?;
    }
    let nq = queries.len().min(gt.len());
    let run = |using: &str| -> Result<(f64, Vec<Vec<usize>>)> {
        let coll = if using.is_empty() { &one } else { &three };
        let t = Instant::now();
        let mut found = Vec::with_capacity(nq);
        for q in 0..nq {
            let req = SearchRequest::new(queries.row(q).to_vec(), a.k)
                .ef(a.ef)
                .using(using);
            let hits = coll.search_with(&req)?;
            found.push(
                hits.iter()
                    .map(|h| (h.id.as_uuid().as_u128() - 1) as usize)
                    .collect::<Vec<usize>>(),
            );
        }
        Ok((nq as f64 / t.elapsed().as_secs_f64(), found))
    };
    let (mut best_one, mut best_named) = (0.0f64, 0.0f64);
    let (mut found_one, mut found_named) = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let (q1, f1) = run("")?;
        let (q3, f3) = run("text")?;
        best_one = best_one.max(q1);
        best_named = best_named.max(q3);
        found_one = f1;
        found_named = f3;
    }
    emit(&NamedRecord {
        bench: "named",
        n: base.len(),
        dim,
        queries: nq,
        k: a.k,
        ef: a.ef,
        recall_one: round(recall_at_k(&found_one[..nq], &gt, a.k), 4),
        recall_named: round(recall_at_k(&found_named[..nq], &gt, a.k), 4),
        qps_one: round(best_one, 1),
        qps_named: round(best_named, 1),
        ratio: round(best_named / best_one, 4),
    })
}
