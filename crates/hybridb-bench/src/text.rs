//! `text`: the BM25 index on a labeled query set — quality (nDCG@10 with binary gains, recall
//! @100, the scoring of `../shared/data/pydoc/README.md`) and single-thread QPS of the pruned
//! (MaxScore) search against the exhaustive scan, for each analyzer asked for.
//!
//! With `--analyzer word` (lowercase `\w+`, no stemming: the reference's tokens) the quality
//! must reproduce the reference BM25 numbers of the data set's README. With `--dense-base` and
//! `--dense-queries` it also scores the exact dense top 100 (inner product) and the RRF
//! (k = 60) of dense and BM25, as the README's hybrid reference does.
//!
//! With `--peer tantivy` (a build with the cargo feature `tantivy-peer`) it also runs tantivy on
//! the same documents and queries with hybridb's own tokens, and reports both engines' top-k
//! QPS and their agreement (see `tantivy_peer`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use clap::{Args, ValueEnum};
use hybridb::index::bm25::{Bm25Index, Bm25Params};
use hybridb::index::text::{Analyzer, Language, Tokenizer};
use serde::Serialize;

use crate::labeled::{mean_quality, quality, read_labeled};
use crate::report::{emit, round};
use crate::sparse::read_corpus;

/// Analyzers `text` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzerArg {
    /// Lowercase runs of letters, digits and `_` (the reference's tokens).
    Word,
    /// Unicode word boundaries, lowercase.
    Unicode,
    /// Unicode words, English stop words removed, English Snowball stems.
    English,
}

impl AnalyzerArg {
    fn analyzer(self) -> Analyzer {
        match self {
            AnalyzerArg::Word => Analyzer::new(Tokenizer::Word),
            AnalyzerArg::Unicode => Analyzer::new(Tokenizer::Unicode),
            AnalyzerArg::English => Analyzer::new(Tokenizer::Unicode)
                .with_stop_words(Language::English)
                .with_stemming(Language::English),
        }
    }

    fn name(self) -> &'static str {
        match self {
            AnalyzerArg::Word => "word",
            AnalyzerArg::Unicode => "unicode",
            AnalyzerArg::English => "english",
        }
    }
}

/// Peer engines `text` can compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PeerArg {
    /// tantivy (needs a build with the `tantivy-peer` feature).
    Tantivy,
}

/// Arguments of `text`.
#[derive(Args, Debug)]
pub struct TextArgs {
    /// The corpus: JSON lines (optionally gzipped) with a `text` field per row.
    #[arg(long, default_value = "../shared/data/pydoc/corpus.jsonl.gz")]
    pub corpus: PathBuf,
    /// Labeled queries: JSON lines `{"query", "relevant": [row ids]}` (optionally gzipped).
    #[arg(long, default_value = "../shared/data/pydoc/section_queries.jsonl.gz")]
    pub labeled: PathBuf,
    /// Analyzers to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![AnalyzerArg::Word, AnalyzerArg::English])]
    pub analyzer: Vec<AnalyzerArg>,
    /// BM25 k1.
    #[arg(long, default_value_t = 1.2)]
    pub k1: f32,
    /// BM25 b.
    #[arg(long, default_value_t = 0.75)]
    pub b: f32,
    /// Base vectors of the corpus rows, for the dense and RRF lines (optional).
    #[arg(long)]
    pub dense_base: Option<PathBuf>,
    /// The labeled queries' vectors, same order (with `--dense-base`).
    #[arg(long)]
    pub dense_queries: Option<PathBuf>,
    /// Also run a peer engine on the same tokens (top-`--peer-k` QPS and agreement).
    #[arg(long, value_enum)]
    pub peer: Option<PeerArg>,
    /// Results per query of the peer comparison.
    #[arg(long, default_value_t = 10)]
    pub peer_k: usize,
    /// Timing rounds of the peer comparison (interleaved; each chunk's best round counts).
    #[arg(long, default_value_t = 20)]
    pub peer_rounds: usize,
}

/// One result line of `text`.
#[derive(Debug, Serialize)]
struct TextRecord {
    bench: &'static str,
    method: &'static str,
    analyzer: &'static str,
    n: usize,
    queries: usize,
    build_s: f64,
    ndcg_at_10: f64,
    recall_at_100: f64,
    /// Share of queries whose pruned top 100 equals the scan's.
    agreement: f64,
    qps_pruned: f64,
    qps_exhaustive: f64,
    speedup: f64,
}

/// One quality-only result line (dense, fusion).
#[derive(Debug, Serialize)]
struct QualityRecord {
    bench: &'static str,
    method: String,
    queries: usize,
    ndcg_at_10: f64,
    recall_at_100: f64,
}

/// Exact top 100 by inner product for every query.
fn dense_top100(base: &std::path::Path, queries: &std::path::Path) -> Result<Vec<Vec<(u32, f32)>>> {
    let base = crate::vecs::read_vectors(base)?;
    let queries = crate::vecs::read_vectors(queries)?;
    ensure!(
        base.dim == queries.dim,
        "dense base and queries differ in dimension"
    );
    let dot = hybridb::index::distance::kernels().dot;
    Ok(queries
        .rows()
        .map(|q| {
            let mut top = crate::topk::TopK::new(100);
            for (row, v) in base.rows().enumerate() {
                top.push(-dot(q, v), row as u32);
            }
            top.into_sorted_rows()
                .into_iter()
                .map(|r| (r, dot(q, base.row(r as usize))))
                .collect()
        })
        .collect())
}

