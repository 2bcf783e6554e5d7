//! Request and answer bodies of the Qdrant routes, in Qdrant's JSON form.
//!
//! Requests accept fields they do not use (Qdrant's clients send `shard_key`, `consistency`,
//! ... freely); a field that would change the meaning of the request in a way this layer does
//! not implement (multi-vectors, `order_by`, `lookup_from`, ...) is refused by the handler
//! with a 400 that names it, never ignored. Union-typed fields are kept as JSON values
//! here and read by [`super::convert`], which names the bad part.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ids::PointId;

/// HNSW parameters (`hnsw_config`). `m: 0` asks for exact (flat) search.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct HnswConfigDiff {
    /// Links per node; 0 = no graph (exact search).
    pub m: Option<u32>,
    /// Candidate list size while building.
    pub ef_construct: Option<u32>,
    /// Accepted and ignored (the planner decides when to scan).
    pub full_scan_threshold: Option<u64>,
}

/// Body of `PUT /collections/{collection_name}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCollectionBody {
    /// `{"size": n, "distance": "Cosine" | "Euclid" | "Dot" | "Manhattan", "hnsw_config"?}`
    /// (the unnamed vector), or an object of name to such params (named vectors; `""` is
    /// the unnamed one).
    #[schema(value_type = Object)]
    pub vectors: Option<Value>,
    /// Sparse vectors: an object of name to `{"modifier"?: "idf" | "none"}`.
    #[schema(value_type = Object)]
    pub sparse_vectors: Option<Value>,
    /// HNSW parameters.
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Accepted; `indexing_threshold: 0` (indexing off) makes every dense vector exact.
    #[schema(value_type = Object)]
    pub optimizers_config: Option<Value>,
    /// The collection's metadata: any JSON object (at most 64 KiB), kept with the config.
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
    /// Quantization of every dense vector without its own: `{"scalar": ...}` is SQ8,
    /// `{"binary": ...}` a rotated 1- or 2-bit code (`docs/qdrant.md`).
    #[schema(value_type = Object)]
    pub quantization_config: Option<Value>,
    /// Kept and reported back, without effect (`qdrant/knobs.rs`).
    #[schema(value_type = Object)]
    pub wal_config: Option<Value>,
    /// Kept and reported back, without effect (hybridb keeps payloads in its one file).
    pub on_disk_payload: Option<bool>,
    /// Kept and reported back, without effect (one shard).
    pub shard_number: Option<u32>,
    /// Kept and reported back, without effect (one replica).
    pub replication_factor: Option<u32>,
    /// Kept and reported back, without effect.
    pub write_consistency_factor: Option<u32>,
}

impl CreateCollectionBody {
    /// The fields the layer keeps as knobs, as JSON (`knobs::at_create`).
    pub(crate) fn knob_json(&self) -> Value {
        serde_json::json!({
            "vectors": self.vectors,
            "sparse_vectors": self.sparse_vectors,
            "hnsw_config": self.hnsw_config.as_ref().and_then(|h| serde_json::to_value(h).ok()),
            "optimizers_config": self.optimizers_config,
            "quantization_config": self.quantization_config,
            "wal_config": self.wal_config,
            "on_disk_payload": self.on_disk_payload,
            "shard_number": self.shard_number,
            "replication_factor": self.replication_factor,
            "write_consistency_factor": self.write_consistency_factor,
        })
    }
}

/// A point to write.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointStruct {
    /// Its id.
    pub id: PointId,
    /// Its vectors: a list of numbers (the unnamed vector), or an object of name to vector
    /// (a list of numbers, or `{"indices": [...], "values": [...]}` for a sparse vector).
    #[schema(value_type = Object)]
    pub vector: Value,
    /// Its payload (none: `{}`).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
}

/// The column form of an upsert.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Batch {
    /// The ids.
    pub ids: Vec<PointId>,
    /// One vector per id (the unnamed vector), or an object of name to one vector per id.
    #[schema(value_type = Object)]
    pub vectors: Value,
    /// One payload per id (or none at all).
    #[schema(value_type = Option<Vec<Object>>)]
    pub payloads: Option<Vec<Option<Map<String, Value>>>>,
}

/// Body of `PUT /collections/{collection_name}/points`: `points` (a list) or `batch`
/// (columns).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpsertBody {
    /// The points, as a list.
    pub points: Option<Vec<PointStruct>>,
    /// The points, as columns.
    pub batch: Option<Batch>,
    /// Must be absent or `upsert`.
    pub update_mode: Option<String>,
    /// Not supported yet (must be absent).
    #[schema(value_type = Object)]
    pub update_filter: Option<Value>,
}

/// Points chosen by ids or by a filter.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointsSelector {
    /// These ids.
    pub points: Option<Vec<PointId>>,
    /// Every point matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
}

