//! Stand-in engine: vectors in one in-memory buffer, every search an exact scan.
//!
//! Used until the hybridb engine API is merged (see the swap point in `engine.rs`). It ignores
//! HNSW parameters, `ef`, build threads and durability, and writes nothing to `dir`.
//! Invariant: `data` holds `rows * dim` values, normalised when the metric is cosine.

use std::path::Path;

use anyhow::{Result, ensure};

use super::EngineConfig;
use crate::metric::{Metric, normalise, normalise_rows};
use crate::topk::TopK;

/// Name written in the `engine` field of reports.
pub const ENGINE_NAME: &str = "standin-bruteforce";

/// An open stand-in collection.
#[derive(Debug)]
pub struct Engine {
    metric: Metric,
    dim: usize,
    data: Vec<f32>,
}

/// Creates an empty collection (nothing is written to `_dir`).
pub fn open(_dir: &Path, config: &EngineConfig) -> Result<Engine> {
    ensure!(config.dim > 0, "dimension must be positive");
    Ok(Engine {
        metric: config.metric,
        dim: config.dim,
        data: Vec::new(),
    })
}

/// Appends `rows` (flat, a whole number of vectors) whose first row has index `first_row`.
pub fn upsert_batch(engine: &mut Engine, first_row: usize, rows: &[f32]) -> Result<()> {
    ensure!(
        rows.len().is_multiple_of(engine.dim),
        "batch is not a whole number of rows"
    );
    ensure!(
        first_row * engine.dim == engine.data.len(),
        "stand-in engine only supports appending rows in order"
    );
    let start = engine.data.len();
    engine.data.extend_from_slice(rows);
    if engine.metric.needs_normalising() {
        normalise_rows(&mut engine.data[start..], engine.dim);
    }
    Ok(())
}

/// Approximate search; the stand-in answers exactly and ignores `ef`.
pub fn search(engine: &Engine, q: &[f32], k: usize, _ef: usize) -> Result<Vec<usize>> {
    exact_search(engine, q, k)
}

/// Exact top-`k` rows for `q`, best first.
pub fn exact_search(engine: &Engine, q: &[f32], k: usize) -> Result<Vec<usize>> {
    ensure!(q.len() == engine.dim, "query has dimension {}", q.len());
    let mut owned;
    let q = if engine.metric.needs_normalising() {
        owned = q.to_vec();
        normalise(&mut owned);
        &owned[..]
    } else {
        q
    };
    let mut top = TopK::new(k);
    for (i, row) in engine.data.chunks_exact(engine.dim).enumerate() {
        top.push(engine.metric.distance(q, row), i as u32);
    }
    Ok(top
        .into_sorted_rows()
        .into_iter()
        .map(|r| r as usize)
        .collect())
}
