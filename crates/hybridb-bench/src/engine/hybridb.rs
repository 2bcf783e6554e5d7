//! The real engine: one hybridb database with one collection, in a benchmark directory.
//!
//! Invariant: `rows` maps every loaded entity id back to its base row index; entity ids are
//! `EntityId::from_key(&row.to_string())` and payloads are `{"row": row}`.
//!

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use hybridb::{CollectionConfig, Database, Entity, EntityId, IndexKind, SearchRequest};

use super::{Durability, EngineConfig, IndexKind as BenchIndex};
use crate::metric::Metric;

/// Name written in the `engine` field of reports.
pub const ENGINE_NAME: &str = "hybridb";

/// An open hybridb collection and the id → row map built while loading.
pub struct Engine {
    // Field order: the collection is dropped before the database.
    coll: hybridb::Collection,
    db: Database,
    dim: usize,
    /// Rows loaded so far (ids are `EntityId::from_key(row)` for rows `0..loaded`).
    loaded: usize,
    /// id -> row, built on first use, after loading: the harness's own map must not count
    /// in the engine's memory measured right after the build.
    rows: std::sync::OnceLock<HashMap<EntityId, u32>>,
}

impl Engine {
    fn rows(&self) -> &HashMap<EntityId, u32> {
        self.rows.get_or_init(|| {
            (0..self.loaded)
                .map(|row| (row_id(row), row as u32))
                .collect()
        })
    }
}

/// The id of base row `row`.
fn row_id(row: usize) -> EntityId {
    EntityId::from_key(&row.to_string())
}

/// Database options for a benchmark: index threads = build threads, no background
/// checkpoints (they would be timed as part of the build; reopen measurements take one
/// explicitly), and no read caches (the result cache would answer repeated query passes
/// without searching; `hybridb-bench cache` measures the caches).
fn builder(config: &EngineConfig, durability: hybridb::Durability) -> hybridb::DatabaseBuilder {
    let originals = match config.originals {
        super::Placement::File => hybridb::Originals::BesideDatabase,
        super::Placement::Memory => hybridb::Originals::Memory,
    };
    Database::builder()
        .originals(originals)
        .durability(durability)
        .cache_size(config.cache_mb << 20)
        .index_threads(config.build_threads.max(1))
        .checkpoint_every(0, std::time::Duration::ZERO)
        .checkpoint_on_close(false)
        .caches(hybridb::CacheSizes::OFF)
}