/// Body of the set and overwrite payload routes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetPayloadBody {
    /// The keys and values.
    #[schema(value_type = Object)]
    pub payload: Map<String, Value>,
    /// These ids.
    pub points: Option<Vec<PointId>>,
    /// Every point matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// Set inside the object at this path (set only).
    pub key: Option<String>,
}

/// Body of `POST /collections/{collection_name}/points/payload/delete`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeletePayloadBody {
    /// Keys (paths) to remove.
    pub keys: Vec<String>,
    /// These ids.
    pub points: Option<Vec<PointId>>,
    /// Every point matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
}

/// Body of `POST /collections/{collection_name}/points`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PointRequest {
    /// The ids to read; absent ones are left out of the answer.
    pub ids: Vec<PointId>,
    /// `true` (default), `false`, a list of keys, `{"include": [...]}` or `{"exclude": [...]}`.
    #[schema(value_type = Object)]
    pub with_payload: Option<Value>,
    /// `true` or `false` (default).
    #[schema(value_type = Object)]
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<Value>,
}

/// Body of `POST /collections/{collection_name}/points/scroll`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScrollRequest {
    /// Start at this id (inclusive): the previous page's `next_page_offset`.
    pub offset: Option<PointId>,
    /// Page size, default 10.
    pub limit: Option<usize>,
    /// Only points matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// As in [`PointRequest`]; default `true`.
    #[schema(value_type = Object)]
    pub with_payload: Option<Value>,
    /// As in [`PointRequest`]; default `false`.
    #[schema(value_type = Object)]
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<Value>,
    /// Order by a payload field with a range index: `"key"` or `{"key", "direction"?:
    /// "asc" | "desc", "start_from"?}` (no `offset` then; no next page offset).
    #[schema(value_type = Object)]
    pub order_by: Option<Value>,
}

/// Body of `POST /collections/{collection_name}/points/count`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CountRequest {
    /// Only points matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// Accepted; counts are always exact.
    #[allow(dead_code)] // read by serde only: every count is exact
    pub exact: Option<bool>,
}

/// Search parameters.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SearchParams {
    /// Candidate list size of the graph search.
    pub hnsw_ef: Option<usize>,
    /// Exact search (a scan instead of the graph).
    pub exact: Option<bool>,
    /// IDF statistics over a corpus filter: not supported yet (must be absent).
    #[schema(value_type = Object)]
    pub idf: Option<serde_json::Value>,
}

/// Body of `POST /collections/{collection_name}/points/query` (and one item of a batch).
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueryRequest {
    /// A dense vector (list of numbers), a sparse vector (`{indices, values}`), a point id,
    /// `{"nearest": one of those}`, `{"fusion": "rrf" | "dbsf"}` or `{"rrf": {k?, weights?}}`
    /// (with `prefetch`), `{"recommend": {positive?, negative?, strategy?}}`,
    /// `{"discover": {target, context}}`, `{"context": [{positive, negative}]}`,
    /// `{"order_by": ...}`, `{"sample": "random"}`, or absent (the points matching the
    /// filter in id order). `formula` and `relevance_feedback` are not supported yet.
    #[schema(value_type = Object)]
    pub query: Option<Value>,
    /// Queries whose results this one fuses or re-scores: one prefetch or a list, each
    /// `{prefetch?, query?, using?, filter?, params?, score_threshold?, limit?}`.
    #[schema(value_type = Object)]
    pub prefetch: Option<Value>,
    /// The vector searched (absent or `""`: the unnamed vector).
    pub using: Option<String>,
    /// Only points matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// Search parameters.
    pub params: Option<SearchParams>,
    /// Only hits at least this good (for Euclid and Manhattan: at most this distance).
    pub score_threshold: Option<f32>,
    /// Most points, default 10.
    pub limit: Option<usize>,
    /// Points to skip first, default 0.
    pub offset: Option<usize>,
    /// As in [`PointRequest`]; default `false`.
    #[schema(value_type = Object)]
    pub with_payload: Option<Value>,
    /// As in [`PointRequest`]; default `false`.
    #[schema(value_type = Object)]
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<Value>,
    /// Where the vectors of point-id examples are read: `{"collection", "vector"?}`.
    #[schema(value_type = Object)]
    pub lookup_from: Option<Value>,
}

/// Body of `POST /collections/{collection_name}/points/query/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueryBatchRequest {
    /// The queries.
    pub searches: Vec<QueryRequest>,
}

