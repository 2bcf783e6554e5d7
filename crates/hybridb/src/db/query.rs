//! Running a [`Query`]: prefetches first (depth first), then the stage over their candidates
//! or over the collection (see `query/hybrid.rs` for the semantics).
//!
//! Invariants: every stage's candidates pass the filters of the queries it is inside (the
//! filter is pushed down into every prefetch, and a search or rescoring stage applies it
//! itself); lists passed to fusion are higher-is-better (distances negated); results are
//! sorted best first with ties by id, except MMR's, which come in pick order.
//!
//! Cost: a search stage keeps each hit's slot next to it, so MMR takes its candidates'
//! vectors from the in-memory index (no redb read; only a candidate whose slot is unknown or
//! changed since is read from the store); payloads and vectors are read only for the final
//! hits, and only when asked for.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use crate::db::collection::Collection;
use crate::db::read::{Target, good_enough, score_of};
use crate::index::IndexMetric;
use crate::model::config::Metric;
use crate::model::entity::{NamedVector, index_form};
use crate::model::error::{Error, QueryProblem, Result};
use crate::model::id::EntityId;
use crate::query::filter::{Condition, Filter};
use crate::query::fusion;
use crate::query::hybrid::{Fusion, MAX_QUERY_DEPTH, Query, QueryExplain, Stage, StageReport};
use crate::query::search::{Hit, SearchRequest};

/// A stage's ranked answer: `(id, score)` in the stage's own score (distances for L2 and
/// Manhattan), best first.
struct Ranked {
    items: Vec<(EntityId, f32)>,
    metric: Metric,
    /// The slot of each item, same order, when the stage searched an index (empty
    /// otherwise): lets MMR read candidates' vectors from memory.
    slots: Vec<u32>,
}

impl Ranked {
    /// Higher-is-better scores, for fusion.
    fn similarities(&self) -> Cow<'_, [(EntityId, f32)]> {
        match self.metric {
            Metric::L2 | Metric::Manhattan => {
                Cow::Owned(self.items.iter().map(|&(id, s)| (id, -s)).collect())
            }
            _ => Cow::Borrowed(&self.items),
        }
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidQuery(QueryProblem::BadQuery(reason.into()))
}

/// `outer` and `own` together (either may be absent).
fn both(outer: Option<&Filter>, own: Option<&Filter>) -> Option<Filter> {
    match (outer, own) {
        (None, None) => None,
        (Some(f), None) | (None, Some(f)) => Some(f.clone()),
        (Some(a), Some(b)) => Some(
            Filter::new()
                .must(Condition::nested(a.clone()))
                .must(Condition::nested(b.clone())),
        ),
    }
}

impl Collection {
    /// Runs a query (prefetches, fusion, rescoring, MMR; see [`Query`]).
    pub fn query(&self, query: &Query) -> Result<Vec<Hit>> {
        self.observe(crate::observe::Op::Query, query.limit, || {
            Ok(self.run_query(query)?.hits)
        })
    }

    /// Runs several queries; the answers come in the same order. One bad query fails the
    /// batch before any runs.
    pub fn query_batch(&self, queries: &[Query]) -> Result<Vec<Vec<Hit>>> {
        self.observe(crate::observe::Op::Query, queries.len(), || {
            for q in queries {
                self.check_query(q, 0)?;
            }
            queries
                .iter()
                .map(|q| Ok(self.run_query(q)?.hits))
                .collect()
        })
    }

    /// Runs a query and reports every stage: its plan, candidates, results and time.
    pub fn query_explain(&self, query: &Query) -> Result<QueryExplain> {
        self.observe(crate::observe::Op::Explain, query.limit, || {
            self.run_query(query)
        })
    }

