//! Qdrant's batch update: `POST /collections/{c}/points/batch` with a list of operations
//! (`upsert`, `delete`, `set_payload`, `overwrite_payload`, `delete_payload`, `clear_payload`,
//! `update_vectors`, `delete_vectors`), each in the body form of its own route.
//!
//! Every operation is read and checked before anything is written (a malformed one, or a point
//! that does not fit the collection, fails the whole batch with its index named and nothing
//! written). Then they run in order through the handlers of their own routes, each one
//! transaction, as Qdrant applies a batch: an operation that fails on the data (a missing point
//! for `set_payload`) stops the batch there, with the operations before it applied.

use std::time::Instant;

use axum::extract::State;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::collections::completed;
use super::convert::{bad, collection, library_error};
use super::envelope::{QdrantError, Reply, ok};
use super::model::{DeletePayloadBody, PointsSelector, SetPayloadBody, UpdateResult, UpsertBody};
use super::named::{self, DeleteVectors, UpdateVectors};
use super::points::{self, entities_of};
use super::vectors::Layout;
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::AppState;

/// Body of `POST /collections/{collection_name}/points/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchBody {
    /// The operations, applied in order; each an object with one key naming the operation
    /// (`upsert`, `delete`, `set_payload`, `overwrite_payload`, `delete_payload`,
    /// `clear_payload`, `update_vectors`, `delete_vectors`) whose value is the body of that
    /// operation's own route.
    #[schema(value_type = Vec<Object>)]
    pub operations: Vec<Map<String, Value>>,
}

/// One operation, read and checked.
enum Operation {
    Upsert(Vec<hybridb::Entity>),
    Delete(PointsSelector),
    SetPayload(SetPayloadBody),
    OverwritePayload(SetPayloadBody),
    DeletePayload(DeletePayloadBody),
    ClearPayload(PointsSelector),
    UpdateVectors(UpdateVectors),
    DeleteVectors(DeleteVectors),
}

/// The body of operation `at` (`operations[i].name`).
fn body<T: DeserializeOwned>(v: Value, at: &str) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| bad(at, e))
}

/// Reads operation `i`; upserts are turned into entities (vectors checked) against `layout`.
fn read(i: usize, op: Map<String, Value>, layout: &Layout) -> Result<Operation, ApiError> {
    let mut entries = op.into_iter();
    let (Some((name, v)), None) = (entries.next(), entries.next()) else {
        return Err(bad(
            &format!("operations[{i}]"),
            "expected an object with exactly one operation",
        ));
    };
    let at = format!("operations[{i}].{name}");
    Ok(match name.as_str() {
        "upsert" => Operation::Upsert(
            entities_of(body::<UpsertBody>(v, &at)?, layout).map_err(|e| e.at(&at))?,
        ),
        "delete" => Operation::Delete(body(v, &at)?),
        "set_payload" => Operation::SetPayload(body(v, &at)?),
        "overwrite_payload" => Operation::OverwritePayload(body(v, &at)?),
        "delete_payload" => Operation::DeletePayload(body(v, &at)?),
        "clear_payload" => Operation::ClearPayload(body(v, &at)?),
        "update_vectors" => Operation::UpdateVectors(body(v, &at)?),
        "delete_vectors" => Operation::DeleteVectors(body(v, &at)?),
        other => {
            return Err(bad(
                &format!("operations[{i}]"),
                format!(
                    "unknown operation {other:?} (expected upsert, delete, set_payload, \
                     overwrite_payload, delete_payload, clear_payload, update_vectors or \
                     delete_vectors)"
                ),
            ));
        }
    })
}

/// Batch update points
///
/// Applies a list of point operations in order. All are checked before the first is written;
/// each then commits as one transaction (an operation failing on the data stops the batch, the
/// earlier ones applied, as in Qdrant). One result per operation.
#[utoipa::path(post, path = "/collections/{collection_name}/points/batch", tag = "qdrant",
    operation_id = "qdrant_batch_update",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = BatchBody,
    responses(
        (status = 200, description = "Applied", body = Reply<Vec<UpdateResult>>),
        (status = 400, description = "A malformed operation (named); nothing is written", body = QdrantError),
        (status = 404, description = "No such collection, or a missing point", body = QdrantError)))]
pub(crate) async fn batch_update(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Json<Reply<Vec<UpdateResult>>>, ApiError> {
    let started = Instant::now();
    let c = collection(&st.db, &name)?;
    let layout = Layout::of(c.config());
    let ops = body
        .operations
        .into_iter()
        .enumerate()
        .map(|(i, op)| read(i, op, &layout))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let (s, p) = (State(st.clone()), ApiPath(name.clone()));
        let done = match op {
            Operation::Upsert(entities) => c
                .to_async()
                .upsert_batch(entities)
                .await
                .map_err(library_error)
                .map(|written| completed(written.iter().filter_map(|w| w.seq).max())),
            Operation::Delete(b) => points::delete(s, p, JsonBody(b)).await.map(result),
            Operation::SetPayload(b) => points::set_payload(s, p, JsonBody(b)).await.map(result),
            Operation::OverwritePayload(b) => points::overwrite_payload(s, p, JsonBody(b))
                .await
                .map(result),
            Operation::DeletePayload(b) => {
                points::delete_payload(s, p, JsonBody(b)).await.map(result)
            }
            Operation::ClearPayload(b) => {
                points::clear_payload(s, p, JsonBody(b)).await.map(result)
            }
            Operation::UpdateVectors(b) => {
                named::update_vectors(s, p, JsonBody(b)).await.map(result)
            }
            Operation::DeleteVectors(b) => {
                named::delete_vectors(s, p, JsonBody(b)).await.map(result)
            }
        };
        results.push(done.map_err(|e| e.at(&format!("operations[{i}]")))?);
    }
    Ok(ok(results, started))
}

/// The result inside a route's answer.
fn result(reply: Json<Reply<UpdateResult>>) -> UpdateResult {
    reply.0.result
}