/// Body of `POST /collections/{collection_name}/points/search` (Qdrant's older search API).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// The query vector: a list (the unnamed vector), or `{"name": ..., "vector": ...}` with a
    /// list or a sparse `{indices, values}`.
    #[schema(value_type = Object)]
    pub vector: Value,
    /// Only points matching this filter.
    #[schema(value_type = Object)]
    pub filter: Option<Value>,
    /// Search parameters.
    pub params: Option<SearchParams>,
    /// Most hits.
    pub limit: usize,
    /// Hits to skip first.
    pub offset: Option<usize>,
    /// As in [`PointRequest`]; default `false`.
    #[schema(value_type = Object)]
    pub with_payload: Option<Value>,
    /// As in [`PointRequest`]; default `false`.
    #[schema(value_type = Object)]
    #[serde(alias = "with_vectors")]
    pub with_vector: Option<Value>,
    /// Only hits at least this good.
    pub score_threshold: Option<f32>,
}

/// Body of `POST /collections/{collection_name}/points/search/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchBatchRequest {
    /// The searches.
    pub searches: Vec<SearchRequest>,
}

/// Body of `PUT /collections/{collection_name}/index`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateFieldIndex {
    /// The payload key (a dotted path).
    pub field_name: String,
    /// `keyword`, `integer`, `float`, `bool` or `datetime`, or `{"type": ...}`.
    #[schema(value_type = Object)]
    pub field_schema: Option<Value>,
}

/// Body of `POST /collections/aliases`: `create_alias`, `delete_alias` and `rename_alias`
/// actions, applied in order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeAliases {
    /// The actions.
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<Value>,
}

/// A point with its score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoredPoint {
    /// Its id.
    pub id: PointId,
    /// Its version.
    pub version: u64,
    /// The score: similarity for Cosine and Dot (higher is better), distance for Euclid and
    /// Manhattan (lower is better).
    pub score: f32,
    /// The payload, if asked for.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
    /// The vectors, if asked for: the bare list when the only one is the unnamed dense
    /// vector, else an object of name to vector (a list, or `{indices, values}`).
    #[schema(value_type = Option<Object>)]
    pub vector: Option<super::vectors::VectorsOut>,
    /// The value it was ordered by, in an `order_by` answer.
    #[schema(value_type = Option<f64>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_value: Option<super::order::OrderValue>,
}

/// A point.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointRecord {
    /// Its id.
    pub id: PointId,
    /// The payload, if asked for.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Map<String, Value>>,
    /// The vectors, if asked for: the bare list when the only one is the unnamed dense
    /// vector, else an object of name to vector (a list, or `{indices, values}`).
    #[schema(value_type = Option<Object>)]
    pub vector: Option<super::vectors::VectorsOut>,
    /// The value it was ordered by, in an `order_by` answer.
    #[schema(value_type = Option<f64>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_value: Option<super::order::OrderValue>,
}

/// Result of a query.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// The points, best first.
    pub points: Vec<ScoredPoint>,
}

/// Result of a scroll.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScrollResult {
    /// The page.
    pub points: Vec<PointRecord>,
    /// The `offset` of the next page; null on the last page.
    pub next_page_offset: Option<PointId>,
}

/// Result of a count.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountResult {
    /// Matching points.
    pub count: u64,
}

/// Result of a write.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateResult {
    /// Sequence number of the database's last committed change after the write.
    pub operation_id: Option<u64>,
    /// `completed`: writes are answered after their commit.
    pub status: &'static str,
}

/// A collection's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionDescription {
    /// The name.
    pub name: String,
}

/// Result of `GET /collections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionsResponse {
    /// Every collection.
    pub collections: Vec<CollectionDescription>,
}

/// Result of `GET /collections/{collection_name}/exists`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionExistence {
    /// Whether it exists.
    pub exists: bool,
}

/// An alias.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasDescription {
    /// The alias.
    pub alias_name: String,
    /// The collection it points to.
    pub collection_name: String,
}

/// Result of the alias listings.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionsAliasesResponse {
    /// The aliases.
    pub aliases: Vec<AliasDescription>,
}

/// Answer of `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    /// `hybridb (Qdrant-compatible API)`.
    pub title: String,
    /// The Qdrant API version this layer follows.
    pub version: String,
    /// hybridb's own version.
    pub commit: String,
}

/// Result of `GET /collections/{collection_name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionInfo {
    /// Always `green`: writes are indexed before they are answered.
    pub status: &'static str,
    /// Always `ok`.
    pub optimizer_status: &'static str,
    /// Always 1.
    pub segments_count: u32,
    /// Points stored.
    pub points_count: u64,
    /// Vectors in HNSW graphs (0 for a collection searched exactly, as Qdrant reports one
    /// without indexing).
    pub indexed_vectors_count: u64,
    /// `params` (the vector's size and distance), `hnsw_config`, `optimizer_config`,
    /// `wal_config` in Qdrant's form.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Declared payload indexes: field to `{"data_type", "points"}`.
    #[schema(value_type = Object)]
    pub payload_schema: Map<String, Value>,
}
