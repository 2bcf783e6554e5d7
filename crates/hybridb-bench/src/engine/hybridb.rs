//! The real engine: one hybridb database with one collection, in a benchmark directory.
//!
//! Invariant: `rows` maps every loaded entity id back to its base row index; entity ids are
//! `EntityId::from_key(&row.to_string())` and payloads are `{"row": row}`.
//!
//! Knobs the announced API does not take yet are marked `API-GAP` below: HNSW `m` and
//! `ef_construction`, the flat index kind, build threads and per-search `ef`. Until they exist
//! the engine's defaults are used and `ef` has no effect; wire them in where marked.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use hybridb::{CollectionConfig, Database, Entity, EntityId};

use super::{Durability, EngineConfig};
use crate::metric::Metric;

/// Name written in the `engine` field of reports.
pub const ENGINE_NAME: &str = "hybridb";

/// An open hybridb collection and the id → row map built while loading.
pub struct Engine {
    // Field order: the collection is dropped before the database.
    coll: hybridb::Collection,
    _db: Database,
    dim: usize,
    rows: HashMap<EntityId, u32>,
}

/// Creates (or opens) `dir/bench.redb` and creates the collection `bench`.
pub fn open(dir: &Path, config: &EngineConfig) -> Result<Engine> {
    let durability = match config.durability {
        Durability::None => hybridb::Durability::None,
        Durability::Immediate => hybridb::Durability::Immediate,
    };
    let metric = match config.metric {
        Metric::L2 => hybridb::Metric::L2,
        Metric::Cosine => hybridb::Metric::Cosine,
        Metric::Dot => hybridb::Metric::Dot,
    };
    let path = dir.join("bench.redb");
    let db = Database::builder()
        .durability(durability)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let coll_config = CollectionConfig::new(config.dim as u32, metric);
    // API-GAP: HNSW parameters, flat index and build threads, e.g.
    //   .hnsw(config.m, config.ef_construction)  /  .index(IndexKind::Flat)
    //   .build_threads(config.build_threads)
    let coll = db
        .create_collection("bench", coll_config)
        .context("creating collection")?;
    Ok(Engine {
        coll,
        _db: db,
        dim: config.dim,
        rows: HashMap::new(),
    })
}

/// Upserts `rows` (flat, a whole number of vectors) as one batch; the first has index `first_row`.
pub fn upsert_batch(engine: &mut Engine, first_row: usize, rows: &[f32]) -> Result<()> {
    ensure!(
        rows.len().is_multiple_of(engine.dim),
        "batch is not a whole number of rows"
    );
    let mut entities = Vec::with_capacity(rows.len() / engine.dim);
    for (i, v) in rows.chunks_exact(engine.dim).enumerate() {
        let row = first_row + i;
        let id = EntityId::from_key(&row.to_string());
        engine.rows.insert(id, row as u32);
        entities.push(Entity::new(
            id,
            serde_json::json!({ "row": row }),
            v.to_vec(),
        ));
    }
    engine.coll.upsert_batch(entities).context("upsert_batch")?;
    Ok(())
}

/// Maps hits back to base rows.
fn to_rows(engine: &Engine, hits: Vec<hybridb::Hit>) -> Result<Vec<usize>> {
    hits.into_iter()
        .map(|h| {
            engine
                .rows
                .get(&h.id)
                .map(|&r| r as usize)
                .with_context(|| format!("search returned unknown id {:?}", h.id))
        })
        .collect()
}

/// Approximate top-`k` rows for `q`, best first.
pub fn search(engine: &Engine, q: &[f32], k: usize, _ef: usize) -> Result<Vec<usize>> {
    // API-GAP: per-search ef, e.g. engine.coll.search_with(q, SearchParams::new(k).ef(ef)).
    let hits = engine.coll.search(q, k).context("search")?;
    to_rows(engine, hits)
}

/// Exact top-`k` rows for `q`, best first (the collection must use the flat index).
pub fn exact_search(engine: &Engine, q: &[f32], k: usize) -> Result<Vec<usize>> {
    // API-GAP: with IndexKind::Flat wired into `open`, `search` is exact; or use an explicit
    // exact call if the engine offers one (e.g. `engine.coll.search_exact(q, k)`).
    let hits = engine.coll.search(q, k).context("exact search")?;
    to_rows(engine, hits)
}
