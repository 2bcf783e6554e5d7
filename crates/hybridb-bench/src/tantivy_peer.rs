//! `text --peer tantivy` (cargo feature `tantivy-peer`, off by default): tantivy as a BM25 peer
//! on the same documents and queries, with the same tokens and the same k1/b.
//!
//! Same tokens: every document is given to tantivy as a `PreTokenizedString` of hybridb's own
//! analyzed terms (no tantivy tokenizer runs), and every query as a disjunction (`Should`) of
//! `TermQuery`s over hybridb's query terms (a repeated term counted each time, as hybridb
//! does). Same scoring: tantivy's BM25 is k1 = 1.2, b = 0.75 (constants, hybridb's defaults), with
//! Lucene's IDF `ln(1 + (N - n + 0.5) / (n + 0.5))` and `avgdl` = tokens / documents, like
//! hybridb's; the only difference is that tantivy stores a document's length as a one-byte
//! *fieldnorm* (exact up to 40 terms, then on a coarser log-like grid), so lengths above 40 are
//! rounded down and scores, and hence some top-10s, differ slightly.
//!
//! How the two are compared (an `agreement` line): the bench recomputes BM25 in `f64` from the
//! term lists, once with exact lengths and once with tantivy's quantized ones. It reports
//! - the largest relative error of tantivy's scores against the quantized formula, and of
//!   hybridb's against the exact one (both should be ~1e-6: same IDF, avgdl, k1, b);
//! - the share of queries whose top-k ids are the same sets, and whose top-k are *equal up
//!   to ties* — the exact scores of tantivy's k documents equal hybridb's k scores, so under
//!   exact BM25 either list is a correct answer;
//! - the share of queries where tantivy's list is, up to ties, the exact top-k of the
//!   quantized formula: the remaining differences are then the fieldnorm rounding alone.
//!
//! Timing (one `text-peer` line per engine): both engines search with pre-analyzed terms
//! (tantivy's queries are even built before the clock starts), top-k by score, one thread,
//! interleaved in chunks, each chunk's best round counted (as in `hybrid`). hybridb is timed at
//! the index level (`Bm25Index::search`), the structure the engine's text search runs; tantivy
//! at `Searcher::search` with `TopDocs::order_by_score` (its block-WAND path) on one merged
//! in-memory segment.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use hybridb::index::bm25::{Bm25Index, Bm25Params};
use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{DocAddress, Index, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::report::{emit, round};

/// What the comparison runs on.
pub struct PeerInput<'a> {
    /// The analyzer's name (for the report).
    pub analyzer: &'static str,
    /// Every document's analyzed terms, by row.
    pub docs: &'a [Vec<String>],
    /// Every query's analyzed terms.
    pub queries: &'a [Vec<String>],
    /// hybridb's index of `docs` (slot = row).
    pub index: &'a Bm25Index,
    /// BM25 parameters of `index` (must be tantivy's, 1.2 / 0.75).
    pub params: Bm25Params,
    /// Seconds hybridb took to index `docs` (for the report).
    pub build_s: f64,
    /// Results per query.
    pub k: usize,
    /// Timing rounds.
    pub rounds: usize,
    /// Queries per timing chunk.
    pub chunk: usize,
}

/// One engine's timing line.
#[derive(Debug, Serialize)]
struct PeerRecord {
    bench: &'static str,
    engine: &'static str,
    analyzer: &'static str,
    n: usize,
    queries: usize,
    k: usize,
    build_s: f64,
    qps: f64,
    us_per_query: f64,
}

/// The agreement line.
#[derive(Debug, Serialize)]
struct AgreementRecord {
    bench: &'static str,
    analyzer: &'static str,
    queries: usize,
    k: usize,
    /// hybridb's QPS over tantivy's (same run).
    qps_ratio_hybridb_over_tantivy: f64,
    /// Share of queries whose top-k id sets are equal.
    same_ids: f64,
    /// Mean share of hybridb's top-k that tantivy's holds.
    mean_overlap: f64,
    /// Share of queries whose top-k are equal up to ties under exact BM25.
    equal_up_to_ties: f64,
    /// Share of queries where tantivy's top-k is the quantized-length BM25 top-k (up to ties).
    tantivy_is_quantized_top_k: f64,
    /// Largest relative error of tantivy's scores against BM25 with quantized lengths.
    tantivy_max_rel_err_vs_quantized_formula: f64,
    /// Largest relative error of hybridb's scores against BM25 with exact lengths.
    hybridb_max_rel_err_vs_exact_formula: f64,
}

/// BM25 in `f64` from the term lists: exact lengths or tantivy's quantized ones.
struct Formula {
    k1: f64,
    b: f64,
    avgdl: f64,
    n: f64,
    /// Term → `(row, tf)`, rows increasing.
    postings: HashMap<String, Vec<(u32, u32)>>,
    lens: Vec<u32>,
    quantized: Vec<u32>,
}

