//! Qdrant's query API (`points/query`, `points/query/batch`) and the older search API
//! (`points/search`, `points/search/batch`) that clients before 1.10 use; both are read into
//! the plans of [`super::plan`] and run there.
//!
//! Scores follow Qdrant's conventions as the library's do: similarity for Cosine, Dot and
//! sparse vectors (higher first), the distance for Euclid and Manhattan (lower first);
//! `score_threshold` keeps hits at least that good. MMR, multi-vectors and the other query
//! kinds answer 400 "not supported yet".

use std::time::Instant;

use axum::extract::State;
use serde_json::Value;

use super::convert::{Selector, bad, collection, filter, scored};
use super::envelope::{QdrantError, Reply, ok};
use super::model::{
    QueryBatchRequest, QueryRequest, QueryResponse, ScoredPoint, SearchBatchRequest, SearchRequest,
};
use super::plan::{Input, Level, LevelFields, Plan, Query, input_of, level_of, params_of, run};
use super::vectors::VectorSelect;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

fn plan_query(q: QueryRequest, at: &str) -> Result<Plan, ApiError> {
    if q.limit == Some(0) {
        // Qdrant's request validation (its request keeps these fields under `internal`).
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("{at}internal.limit: value 0 invalid, must be 1 or larger"),
        ));
    }
    let root = level_of(
        LevelFields {
            prefetch: q.prefetch.as_ref(),
            query: q.query.as_ref(),
            using: q.using,
            filter: q.filter,
            params: q.params,
            threshold: q.score_threshold,
            limit: q.limit,
            lookup_from: q.lookup_from.as_ref(),
        },
        at,
    )?;
    Ok(Plan {
        root,
        offset: q.offset.unwrap_or(0),
        payload: Selector::read(q.with_payload.as_ref(), false)?,
        vectors: VectorSelect::read(q.with_vector.as_ref())?,
    })
}

fn plan_search(s: SearchRequest, at: &str) -> Result<Plan, ApiError> {
    // A bare list searches the unnamed vector; `{"name": ..., "vector": ...}` a named one,
    // dense (a list) or sparse (`{indices, values}`).
    let (using, vector) = match &s.vector {
        Value::Object(m) if m.contains_key("name") || m.contains_key("vector") => {
            let name = match m.get("name") {
                Some(Value::String(n)) => n.clone(),
                _ => return Err(bad(&format!("{at}vector.name"), "expected a vector name")),
            };
            (name, m.get("vector").cloned().unwrap_or(Value::Null))
        }
        other => (String::new(), other.clone()),
    };
    let input = match vector {
        Value::Array(_) | Value::Object(_) => input_of(&vector, &format!("{at}vector"))?,
        _ => {
            return Err(bad(
                &format!("{at}vector"),
                "expected a list of numbers, or {\"name\": ..., \"vector\": ...}",
            ));
        }
    };
    if matches!(input, Input::Point(_)) {
        return Err(bad(&format!("{at}vector"), "expected a vector"));
    }
    let (ef, exact) = params_of(s.params, at)?;
    Ok(Plan {
        root: Level {
            prefetch: Vec::new(),
            query: Query::Nearest(input),
            using,
            filter: filter(s.filter)?,
            ef,
            exact,
            threshold: s.score_threshold,
            limit: s.limit,
            mmr: None,
            lookup: None,
        },
        offset: s.offset.unwrap_or(0),
        payload: Selector::read(s.with_payload.as_ref(), false)?,
        vectors: VectorSelect::read(s.with_vector.as_ref())?,
    })
}

/// Runs a plan on the collection `name` and writes its hits in Qdrant's form (blocking).
pub(crate) fn answer(
    db: &hybridb::Database,
    name: &str,
    plan: &Plan,
) -> Result<Vec<ScoredPoint>, ApiError> {
    let c = collection(db, name)?;
    let (hits, order) = run(db, &c, name, plan)?;
    let mut order = order.map(Vec::into_iter);
    Ok(hits
        .into_iter()
        .map(|h| {
            let mut p = scored(h, &plan.payload, &plan.vectors);
            p.order_value = order.as_mut().and_then(Iterator::next);
            p
        })
        .collect())
}

/// Query points
///
/// The nearest points to a dense vector, a sparse vector or a stored point (`{"nearest":
/// ...}` or the bare vector or id) in the vector `using` names; with `prefetch`, the fusion
/// (`{"fusion": "rrf" | "dbsf"}`, `{"rrf": {k, weights}}`) or re-scoring of the prefetches'
/// results; with no query, the points matching the filter in id order.
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
    let points = blocking(move || answer(&st.db, &name, &plan)).await?;
    Ok(ok(QueryResponse { points }, started))
}

/// Refuses a batch above the server's limit.
pub(crate) fn check_batch(st: &AppState, n: usize) -> Result<(), ApiError> {
    let max = st.config.max_batch_searches;
    if n > max {
        return Err(bad("searches", format!("at most {max} searches per batch")));
    }
    Ok(())
}

/// Plans every request of a batch (a bad one is named `searches[i].…`, and nothing runs), then
/// answers them in order on the blocking pool: one list of hits each.
pub(crate) async fn answer_batch<T>(
    st: AppState,
    name: String,
    requests: Vec<T>,
    plan: impl Fn(T, &str) -> Result<Plan, ApiError>,
) -> Result<Vec<Vec<ScoredPoint>>, ApiError> {
    check_batch(&st, requests.len())?;
    let plans = requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| plan(r, &format!("searches[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    blocking(move || plans.iter().map(|p| answer(&st.db, &name, p)).collect()).await
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
    let results = answer_batch(st, name, body.searches, plan_query)
        .await?
        .into_iter()
        .map(|points| QueryResponse { points })
        .collect();
    Ok(ok(results, started))
}

/// Search points
///
/// Qdrant's older search API: the `limit` nearest points to `vector` (a list, or a named dense
/// or sparse vector `{"name", "vector"}`).
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
    let points = blocking(move || answer(&st.db, &name, &plan)).await?;
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
    let results = answer_batch(st, name, body.searches, plan_search).await?;
    Ok(ok(results, started))
}
