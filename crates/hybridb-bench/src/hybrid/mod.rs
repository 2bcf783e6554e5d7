//! `hybrid`: dense + BM25 retrieval through the engine's query API on a labeled query set —
//! quality (nDCG@10, recall@100) and single-thread QPS of each retriever alone, of their
//! fusions (RRF with several `k` and weights, DBSF) and of MMR over the dense search, plus the
//! cost checks of issue 19: a two-prefetch RRF query against the sum of its two stages run
//! alone (target <= 1.1x), and MMR over 100 candidates against the dense search it diversifies
//! (target <= 1.2x).
//!
//! One real collection: each corpus row becomes an entity (id = row + 1) with payload
//! `{"text": paragraph}` under a BM25 text index (English analyzer by default) and the row's
//! vector of `--base` as its default vector (dot product; the MiniLM vectors are unit length).
//! Caches are off, so every query searches. Timings are single-thread, interleaved in one
//! process, best of `--rounds` per chunk of queries (see `work.rs`); `query_explain` runs in
//! the same rounds to split each composite query's time by stage. Timed baselines locate the
//! cost: the bare `Bm25Index` (the engine's text structure, same analyzer, held by the
//! benchmark); the dense and the text query as two separate calls per query, and with
//! `hybridb::fusion::rrf` on top (RRF done by a client); `get_many` of the 100 records a
//! client's MMR reads (the engine's MMR takes the vectors from its in-memory index), MMR's
//! arithmetic alone (`hybridb::fusion::mmr` over the same vectors held in the benchmark's
//! memory), and the three as client calls (MMR done by a client).
//!
//! Output: a `hybrid-load` line; one `hybrid` line per method (nDCG@10, recall@100 where the
//! list is 100 long, the paired nDCG@10 difference to plain RRF k = 60 with its standard
//! error, QPS); `hybrid-cost` lines (ratio and target); `hybrid-explain` lines (per stage).

mod work;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use clap::{Args, ValueEnum};
use hybridb::index::bm25::{Bm25Index, Bm25Params};
use hybridb::index::text::{Analyzer, Language, Tokenizer};
use hybridb::{
    CacheSizes, CollectionConfig, Database, Entity, EntityId, Fusion, Metric, Query, Stage,
    TextIndexConfig, TextTokenizer,
};
use serde::Serialize;

use crate::labeled::{Labeled, paired_difference, per_query, read_labeled};
use crate::report::{emit, round};
use crate::sparse::read_corpus;
use crate::vecs::{Vecs, read_vectors};
use work::{Ctx, Work, row_of, run, time_interleaved};

/// Text analyzers `hybrid` can index with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HybridAnalyzer {
    /// `TextIndexConfig::english()`: Unicode words, English stop words and Snowball stems.
    English,
    /// Lowercase `\w+` words, no stop words, no stems (the data set's reference tokens).
    Word,
}

impl HybridAnalyzer {
    fn config(self) -> TextIndexConfig {
        match self {
            HybridAnalyzer::English => TextIndexConfig::english(),
            HybridAnalyzer::Word => TextIndexConfig {
                tokenizer: TextTokenizer::Word,
                ..TextIndexConfig::default()
            },
        }
    }

    /// The same analysis as a bare `Analyzer` (for the index-level baseline).
    fn analyzer(self) -> Analyzer {
        match self {
            HybridAnalyzer::English => Analyzer::new(Tokenizer::Unicode)
                .with_stop_words(Language::English)
                .with_stemming(Language::English),
            HybridAnalyzer::Word => Analyzer::new(Tokenizer::Word),
        }
    }

    fn name(self) -> &'static str {
        match self {
            HybridAnalyzer::English => "english",
            HybridAnalyzer::Word => "word",
        }
    }
}

