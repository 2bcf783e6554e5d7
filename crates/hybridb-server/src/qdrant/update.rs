//! `PATCH /collections/{c}`: Qdrant's collection update.
//!
//! hybridb fixes a collection's graph parameters at creation (its HNSW graphs are built and
//! checkpointed with them), so the tuning knobs of an update (`hnsw_config`,
//! `optimizers_config`, `params`, per-vector `on_disk`, a sparse vector's `index`) are
//! checked for form and kept without effect on the engine: the collection info reports them
//! back as Qdrant does (`knobs.rs`). `quantization_config` (the collection's, or a vector's
//! own, which wins; `"Disabled"` turns it off) changes the vectors' codes online
//! (`Collection::set_quantization`), mapped as at creation, and is kept as given too. What would change meaning is not silently dropped: an unknown vector name is an error,
//! a sparse vector's `modifier` may only be restated. `metadata` is merged into the
//! collection's (a `null` value removes its key), in its own transaction.

use std::time::Instant;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::convert::{bad, collection, unsupported};
use super::envelope::{QdrantError, Reply, ok};
use super::vectors::{Kind, Layout, sparse_config};
use crate::error::ApiError;
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// Body of `PATCH /collections/{collection_name}` (Qdrant's `UpdateCollection`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateCollectionBody {
    /// Per dense vector (`""`: the unnamed one): `hnsw_config`, `quantization_config`,
    /// `on_disk`. Every named vector must exist; `quantization_config` changes its codes, the
    /// other knobs are kept and reported back without effect on the engine.
    #[schema(value_type = Object)]
    pub vectors: Option<Value>,
    /// Per sparse vector: `index` (accepted) and `modifier` (may only be restated).
    #[schema(value_type = Object)]
    pub sparse_vectors: Option<Value>,
    /// Kept and reported back, without effect on the engine.
    #[schema(value_type = Object)]
    pub optimizers_config: Option<Value>,
    /// Kept and reported back, without effect on the engine.
    #[schema(value_type = Object)]
    pub params: Option<Value>,
    /// Kept and reported back, without effect on the engine.
    #[schema(value_type = Object)]
    pub hnsw_config: Option<Value>,
    /// The codes of every dense vector without its own `quantization_config` in `vectors`
    /// (`scalar` → SQ8, `binary` → rotated 1- or 2-bit codes, `"Disabled"` → none), changed
    /// online; kept and reported back as given.
    #[schema(value_type = Object)]
    pub quantization_config: Option<Value>,
    /// Kept and reported back, without effect on the engine.
    #[schema(value_type = Object)]
    pub strict_mode_config: Option<Value>,
    /// Keys merged into the collection's metadata (`null` removes one).
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

/// The object of a knob (absent or null: none).
fn object<'a>(v: &'a Option<Value>, key: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(bad(key, format!("expected an object, got {other}"))),
    }
}

