//! Qdrant's service root, collections, payload indexes and aliases.

use std::time::Instant;

use axum::extract::State;
use hybridb::{CollectionConfig, IndexKind, Metric, PayloadIndexKind, VectorConfig};
use serde_json::{Value, json};

use super::convert::{bad, collection, not_found, unsupported};
use super::envelope::{QdrantError, Reply, ok};
use super::model::{
    AliasDescription, ChangeAliases, CollectionDescription, CollectionExistence, CollectionInfo,
    CollectionsAliasesResponse, CollectionsResponse, CreateCollectionBody, CreateFieldIndex,
    UpdateResult, VersionInfo,
};
use super::vectors::{Layout, UNNAMED, check_name, dense_config, sparse_config};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiPath, JsonBody};
use crate::reply::Json;
use crate::state::{AppState, blocking};

/// The Qdrant API version this layer follows (what `GET /` reports; clients compare it with
/// their own).
pub(crate) const QDRANT_VERSION: &str = "1.19.0";

/// Qdrant's name of a metric.
pub(crate) fn distance_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "Cosine",
        Metric::L2 => "Euclid",
        Metric::Dot => "Dot",
        Metric::Manhattan => "Manhattan",
        _ => "Unknown",
    }
}

/// The metric of Qdrant's distance `name` (`at` names the vector declaration).
pub(crate) fn metric_of(name: &str, at: &str) -> Result<Metric, ApiError> {
    Ok(match name {
        "Cosine" => Metric::Cosine,
        "Euclid" => Metric::L2,
        "Dot" => Metric::Dot,
        "Manhattan" => Metric::Manhattan,
        other => {
            return Err(bad(
                &format!("{at}.distance"),
                format!("unknown distance {other:?}: expected Cosine, Euclid, Dot or Manhattan"),
            ));
        }
    })
}

/// The library config of a create-collection body (see [`super::vectors`] for how Qdrant's
/// vectors map onto the engine's).
fn config_of(body: &CreateCollectionBody) -> Result<CollectionConfig, ApiError> {
    let mut metadata = super::knobs::user_metadata(&body.metadata)?.unwrap_or_default();
    let knobs = super::knobs::at_create(&body.knob_json());
    if !knobs.is_empty() {
        metadata.insert(super::knobs::KNOBS_KEY.into(), Value::Object(knobs));
    }
    let mut hnsw = body.hnsw_config.clone().unwrap_or_default();
    // Qdrant's `indexing_threshold: 0` turns indexing off: searches scan, as an exact index.
    if body
        .optimizers_config
        .as_ref()
        .and_then(|o| o.get("indexing_threshold"))
        .and_then(Value::as_u64)
        == Some(0)
    {
        hnsw.m = Some(0);
    }
    // Dense vectors by Qdrant name ("" the unnamed one).
    let mut dense: Vec<(String, VectorConfig)> = Vec::new();
    match body.vectors.as_ref() {
        None | Some(Value::Null) => {}
        Some(Value::Object(top)) if top.contains_key("size") => {
            dense.push((
                String::new(),
                dense_config(
                    &Value::Object(top.clone()),
                    &hnsw,
                    body.quantization_config.as_ref(),
                    "vectors",
                )?,
            ));
        }
        Some(Value::Object(top)) => {
            for (name, params) in top {
                check_name(name, &format!("vectors.{name}"))?;
                dense.push((
                    name.clone(),
                    dense_config(
                        params,
                        &hnsw,
                        body.quantization_config.as_ref(),
                        &format!("vectors.{name}"),
                    )?,
                ));
            }
        }
        Some(_) => {
            return Err(bad(
                "vectors",
                "expected {\"size\": n, \"distance\": \"Cosine\"} or an object of named vectors",
            ));
        }
    }
    let mut sparse: Vec<(String, VectorConfig)> = Vec::new();
    match body.sparse_vectors.as_ref() {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, params) in m {
                let at = format!("sparse_vectors.{name}");
                check_name(name, &at)?;
                if name.is_empty() {
                    return Err(bad(&at, "Sparse vector name cannot be empty"));
                }
                if dense.iter().any(|(d, _)| d == name) {
                    return Err(bad(
                        &at,
                        format!(
                            "Dense and sparse vector names must be unique - duplicate found \
                             with '{name}'"
                        ),
                    ));
                }
                sparse.push((name.clone(), sparse_config(params, &at)?));
            }
        }
        Some(_) => {
            return Err(bad(
                "sparse_vectors",
                "expected an object of named sparse vectors",
            ));
        }
    }
    if dense.is_empty() && sparse.is_empty() {
        return Err(unsupported("a collection without vectors"));
    }
    // One unnamed dense vector and nothing else: the engine's default vector.
    if let (
        [
            (
                name,
                VectorConfig::Dense {
                    dim,
                    metric,
                    index,
                    quantization,
                },
            ),
        ],
        [],
    ) = (dense.as_slice(), sparse.as_slice())
        && name.is_empty()
    {
        return Ok(CollectionConfig::new(*dim, *metric)
            .with_index(*index)
            .with_quantization(*quantization)
            .with_metadata(metadata));
    }
    let mut config = CollectionConfig::named_only();
    for (name, v) in dense.into_iter().chain(sparse) {
        let engine = if name.is_empty() {
            UNNAMED.to_string()
        } else {
            name
        };
        config = config.with_vector(engine, v);
    }
    Ok(config.with_metadata(metadata))
}