/// Arguments of `hybrid`.
#[derive(Args, Debug)]
pub struct HybridArgs {
    /// The corpus: JSON lines (optionally gzipped) with a `text` field per row.
    #[arg(long, default_value = "../shared/data/pydoc/corpus.jsonl.gz")]
    pub corpus: PathBuf,
    /// The corpus rows' vectors (.fvecs), same order.
    #[arg(long, default_value = "../shared/data/pydoc/base.fvecs")]
    pub base: PathBuf,
    /// Labeled queries: JSON lines `{"query", "relevant": [row ids]}` (optionally gzipped).
    #[arg(long, default_value = "../shared/data/pydoc/section_queries.jsonl.gz")]
    pub labeled: PathBuf,
    /// The labeled queries' vectors (.fvecs), same order.
    #[arg(long, default_value = "../shared/data/pydoc/section_queries.fvecs")]
    pub queries: PathBuf,
    /// The text index's analyzer.
    #[arg(long, value_enum, default_value_t = HybridAnalyzer::English)]
    pub analyzer: HybridAnalyzer,
    /// Depth of each retriever's list (the prefetch limit) and of the scored lists.
    #[arg(long, default_value_t = 100)]
    pub depth: usize,
    /// MMR: candidates diversified.
    #[arg(long, default_value_t = 100)]
    pub mmr_candidates: usize,
    /// MMR: diversity (0: relevance only, 1: diversity only).
    #[arg(long, default_value_t = 0.5)]
    pub diversity: f32,
    /// HNSW search effort (default: the collection's, raised to the list depth).
    #[arg(long)]
    pub ef: Option<usize>,
    /// Timing rounds (interleaved; each method's best round per chunk counts).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Queries per timing chunk.
    #[arg(long, default_value_t = 50)]
    pub chunk: usize,
    /// Keep the record and vector caches on (result cache still off), as a server runs.
    #[arg(long)]
    pub entity_caches: bool,
}

/// The setup line.
#[derive(Debug, Serialize)]
struct SetupRecord {
    bench: &'static str,
    n: usize,
    dim: usize,
    queries: usize,
    analyzer: &'static str,
    load_s: f64,
    /// The distance kernels' instruction set.
    isa: &'static str,
    entity_caches: bool,
    rounds: usize,
    chunk: usize,
    /// Labeled queries whose BM25 list ties across the cut at `--depth` (the document after
    /// the last one scores the same); the engine's text search searches such a query again
    /// with a doubled depth, so that ties are broken by id.
    text_ties_at_depth: usize,
}

/// One method's line: quality and single-thread QPS.
#[derive(Debug, Serialize)]
struct MethodRecord {
    bench: &'static str,
    method: String,
    limit: usize,
    ndcg_at_10: Option<f64>,
    /// Only for lists at least 100 long.
    recall_at_100: Option<f64>,
    /// Mean paired difference of nDCG@10 against plain RRF (k = 60), and its standard error.
    ndcg_vs_rrf60: Option<f64>,
    ndcg_vs_rrf60_se: Option<f64>,
    qps: f64,
    us_per_query: f64,
}

/// One cost check: a composite query's time against its parts'.
#[derive(Debug, Serialize)]
struct CostRecord {
    bench: &'static str,
    check: &'static str,
    /// The composite query, microseconds per query.
    query_us: f64,
    /// What it is compared with, microseconds per query.
    baseline: BTreeMap<String, f64>,
    baseline_us: f64,
    ratio: f64,
    target: f64,
    pass: bool,
}

/// The per-stage split of one method's time, from `query_explain`.
#[derive(Debug, Serialize)]
struct ExplainRecord {
    bench: &'static str,
    method: String,
    /// Wall time of the `query_explain` calls, microseconds per query.
    wall_us: f64,
    /// Each stage's reported time (`depth:stage`, prefetches excluded), microseconds per query.
    stages: BTreeMap<String, f64>,
    /// `wall_us` minus the stages: the executor's own time (checks, candidate sets, hits).
    outside_stages_us: f64,
}

/// A method: its name, its work, the length of its answer, and whether it is scored.
struct Method {
    name: String,
    work: Work,
    limit: usize,
    scored: bool,
}