impl Formula {
    fn new(docs: &[Vec<String>], params: Bm25Params) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        for (row, terms) in docs.iter().enumerate() {
            let mut tf: HashMap<&str, u32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_insert(0) += 1;
            }
            for (t, f) in tf {
                postings
                    .entry(t.to_string())
                    .or_default()
                    .push((row as u32, f));
            }
        }
        for list in postings.values_mut() {
            list.sort_unstable();
        }
        let lens: Vec<u32> = docs.iter().map(|d| d.len() as u32).collect();
        let quantized = lens
            .iter()
            .map(|&l| FieldNormReader::id_to_fieldnorm(FieldNormReader::fieldnorm_to_id(l)))
            .collect();
        let total: u64 = lens.iter().map(|&l| u64::from(l)).sum();
        Formula {
            k1: f64::from(params.k1),
            b: f64::from(params.b),
            avgdl: total as f64 / docs.len().max(1) as f64,
            n: docs.len() as f64,
            postings,
            lens,
            quantized,
        }
    }

    /// Every document holding a query term with its score (`quantized`: tantivy's lengths).
    fn scores(&self, query: &[String], quantized: bool) -> HashMap<u32, f64> {
        let lens = if quantized {
            &self.quantized
        } else {
            &self.lens
        };
        let mut out: HashMap<u32, f64> = HashMap::new();
        for t in query {
            let Some(list) = self.postings.get(t) else {
                continue;
            };
            let df = list.len() as f64;
            let idf = (1.0 + (self.n - df + 0.5) / (df + 0.5)).ln();
            for &(row, tf) in list {
                let (tf, len) = (f64::from(tf), f64::from(lens[row as usize]));
                let norm = self.k1 * (1.0 - self.b + self.b * len / self.avgdl);
                *out.entry(row).or_insert(0.0) += idf * tf * (self.k1 + 1.0) / (tf + norm);
            }
        }
        out
    }
}

/// Whether two score lists are the same multiset within a relative tolerance (both sorted
/// descending first).
fn same_scores(mut a: Vec<f64>, mut b: Vec<f64>) -> bool {
    a.sort_by(|x, y| y.total_cmp(x));
    b.sort_by(|x, y| y.total_cmp(x));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(y.abs()) + 1e-9)
}

/// The `k` best scores of a scored map.
fn top_scores(scores: &HashMap<u32, f64>, k: usize) -> Vec<f64> {
    let mut all: Vec<f64> = scores.values().copied().collect();
    all.sort_by(|x, y| y.total_cmp(x));
    all.truncate(k);
    all
}

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-12)
}

/// tantivy's index of the same term lists: one merged in-memory segment; returns the searcher,
/// the text field, each segment's row per doc id, and the seconds it took.
fn build(docs: &[Vec<String>]) -> Result<(Searcher, tantivy::schema::Field, Vec<Vec<u32>>, f64)> {
    let t = Instant::now();
    let mut schema = Schema::builder();
    let text = schema.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_index_option(IndexRecordOption::WithFreqs),
        ),
    );
    let row_field = schema.add_u64_field("row", FAST);
    let index = Index::create_in_ram(schema.build());
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 200_000_000)?;
    for (row, terms) in docs.iter().enumerate() {
        let mut text_of = String::new();
        let mut tokens = Vec::with_capacity(terms.len());
        for (position, term) in terms.iter().enumerate() {
            if !text_of.is_empty() {
                text_of.push(' ');
            }
            let from = text_of.len();
            text_of.push_str(term);
            tokens.push(Token {
                offset_from: from,
                offset_to: text_of.len(),
                position,
                text: term.clone(),
                position_length: 1,
            });
        }
        let mut doc = TantivyDocument::default();
        doc.add_pre_tokenized_text(
            text,
            PreTokenizedString {
                text: text_of,
                tokens,
            },
        );
        doc.add_u64(row_field, row as u64);
        writer.add_document(doc)?;
    }
    writer.commit()?;
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.wait_merging_threads()?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let mut rows = Vec::new();
    for segment in searcher.segment_readers() {
        let column = segment.fast_fields().u64("row")?;
        let map = (0..segment.max_doc())
            .map(|doc| {
                column
                    .first(doc)
                    .and_then(|r| u32::try_from(r).ok())
                    .context("a tantivy document without its row")
            })
            .collect::<Result<Vec<u32>>>()?;
        rows.push(map);
    }
    Ok((searcher, text, rows, t.elapsed().as_secs_f64()))
}

