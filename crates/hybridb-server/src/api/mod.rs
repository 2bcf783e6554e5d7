//! The JSON shapes of requests and answers, with their OpenAPI schemas.
//!
//! Request types refuse unknown fields (a typo such as `top_k` is named in a 400 rather than
//! silently ignored). Collection configs have the library's own serde form, so the answer's
//! `config` is the library's [`hybridb::CollectionConfig`] serialised as is.
//!
//! Split by topic: named vectors in `vectors.rs`, the change feed and the administration
//! routes in `admin.rs`; all re-exported here.

mod admin;
mod encoding;
mod query;
mod text;
mod vectors;

use std::collections::BTreeMap;

pub use admin::*;
pub use encoding::*;
use hybridb::{
    CollectionConfig, EntityId, Hit, IndexKind, Metric, NamedVector, PayloadIndexKind, Record,
};
pub use query::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
pub use text::*;
use utoipa::ToSchema;
pub use vectors::*;

use crate::filter::Filter;

/// The OpenAPI schema of an entity's payload (named `Payload`): any JSON object, the entity's
/// structured state.
#[derive(Debug, Clone, Copy)]
pub struct PayloadSchema;

impl utoipa::PartialSchema for PayloadSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .description(Some(
                "An entity's structured state: any JSON object (at most the server's payload \
                 size). Declared payload indexes fix the type of their fields.",
            ))
            .examples([serde_json::json!({"lang": "en", "title": "Introduction"})])
            .into()
    }
}

impl ToSchema for PayloadSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Payload")
    }
}

/// Similarity metric.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricSpec {
    /// Cosine similarity (higher is better); zero vectors are refused.
    #[default]
    Cosine,
    /// Inner product (higher is better).
    Dot,
    /// Euclidean distance (lower is better).
    L2,
    /// Manhattan (L1) distance (lower is better).
    Manhattan,
}

/// Vector index of a collection.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum IndexSpec {
    /// Exact search over all vectors.
    #[schema(title = "ExactIndex")]
    Exact,
    /// HNSW graph (approximate). Omitted parameters take the defaults.
    #[schema(title = "HnswIndex")]
    Hnsw {
        /// Links per node, 2..=128. Default 16 (as `IndexKind::hnsw()`).
        m: Option<u32>,
        /// Candidate list size while inserting, m..=4096. Default 200.
        ef_construction: Option<u32>,
        /// Default search candidate list size, 1..=65536. Default 64.
        ef: Option<u32>,
    },
}

/// Type of a declared payload index.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadIndexSpec {
    /// Exact strings.
    Keyword,
    /// 64-bit integers.
    Integer,
    /// 64-bit floats.
    Float,
    /// Booleans.
    Bool,
    /// RFC 3339 timestamps.
    Datetime,
}

/// The library's metric.
pub(crate) fn metric(m: MetricSpec) -> Metric {
    match m {
        MetricSpec::Cosine => Metric::Cosine,
        MetricSpec::Dot => Metric::Dot,
        MetricSpec::L2 => Metric::L2,
        MetricSpec::Manhattan => Metric::Manhattan,
    }
}

/// The library's index kind (omitted HNSW parameters take the defaults).
pub(crate) fn index_kind(i: IndexSpec) -> IndexKind {
    match i {
        IndexSpec::Exact => IndexKind::Exact,
        IndexSpec::Hnsw {
            m,
            ef_construction,
            ef,
        } => IndexKind::Hnsw {
            m: m.unwrap_or(16),
            ef_construction: ef_construction.unwrap_or(200),
            ef: ef.unwrap_or(64),
        },
    }
}

/// Body of `PUT /collections/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"dim": 3, "metric": "cosine", "payload_indexes": {"lang": "keyword"},
    "vectors": {"terms": {"type": "sparse", "idf": true}}}))]