/// Service root
///
/// The server's name and the Qdrant API version it follows.
#[utoipa::path(get, path = "/", tag = "qdrant", operation_id = "qdrant_root",
    responses((status = 200, description = "Name and versions", body = VersionInfo)))]
pub(crate) async fn root() -> Json<VersionInfo> {
    Json(VersionInfo {
        title: "hybridb (Qdrant-compatible API)".to_string(),
        version: QDRANT_VERSION.to_string(),
        commit: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// List collections
///
/// The names of every collection.
#[utoipa::path(get, path = "/collections", tag = "qdrant", operation_id = "qdrant_get_collections",
    responses((status = 200, description = "The collections", body = Reply<CollectionsResponse>)))]
pub(crate) async fn list(State(st): State<AppState>) -> Json<Reply<CollectionsResponse>> {
    let started = Instant::now();
    let collections = st
        .db
        .collections()
        .into_iter()
        .map(|c| CollectionDescription { name: c.name })
        .collect();
    ok(CollectionsResponse { collections }, started)
}

/// Collection info
///
/// Status, counts, configuration and payload schema of a collection (or alias).
#[utoipa::path(get, path = "/collections/{collection_name}", tag = "qdrant",
    operation_id = "qdrant_get_collection",
    params(("collection_name" = String, Path, description = "Collection name or alias")),
    responses(
        (status = 200, description = "The collection", body = Reply<CollectionInfo>),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn get(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Reply<CollectionInfo>>, ApiError> {
    let started = Instant::now();
    let info = blocking(move || {
        let c = collection(&st.db, &name)?;
        let config = c.config();
        let count = c.count()?;
        let mut payload_schema = serde_json::Map::new();
        // Through the filter parser, which reads Qdrant's `a[].b` keys.
        let holding = |field: &str| -> Result<u64, ApiError> {
            let filter = hybridb::Filter::from_json(&json!({"must": [{"exists": {"key": field}}]}))
                .map_err(|e| ApiError::internal(format!("payload schema count: {e}")))?;
            Ok(c.count_where(&filter)?)
        };
        let declared = |field: &str, points: u64| {
            super::knobs::reported_schema(&config.metadata, field, points)
        };
        for (field, kind) in &config.payload_indexes {
            let points = holding(field)?;
            payload_schema.insert(
                field.clone(),
                declared(field, points).unwrap_or_else(
                    || json!({"data_type": kind_name(*kind), "params": null, "points": points}),
                ),
            );
        }
        for field in super::knobs::geo_fields(&config.metadata) {
            let points = holding(&field)?;
            if let Some(s) = declared(&field, points) {
                payload_schema.insert(field, s);
            }
        }
        for (field, t) in &config.text_indexes {
            if let Some(s) = declared(field, holding(field)?) {
                payload_schema.insert(field.clone(), s);
                continue;
            }
            let language = t.language.map(|l| json!(l));
            let params = json!({
                "type": "text", "tokenizer": "word", "lowercase": true,
                "stopwords": if t.stop_words { language.clone() } else { None },
                "stemmer": if t.stemming {
                    language.map(|l| json!({"type": "snowball", "language": l}))
                } else {
                    None
                },
            });
            payload_schema.insert(
                field.clone(),
                json!({"data_type": "text", "params": params, "points": holding(field)?}),
            );
        }
        // The HNSW parameters and code of the first dense vector (the unnamed one first).
        let (index, quantization) = if config.has_default_vector() {
            (Some(config.index), config.quantization)
        } else {
            let first = config
                .vectors
                .get(UNNAMED)
                .into_iter()
                .chain(config.vectors.values());
            first
                .filter_map(|v| match v {
                    VectorConfig::Dense {
                        index,
                        quantization,
                        ..
                    } => Some((Some(*index), *quantization)),
                    _ => None,
                })
                .next()
                .unwrap_or((None, hybridb::Quantization::None))
        };
        // Qdrant's form of the code: SQ8 is its int8 scalar quantization, the rotated codes
        // its binary ones.
        let quantization_config = match quantization {
            hybridb::Quantization::None => Value::Null,
            hybridb::Quantization::Sq8 => json!({"scalar": {"type": "int8"}}),
            hybridb::Quantization::Rq1 => json!({"binary": {"encoding": "one_bit"}}),
            _ => json!({"binary": {"encoding": "two_bits"}}),
        };
        let (m, ef_construct) = match index {
            Some(IndexKind::Hnsw {
                m, ef_construction, ..
            }) => (m, ef_construction),
            // An exact index: no graph (`m` 0); `ef_construct` as Qdrant's default, in its range.
            Some(_) => (0, 100),
            None => (16, 200),
        };
        // Whether any dense vector has an HNSW graph (Qdrant counts indexed vectors only).
        let graphs = (config.has_default_vector()
            && matches!(config.index, IndexKind::Hnsw { .. }))
            || config.vectors.values().any(|v| {
                matches!(
                    v,
                    VectorConfig::Dense {
                        index: IndexKind::Hnsw { .. },
                        ..
                    }
                )
            });
        let (vectors, sparse_vectors) = Layout::of(config.clone()).params();
        let mut params = json!({
            "vectors": vectors,
            "shard_number": 1,
            "replication_factor": 1,
            "write_consistency_factor": 1,
            "on_disk_payload": true
        });
        if let Some(s) = sparse_vectors {
            params["sparse_vectors"] = s;
        }
        let mut reported = json!({
            "params": params,
            "hnsw_config": {"m": m, "ef_construct": ef_construct, "full_scan_threshold": 10000,
                            "max_indexing_threads": 0, "on_disk": false},
            "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                                 "default_segment_number": 0, "flush_interval_sec": 5,
                                 "max_optimization_threads": null},
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": quantization_config,
        });
        super::knobs::report(&mut reported, &config.metadata);
        reported["metadata"] = Value::Object(super::knobs::reported_metadata(&config.metadata));
        Ok(CollectionInfo {
            status: "green",
            optimizer_status: "ok",
            segments_count: 1,
            points_count: count,
            indexed_vectors_count: if graphs { c.indexed_count() as u64 } else { 0 },
            config: reported,
            payload_schema,
        })
    })
    .await?;
    Ok(ok(info, started))
}

fn kind_name(k: PayloadIndexKind) -> &'static str {
    match k {
        PayloadIndexKind::Keyword => "keyword",
        PayloadIndexKind::Integer => "integer",
        PayloadIndexKind::Float => "float",
        PayloadIndexKind::Bool => "bool",
        PayloadIndexKind::Datetime => "datetime",
        _ => "unknown",
    }
}

/// Create a collection
///
/// A collection of one unnamed dense vector: `{"vectors": {"size": n, "distance": ...}}`;
/// `hnsw_config.m: 0` asks for exact search.
#[utoipa::path(put, path = "/collections/{collection_name}", tag = "qdrant",
    operation_id = "qdrant_create_collection",
    params(("collection_name" = String, Path, description = "1..=64 bytes of [A-Za-z0-9_-]"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    request_body = CreateCollectionBody,
    responses(
        (status = 200, description = "Created: `true`", body = Reply<bool>),
        (status = 400, description = "A bad or unsupported configuration", body = QdrantError),
        (status = 409, description = "A collection or alias of that name exists", body = QdrantError)))]
pub(crate) async fn create(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CreateCollectionBody>,
) -> Result<Json<Reply<bool>>, ApiError> {
    let started = Instant::now();
    let config = config_of(&body)?;
    blocking(move || match st.db.create_collection(&name, config) {
        Ok(_) => Ok(()),
        Err(hybridb::Error::CollectionExists(_)) => Err(ApiError::new(
            ErrorCode::CollectionExists,
            format!("Collection `{name}` already exists!"),
        )),
        // Qdrant answers 400 here (409 only for an existing collection).
        Err(hybridb::Error::NameIsAlias(_)) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("Alias with name `{name}` already exists"),
        )),
        Err(e) => Err(e.into()),
    })
    .await?;
    Ok(ok(true, started))
}

