//! Entities: batch upsert, get, get many, delete, partial payload updates, scroll, count.

use crate::reply::Json;
use axum::extract::State;
use hybridb::Entity;

use crate::api::{
    CountBody, CountOut, DeleteBody, DeleteOut, EntityIn, EntityOut, GetManyBody, GetManyOut,
    GetQuery, PutEntityBody, ScrollBody, ScrollOut, UpdatePayloadBody, UpdatePayloadOut,
    UpsertBody, UpsertOut, WrittenOut, named,
};
use crate::error::{ApiError, ErrorBody, ErrorCode, problem_text, write_error};
use crate::extract::{ApiPath, ApiQuery, JsonBody, parse_id};
use crate::state::{AppState, blocking};

/// Most ids in one get-many.
const MAX_GET_IDS: usize = 16_384;

/// The default vector of a request entity: required when the collection has one (`dim`
/// above 0), absent (empty) otherwise.
fn default_vector(vector: Option<Vec<f32>>, dim: u32) -> Result<Vec<f32>, String> {
    match vector {
        Some(v) => Ok(v),
        None if dim == 0 => Ok(Vec::new()),
        None => Err(format!(
            "missing field `vector` (the collection's default vector, dimension {dim})"
        )),
    }
}

/// The entity of one request item, with the error naming it.
fn entity(at: &str, e: EntityIn, dim: u32) -> Result<Entity, ApiError> {
    let invalid = |why: String| ApiError::new(ErrorCode::InvalidEntity, format!("{at}{why}"));
    let vector = default_vector(e.vector, dim).map_err(invalid)?;
    crate::entity_of(e.id, e.key, e.payload, vector, named(e.vectors))
        .map_err(|w| invalid(w.into()))
}

