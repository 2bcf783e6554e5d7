//! Benchmark runner for hybridb: synthetic datasets with exact ground truth, texmex I/O, recall,
//! and throughput measurements, reported as JSON lines comparable with `shared/bench/peers.py`.
//!
//! Engine calls go through [`engine`], except [`writes`], which needs the writer's options.

#![warn(missing_docs)]

pub mod bandwidth;
pub mod bm25dump;
pub mod cache;
pub mod commands;
pub mod engine;
pub mod filtered;
pub mod groundtruth;
pub mod hybrid;
pub mod labeled;
pub mod metric;
pub mod named;
pub mod quant;
pub mod recall;
pub mod report;
pub mod rqcost;
pub mod sparse;
pub mod synth;
#[cfg(feature = "tantivy-peer")]
pub mod tantivy_peer;
pub mod text;
pub mod topk;
pub mod vecs;
pub mod writes;
