//! Reads that take a filter: search (plain and filtered, with `explain`), count and scroll.
//!
//! A filter is first evaluated against the payload indexes under the index's lock
//! ([`crate::query::payload::eval`]). If every condition was answered there, the search runs under
//! that same lock hold, so it sees one consistent moment. Otherwise the indexes give a superset
//! whose payloads are read from redb and checked with [`Filter::matches`]; that happens
//! outside the lock, so the search afterwards keeps a hit only if its slot still holds the
//! entity whose payload was checked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use redb::ReadableTable;

use crate::db::collection::Collection;
use crate::index::bitset::SlotBitset;
use crate::index::hnsw::{DEFAULT_OVERSAMPLING, MAX_OVERSAMPLING};
use crate::model::config::{IndexKind, Metric, VectorConfig};
use crate::model::entity::NamedVector;
use crate::model::entity::{Record, check_vector, decode_payload, decode_record, index_form};
use crate::model::error::{Error, FilterProblem, QueryProblem, Result};
use crate::model::id::EntityId;
use crate::model::sparse::SparseVector;
use crate::query::filter::{Condition, Filter};
use crate::query::payload::eval::{self, Evaluated};
use crate::query::search::{Consistency, Explain, Hit, Plan, ScrollPage, SearchRequest};
use crate::query::state::{FilterInput, IndexState, Planned, Searched};
use crate::store::write::id_slots;

/// A superset larger than this fraction of the live slots is checked by one sequential pass
/// over the entities table instead of one lookup per candidate.
const SCAN_FRACTION: usize = 8;

fn filter_error(p: FilterProblem) -> Error {
    Error::InvalidQuery(QueryProblem::Filter(p))
}

/// The slots matching a filter, decided from payloads where the indexes could not.
pub(crate) struct Matching {
    pub bits: SlotBitset,
    /// For slots decided from payloads: the entity whose payload was checked.
    pub expect: Option<HashMap<u32, EntityId>>,
    pub payloads_checked: usize,
}

/// Checks the payloads of the superset `bits` against `filter`, reading them through
/// `entities`: one lookup per candidate for small supersets, one sequential pass otherwise.
pub(crate) fn check_payloads<T>(
    entities: &T,
    index: &IndexState,
    filter: &Filter,
    bits: &SlotBitset,
) -> Result<Matching>
where
    T: ReadableTable<EntityId, &'static [u8]>,
{
    let mut out = SlotBitset::new();
    let mut expect = HashMap::new();
    let mut checked = 0;
    let mut consider = |id: EntityId, rec: &[u8]| -> Result<()> {
        let (header, json) = decode_record(rec)?;
        if bits.contains(header.slot) {
            checked += 1;
            if filter.matches(id, &decode_payload(json)?) {
                out.insert(header.slot);
                expect.insert(header.slot, id);
            }
        }
        Ok(())
    };
    if bits.len() > index.live_count() / SCAN_FRACTION {
        for row in entities.iter()? {
            let (id, rec) = row?;
            consider(id.value(), rec.value())?;
        }
    } else {
        for (_, id) in index.candidates(bits) {
            if let Some(rec) = entities.get(id)? {
                consider(id, rec.value())?;
            }
        }
    }
    Ok(Matching {
        bits: out,
        expect: Some(expect),
        payloads_checked: checked,
    })
}

