//! Reading Qdrant's query requests into plans, and running them on a collection.
//!
//! A plan is a tree of levels, as Qdrant's query API has it: a level without prefetches is a
//! search (`nearest` a dense vector, a sparse vector or a stored point, in the vector `using`
//! names) or, with no query, the points matching its filter in id order; a level with
//! prefetches runs them first and then fuses their results (`fusion: rrf | dbsf`, or `rrf`
//! with `k` and `weights`) or re-scores the points they found with its own `nearest`. Each
//! level's filter holds for the levels below it (Qdrant propagates filters down the tree),
//! so a prefetch's `limit` counts only points that pass every filter above it.
//!
//! Querying by a point id searches with that point's stored vector (`using`, or the vector
//! of `lookup_from`). The points of the searched collection named anywhere in the query (by
//! `nearest`, `recommend`, `discover` or `context`) are left out of every level, as Qdrant
//! does. Example queries are `recommend.rs`'s, `order_by` and `sample` `order.rs`'s. Payloads
//! and vectors are read only for the final page.

use std::cell::RefCell;
use std::collections::HashSet;

use hybridb::{
    Collection, Condition, Database, EntityId, Filter, Hit, SearchRequest, SparseVector,
    VectorConfig,
};
use serde_json::{Map, Value};

use super::convert::{Selector, bad, filter, point_not_found, prepare, unsupported};
use super::fusion::{DEFAULT_RRF_K, dbsf, rrf};
use super::ids::PointId;
use super::model::SearchParams;
use super::order::{OrderBy, OrderValue, order_by_of, ordered, sample, sample_of};
use super::points::scroll_from;
use super::recommend::{
    Custom, Lookup, Strategy, average_query, custom_of, looked_up, lookup_of, scored, similarity,
};
use super::vectors::{Kind, Layout, QVector, VectorSelect, read_vector};
use crate::error::{ApiError, ErrorCode};

/// Largest accepted `hnsw_ef` (the collection config's own bound).
pub(crate) const MAX_EF: usize = 65_536;

/// Limits above this are cut to the number of points (see `level`).
const CUT_LIMIT_ABOVE: usize = 1024;

/// What a search searches with.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// A dense vector.
    Dense(Vec<f32>),
    /// A sparse vector.
    Sparse(SparseVector),
    /// A stored point's vector; the point is left out.
    Point(PointId),
}

/// How a level fuses its prefetches' results.
#[derive(Debug, Clone)]
pub(crate) enum Fusion {
    /// Reciprocal rank fusion.
    Rrf {
        /// The constant (Qdrant's default 2).
        k: usize,
        /// One weight per prefetch.
        weights: Option<Vec<f32>>,
    },
    /// Distribution-based score fusion.
    Dbsf,
}

/// What a level asks for.
#[derive(Debug, Clone)]
pub(crate) enum Query {
    /// The points matching the filter, in id order (score 1.0).
    Listing,
    /// The nearest points to an input.
    Nearest(Input),
    /// The fusion of the prefetches.
    Fuse(Fusion),
    /// Scoring by examples: `recommend`, `discover`, `context`.
    Custom(Custom),
    /// Ordered by a payload field's values (score 1.0).
    OrderBy(OrderBy),
    /// Random points (score 1.0).
    Sample,
}

/// One level of a query.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    /// Queries run first (fused, or re-scored by `query`).
    pub(crate) prefetch: Vec<Level>,
    /// This level's query.
    pub(crate) query: Query,
    /// The vector searched (Qdrant's name; `""` the unnamed one).
    pub(crate) using: String,
    /// This level's own filter (those above it hold too).
    pub(crate) filter: Option<Filter>,
    /// Graph search effort.
    pub(crate) ef: Option<usize>,
    /// Exact search.
    pub(crate) exact: bool,
    /// Only results at least this good.
    pub(crate) threshold: Option<f32>,
    /// How many results.
    pub(crate) limit: usize,
    /// Diversify a `nearest` query's results.
    pub(crate) mmr: Option<Mmr>,
    /// Where point-id examples' vectors are read (absent: this collection, `using`).
    pub(crate) lookup: Option<Lookup>,
}

