//! The route table. Every route is registered through `utoipa_axum::routes!`, which takes the
//! path and method from the handler's `#[utoipa::path]` attribute for both the axum router and
//! the OpenAPI document, so the two cannot drift (`tests/openapi.rs` checks that the router
//! serves exactly the documented routes). [`split`] completes the document with what the
//! shared layers add ([`crate::openapi`]).

pub(crate) mod admin;
pub(crate) mod aliases;
pub(crate) mod changes;
pub(crate) mod collections;
pub(crate) mod entities;
pub(crate) mod query;
pub(crate) mod search;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hybridb",
        description = "Entities (a JSON payload and a vector under one UUID) with vector search, \
                       a change feed, backup and metrics. Errors are \
                       `{\"error\":{\"code\",\"message\"}}`."
    ),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "collections", description = "Create, describe, list and drop collections; payload indexes"),
        (name = "entities", description = "Write, read, scroll, count and delete entities"),
        (name = "search", description = "Vector search with filters"),
        (name = "aliases", description = "Names that resolve to a collection and repoint atomically"),
        (name = "changes", description = "The change feed: pages and a live stream"),
        (name = "admin", description = "Backup, verify, stats, health, metrics, this document"),
        (name = "qdrant", description = "The Qdrant-compatible API (served at the root of its own \
            port, and here under `/qdrant`); errors are Qdrant's `{\"status\":{\"error\"}}`")
    )
)]
struct ApiDoc;

/// Declares the `Authorization: Bearer KEY` scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router of every route and the complete OpenAPI document describing it.
pub(crate) fn split() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = documented().split_for_parts();
    crate::openapi::complete(&mut doc);
    (router, doc)
}

/// Every route, with the OpenAPI document its handlers' attributes make up.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(collections::list))
        .routes(routes!(
            collections::create,
            collections::get,
            collections::drop
        ))
        .routes(routes!(collections::update_metadata))
        .routes(routes!(collections::set_quantization))
        .routes(routes!(entities::upsert))
        .routes(routes!(
            entities::get,
            entities::put_one,
            entities::delete_one
        ))
        .routes(routes!(entities::get_many))
        .routes(routes!(entities::delete))
        .routes(routes!(entities::update_payload))
        .routes(routes!(entities::scroll))
        .routes(routes!(entities::count))
        .routes(routes!(search::search))
        .routes(routes!(search::search_batch))
        .routes(routes!(search::explain))
        .routes(routes!(query::query))
        .routes(routes!(query::query_batch))
        .routes(routes!(query::explain))
        .routes(routes!(
            collections::create_payload_index,
            collections::drop_payload_index
        ))
        .routes(routes!(collections::add_vector, collections::remove_vector))
        .routes(routes!(
            collections::create_text_index,
            collections::drop_text_index
        ))
        .routes(routes!(aliases::list))
        .routes(routes!(aliases::put, aliases::delete))
        .routes(routes!(changes::changes))
        .routes(routes!(changes::stream))
        .routes(routes!(admin::backup))
        .routes(routes!(admin::verify))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::healthz))
        .routes(routes!(admin::readyz))
        .routes(routes!(admin::metrics))
        .routes(routes!(admin::openapi))
        .nest(crate::qdrant::PREFIX, crate::qdrant::routes())
}
