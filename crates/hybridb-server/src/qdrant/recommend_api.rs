//! Qdrant's older recommendation API (`points/recommend`, `points/recommend/batch`), which
//! clients before the query API use: each request is read into a one-level plan whose query is
//! `{"recommend": {positive, negative, strategy}}` and runs as the query API's (`recommend.rs`).

use std::time::Instant;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::convert::Selector;
use super::envelope::{QdrantError, Reply, ok};
use super::model::{ScoredPoint, SearchParams};
use super::plan::{LevelFields, Plan, level_of};
use super::query::{answer, answer_batch};
use super::vectors::VectorSelect;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// Body of `POST /collections/{collection_name}/points/recommend`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecommendRequest {
    /// Point ids or vectors to look like.
    #[schema(value_type = Option<Vec<Object>>)]
    pub positive: Option<Value>,
    /// Point ids or vectors to look unlike.
    #[schema(value_type = Option<Vec<Object>>)]
    pub negative: Option<Value>,
    /// `average_vector` (default), `best_score` or `sum_scores`.
    #[schema(value_type = Option<String>)]
    pub strategy: Option<Value>,
    /// Only points matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// Search parameters.
    pub params: Option<SearchParams>,
    /// Most hits.
    pub limit: usize,
    /// Hits to skip first.
    pub offset: Option<usize>,
    /// As in the query API; default `false`.
    #[schema(value_type = Object)]
    pub with_payload: Option<Value>,
    /// As in the query API; default `false`.
    #[schema(value_type = Object)]
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<Value>,
    /// Only hits at least this good.
    pub score_threshold: Option<f32>,
    /// The vector searched (absent: the unnamed vector).
    pub using: Option<String>,
    /// Where the vectors of point-id examples are read: `{"collection", "vector"?}`.
    #[schema(value_type = Object)]
    pub lookup_from: Option<Value>,
}

/// Body of `POST /collections/{collection_name}/points/recommend/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecommendBatchRequest {
    /// The requests.
    pub searches: Vec<RecommendRequest>,
}

fn plan_recommend(r: RecommendRequest, at: &str) -> Result<Plan, ApiError> {
    let query = json!({"recommend": {
        "positive": r.positive, "negative": r.negative, "strategy": r.strategy}});
    let root = level_of(
        LevelFields {
            prefetch: None,
            query: Some(&query),
            using: r.using,
            filter: r.filter,
            params: r.params,
            threshold: r.score_threshold,
            limit: Some(r.limit),
            lookup_from: r.lookup_from.as_ref(),
        },
        at,
    )?;
    Ok(Plan {
        root,
        offset: r.offset.unwrap_or(0),
        payload: Selector::read(r.with_payload.as_ref(), false)?,
        vectors: VectorSelect::read(r.with_vector.as_ref())?,
    })
}

/// Recommend points
///
/// Qdrant's older recommendation API: the points most like `positive` and unlike `negative`
/// (point ids or vectors), the examples themselves left out.
#[utoipa::path(post, path = "/collections/{collection_name}/points/recommend", tag = "qdrant",
    operation_id = "qdrant_recommend_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write"),
           ("timeout" = Option<u64>, Query, description = "Accepted; the server's time limit applies")),
    request_body = RecommendRequest,
    responses(
        (status = 200, description = "The hits, best first", body = Reply<Vec<ScoredPoint>>),
        (status = 400, description = "A bad or unsupported request", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn recommend(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<RecommendRequest>,
) -> Result<Json<Reply<Vec<ScoredPoint>>>, ApiError> {
    let started = Instant::now();
    let plan = plan_recommend(body, "")?;
    let points = blocking(move || answer(&st.db, &name, &plan)).await?;
    Ok(ok(points, started))
}

/// Recommend points in a batch
///
/// Several requests of the older recommendation API in one; one list of hits each.
#[utoipa::path(post, path = "/collections/{collection_name}/points/recommend/batch", tag = "qdrant",
    operation_id = "qdrant_recommend_batch_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write"),
           ("timeout" = Option<u64>, Query, description = "Accepted; the server's time limit applies")),
    request_body = RecommendBatchRequest,
    responses(
        (status = 200, description = "One list of hits per request, in order", body = Reply<Vec<Vec<ScoredPoint>>>),
        (status = 400, description = "A bad or unsupported request (named)", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn recommend_batch(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<RecommendBatchRequest>,
) -> Result<Json<Reply<Vec<Vec<ScoredPoint>>>>, ApiError> {
    let started = Instant::now();
    let results = answer_batch(st, name, body.searches, plan_recommend).await?;
    Ok(ok(results, started))
}