/// A checked query, ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The root level.
    pub(crate) root: Level,
    /// Results to skip at the root.
    pub(crate) offset: usize,
    /// The payload the answer carries.
    pub(crate) payload: Selector,
    /// The vectors the answer carries.
    pub(crate) vectors: VectorSelect,
}

/// Query kinds of Qdrant's API that this layer refuses, by their key.
const OTHER_KINDS: [&str; 2] = ["formula", "relevance_feedback"];

/// Reads a search input: a point id, a dense list or a sparse `{indices, values}`.
pub(crate) fn input_of(v: &Value, at: &str) -> Result<Input, ApiError> {
    match v {
        Value::Number(_) | Value::String(_) => serde_json::from_value::<PointId>(v.clone())
            .map(Input::Point)
            .map_err(|e| bad(at, e)),
        _ => Ok(match read_vector(v, at)? {
            QVector::Dense(d) => Input::Dense(d),
            QVector::Sparse(s) => Input::Sparse(s),
        }),
    }
}

/// Reads a level's `query`.
fn query_of(v: Option<&Value>, at: &str) -> Result<Query, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Query::Listing);
    };
    let Value::Object(m) = v else {
        return input_of(v, at).map(Query::Nearest);
    };
    if let Some(kind) = OTHER_KINDS.iter().find(|k| m.contains_key(**k)) {
        return Err(unsupported(&format!("{at}: the {kind:?} query")));
    }
    for kind in ["recommend", "discover", "context"] {
        if let Some(inner) = m.get(kind) {
            return custom_of(kind, inner, at).map(Query::Custom);
        }
    }
    if let Some(o) = m.get("order_by") {
        return order_by_of(o, &format!("{at}.order_by")).map(Query::OrderBy);
    }
    if let Some(s) = m.get("sample") {
        return sample_of(s, at).map(|()| Query::Sample);
    }
    if let Some(inner) = m.get("nearest") {
        // `mmr` beside it is read by `mmr_of`.
        return input_of(inner, &format!("{at}.nearest")).map(Query::Nearest);
    }
    if let Some(f) = m.get("fusion") {
        return match f.as_str() {
            Some("rrf") => Ok(Query::Fuse(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            })),
            Some("dbsf") => Ok(Query::Fuse(Fusion::Dbsf)),
            _ => Err(bad(&format!("{at}.fusion"), "expected \"rrf\" or \"dbsf\"")),
        };
    }
    if let Some(r) = m.get("rrf") {
        let at = format!("{at}.rrf");
        let k = match r.get("k") {
            None | Some(Value::Null) => DEFAULT_RRF_K,
            Some(k) => k
                .as_u64()
                .and_then(|k| usize::try_from(k).ok())
                .filter(|k| *k > 0)
                .ok_or_else(|| bad(&format!("{at}.k"), "expected a positive integer"))?,
        };
        let weights = match r.get("weights") {
            None | Some(Value::Null) => None,
            Some(Value::Array(w)) => Some(
                w.iter()
                    .map(|x| x.as_f64().map(|f| f as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| bad(&format!("{at}.weights"), "expected numbers"))?,
            ),
            Some(_) => return Err(bad(&format!("{at}.weights"), "expected a list of numbers")),
        };
        return Ok(Query::Fuse(Fusion::Rrf { k, weights }));
    }
    input_of(v, at).map(Query::Nearest)
}

/// Maximal marginal relevance over a `nearest` query's candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mmr {
    /// 0: relevance only; 1: diversity only. Default 0.5.
    pub(crate) diversity: f32,
    /// Candidates searched (default: the level's limit).
    pub(crate) candidates: Option<usize>,
}