    /// Checks the shape of a query before anything runs.
    fn check_query(&self, q: &Query, depth: usize) -> Result<()> {
        if depth >= MAX_QUERY_DEPTH {
            return Err(bad(format!(
                "prefetches nest deeper than {MAX_QUERY_DEPTH} levels"
            )));
        }
        self.check_k(q.limit.saturating_add(q.offset))?;
        if let Some(t) = q.score_threshold
            && !t.is_finite()
        {
            return Err(Error::InvalidQuery(QueryProblem::BadScoreThreshold(t)));
        }
        match &q.stage {
            Stage::Fusion(_) if q.prefetch.is_empty() => {
                return Err(bad("fusion needs at least one prefetch"));
            }
            Stage::Fusion(Fusion::Rrf { k, weights }) => {
                if !k.is_finite() || *k < 0.0 {
                    return Err(bad(format!("rrf k {k} must be a finite number >= 0")));
                }
                if let Some(w) = weights {
                    if w.len() != q.prefetch.len() {
                        return Err(bad(format!(
                            "rrf has {} weights for {} prefetches",
                            w.len(),
                            q.prefetch.len()
                        )));
                    }
                    if let Some(x) = w.iter().find(|x| !x.is_finite() || **x < 0.0) {
                        return Err(bad(format!("rrf weight {x} must be a finite number >= 0")));
                    }
                }
            }
            Stage::Mmr {
                diversity,
                candidates,
                ..
            } => {
                if !(0.0..=1.0).contains(diversity) {
                    return Err(bad(format!("mmr diversity {diversity} is outside 0..=1")));
                }
                if q.prefetch.is_empty() {
                    self.check_k(*candidates)?;
                }
            }
            _ => {}
        }
        for p in &q.prefetch {
            self.check_query(p, depth + 1)?;
        }
        Ok(())
    }

    fn run_query(&self, q: &Query) -> Result<QueryExplain> {
        self.shared.check_live()?;
        self.check_query(q, 0)?;
        let mut stages = Vec::new();
        let ranked = self.run_stage(q, None, 0, &mut stages)?;
        let mut hits: Vec<Hit> = ranked
            .items
            .into_iter()
            .filter(|(_, s)| good_enough(ranked.metric, q.score_threshold, *s))
            .skip(q.offset)
            .take(q.limit)
            .map(|(id, score)| Hit::new(id, score))
            .collect();
        if q.with_payload || q.with_vector {
            let ids: Vec<EntityId> = hits.iter().map(|h| h.id).collect();
            let records = self.records(&ids)?;
            let filter = q.filter.as_ref();
            hits = hits
                .into_iter()
                .zip(records)
                .filter_map(|(mut h, r)| {
                    // Gone, or rewritten to fail the filter, since the stages read it.
                    let r = r?;
                    if filter.is_some_and(|f| !f.matches(r.id, &r.payload)) {
                        return None;
                    }
                    h.payload = q.with_payload.then_some(r.payload);
                    if q.with_vector {
                        h.vector = Some(r.vector);
                        h.vectors = Some(r.vectors);
                    }
                    Some(h)
                })
                .collect();
        }
        Ok(QueryExplain { stages, hits })
    }