/// Writes the corpus into a fresh collection; returns the database (keep it alive), the
/// collection and the seconds the load took.
fn load(
    a: &HybridArgs,
    dir: &std::path::Path,
    texts: &[(String, String)],
    base: &Vecs<f32>,
) -> Result<(Database, hybridb::Collection, f64)> {
    let caches = if a.entity_caches {
        CacheSizes {
            results: 0,
            ..CacheSizes::default()
        }
    } else {
        CacheSizes::OFF
    };
    let db = Database::builder()
        .caches(caches)
        .open(dir.join("hybrid.redb"))?;
    let config = CollectionConfig::new(base.dim as u32, Metric::Dot)
        .with_text_index("text", a.analyzer.config());
    let coll = db.create_collection("docs", config)?;
    let t = Instant::now();
    for start in (0..texts.len()).step_by(1000) {
        let batch: Vec<Entity> = (start..(start + 1000).min(texts.len()))
            .map(|i| {
                Entity::new(
                    EntityId::from_u128(i as u128 + 1),
                    serde_json::json!({ "text": texts[i].0 }),
                    base.row(i).to_vec(),
                )
            })
            .collect();
        coll.upsert_batch(batch)?;
    }
    while coll.unlinked_count() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok((db, coll, t.elapsed().as_secs_f64()))
}

/// The methods run, in their reporting order.
fn methods(
    a: &HybridArgs,
    labeled: &[Labeled],
    qv: &Vecs<f32>,
    dense_top: &[Vec<EntityId>],
) -> Vec<Method> {
    let d = a.depth;
    let ef = |q: Query| match a.ef {
        Some(ef) => q.ef(ef),
        None => q,
    };
    let dense = |i: usize, k: usize| ef(Query::nearest(qv.row(i).to_vec(), k));
    let text = |i: usize| Query::text("text", labeled[i].query.clone(), d);
    let all = |f: &dyn Fn(usize) -> Query| Work::Query((0..labeled.len()).map(f).collect());
    let fused = |fusion: Fusion| -> Work {
        all(&|i| Query::fuse(vec![dense(i, d), text(i)], fusion.clone()).limit(d))
    };
    let rrf = |k: f32, w: Option<(f32, f32)>| Fusion::Rrf {
        k,
        weights: w.map(|(x, y)| vec![x, y]),
    };
    let m = |name: &str, work: Work, limit: usize, scored: bool| Method {
        name: name.to_string(),
        work,
        limit,
        scored,
    };
    let mmr = all(&|i| {
        ef(Query::new(Stage::Mmr {
            using: String::new(),
            vector: qv.row(i).to_vec(),
            diversity: a.diversity,
            candidates: a.mmr_candidates,
        })
        .limit(10))
    });
    let pairs = || (0..labeled.len()).map(|i| (dense(i, d), text(i))).collect();
    let client_mmr = (0..labeled.len())
        .map(|i| dense(i, a.mmr_candidates))
        .collect();
    let rows = dense_top
        .iter()
        .map(|ids| ids.iter().map(|&id| row_of(id)).collect())
        .collect();
    vec![
        m("dense", all(&|i| dense(i, d)), d, true),
        m("bm25", all(&text), d, true),
        m("rrf(k=60)", fused(Fusion::rrf()), d, true),
        m("rrf(k=10)", fused(rrf(10.0, None)), d, true),
        m("rrf(k=30)", fused(rrf(30.0, None)), d, true),
        m("rrf(k=120)", fused(rrf(120.0, None)), d, true),
        m(
            "rrf(k=60,w=2:1)",
            fused(rrf(60.0, Some((2.0, 1.0)))),
            d,
            true,
        ),
        m(
            "rrf(k=60,w=1.5:1)",
            fused(rrf(60.0, Some((1.5, 1.0)))),
            d,
            true,
        ),
        m(
            "rrf(k=60,w=1:1.5)",
            fused(rrf(60.0, Some((1.0, 1.5)))),
            d,
            true,
        ),
        m("dbsf", fused(Fusion::Dbsf), d, true),
        m("mmr(dense)", mmr, 10, true),
        m("dense(k=10)", all(&|i| dense(i, 10)), 10, true),
        m(
            "bm25 index alone",
            Work::IndexBm25(labeled.iter().map(|l| l.query.clone()).collect(), d),
            d,
            true,
        ),
        m("dense, bm25 as two calls", Work::Pair(pairs()), d, false),
        m(
            "rrf(k=60) by the client",
            Work::ClientRrf(pairs(), d),
            d,
            true,
        ),
        m(
            "get_many(mmr candidates)",
            Work::GetMany(dense_top.to_vec()),
            d,
            false,
        ),
        m("mmr arithmetic alone", Work::MmrCompute(rows), 10, true),
        m("mmr by the client", Work::ClientMmr(client_mmr), 10, true),
    ]
}

