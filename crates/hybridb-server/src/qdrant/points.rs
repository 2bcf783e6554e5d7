//! Qdrant's point routes: upsert (list and column forms), retrieve, get one, delete (by ids or
//! filter), scroll (in id order, or by a payload field: `order_by`), count, and the partial payload updates (set, overwrite, delete keys,
//! clear). Writes go through the library's async API (the one writer, one transaction per
//! request); reads run on the blocking pool.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::State;
use hybridb::{Entity, EntityId, Filter, PayloadUpdate};
use serde_json::{Map, Value};

use super::collections::completed;
use super::convert::unsupported;
use super::convert::{
    Selector, bad, collection, entity_ids, filter, library_error, point_not_found, record,
};
use super::envelope::{QdrantError, Reply, ok};
use super::ids::PointId;
use super::model::{
    CountRequest, CountResult, DeletePayloadBody, PointRecord, PointRequest, PointsSelector,
    ScrollRequest, ScrollResult, SetPayloadBody, UpdateResult, UpsertBody,
};
use super::order::{OrderBy, OrderValue, order_by_of, ordered};
use super::vectors::{Layout, VectorSelect, read_struct, read_vector};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// Most ids in one retrieve (as the native get-many).
const MAX_IDS: usize = 16_384;

/// The entities of an upsert body (list or column form), their vectors checked against the
/// collection's `layout` (cosine vectors normalised).
pub(crate) fn entities_of(body: UpsertBody, layout: &Layout) -> Result<Vec<Entity>, ApiError> {
    if body.update_mode.as_deref().is_some_and(|m| m != "upsert") {
        return Err(unsupported("update_mode other than \"upsert\""));
    }
    if body.update_filter.as_ref().is_some_and(|f| !f.is_null()) {
        return Err(unsupported("update_filter"));
    }
    let payload = |p: Option<Map<String, Value>>| Value::Object(p.unwrap_or_default());
    match (body.points, body.batch) {
        (Some(points), None) => points
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let at = format!("points[{i}]");
                let vectors = read_struct(&p.vector, &format!("{at}.vector"))?;
                layout.entity(p.id.to_entity()?, payload(p.payload), vectors, &at)
            })
            .collect(),
        (None, Some(batch)) => {
            let n = batch.ids.len();
            let columns = batch_columns(&batch.vectors, n)?;
            let mut payloads = batch.payloads.unwrap_or_default().into_iter();
            if payloads.len() != 0 && payloads.len() != n {
                return Err(bad(
                    "batch",
                    format!("{n} ids but {} payloads", payloads.len()),
                ));
            }
            batch
                .ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut vectors = BTreeMap::new();
                    for (name, column) in &columns {
                        let v = &column[i];
                        if v.is_null() {
                            continue;
                        }
                        let at = match name.is_empty() {
                            true => format!("batch.vectors[{i}]"),
                            false => format!("batch.vectors.{name}[{i}]"),
                        };
                        vectors.insert(name.clone(), read_vector(v, &at)?);
                    }
                    let at = format!("points[{i}]");
                    layout.entity(
                        id.to_entity()?,
                        payload(payloads.next().flatten()),
                        vectors,
                        &at,
                    )
                })
                .collect()
        }
        _ => Err(bad(".", "expected either \"points\" or \"batch\"")),
    }
}

/// The columns of a batch's `vectors`: a list (the unnamed vector) or an object of name to
/// list, each list one value per id.
fn batch_columns(vectors: &Value, n: usize) -> Result<Vec<(String, &Vec<Value>)>, ApiError> {
    let columns: Vec<(String, &Value)> = match vectors {
        Value::Array(_) => vec![(String::new(), vectors)],
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => {
            return Err(bad(
                "batch.vectors",
                "expected a list of vectors or an object of lists",
            ));
        }
    };
    columns
        .into_iter()
        .map(|(name, column)| {
            let at = match name.is_empty() {
                true => "batch.vectors".to_string(),
                false => format!("batch.vectors.{name}"),
            };
            match column {
                Value::Array(items) if items.len() == n => Ok((name, items)),
                Value::Array(items) => Err(bad(
                    "batch",
                    format!("{n} ids but {} vectors in {at}", items.len()),
                )),
                _ => Err(bad(&at, "expected a list of vectors")),
            }
        })
        .collect()
}

