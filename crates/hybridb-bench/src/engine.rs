//! The only place where the benchmark talks to a storage/search engine.
//!
//! Every subcommand goes through the functions re-exported here: [`open`], [`upsert_batch`],
//! [`build`], [`search`] and [`exact_search`], implemented in `engine/hybridb.rs` over the
//! hybridb library.
//!
//! Row identity: the engine is handed rows in order with their row index; results come back as
//! row indices into the base set, best first.

use std::path::Path;

use anyhow::{Result, ensure};
use clap::ValueEnum;

use crate::metric::Metric;
use crate::vecs::Vecs;

#[path = "engine/hybridb.rs"]
mod backend;

pub use backend::{
    ENGINE_NAME, Engine, Hits, Reopen, exact_search, hits_to_rows, index_bytes, open, quantization,
    reopen_after_writes, search, search_hits, upsert_batch, vector_read_micros,
};

/// When a write is considered done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// Commit without waiting for the disk.
    None,
    /// Every batch is on disk (fsync) before the call returns.
    Immediate,
}

impl Durability {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Immediate => "immediate",
        }
    }
}

/// Which index the collection keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IndexKind {
    /// Approximate search with an HNSW graph.
    Hnsw,
    /// Exact search by scanning every vector.
    Flat,
}

/// Codes the HNSW walk ranks by (hybridb's `Quantization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Quant {
    /// `f32` vectors only.
    None,
    /// 8 bits per dimension.
    Sq8,
    /// Rotated 1-bit codes.
    Rq1,
    /// Rotated 2-bit codes.
    Rq2,
    /// Rotated 4-bit codes.
    Rq4,
}

impl Quant {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Quant::None => "none",
            Quant::Sq8 => "sq8",
            Quant::Rq1 => "rq1",
            Quant::Rq2 => "rq2",
            Quant::Rq4 => "rq4",
        }
    }
}

/// Where a quantized index keeps its `f32` originals (hybridb's `Originals`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// A mapped file beside the database (page cache, not the process's memory).
    File,
    /// The process's memory.
    Memory,
}

impl Placement {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Placement::File => "file",
            Placement::Memory => "memory",
        }
    }
}

/// Everything needed to create a benchmark collection.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Similarity metric.
    pub metric: Metric,
    /// Vector dimension.
    pub dim: usize,
    /// Index kind.
    pub index: IndexKind,
    /// HNSW: links per node.
    pub m: usize,
    /// HNSW: candidate list size while building.
    pub ef_construction: usize,
    /// Threads allowed to build the index.
    pub build_threads: usize,
    /// Write durability.
    pub durability: Durability,
    /// redb page cache, MiB.
    pub cache_mb: usize,
    /// HNSW: codes the walk ranks by.
    pub quantization: Quant,
    /// Where a quantized index keeps its originals.
    pub originals: Placement,
}

impl EngineConfig {
    /// A configuration with the benchmark defaults (HNSW, M 16, ef_construction 200,
    /// 1 build thread, no durability).
    pub fn new(metric: Metric, dim: usize) -> Self {
        Self {
            metric,
            dim,
            index: IndexKind::Hnsw,
            m: 16,
            ef_construction: 200,
            build_threads: 1,
            durability: Durability::None,
            cache_mb: 256,
            quantization: Quant::None,
            originals: Placement::File,
        }
    }
}

/// Opens a fresh collection in `dir` and loads every row of `base` in batches of `batch`
/// rows through [`upsert_batch`] (row `i` gets row index `i`).
pub fn build(dir: &Path, config: &EngineConfig, base: &Vecs<f32>, batch: usize) -> Result<Engine> {
    ensure!(
        base.dim == config.dim,
        "base has dimension {}, collection expects {}",
        base.dim,
        config.dim
    );
    ensure!(batch > 0, "batch size must be positive");
    let mut engine = open(dir, config)?;
    for (b, chunk) in base.data.chunks(batch * base.dim).enumerate() {
        upsert_batch(&mut engine, b * batch, chunk)?;
    }
    Ok(engine)
}
