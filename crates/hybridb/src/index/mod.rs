//! Vector search: distance kernels and the in-memory vector stores searched by the engine.

pub mod distance;
pub mod hnsw;
