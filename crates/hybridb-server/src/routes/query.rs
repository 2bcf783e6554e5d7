//! The query API: prefetches, rescoring, fusion (RRF, DBSF) and MMR in one request, as the
//! library's `Collection::query` runs it.

use axum::extract::State;

use crate::api::{QueryBatchBody, QueryBody, QueryExplainOut, SearchBatchOut, SearchOut};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// Query
///
/// Runs a query: its `prefetch` queries first (each with its own stage, `using`, filter and
/// limit), then its stage — a search (`nearest`, `sparse`, `text`, `like`) of the collection or,
/// with prefetches, a rescoring of their candidates; `fusion` of the prefetches' lists (`rrf`
/// with `k` and `weights`, or `dbsf`); or `mmr`. The query's filter holds in every prefetch.
#[utoipa::path(post, path = "/collections/{name}/query", tag = "search",
    operation_id = "query",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = QueryBody,
    responses(
        (status = 200, description = "The hits, best first (MMR: in pick order)", body = SearchOut),
        (status = 400, description = "`invalid_query` (limit, stage, using, fusion without prefetches, weights, nesting), `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn query(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<QueryBody>,
) -> Result<Json<SearchOut>, ApiError> {
    let q = body.into_query();
    blocking(move || {
        let c = st.db.collection(&name)?;
        let hits = c.query(&q)?;
        Ok(Json(SearchOut {
            hits: hits.into_iter().map(Into::into).collect(),
        }))
    })
    .await
}

/// Query in a batch
///
/// Several queries in one request (at most the server's batch limit); one result per query,
/// in order. Every query is checked before any runs.
#[utoipa::path(post, path = "/collections/{name}/query/batch", tag = "search",
    operation_id = "query_batch",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = QueryBatchBody,
    responses(
        (status = 200, description = "One result per query, in order", body = SearchBatchOut),
        (status = 400, description = "`invalid_query`, `invalid_filter`; `invalid_body`: more queries than the limit", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn query_batch(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<QueryBatchBody>,
) -> Result<Json<SearchBatchOut>, ApiError> {
    let max = st.config.max_batch_searches;
    if body.queries.len() > max {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("queries: at most {max} queries per batch"),
        ));
    }
    let queries: Vec<hybridb::Query> = body
        .queries
        .into_iter()
        .map(QueryBody::into_query)
        .collect();
    blocking(move || {
        let c = st.db.collection(&name)?;
        let results = c
            .query_batch(&queries)?
            .into_iter()
            .map(|hits| SearchOut {
                hits: hits.into_iter().map(Into::into).collect(),
            })
            .collect();
        Ok(Json(SearchBatchOut { results }))
    })
    .await
}

/// Explain a query
///
/// Runs a query and reports every stage: its depth, kind, search plan, candidates, results
/// and time.
#[utoipa::path(post, path = "/collections/{name}/query/explain", tag = "search",
    operation_id = "explain_query",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = QueryBody,
    responses(
        (status = 200, description = "The stages and the hits", body = QueryExplainOut),
        (status = 400, description = "`invalid_query`, `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn explain(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<QueryBody>,
) -> Result<Json<QueryExplainOut>, ApiError> {
    let q = body.into_query();
    blocking(move || {
        let c = st.db.collection(&name)?;
        Ok(Json(QueryExplainOut::from(c.query_explain(&q)?)))
    })
    .await
}