/// Runs the benchmark: a setup line, one line per method, the cost checks and the split by
/// stage of every query method.
pub fn run_hybrid(a: &HybridArgs) -> Result<()> {
    ensure!(
        a.rounds > 0 && a.depth > 0 && a.mmr_candidates > 0 && a.chunk > 0,
        "sizes must be positive"
    );
    let texts = read_corpus(&a.corpus)?;
    let base = read_vectors(&a.base)?;
    let labeled = read_labeled(&a.labeled)?;
    let qv = read_vectors(&a.queries)?;
    ensure!(texts.len() == base.len(), "corpus and base differ in rows");
    ensure!(
        labeled.len() == qv.len(),
        "labeled queries and their vectors differ in number"
    );
    ensure!(
        base.dim == qv.dim,
        "base and query vectors differ in dimension"
    );
    let dir = tempfile::tempdir()?;
    let (_db, coll, load_s) = load(a, dir.path(), &texts, &base)?;
    let nq = labeled.len();
    // The candidates MMR diversifies: each query's dense top `mmr_candidates`.
    let mut dense_top = Vec::with_capacity(nq);
    for i in 0..nq {
        let mut q = Query::nearest(qv.row(i).to_vec(), a.mmr_candidates);
        if let Some(ef) = a.ef {
            q = q.ef(ef);
        }
        dense_top.push(coll.query(&q)?.iter().map(|h| h.id).collect::<Vec<_>>());
    }
    let methods = methods(a, &labeled, &qv, &dense_top);
    // The index-level baseline: the engine's BM25 structure without the engine around it.
    let config = a.analyzer.config();
    let mut bm25 = (
        a.analyzer.analyzer(),
        Bm25Index::new(Bm25Params {
            k1: config.k1,
            b: config.b,
        }),
    );
    for (row, (text, _)) in texts.iter().enumerate() {
        let terms = bm25.0.terms(text);
        bm25.1.insert(row as u32, &terms);
    }
    // Queries whose text list ties across its cut: the (depth + 1)-th scores as the depth-th.
    let ties = labeled
        .iter()
        .filter(|l| {
            let found = bm25
                .1
                .search(&bm25.0.terms(&l.query), a.depth + 1, &|_| true);
            found.len() > a.depth && found[a.depth].1 >= found[a.depth - 1].1
        })
        .count();
    emit(&SetupRecord {
        bench: "hybrid-load",
        n: base.len(),
        dim: base.dim,
        queries: nq,
        analyzer: a.analyzer.name(),
        load_s: round(load_s, 2),
        isa: hybridb::index::distance::kernels().isa,
        entity_caches: a.entity_caches,
        rounds: a.rounds,
        chunk: a.chunk,
        text_ties_at_depth: ties,
    })?;
    let ctx = Ctx {
        bm25: &bm25,
        coll: &coll,
        base: &base,
        queries: &qv,
        diversity: a.diversity,
        mmr_limit: 10,
    };
    // Quality (this pass also warms every path).
    let mut scores = Vec::with_capacity(methods.len());
    for m in &methods {
        let lists = run(&ctx, &m.work, 0..nq)?;
        scores.push(m.scored.then(|| per_query(&lists, &labeled)));
    }
    let works: Vec<&Work> = methods.iter().map(|m| &m.work).collect();
    let (secs, splits) = time_interleaved(&ctx, &works, nq, a.rounds, a.chunk)?;
    let index = |name: &str| methods.iter().position(|m| m.name == name).expect("method");
    let us = |name: &str| secs[index(name)] * 1e6 / nq as f64;
    let ndcg = |s: &[(f64, f64)]| s.iter().map(|q| q.0).collect::<Vec<f64>>();
    let default = ndcg(scores[index("rrf(k=60)")].as_deref().expect("scored"));
    let mean = |s: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
        round(s.iter().map(f).sum::<f64>() / s.len() as f64, 4)
    };
    for (i, m) in methods.iter().enumerate() {
        let score = scores[i].as_deref();
        let vs = score.map(|s| paired_difference(&ndcg(s), &default));
        emit(&MethodRecord {
            bench: "hybrid",
            method: m.name.clone(),
            limit: m.limit,
            ndcg_at_10: score.map(|s| mean(s, |q| q.0)),
            recall_at_100: score.filter(|_| m.limit >= 100).map(|s| mean(s, |q| q.1)),
            ndcg_vs_rrf60: vs.map(|v| round(v.0, 4)),
            ndcg_vs_rrf60_se: vs.map(|v| round(v.1, 4)),
            qps: round(nq as f64 / secs[i], 1),
            us_per_query: round(us(&m.name), 1),
        })?;
    }
    let cost = |check, query: &str, parts: &[&str], target: f64| -> Result<()> {
        let baseline: BTreeMap<String, f64> = parts
            .iter()
            .map(|p| (p.to_string(), round(us(p), 1)))
            .collect();
        let sum: f64 = parts.iter().map(|p| us(p)).sum();
        let ratio = us(query) / sum;
        emit(&CostRecord {
            bench: "hybrid-cost",
            check,
            query_us: round(us(query), 1),
            baseline,
            baseline_us: round(sum, 1),
            ratio: round(ratio, 3),
            target,
            pass: ratio <= target,
        })
    };
    cost(
        "rrf vs dense + bm25 run alone",
        "rrf(k=60)",
        &["dense", "bm25"],
        1.1,
    )?;
    cost(
        "rrf vs dense, bm25 as two calls",
        "rrf(k=60)",
        &["dense, bm25 as two calls"],
        1.1,
    )?;
    cost("mmr vs its dense search", "mmr(dense)", &["dense"], 1.2)?;
    cost(
        "mmr vs its parts as calls",
        "mmr(dense)",
        &["dense", "get_many(mmr candidates)", "mmr arithmetic alone"],
        1.2,
    )?;
    // The executor's own share: the fused query's wall time against its two stages' reported
    // times in the same calls (explain).
    if let Some(split) = &splits[index("rrf(k=60)")] {
        let stage = |k: &str| split.stages.get(k).copied().unwrap_or(0.0) * 1e6 / nq as f64;
        let (dense, text) = (stage("1:nearest"), stage("1:text"));
        let wall = split.wall * 1e6 / nq as f64;
        emit(&CostRecord {
            bench: "hybrid-cost",
            check: "rrf wall vs its two stages inside it (explain)",
            query_us: round(wall, 1),
            baseline: BTreeMap::from([
                ("1:nearest".to_string(), round(dense, 1)),
                ("1:text".to_string(), round(text, 1)),
            ]),
            baseline_us: round(dense + text, 1),
            ratio: round(wall / (dense + text), 3),
            target: 1.1,
            pass: wall / (dense + text) <= 1.1,
        })?;
    }
    let per = |x: f64| round(x * 1e6 / nq as f64, 1);
    for (m, split) in methods.iter().zip(splits) {
        let Some(split) = split else { continue };
        // A stage's time excludes its prefetches, so the stages add up.
        let inside: f64 = split.stages.values().sum();
        emit(&ExplainRecord {
            bench: "hybrid-explain",
            method: m.name.clone(),
            wall_us: per(split.wall),
            stages: split
                .stages
                .iter()
                .map(|(k, v)| (k.clone(), per(*v)))
                .collect(),
            outside_stages_us: per(split.wall - inside),
        })?;
    }
    Ok(())
}