/// Reads the `mmr` of a `{"nearest": ..., "mmr": {...}}` query.
fn mmr_of(v: Option<&Value>, at: &str) -> Result<Option<Mmr>, ApiError> {
    let Some(m) = v
        .and_then(|q| q.get("mmr"))
        .filter(|m| !m.is_null() && v.is_some_and(|q| q.get("nearest").is_some()))
    else {
        return Ok(None);
    };
    let at = format!("{at}query.mmr");
    let Value::Object(m) = m else {
        return Err(bad(&at, "expected {\"diversity\"?, \"candidates_limit\"?}"));
    };
    let diversity = match m.get("diversity") {
        None | Some(Value::Null) => 0.5,
        Some(d) => d
            .as_f64()
            .filter(|d| (0.0..=1.0).contains(d))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ValidationFailed,
                    format!("{at}.diversity: value {d} invalid, must be from 0 to 1"),
                )
            })? as f32,
    };
    let candidates = match m.get("candidates_limit") {
        None | Some(Value::Null) => None,
        Some(c) => Some(
            c.as_u64()
                .and_then(|c| usize::try_from(c).ok())
                .ok_or_else(|| bad(&format!("{at}.candidates_limit"), "expected a number"))?,
        ),
    };
    Ok(Some(Mmr {
        diversity,
        candidates,
    }))
}

/// Reads `params`: `(hnsw_ef, exact)`.
pub(crate) fn params_of(
    p: Option<SearchParams>,
    at: &str,
) -> Result<(Option<usize>, bool), ApiError> {
    let p = p.unwrap_or_default();
    if p.idf.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(unsupported(&format!("{at}params.idf")));
    }
    if let Some(ef) = p.hnsw_ef
        && (ef == 0 || ef > MAX_EF)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{at}params.hnsw_ef: {ef} is outside 1..={MAX_EF}"),
        ));
    }
    Ok((p.hnsw_ef, p.exact.unwrap_or(false)))
}

/// The fields of a level as a request or a prefetch gives them.
pub(crate) struct LevelFields<'a> {
    pub(crate) prefetch: Option<&'a Value>,
    pub(crate) query: Option<&'a Value>,
    pub(crate) using: Option<String>,
    pub(crate) filter: Option<Value>,
    pub(crate) params: Option<SearchParams>,
    pub(crate) threshold: Option<f32>,
    pub(crate) limit: Option<usize>,
    pub(crate) lookup_from: Option<&'a Value>,
}

/// Reads and checks one level (`at` is the path of its fields, e.g. `prefetch[1].`).
pub(crate) fn level_of(f: LevelFields<'_>, at: &str) -> Result<Level, ApiError> {
    let lookup = lookup_of(f.lookup_from, at)?;
    let prefetch = match f.prefetch {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => vec![prefetch_of(m, &format!("{at}prefetch."))?],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Value::Object(m) => prefetch_of(m, &format!("{at}prefetch[{i}].")),
                _ => Err(bad(&format!("{at}prefetch[{i}]"), "expected an object")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                &format!("{at}prefetch"),
                "expected an object or a list",
            ));
        }
    };
    let query = query_of(f.query, &format!("{at}query"))?;
    let mmr = mmr_of(f.query, at)?;
    let (ef, exact) = params_of(f.params, at)?;
    let level = Level {
        query,
        using: f.using.unwrap_or_default(),
        filter: filter(f.filter)?,
        ef,
        exact,
        threshold: f.threshold,
        limit: f.limit.unwrap_or(10),
        prefetch,
        mmr,
        lookup,
    };
    let refuse = |why: &str| Err(ApiError::new(ErrorCode::BadRequest, why.to_string()));
    match (&level.query, level.prefetch.is_empty()) {
        (Query::Listing, false) => refuse(
            "A query is needed to merge the prefetches. Can't have prefetches without \
             defining a query.",
        ),
        (Query::OrderBy(_), _) if level.threshold.is_some() => {
            refuse("Can't use score_threshold with an order_by query.")
        }
        (Query::Listing, true) if level.threshold.is_some() => refuse(
            "A query is needed to use the score_threshold. Can't have score_threshold \
             without defining a query.",
        ),
        (Query::Fuse(_), true) => refuse(&format!(
            "{at}query: fusion needs prefetches whose results it fuses"
        )),
        (
            Query::Fuse(Fusion::Rrf {
                weights: Some(w), ..
            }),
            false,
        ) if w.len() != level.prefetch.len() => refuse(&format!(
            "Number of weights in RRF should match number of pre-fetches: got {}, expected {}",
            w.len(),
            level.prefetch.len()
        )),
        _ => Ok(level),
    }
}