pub struct CreateCollection {
    /// Dimension of the default (unnamed) vector, 1..=4096; 0 or absent: no default vector
    /// (then `vectors` must declare at least one named vector).
    #[serde(default)]
    pub dim: u32,
    /// Metric of the default vector. Default `cosine`.
    #[serde(default)]
    pub metric: MetricSpec,
    /// Index. Default HNSW with m 16, ef_construction 200, ef 64.
    #[serde(default)]
    pub index: Option<IndexSpec>,
    /// Codes the default vector's HNSW walk ranks by. Default `auto` (`rq4` from 384
    /// dimensions on an HNSW index under cosine, dot or L2, else `none`).
    #[serde(default)]
    pub quantization: QuantizationSpec,
    /// Declared payload indexes: field name to type.
    #[serde(default)]
    pub payload_indexes: BTreeMap<String, PayloadIndexSpec>,
    /// Named vectors, dense or sparse, by name (1..=128 bytes, no control characters). An
    /// entity may lack any of them; a search names the one it uses (`using`).
    #[serde(default)]
    pub vectors: BTreeMap<String, VectorSpec>,
    /// BM25 text indexes on payload fields, by field key.
    #[serde(default)]
    pub text_indexes: BTreeMap<String, TextIndexSpec>,
    /// The user's metadata: any JSON object, kept with the config (at most 64 KiB as JSON).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, Value>,
}

impl CreateCollection {
    /// The library config this body asks for.
    pub fn to_config(&self) -> CollectionConfig {
        let mut config = CollectionConfig::new(self.dim, metric(self.metric));
        if let Some(index) = self.index {
            config = config.with_index(index_kind(index));
        }
        config = config.with_quantization(self.quantization.quantization());
        for (field, kind) in &self.payload_indexes {
            let kind = kind.kind();
            config = config.with_payload_index(field.clone(), kind);
        }
        for (name, spec) in &self.vectors {
            config = config.with_vector(name.clone(), spec.to_config());
        }
        for (field, spec) in &self.text_indexes {
            config = config.with_text_index(field.clone(), spec.to_config());
        }
        config.with_metadata(self.metadata.clone())
    }
}

/// A collection's metadata: any JSON object. As the body of `PATCH
/// /collections/{name}/metadata`, the keys to set (`null` removes a key).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object, example = json!({"model": "all-MiniLM-L6-v2", "owner": null}))]
pub struct Metadata(pub serde_json::Map<String, Value>);

/// The stored configuration of a collection, in the library's serde form.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigOut {
    /// Dimension of the default vector (0: none).
    pub dim: u32,
    /// Metric of the default vector.
    pub metric: MetricSpec,
    /// Index of the default vector, with every parameter.
    pub index: IndexSpec,
    /// Codes of the default vector's walk (absent: none).
    #[serde(default, skip_serializing_if = "QuantizationSpec::is_none")]
    pub quantization: QuantizationSpec,
    /// Declared payload indexes.
    pub payload_indexes: BTreeMap<String, PayloadIndexSpec>,
    /// Named vectors (absent when there are none); a dense one with every index parameter.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vectors: BTreeMap<String, VectorSpec>,
    /// Text indexes (absent when there are none), with every parameter.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub text_indexes: BTreeMap<String, TextIndexSpec>,
    /// The user's metadata (absent when empty).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, Value>,
}

/// A collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionOut {
    /// Name.
    pub name: String,
    /// Configuration.
    #[schema(value_type = ConfigOut)]
    pub config: Value,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
    /// Entities stored (only on `GET /collections/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Entities the vector index can return (only on `GET /collections/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed: Option<u64>,
    /// Bytes held by the in-memory index (only on `GET /collections/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_memory_bytes: Option<u64>,
    /// Changes not yet built into the HNSW graph: after a restart, the writes since the last
    /// checkpoint are linked in the background and searched exactly meanwhile (only on
    /// `GET /collections/{name}`; 0 once linked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlinked: Option<u64>,
}

impl CollectionOut {
    /// The answer for a collection's name, config and creation time.
    pub fn new(name: String, config: &CollectionConfig, created_at: u64) -> Self {
        CollectionOut {
            name,
            config: serde_json::to_value(config).unwrap_or(Value::Null),
            created_at,
            count: None,
            indexed: None,
            index_memory_bytes: None,
            unlinked: None,
        }
    }
}

