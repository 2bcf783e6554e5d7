//! `hybridb-bench`: command-line entry point. See the crate docs of `hybridb_bench`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use hybridb_bench::bm25dump::{Bm25DumpArgs, run_bm25_dump};
use hybridb_bench::cache::{CacheArgs, run_cache};
use hybridb_bench::commands::{self, AnnArgs, ExactArgs, GenArgs, LoadArgs};
use hybridb_bench::filtered::{FilteredArgs, run_filtered};
use hybridb_bench::hybrid::{HybridArgs, run_hybrid};
use hybridb_bench::named::{NamedArgs, run_named};
use hybridb_bench::quant::{QuantArgs, run_quant};
use hybridb_bench::rqcost::{RqCostArgs, run_rq_cost};
use hybridb_bench::sparse::{SparseArgs, run_sparse};
use hybridb_bench::text::{TextArgs, run_text};
use hybridb_bench::writes::{WritesArgs, run_writes};

/// Benchmarks for hybridb; results are printed as JSON lines on stdout.
#[derive(Parser, Debug)]
#[command(name = "hybridb-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate clustered synthetic data with exact top-100 ground truth (texmex files).
    Gen(GenArgs),
    /// Recall and single-thread QPS of ANN search per ef, in the schema of peers.py.
    Ann(AnnArgs),
    /// Single-thread exact-search throughput against the memory-bandwidth ceiling.
    Exact(ExactArgs),
    /// Load throughput (entities/s) through upsert_batch.
    Load(LoadArgs),
    /// Filtered search: recall and QPS per selectivity against an exact subset scan and HNSW
    /// with a filter callback.
    Filtered(FilteredArgs),
    /// Single-entity upsert throughput and latency from concurrent callers (group commit).
    Writes(WritesArgs),
    /// Read caches off against on: hot-key gets and repeated searches, with the exported
    /// metrics.
    Cache(CacheArgs),
    /// Sparse-vector index: pruned (MaxScore) top-k against an exhaustive scan on SPLADE-like
    /// vectors from a real corpus, plain and filtered.
    Sparse(SparseArgs),
    /// Exact scans over quantized codes (SQ8, rotated 1/2/4-bit) against the f32 scan: recall
    /// with and without rescoring an oversampled list, QPS, resident bytes.
    Quant(QuantArgs),
    /// What the rotated codes cost to make: encoding, rotation and query preparation times,
    /// and each code's cosine to its vector (saved, or compared with another build's).
    RqCost(RqCostArgs),
    /// Named vectors: a search on one named vector of a three-vector collection against the
    /// same search on a one-vector collection (same data, interleaved rounds).
    Named(NamedArgs),
    /// Writes analyzed documents, queries and hybridb's BM25 top-100 for an outside check
    /// (`scripts/bm25/check-reference.sh`).
    Bm25Dump(Bm25DumpArgs),
    /// BM25 on a labeled query set: nDCG@10, recall@100, pruned vs exhaustive QPS.
    Text(TextArgs),
    /// Dense + BM25 through the query API on a labeled query set: each retriever alone, RRF
    /// and DBSF fusions, MMR; quality, QPS, and the cost of fusion and MMR over their stages.
    Hybrid(HybridArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Gen(a) => commands::run_gen(&a),
        Command::Ann(a) => commands::run_ann(&a),
        Command::Exact(a) => commands::run_exact(&a),
        Command::Load(a) => commands::run_load(&a),
        Command::Writes(a) => run_writes(&a),
        Command::Filtered(a) => run_filtered(&a),
        Command::Cache(a) => run_cache(&a),
        Command::Sparse(a) => run_sparse(&a),
        Command::Quant(a) => run_quant(&a),
        Command::RqCost(a) => run_rq_cost(&a),
        Command::Named(a) => run_named(&a),
        Command::Bm25Dump(a) => run_bm25_dump(&a),
        Command::Text(a) => run_text(&a),
        Command::Hybrid(a) => run_hybrid(&a),
    }
}