    /// Runs `q` inside the filter `outer` (of the queries it is in): its prefetches, then its
    /// stage. Returns up to `limit + offset` results (the caller cuts).
    fn run_stage(
        &self,
        q: &Query,
        outer: Option<&Filter>,
        depth: usize,
        stages: &mut Vec<StageReport>,
    ) -> Result<Ranked> {
        let filter = both(outer, q.filter.as_ref());
        let want = q.limit.saturating_add(q.offset);
        let lists: Vec<Ranked> = q
            .prefetch
            .iter()
            .map(|p| self.run_stage(p, filter.as_ref(), depth + 1, stages))
            .collect::<Result<_>>()?;
        let t = Instant::now();
        let mut report = |stage, plan, candidates, results| {
            stages.push(StageReport {
                depth,
                stage,
                plan,
                candidates,
                results,
                micros: t.elapsed().as_micros() as u64,
            });
        };
        if !lists.is_empty() {
            // The prefetches' distinct ids, in id order.
            let candidates = || {
                let mut ids: Vec<EntityId> = lists
                    .iter()
                    .flat_map(|l| l.items.iter().map(|p| p.0))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            };
            let out = match &q.stage {
                Stage::Fusion(fusion) => {
                    let sims: Vec<Cow<'_, [(EntityId, f32)]>> =
                        lists.iter().map(Ranked::similarities).collect();
                    let refs: Vec<&[(EntityId, f32)]> = sims.iter().map(|s| &**s).collect();
                    let (items, n) = match fusion {
                        Fusion::Rrf { k, weights } => {
                            fusion::rrf_counted(&refs, weights.as_deref(), *k, want)
                        }
                        Fusion::Dbsf => fusion::dbsf_counted(&refs, want),
                    };
                    report("fusion", None, n, items.len());
                    Ranked {
                        items,
                        metric: Metric::Dot,
                        slots: Vec::new(),
                    }
                }
                Stage::Mmr {
                    using,
                    vector,
                    diversity,
                    ..
                } => {
                    let slot_of: HashMap<EntityId, u32> = lists
                        .iter()
                        .filter(|l| l.slots.len() == l.items.len())
                        .flat_map(|l| l.items.iter().map(|p| p.0).zip(l.slots.iter().copied()))
                        .collect();
                    let ids: Vec<(EntityId, Option<u32>)> = candidates()
                        .into_iter()
                        .map(|id| (id, slot_of.get(&id).copied()))
                        .collect();
                    let r = self.mmr(using, vector, *diversity, &ids, want)?;
                    report("mmr", None, ids.len(), r.items.len());
                    r
                }
                stage => {
                    let ids = candidates();
                    let r = self.rescore(stage, &ids, want, q.ef)?;
                    report("rescore", None, ids.len(), r.items.len());
                    r
                }
            };
            return Ok(out);
        }
        match &q.stage {
            Stage::Fusion(_) => Err(bad("fusion needs at least one prefetch")),
            Stage::Mmr {
                using,
                vector,
                diversity,
                candidates,
            } => {
                let mut req = SearchRequest::new(vector.clone(), (*candidates).max(want));
                req.using = using.clone();
                req.filter = filter;
                req.ef = q.ef;
                req.oversampling = q.oversampling;
                let (found, slots) = self.run_search_slots(&req)?;
                let ids: Vec<(EntityId, Option<u32>)> = found
                    .hits
                    .iter()
                    .zip(slots)
                    .map(|(h, slot)| (h.id, Some(slot)))
                    .collect();
                let r = self.mmr(using, vector, *diversity, &ids, want)?;
                report("mmr", Some(found.plan), ids.len(), r.items.len());
                Ok(r)
            }
            stage => {
                let mut req = SearchRequest::new(Vec::new(), want);
                req.filter = filter;
                req.ef = q.ef;
                req.oversampling = q.oversampling;
                let name = match stage {
                    Stage::Nearest { using, vector } => {
                        req.vector = vector.clone();
                        req.using = using.clone();
                        "nearest"
                    }
                    Stage::Sparse { using, vector } => {
                        req.sparse = Some(vector.clone());
                        req.using = using.clone();
                        "sparse"
                    }
                    Stage::Text { field, text } => {
                        req.text = Some(text.clone());
                        req.using = field.clone();
                        "text"
                    }
                    Stage::Like { using, id } => {
                        req.using = using.clone();
                        req = self.like_request(*id, req)?;
                        "like"
                    }
                    _ => return Err(bad("unsupported stage")),
                };
                let metric = self.target(&req)?.score_metric();
                let (found, slots) = self.run_search_slots(&req)?;
                let items: Vec<(EntityId, f32)> =
                    found.hits.iter().map(|h| (h.id, h.score)).collect();
                report(name, Some(found.plan), found.matching, items.len());
                Ok(Ranked {
                    items,
                    metric,
                    slots,
                })
            }
        }
    }