/// Every part of a request that shapes its answer, as bytes (the result cache's key; the
/// consistency is left out: a cached answer is valid for both).
fn result_key(req: &SearchRequest) -> Box<[u8]> {
    let mut key = Vec::with_capacity(req.vector.len() * 4 + 64);
    key.extend_from_slice(&(req.k as u64).to_le_bytes());
    key.extend_from_slice(&req.ef.map_or(u64::MAX, |e| e as u64).to_le_bytes());
    key.extend_from_slice(
        &req.oversampling
            .map_or(u32::MAX, f32::to_bits)
            .to_le_bytes(),
    );
    key.push(u8::from(req.with_payload) | (u8::from(req.with_vector) << 1));
    match req.score_threshold {
        Some(t) => {
            key.push(1);
            key.extend_from_slice(&t.to_bits().to_le_bytes());
        }
        None => key.push(0),
    }
    key.extend_from_slice(&(req.vector.len() as u64).to_le_bytes());
    for x in &req.vector {
        key.extend_from_slice(&x.to_bits().to_le_bytes());
    }
    key.extend_from_slice(&(req.using.len() as u64).to_le_bytes());
    key.extend_from_slice(req.using.as_bytes());
    if let Some(t) = &req.text {
        key.push(b't');
        key.extend_from_slice(&(t.len() as u64).to_le_bytes());
        key.extend_from_slice(t.as_bytes());
    }
    if let Some(q) = &req.sparse {
        key.extend_from_slice(&(q.len() as u64).to_le_bytes());
        for (i, x) in q.indices.iter().zip(&q.values) {
            key.extend_from_slice(&i.to_le_bytes());
            key.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
    if let Some(f) = req.filter.as_ref().filter(|f| !f.is_empty()) {
        // Debug output is deterministic and covers every field of the filter.
        key.extend_from_slice(format!("{f:?}").as_bytes());
    }
    key.into_boxed_slice()
}

impl Collection {
    /// The `k` entities nearest to `query`, best first (ids and scores only).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let req = SearchRequest::new(query.to_vec(), k);
        self.observe(crate::observe::Op::Search, k, || self.search_cached(&req))
    }

    /// A search with options: filter, payloads, vectors, effort, consistency, threshold.
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Condition, Database, Entity, EntityId, Filter, Metric};
    /// use hybridb::{PayloadIndexKind, SearchRequest};
    /// use serde_json::json;
    ///
    /// let db = Database::open(dir.path().join("f.redb"))?;
    /// let config = CollectionConfig::new(2, Metric::L2)
    ///     .with_payload_index("lang", PayloadIndexKind::Keyword);
    /// let docs = db.create_collection("docs", config)?;
    /// docs.upsert(Entity::new(EntityId::from_key("a"), json!({"lang": "en"}), vec![0.0, 0.0]))?;
    /// docs.upsert(Entity::new(EntityId::from_key("b"), json!({"lang": "de"}), vec![0.1, 0.0]))?;
    ///
    /// let only_de = Filter::new().must(Condition::matches_value("lang", "de"));
    /// let hits = docs.search_with(&SearchRequest::new(vec![0.0, 0.0], 5).filter(only_de))?;
    /// assert_eq!(hits.len(), 1);
    /// assert_eq!(hits[0].id, EntityId::from_key("b"));
    /// # Ok(()) }
    /// ```
    ///
    /// Answers are kept in the result cache (L3) for as long as the collection is not written:
    /// the same request on an unchanged collection is answered without searching.
    pub fn search_with(&self, req: &SearchRequest) -> Result<Vec<Hit>> {
        self.observe(crate::observe::Op::Search, req.k, || {
            self.search_cached(req)
        })
    }

    /// The `k` entities nearest to the stored vector of `id`, `id` itself left out (its
    /// duplicates stay). Fails with [`crate::QueryProblem::UnknownEntity`] if `id` does not
    /// exist.
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
    /// use serde_json::json;
    ///
    /// let db = Database::open(dir.path().join("like.redb"))?;
    /// let docs = db.create_collection("docs", CollectionConfig::new(2, Metric::L2))?;
    /// for (key, x) in [("a", 0.0), ("b", 1.0), ("c", 5.0)] {
    ///     docs.upsert(Entity::new(EntityId::from_key(key), json!({}), vec![x, 0.0]))?;
    /// }
    /// let hits = docs.search_like(EntityId::from_key("a"), 1)?;
    /// assert_eq!(hits[0].id, EntityId::from_key("b"));
    /// # Ok(()) }
    /// ```
    pub fn search_like(&self, id: EntityId, k: usize) -> Result<Vec<Hit>> {
        self.search_like_with(id, SearchRequest::new(Vec::new(), k))
    }

    /// As [`Collection::search_like`], with the options of `req` (the vector searched,
    /// filter, threshold, payloads, effort, consistency); `req.vector` and `req.sparse` are
    /// ignored: the stored vector `req.using` of `id` is searched with, and `id` is left out
    /// inside the filter, so `k` hits come back whenever `k` other entities match. Fails with
    /// [`crate::QueryProblem::EntityLacksVector`] if `id` does not have that vector.
    pub fn search_like_with(&self, id: EntityId, req: SearchRequest) -> Result<Vec<Hit>> {
        self.observe(crate::observe::Op::Search, req.k, || {
            self.search_cached(&self.like_request(id, req)?)
        })
    }

    /// The request [`Collection::search_like_with`] runs: `req` with the stored vector
    /// `req.using` of `id` as its query (dense or sparse) and `id` left out inside the filter.
    /// Fails with [`crate::QueryProblem::UnknownEntity`] or
    /// [`crate::QueryProblem::EntityLacksVector`]. Useful to `explain` a search-like.
    pub fn like_request(&self, id: EntityId, mut req: SearchRequest) -> Result<SearchRequest> {
        // Read without `get`'s own span and counters: this is part of one search.
        let Some(mut record) = self.records(&[id])?.pop().flatten() else {
            return Err(Error::InvalidQuery(QueryProblem::UnknownEntity(id)));
        };
        req.sparse = None;
        if req.using.is_empty() {
            req.vector = record.vector;
        } else {
            match record.vectors.remove(&req.using) {
                Some(NamedVector::Dense(v)) => req.vector = v,
                Some(NamedVector::Sparse(v)) => {
                    req.vector = Vec::new();
                    req.sparse = Some(v);
                }
                None => {
                    return Err(Error::InvalidQuery(QueryProblem::EntityLacksVector {
                        id,
                        name: req.using.clone(),
                    }));
                }
            }
        }
        let not_itself = Condition::has_id([id]);
        req.filter = Some(match req.filter.take() {
            Some(f) => f.must_not(not_itself),
            None => Filter::new().must_not(not_itself),
        });
        Ok(req)
    }

    fn search_cached(&self, req: &SearchRequest) -> Result<Vec<Hit>> {
        let caches = &self.db.shared.caches;
        if !caches.results_on() {
            return Ok(self.run_search(req)?.hits);
        }
        self.shared.check_live()?;
        let Some(count) = self.shared.window.stable() else {
            caches.results_bypassed();
            return Ok(self.run_search(req)?.hits);
        };
        let key = (self.shared.stored.cid, result_key(req));
        if let Some(hits) = caches.results(&key, count) {
            return Ok(hits.to_vec());
        }
        let hits = self.run_search(req)?.hits;
        // Kept only if no write to the collection began while it ran (the window was closed
        // when it started, so the index then held every write).
        if self.shared.window.unchanged(count) && caches.admit_results(&key) {
            caches.put_results(key, count, Arc::from(hits.clone()));
        }
        Ok(hits)
    }

    /// Runs a search and reports how: the plan the planner chose, the number of matching
    /// entities it planned with, and where the time went.
    pub fn explain(&self, req: &SearchRequest) -> Result<Explain> {
        self.observe(crate::observe::Op::Explain, req.k, || self.run_search(req))
    }

    /// Resolves what `req` searches: the vector named by `req.using`, checked against the
    /// query given.
    pub(crate) fn target<'r>(&self, req: &'r SearchRequest) -> Result<Target<'r>> {
        let config = &self.shared.stored.config;
        let bad = |p| Error::InvalidQuery(p);
        if let Some(text) = &req.text {
            if req.sparse.is_some() || !req.vector.is_empty() {
                return Err(bad(QueryProblem::BadQuery(
                    "a text search takes no vector".into(),
                )));
            }
            let Some(terms) = self.shared.index.text_terms(&req.using, text) else {
                return Err(bad(QueryProblem::UnknownTextIndex(req.using.clone())));
            };
            return Ok(Target::Text {
                field: &req.using,
                terms,
            });
        }
        let declared = if req.using.is_empty() {
            if !config.has_default_vector() {
                return Err(bad(QueryProblem::UnknownVector(String::new())));
            }
            VectorConfig::Dense {
                dim: config.dim,
                metric: config.metric,
                index: config.index,
                quantization: self.shared.quantization(),
            }
        } else {
            match self.shared.named().get(&req.using) {
                Some(d) => d.config,
                None => return Err(bad(QueryProblem::UnknownVector(req.using.clone()))),
            }
        };
        let wrong_kind = |declared: &'static str, got: &'static str| {
            bad(QueryProblem::WrongVectorKind {
                name: req.using.clone(),
                declared,
                got,
            })
        };
        match (declared, &req.sparse) {
            (
                VectorConfig::Dense {
                    dim, metric, index, ..
                },
                None,
            ) => {
                check_vector(&req.vector, dim as usize, metric)
                    .map_err(|p| bad(QueryProblem::Vector(p)))?;
                let oversampling = req.oversampling.unwrap_or(DEFAULT_OVERSAMPLING);
                if !(1.0..=MAX_OVERSAMPLING).contains(&oversampling) {
                    return Err(bad(QueryProblem::BadOversampling(oversampling)));
                }
                let ef = match (req.ef, index) {
                    (Some(ef), _) => ef,
                    (None, IndexKind::Hnsw { ef, .. }) => ef as usize,
                    (None, _) => req.k,
                }
                .max(req.k);
                Ok(Target::Dense {
                    using: &req.using,
                    query: index_form(&req.vector, metric),
                    metric,
                    ef,
                    oversampling,
                })
            }
            (VectorConfig::Sparse { .. }, Some(q)) => {
                q.check().map_err(|p| bad(QueryProblem::Vector(p)))?;
                Ok(Target::Sparse {
                    using: &req.using,
                    query: q,
                })
            }
            (VectorConfig::Dense { .. }, Some(_)) => Err(wrong_kind("dense", "sparse")),
            (VectorConfig::Sparse { .. }, None) => Err(wrong_kind("sparse", "dense")),
        }
    }

    /// A search, uncached and without a span of its own.
    pub(crate) fn run_search(&self, req: &SearchRequest) -> Result<Explain> {
        Ok(self.run_search_slots(req)?.0)
    }

    /// As [`Collection::run_search`], with the slot of each hit (same order), so that a caller
    /// can read the hits' vectors from the in-memory index.
    pub(crate) fn run_search_slots(&self, req: &SearchRequest) -> Result<(Explain, Vec<u32>)> {
        let t0 = Instant::now();
        self.shared.check_live()?;
        self.check_k(req.k)?;
        let target = self.target(req)?;
        if let Some(t) = req.score_threshold
            && !t.is_finite()
        {
            return Err(Error::InvalidQuery(QueryProblem::BadScoreThreshold(t)));
        }
        if req.consistency == Consistency::Strong {
            self.db.shared.progress.wait_for_committed();
        }
        let (planned, payloads_checked) = match req.filter.as_ref().filter(|f| !f.is_empty()) {
            None => (self.unfiltered_search(&target, req.k)?, 0),
            Some(filter) => self.filtered_search(&target, req.k, filter)?,
        };
        let metric = target.score_metric();
        let score = |d: f32| score_of(metric, d);
        let good_enough = |s: f32| good_enough(metric, req.score_threshold, s);
        let mut hits: Vec<(Hit, u32)> = planned
            .hits
            .iter()
            .zip(&planned.slots)
            .map(|(&(id, distance), &slot)| {
                let hit = Hit::new(id, score(distance));
                (hit, slot)
            })
            .filter(|(h, _)| good_enough(h.score))
            .collect();
        if req.with_payload || req.with_vector {
            let ids: Vec<EntityId> = hits.iter().map(|h| h.0.id).collect();
            let records = self.records(&ids)?;
            // An entity deleted after the index was read is gone, and one rewritten since no
            // longer counts if it fails the filter now: drop its hit.
            hits = hits
                .into_iter()
                .zip(records)
                .filter_map(|((mut h, slot), r)| {
                    let r = r?;
                    if let Some(f) = &req.filter
                        && !f.matches(r.id, &r.payload)
                    {
                        return None;
                    }
                    h.payload = req.with_payload.then_some(r.payload);
                    if req.with_vector {
                        h.vector = Some(r.vector);
                        h.vectors = Some(r.vectors);
                    }
                    Some((h, slot))
                })
                .collect();
        }
        let (hits, slots) = hits.into_iter().unzip();
        let explain = Explain {
            plan: planned.plan,
            fallback: planned.fallback,
            matching: planned.matching,
            estimated: planned.estimated,
            live: planned.live,
            payloads_checked,
            ef: planned.ef,
            filter_micros: planned.filter_micros,
            search_micros: planned.search_micros,
            total_micros: t0.elapsed().as_micros() as u64,
            hits,
        };
        Ok((explain, slots))
    }

    /// A search without a filter: the plain index search (dense) or the posting lists'
    /// top-k (sparse, text).
    fn unfiltered_search(&self, target: &Target<'_>, k: usize) -> Result<Planned> {
        let t = Instant::now();
        let index = &self.shared.index;
        let searched = match target {
            Target::Dense {
                using,
                query,
                ef,
                oversampling,
                ..
            } => {
                let (hits, slots) = index.search(using, query, k, *ef, *oversampling);
                let live = index.live_count();
                return Ok(Planned {
                    hits,
                    slots,
                    plan: Plan::Unfiltered,
                    fallback: false,
                    matching: live,
                    estimated: false,
                    live,
                    ef: *ef,
                    filter_micros: 0,
                    search_micros: t.elapsed().as_micros() as u64,
                });
            }
            Target::Sparse { using, query } => index.search_sparse(using, query, k, None),
            Target::Text { field, terms } => index.search_text(field, terms, k, None),
        };
        match searched.map_err(filter_error)? {
            Searched::Done(planned) => Ok(planned),
            Searched::NeedsPayloads(_) => Err(crate::model::error::corrupted(
                "an unfiltered search asked for payloads",
            )),
        }
    }

    fn filtered_search(
        &self,
        target: &Target<'_>,
        k: usize,
        filter: &Filter,
    ) -> Result<(Planned, usize)> {
        let index = &self.shared.index;
        index
            .with_payload(|p| eval::check(filter, p))
            .map_err(filter_error)?;
        let search = |input: FilterInput<'_>| match target {
            Target::Dense {
                using,
                query,
                ef,
                oversampling,
                ..
            } => index.search_planned(using, query, k, *ef, *oversampling, input),
            Target::Sparse { using, query } => index.search_sparse(using, query, k, Some(input)),
            Target::Text { field, terms } => index.search_text(field, terms, k, Some(input)),
        };
        let t = Instant::now();
        let ids = self.has_id_slots(filter)?;
        // First try: every condition answered by the postings, under one lock hold.
        let input = FilterInput::Filter {
            filter,
            id_slots: &ids,
        };
        let superset = match search(input).map_err(filter_error)? {
            Searched::Done(planned) => return Ok((planned, 0)),
            Searched::NeedsPayloads(superset) => superset,
        };
        // Then: check payloads outside the lock, search among the slots that passed.
        let m = self.check_superset(filter, &superset)?;
        let filter_micros = t.elapsed().as_micros() as u64;
        let expect = m.expect.unwrap_or_default();
        let input = FilterInput::Slots {
            bits: m.bits,
            expect: &expect,
        };
        match search(input).map_err(filter_error)? {
            Searched::Done(mut planned) => {
                planned.filter_micros += filter_micros;
                Ok((planned, m.payloads_checked))
            }
            Searched::NeedsPayloads(_) => Err(crate::model::error::corrupted(
                "a search among checked slots asked for payloads",
            )),
        }
    }

    /// The slots of the ids that `has_id` conditions name.
    fn has_id_slots(&self, filter: &Filter) -> Result<HashMap<EntityId, u32>> {
        let wanted = filter.mentioned_ids();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let txn = self.read_txn()?;
        id_slots(&self.record_tables(&txn)?.entities, wanted)
    }

    fn check_superset(&self, filter: &Filter, superset: &SlotBitset) -> Result<Matching> {
        let txn = self.read_txn()?;
        let tables = self.record_tables(&txn)?;
        check_payloads(&tables.entities, &self.shared.index, filter, superset)
    }

    /// The live slots matching `filter` (after waiting for committed writes to be applied).
    pub(crate) fn matching(&self, filter: &Filter) -> Result<Matching> {
        self.shared.check_live()?;
        let index = &self.shared.index;
        index
            .with_payload(|p| eval::check(filter, p))
            .map_err(filter_error)?;
        self.db.shared.progress.wait_for_committed();
        let ids = self.has_id_slots(filter)?;
        let e: Evaluated = index.evaluate(filter, &ids).map_err(filter_error)?;
        if e.exact {
            return Ok(Matching {
                bits: e.bits,
                expect: None,
                payloads_checked: 0,
            });
        }
        self.check_superset(filter, &e.bits)
    }

    /// Number of entities passing `filter` (all of them for an empty filter).
    pub fn count_where(&self, filter: &Filter) -> Result<u64> {
        self.observe(crate::observe::Op::CountWhere, 1, || {
            if filter.is_empty() {
                return self.count_all();
            }
            Ok(self.matching(filter)?.bits.len() as u64)
        })
    }

    /// Up to `limit` entities passing `filter`, in id order, starting after `after`.
    ///
    /// Pages are consistent one by one; an entity changed between pages is seen in its state
    /// when its page was read.
    pub fn scroll_where(
        &self,
        filter: &Filter,
        after: Option<EntityId>,
        limit: usize,
    ) -> Result<ScrollPage> {
        self.observe(crate::observe::Op::ScrollWhere, limit, || {
            self.scroll_matching(filter, after, limit)
        })
    }

    fn scroll_matching(
        &self,
        filter: &Filter,
        after: Option<EntityId>,
        limit: usize,
    ) -> Result<ScrollPage> {
        if filter.is_empty() {
            return self.scroll_all(after, limit);
        }
        self.check_k(limit)?;
        let m = self.matching(filter)?;
        let mut ids: Vec<EntityId> = self
            .shared
            .index
            .candidates(&m.bits)
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| after.is_none_or(|a| *id > a))
            .collect();
        ids.sort_unstable();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let records: Vec<Record> = self
            .records(&ids)?
            .into_iter()
            .flatten()
            .filter(|r| filter.matches(r.id, &r.payload))
            .collect();
        Ok(ScrollPage {
            records,
            next: if more { ids.last().copied() } else { None },
        })
    }
}