/// Update collection parameters
///
/// Accepts Qdrant's collection update. `quantization_config` (the collection's, or a vector's
/// own) changes the vectors' codes online; the other tuning knobs are kept and reported back
/// by the collection info, without effect (hybridb's graphs keep the parameters they were
/// created with); every named vector must exist; a sparse vector's `modifier` may only be
/// restated; `metadata` is merged.
#[utoipa::path(patch, path = "/collections/{collection_name}", tag = "qdrant",
    operation_id = "qdrant_update_collection",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    request_body = UpdateCollectionBody,
    responses(
        (status = 200, description = "Accepted: `true`", body = Reply<bool>),
        (status = 400, description = "An unknown vector, a changed modifier, or metadata above 64 KiB", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn update(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<UpdateCollectionBody>,
) -> Result<Json<Reply<bool>>, ApiError> {
    let started = Instant::now();
    let metadata = super::knobs::user_metadata(&body.metadata)?;
    for (knob, key) in [
        (&body.optimizers_config, "optimizers_config"),
        (&body.params, "params"),
        (&body.hnsw_config, "hnsw_config"),
        (&body.strict_mode_config, "strict_mode_config"),
    ] {
        object(knob, key)?;
    }
    blocking(move || {
        let c = collection(&st.db, &name)?;
        let config = c.config();
        let layout = Layout::of(config.clone());
        let codes = quantization_changes(&body, &config, &layout)?;
        if let Some(vectors) = object(&body.vectors, "vectors")? {
            for (v, params) in vectors {
                let at = format!("vectors.{v}");
                match layout.resolve(v) {
                    Ok((_, Kind::Dense(_))) => {}
                    _ => return Err(bad(&at, format!("Not existing vector name error: {v}"))),
                }
                if !params.is_object() && !params.is_null() {
                    return Err(bad(&at, "expected an object of parameters"));
                }
            }
        }
        if let Some(sparse) = object(&body.sparse_vectors, "sparse_vectors")? {
            for (v, params) in sparse {
                let at = format!("sparse_vectors.{v}");
                let Ok((engine, Kind::Sparse)) = layout.resolve(v) else {
                    return Err(bad(&at, format!("Not existing vector name error: {v}")));
                };
                let restated = params.get("modifier").is_none_or(Value::is_null)
                    || config.vectors.get(&engine) == Some(&sparse_config(params, &at)?);
                if !restated {
                    return Err(unsupported("changing a sparse vector's modifier"));
                }
            }
        }
        // Last, after everything else was checked: the codes (each change one transaction,
        // then trained), then the user's metadata and the kept knobs in one transaction.
        for (vector, q) in codes {
            c.set_quantization(&vector, q)?;
        }
        let knobs = super::knobs::patched(
            config.metadata.get(super::knobs::KNOBS_KEY),
            &serde_json::json!({
                "vectors": body.vectors,
                "sparse_vectors": body.sparse_vectors,
                "optimizers_config": body.optimizers_config,
                "params": body.params,
                "hnsw_config": body.hnsw_config,
                "quantization_config": body.quantization_config,
            }),
        );
        let mut patch = metadata.unwrap_or_default();
        let knobs = (!knobs.is_empty()).then_some(Value::Object(knobs));
        if config.metadata.get(super::knobs::KNOBS_KEY) != knobs.as_ref() {
            // `null` removes the key.
            patch.insert(super::knobs::KNOBS_KEY.into(), knobs.unwrap_or(Value::Null));
        }
        if !patch.is_empty() {
            c.update_metadata(patch)?;
        }
        Ok(())
    })
    .await?;
    Ok(ok(true, started))
}

/// The codes an update asks for, by engine vector name, for the dense vectors whose code
/// changes: a vector's own `quantization_config` (in `vectors`), else the collection's.
fn quantization_changes(
    body: &UpdateCollectionBody,
    config: &hybridb::CollectionConfig,
    layout: &Layout,
) -> Result<Vec<(String, hybridb::Quantization)>, ApiError> {
    use super::vectors::{kept_quantization, updated_quantization};
    let collection = match &body.quantization_config {
        None | Some(Value::Null) => None,
        Some(q) => Some(updated_quantization(q, "quantization_config")?),
    };
    let mut own = std::collections::BTreeMap::new();
    if let Some(vectors) = object(&body.vectors, "vectors")? {
        for (v, params) in vectors {
            let Some(q) = params.get("quantization_config").filter(|q| !q.is_null()) else {
                continue;
            };
            let at = format!("vectors.{v}.quantization_config");
            if let Ok((engine, Kind::Dense(_))) = layout.resolve(v) {
                own.insert(engine, updated_quantization(q, &at)?);
            }
        }
    }
    // Every dense vector: (engine name, index, metric, current code).
    let mut dense = Vec::new();
    if config.has_default_vector() {
        dense.push((
            String::new(),
            config.index,
            config.metric,
            config.quantization,
        ));
    }
    for (name, v) in &config.vectors {
        if let hybridb::VectorConfig::Dense {
            index,
            metric,
            quantization,
            ..
        } = v
        {
            dense.push((name.clone(), *index, *metric, *quantization));
        }
    }
    Ok(dense
        .into_iter()
        .filter_map(|(name, index, metric, now)| {
            let asked = own.get(&name).copied().or(collection)?;
            let kept = kept_quantization(index, metric, asked);
            (kept != now).then_some((name, kept))
        })
        .collect())
}