/// Runs the benchmark: one JSON line per analyzer (and the dense and fusion lines).
pub fn run_text(a: &TextArgs) -> Result<()> {
    let corpus = read_corpus(&a.corpus)?;
    let labeled = read_labeled(&a.labeled)?;
    let dense = match (&a.dense_base, &a.dense_queries) {
        (Some(b), Some(q)) => {
            let lists = dense_top100(b, q)?;
            ensure!(
                lists.len() == labeled.len(),
                "dense queries and labeled queries differ in number"
            );
            let (ndcg, recall) = mean_quality(&lists, &labeled);
            emit(&QualityRecord {
                bench: "text",
                method: "dense".into(),
                queries: labeled.len(),
                ndcg_at_10: ndcg,
                recall_at_100: recall,
            })?;
            Some(lists)
        }
        (None, None) => None,
        _ => anyhow::bail!("--dense-base and --dense-queries go together"),
    };
    for &which in &a.analyzer {
        let analyzer = which.analyzer();
        let t = Instant::now();
        let docs: Vec<Vec<String>> = corpus.iter().map(|(t, _)| analyzer.terms(t)).collect();
        let analyze_s = t.elapsed().as_secs_f64();
        let params = Bm25Params { k1: a.k1, b: a.b };
        let t = Instant::now();
        let mut index = Bm25Index::new(params);
        for (slot, terms) in docs.iter().enumerate() {
            index.insert(slot as u32, terms);
        }
        let index_s = t.elapsed().as_secs_f64();
        // Analysis and indexing, as before the peer comparison split them.
        let build_s = analyze_s + index_s;
        let queries: Vec<Vec<String>> = labeled.iter().map(|l| analyzer.terms(&l.query)).collect();
        if let Some(peer) = a.peer {
            run_peer(
                peer,
                a,
                which.name(),
                &docs,
                &queries,
                &index,
                params,
                index_s,
            )?;
        }
        let all = |_: u32| true;
        let t = Instant::now();
        let pruned: Vec<_> = queries.iter().map(|q| index.search(q, 100, &all)).collect();
        let pruned_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let scanned: Vec<_> = queries
            .iter()
            .map(|q| index.search_exhaustive(q, 100, &all))
            .collect();
        let scan_s = t.elapsed().as_secs_f64();
        let n = labeled.len() as f64;
        let (mut ndcg, mut recall) = (0.0, 0.0);
        for (ranked, l) in pruned.iter().zip(&labeled) {
            let (d, r) = quality(ranked, &l.relevant);
            ndcg += d;
            recall += r;
        }
        let agree = pruned.iter().zip(&scanned).filter(|(p, s)| p == s).count();
        if let Some(dense) = &dense {
            // RRF over the two top-100 lists, in hybridb's fusion module (ids: the row numbers).
            let as_ids = |l: &Vec<(u32, f32)>| -> Vec<(hybridb::EntityId, f32)> {
                l.iter()
                    .map(|&(r, s)| (hybridb::EntityId::from_u128(u128::from(r)), s))
                    .collect()
            };
            let fused: Vec<Vec<(u32, f32)>> = dense
                .iter()
                .zip(&pruned)
                .map(|(d, t)| {
                    hybridb::fusion::rrf(&[&as_ids(d), &as_ids(t)], None, 60.0, 100)
                        .into_iter()
                        .map(|(id, s)| (id.as_uuid().as_u128() as u32, s))
                        .collect()
                })
                .collect();
            let (ndcg, recall) = mean_quality(&fused, &labeled);
            emit(&QualityRecord {
                bench: "text",
                method: format!("rrf(dense, bm25-{})", which.name()),
                queries: labeled.len(),
                ndcg_at_10: ndcg,
                recall_at_100: recall,
            })?;
        }
        emit(&TextRecord {
            bench: "text",
            method: "bm25",
            analyzer: which.name(),
            n: corpus.len(),
            queries: labeled.len(),
            build_s: round(build_s, 3),
            ndcg_at_10: round(ndcg / n, 4),
            recall_at_100: round(recall / n, 4),
            agreement: round(agree as f64 / n, 4),
            qps_pruned: round(n / pruned_s, 1),
            qps_exhaustive: round(n / scan_s, 1),
            speedup: round(scan_s / pruned_s, 2),
        })?;
    }
    Ok(())
}

/// Runs the peer comparison of one analyzer.
#[allow(clippy::too_many_arguments)]
fn run_peer(
    peer: PeerArg,
    a: &TextArgs,
    analyzer: &'static str,
    docs: &[Vec<String>],
    queries: &[Vec<String>],
    index: &Bm25Index,
    params: Bm25Params,
    build_s: f64,
) -> Result<()> {
    match peer {
        #[cfg(feature = "tantivy-peer")]
        PeerArg::Tantivy => crate::tantivy_peer::compare(&crate::tantivy_peer::PeerInput {
            analyzer,
            docs,
            queries,
            index,
            params,
            build_s,
            k: a.peer_k,
            rounds: a.peer_rounds,
            chunk: 50,
        }),
        #[cfg(not(feature = "tantivy-peer"))]
        PeerArg::Tantivy => {
            let _ = (a, analyzer, docs, queries, index, params, build_s);
            anyhow::bail!(
                "--peer tantivy needs a build with the tantivy-peer feature \
                 (cargo run --release -p hybridb-bench --features tantivy-peer -- text ...)"
            )
        }
    }
}