/// Answer of `GET /collections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    /// All collections, by name.
    pub collections: Vec<CollectionOut>,
}

/// Body of `PUT /collections/{name}/payload-indexes/{field}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadIndexBody {
    /// The index type.
    pub kind: PayloadIndexSpec,
}

impl PayloadIndexSpec {
    /// The library's kind.
    pub fn kind(self) -> PayloadIndexKind {
        match self {
            PayloadIndexSpec::Keyword => PayloadIndexKind::Keyword,
            PayloadIndexSpec::Integer => PayloadIndexKind::Integer,
            PayloadIndexSpec::Float => PayloadIndexKind::Float,
            PayloadIndexSpec::Bool => PayloadIndexKind::Bool,
            PayloadIndexSpec::Datetime => PayloadIndexKind::Datetime,
        }
    }
}

/// Answer of the payload-index routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayloadIndexOut {
    /// The field (a dotted key).
    pub field: String,
    /// Whether anything changed (false: the index existed already, or did not exist).
    pub changed: bool,
}

/// Answer of `POST /collections/{name}/search/explain`: how a search ran, and its hits.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainOut {
    /// `unfiltered`, `no_matches`, `exact_scan`, `filtered_graph`, `post_filter` or `sparse`.
    pub plan: &'static str,
    /// The graph traversal found too few hits and an exact scan followed.
    pub fallback: bool,
    /// Live entities passing the filter (the planner's cardinality).
    pub matching: u64,
    /// `matching` was estimated from a sample.
    pub estimated: bool,
    /// Live entities in the collection.
    pub live: u64,
    /// Payloads read to decide conditions on fields without a payload index.
    pub payloads_checked: u64,
    /// Beam width of graph plans.
    pub ef: u64,
    /// Microseconds evaluating the filter.
    pub filter_micros: u64,
    /// Microseconds in the vector search.
    pub search_micros: u64,
    /// Microseconds for the whole search.
    pub total_micros: u64,
    /// The hits, best first.
    pub hits: Vec<HitOut>,
}

impl From<hybridb::Explain> for ExplainOut {
    fn from(e: hybridb::Explain) -> Self {
        ExplainOut {
            plan: e.plan.name(),
            fallback: e.fallback,
            matching: e.matching as u64,
            estimated: e.estimated,
            live: e.live as u64,
            payloads_checked: e.payloads_checked as u64,
            ef: e.ef as u64,
            filter_micros: e.filter_micros,
            search_micros: e.search_micros,
            total_micros: e.total_micros,
            hits: e.hits.into_iter().map(HitOut::from).collect(),
        }
    }
}

/// Answer of `DELETE /collections/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dropped {
    /// The dropped collection.
    pub name: String,
    /// Always true.
    pub dropped: bool,
}

/// One entity to write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityIn {
    /// UUID. When absent: derived from `key` (UUID v5), else a new time-ordered UUID v7.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub id: Option<EntityId>,
    /// A user key to derive the id from (the same key always gives the same id).
    pub key: Option<String>,
    /// Structured state: a JSON object. Default `{}`.
    #[schema(value_type = Option<PayloadSchema>)]
    pub payload: Option<Value>,
    /// The default embedding (the collection's dimension). Required when the collection has
    /// a default vector; absent otherwise.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Named vectors, by name, each of the kind the collection declares; named vectors left
    /// out are absent from the entity (an upsert replaces the whole entity).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, NamedVectorSchema>)]
    pub vectors: BTreeMap<String, NamedVectorIn>,
}

/// Body of `PUT /collections/{name}/entities/{id}`: one entity, optionally conditional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEntityBody {
    /// Structured state: a JSON object. Default `{}`.
    #[schema(value_type = Option<PayloadSchema>)]
    pub payload: Option<Value>,
    /// The default embedding (the collection's dimension). Required when the collection has
    /// a default vector; absent otherwise.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Named vectors, by name (see `EntityIn.vectors`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, NamedVectorSchema>)]
    pub vectors: BTreeMap<String, NamedVectorIn>,
    /// Write only if the stored version is this one (0: only if the entity does not exist);
    /// otherwise 409 `version_conflict` naming the current version.
    pub if_version: Option<u64>,
}