    /// Scores the candidates `ids` exactly by `stage`'s vector; entities gone or lacking the
    /// vector drop out.
    fn rescore(
        &self,
        stage: &Stage,
        ids: &[EntityId],
        want: usize,
        ef: Option<usize>,
    ) -> Result<Ranked> {
        let mut req = SearchRequest::new(Vec::new(), 1);
        req.ef = ef;
        let mut exclude = None;
        match stage {
            Stage::Nearest { using, vector } => {
                req.using = using.clone();
                req.vector = vector.clone();
            }
            Stage::Sparse { using, vector } => {
                req.using = using.clone();
                req.sparse = Some(vector.clone());
            }
            Stage::Text { field, text } => {
                req.using = field.clone();
                req.text = Some(text.clone());
            }
            Stage::Like { using, id } => {
                req.using = using.clone();
                // Its query vector; the candidates are filtered already, so only `id` is
                // left out here.
                req = self.like_request(*id, req)?;
                req.filter = None;
                exclude = Some(*id);
            }
            _ => return Err(bad("unsupported rescoring stage")),
        }
        let target = self.target(&req)?;
        let metric = target.score_metric();
        if let Target::Dense {
            using,
            query,
            metric: m,
            ..
        } = &target
        {
            // Dense: only the vectors are read (no payloads).
            let (kernel, sign) = IndexMetric::from(*m).kernel();
            let mut items: Vec<(EntityId, f32)> = self
                .stored_dense(ids, using)?
                .into_iter()
                .filter(|(id, _)| Some(*id) != exclude)
                .map(|(id, v)| (id, score_of(*m, sign * kernel(query, &index_form(&v, *m)))))
                .collect();
            sort_ranked(&mut items, metric);
            items.truncate(want);
            return Ok(Ranked {
                items,
                metric,
                slots: Vec::new(),
            });
        }
        let Target::Sparse { using, query } = &target else {
            return self.rescore_text(&req, ids, want);
        };
        let query = self.shared.index.sparse_query(using, query);
        let mut items: Vec<(EntityId, f32)> = self
            .records(ids)?
            .into_iter()
            .flatten()
            .filter(|r| Some(r.id) != exclude)
            .filter_map(|r| match r.vectors.get(*using)? {
                // Only entities that share a dimension with the query, as a search finds.
                NamedVector::Sparse(v)
                    if v.indices
                        .iter()
                        .any(|i| query.indices.binary_search(i).is_ok()) =>
                {
                    Some((r.id, v.dot(&query)))
                }
                _ => None,
            })
            .collect();
        sort_ranked(&mut items, metric);
        items.truncate(want);
        Ok(Ranked {
            items,
            metric,
            slots: Vec::new(),
        })
    }

    /// The stored dense vector `using` (`""`: the default one) of each of `ids` that has it,
    /// read from one snapshot without the payloads.
    fn stored_dense(&self, ids: &[EntityId], using: &str) -> Result<Vec<(EntityId, Vec<f32>)>> {
        let txn = self.read_txn()?;
        let cid = self.shared.stored.cid;
        let (table, dim) = if using.is_empty() {
            (
                txn.open_table(crate::store::schema::CollectionTables::new(cid).vectors())
                    .map_err(|e| self.table_error(e))?,
                self.shared.stored.config.dim,
            )
        } else {
            let Some(d) = self.shared.named().get(using).cloned() else {
                return Err(Error::InvalidQuery(QueryProblem::UnknownVector(
                    using.to_string(),
                )));
            };
            let crate::model::config::VectorConfig::Dense { dim, .. } = d.config else {
                return Err(bad("not a dense vector"));
            };
            (
                txn.open_table(crate::store::schema::NamedTables::new(cid, d.vid).vectors())
                    .map_err(|e| self.table_error(e))?,
                dim,
            )
        };
        // In id order: neighbouring keys share B-tree pages (candidates come in score order).
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let mut out = Vec::with_capacity(ids.len());
        for id in sorted {
            if let Some(v) = table.get(id)? {
                out.push((
                    id,
                    crate::model::entity::decode_vector(v.value(), dim as usize)?,
                ));
            }
        }
        Ok(out)
    }