/// Delete a collection
///
/// Drops a collection and the aliases that point to it; `false` if it did not exist.
#[utoipa::path(delete, path = "/collections/{collection_name}", tag = "qdrant",
    operation_id = "qdrant_delete_collection",
    params(("collection_name" = String, Path, description = "Collection name"),
           ("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    responses((status = 200, description = "`true` if it existed", body = Reply<bool>)))]
pub(crate) async fn delete(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Reply<bool>>, ApiError> {
    let started = Instant::now();
    let existed = blocking(move || {
        if !st.db.collections().iter().any(|c| c.name == name) {
            return Ok(false);
        }
        for alias in st.db.aliases() {
            if alias.collection == name {
                match st.db.delete_alias(&alias.alias) {
                    Ok(_) | Err(hybridb::Error::AliasNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        match st.db.drop_collection(&name) {
            Ok(()) => Ok(true),
            Err(hybridb::Error::CollectionNotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(ok(existed, started))
}

/// Collection exists
///
/// Whether a collection (or alias) of that name exists.
#[utoipa::path(get, path = "/collections/{collection_name}/exists", tag = "qdrant",
    operation_id = "qdrant_collection_exists",
    params(("collection_name" = String, Path, description = "Collection name or alias")),
    responses((status = 200, description = "Whether it exists", body = Reply<CollectionExistence>)))]
pub(crate) async fn exists(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Reply<CollectionExistence>>, ApiError> {
    let started = Instant::now();
    let exists = match st.db.collection(&name) {
        Ok(_) => true,
        Err(hybridb::Error::CollectionNotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(ok(CollectionExistence { exists }, started))
}

/// Create a payload index
///
/// Declares an index on a payload field: `keyword`, `integer`, `float`, `bool`, `datetime`,
/// `uuid` (a keyword index), `text`, or `geo` (declared and reported; geo conditions are
/// decided from payloads).
#[utoipa::path(put, path = "/collections/{collection_name}/index", tag = "qdrant",
    operation_id = "qdrant_create_field_index",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    request_body = CreateFieldIndex,
    responses(
        (status = 200, description = "Declared", body = Reply<UpdateResult>),
        (status = 400, description = "An unsupported schema, or values that do not fit it", body = QdrantError),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn create_index(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CreateFieldIndex>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let schema = match &body.field_schema {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => m
            .get("type")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| bad("field_schema", "expected a type name or {\"type\": ...}"))?,
        _ => {
            return Err(bad(
                "field_schema",
                "expected a type name or {\"type\": ...}",
            ));
        }
    };
    if let Some(Value::Object(m)) = &body.field_schema
        && m.get("lookup") == Some(&Value::Bool(false))
        && m.get("range") == Some(&Value::Bool(false))
    {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "Validation error: the 'lookup' and 'range' capabilities can't be both disabled",
        ));
    }
    let kind = match schema.as_str() {
        "geo" | "text" => None,
        // A UUID index holds UUID strings: a keyword index does (values match as written;
        // the collection info then reports the field as `keyword`).
        "keyword" | "uuid" => Some(PayloadIndexKind::Keyword),
        "integer" => Some(PayloadIndexKind::Integer),
        "float" => Some(PayloadIndexKind::Float),
        "bool" => Some(PayloadIndexKind::Bool),
        "datetime" => Some(PayloadIndexKind::Datetime),
        other => return Err(unsupported(&format!("payload index type {other:?}"))),
    };
    let text = if schema == "text" {
        Some(text_config(body.field_schema.as_ref())?)
    } else {
        None
    };
    let op = blocking(move || {
        let c = collection(&st.db, &name)?;
        match (kind, text) {
            (Some(kind), _) => {
                c.create_payload_index(&body.field_name, kind)?;
            }
            (None, Some(config)) => {
                c.create_text_index(&body.field_name, config)?;
            }
            // `geo`: declared only (geo conditions are decided from payloads).
            (None, None) => {}
        }
        // The schema as declared, for `payload_schema` (`knobs.rs`).
        if let Some(patch) = super::knobs::index_patch(
            &c.config().metadata,
            &body.field_name,
            body.field_schema.as_ref(),
        ) {
            c.update_metadata(patch)?;
        }
        Ok(st.db.last_seq()?)
    })
    .await?;
    Ok(ok(completed(Some(op)), started))
}

/// A hybridb text index for Qdrant's `{"type": "text", ...}` schema: words by Unicode
/// boundaries, lowercased (Qdrant's `lowercase: false` is refused); `stopwords` (a language
/// name) and a Snowball `stemmer` in English, German, French or Spanish. Token length bounds
/// and `phrase_matching` are accepted without effect (phrases are matched on payloads).
fn text_config(schema: Option<&Value>) -> Result<hybridb::TextIndexConfig, ApiError> {
    let at = "field_schema";
    let language = |v: &Value, at: &str| -> Result<hybridb::TextLanguage, ApiError> {
        let name = v
            .as_str()
            .or_else(|| v.get("language").and_then(Value::as_str))
            .ok_or_else(|| bad(at, "expected a language name"))?;
        serde_json::from_value(json!(name.to_ascii_lowercase())).map_err(|_| {
            unsupported(&format!(
                "the text language {name:?} (hybridb has english, german, french, spanish)"
            ))
        })
    };
    let mut config = hybridb::TextIndexConfig {
        stemming: false,
        stop_words: false,
        ..hybridb::TextIndexConfig::default()
    };
    let Some(Value::Object(m)) = schema else {
        return Ok(config);
    };
    if m.get("lowercase").and_then(Value::as_bool) == Some(false) {
        return Err(unsupported("a text index without lowercasing"));
    }
    if let Some(s) = m.get("stopwords").filter(|v| !v.is_null()) {
        config.language = Some(language(s, &format!("{at}.stopwords"))?);
        config.stop_words = true;
    }
    if let Some(s) = m.get("stemmer").filter(|v| !v.is_null()) {
        let l = language(s, &format!("{at}.stemmer"))?;
        if config.language.is_some_and(|x| x != l) {
            return Err(unsupported(
                "stop words and stemming in different languages",
            ));
        }
        config.language = Some(l);
        config.stemming = true;
    }
    Ok(config)
}

/// The answer of a finished write.
pub(crate) fn completed(operation_id: Option<u64>) -> UpdateResult {
    UpdateResult {
        operation_id,
        status: "completed",
    }
}

/// Delete a payload index
///
/// Drops the index of a payload field (the values stay).
#[utoipa::path(delete, path = "/collections/{collection_name}/index/{field_name}", tag = "qdrant",
    operation_id = "qdrant_delete_field_index",
    params(("collection_name" = String, Path, description = "Collection name or alias"),
           ("field_name" = String, Path, description = "The payload field"),
           ("wait" = Option<bool>, Query, description = "Accepted; writes always wait for their commit"),
           ("ordering" = Option<String>, Query, description = "Accepted and ignored")),
    responses(
        (status = 200, description = "Dropped (or there was none)", body = Reply<UpdateResult>),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn delete_index(
    State(st): State<AppState>,
    ApiPath((name, field)): ApiPath<(String, String)>,
) -> Result<Json<Reply<UpdateResult>>, ApiError> {
    let started = Instant::now();
    let op = blocking(move || {
        let c = collection(&st.db, &name)?;
        c.drop_payload_index(&field)?;
        c.drop_text_index(&field)?;
        if let Some(patch) = super::knobs::index_patch(&c.config().metadata, &field, None) {
            c.update_metadata(patch)?;
        }
        Ok(st.db.last_seq()?)
    })
    .await?;
    Ok(ok(completed(Some(op)), started))
}

fn field<'a>(action: &'a Value, at: &str, name: &str) -> Result<&'a str, ApiError> {
    action
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{at}.{name}"), "expected a string"))
}

/// Update aliases
///
/// Applies `create_alias`, `delete_alias` and `rename_alias` actions in order. Each action is
/// atomic; unlike Qdrant, a list is not: a failing action stops the list, and the actions
/// before it stay applied.
#[utoipa::path(post, path = "/collections/aliases", tag = "qdrant",
    operation_id = "qdrant_update_aliases",
    params(("timeout" = Option<u64>, Query, description = "Accepted and ignored")),
    request_body = ChangeAliases,
    responses(
        (status = 200, description = "Applied: `true`", body = Reply<bool>),
        (status = 400, description = "A malformed action", body = QdrantError),
        (status = 404, description = "No such collection or alias", body = QdrantError),
        (status = 409, description = "The alias name is taken", body = QdrantError)))]
pub(crate) async fn update_aliases(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<ChangeAliases>,
) -> Result<Json<Reply<bool>>, ApiError> {
    let started = Instant::now();
    blocking(move || {
        for (i, action) in body.actions.iter().enumerate() {
            let at = format!("actions[{i}]");
            if let Some(a) = action.get("create_alias") {
                let at = format!("{at}.create_alias");
                let collection_name = field(a, &at, "collection_name")?;
                if !st
                    .db
                    .collections()
                    .iter()
                    .any(|c| c.name == collection_name)
                {
                    return Err(not_found(collection_name));
                }
                st.db
                    .create_alias(field(a, &at, "alias_name")?, collection_name)?;
            } else if let Some(a) = action.get("delete_alias") {
                st.db
                    .delete_alias(field(a, &format!("{at}.delete_alias"), "alias_name")?)?;
            } else if let Some(a) = action.get("rename_alias") {
                let at = format!("{at}.rename_alias");
                let old = field(a, &at, "old_alias_name")?;
                let new = field(a, &at, "new_alias_name")?;
                let target = st
                    .db
                    .alias_target(old)
                    .ok_or_else(|| hybridb::Error::AliasNotFound(old.to_string()))?;
                st.db.create_alias(new, &target)?;
                st.db.delete_alias(old)?;
            } else {
                return Err(bad(
                    &at,
                    "expected create_alias, delete_alias or rename_alias",
                ));
            }
        }
        Ok(())
    })
    .await?;
    Ok(ok(true, started))
}

fn alias_list(db: &hybridb::Database, of: Option<&str>) -> CollectionsAliasesResponse {
    CollectionsAliasesResponse {
        aliases: db
            .aliases()
            .into_iter()
            .filter(|a| of.is_none_or(|c| a.collection == c))
            .map(|a| AliasDescription {
                alias_name: a.alias,
                collection_name: a.collection,
            })
            .collect(),
    }
}

/// List aliases
///
/// Every alias with its collection.
#[utoipa::path(get, path = "/aliases", tag = "qdrant", operation_id = "qdrant_get_aliases",
    responses((status = 200, description = "The aliases", body = Reply<CollectionsAliasesResponse>)))]
pub(crate) async fn aliases(State(st): State<AppState>) -> Json<Reply<CollectionsAliasesResponse>> {
    let started = Instant::now();
    ok(alias_list(&st.db, None), started)
}

/// Aliases of a collection
///
/// The aliases that point to a collection.
#[utoipa::path(get, path = "/collections/{collection_name}/aliases", tag = "qdrant",
    operation_id = "qdrant_get_collection_aliases",
    params(("collection_name" = String, Path, description = "Collection name")),
    responses(
        (status = 200, description = "The aliases", body = Reply<CollectionsAliasesResponse>),
        (status = 404, description = "No such collection", body = QdrantError)))]
pub(crate) async fn collection_aliases(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Reply<CollectionsAliasesResponse>>, ApiError> {
    let started = Instant::now();
    if !st.db.collections().iter().any(|c| c.name == name) {
        return Err(not_found(&name));
    }
    Ok(ok(alias_list(&st.db, Some(&name)), started))
}