fn prefetch_of(m: &Map<String, Value>, at: &str) -> Result<Level, ApiError> {
    let params = match m.get("params") {
        None | Some(Value::Null) => None,
        Some(p) => {
            Some(serde_json::from_value(p.clone()).map_err(|e| bad(&format!("{at}params"), e))?)
        }
    };
    let using = match m.get("using") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad(&format!("{at}using"), "expected a vector name")),
    };
    let threshold = match m.get("score_threshold") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_f64()
                .ok_or_else(|| bad(&format!("{at}score_threshold"), "expected a number"))?
                as f32,
        ),
    };
    let limit = match m.get("limit") {
        None | Some(Value::Null) => None,
        Some(l) => Some(
            l.as_u64()
                .and_then(|l| usize::try_from(l).ok())
                .ok_or_else(|| bad(&format!("{at}limit"), "expected a non-negative integer"))?,
        ),
    };
    level_of(
        LevelFields {
            prefetch: m.get("prefetch"),
            query: m.get("query"),
            using,
            filter: m.get("filter").cloned(),
            params,
            threshold,
            limit,
            lookup_from: m.get("lookup_from"),
        },
        at,
    )
}

/// What the results of a level carry.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Carry {
    payload: bool,
    vectors: bool,
}

/// What a running query reads: the database (for `lookup_from`), the collection searched and
/// its layout.
pub(crate) struct Ctx<'a> {
    /// The database, for the collections of `lookup_from`.
    pub(crate) db: &'a Database,
    /// The collection searched.
    pub(crate) c: &'a Collection,
    /// Its vectors as Qdrant sees them.
    pub(crate) layout: Layout,
    /// The order values of the last `order_by` level run (the root's when it orders).
    order: RefCell<Vec<OrderValue>>,
}

impl Ctx<'_> {
    /// The dimension of the engine vector `engine` (0 for a sparse one).
    pub(crate) fn dim(&self, engine: &str) -> usize {
        let config = self.c.config();
        let dim = if engine.is_empty() {
            config.dim
        } else {
            match config.vectors.get(engine) {
                Some(VectorConfig::Dense { dim, .. }) => *dim,
                _ => 0,
            }
        };
        dim as usize
    }
}

/// The point ids of `name` that the levels from `lv` down use as examples.
fn referenced(lv: &Level, name: &str, out: &mut Vec<EntityId>) -> Result<(), ApiError> {
    if lv.lookup.as_ref().is_none_or(|l| l.collection == name) {
        let inputs: Vec<&Input> = match &lv.query {
            Query::Nearest(i) => vec![i],
            Query::Custom(q) => q.inputs(),
            _ => Vec::new(),
        };
        for i in inputs {
            if let Input::Point(p) = i {
                out.push(p.to_entity()?);
            }
        }
    }
    lv.prefetch
        .iter()
        .try_for_each(|p| referenced(p, name, out))
}

/// Both filters (either may be absent).
fn both(a: Option<&Filter>, b: Option<&Filter>) -> Option<Filter> {
    match (a, b) {
        (Some(a), Some(b)) => Some(
            Filter::new()
                .must(Condition::nested(a.clone()))
                .must(Condition::nested(b.clone())),
        ),
        (Some(f), None) | (None, Some(f)) => Some(f.clone()),
        (None, None) => None,
    }
}

