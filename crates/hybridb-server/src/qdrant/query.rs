//! Qdrant's query API (`points/query`, `points/query/batch`) for what needs no more than one
//! dense vector: `nearest` by a vector or by a point id, and no query at all (the points
//! matching the filter, in id order); and the older search API (`points/search`,
//! `points/search/batch`) that clients before 1.10 use.
//!
//! Scores follow Qdrant's conventions as the library's do: similarity for Cosine and Dot
//! (higher first), the distance for Euclid and Manhattan (lower first); `score_threshold` keeps
//! hits at least that good. Querying by a point id searches with its stored vector and leaves
//! that point out, as Qdrant does. Prefetches, fusion, MMR, named, sparse and multi vectors and
//! the other query kinds answer 400 "not supported yet".

use std::time::Instant;

use axum::extract::State;
use hybridb::{Collection, Filter};
use serde_json::Value;

use super::convert::{
    Selector, bad, collection, dense, filter, point_not_found, scored, unsupported, with_vector,
};
use super::envelope::{QdrantError, Reply, ok};
use super::ids::PointId;
use super::model::{
    QueryBatchRequest, QueryRequest, QueryResponse, ScoredPoint, SearchBatchRequest, SearchParams,
    SearchRequest,
};
use super::points::scroll_from;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// Largest accepted `hnsw_ef` (the collection config's own bound).
const MAX_EF: usize = 65_536;

/// What a query asks for.
#[derive(Debug, Clone)]
enum Nearest {
    /// The points matching the filter, in id order (score 1.0, as Qdrant's local mode).
    Listing,
    /// Nearest to a vector.
    Vector(Vec<f32>),
    /// Nearest to a stored point's vector, leaving that point out.
    Point(PointId),
}

/// A checked query, ready to run.
#[derive(Debug, Clone)]
struct Plan {
    nearest: Nearest,
    filter: Option<Filter>,
    limit: usize,
    offset: usize,
    threshold: Option<f32>,
    ef: Option<usize>,
    exact: bool,
    payload: Selector,
    vector: bool,
}

/// Query kinds of Qdrant's API that this layer refuses, by their key.
const OTHER_KINDS: [&str; 10] = [
    "recommend",
    "discover",
    "context",
    "order_by",
    "fusion",
    "rrf",
    "formula",
    "sample",
    "relevance_feedback",
    "mmr",
];

fn nearest_of(v: &Value, at: &str) -> Result<Nearest, ApiError> {
    match v {
        Value::Null => Ok(Nearest::Listing),
        Value::Number(_) | Value::String(_) => serde_json::from_value::<PointId>(v.clone())
            .map(Nearest::Point)
            .map_err(|e| bad(at, e)),
        Value::Array(_) => dense(v, at).map(Nearest::Vector),
        Value::Object(m) => {
            if let Some(kind) = OTHER_KINDS.iter().find(|k| m.contains_key(**k)) {
                return Err(unsupported(&format!("{at}: the {kind:?} query")));
            }
            match m.get("nearest") {
                Some(inner) if !inner.is_null() => nearest_of(inner, &format!("{at}.nearest")),
                _ => dense(v, at).map(Nearest::Vector),
            }
        }
        Value::Bool(_) => Err(bad(at, "expected a vector, a point id or a query object")),
    }
}

fn params_of(params: Option<SearchParams>, at: &str) -> Result<(Option<usize>, bool), ApiError> {
    let p = params.unwrap_or_default();
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

fn plan_query(q: QueryRequest, at: &str) -> Result<Plan, ApiError> {
    let present = |v: &Option<Value>| {
        v.as_ref().is_some_and(|v| match v {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            _ => true,
        })
    };
    if present(&q.prefetch) {
        return Err(unsupported(&format!("{at}prefetch")));
    }
    if present(&q.lookup_from) {
        return Err(unsupported(&format!("{at}lookup_from")));
    }
    if q.using.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported(&format!("{at}using: named vectors")));
    }
    let nearest = match &q.query {
        None => Nearest::Listing,
        Some(v) => nearest_of(v, &format!("{at}query"))?,
    };
    let (ef, exact) = params_of(q.params, at)?;
    Ok(Plan {
        nearest,
        filter: filter(q.filter)?,
        limit: q.limit.unwrap_or(10),
        offset: q.offset.unwrap_or(0),
        threshold: q.score_threshold,
        ef,
        exact,
        payload: Selector::read(q.with_payload.as_ref(), false)?,
        vector: with_vector(q.with_vector.as_ref())?,
    })
}