/// Upsert entities
///
/// Inserts or replaces entities in one transaction: all or nothing. An entity without `id`
/// gets the id derived from its `key` (UUID v5), else a new UUID v7.
#[utoipa::path(put, path = "/collections/{name}/entities", tag = "entities",
    operation_id = "upsert_entities",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = UpsertBody,
    responses(
        (status = 200, description = "Every entity is written; one outcome each, in request order", body = UpsertOut),
        (status = 400, description = "`invalid_entity` names the item, e.g. `entities[3]`; nothing is written", body = ErrorBody,
            example = json!({"error": {"code": "invalid_entity",
                "message": "entities[0] (id e3120748-353e-58ad-8180-32d51faaafc3): vector has dimension 2, collection expects 3"}})),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`: retry", body = ErrorBody)))]
pub(crate) async fn upsert(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<UpsertBody>,
) -> Result<Json<UpsertOut>, ApiError> {
    let coll = st.db.collection(&name)?;
    let dim = coll.config().dim;
    let coll = coll.to_async();
    let mut entities = Vec::with_capacity(body.entities.len());
    for (i, e) in body.entities.into_iter().enumerate() {
        entities.push(entity(&format!("entities[{i}]: "), e, dim)?);
    }
    let written = coll
        .upsert_batch(entities)
        .await
        .map_err(|e| write_error(e, "entities"))?;
    Ok(Json(UpsertOut {
        written: written
            .into_iter()
            .map(|w| WrittenOut {
                id: w.id,
                version: w.version,
                seq: w.seq,
            })
            .collect(),
    }))
}

/// Get an entity
///
/// One entity by id: its payload, version, last write time and (unless
/// `with_vector=false`) its vector.
#[utoipa::path(get, path = "/collections/{name}/entities/{id}", tag = "entities",
    operation_id = "get_entity",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("id" = String, Path, format = Uuid, description = "Entity id (UUID)"), GetQuery),
    responses(
        (status = 200, description = "The entity", body = EntityOut),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 404, description = "`entity_not_found`, `collection_not_found`", body = ErrorBody,
            example = json!({"error": {"code": "entity_not_found",
                "message": "entity 8e137603-08bc-5e94-bcea-14d37598272a not found in collection \"docs\""}}))))]
pub(crate) async fn get(
    State(st): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> Result<Json<EntityOut>, ApiError> {
    let id = parse_id(&id)?;
    blocking(move || {
        let c = st.db.collection(&name)?;
        match c.get(id)? {
            Some(r) => Ok(Json(EntityOut::in_format(
                r,
                q.with_vector,
                q.vector_format,
            ))),
            None => Err(ApiError::new(
                ErrorCode::EntityNotFound,
                format!("entity {id} not found in collection {name:?}"),
            )),
        }
    })
    .await
}

/// Put an entity
///
/// Writes one entity under the id in the path; with `if_version`, only if its stored version
/// is that one (optimistic concurrency).
#[utoipa::path(put, path = "/collections/{name}/entities/{id}", tag = "entities",
    operation_id = "put_entity",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("id" = String, Path, format = Uuid, description = "Entity id (UUID)")),
    request_body = PutEntityBody,
    responses(
        (status = 200, description = "The entity is written", body = WrittenOut),
        (status = 400, description = "`invalid_id`, `invalid_entity`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 409, description = "`version_conflict`: the stored version differs", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`: retry", body = ErrorBody)))]
pub(crate) async fn put_one(
    State(st): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<PutEntityBody>,
) -> Result<Json<WrittenOut>, ApiError> {
    let id = parse_id(&id)?;
    let coll = st.db.collection(&name)?;
    let dim = coll.config().dim;
    let coll = coll.to_async();
    let item = EntityIn {
        id: Some(id),
        key: None,
        payload: body.payload,
        vector: body.vector,
        vectors: body.vectors,
    };
    let entity = entity("", item, dim)?;
    let written = match body.if_version {
        Some(v) => coll.upsert_if_version(entity, v).await,
        None => coll.upsert(entity).await,
    }
    .map_err(|e| match e {
        hybridb::Error::InvalidEntity { problem, .. } => {
            ApiError::new(ErrorCode::InvalidEntity, problem_text(&problem))
        }
        other => other.into(),
    })?;
    Ok(Json(WrittenOut {
        id: written.id,
        version: written.version,
        seq: written.seq,
    }))
}

/// Delete an entity
///
/// Deletes one entity by id; deleting an absent id is not an error.
#[utoipa::path(delete, path = "/collections/{name}/entities/{id}", tag = "entities",
    operation_id = "delete_entity",
    params(("name" = String, Path, description = "Collection name or alias"),
           ("id" = String, Path, format = Uuid, description = "Entity id (UUID)")),
    responses(
        (status = 200, description = "Done; `deleted` is 0 if it did not exist", body = DeleteOut),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`: retry", body = ErrorBody)))]
pub(crate) async fn delete_one(
    State(st): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<DeleteOut>, ApiError> {
    let id = parse_id(&id)?;
    let existed = st.db.collection(&name)?.to_async().delete(id).await?;
    Ok(Json(DeleteOut {
        deleted: u64::from(existed),
    }))
}

/// Get entities
///
/// Many entities by id from one snapshot, in the order asked (`null` for absent ids); at
/// most 16,384 ids.
#[utoipa::path(post, path = "/collections/{name}/entities/get", tag = "entities",
    operation_id = "get_entities",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = GetManyBody,
    responses(
        (status = 200, description = "One entry per id asked", body = GetManyOut),
        (status = 400, description = "`invalid_body`: more ids than the limit", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn get_many(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<GetManyBody>,
) -> Result<Json<GetManyOut>, ApiError> {
    if body.ids.len() > MAX_GET_IDS {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("ids: at most {MAX_GET_IDS} ids per request"),
        ));
    }
    blocking(move || {
        let c = st.db.collection(&name)?;
        let records = c.get_many(&body.ids)?;
        Ok(Json(GetManyOut {
            entities: records
                .into_iter()
                .map(|r| r.map(|r| EntityOut::in_format(r, body.with_vector, body.vector_format)))
                .collect(),
        }))
    })
    .await
}

/// Delete entities
///
/// Deletes entities by id or by filter, in one transaction.
#[utoipa::path(post, path = "/collections/{name}/entities/delete", tag = "entities",
    operation_id = "delete_entities",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = DeleteBody,
    responses(
        (status = 200, description = "Done; `deleted` counts the entities that existed", body = DeleteOut),
        (status = 400, description = "`invalid_body`: neither or both of `ids` and `filter`; `invalid_filter`; `invalid_entity`: a duplicate id", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`: retry", body = ErrorBody)))]
pub(crate) async fn delete(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> Result<Json<DeleteOut>, ApiError> {
    let coll = st.db.collection(&name)?.to_async();
    let deleted = match (body.ids, body.filter) {
        (Some(ids), None) => coll
            .delete_batch(&ids)
            .await
            .map_err(|e| write_error(e, "ids"))?,
        (None, Some(filter)) => coll.delete_by_filter(&filter).await?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "give exactly one of `ids` and `filter`",
            ));
        }
    };
    Ok(Json(DeleteOut {
        deleted: deleted as u64,
    }))
}