/// Body of `PUT /collections/{name}/entities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"entities": [
    {"key": "intro", "payload": {"lang": "en", "title": "Introduction"}, "vector": [0.9, 0.1, 0.0]},
    {"key": "einf", "payload": {"lang": "de", "title": "Einführung"}, "vector": [0.1, 0.9, 0.0]}
]}))]
pub struct UpsertBody {
    /// Entities to write in one transaction (all or nothing).
    pub entities: Vec<EntityIn>,
}

/// The outcome of one write.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenOut {
    /// The entity.
    #[schema(value_type = String, format = Uuid)]
    pub id: EntityId,
    /// Its version after the write.
    pub version: u64,
    /// The change's sequence number.
    pub seq: Option<u64>,
}

/// Answer of `PUT /collections/{name}/entities`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"written": [
    {"id": "c4108535-e20b-5666-81f8-37e469cb4074", "version": 1, "seq": 2},
    {"id": "8e137603-08bc-5e94-bcea-14d37598272a", "version": 1, "seq": 3}
]}))]
pub struct UpsertOut {
    /// One outcome per entity, in request order.
    pub written: Vec<WrittenOut>,
}

/// A stored entity.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "c4108535-e20b-5666-81f8-37e469cb4074",
    "payload": {"lang": "en", "title": "Introduction"}, "version": 1,
    "updated_at": 1795879018950u64}))]
pub struct EntityOut {
    /// The entity's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: EntityId,
    /// Structured state.
    #[schema(value_type = PayloadSchema)]
    pub payload: Map<String, Value>,
    /// The default embedding as written (left out when not asked for, or when the
    /// collection has no default vector), in the asked `vector_format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DenseOutSchema>)]
    pub vector: Option<DenseOut>,
    /// The named vectors the entity has, as written (left out when not asked for, or when it
    /// has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, NamedVectorSchema>>)]
    pub vectors: Option<BTreeMap<String, NamedVector>>,
    /// 1 on creation, +1 per write.
    pub version: u64,
    /// Time of the last write, ms since the Unix epoch.
    pub updated_at: u64,
}

/// `Some` of a non-empty map of named vectors.
fn some_named(v: Option<BTreeMap<String, NamedVector>>) -> Option<BTreeMap<String, NamedVector>> {
    v.filter(|m| !m.is_empty())
}

/// `Some` of a default vector, unless it is the empty one of a collection without one.
fn some_default(v: Option<Vec<f32>>) -> Option<Vec<f32>> {
    v.filter(|v| !v.is_empty())
}

impl EntityOut {
    /// The answer for a record, with or without its vectors (the default vector as numbers).
    pub fn new(r: Record, with_vector: bool) -> Self {
        Self::in_format(r, with_vector, VectorFormat::Float)
    }

    /// The answer for a record, with or without its vectors, the default vector written in
    /// `format`.
    pub fn in_format(r: Record, with_vector: bool, format: VectorFormat) -> Self {
        EntityOut {
            id: r.id,
            payload: r.payload,
            vector: some_default(with_vector.then_some(r.vector))
                .map(|values| DenseOut { values, format }),
            vectors: some_named(with_vector.then_some(r.vectors)),
            version: r.version,
            updated_at: r.updated_at,
        }
    }
}

/// Body of `POST /collections/{name}/entities/get`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetManyBody {
    /// Ids to read.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub ids: Vec<EntityId>,
    /// Include vectors. Default true.
    #[serde(default = "yes")]
    pub with_vector: bool,
    /// How the default vectors are written: `float` (numbers, the default) or `base64`
    /// (little-endian `f32` bytes; compact and exact, for readers of many vectors).
    #[serde(default)]
    pub vector_format: VectorFormat,
}