fn plan_search(s: SearchRequest, at: &str) -> Result<Plan, ApiError> {
    // `{"name": "", "vector": [...]}` names the unnamed vector.
    let vector = match &s.vector {
        Value::Object(m) if m.contains_key("name") => {
            if m.get("name").and_then(Value::as_str) != Some("") {
                return Err(unsupported(&format!("{at}vector: named vectors")));
            }
            m.get("vector").cloned().unwrap_or(Value::Null)
        }
        other => other.clone(),
    };
    let (ef, exact) = params_of(s.params, at)?;
    Ok(Plan {
        nearest: Nearest::Vector(dense(&vector, &format!("{at}vector"))?),
        filter: filter(s.filter)?,
        limit: s.limit,
        offset: s.offset.unwrap_or(0),
        threshold: s.score_threshold,
        ef,
        exact,
        payload: Selector::read(s.with_payload.as_ref(), false)?,
        vector: with_vector(s.with_vector.as_ref())?,
    })
}

/// Runs a plan on a collection (blocking).
fn run(c: &Collection, plan: Plan) -> Result<Vec<ScoredPoint>, ApiError> {
    if plan.limit == 0 {
        return Ok(Vec::new());
    }
    let k = plan.offset.saturating_add(plan.limit);
    // Searching like a stored point: the engine searches with its vector and leaves it out
    // inside the filter (`Collection::search_like_with`).
    let (query, like): (Vec<f32>, Option<PointId>) = match plan.nearest {
        Nearest::Listing => {
            let f = plan.filter.clone().unwrap_or_default();
            let (records, _) = scroll_from(c, &f, None, k)?;
            return Ok(records
                .into_iter()
                .skip(plan.offset)
                .map(|r| ScoredPoint {
                    id: PointId::of(r.id),
                    version: r.version,
                    score: 1.0,
                    payload: plan.payload.apply(r.payload),
                    vector: plan.vector.then_some(r.vector),
                })
                .collect());
        }
        Nearest::Vector(v) => (v, None),
        Nearest::Point(p) => (Vec::new(), Some(p)),
    };
    let mut req = hybridb::SearchRequest::new(query, k)
        .with_payload(plan.payload.wants_payload())
        .with_vector(plan.vector);
    if let Some(f) = plan.filter {
        req = req.filter(f);
    }
    if let Some(t) = plan.threshold {
        req = req.score_threshold(t);
    }
    if plan.exact {
        // The widest beam searches every live point: an exact answer.
        let live = usize::try_from(c.count()?).unwrap_or(MAX_EF);
        req = req.ef(live.clamp(1, MAX_EF).max(k));
    } else if let Some(ef) = plan.ef {
        req = req.ef(ef.max(k));
    }
    let hits = match like {
        None => c.search_with(&req)?,
        Some(p) => match c.search_like_with(p.to_entity()?, req) {
            Err(hybridb::Error::InvalidQuery(hybridb::QueryProblem::UnknownEntity(_))) => {
                return Err(point_not_found(p));
            }
            other => other?,
        },
    };
    Ok(hits
        .into_iter()
        .skip(plan.offset)
        .take(plan.limit)
        .map(|h| scored(h, &plan.payload, plan.vector))
        .collect())
}

