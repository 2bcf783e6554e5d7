//! Vector search, single and batched.

use crate::reply::Json;
use axum::extract::State;
use hybridb::{Collection, Consistency, SearchRequest};

use crate::api::{
    ConsistencySpec, ExplainOut, HitOut, SearchBatchBody, SearchBatchOut, SearchBody, SearchOut,
};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::state::{AppState, blocking};

/// Largest accepted `ef` (the collection config's own bound).
const MAX_EF: usize = 65_536;

/// Checks one search body and turns it into a library request.
fn request(body: SearchBody, at: &str) -> Result<SearchRequest, ApiError> {
    let mut req = SearchRequest::new(body.vector, body.k)
        .with_payload(body.with_payload)
        .with_vector(body.with_vector)
        .consistency(match body.consistency {
            ConsistencySpec::Strong => Consistency::Strong,
            ConsistencySpec::Eventual => Consistency::Eventual,
        });
    if let Some(filter) = body.filter {
        req = req.filter(filter);
    }
    if let Some(t) = body.score_threshold {
        req = req.score_threshold(t);
    }
    if let Some(ef) = body.ef {
        if ef == 0 || ef > MAX_EF {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("{at}ef: {ef} is outside 1..={MAX_EF}"),
            ));
        }
        req = req.ef(ef);
    }
    Ok(req)
}

fn run(c: &Collection, req: &SearchRequest) -> Result<SearchOut, ApiError> {
    Ok(SearchOut {
        hits: c.search_with(req)?.into_iter().map(HitOut::from).collect(),
    })
}

/// Search
///
/// The `k` entities nearest to `vector`, best first, among those that pass `filter` (never
/// fewer than `k` while `k` entities pass it).
#[utoipa::path(post, path = "/collections/{name}/search", tag = "search",
    operation_id = "search",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = SearchBody,
    responses(
        (status = 200, description = "The hits, best first", body = SearchOut),
        (status = 400, description = "`invalid_query` (k, ef, vector, score_threshold), `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn search(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchBody>,
) -> Result<Json<SearchOut>, ApiError> {
    let req = request(body, "")?;
    blocking(move || {
        let c = st.db.collection(&name)?;
        run(&c, &req).map(Json)
    })
    .await
}

/// Search in a batch
///
/// Several searches in one request (at most 1024); one result per search, in order.
#[utoipa::path(post, path = "/collections/{name}/search/batch", tag = "search",
    operation_id = "search_batch",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = SearchBatchBody,
    responses(
        (status = 200, description = "One result per search, in order", body = SearchBatchOut),
        (status = 400, description = "`invalid_query`, `invalid_filter` (the message names the search, e.g. `searches[2]`); `invalid_body`: more searches than the limit", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn search_batch(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchBatchBody>,
) -> Result<Json<SearchBatchOut>, ApiError> {
    let max = st.config.max_batch_searches;
    if body.searches.len() > max {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("searches: at most {max} searches per batch"),
        ));
    }
    let reqs = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, b)| request(b, &format!("searches[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    blocking(move || {
        let c = st.db.collection(&name)?;
        let results = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| run(&c, r).map_err(|e| e.at(&format!("searches[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(SearchBatchOut { results }))
    })
    .await
}

/// Explain a search
///
/// Runs a search and reports how: the plan, the planner's cardinality, where the time went.
#[utoipa::path(post, path = "/collections/{name}/search/explain", tag = "search",
    operation_id = "explain_search",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = SearchBody,
    responses(
        (status = 200, description = "The plan, its numbers and the hits", body = ExplainOut),
        (status = 400, description = "`invalid_query` (k, ef, vector, score_threshold), `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn explain(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchBody>,
) -> Result<Json<ExplainOut>, ApiError> {
    let req = request(body, "")?;
    blocking(move || {
        let c = st.db.collection(&name)?;
        Ok(Json(ExplainOut::from(c.explain(&req)?)))
    })
    .await
}
