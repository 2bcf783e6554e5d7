//! `sparse`: the sparse-vector index on SPLADE-like vectors built from a real corpus — pruned
//! (MaxScore) top-k against an exhaustive scan: agreement (recall) and single-thread QPS, plain
//! and with a filter.
//!
//! Vectors come from the corpus's token statistics: each paragraph's terms weighted by
//! `(1 + ln tf) * ln(N / df)`, plus, as a learned sparse encoder expands a text with related
//! terms, its page's heaviest other terms at a quarter of their page weight; the 64 heaviest
//! are kept (30-100 non-zeros for most paragraphs, as SPLADE gives). To reach `--n` documents the corpus is repeated, each copy
//! dropping a fifth of every vector's terms and jittering weights by ±20 %. Queries are the
//! first eight distinct terms of random paragraphs, weighted by `ln(N / df)`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;
use hybridb::SparseVector;
use hybridb::index::sparse::SparseIndex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::report::{emit, round};

/// Arguments of `sparse`.
#[derive(Args, Debug)]
pub struct SparseArgs {
    /// The corpus: JSON lines (optionally gzipped) with a `text` field per paragraph.
    #[arg(long, default_value = "../shared/data/pydoc/corpus.jsonl.gz")]
    pub corpus: PathBuf,
    /// Documents to index (the corpus is repeated with perturbations to reach it).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Queries to run.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Heaviest terms kept per document.
    #[arg(long, default_value_t = 64)]
    pub max_terms: usize,
    /// Share of documents a filtered query allows.
    #[arg(long, default_value_t = 0.1)]
    pub filter_share: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also write the documents into a hybridb collection (a sparse named vector plus an
    /// indexed payload field for the filter) and run the queries through the engine.
    #[arg(long)]
    pub engine: bool,
}

/// The result line of `sparse`.
#[derive(Debug, Serialize)]
struct SparseRecord {
    bench: &'static str,
    n: usize,
    avg_nnz: f64,
    queries: usize,
    k: usize,
    build_s: f64,
    /// Share of pruned results equal to the scan's (ids and scores).
    recall: f64,
    qps_pruned: f64,
    qps_exhaustive: f64,
    speedup: f64,
    filter_share: f64,
    filtered_recall: f64,
    /// Share of filtered queries that returned `k` results where the scan found `k`.
    filtered_full: f64,
    filtered_qps_pruned: f64,
    filtered_qps_exhaustive: f64,
    filtered_speedup: f64,
    /// With `--engine`: the same through `Collection::search_with` (recall against the
    /// exhaustive scan, QPS, and QPS over the exhaustive scan's).
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<EngineSparse>,
}

/// The engine's side of `sparse --engine`.
#[derive(Debug, Serialize)]
struct EngineSparse {
    load_s: f64,
    recall: f64,
    qps: f64,
    speedup: f64,
    filtered_recall: f64,
    filtered_full: f64,
    filtered_qps: f64,
    filtered_speedup: f64,
}

/// Lowercased alphanumeric words of two or more characters.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.chars().count() >= 2)
        .map(str::to_lowercase)
}

/// A reader of `path`'s lines, decompressing a `.gz` file on the way.
pub(crate) fn open_lines(path: &PathBuf) -> Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// The corpus: each paragraph's text and the page it is on.
pub(crate) fn read_corpus(path: &PathBuf) -> Result<Vec<(String, String)>> {
    let reader = open_lines(path)?;
    let mut texts = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("line {}", i + 1))?;
        let text = v["text"]
            .as_str()
            .with_context(|| format!("line {}: no text", i + 1))?;
        let page = v["path"].as_str().unwrap_or("").to_string();
        texts.push((text.to_string(), page));
    }
    ensure!(!texts.is_empty(), "{} holds no paragraphs", path.display());
    Ok(texts)
}

