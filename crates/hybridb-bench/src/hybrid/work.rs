//! What each method of `hybrid` does per query, and the interleaved timing of the methods.
//!
//! Timing: the queries are cut into chunks; each round runs every method on every chunk, the
//! methods' order rotating per round and per chunk, so each method sees the same mix of
//! machine load; a method's time is the sum over chunks of its best round on that chunk. A
//! shared, loaded machine then costs rounds, not accuracy.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Instant;

use anyhow::Result;
use hybridb::index::bm25::Bm25Index;
use hybridb::index::text::Analyzer;
use hybridb::{Collection, EntityId, Hit, Query};

use crate::vecs::Vecs;

/// One method's work, one entry per query.
pub(super) enum Work {
    /// A query through `Collection::query`.
    Query(Vec<Query>),
    /// Two queries run one after the other, as separate calls (the stages of a fusion alone,
    /// in the same alternation as inside it).
    Pair(Vec<(Query, Query)>),
    /// `Collection::get_many` of these ids (the records a client's MMR reads).
    GetMany(Vec<Vec<EntityId>>),
    /// `hybridb::fusion::mmr` alone over these base rows' vectors (MMR's arithmetic, outside
    /// the engine: the vectors come from the benchmark's memory).
    MmrCompute(Vec<Vec<u32>>),
    /// RRF done by a client: the two queries as separate calls, then `hybridb::fusion::rrf`
    /// (k = 60, equal weights) of their lists, cut to `limit`.
    ClientRrf(Vec<(Query, Query)>, usize),
    /// `hybridb::index::bm25::Bm25Index` alone (the engine's text index structure, held by the
    /// benchmark): these query texts analyzed, then the top `depth`.
    IndexBm25(Vec<String>, usize),
    /// MMR done by a client: the dense query (its candidates), `get_many` of them, then
    /// `hybridb::fusion::mmr` over the vectors read — what the engine's MMR stage does, with
    /// the vectors from its in-memory index instead.
    ClientMmr(Vec<Query>),
}

/// What the work runs against.
pub(super) struct Ctx<'a> {
    /// The collection.
    pub coll: &'a Collection,
    /// The corpus vectors (for [`Work::MmrCompute`]).
    pub base: &'a Vecs<f32>,
    /// The query vectors.
    pub queries: &'a Vecs<f32>,
    /// MMR diversity.
    pub diversity: f32,
    /// MMR picks.
    pub mmr_limit: usize,
    /// The corpus in a bare BM25 index (slot = row) and its analyzer.
    pub bm25: &'a (Analyzer, Bm25Index),
}

/// The corpus row of an entity (ids are row + 1).
pub(super) fn row_of(id: EntityId) -> u32 {
    (id.as_uuid().as_u128() - 1) as u32
}

fn rows(hits: &[Hit]) -> Vec<(u32, f32)> {
    hits.iter().map(|h| (row_of(h.id), h.score)).collect()
}

/// MMR's picks for query `i` among `vectors`, by dot product (the engine's similarity for
/// `Metric::Dot`).
fn mmr(ctx: &Ctx<'_>, i: usize, vectors: &[(EntityId, Vec<f32>)]) -> Vec<(u32, f32)> {
    let dot = hybridb::index::distance::kernels().dot;
    let query = ctx.queries.row(i);
    hybridb::fusion::mmr(query, vectors, ctx.diversity, ctx.mmr_limit, dot)
        .into_iter()
        .map(|(id, s)| (row_of(id), s))
        .collect()
}