/// hybridb's name for a benchmark quantization.
pub fn quantization(q: super::Quant) -> hybridb::Quantization {
    match q {
        super::Quant::None => hybridb::Quantization::None,
        super::Quant::Sq8 => hybridb::Quantization::Sq8,
        super::Quant::Rq1 => hybridb::Quantization::Rq1,
        super::Quant::Rq2 => hybridb::Quantization::Rq2,
        super::Quant::Rq4 => hybridb::Quantization::Rq4,
    }
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
    let db = builder(config, durability)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let index = match config.index {
        BenchIndex::Flat => IndexKind::Exact,
        BenchIndex::Hnsw => IndexKind::Hnsw {
            m: config.m as u32,
            ef_construction: config.ef_construction as u32,
            ef: 64,
        },
    };
    let quantization = quantization(config.quantization);
    let coll_config = CollectionConfig::new(config.dim as u32, metric)
        .with_index(index)
        .with_quantization(quantization);
    let coll = db
        .create_collection("bench", coll_config)
        .context("creating collection")?;
    Ok(Engine {
        coll,
        db,
        dim: config.dim,
        loaded: 0,
        rows: std::sync::OnceLock::new(),
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
        let id = row_id(row);
        engine.loaded = engine.loaded.max(row + 1);
        engine.rows = std::sync::OnceLock::new();
        entities.push(Entity::new(
            id,
            serde_json::json!({ "row": row }),
            v.to_vec(),
        ));
    }
    engine.coll.upsert_batch(entities).context("upsert_batch")?;
    Ok(())
}

/// A search's answer before it is mapped back to base rows ([`hits_to_rows`]): what the
/// engine returns to its users (their ids), so that timed loops can leave the harness's
/// id-to-row lookups out, as a peer's timing does (its labels are the rows).
pub type Hits = Vec<hybridb::Hit>;

/// Maps hits back to base rows.
pub fn hits_to_rows(engine: &Engine, hits: Hits) -> Result<Vec<usize>> {
    hits.into_iter()
        .map(|h| {
            engine
                .rows()
                .get(&h.id)
                .map(|&r| r as usize)
                .with_context(|| format!("search returned unknown id {:?}", h.id))
        })
        .collect()
}

/// Approximate top-`k` hits for `q`, best first (`oversampling`: candidates per result a
/// quantized index rescores).
pub fn search_hits(
    engine: &Engine,
    q: &[f32],
    k: usize,
    ef: usize,
    oversampling: f32,
) -> Result<Hits> {
    engine
        .coll
        .search_with(
            &SearchRequest::new(q.to_vec(), k)
                .ef(ef)
                .oversampling(oversampling),
        )
        .context("search")
}

/// Approximate top-`k` rows for `q`, best first: [`search_hits`] then [`hits_to_rows`].
pub fn search(
    engine: &Engine,
    q: &[f32],
    k: usize,
    ef: usize,
    oversampling: f32,
) -> Result<Vec<usize>> {
    hits_to_rows(engine, search_hits(engine, q, k, ef, oversampling)?)
}

/// Microseconds one stored vector takes to read from redb during a search: searches for
/// `fetch` hits of each query in `queries` (flat, `dim` each), with and without their stored
/// vectors, best of 3 each; the difference per hit. What rescoring would pay per candidate
/// if the f32 originals were read from the file instead of memory (read caches are off).
pub fn vector_read_micros(engine: &Engine, queries: &[f32], fetch: usize) -> Result<f64> {
    let run = |with_vector: bool| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            for q in queries.chunks_exact(engine.dim) {
                let req = SearchRequest::new(q.to_vec(), fetch).with_vector(with_vector);
                std::hint::black_box(engine.coll.search_with(&req).context("search")?);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let without = run(false)?;
    let with = run(true)?;
    let n = (queries.len() / engine.dim).max(1) * fetch.max(1);
    Ok(((with - without) * 1e6 / n as f64).max(0.0))
}

/// Exact top-`k` rows for `q`, best first (the collection must use the flat index).
pub fn exact_search(engine: &Engine, q: &[f32], k: usize) -> Result<Vec<usize>> {
    let hits = engine.coll.search(q, k).context("exact search")?;
    hits_to_rows(engine, hits)
}

/// Bytes the collection's in-memory index holds (vectors, graph, slot table).
pub fn index_bytes(engine: &Engine) -> usize {
    engine.coll.index_memory_bytes()
}

/// How long reopening took.
#[derive(Debug, Clone, Copy)]
pub struct Reopen {
    /// Seconds from `open` to the first search answered, after a clean close.
    pub clean_s: f64,
    /// Seconds from `open` until the changes replayed then are linked into the graph (the
    /// background linker's work; searches answer from the first moment).
    pub clean_linked_s: f64,
    /// Searches per second answered on one thread while the linker worked (0 if it was done
    /// at the first search).
    pub clean_qps_while_linking: f64,
    /// Whether that open rebuilt the index instead of loading the checkpoint.
    pub clean_rebuilt: bool,
    /// The same for a copy of the files taken while the database was open (a crash image).
    pub crash_s: f64,
    /// Whether the crash-image open rebuilt the index.
    pub crash_rebuilt: bool,
}

/// Copies a file and flushes the copy, so that its write-back does not run during a timed
/// open (it once doubled one).
fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()?;
    Ok(())
}

/// What [`timed_open`] measured.
struct Opened {
    ready_s: f64,
    linked_s: f64,
    qps_while_linking: f64,
    rebuilt: bool,
}

/// Times an open: until the first search answers, and until the replayed changes are linked,
/// searching for rows of `rows` (`dim` each) meanwhile; reports whether the index was rebuilt.
fn timed_open(path: &Path, rows: &[f32], dim: usize) -> Result<Opened> {
    let rebuilt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&rebuilt);
    let t = std::time::Instant::now();
    let db = Database::builder()
        .index_threads(2)
        .checkpoint_every(0, std::time::Duration::ZERO)
        .checkpoint_on_close(false)
        .on_rebuild_progress(move |_| flag.store(true, std::sync::atomic::Ordering::Relaxed))
        .open(path)?;
    let coll = db.collection("bench")?;
    coll.search(&rows[..dim], 10)?;
    let ready_s = t.elapsed().as_secs_f64();
    let mut searches = 0usize;
    while coll.unlinked_count() > 0 {
        let row = (searches * 7919) % (rows.len() / dim);
        coll.search(&rows[row * dim..(row + 1) * dim], 10)?;
        searches += 1;
    }
    let linked_s = t.elapsed().as_secs_f64();
    Ok(Opened {
        ready_s,
        linked_s,
        qps_while_linking: searches as f64 / (linked_s - ready_s).max(1e-9),
        rebuilt: rebuilt.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Measures reopening: checkpoints, applies `later_writes` upserts of existing rows (their
/// vectors nudged, so that replay has real work), then times two opens: of the files after a
/// clean close (no close-time checkpoint, so the later writes are replayed), and of a copy
/// taken while the database was open (what a crash leaves; redb repairs, then the same replay).
pub fn reopen_after_writes(
    engine: Engine,
    dir: &Path,
    later_writes: usize,
    sample: &[f32],
) -> Result<Reopen> {
    engine.db.checkpoint().context("checkpoint")?;
    let dim = engine.dim;
    let mut by_row: Vec<(u32, EntityId)> = engine.rows().iter().map(|(id, r)| (*r, *id)).collect();
    by_row.sort();
    for chunk in by_row
        .iter()
        .take(later_writes)
        .collect::<Vec<_>>()
        .chunks(1000)
    {
        let batch = chunk
            .iter()
            .map(|(row, id)| {
                let mut v = sample[(*row as usize % (sample.len() / dim)) * dim..][..dim].to_vec();
                v[0] += 1e-3;
                Entity::new(*id, serde_json::json!({"row": row, "rewritten": true}), v)
            })
            .collect();
        engine.coll.upsert_batch(batch).context("later writes")?;
    }
    engine.db.sync()?;
    let src = dir.join("bench.redb");
    let copy_dir = dir.join("crash-image");
    std::fs::create_dir_all(&copy_dir)?;
    let crash = copy_dir.join("bench.redb");
    copy_synced(&src, &crash)?;
    let (src_idx, dst_idx) = (
        dir.join("bench.redb.index"),
        copy_dir.join("bench.redb.index"),
    );
    std::fs::create_dir_all(&dst_idx)?;
    for f in std::fs::read_dir(&src_idx)? {
        let f = f?;
        copy_synced(&f.path(), &dst_idx.join(f.file_name()))?;
    }
    drop(engine);
    let clean = timed_open(&src, sample, dim)?;
    let crash = timed_open(&crash, sample, dim)?;
    Ok(Reopen {
        clean_s: clean.ready_s,
        clean_linked_s: clean.linked_s,
        clean_qps_while_linking: clean.qps_while_linking,
        clean_rebuilt: clean.rebuilt,
        crash_s: crash.ready_s,
        crash_rebuilt: crash.rebuilt,
    })
}