/// Runs the benchmark and prints one JSON line.
pub fn run_sparse(a: &SparseArgs) -> Result<()> {
    ensure!(
        a.n > 0 && a.queries > 0 && a.k > 0,
        "sizes must be positive"
    );
    ensure!(
        a.filter_share > 0.0 && a.filter_share <= 1.0,
        "--filter-share must be in (0, 1]"
    );
    let texts = read_corpus(&a.corpus)?;
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let docs_terms: Vec<HashMap<u32, u32>> = texts
        .iter()
        .map(|(t, _)| {
            let mut tf = HashMap::new();
            for tok in tokens(t) {
                let next = vocab.len() as u32;
                let id = *vocab.entry(tok).or_insert(next);
                *tf.entry(id).or_insert(0) += 1;
            }
            tf
        })
        .collect();
    let mut df: HashMap<u32, u32> = HashMap::new();
    for d in &docs_terms {
        for &t in d.keys() {
            *df.entry(t).or_insert(0) += 1;
        }
    }
    let total = docs_terms.len() as f64;
    let idf = |t: u32| (total / f64::from(df[&t])).ln() as f32;
    // Term counts per page, for the expansion terms.
    let mut pages: HashMap<&str, HashMap<u32, u32>> = HashMap::new();
    for ((_, page), tf) in texts.iter().zip(&docs_terms) {
        let p = pages.entry(page.as_str()).or_default();
        for (&t, &c) in tf {
            *p.entry(t).or_insert(0) += c;
        }
    }
    let weigh = |tf: &HashMap<u32, u32>, scale: f32| -> Vec<(u32, f32)> {
        tf.iter()
            .map(|(&t, &c)| (t, scale * (1.0 + (c as f32).ln()) * idf(t)))
            .filter(|p| p.1 > 0.0)
            .collect()
    };
    let base: Vec<SparseVector> = docs_terms
        .iter()
        .zip(&texts)
        .map(|(tf, (_, page))| {
            let mut w = weigh(tf, 1.0);
            let mut expansion = weigh(&pages[page.as_str()], 0.25);
            expansion.retain(|(t, _)| !tf.contains_key(t));
            expansion.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            w.extend(expansion.into_iter().take(a.max_terms));
            w.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            w.truncate(a.max_terms);
            SparseVector::from_pairs(w)
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut index = SparseIndex::new();
    let t = Instant::now();
    let mut nnz = 0usize;
    let mut kept: Vec<SparseVector> = Vec::with_capacity(if a.engine { a.n } else { 0 });
    for slot in 0..a.n {
        let orig = &base[slot % base.len()];
        let v = if slot < base.len() {
            orig.clone()
        } else {
            let mut pairs = Vec::with_capacity(orig.len());
            for (&i, &w) in orig.indices.iter().zip(&orig.values) {
                if rng.random::<f64>() >= 0.2 {
                    pairs.push((i, w * (0.8 + 0.4 * rng.random::<f32>())));
                }
            }
            SparseVector::from_pairs(pairs)
        };
        nnz += v.len();
        if a.engine {
            kept.push(v.clone());
        }
        index.insert(slot as u32, v);
    }
    let build_s = t.elapsed().as_secs_f64();
    let queries: Vec<SparseVector> = (0..a.queries)
        .map(|_| {
            let (text, _) = &texts[rng.random_range(0..texts.len())];
            let mut seen = Vec::new();
            for tok in tokens(text) {
                if let Some(&id) = vocab.get(&tok)
                    && !seen.contains(&id)
                {
                    seen.push(id);
                }
                if seen.len() == 8 {
                    break;
                }
            }
            SparseVector::from_pairs(seen.into_iter().map(|t| (t, idf(t))))
        })
        .filter(|q| !q.is_empty())
        .collect();
    ensure!(!queries.is_empty(), "no query has a known term");
    let all = |_: u32| true;
    let every = (1.0 / a.filter_share).round().max(1.0) as u32;
    let some = move |s: u32| s.is_multiple_of(every);
    let (recall, _, qps_pruned, qps_exhaustive) = compare(&index, &queries, a.k, &all);
    let (filtered_recall, filtered_full, filtered_qps_pruned, filtered_qps_exhaustive) =
        compare(&index, &queries, a.k, &some);
    let engine = if a.engine {
        Some(run_engine(
            &index,
            kept,
            &queries,
            a.k,
            every,
            (qps_exhaustive, filtered_qps_exhaustive),
        )?)
    } else {
        None
    };
    let record = SparseRecord {
        bench: "sparse",
        n: a.n,
        avg_nnz: round(nnz as f64 / a.n as f64, 1),
        queries: queries.len(),
        k: a.k,
        build_s: round(build_s, 3),
        recall,
        qps_pruned: round(qps_pruned, 1),
        qps_exhaustive: round(qps_exhaustive, 1),
        speedup: round(qps_pruned / qps_exhaustive, 2),
        filter_share: round(1.0 / f64::from(every), 4),
        filtered_recall,
        filtered_full,
        filtered_qps_pruned: round(filtered_qps_pruned, 1),
        filtered_qps_exhaustive: round(filtered_qps_exhaustive, 1),
        filtered_speedup: round(filtered_qps_pruned / filtered_qps_exhaustive, 2),
        engine,
    };
    emit(&record)
}

/// Writes `docs` (document `i` gets id `i + 1` and payload `g = i % every`) into a collection
/// with the sparse named vector `terms`, runs `queries` through the engine unfiltered and with
/// `g == 0`, and compares the answers with `index`'s exhaustive scan (ids map to slots).
fn run_engine(
    index: &SparseIndex,
    docs: Vec<SparseVector>,
    queries: &[SparseVector],
    k: usize,
    every: u32,
    exhaustive_qps: (f64, f64),
) -> Result<EngineSparse> {
    use hybridb::{
        CacheSizes, CollectionConfig, Condition, Database, Entity, EntityId, Filter,
        PayloadIndexKind, SearchRequest, VectorConfig,
    };
    let dir = tempfile::tempdir()?;
    let db = Database::builder()
        .caches(CacheSizes::OFF)
        .open(dir.path().join("sparse.redb"))?;
    let config = CollectionConfig::named_only()
        .with_vector("terms", VectorConfig::sparse(false))
        .with_payload_index("g", PayloadIndexKind::Integer);
    let coll = db.create_collection("docs", config)?;
    let t = Instant::now();
    let mut batch = Vec::with_capacity(2000);
    for (i, v) in docs.into_iter().enumerate() {
        batch.push(
            Entity::new(
                EntityId::from_u128(i as u128 + 1),
                serde_json::json!({"g": i as u32 % every}),
                Vec::new(),
            )
            .with_vector("terms", v),
        );
        if batch.len() == 2000 {
            coll.upsert_batch(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        coll.upsert_batch(batch)?;
    }
    let load_s = t.elapsed().as_secs_f64();
    let some = Filter::new().must(Condition::matches_value("g", 0));
    let pass = |s: u32| s.is_multiple_of(every);
    let mut out = Vec::new();
    for (filter, allowed) in [
        (None, &(|_: u32| true) as &dyn Fn(u32) -> bool),
        (Some(&some), &pass as &dyn Fn(u32) -> bool),
    ] {
        let t = Instant::now();
        let mut answers = Vec::with_capacity(queries.len());
        for q in queries {
            let mut req = SearchRequest::new_sparse("terms", q.clone(), k);
            req.filter = filter.cloned();
            answers.push(coll.search_with(&req)?);
        }
        let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
        let (mut same, mut full) = (0usize, 0usize);
        for (q, hits) in queries.iter().zip(&answers) {
            let want = index.search_exhaustive(q, k, allowed);
            let got: Vec<(u32, f32)> = hits
                .iter()
                .map(|h| ((h.id.as_uuid().as_u128() - 1) as u32, h.score))
                .collect();
            same += usize::from(
                got.len() == want.len()
                    && got
                        .iter()
                        .zip(&want)
                        .all(|(g, w)| g.0 == w.0 && (g.1 - w.1).abs() <= 1e-4 * w.1.abs().max(1.0)),
            );
            full += usize::from(want.len() < k || got.len() == k);
        }
        let n = queries.len() as f64;
        out.push((same as f64 / n, full as f64 / n, qps));
    }
    Ok(EngineSparse {
        load_s: round(load_s, 2),
        recall: round(out[0].0, 4),
        qps: round(out[0].2, 1),
        speedup: round(out[0].2 / exhaustive_qps.0, 2),
        filtered_recall: round(out[1].0, 4),
        filtered_full: round(out[1].1, 4),
        filtered_qps: round(out[1].2, 1),
        filtered_speedup: round(out[1].2 / exhaustive_qps.1, 2),
    })
}

/// Runs every query pruned and exhaustively (each as its own timed pass); returns the share of
/// equal answers, the share of full answers (`k` where the scan had `k`), and both QPS.
fn compare(
    index: &SparseIndex,
    queries: &[SparseVector],
    k: usize,
    allowed: &dyn Fn(u32) -> bool,
) -> (f64, f64, f64, f64) {
    let t = Instant::now();
    let pruned: Vec<_> = queries
        .iter()
        .map(|q| index.search(q, k, allowed))
        .collect();
    let pruned_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scanned: Vec<_> = queries
        .iter()
        .map(|q| index.search_exhaustive(q, k, allowed))
        .collect();
    let scan_s = t.elapsed().as_secs_f64();
    let same = pruned.iter().zip(&scanned).filter(|(p, s)| p == s).count();
    let full = pruned
        .iter()
        .zip(&scanned)
        .filter(|(p, s)| s.len() < k || p.len() == k)
        .count();
    let n = queries.len() as f64;
    (
        round(same as f64 / n, 4),
        round(full as f64 / n, 4),
        n / pruned_s,
        n / scan_s,
    )
}
