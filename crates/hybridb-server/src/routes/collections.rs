//! Collections: create, get, list, drop.

use crate::reply::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::api::{
    CollectionList, CollectionOut, CreateCollection, Dropped, Metadata, PayloadIndexBody,
    PayloadIndexOut, QuantizationChange, TextIndexSpec, VectorOut, VectorSpec,
};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::state::{AppState, blocking};

/// The catalogue entry of a collection (not found: dropped meanwhile).
fn info(db: &hybridb::Database, name: &str) -> Result<hybridb::CollectionInfo, ApiError> {
    db.collections()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| hybridb::Error::CollectionNotFound(name.to_string()).into())
}

/// Create a collection
///
/// Creates an empty collection with a default vector (dimension, metric, index: HNSW by
/// default), named dense and sparse vectors, and declared payload indexes. `dim` 0 (or
/// absent) makes a collection without a default vector: it must declare named ones.
#[utoipa::path(put, path = "/collections/{name}", tag = "collections",
    operation_id = "create_collection",
    params(("name" = String, Path, description = "1..=64 bytes of [A-Za-z0-9_-], not starting with `-`")),
    request_body = CreateCollection,
    responses(
        (status = 201, description = "The collection is created", body = CollectionOut),
        (status = 400, description = "`invalid_collection_name`, `invalid_config`", body = ErrorBody),
        (status = 409, description = "`collection_exists`, `name_is_alias`", body = ErrorBody,
            example = json!({"error": {"code": "collection_exists",
                "message": "collection \"docs\" already exists"}})),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn create(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CreateCollection>,
) -> Result<(StatusCode, Json<CollectionOut>), ApiError> {
    let config = body.to_config();
    let out = blocking(move || {
        st.db.create_collection(&name, config)?;
        let info = info(&st.db, &name)?;
        Ok(CollectionOut::new(info.name, &info.config, info.created_at))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Update a collection's metadata
///
/// Merges the body's keys into the collection's metadata (a `null` value removes its key,
/// other keys stay), in one transaction; answers the metadata after it.
#[utoipa::path(patch, path = "/collections/{name}/metadata", tag = "collections",
    operation_id = "update_collection_metadata",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = Metadata,
    responses(
        (status = 200, description = "The metadata after the change", body = Metadata),
        (status = 400, description = "`invalid_config` (above 64 KiB)", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn update_metadata(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(Metadata(patch)): JsonBody<Metadata>,
) -> Result<Json<Metadata>, ApiError> {
    blocking(move || {
        Ok(Json(Metadata(
            st.db.collection(&name)?.update_metadata(patch)?,
        )))
    })
    .await
}

/// Get a collection
///
/// Its configuration with its counts (`name` may be an alias: the collection it resolves to).
#[utoipa::path(get, path = "/collections/{name}", tag = "collections",
    operation_id = "get_collection",
    params(("name" = String, Path, description = "Collection name or alias")),
    responses(
        (status = 200, description = "The collection, with counts", body = CollectionOut),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CollectionOut>, ApiError> {
    blocking(move || {
        // `name` may be an alias: describe the collection it resolves to.
        let c = st.db.collection(&name)?;
        let info = info(&st.db, c.name())?;
        let mut out = CollectionOut::new(info.name, &info.config, info.created_at);
        out.count = Some(c.count()?);
        out.indexed = Some(c.indexed_count() as u64);
        out.index_memory_bytes = Some(c.index_memory_bytes() as u64);
        out.unlinked = Some(c.unlinked_count() as u64);
        Ok(Json(out))
    })
    .await
}

/// List collections
///
/// Every collection, by name (without counts).
#[utoipa::path(get, path = "/collections", tag = "collections",
    operation_id = "list_collections",
    responses((status = 200, description = "All collections", body = CollectionList)))]
pub(crate) async fn list(State(st): State<AppState>) -> Json<CollectionList> {
    Json(CollectionList {
        collections: st
            .db
            .collections()
            .into_iter()
            .map(|i| CollectionOut::new(i.name, &i.config, i.created_at))
            .collect(),
    })
}

/// Drop a collection
///
/// Drops a collection and all its entities in one transaction. An alias is refused: delete
/// it with `DELETE /aliases/{alias}`.
#[utoipa::path(delete, path = "/collections/{name}", tag = "collections",
    operation_id = "drop_collection",
    params(("name" = String, Path, description = "Collection name (not an alias)")),
    responses(
        (status = 200, description = "The collection is gone", body = Dropped),
        (status = 400, description = "`invalid_collection_name`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 409, description = "`collection_has_aliases`, `collection_in_use`, `name_is_alias` (aliases are not dropped as collections)", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn drop(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Dropped>, ApiError> {
    blocking(move || {
        st.db.drop_collection(&name)?;
        Ok(Json(Dropped {
            name,
            dropped: true,
        }))
    })
    .await
}

/// Create a payload index
///
/// Declares a payload index on a field and fills it from every entity (one transaction).
#[utoipa::path(put, path = "/collections/{name}/payload-indexes/{field}", tag = "collections",
    operation_id = "create_payload_index",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("field" = String, Path, description = "Dotted payload key")),
    request_body = PayloadIndexBody,
    responses(
        (status = 200, description = "The index exists; `changed` is false if the same index existed", body = PayloadIndexOut),
        (status = 400, description = "`invalid_config`: an entity holds another type there, or the field is indexed with another type", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`", body = ErrorBody)))]
pub(crate) async fn create_payload_index(
    State(st): State<AppState>,
    ApiPath((name, field)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<PayloadIndexBody>,
) -> Result<Json<PayloadIndexOut>, ApiError> {
    blocking(move || {
        let changed = st
            .db
            .collection(&name)?
            .create_payload_index(&field, body.kind.kind())?;
        Ok(Json(PayloadIndexOut { field, changed }))
    })
    .await
}

/// Drop a payload index
///
/// Drops a payload index; filters on the field keep working, by reading payloads.
#[utoipa::path(delete, path = "/collections/{name}/payload-indexes/{field}", tag = "collections",
    operation_id = "drop_payload_index",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("field" = String, Path, description = "Dotted payload key")),
    responses(
        (status = 200, description = "The index is gone; `changed` is false if there was none", body = PayloadIndexOut),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`", body = ErrorBody)))]
pub(crate) async fn drop_payload_index(
    State(st): State<AppState>,
    ApiPath((name, field)): ApiPath<(String, String)>,
) -> Result<Json<PayloadIndexOut>, ApiError> {
    blocking(move || {
        let changed = st.db.collection(&name)?.drop_payload_index(&field)?;
        Ok(Json(PayloadIndexOut { field, changed }))
    })
    .await
}

/// Declare a text index
///
/// Declares a BM25 text index on the payload field `{field}` (a string, or an array of
/// strings), online: every entity's text there is indexed in the same transaction. Search it
/// with `{"text": ..., "using": field}` or a query's `text` stage.
#[utoipa::path(put, path = "/collections/{name}/text-indexes/{field}", tag = "collections",
    operation_id = "create_text_index",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("field" = String, Path, description = "Payload field key (dot-separated for nested keys)")),
    request_body = TextIndexSpec,
    responses(
        (status = 200, description = "The index exists; `changed` is false if it was declared so already", body = PayloadIndexOut),
        (status = 400, description = "`invalid_config`: a bad field key, k1 or b, or declared otherwise (drop it first)", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn create_text_index(
    State(st): State<AppState>,
    ApiPath((name, field)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<TextIndexSpec>,
) -> Result<Json<PayloadIndexOut>, ApiError> {
    let config = body.to_config();
    blocking(move || {
        let changed = st.db.collection(&name)?.create_text_index(&field, config)?;
        Ok(Json(PayloadIndexOut { field, changed }))
    })
    .await
}

/// Drop a text index
///
/// Drops the text index on `{field}` (its tables and in-memory index).
#[utoipa::path(delete, path = "/collections/{name}/text-indexes/{field}", tag = "collections",
    operation_id = "drop_text_index",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("field" = String, Path, description = "Payload field key")),
    responses(
        (status = 200, description = "`changed` is false if there was no such index", body = PayloadIndexOut),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`", body = ErrorBody)))]
pub(crate) async fn drop_text_index(
    State(st): State<AppState>,
    ApiPath((name, field)): ApiPath<(String, String)>,
) -> Result<Json<PayloadIndexOut>, ApiError> {
    blocking(move || {
        let changed = st.db.collection(&name)?.drop_text_index(&field)?;
        Ok(Json(PayloadIndexOut { field, changed }))
    })
    .await
}

/// Add a named vector
///
/// Declares the named vector `{vector}` (dense or sparse) on an existing collection, online:
/// no entity has it until written. Declaring it again with the same declaration changes
/// nothing.
#[utoipa::path(put, path = "/collections/{name}/vectors/{vector}", tag = "collections",
    operation_id = "add_vector",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("vector" = String, Path, description = "The vector's name: 1..=128 bytes, no control characters")),
    request_body = VectorSpec,
    responses(
        (status = 200, description = "The vector is declared; `changed` is false if it was declared so already", body = VectorOut),
        (status = 400, description = "`invalid_config`: a bad name, dimension or index parameter", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 409, description = "`vector_exists`: declared otherwise (remove it first)", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`", body = ErrorBody)))]
pub(crate) async fn add_vector(
    State(st): State<AppState>,
    ApiPath((name, vector)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<VectorSpec>,
) -> Result<Json<VectorOut>, ApiError> {
    // Compared with the stored declaration as the library stores it (`auto` resolved).
    let config = body.to_config().resolved();
    blocking(move || {
        let c = st.db.collection(&name)?;
        if let Some(old) = c.config().vectors.get(&vector)
            && *old != config
        {
            return Err(ApiError::new(
                ErrorCode::VectorExists,
                format!(
                    "collection {:?} declares vector {vector:?} as {}; remove it \
                     (DELETE /collections/{}/vectors/...) before declaring it again",
                    c.name(),
                    serde_json::to_string(old).unwrap_or_default(),
                    c.name()
                ),
            ));
        }
        let changed = c.add_vector(&vector, config)?;
        Ok(Json(vector_out(&c, vector, changed)))
    })
    .await
}

/// Remove a named vector
///
/// Removes the named vector `{vector}` and every entity's value of it, online (its tables and
/// index are freed in one transaction). The collection's last vector cannot be removed.
#[utoipa::path(delete, path = "/collections/{name}/vectors/{vector}", tag = "collections",
    operation_id = "remove_vector",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("vector" = String, Path, description = "The vector's name")),
    responses(
        (status = 200, description = "The vector is gone", body = VectorOut),
        (status = 400, description = "`invalid_config`: the collection's only vector", body = ErrorBody),
        (status = 404, description = "`collection_not_found`, `vector_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`", body = ErrorBody)))]
pub(crate) async fn remove_vector(
    State(st): State<AppState>,
    ApiPath((name, vector)): ApiPath<(String, String)>,
) -> Result<Json<VectorOut>, ApiError> {
    blocking(move || {
        let c = st.db.collection(&name)?;
        let missing = || {
            ApiError::new(
                ErrorCode::VectorNotFound,
                format!("collection {:?} has no vector named {vector:?}", c.name()),
            )
        };
        if !c.config().vectors.contains_key(&vector) {
            return Err(missing());
        }
        if !c.remove_vector(&vector)? {
            return Err(missing());
        }
        Ok(Json(vector_out(&c, vector, true)))
    })
    .await
}

/// The answer of the named-vector routes, with the collection's config after the change.
fn vector_out(c: &hybridb::Collection, name: String, changed: bool) -> VectorOut {
    VectorOut {
        name,
        changed,
        config: serde_json::to_value(c.config()).unwrap_or(serde_json::Value::Null),
    }
}

/// Change a vector's quantization
///
/// Sets the codes the HNSW walk of the default vector (`vector` `""`) or of a named dense
/// vector ranks by, online: the setting is stored in one transaction, the codes are trained
/// from a fresh sample and every vector encoded (searches go on; writes wait for the
/// encoding), and the index is checkpointed. `none` drops the codes; the current setting
/// retrains them (e.g. after the data drifted). `changed` is false if the setting was the same.
#[utoipa::path(put, path = "/collections/{name}/quantization", tag = "collections",
    operation_id = "set_quantization",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = QuantizationChange,
    responses(
        (status = 200, description = "The codes are trained (or dropped); `name` is the vector", body = VectorOut),
        (status = 400, description = "`invalid_config`: an unknown or sparse vector, an exact index, a rotated code under Manhattan", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`", body = ErrorBody)))]
pub(crate) async fn set_quantization(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<QuantizationChange>,
) -> Result<Json<VectorOut>, ApiError> {
    blocking(move || {
        let c = st.db.collection(&name)?;
        let changed = c.set_quantization(&body.vector, body.quantization.quantization())?;
        Ok(Json(vector_out(&c, body.vector, changed)))
    })
    .await
}