/// Runs a plan on the collection `name` (blocking): the points of the answer, best first,
/// with their order values when the root is an `order_by`.
pub(crate) fn run(
    db: &Database,
    c: &Collection,
    name: &str,
    plan: &Plan,
) -> Result<(Vec<Hit>, Option<Vec<OrderValue>>), ApiError> {
    if plan.root.limit == 0 {
        return Ok((Vec::new(), None));
    }
    let cx = Ctx {
        db,
        c,
        layout: Layout::of(c.config()),
        order: RefCell::new(Vec::new()),
    };
    let carry = Carry {
        payload: plan.payload.wants_payload(),
        vectors: plan.vectors.any(),
    };
    // As Qdrant: a random sample has no stable order to skip into.
    let offset = match plan.root.query {
        Query::Sample => 0,
        _ => plan.offset,
    };
    let mut ids = Vec::new();
    referenced(&plan.root, name, &mut ids)?;
    let above = (!ids.is_empty()).then(|| Filter::new().must_not(Condition::has_id(ids)));
    let k = offset.saturating_add(plan.root.limit);
    let mut hits = level(&cx, &plan.root, above.as_ref(), k, carry)?;
    hits.drain(..offset.min(hits.len()));
    let order = matches!(plan.root.query, Query::OrderBy(_)).then(|| {
        let mut o = cx.order.take();
        o.drain(..offset.min(o.len()));
        o
    });
    Ok((hits, order))
}

/// Runs one level for its best `k` results, under the filter `above` of the levels above.
fn level(
    cx: &Ctx<'_>,
    lv: &Level,
    above: Option<&Filter>,
    mut k: usize,
    carry: Carry,
) -> Result<Vec<Hit>, ApiError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    // Qdrant takes any limit (u64::MAX too); more results than points cannot come back, so
    // a limit above the library's own bound is cut to the number of points.
    let c = cx.c;
    // A missing `lookup_from` collection is an error whatever the query's examples are.
    if let Some(l) = &lv.lookup {
        super::convert::collection(cx.db, &l.collection)?;
    }
    if k > CUT_LIMIT_ABOVE {
        let live = usize::try_from(c.count()?).unwrap_or(usize::MAX);
        k = k.min(live.max(1));
    }
    let f = both(above, lv.filter.as_ref());
    if lv.prefetch.is_empty() {
        return match &lv.query {
            Query::Listing => listing(c, f.unwrap_or_default(), k, carry),
            Query::Fuse(_) => Err(bad("query", "fusion needs prefetches")),
            _ => leaf(cx, lv, f, k, carry),
        };
    }
    let sources = lv
        .prefetch
        .iter()
        .map(|p| level(cx, p, f.as_ref(), p.limit, Carry::default()))
        .collect::<Result<Vec<_>, _>>()?;
    match &lv.query {
        Query::Fuse(fusion) => {
            let mut fused = match fusion {
                Fusion::Rrf { k: rk, weights } => rrf(&sources, *rk, weights.as_deref(), k),
                Fusion::Dbsf => dbsf(&sources, k),
            };
            if let Some(t) = lv.threshold {
                fused.retain(|h| h.score >= t);
            }
            fill(c, fused, carry)
        }
        Query::Listing => Err(bad("query", "a query is needed to merge the prefetches")),
        _ => {
            let mut seen = HashSet::new();
            let ids: Vec<EntityId> = sources
                .iter()
                .flatten()
                .map(|h| h.id)
                .filter(|id| seen.insert(*id))
                .collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let among = Filter::new().must(Condition::has_id(ids));
            leaf(cx, lv, both(f.as_ref(), Some(&among)), k, carry)
        }
    }
}