/// Update payloads
///
/// Changes the payloads of entities chosen by id or by filter, in one transaction, without
/// touching their vectors: merge keys (`set`, optionally into the object at `key`), replace
/// (`overwrite`), remove keys (`delete`) or remove all (`clear`). Each updated entity gets a
/// new version and a `state_modified` change event. By ids, every id must exist.
#[utoipa::path(post, path = "/collections/{name}/entities/payload", tag = "entities",
    operation_id = "update_payloads",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body = UpdatePayloadBody,
    responses(
        (status = 200, description = "Done; `updated` counts the entities changed", body = UpdatePayloadOut),
        (status = 400, description = "`invalid_body`: not exactly one of `ids` and `filter`, not exactly one change, or a malformed key path; `invalid_filter`; `invalid_entity`: an id that does not exist or repeats, or a resulting payload too large or not fitting a payload index", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody),
        (status = 503, description = "`busy`, `commit_failed`, `writer_unavailable`, `collection_read_only`: retry", body = ErrorBody)))]
pub(crate) async fn update_payload(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<UpdatePayloadBody>,
) -> Result<Json<UpdatePayloadOut>, ApiError> {
    use hybridb::PayloadUpdate;
    let update = match (body.set, body.overwrite, body.delete, body.clear) {
        (Some(payload), None, None, false) => PayloadUpdate::Set {
            payload,
            key: body.key,
        },
        (None, Some(payload), None, false) if body.key.is_none() => {
            PayloadUpdate::Overwrite(payload)
        }
        (None, None, Some(keys), false) if body.key.is_none() => PayloadUpdate::Delete(keys),
        (None, None, None, true) if body.key.is_none() => PayloadUpdate::Clear,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "give exactly one of `set` (with an optional `key`), `overwrite`, `delete` and \
                 `clear: true`",
            ));
        }
    };
    let coll = st.db.collection(&name)?.to_async();
    let updated = match (body.ids, body.filter) {
        (Some(ids), None) => coll
            .update_payload(&ids, update)
            .await
            .map_err(|e| write_error(e, "ids"))?
            .len(),
        (None, Some(filter)) => coll.update_payload_where(&filter, update).await?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "give exactly one of `ids` and `filter`",
            ));
        }
    };
    Ok(Json(UpdatePayloadOut {
        updated: updated as u64,
    }))
}

/// Scroll entities
///
/// A page of entities in id order, optionally filtered; pass the answer's `next` as `after`
/// for the next page.
#[utoipa::path(post, path = "/collections/{name}/scroll", tag = "entities",
    operation_id = "scroll_entities",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body(content = Option<ScrollBody>, description = "May be empty: the first 100 entities"),
    responses(
        (status = 200, description = "A page of entities", body = ScrollOut),
        (status = 400, description = "`invalid_query` (limit), `invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn scroll(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<ScrollBody>,
) -> Result<Json<ScrollOut>, ApiError> {
    blocking(move || {
        let c = st.db.collection(&name)?;
        let page = match &body.filter {
            Some(f) => c.scroll_where(f, body.after, body.limit),
            None => c.scroll(body.after, body.limit),
        }
        .map_err(|e| match e {
            hybridb::Error::InvalidQuery(
                hybridb::QueryProblem::ZeroK | hybridb::QueryProblem::KTooLarge { .. },
            ) => ApiError::from(e).at("limit"),
            other => other.into(),
        })?;
        Ok(Json(ScrollOut {
            entities: page
                .records
                .into_iter()
                .map(|r| EntityOut::in_format(r, body.with_vector, body.vector_format))
                .collect(),
            next: page.next,
        }))
    })
    .await
}

/// Count entities
///
/// The number of entities, or of those that pass a filter.
#[utoipa::path(post, path = "/collections/{name}/count", tag = "entities",
    operation_id = "count_entities",
    params(("name" = String, Path, description = "Collection name or alias")),
    request_body(content = Option<CountBody>, description = "May be empty: count every entity"),
    responses(
        (status = 200, description = "The count", body = CountOut),
        (status = 400, description = "`invalid_filter`", body = ErrorBody),
        (status = 404, description = "`collection_not_found`", body = ErrorBody)))]
pub(crate) async fn count(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CountBody>,
) -> Result<Json<CountOut>, ApiError> {
    blocking(move || {
        let c = st.db.collection(&name)?;
        let count = match &body.filter {
            Some(f) => c.count_where(f)?,
            None => c.count()?,
        };
        Ok(Json(CountOut { count }))
    })
    .await
}