    /// Scores the candidates `ids` by the text query of `req` (BM25, with the collection's
    /// statistics): a text search restricted to them.
    fn rescore_text(&self, req: &SearchRequest, ids: &[EntityId], want: usize) -> Result<Ranked> {
        let mut req = req.clone();
        req.k = ids.len().clamp(1, self.db.shared.options.max_k);
        req.filter = Some(Filter::new().must(Condition::has_id(ids.iter().copied())));
        let found = self.run_search(&req)?;
        let mut items: Vec<(EntityId, f32)> = found.hits.iter().map(|h| (h.id, h.score)).collect();
        items.truncate(want);
        Ok(Ranked {
            items,
            metric: Metric::Dot,
            slots: Vec::new(),
        })
    }

    /// MMR over the candidates `ids` (with their slots where a search found them) by the
    /// dense vector `using`. Vectors are borrowed from the in-memory index; only candidates it
    /// cannot answer for (no slot known, or the slot changed since) are read from the store.
    fn mmr(
        &self,
        using: &str,
        vector: &[f32],
        diversity: f32,
        ids: &[(EntityId, Option<u32>)],
        want: usize,
    ) -> Result<Ranked> {
        let mut req = SearchRequest::new(vector.to_vec(), 1);
        req.using = using.to_string();
        let target = self.target(&req)?;
        let Target::Dense { query, metric, .. } = &target else {
            return Err(bad("mmr needs a dense vector"));
        };
        let (kernel, sign) = IndexMetric::from(*metric).kernel();
        // Similarity: the negated engine distance (cosine and dot: the similarity itself).
        let similarity = |a: &[f32], b: &[f32]| -(sign * kernel(a, b));
        let pick = |candidates: &[(EntityId, &[f32])]| -> Vec<(EntityId, f32)> {
            let picked = fusion::mmr(query, candidates, diversity, want, similarity);
            // Each pick's own score against the query, in pick order (a few picks among a
            // few hundred candidates: a scan finds each).
            picked
                .into_iter()
                .filter_map(|(id, _)| {
                    let (_, v) = candidates.iter().find(|c| c.0 == id)?;
                    Some((id, score_of(*metric, sign * kernel(query, v))))
                })
                .collect()
        };
        let known: Vec<(EntityId, u32)> = ids
            .iter()
            .filter_map(|&(id, slot)| Some((id, slot?)))
            .collect();
        let unknown = known.len() < ids.len();
        // Usually every candidate is in memory and MMR runs on borrowed vectors; otherwise
        // the borrowed ones are copied out and the rest read from the store.
        let in_memory = self
            .shared
            .index
            .with_dense_vectors(using, &known, |found, missing| {
                if missing.is_empty() && !unknown {
                    Ok(pick(found))
                } else {
                    let copied: Vec<(EntityId, Vec<f32>)> =
                        found.iter().map(|&(id, v)| (id, v.to_vec())).collect();
                    Err((copied, missing))
                }
            });
        let (mut candidates, mut missing) = match in_memory {
            Some(Ok(items)) => {
                return Ok(Ranked {
                    items,
                    metric: *metric,
                    slots: Vec::new(),
                });
            }
            Some(Err(partial)) => partial,
            None => (Vec::new(), known.iter().map(|p| p.0).collect()),
        };
        missing.extend(ids.iter().filter(|p| p.1.is_none()).map(|p| p.0));
        candidates.extend(
            self.stored_dense(&missing, using)?
                .into_iter()
                .map(|(id, v)| (id, index_form(&v, *metric))),
        );
        let borrowed: Vec<(EntityId, &[f32])> = candidates
            .iter()
            .map(|(id, v)| (*id, v.as_slice()))
            .collect();
        Ok(Ranked {
            items: pick(&borrowed),
            metric: *metric,
            slots: Vec::new(),
        })
    }
}

/// Sorts best first by `metric`'s order (distances ascending, similarities descending), ties
/// by id.
fn sort_ranked(items: &mut [(EntityId, f32)], metric: Metric) {
    let higher_better = !matches!(metric, Metric::L2 | Metric::Manhattan);
    items.sort_by(|a, b| {
        let by = if higher_better {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        by.then(a.0.cmp(&b.0))
    });
}
