//! The Qdrant-compatible REST API: a translation layer over the same [`hybridb::Database`],
//! the same writer and the same limits as the native API — never a second engine.
//!
//! It is served at the root of its own port (`hybridb serve --qdrant-port`, default 6333),
//! where Qdrant's clients work unchanged, and under `/qdrant` on the main port, which is how
//! the server's one OpenAPI document describes it (operation ids `qdrant_*`, tag `qdrant`).
//!
//! Scope: the unnamed vector, named dense vectors and sparse vectors (`vectors.rs` maps them
//! onto the engine's); collections, points, scroll, count, delete, payload updates, payload
//! indexes, named-vector administration, aliases, the query API (`nearest` by a dense or
//! sparse vector or a point id, `prefetch` with `rrf`/`dbsf` fusion or re-scoring, filtered
//! listing; `plan.rs`; `recommend`, `discover`, `context` and `lookup_from` in
//! `recommend.rs`; `order_by` and `sample` in `order.rs`), and the older search and
//! recommendation APIs (`recommend_api.rs`). What is out of scope answers 400 "not supported
//! yet" (see `convert::unsupported`).
//!
//! - Point ids (integers and UUIDs) map onto entity ids reversibly (`ids.rs`).
//! - Answers use Qdrant's envelopes; every error, including those of the shared layers, is
//!   rewritten into Qdrant's error form (`envelope.rs`).
//! - API keys: `api-key: KEY` as Qdrant's clients send it, or `Authorization: Bearer KEY`;
//!   the read-only key may use the reading routes (GETs, retrieve, scroll, count, query,
//!   search, recommend).

pub(crate) mod batch;
pub(crate) mod collections;
pub(crate) mod convert;
pub(crate) mod envelope;
pub(crate) mod fusion;
pub mod ids;
pub(crate) mod knobs;
pub(crate) mod model;
pub(crate) mod named;
pub(crate) mod order;
pub(crate) mod plan;
pub(crate) mod points;
pub(crate) mod query;
pub(crate) mod recommend;
pub(crate) mod recommend_api;
pub(crate) mod update;
pub(crate) mod vectors;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Where the Qdrant routes sit in the main port's route table and OpenAPI document.
pub(crate) const PREFIX: &str = "/qdrant";

/// The route templates (relative to the Qdrant root) of the POSTs that only read.
pub(crate) const READING_POSTS: [&str; 9] = [
    "/collections/{collection_name}/points",
    "/collections/{collection_name}/points/scroll",
    "/collections/{collection_name}/points/count",
    "/collections/{collection_name}/points/query",
    "/collections/{collection_name}/points/query/batch",
    "/collections/{collection_name}/points/search",
    "/collections/{collection_name}/points/search/batch",
    "/collections/{collection_name}/points/recommend",
    "/collections/{collection_name}/points/recommend/batch",
];

#[derive(OpenApi)]
#[openapi(components(schemas(envelope::QdrantError, ids::PointId)))]
struct QdrantDoc;

/// Every Qdrant route, with the OpenAPI document of their attributes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(QdrantDoc::openapi())
        .routes(routes!(collections::root))
        .routes(routes!(collections::list))
        .routes(routes!(
            collections::get,
            collections::create,
            collections::delete,
            update::update
        ))
        .routes(routes!(collections::exists))
        .routes(routes!(collections::create_index))
        .routes(routes!(collections::delete_index))
        .routes(routes!(
            named::create_vector_name,
            named::delete_vector_name
        ))
        .routes(routes!(collections::update_aliases))
        .routes(routes!(collections::aliases))
        .routes(routes!(collections::collection_aliases))
        .routes(routes!(points::upsert, points::retrieve))
        .routes(routes!(points::get_one))
        .routes(routes!(points::delete))
        .routes(routes!(points::scroll))
        .routes(routes!(points::count))
        .routes(routes!(points::set_payload, points::overwrite_payload))
        .routes(routes!(points::delete_payload))
        .routes(routes!(points::clear_payload))
        .routes(routes!(batch::batch_update))
        .routes(routes!(named::update_vectors))
        .routes(routes!(named::delete_vectors))
        .routes(routes!(query::query))
        .routes(routes!(query::query_batch))
        .routes(routes!(query::search))
        .routes(routes!(query::search_batch))
        .routes(routes!(recommend_api::recommend))
        .routes(routes!(recommend_api::recommend_batch))
}