/// Runs the comparison: a `text-peer` line per engine and an `agreement` line.
pub fn compare(input: &PeerInput<'_>) -> Result<()> {
    ensure!(
        input.k > 0 && input.rounds > 0 && input.chunk > 0,
        "sizes must be positive"
    );
    ensure!(
        input.params == Bm25Params::default(),
        "tantivy's BM25 is k1 = 1.2, b = 0.75; run the peer with those"
    );
    let (searcher, field, rows, build_s) = build(input.docs)?;
    let queries: Vec<BooleanQuery> = input
        .queries
        .iter()
        .map(|terms| {
            BooleanQuery::new(
                terms
                    .iter()
                    .map(|t| {
                        let q: Box<dyn Query> = Box::new(TermQuery::new(
                            Term::from_field_text(field, t),
                            IndexRecordOption::WithFreqs,
                        ));
                        (Occur::Should, q)
                    })
                    .collect(),
            )
        })
        .collect();
    let collector = TopDocs::with_limit(input.k).order_by_score();
    let all = |_: u32| true;
    let hybridb_run = |range: std::ops::Range<usize>| -> Vec<Vec<(u32, f32)>> {
        input.queries[range]
            .iter()
            .map(|q| input.index.search(q, input.k, &all))
            .collect()
    };
    let tantivy_run = |range: std::ops::Range<usize>| -> Result<Vec<Vec<(f32, DocAddress)>>> {
        queries[range]
            .iter()
            .map(|q| Ok(searcher.search(q, &collector)?))
            .collect()
    };
    // Interleaved timing: per chunk, each engine's best round.
    let nq = queries.len();
    let chunks: Vec<std::ops::Range<usize>> = (0..nq)
        .step_by(input.chunk)
        .map(|s| s..(s + input.chunk).min(nq))
        .collect();
    let mut best = [
        vec![f64::INFINITY; chunks.len()],
        vec![f64::INFINITY; chunks.len()],
    ];
    for r in 0..input.rounds {
        for (c, range) in chunks.iter().enumerate() {
            for j in 0..2 {
                let engine = (j + r + c) % 2;
                let t = Instant::now();
                if engine == 0 {
                    std::hint::black_box(hybridb_run(range.clone()));
                } else {
                    std::hint::black_box(tantivy_run(range.clone())?);
                }
                best[engine][c] = best[engine][c].min(t.elapsed().as_secs_f64());
            }
        }
    }
    let secs: Vec<f64> = best.iter().map(|b| b.iter().sum()).collect();
    let line = |engine, build_s: f64, secs: f64| PeerRecord {
        bench: "text-peer",
        engine,
        analyzer: input.analyzer,
        n: input.docs.len(),
        queries: nq,
        k: input.k,
        build_s: round(build_s, 3),
        qps: round(nq as f64 / secs, 1),
        us_per_query: round(secs * 1e6 / nq as f64, 2),
    };
    emit(&line("hybridb", input.build_s, secs[0]))?;
    emit(&line("tantivy", build_s, secs[1]))?;
    // Agreement.
    let formula = Formula::new(input.docs, input.params);
    let ours = hybridb_run(0..nq);
    let theirs = tantivy_run(0..nq)?;
    let (mut same_ids, mut overlap, mut up_to_ties, mut quantized_top) = (0usize, 0.0, 0, 0);
    let (mut err_t, mut err_h) = (0.0f64, 0.0f64);
    for (qi, (h, t)) in ours.iter().zip(&theirs).enumerate() {
        let exact = formula.scores(&input.queries[qi], false);
        let quant = formula.scores(&input.queries[qi], true);
        let t_rows: Vec<u32> = t
            .iter()
            .map(|(_, a)| rows[a.segment_ord as usize][a.doc_id as usize])
            .collect();
        for (&(row, score), _) in h.iter().zip(0..) {
            err_h = err_h.max(rel_err(f64::from(score), exact[&row]));
        }
        for (&(score, _), row) in t.iter().zip(&t_rows) {
            err_t = err_t.max(rel_err(f64::from(score), quant[row]));
        }
        let mut hs: Vec<u32> = h.iter().map(|p| p.0).collect();
        let mut ts = t_rows.clone();
        hs.sort_unstable();
        ts.sort_unstable();
        same_ids += usize::from(hs == ts);
        overlap += hs.iter().filter(|r| ts.binary_search(r).is_ok()).count() as f64
            / hs.len().max(1) as f64;
        let exact_of_theirs = t_rows.iter().map(|r| exact[r]).collect();
        let ours_scores = h.iter().map(|p| f64::from(p.1)).collect();
        up_to_ties += usize::from(same_scores(exact_of_theirs, ours_scores));
        let quant_of_theirs = t_rows.iter().map(|r| quant[r]).collect();
        quantized_top += usize::from(same_scores(quant_of_theirs, top_scores(&quant, input.k)));
    }
    let share = |x: usize| round(x as f64 / nq.max(1) as f64, 4);
    emit(&AgreementRecord {
        bench: "text-peer-agreement",
        analyzer: input.analyzer,
        queries: nq,
        k: input.k,
        qps_ratio_hybridb_over_tantivy: round(secs[1] / secs[0], 3),
        same_ids: share(same_ids),
        mean_overlap: round(overlap / nq.max(1) as f64, 4),
        equal_up_to_ties: share(up_to_ties),
        tantivy_is_quantized_top_k: share(quantized_top),
        tantivy_max_rel_err_vs_quantized_formula: err_t,
        hybridb_max_rel_err_vs_exact_formula: err_h,
    })
}