/// Answer of `POST /collections/{name}/entities/get`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GetManyOut {
    /// One per id asked, in order; `null` for absent ids.
    pub entities: Vec<Option<EntityOut>>,
}

/// Query of `GET /collections/{name}/entities/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Include the vector. Default true.
    #[serde(default = "yes")]
    pub with_vector: bool,
    /// How the default vector is written: `float` (numbers, the default) or `base64`
    /// (little-endian `f32` bytes).
    #[serde(default)]
    pub vector_format: VectorFormat,
}

/// Body of `POST /collections/{name}/entities/delete`: `ids` or `filter`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ids": ["8e137603-08bc-5e94-bcea-14d37598272a"]}))]
pub struct DeleteBody {
    /// Ids to delete in one transaction.
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub ids: Option<Vec<EntityId>>,
    /// Delete every entity that passes this filter (one transaction).
    #[schema(value_type = Option<crate::filter::FilterSchema>)]
    pub filter: Option<Filter>,
}

/// Body of `POST /collections/{name}/entities/payload`: which entities (`ids` or `filter`) and
/// exactly one change (`set`, with an optional nested `key`; `overwrite`; `delete`; `clear`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ids": ["c4108535-e20b-5666-81f8-37e469cb4074"], "set": {"reviewed": true}}))]
pub struct UpdatePayloadBody {
    /// Entities to update, in one transaction; every id must exist.
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub ids: Option<Vec<EntityId>>,
    /// Update every entity that passes this filter (one transaction).
    #[schema(value_type = Option<crate::filter::FilterSchema>)]
    pub filter: Option<Filter>,
    /// Merge these keys into the payload (or into the object at `key`).
    #[schema(value_type = Option<PayloadSchema>)]
    pub set: Option<serde_json::Map<String, serde_json::Value>>,
    /// With `set`: the path (object keys joined by `.`) of the object to merge into, made
    /// where missing.
    pub key: Option<String>,
    /// Replace the whole payload.
    #[schema(value_type = Option<PayloadSchema>)]
    pub overwrite: Option<serde_json::Map<String, serde_json::Value>>,
    /// Remove these keys (paths joined by `.`).
    pub delete: Option<Vec<String>>,
    /// Remove every key (`true`).
    #[serde(default)]
    pub clear: bool,
}

/// Answer of `POST /collections/{name}/entities/payload`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdatePayloadOut {
    /// How many entities were updated.
    pub updated: u64,
}

/// Answer of the delete routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteOut {
    /// How many of the entities existed (and are now gone).
    pub deleted: u64,
}

/// Body of `POST /collections/{name}/scroll`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrollBody {
    /// Start after this id (from the start when absent): pass the previous page's `next`.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub after: Option<EntityId>,
    /// Page size, 1..=max_k. Default 100.
    #[serde(default = "hundred")]
    pub limit: usize,
    /// Only entities that pass this filter.
    #[schema(value_type = Option<crate::filter::FilterSchema>)]
    pub filter: Option<Filter>,
    /// Include vectors. Default false.
    #[serde(default)]
    pub with_vector: bool,
    /// How the default vectors are written: `float` (numbers, the default) or `base64`
    /// (little-endian `f32` bytes; compact and exact, for readers of many vectors).
    #[serde(default)]
    pub vector_format: VectorFormat,
}

/// Answer of `POST /collections/{name}/scroll`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScrollOut {
    /// Entities in id order.
    pub entities: Vec<EntityOut>,
    /// `after` for the next page; `null` on the last page.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub next: Option<EntityId>,
}

/// Body of `POST /collections/{name}/count`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"must": [{"key": "lang", "match": {"value": "en"}}]}}))]
pub struct CountBody {
    /// Count only entities that pass this filter.
    #[schema(value_type = Option<crate::filter::FilterSchema>)]
    pub filter: Option<Filter>,
}

/// Answer of `POST /collections/{name}/count`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountOut {
    /// Number of entities.
    pub count: u64,
}

