//! Qdrant's named-vector administration: `PUT` and `DELETE
//! /collections/{collection_name}/vectors/{vector_name}`, over the engine's online
//! `add_vector` / `remove_vector` (one transaction each; a removed vector's values and index
//! are freed); and the updates of some vectors of existing points (`PUT .../points/vectors`,
//! `POST .../points/vectors/delete`). Qdrant's unnamed vector `""` is the engine's
//! [`UNNAMED`] vector in collections with named or sparse vectors (see [`super::vectors`]).
//!
//! The engine writes whole entities, so updating some vectors of a point reads it and writes
//! it back with `upsert_if_version`: a write to the same point in between makes it read again
//! (never a lost update). Each point is its own transaction, as each point is in Qdrant; an
//! update checks that every point exists and every vector fits before writing any.

use std::time::Instant;

use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use hybridb::Entity;

use super::collections::completed;
use super::convert::{
    bad, collection, entity_ids, filter, library_error, point_not_found, unsupported,
};
use super::envelope::{QdrantError, Reply, ok};
use super::ids::PointId;
use super::model::{HnswConfigDiff, UpdateResult};
use super::vectors::{
    Layout, UNNAMED, check_name, dense_config, no_such_vector, read_struct, sparse_config,
};
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
        (Some(d), None) => dense_config(d, &HnswConfigDiff::default(), None, "dense")?,
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

/// One point of an update of vectors.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointVectors {
    /// The point (it must exist).
    pub id: PointId,
    /// The vectors to set: a list (the unnamed vector) or an object of name to vector.
    #[schema(value_type = Object)]
    pub vector: Value,
}

/// Body of `PUT /collections/{collection_name}/points/vectors`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateVectors {
    /// The points and their vectors, applied in order.
    pub points: Vec<PointVectors>,
    /// Not supported yet (must be absent).
    #[schema(value_type = Object)]
    pub update_filter: Option<Value>,
}

/// Body of `POST /collections/{collection_name}/points/vectors/delete`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteVectors {
    /// These points (absent ones are skipped).
    pub points: Option<Vec<PointId>>,
    /// Every point matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// The names of the vectors to remove.
    pub vector: Vec<String>,
}

/// How often a read-modify-write of one point is retried when another write got there first.
const ATTEMPTS: usize = 8;

/// Rewrites the point `id` with `change` applied to it, conditionally on the version read (a
/// concurrent write to the point makes it read again and retry); `false` if it does not
/// exist.
fn rewrite(
    c: &hybridb::Collection,
    id: hybridb::EntityId,
    mut change: impl FnMut(&mut Entity) -> Result<bool, ApiError>,
) -> Result<bool, ApiError> {
    for _ in 0..ATTEMPTS {
        let Some(r) = c.get(id)? else {
            return Ok(false);
        };
        let mut entity = Entity::new(id, Value::Object(r.payload), r.vector);
        entity.vectors = r.vectors;
        if !change(&mut entity)? {
            return Ok(true);
        }
        match c.upsert_if_version(entity, r.version) {
            Ok(_) => return Ok(true),
            Err(hybridb::Error::Conflict { .. }) => continue,
            Err(e) => return Err(library_error(e)),
        }
    }
    Err(ApiError::new(
        ErrorCode::Busy,
        format!(
            "point {} kept changing while its vectors were updated; retry",
            PointId::of(id)
        ),
    ))
}

/// Update vectors
///
/// Sets named vectors of existing points, keeping their other vectors and payload. Every
/// point must exist (404 otherwise, nothing written); each point is rewritten on its own.
#[utoipa::path(put, path = "/collections/{collection_name}/points/vectors", tag = "qdrant",
    operation_id = "qdrant_update_vectors",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    request_body = UpdateVectors,
    responses(
        (status = 200, description = "Updated", body = Reply<UpdateResult>),
        (status = 400, description = "A bad vector (named)", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError),
        (status = 422, description = "A point without vectors", body = QdrantError)))]
pub(crate) async fn update_vectors(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<UpdateVectors>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    if body.update_filter.as_ref().is_some_and(|f| !f.is_null()) {
        return Err(unsupported("update_filter"));
    }
    let mut updates = Vec::with_capacity(body.points.len());
    for (i, p) in body.points.into_iter().enumerate() {
        let at = format!("points[{i}].vector");
        let vectors = read_struct(&p.vector, &at)?;
        if vectors.is_empty() {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                format!("{at}: must specify vectors to update for point"),
            ));
        }
        updates.push((p.id, p.id.to_entity()?, vectors));
    }
    let op = blocking(move || {
        let c = collection(&st.db, &name)?;
        let layout = Layout::of(c.config());
        // Every point must exist, and every vector fit, before anything is written.
        let ids: Vec<_> = updates.iter().map(|u| u.1).collect();
        for ((point, _, vectors), record) in updates.iter().zip(c.get_many(&ids)?) {
            let Some(r) = record else {
                return Err(point_not_found(*point));
            };
            let mut probe = Entity::new(r.id, Value::Null, Vec::new());
            layout.apply(&mut probe, vectors.clone(), &format!("point {point}"))?;
        }
        for (i, (point, id, vectors)) in updates.into_iter().enumerate() {
            let at = format!("points[{i}]");
            let found = rewrite(&c, id, |e| {
                layout.apply(e, vectors.clone(), &at)?;
                Ok(true)
            })?;
            if !found {
                return Err(point_not_found(point));
            }
        }
        Ok(st.db.last_seq()?)
    })
    .await?;
    Ok(ok(completed(Some(op)), started))
}

/// Delete vectors
///
/// Removes named vectors from the chosen points (by ids or by filter), keeping the rest.
#[utoipa::path(post, path = "/collections/{collection_name}/points/vectors/delete", tag = "qdrant",
    operation_id = "qdrant_delete_vectors",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    request_body = DeleteVectors,
    responses(
        (status = 200, description = "Removed", body = Reply<UpdateResult>),
        (status = 400, description = "An unknown vector name, or the required unnamed vector", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn delete_vectors(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<DeleteVectors>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    if body.vector.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "vector: must name at least one vector",
        ));
    }
    let target = match (body.points, filter(body.filter)?) {
        (Some(ids), None) => Ok(entity_ids(&ids)?),
        (None, Some(f)) => Err(f),
        _ => return Err(bad(".", "give either \"points\" or \"filter\"")),
    };
    let op = blocking(move || {
        let c = collection(&st.db, &name)?;
        let layout = Layout::of(c.config());
        let mut engine_names = Vec::new();
        for v in &body.vector {
            let (engine, _) = layout.resolve(v)?;
            if engine.is_empty() {
                return Err(bad(
                    "vector",
                    "the unnamed vector of a collection with only that vector is required on \
                     every point",
                ));
            }
            engine_names.push(engine);
        }
        let ids = match target {
            Ok(ids) => ids,
            Err(f) => matching(&c, &f)?,
        };
        for id in ids {
            rewrite(&c, id, |e| {
                let before = e.vectors.len();
                e.vectors.retain(|k, _| !engine_names.contains(k));
                Ok(e.vectors.len() != before)
            })?;
        }
        Ok(st.db.last_seq()?)
    })
    .await?;
    Ok(ok(completed(Some(op)), started))
}

/// The ids of every point matching `f`.
fn matching(
    c: &hybridb::Collection,
    f: &hybridb::Filter,
) -> Result<Vec<hybridb::EntityId>, ApiError> {
    const PAGE: usize = 1000;
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = c.scroll_where(f, after, PAGE)?;
        ids.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(ids),
        }
    }
}