/// Query points
///
/// The nearest points to a vector or to a stored point (`{"nearest": ...}` or the bare
/// vector or id), or with no query the points matching the filter in id order.
#[utoipa::path(post, path = "/collections/{collection_name}/points/query", tag = "qdrant",
    operation_id = "qdrant_query_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write"),
           ("timeout" = Option<u64>, Query, description = "Accepted; the server's time limit applies")),
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The points, best first", body = Reply<QueryResponse>),
        (status = 400, description = "A bad or unsupported query", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn query(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<QueryRequest>,
) -> Result<Json<Reply<QueryResponse>>, ApiError> {
    let started = Instant::now();
    let plan = plan_query(body, "")?;
    let points = blocking(move || run(&collection(&st.db, &name)?, plan)).await?;
    Ok(ok(QueryResponse { points }, started))
}

fn check_batch(st: &AppState, n: usize) -> Result<(), ApiError> {
    let max = st.config.max_batch_searches;
    if n > max {
        return Err(bad("searches", format!("at most {max} searches per batch")));
    }
    Ok(())
}

/// Query points in a batch
///
/// Several queries in one request (at most the server's batch limit); one result each.
#[utoipa::path(post, path = "/collections/{collection_name}/points/query/batch", tag = "qdrant",
    operation_id = "qdrant_query_batch_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write"),
           ("timeout" = Option<u64>, Query, description = "Accepted; the server's time limit applies")),
    request_body = QueryBatchRequest,
    responses(
        (status = 200, description = "One result per query, in order", body = Reply<Vec<QueryResponse>>),
        (status = 400, description = "A bad or unsupported query (named)", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn query_batch(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<QueryBatchRequest>,
) -> Result<Json<Reply<Vec<QueryResponse>>>, ApiError> {
    let started = Instant::now();
    check_batch(&st, body.searches.len())?;
    let plans = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, q)| plan_query(q, &format!("searches[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    let results = blocking(move || {
        let c = collection(&st.db, &name)?;
        plans
            .into_iter()
            .map(|p| run(&c, p).map(|points| QueryResponse { points }))
            .collect()
    })
    .await?;
    Ok(ok(results, started))
}

/// Search points
///
/// Qdrant's older search API: the `limit` nearest points to `vector`.
#[utoipa::path(post, path = "/collections/{collection_name}/points/search", tag = "qdrant",
    operation_id = "qdrant_search_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write"),
           ("timeout" = Option<u64>, Query, description = "Accepted; the server's time limit applies")),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The hits, best first", body = Reply<Vec<ScoredPoint>>),
        (status = 400, description = "A bad or unsupported search", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn search(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchRequest>,
) -> Result<Json<Reply<Vec<ScoredPoint>>>, ApiError> {
    let started = Instant::now();
    let plan = plan_search(body, "")?;
    let points = blocking(move || run(&collection(&st.db, &name)?, plan)).await?;
    Ok(ok(points, started))
}

/// Search points in a batch
///
/// Several searches of the older API in one request; one list of hits each.
#[utoipa::path(post, path = "/collections/{collection_name}/points/search/batch", tag = "qdrant",
    operation_id = "qdrant_search_batch_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write"),
           ("timeout" = Option<u64>, Query, description = "Accepted; the server's time limit applies")),
    request_body = SearchBatchRequest,
    responses(
        (status = 200, description = "One list of hits per search, in order", body = Reply<Vec<Vec<ScoredPoint>>>),
        (status = 400, description = "A bad or unsupported search (named)", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn search_batch(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchBatchRequest>,
) -> Result<Json<Reply<Vec<Vec<ScoredPoint>>>>, ApiError> {
    let started = Instant::now();
    check_batch(&st, body.searches.len())?;
    let plans = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, s)| plan_search(s, &format!("searches[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    let results = blocking(move || {
        let c = collection(&st.db, &name)?;
        plans.into_iter().map(|p| run(&c, p)).collect()
    })
    .await?;
    Ok(ok(results, started))
}