/// Runs a level's own query (not a listing or fusion) for its best `k` under `f`.
fn leaf(
    cx: &Ctx<'_>,
    lv: &Level,
    f: Option<Filter>,
    k: usize,
    carry: Carry,
) -> Result<Vec<Hit>, ApiError> {
    let c = cx.c;
    match &lv.query {
        Query::Nearest(input) => match (&lv.lookup, input) {
            (Some(_), Input::Point(_)) => {
                let input = looked_up(cx, lv, input)?;
                search(c, &cx.layout, lv, &input, f, k, carry)
            }
            _ => search(c, &cx.layout, lv, input, f, k, carry),
        },
        Query::Custom(Custom::Recommend {
            positive,
            negative,
            strategy: Strategy::AverageVector,
        }) => {
            let (engine, kind) = cx.layout.resolve(&lv.using)?;
            let input = average_query(cx, lv, (kind, cx.dim(&engine)), positive, negative)?;
            search(c, &cx.layout, lv, &input, f, k, carry)
        }
        Query::Custom(q) => scored(cx, lv, q, f, k, carry),
        Query::OrderBy(ob) => {
            let (values, ids): (Vec<OrderValue>, Vec<EntityId>) =
                ordered(c, ob, f.unwrap_or_default(), k)?
                    .into_iter()
                    .unzip();
            cx.order.replace(values);
            fill(c, ones(ids), carry)
        }
        Query::Sample => fill(c, ones(sample(c, f.unwrap_or_default(), k)?), carry),
        Query::Listing | Query::Fuse(_) => Err(bad("query", "expected a query to run")),
    }
}

/// Hits of score 1.0 (order and sample results).
fn ones(ids: Vec<EntityId>) -> Vec<Hit> {
    ids.into_iter().map(|id| Hit::new(id, 1.0)).collect()
}

/// The points matching `f` in id order, as hits of score 1.0.
fn listing(c: &Collection, f: Filter, k: usize, carry: Carry) -> Result<Vec<Hit>, ApiError> {
    let (records, _) = scroll_from(c, &f, None, k)?;
    Ok(records
        .into_iter()
        .map(|r| Hit {
            id: r.id,
            score: 1.0,
            payload: carry.payload.then_some(r.payload),
            vector: carry.vectors.then_some(r.vector),
            vectors: carry.vectors.then_some(r.vectors),
        })
        .collect())
}

/// Reads the payloads and vectors of fused hits, when the answer carries them.
pub(crate) fn fill(c: &Collection, mut hits: Vec<Hit>, carry: Carry) -> Result<Vec<Hit>, ApiError> {
    if !carry.payload && !carry.vectors {
        return Ok(hits);
    }
    let ids: Vec<EntityId> = hits.iter().map(|h| h.id).collect();
    for (h, r) in hits.iter_mut().zip(c.get_many(&ids)?) {
        if let Some(r) = r {
            h.payload = carry.payload.then_some(r.payload);
            h.vector = carry.vectors.then_some(r.vector);
            h.vectors = carry.vectors.then_some(r.vectors);
        }
    }
    Ok(hits)
}

/// The wrong-kind error of a query, in words.
fn wrong_kind(using: &str, declared: &str, got: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("Wrong input: vector {using:?} is {declared}, the query is a {got} vector"),
    )
}

/// The `k` nearest points to `input` in the vector `lv.using`, under `f`.
fn search(
    c: &Collection,
    layout: &Layout,
    lv: &Level,
    input: &Input,
    f: Option<Filter>,
    k: usize,
    carry: Carry,
) -> Result<Vec<Hit>, ApiError> {
    let (engine, kind) = layout.resolve(&lv.using)?;
    if let Some(m) = lv.mmr {
        return diversified(c, lv, input, (&engine, kind), f, k, carry, m);
    }
    let mut req = match (input, kind) {
        (Input::Dense(v), Kind::Dense(_)) => SearchRequest::new(v.clone(), k).using(engine),
        (Input::Sparse(s), Kind::Sparse) => SearchRequest::new_sparse(engine, s.clone(), k),
        (Input::Point(_), _) => SearchRequest::new(Vec::new(), k).using(engine),
        (Input::Dense(_), Kind::Sparse) => return Err(wrong_kind(&lv.using, "sparse", "dense")),
        (Input::Sparse(_), Kind::Dense(_)) => {
            return Err(wrong_kind(&lv.using, "dense", "sparse"));
        }
    }
    .with_payload(carry.payload)
    .with_vector(carry.vectors);
    if let Some(f) = f {
        req = req.filter(f);
    }
    if let Some(t) = lv.threshold {
        req = req.score_threshold(t);
    }
    if lv.exact && kind != Kind::Sparse {
        // The widest beam searches every live point: an exact answer.
        let live = usize::try_from(c.count()?).unwrap_or(MAX_EF);
        req = req.ef(live.clamp(1, MAX_EF).max(k));
    } else if let Some(ef) = lv.ef {
        req = req.ef(ef.max(k));
    }
    match input {
        Input::Point(p) => match c.search_like_with(p.to_entity()?, req) {
            Err(hybridb::Error::InvalidQuery(hybridb::QueryProblem::UnknownEntity(_))) => {
                Err(point_not_found(*p))
            }
            other => Ok(other?),
        },
        _ => Ok(c.search_with(&req)?),
    }
}