/// Upsert points
///
/// Inserts or replaces points in one transaction: all or nothing. Cosine vectors are stored
/// normalised, as Qdrant does.
#[utoipa::path(put, path = "/collections/{collection_name}/points", tag = "qdrant",
    operation_id = "qdrant_upsert_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = UpsertBody,
    responses(
        (status = 200, description = "Written", body = Reply<UpdateResult>),
        (status = 400, description = "A bad point (named); nothing is written", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn upsert(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<UpsertBody>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let c = collection(&st.db, &name)?;
    let entities = entities_of(body, &Layout::of(c.config()))?;
    let written = c
        .to_async()
        .upsert_batch(entities)
        .await
        .map_err(library_error)?;
    let op = written.iter().filter_map(|w| w.seq).max();
    Ok(ok(completed(op), started))
}

/// Get a point
///
/// One point with its payload and vector.
#[utoipa::path(get, path = "/collections/{collection_name}/points/{id}", tag = "qdrant",
    operation_id = "qdrant_get_point",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("id" = String, Path, description = "Point id: an unsigned integer or a UUID"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write")),
    responses(
        (status = 200, description = "The point", body = Reply<PointRecord>),
        (status = 400, description = "A bad id", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn get_one(
    State(st): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Reply<PointRecord>>, ApiError> {
    let started = Instant::now();
    let point = PointId::parse(&id)?;
    let eid = point.to_entity()?;
    let r = blocking(move || {
        let c = collection(&st.db, &name)?;
        c.get(eid)?.ok_or_else(|| point_not_found(point))
    })
    .await?;
    Ok(ok(record(r, &Selector::All, &VectorSelect::All), started))
}

/// Retrieve points
///
/// The points with these ids (absent ones are left out), in request order.
#[utoipa::path(post, path = "/collections/{collection_name}/points", tag = "qdrant",
    operation_id = "qdrant_get_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write")),
    request_body = PointRequest,
    responses(
        (status = 200, description = "The points", body = Reply<Vec<PointRecord>>),
        (status = 400, description = "A bad id or selector", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn retrieve(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<PointRequest>,
) -> Result<Json<Reply<Vec<PointRecord>>>, ApiError> {
    let started = Instant::now();
    if body.ids.len() > MAX_IDS {
        return Err(bad("ids", format!("at most {MAX_IDS} ids per request")));
    }
    let selector = Selector::read(body.with_payload.as_ref(), true)?;
    let vectors = VectorSelect::read(body.with_vector.as_ref())?;
    let mut ids = entity_ids(&body.ids)?;
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    let records = blocking(move || {
        let c = collection(&st.db, &name)?;
        Ok(c.get_many(&ids)?)
    })
    .await?;
    let points = records
        .into_iter()
        .flatten()
        .map(|r| record(r, &selector, &vectors))
        .collect();
    Ok(ok(points, started))
}

/// The ids or the filter of a selector (exactly one of them).
enum Target {
    Ids(Vec<EntityId>),
    Filter(Filter),
}

fn target(points: Option<Vec<PointId>>, f: Option<Value>) -> Result<Target, ApiError> {
    match (points, filter(f)?) {
        (Some(ids), None) => Ok(Target::Ids(entity_ids(&ids)?)),
        (None, Some(f)) => Ok(Target::Filter(f)),
        _ => Err(bad(".", "give either \"points\" or \"filter\"")),
    }
}

/// Delete points
///
/// Deletes the points with these ids, or every point matching a filter, in one transaction.
#[utoipa::path(post, path = "/collections/{collection_name}/points/delete", tag = "qdrant",
    operation_id = "qdrant_delete_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = PointsSelector,
    responses(
        (status = 200, description = "Deleted", body = Reply<UpdateResult>),
        (status = 400, description = "A bad id or filter", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn delete(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<PointsSelector>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let c = collection(&st.db, &name)?.to_async();
    match target(body.points, body.filter)? {
        Target::Ids(ids) => c.delete_batch(&ids).await?,
        Target::Filter(f) => c.delete_by_filter(&f).await?,
    };
    let op = st.db.last_seq()?;
    Ok(ok(completed(Some(op)), started))
}

/// The entity just before `id` in id order (scroll offsets are inclusive, the library's
/// `after` exclusive).
fn before(id: EntityId) -> Option<EntityId> {
    let v = id.as_uuid().as_u128();
    v.checked_sub(1).map(EntityId::from_u128)
}

/// Scroll points
///
/// A page of the points matching a filter, in id order (integers first, then UUIDs).
#[utoipa::path(post, path = "/collections/{collection_name}/points/scroll", tag = "qdrant",
    operation_id = "qdrant_scroll_points",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("consistency" = Option<String>, Query, description = "Accepted; reads see every committed write")),
    request_body = ScrollRequest,
    responses(
        (status = 200, description = "A page and the next offset", body = Reply<ScrollResult>),
        (status = 400, description = "A bad filter, limit or selector", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn scroll(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<ScrollRequest>,
) -> Result<Json<Reply<ScrollResult>>, ApiError> {
    let started = Instant::now();
    let limit = body.limit.unwrap_or(10);
    let selector = Selector::read(body.with_payload.as_ref(), true)?;
    let vectors = VectorSelect::read(body.with_vector.as_ref())?;
    let f = filter(body.filter)?.unwrap_or_default();
    if let Some(o) = body.order_by.as_ref().filter(|o| !o.is_null()) {
        let ob = order_by_of(o, "order_by")?;
        if body.offset.is_some() {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "Cannot use an `offset` when using `order_by`. The alternative for paging is \
                 to use `order_by.start_from` and a filter to exclude the IDs that you've \
                 already seen for the `order_by.start_from` value",
            ));
        }
        let points = blocking(move || scroll_ordered(&collection(&st.db, &name)?, &ob, f, limit))
            .await?
            .into_iter()
            .map(|(r, v)| PointRecord {
                order_value: Some(v),
                ..record(r, &selector, &vectors)
            })
            .collect();
        let next_page_offset = None;
        return Ok(ok(
            ScrollResult {
                points,
                next_page_offset,
            },
            started,
        ));
    }
    let start = body.offset.map(PointId::to_entity).transpose()?;
    let (records, next) = blocking(move || {
        let c = collection(&st.db, &name)?;
        scroll_from(&c, &f, start, limit)
    })
    .await?;
    Ok(ok(
        ScrollResult {
            points: records
                .into_iter()
                .map(|r| record(r, &selector, &vectors))
                .collect(),
            next_page_offset: next.map(PointId::of),
        },
        started,
    ))
}

/// The first `limit` records matching `f` by `ob` (a record once per value), with their values.
fn scroll_ordered(
    c: &hybridb::Collection,
    ob: &OrderBy,
    f: Filter,
    limit: usize,
) -> Result<Vec<(hybridb::Record, OrderValue)>, ApiError> {
    if limit == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit: must be at least 1",
        ));
    }
    let entries = ordered(c, ob, f, limit)?;
    let ids: Vec<EntityId> = entries.iter().map(|e| e.1).collect();
    Ok(c.get_many(&ids)?
        .into_iter()
        .zip(entries)
        .filter_map(|(r, (v, _))| r.map(|r| (r, v)))
        .collect())
}

/// Up to `limit` records matching `f` from `start` (inclusive) on, and the id of the next one.
pub(crate) fn scroll_from(
    c: &hybridb::Collection,
    f: &Filter,
    start: Option<EntityId>,
    limit: usize,
) -> Result<(Vec<hybridb::Record>, Option<EntityId>), ApiError> {
    if limit == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit: must be at least 1",
        ));
    }
    let mut after = start.and_then(before);
    let mut records: Vec<hybridb::Record> = Vec::new();
    // A page may come back short while more match (conditions checked on the payloads):
    // read on until the page is full or the collection ends.
    let mut more = true;
    while more && records.len() < limit {
        let page = c.scroll_where(f, after, limit - records.len())?;
        records.extend(page.records);
        more = page.next.is_some();
        after = page.next;
    }
    // The next page's offset is the first match after this page (a page of one, so that a
    // `limit` at the library's maximum still works).
    let mut next = None;
    while more && next.is_none() {
        let page = c.scroll_where(f, after, 1)?;
        next = page.records.first().map(|r| r.id);
        more = page.next.is_some();
        after = page.next;
    }
    Ok((records, next))
}

/// Count points
///
/// How many points match a filter (always exact).
#[utoipa::path(post, path = "/collections/{collection_name}/points/count", tag = "qdrant",
    operation_id = "qdrant_count_points",
    params(("collection_name" = String, Path, description = "Collection name or alias")),
    request_body = CountRequest,
    responses(
        (status = 200, description = "The count", body = Reply<CountResult>),
        (status = 400, description = "A bad filter", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn count(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CountRequest>,
) -> Result<Json<Reply<CountResult>>, ApiError> {
    let started = Instant::now();
    let f = filter(body.filter)?.unwrap_or_default();
    let count = blocking(move || Ok(collection(&st.db, &name)?.count_where(&f)?)).await?;
    Ok(ok(CountResult { count }, started))
}

/// Applies a payload update to a target; the answer of the write.
async fn update(
    st: &AppState,
    name: &str,
    target: Target,
    update: PayloadUpdate,
) -> Result<UpdateResult, ApiError> {
    let c = collection(&st.db, name)?.to_async();
    let op = match target {
        Target::Ids(ids) => c
            .update_payload(&ids, update)
            .await
            .map_err(library_error)?
            .iter()
            .filter_map(|w| w.seq)
            .max(),
        Target::Filter(f) => {
            c.update_payload_where(&f, update)
                .await
                .map_err(library_error)?;
            Some(st.db.last_seq()?)
        }
    };
    Ok(completed(op))
}

/// Set payload keys
///
/// Merges keys into the payload of the chosen points (with `key`: into the object at that
/// path); other keys stay. Atomic; a missing id fails the whole call (404).
#[utoipa::path(post, path = "/collections/{collection_name}/points/payload", tag = "qdrant",
    operation_id = "qdrant_set_payload",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = SetPayloadBody,
    responses(
        (status = 200, description = "Updated", body = Reply<UpdateResult>),
        (status = 400, description = "A bad id, key or filter", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn set_payload(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SetPayloadBody>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let t = target(body.points, body.filter)?;
    let u = PayloadUpdate::Set {
        payload: body.payload,
        key: body.key,
    };
    Ok(ok(update(&st, &name, t, u).await?, started))
}

/// Overwrite payload
///
/// Replaces the whole payload of the chosen points.
#[utoipa::path(put, path = "/collections/{collection_name}/points/payload", tag = "qdrant",
    operation_id = "qdrant_overwrite_payload",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = SetPayloadBody,
    responses(
        (status = 200, description = "Updated", body = Reply<UpdateResult>),
        (status = 400, description = "A bad id or filter", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn overwrite_payload(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SetPayloadBody>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    if body.key.is_some() {
        return Err(unsupported("key in an overwrite"));
    }
    let t = target(body.points, body.filter)?;
    Ok(ok(
        update(&st, &name, t, PayloadUpdate::Overwrite(body.payload)).await?,
        started,
    ))
}

/// Delete payload keys
///
/// Removes keys (paths) from the payload of the chosen points.
#[utoipa::path(post, path = "/collections/{collection_name}/points/payload/delete", tag = "qdrant",
    operation_id = "qdrant_delete_payload",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = DeletePayloadBody,
    responses(
        (status = 200, description = "Updated", body = Reply<UpdateResult>),
        (status = 400, description = "A bad id, key or filter", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn delete_payload(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<DeletePayloadBody>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let t = target(body.points, body.filter)?;
    if body.keys.is_empty() {
        return Ok(ok(completed(Some(st.db.last_seq()?)), started));
    }
    Ok(ok(
        update(&st, &name, t, PayloadUpdate::Delete(body.keys)).await?,
        started,
    ))
}

/// Clear payload
///
/// Empties the payload of the chosen points.
#[utoipa::path(post, path = "/collections/{collection_name}/points/payload/clear", tag = "qdrant",
    operation_id = "qdrant_clear_payload",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = PointsSelector,
    responses(
        (status = 200, description = "Updated", body = Reply<UpdateResult>),
        (status = 400, description = "A bad id or filter", body = QdrantError),
        (status = 404, description = "No such collection or point", body = QdrantError)))]
pub(crate) async fn clear_payload(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<PointsSelector>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let t = target(body.points, body.filter)?;
    Ok(ok(
        update(&st, &name, t, PayloadUpdate::Clear).await?,
        started,
    ))
}
