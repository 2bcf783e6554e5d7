//! JSON-line records printed by the subcommands.
//!
//! [`AnnRecord`] has exactly the fields, in the same order and with the same rounding, as the
//! lines printed by `shared/bench/peers.py`, so both outputs can be concatenated and compared.

use serde::Serialize;

/// Rounds to `digits` decimal places, like Python's `round` for reporting purposes.
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// One ANN result line (one per `ef`), schema of peers.py.
#[derive(Clone, Debug, Serialize)]
pub struct AnnRecord {
    /// Engine name (`"hybridb"` for the real engine).
    pub engine: String,
    /// Name of the base file's parent folder.
    pub dataset: String,
    /// Number of base vectors.
    pub n: usize,
    /// Vector dimension.
    pub dim: usize,
    /// Metric name as peers.py writes it (`l2`, `cosine`, `ip`).
    pub metric: String,
    /// HNSW links per node.
    pub m: usize,
    /// HNSW build candidate list size.
    pub ef_construction: usize,
    /// Threads used to build.
    pub build_threads: usize,
    /// Load + build time in seconds (3 decimals).
    pub build_s: f64,
    /// Search candidate list size requested.
    pub ef: usize,
    /// Neighbours per query.
    pub k: usize,
    /// Mean recall@k (4 decimals).
    pub recall: f64,
    /// Queries per second on one thread, best of the repeats (1 decimal).
    pub qps: f64,
    /// Codes the walk ranked by (`none`: f32). Fields from here on are hybridb's own (not in
    /// peers.py's lines).
    pub quantization: String,
    /// Candidates per result rescored with f32 (1 without quantization).
    pub oversampling: f64,
    /// Bytes of the resident index: codes, graph and the in-memory f32 vectors.
    pub index_bytes: u64,
    /// Resident set size of the process when the row was measured.
    pub rss_bytes: u64,
    /// Where the f32 originals were (`memory`, or `file`: mapped, page cache).
    pub originals: String,
    /// The part of `rss_bytes` that is the process's own memory (`RssAnon`: not file pages).
    pub rss_anon_bytes: u64,
}

/// The `exact` subcommand's line: exact-search throughput against the memory-bandwidth ceiling.
#[derive(Clone, Debug, Serialize)]
pub struct ExactRecord {
    /// Always `"exact"`.
    pub bench: &'static str,
    /// Engine that served the searches.
    pub engine: String,
    /// Number of base vectors.
    pub n: usize,
    /// Vector dimension.
    pub dim: usize,
    /// Queries per second on one thread.
    pub qps: f64,
    /// Vector bytes a full scan reads per query (`n * dim * 4`).
    pub bytes_per_query: usize,
    /// `qps * bytes_per_query`, in GB/s (10^9 bytes).
    pub achieved_gbps: f64,
    /// Measured single-thread read bandwidth, GB/s.
    pub bandwidth_gbps: f64,
    /// `achieved_gbps / bandwidth_gbps`.
    pub fraction: f64,
}

/// The `load` subcommand's line.
#[derive(Clone, Debug, Serialize)]
pub struct LoadRecord {
    /// Always `"load"`.
    pub bench: &'static str,
    /// Engine that stored the entities.
    pub engine: String,
    /// Entities loaded.
    pub n: usize,
    /// Vector dimension.
    pub dim: usize,
    /// Entities per `upsert_batch` call.
    pub batch: usize,
    /// `none` or `immediate`.
    pub durability: &'static str,
    /// Wall time of all upserts, seconds.
    pub seconds: f64,
    /// Entities per second.
    pub entities_per_s: f64,
}

/// Prints a record as one JSON line on stdout.
pub fn emit<T: Serialize>(record: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, record)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ann_record_has_peers_fields_in_order_then_its_own() {
        let r = AnnRecord {
            engine: "hybridb".into(),
            dataset: "bigann10k".into(),
            n: 9900,
            dim: 128,
            metric: "l2".into(),
            m: 16,
            ef_construction: 200,
            build_threads: 1,
            build_s: round(1.23456, 3),
            ef: 10,
            k: 10,
            recall: round(0.912_345, 4),
            qps: round(12_345.67, 1),
            quantization: "rq2".into(),
            oversampling: 2.0,
            index_bytes: 1000,
            rss_bytes: 2000,
            originals: "file".into(),
            rss_anon_bytes: 1500,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"engine":"hybridb","dataset":"bigann10k","n":9900,"dim":128,"metric":"l2","m":16,"ef_construction":200,"build_threads":1,"build_s":1.235,"ef":10,"k":10,"recall":0.9123,"qps":12345.7,"quantization":"rq2","oversampling":2.0,"index_bytes":1000,"rss_bytes":2000,"originals":"file","rss_anon_bytes":1500}"#
        );
    }
}