/// A `nearest` query diversified by MMR, as Qdrant does: the `candidates_limit` nearest points
/// (default: the level's `limit`), then up to `k` of them picked one by one by `(1 - diversity) * relevance -
/// diversity * (greatest similarity to a point already picked)` (`hybridb::fusion::mmr`),
/// each keeping its search score. Similarity is Qdrant's internal score of the vector's
/// metric, higher better (Euclid: the negated squared distance; Manhattan: the negated
/// distance). Dense vectors only.
#[allow(clippy::too_many_arguments)]
fn diversified(
    c: &Collection,
    lv: &Level,
    input: &Input,
    (engine, kind): (&str, Kind),
    f: Option<Filter>,
    k: usize,
    carry: Carry,
    m: Mmr,
) -> Result<Vec<Hit>, ApiError> {
    let Kind::Dense(metric) = kind else {
        return Err(unsupported("mmr over a sparse vector"));
    };
    let plain = Level {
        mmr: None,
        // As Qdrant: `candidates_limit`, by default the level's limit (offset not added).
        limit: m.candidates.unwrap_or(lv.limit),
        ..lv.clone()
    };
    let wide = Carry {
        payload: carry.payload,
        vectors: true,
    };
    let layout = Layout::of(c.config());
    let hits = search(c, &layout, &plain, input, f, plain.limit, wide)?;
    // The stored vector `using` of each candidate, and the query as the index sees it.
    let vector_of = |h: &Hit| -> Vec<f32> {
        if engine.is_empty() {
            h.vector.clone().unwrap_or_default()
        } else {
            match h.vectors.as_ref().and_then(|v| v.get(engine)) {
                Some(hybridb::NamedVector::Dense(v)) => v.clone(),
                _ => Vec::new(),
            }
        }
    };
    let query = match input {
        Input::Dense(v) => prepare(v.clone(), metric),
        Input::Point(p) => {
            let id = p.to_entity()?;
            let r = c.get(id)?.ok_or_else(|| point_not_found(*p))?;
            let h = Hit {
                id,
                score: 0.0,
                payload: None,
                vector: Some(r.vector),
                vectors: Some(r.vectors),
            };
            vector_of(&h)
        }
        Input::Sparse(_) => return Err(unsupported("mmr over a sparse vector")),
    };
    let candidates: Vec<(EntityId, Vec<f32>)> = hits.iter().map(|h| (h.id, vector_of(h))).collect();
    let picked = hybridb::fusion::mmr(&query, &candidates, m.diversity, k, |a, b| {
        similarity(metric, a, b)
    });
    let mut by_id: std::collections::HashMap<EntityId, Hit> =
        hits.into_iter().map(|h| (h.id, h)).collect();
    Ok(picked
        .into_iter()
        .filter_map(|(id, _)| by_id.remove(&id))
        .map(|mut h| {
            if !carry.vectors {
                h.vector = None;
                h.vectors = None;
            }
            h
        })
        .collect())
}