/// Runs `work` for the queries in `range`; returns each query's ranked rows (empty for work
/// that ranks nothing).
pub(super) fn run(ctx: &Ctx<'_>, work: &Work, range: Range<usize>) -> Result<Vec<Vec<(u32, f32)>>> {
    range
        .map(|i| {
            Ok(match work {
                Work::Query(qs) => rows(&ctx.coll.query(&qs[i])?),
                Work::Pair(qs) => {
                    std::hint::black_box(ctx.coll.query(&qs[i].0)?);
                    std::hint::black_box(ctx.coll.query(&qs[i].1)?);
                    Vec::new()
                }
                Work::GetMany(ids) => {
                    std::hint::black_box(ctx.coll.get_many(&ids[i])?);
                    Vec::new()
                }
                Work::ClientRrf(qs, limit) => {
                    let pair = |h: Vec<Hit>| -> Vec<(EntityId, f32)> {
                        h.into_iter().map(|h| (h.id, h.score)).collect()
                    };
                    let a = pair(ctx.coll.query(&qs[i].0)?);
                    let b = pair(ctx.coll.query(&qs[i].1)?);
                    hybridb::fusion::rrf(&[&a, &b], None, 60.0, *limit)
                        .into_iter()
                        .map(|(id, s)| (row_of(id), s))
                        .collect()
                }
                Work::IndexBm25(texts, depth) => {
                    let (analyzer, index) = ctx.bm25;
                    index.search(&analyzer.terms(&texts[i]), *depth, &|_| true)
                }
                Work::ClientMmr(qs) => {
                    let ids: Vec<EntityId> = ctx.coll.query(&qs[i])?.iter().map(|h| h.id).collect();
                    let vectors: Vec<(EntityId, Vec<f32>)> = ctx
                        .coll
                        .get_many(&ids)?
                        .into_iter()
                        .flatten()
                        .map(|r| (r.id, r.vector))
                        .collect();
                    mmr(ctx, i, &vectors)
                }
                Work::MmrCompute(cands) => {
                    let vectors: Vec<(EntityId, Vec<f32>)> = cands[i]
                        .iter()
                        .map(|&r| {
                            let id = EntityId::from_u128(u128::from(r) + 1);
                            (id, ctx.base.row(r as usize).to_vec())
                        })
                        .collect();
                    mmr(ctx, i, &vectors)
                }
            })
        })
        .collect()
}

/// A method's time split by stage, from `query_explain`: the wall time of the calls and the
/// sum of each stage's reported time (`depth:stage`), in seconds, over all queries.
#[derive(Default)]
pub(super) struct Split {
    /// Wall time of the `query_explain` calls.
    pub wall: f64,
    /// Time per stage.
    pub stages: BTreeMap<String, f64>,
}

/// Runs `query_explain` for the queries of `work` in `range` (`None`: work that is not
/// queries).
fn explain(ctx: &Ctx<'_>, work: &Work, range: Range<usize>) -> Result<Option<Split>> {
    let mut split = Split::default();
    let mut one = |q: &Query| -> Result<()> {
        for s in ctx.coll.query_explain(q)?.stages {
            *split
                .stages
                .entry(format!("{}:{}", s.depth, s.stage))
                .or_insert(0.0) += s.micros as f64 * 1e-6;
        }
        Ok(())
    };
    let t = Instant::now();
    match work {
        Work::Query(qs) => qs[range].iter().try_for_each(&mut one)?,
        Work::Pair(qs) => qs[range].iter().try_for_each(|(a, b)| {
            one(a)?;
            one(b)
        })?,
        _ => return Ok(None),
    }
    split.wall = t.elapsed().as_secs_f64();
    Ok(Some(split))
}

/// Times every method over `n` queries (see the module docs); returns each method's seconds
/// and, for methods made of queries, its split by stage (the chunks' best explain rounds, summed).
pub(super) fn time_interleaved(
    ctx: &Ctx<'_>,
    works: &[&Work],
    n: usize,
    rounds: usize,
    chunk: usize,
) -> Result<(Vec<f64>, Vec<Option<Split>>)> {
    let chunks: Vec<Range<usize>> = (0..n)
        .step_by(chunk.max(1))
        .map(|s| s..(s + chunk.max(1)).min(n))
        .collect();
    let m = works.len();
    let mut best = vec![vec![f64::INFINITY; chunks.len()]; m];
    let mut best_split: Vec<Vec<Option<Split>>> = (0..m)
        .map(|_| (0..chunks.len()).map(|_| None).collect())
        .collect();
    for r in 0..rounds {
        for (c, range) in chunks.iter().enumerate() {
            for j in 0..m {
                let i = (j + r + c) % m;
                let t = Instant::now();
                std::hint::black_box(run(ctx, works[i], range.clone())?);
                best[i][c] = best[i][c].min(t.elapsed().as_secs_f64());
            }
            for j in 0..m {
                let i = (j + r + c) % m;
                let Some(split) = explain(ctx, works[i], range.clone())? else {
                    continue;
                };
                let slot = &mut best_split[i][c];
                if slot.as_ref().is_none_or(|s| split.wall < s.wall) {
                    *slot = Some(split);
                }
            }
        }
    }
    let secs = best.iter().map(|b| b.iter().sum()).collect();
    let splits = best_split
        .into_iter()
        .map(|per_chunk| {
            let mut total = Split::default();
            for s in per_chunk {
                let s = s?;
                total.wall += s.wall;
                for (k, v) in s.stages {
                    *total.stages.entry(k).or_insert(0.0) += v;
                }
            }
            Some(total)
        })
        .collect();
    Ok((secs, splits))
}
