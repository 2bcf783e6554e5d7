//! Collection aliases: list, point (create or repoint atomically), delete. Every route that
//! takes a collection name also accepts an alias (resolution is `Database::collection`).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// An alias and the collection it resolves to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasOut {
    /// The alias.
    pub alias: String,
    /// Its target collection.
    pub collection: String,
    /// The target before this request (`PUT` only; `null` for a new alias).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// Answer of `GET /aliases`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasList {
    /// Every alias, sorted by name.
    pub aliases: Vec<AliasOut>,
}

/// Body of `PUT /aliases/{alias}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    /// The collection the alias is to resolve to (a collection, not another alias).
    pub collection: String,
}

/// List aliases
///
/// Every alias with the collection it resolves to, sorted by name.
#[utoipa::path(get, path = "/aliases", tag = "aliases",
    operation_id = "list_aliases",
    responses((status = 200, description = "All aliases", body = AliasList)))]
pub(crate) async fn list(State(st): State<AppState>) -> Json<AliasList> {
    Json(AliasList {
        aliases: st
            .db
            .aliases()
            .into_iter()
            .map(|a| AliasOut {
                alias: a.alias,
                collection: a.collection,
                previous: None,
            })
            .collect(),
    })
}

/// Set an alias
///
/// Points an alias at a collection, creating it or repointing it in one transaction.
#[utoipa::path(put, path = "/aliases/{alias}", tag = "aliases",
    operation_id = "set_alias",
    params(("alias" = String, Path, description = "1..=64 bytes of [A-Za-z0-9_-]")),
    request_body = SetAlias,
    responses(
        (status = 200, description = "The alias points at the collection; `previous` is its former target", body = AliasOut),
        (status = 400, description = "`invalid_collection_name`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`: no such target", body = ErrorBody),
        (status = 409, description = "`name_is_collection`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn put(
    State(st): State<AppState>,
    ApiPath(alias): ApiPath<String>,
    JsonBody(body): JsonBody<SetAlias>,
) -> Result<Json<AliasOut>, ApiError> {
    blocking(move || {
        let previous = st.db.set_alias(&alias, &body.collection)?;
        Ok(Json(AliasOut {
            alias,
            collection: body.collection,
            previous,
        }))
    })
    .await
}

/// Delete an alias
///
/// Deletes an alias; the collection stays.
#[utoipa::path(delete, path = "/aliases/{alias}", tag = "aliases",
    operation_id = "delete_alias",
    params(("alias" = String, Path, description = "The alias")),
    responses(
        (status = 200, description = "The alias is gone", body = AliasOut),
        (status = 404, description = "`alias_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn delete(
    State(st): State<AppState>,
    ApiPath(alias): ApiPath<String>,
) -> Result<Json<AliasOut>, ApiError> {
    blocking(move || {
        let collection = st.db.delete_alias(&alias)?;
        Ok(Json(AliasOut {
            alias,
            collection,
            previous: None,
        }))
    })
    .await
}