/// The score a hit reports for an engine distance `d` (lower is better) under `metric`: the
/// distance itself for L2 (square-rooted) and Manhattan, the similarity for cosine and dot.
pub(crate) fn score_of(metric: Metric, d: f32) -> f32 {
    match metric {
        Metric::L2 => d.max(0.0).sqrt(),
        Metric::Manhattan => d.max(0.0),
        Metric::Cosine | Metric::Dot => -d,
    }
}

/// Whether the score `s` passes `threshold` under `metric` (distances: at most; similarities:
/// at least).
pub(crate) fn good_enough(metric: Metric, threshold: Option<f32>, s: f32) -> bool {
    match (threshold, metric) {
        (None, _) => true,
        (Some(t), Metric::L2 | Metric::Manhattan) => s <= t,
        (Some(t), _) => s >= t,
    }
}

/// What a search runs on, resolved from its request.
pub(crate) enum Target<'r> {
    /// A dense vector (`""`: the default one); `query` is in index form.
    Dense {
        using: &'r str,
        query: Vec<f32>,
        metric: Metric,
        ef: usize,
        /// Candidates rescored per result on a quantized index.
        oversampling: f32,
    },
    /// A sparse named vector.
    Sparse {
        using: &'r str,
        query: &'r SparseVector,
    },
    /// A text index, with the analyzed query terms.
    Text { field: &'r str, terms: Vec<String> },
}

impl Target<'_> {
    /// The metric its scores follow (sparse scores are dot products).
    pub(crate) fn score_metric(&self) -> Metric {
        match self {
            Target::Dense { metric, .. } => *metric,
            Target::Sparse { .. } | Target::Text { .. } => Metric::Dot,
        }
    }
}
