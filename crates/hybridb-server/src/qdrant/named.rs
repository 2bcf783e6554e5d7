//! Qdrant's named-vector administration: `PUT` and `DELETE
//! /collections/{collection_name}/vectors/{vector_name}`, over the engine's online
//! `add_vector` / `remove_vector` (one transaction each; a removed vector's values and index
//! are freed). Qdrant's unnamed vector `""` is the engine's [`UNNAMED`] vector in collections
//! with named or sparse vectors (see [`super::vectors`]).

use std::time::Instant;

use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::collections::completed;
use super::convert::{bad, collection};
use super::envelope::{QdrantError, Reply, ok};
use super::model::{HnswConfigDiff, UpdateResult};
use super::vectors::{UNNAMED, check_name, dense_config, no_such_vector, sparse_config};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// Body of `PUT /collections/{collection_name}/vectors/{vector_name}`: `{"dense": {size,
/// distance}}` or `{"sparse": {modifier?}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VectorNameConfig {
    /// A dense vector: `{"size": n, "distance": "Cosine" | "Euclid" | "Dot" | "Manhattan"}`.
    #[schema(value_type = Option<Object>)]
    pub dense: Option<Value>,
    /// A sparse vector: `{"modifier"?: "idf" | "none"}`.
    #[schema(value_type = Option<Object>)]
    pub sparse: Option<Value>,
}

/// The engine name of Qdrant's vector `name` in `c` for a new vector.
fn engine_name(c: &hybridb::Collection, name: &str) -> String {
    if name.is_empty() && !c.config().has_default_vector() {
        UNNAMED.to_string()
    } else {
        name.to_string()
    }
}

/// Create a named vector
///
/// Adds a dense or sparse vector to a collection, online; no point has it until written.
#[utoipa::path(put, path = "/collections/{collection_name}/vectors/{vector_name}", tag = "qdrant",
    operation_id = "qdrant_create_vector_name",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("vector_name" = String, Path, description = "The vector's name"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    request_body = VectorNameConfig,
    responses(
        (status = 200, description = "Created", body = Reply<UpdateResult>),
        (status = 400, description = "A bad declaration", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError),
        (status = 409, description = "The collection has a vector of that name", body = QdrantError)))]
pub(crate) async fn create_vector_name(
    State(st): State<AppState>,
    ApiPath((name, vector)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<VectorNameConfig>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    check_name(&vector, "vector_name")?;
    let config = match (&body.dense, &body.sparse) {
        (Some(d), None) => dense_config(d, &HnswConfigDiff::default(), "dense")?,
        (None, Some(s)) => sparse_config(s, "sparse")?,
        _ => return Err(bad(".", "expected exactly one of \"dense\" and \"sparse\"")),
    };
    let op = blocking(move || {
        let c = collection(&st.db, &name)?;
        let engine = engine_name(&c, &vector);
        let config_now = c.config();
        if (engine.is_empty() && config_now.has_default_vector())
            || config_now.vectors.contains_key(&engine)
        {
            return Err(ApiError::new(
                ErrorCode::VectorExists,
                format!("Vector with name `{vector}` already exists in the collection"),
            ));
        }
        c.add_vector(&engine, config)?;
        Ok(st.db.last_seq()?)
    })
    .await?;
    Ok(ok(completed(Some(op)), started))
}

/// Delete a named vector
///
/// Removes a vector from a collection and every point's value of it, online.
#[utoipa::path(delete, path = "/collections/{collection_name}/vectors/{vector_name}", tag = "qdrant",
    operation_id = "qdrant_delete_vector_name",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("vector_name" = String, Path, description = "The vector's name"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    responses(
        (status = 200, description = "Removed", body = Reply<UpdateResult>),
        (status = 400, description = "No such vector, or the collection's only one", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn delete_vector_name(
    State(st): State<AppState>,
    ApiPath((name, vector)): ApiPath<(String, String)>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    check_name(&vector, "vector_name")?;
    let op = blocking(move || {
        let c = collection(&st.db, &name)?;
        let engine = engine_name(&c, &vector);
        if engine.is_empty() {
            return Err(bad(
                "vector_name",
                "the unnamed vector of a collection with only that vector cannot be removed",
            ));
        }
        if !c.remove_vector(&engine)? {
            return Err(no_such_vector(&vector));
        }
        Ok(st.db.last_seq()?)
    })
    .await?;
    Ok(ok(completed(Some(op)), started))
}