/// Search consistency.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencySpec {
    /// See every write committed before the search (may wait briefly). Default.
    #[default]
    Strong,
    /// Search what the index holds now; never waits.
    Eventual,
}

/// Body of `POST /collections/{name}/search`: exactly one of `vector` (dense), `sparse`,
/// `text` (BM25) and `like` (an entity's stored vector), searched in the vector (or the
/// text-indexed field) `using` names.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"vector": [1.0, 0.0, 0.0], "k": 1, "with_payload": true,
    "filter": {"must": [{"key": "lang", "match": {"value": "de"}}]}}))]
pub struct SearchBody {
    /// Dense query vector (the dimension of the vector searched).
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// The named vector to search; absent or `""`: the default vector.
    #[serde(default)]
    pub using: String,
    /// Sparse query vector, for a sparse named vector (`using` names it).
    #[serde(default)]
    #[schema(value_type = Option<SparseVectorSchema>)]
    pub sparse: Option<SparseIn>,
    /// Text query: BM25 in the text-indexed payload field `using` names.
    #[serde(default)]
    pub text: Option<String>,
    /// Search with the stored vector `using` of this entity, which is left out of the hits.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub like: Option<EntityId>,
    /// How many hits, 1..=max_k. Default 10.
    #[serde(default = "ten")]
    pub k: usize,
    /// Only entities that pass this filter (never fewer than `k` hits while `k` entities
    /// pass it).
    #[schema(value_type = Option<crate::filter::FilterSchema>)]
    pub filter: Option<Filter>,
    /// Only hits at least this good: a score `>=` it for cosine, dot and sparse vectors, a
    /// distance `<=` it for L2 and Manhattan.
    pub score_threshold: Option<f32>,
    /// HNSW search effort (candidate list size, 1..=65536, raised to k). Default: the
    /// collection's.
    pub ef: Option<usize>,
    /// On a quantized vector: candidates per result rescored with the f32 vectors, 1..=64.
    /// Default 2.
    pub oversampling: Option<f32>,
    /// Default `strong`.
    #[serde(default)]
    pub consistency: ConsistencySpec,
    /// Include payloads. Default false.
    #[serde(default)]
    pub with_payload: bool,
    /// Include stored vectors (the default one and the named ones). Default false.
    #[serde(default)]
    pub with_vector: bool,
}

/// One search hit.
#[derive(Debug, Serialize, ToSchema)]
pub struct HitOut {
    /// The entity.
    #[schema(value_type = String, format = Uuid)]
    pub id: EntityId,
    /// Cosine similarity or inner product (dense dot and sparse vectors; higher is better),
    /// or L2 or Manhattan distance (lower is better).
    pub score: f32,
    /// Payload, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PayloadSchema>)]
    pub payload: Option<Map<String, Value>>,
    /// Stored default vector, when asked for (and the collection has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// Stored named vectors, when asked for (and the entity has any).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, NamedVectorSchema>>)]
    pub vectors: Option<BTreeMap<String, NamedVector>>,
}

impl From<Hit> for HitOut {
    fn from(h: Hit) -> Self {
        HitOut {
            id: h.id,
            score: h.score,
            payload: h.payload,
            vector: some_default(h.vector),
            vectors: some_named(h.vectors),
        }
    }
}

/// Answer of a search.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"hits": [{"id": "8e137603-08bc-5e94-bcea-14d37598272a",
    "score": 0.11043153, "payload": {"lang": "de", "title": "Einführung"}}]}))]
pub struct SearchOut {
    /// Best first.
    pub hits: Vec<HitOut>,
}

/// Body of `POST /collections/{name}/search/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBatchBody {
    /// The searches, each as for `/search`.
    pub searches: Vec<SearchBody>,
}

/// Answer of `POST /collections/{name}/search/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchBatchOut {
    /// One result per search, in order.
    pub results: Vec<SearchOut>,
}

fn yes() -> bool {
    true
}
pub(crate) fn ten() -> usize {
    10
}
pub(crate) fn hundred() -> usize {
    100
}
