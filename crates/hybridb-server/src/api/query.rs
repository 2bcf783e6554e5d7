//! The JSON shapes of the query API (`POST /collections/{name}/query`): nested prefetches and
//! a stage, as the library's [`hybridb::Query`].

use hybridb::{EntityId, Filter, Fusion, Query, Stage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{HitOut, SparseIn, ten};

/// A query: optional prefetches (each a query of this shape) and a stage.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"prefetch": [
    {"query": {"nearest": [0.9, 0.1, 0.0]}, "limit": 50},
    {"query": {"sparse": {"indices": [17], "values": [1.0]}}, "using": "terms", "limit": 50}],
    "query": {"fusion": {"method": "rrf"}}, "limit": 10, "with_payload": true}))]
pub struct QueryBody {
    /// Queries whose candidates the stage works on (each with the same shape as this body).
    /// Without prefetches the stage searches the collection.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub prefetch: Vec<QueryBody>,
    /// What the query does.
    pub query: StageIn,
    /// The vector a `nearest`, `sparse`, `like` or `mmr` stage uses (`""`: the default
    /// vector), or the text-indexed payload field of a `text` stage.
    #[serde(default)]
    pub using: String,
    /// Only entities that pass it, here and in every prefetch inside.
    #[schema(value_type = Option<crate::filter::FilterSchema>)]
    pub filter: Option<Filter>,
    /// Results returned, 1..=max_k. Default 10.
    #[serde(default = "ten")]
    pub limit: usize,
    /// Results skipped first. Default 0.
    #[serde(default)]
    pub offset: usize,
    /// Only results at least this good (a score `>=` it; a distance `<=` it for L2 and
    /// Manhattan).
    pub score_threshold: Option<f32>,
    /// HNSW search effort of this query's vector searches.
    pub ef: Option<usize>,
    /// Candidates per result rescored with f32 on quantized vectors, 1..=64 (default 2).
    pub oversampling: Option<f32>,
    /// Include payloads. Default false.
    #[serde(default)]
    pub with_payload: bool,
    /// Include stored vectors. Default false.
    #[serde(default)]
    pub with_vector: bool,
}

/// A query's stage: exactly one key.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StageIn {
    /// Nearest to this dense vector (in the vector `using` names).
    Nearest(Vec<f32>),
    /// Best dot product with this sparse vector (in the sparse vector `using` names).
    #[schema(value_type = crate::api::SparseVectorSchema)]
    Sparse(SparseIn),
    /// Best BM25 score for this text in the text-indexed field `using` names.
    Text(String),
    /// Nearest to the stored vector `using` of this entity (left out).
    #[schema(value_type = String, format = Uuid)]
    Like(EntityId),
    /// Fuses the prefetches' ranked lists.
    Fusion(FusionIn),
    /// Maximal Marginal Relevance over a dense vector.
    Mmr(MmrIn),
}

/// Fusion of the prefetches.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FusionIn {
    /// `rrf` (Reciprocal Rank Fusion) or `dbsf` (Distribution-Based Score Fusion).
    pub method: FusionMethod,
    /// RRF's rank constant. Default 60.
    pub k: Option<f32>,
    /// RRF: one weight per prefetch. Default all 1.
    pub weights: Option<Vec<f32>>,
}

/// A fusion method.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FusionMethod {
    /// Reciprocal Rank Fusion.
    Rrf,
    /// Distribution-Based Score Fusion.
    Dbsf,
}

/// MMR's parameters.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MmrIn {
    /// The dense query vector.
    pub vector: Vec<f32>,
    /// 0: relevance only; 1: diversity only. Default 0.5.
    #[serde(default = "half")]
    pub diversity: f32,
    /// Nearest entities considered without prefetches. Default 100.
    #[serde(default = "super::hundred")]
    pub candidates: usize,
}

fn half() -> f32 {
    0.5
}

impl QueryBody {
    /// The library query.
    pub fn into_query(self) -> Query {
        let using = self.using;
        let stage = match self.query {
            StageIn::Nearest(vector) => Stage::Nearest { using, vector },
            StageIn::Sparse(v) => Stage::Sparse { using, vector: v.0 },
            StageIn::Text(text) => Stage::Text { field: using, text },
            StageIn::Like(id) => Stage::Like { using, id },
            StageIn::Fusion(f) => Stage::Fusion(match f.method {
                FusionMethod::Rrf => Fusion::Rrf {
                    k: f.k.unwrap_or(60.0),
                    weights: f.weights,
                },
                FusionMethod::Dbsf => Fusion::Dbsf,
            }),
            StageIn::Mmr(m) => Stage::Mmr {
                using,
                vector: m.vector,
                diversity: m.diversity,
                candidates: m.candidates,
            },
        };
        let mut q = Query::new(stage)
            .prefetch(
                self.prefetch
                    .into_iter()
                    .map(QueryBody::into_query)
                    .collect(),
            )
            .limit(self.limit)
            .offset(self.offset)
            .with_payload(self.with_payload)
            .with_vector(self.with_vector);
        q.filter = self.filter;
        q.score_threshold = self.score_threshold;
        q.ef = self.ef;
        q.oversampling = self.oversampling;
        q
    }
}

/// Body of `POST /collections/{name}/query/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBatchBody {
    /// The queries, each as for `/query`.
    pub queries: Vec<QueryBody>,
}

/// One stage of an explained query.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageOut {
    /// 0: the query itself; 1: its prefetches; ...
    pub depth: usize,
    /// `nearest`, `sparse`, `text`, `like`, `rescore`, `fusion`, `mmr`.
    pub stage: &'static str,
    /// The search plan, for stages that searched the collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<&'static str>,
    /// Candidates the stage started from.
    pub candidates: usize,
    /// Results it produced.
    pub results: usize,
    /// Its time, prefetches excluded, in microseconds.
    pub micros: u64,
}

/// Answer of `POST /collections/{name}/query/explain`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryExplainOut {
    /// Every stage, prefetches before the stage that uses them.
    pub stages: Vec<StageOut>,
    /// The hits.
    pub hits: Vec<HitOut>,
}

impl From<hybridb::QueryExplain> for QueryExplainOut {
    fn from(e: hybridb::QueryExplain) -> Self {
        QueryExplainOut {
            stages: e
                .stages
                .into_iter()
                .map(|s| StageOut {
                    depth: s.depth,
                    stage: s.stage,
                    plan: s.plan.map(|p| p.name()),
                    candidates: s.candidates,
                    results: s.results,
                    micros: s.micros,
                })
                .collect(),
            hits: e.hits.into_iter().map(HitOut::from).collect(),
        }
    }
}
