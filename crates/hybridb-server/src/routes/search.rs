//! Vector search, single and batched: by a dense vector, a sparse vector or an entity's
//! stored vector (`like`), in the default vector or the named one `using` names.

use crate::reply::Json;
use axum::extract::State;
use hybridb::{Collection, Consistency, EntityId, SearchRequest};

use crate::api::{
    ConsistencySpec, ExplainOut, HitOut, SearchBatchBody, SearchBatchOut, SearchBody, SearchOut,
};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::state::{AppState, blocking};

/// Largest accepted `ef` (the collection config's own bound).
const MAX_EF: usize = 65_536;

/// A checked search: the library request, and the entity to search like (whose stored
/// vector `req.using` is the query).
#[derive(Debug, Clone)]
struct Search {
    req: SearchRequest,
    like: Option<EntityId>,
}

/// Checks one search body and turns it into a library request.
fn request(body: SearchBody, at: &str) -> Result<Search, ApiError> {
    let given = [
        body.vector.is_some(),
        body.sparse.is_some(),
        body.text.is_some(),
        body.like.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "{at}give exactly one of `vector` (dense), `sparse`, `text` (BM25) and `like` \
                 (an entity's stored vector)"
            ),
        ));
    }
    if body.text.is_some() && body.using.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{at}text: name the text-indexed payload field with `using`"),
        ));
    }
    if body.sparse.is_some() && body.using.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{at}sparse: name the sparse vector to search with `using`"),
        ));
    }
    let mut req = match (body.sparse, body.text) {
        (Some(q), _) => SearchRequest::new_sparse(body.using, q.0, body.k),
        (None, Some(t)) => SearchRequest::new_text(body.using, t, body.k),
        (None, None) => {
            SearchRequest::new(body.vector.unwrap_or_default(), body.k).using(body.using)
        }
    }
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
    if let Some(o) = body.oversampling {
        // Checked by the engine (a typed `BadOversampling` error).
        req = req.oversampling(o);
    }
    Ok(Search {
        req,
        like: body.like,
    })
}

/// 404 for a `like` entity that does not exist.
fn no_like(id: EntityId, c: &Collection) -> ApiError {
    ApiError::new(
        ErrorCode::EntityNotFound,
        format!("like: entity {id} not found in collection {:?}", c.name()),
    )
}

fn run(c: &Collection, s: &Search) -> Result<SearchOut, ApiError> {
    let hits = match s.like {
        None => c.search_with(&s.req)?,
        Some(id) => match c.search_like_with(id, s.req.clone()) {
            Err(hybridb::Error::InvalidQuery(hybridb::QueryProblem::UnknownEntity(_))) => {
                return Err(no_like(id, c));
            }
            other => other?,
        },
    };
    Ok(SearchOut {
        hits: hits.into_iter().map(HitOut::from).collect(),
    })
}

/// The request an explained `like` search runs (`Collection::like_request`: the entity's
/// stored vector as the query, the entity left out inside the filter).
fn resolve_like(c: &Collection, s: Search) -> Result<SearchRequest, ApiError> {
    let Some(id) = s.like else {
        return Ok(s.req);
    };
    match c.like_request(id, s.req) {
        Err(hybridb::Error::InvalidQuery(hybridb::QueryProblem::UnknownEntity(_))) => {
            Err(no_like(id, c))
        }
        other => Ok(other?),
    }
}

/// Search
///
/// The `k` entities nearest to the query, best first, among those that pass `filter` (never
/// fewer than `k` while `k` entities pass it). The query is a dense `vector`, a `sparse`
/// vector, or the stored vector of the entity `like` (left out of the hits); `using` names
/// the vector searched (default: the default vector). Only entities that have that vector
/// can be hits.
#[utoipa::path(post, path = "/collections/{name}/search", tag = "search",
    operation_id = "search",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = SearchBody,
    responses(
        (status = 200, description = "The hits, best first", body = SearchOut),
        (status = 400, description = "`invalid_query` (k, ef, vector, sparse, using, like, score_threshold), `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`, `entity_not_found` (the `like` entity)", body = ErrorBody)))]
pub(crate) async fn search(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchBody>,
) -> Result<Json<SearchOut>, ApiError> {
    let search = request(body, "")?;
    blocking(move || {
        let c = st.db.collection(&name)?;
        run(&c, &search).map(Json)
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
        (status = 404, description = "`collection_not_found`, `entity_not_found` (a `like` entity)", body = ErrorBody)))]
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
        (status = 400, description = "`invalid_query` (k, ef, vector, sparse, using, like, score_threshold), `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`, `entity_not_found` (the `like` entity)", body = ErrorBody)))]
pub(crate) async fn explain(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchBody>,
) -> Result<Json<ExplainOut>, ApiError> {
    let search = request(body, "")?;
    blocking(move || {
        let c = st.db.collection(&name)?;
        let req = resolve_like(&c, search)?;
        Ok(Json(ExplainOut::from(c.explain(&req)?)))
    })
    .await
}
