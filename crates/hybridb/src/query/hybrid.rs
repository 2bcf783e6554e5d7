//! The query API: one request shape for plain, multi-stage and hybrid retrieval — nested
//! prefetches, each its own search, and a final stage that searches, rescores, fuses (RRF,
//! DBSF) or diversifies (MMR) — as Qdrant's Query API and the RAG frameworks on top of it send.
//!
//! Semantics (the executor in `db/query.rs` follows them):
//! - without prefetches, a `Nearest`, `Sparse`, `Text` or `Like` stage is a search of the
//!   collection;
//!   `Mmr` diversifies the `candidates` nearest entities; `Fusion` needs prefetches;
//! - with prefetches, the stage works on their candidates only: `Nearest`/`Sparse`/`Text`/`Like`
//!   rescore them by that vector or text (exactly), `Fusion` fuses their ranked lists, `Mmr`
//!   diversifies them;
//! - a query's filter also applies to every prefetch inside it (so every stage's candidates
//!   pass it), and each prefetch may add its own;
//! - scores are the stage's own: a vector's similarity or distance as in [`crate::Hit`], the
//!   fused score for `Fusion`, the vector score for `Mmr` (whose order is its pick order).

use crate::model::id::EntityId;
use crate::model::sparse::SparseVector;
use crate::query::filter::Filter;

/// Largest prefetch nesting accepted.
pub const MAX_QUERY_DEPTH: usize = 8;

/// How the ranked lists of the prefetches are combined.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fusion {
    /// Reciprocal Rank Fusion: `Σ weight_i / (k + rank_i)`.
    Rrf {
        /// The rank constant (60 in the original paper and in Qdrant).
        k: f32,
        /// One weight per prefetch (`None`: all 1).
        weights: Option<Vec<f32>>,
    },
    /// Distribution-Based Score Fusion: each list normalised by its `mean ± 3σ`, then summed.
    Dbsf,
}

impl Fusion {
    /// RRF with `k` = 60 and equal weights (the default fusion).
    pub fn rrf() -> Self {
        Fusion::Rrf {
            k: 60.0,
            weights: None,
        }
    }
}

/// What a query (or a prefetch) does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Stage {
    /// Nearest to a dense vector of the named vector `using` (`""`: the default vector).
    Nearest {
        /// The vector searched.
        using: String,
        /// The query vector.
        vector: Vec<f32>,
    },
    /// Highest dot product with a sparse vector of the sparse named vector `using`.
    Sparse {
        /// The sparse vector searched.
        using: String,
        /// The query vector.
        vector: SparseVector,
    },
    /// Best BM25 score for `text` in the text-indexed payload field `field`.
    Text {
        /// The payload field (it must have a text index).
        field: String,
        /// The query text (analyzed like the field).
        text: String,
    },
    /// Nearest to the stored vector `using` of the entity `id` (which is left out).
    Like {
        /// The vector searched and taken from the entity.
        using: String,
        /// The entity.
        id: EntityId,
    },
    /// Fuses the prefetches' ranked lists.
    Fusion(Fusion),
    /// Maximal Marginal Relevance over a dense vector: relevance to `vector` traded against
    /// similarity to what is already picked.
    Mmr {
        /// The dense vector compared.
        using: String,
        /// The query vector.
        vector: Vec<f32>,
        /// 0: relevance only; 1: diversity only. Default 0.5.
        diversity: f32,
        /// Candidates considered without prefetches (the nearest ones). Default 100.
        candidates: usize,
    },
}

/// A query: optional prefetches, a stage, and the options of its answer.
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric, Query, SparseVector};
/// use hybridb::VectorConfig;
/// use serde_json::json;
///
/// let db = Database::open(dir.path().join("q.redb"))?;
/// let config = CollectionConfig::new(2, Metric::Cosine)
///     .with_vector("terms", VectorConfig::sparse(false));
/// let docs = db.create_collection("docs", config)?;
/// for (key, v, term) in [("a", [1.0, 0.0], 1), ("b", [0.7, 0.7], 2), ("c", [0.0, 1.0], 2)] {
///     docs.upsert(
///         Entity::new(EntityId::from_key(key), json!({}), v.to_vec())
///             .with_vector("terms", SparseVector::new(vec![term], vec![1.0])),
///     )?;
/// }
/// // Hybrid: a dense and a sparse prefetch, fused by RRF.
/// let q = Query::rrf(vec![
///     Query::nearest(vec![1.0, 0.1], 10),
///     Query::sparse("terms", SparseVector::new(vec![2], vec![1.0]), 10),
/// ])
/// .limit(2);
/// let hits = docs.query(&q)?;
/// assert_eq!(hits[0].id, EntityId::from_key("b"), "second in both lists");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Searches whose candidates the stage works on (empty: the stage searches the collection).
    pub prefetch: Vec<Query>,
    /// What this query does.
    pub stage: Stage,
    /// Only entities passing it (here and in every prefetch inside).
    pub filter: Option<Filter>,
    /// Results returned (after `offset`), 1..=[`crate::Options::max_k`].
    pub limit: usize,
    /// Results skipped first.
    pub offset: usize,
    /// Only results at least this good (see [`crate::SearchRequest::score_threshold`]).
    pub score_threshold: Option<f32>,
    /// Return payloads.
    pub with_payload: bool,
    /// Return vectors.
    pub with_vector: bool,
    /// HNSW search effort of the vector searches of this query (`None`: the vector's default).
    pub ef: Option<usize>,
    /// Candidates per result that the dense searches of this query rescore with `f32` on a
    /// quantized index (see [`crate::SearchRequest::oversampling`]; `None`: the default).
    pub oversampling: Option<f32>,
}

impl Query {
    /// A query with `stage` and default options (limit 10).
    pub fn new(stage: Stage) -> Self {
        Query {
            prefetch: Vec::new(),
            stage,
            filter: None,
            limit: 10,
            offset: 0,
            score_threshold: None,
            with_payload: false,
            with_vector: false,
            ef: None,
            oversampling: None,
        }
    }

    /// The `limit` nearest to `vector` on the default vector.
    pub fn nearest(vector: Vec<f32>, limit: usize) -> Self {
        Query::new(Stage::Nearest {
            using: String::new(),
            vector,
        })
        .limit(limit)
    }

    /// The `limit` best by the sparse vector `using`.
    pub fn sparse(using: impl Into<String>, vector: SparseVector, limit: usize) -> Self {
        Query::new(Stage::Sparse {
            using: using.into(),
            vector,
        })
        .limit(limit)
    }

    /// The `limit` best by BM25 for `text` in the text-indexed field `field`.
    pub fn text(field: impl Into<String>, text: impl Into<String>, limit: usize) -> Self {
        Query::new(Stage::Text {
            field: field.into(),
            text: text.into(),
        })
        .limit(limit)
    }

    /// The prefetches fused by RRF (k = 60, equal weights).
    pub fn rrf(prefetch: Vec<Query>) -> Self {
        Query::fuse(prefetch, Fusion::rrf())
    }

    /// The prefetches fused by `fusion`.
    pub fn fuse(prefetch: Vec<Query>, fusion: Fusion) -> Self {
        Query {
            prefetch,
            ..Query::new(Stage::Fusion(fusion))
        }
    }

    /// Sets the vector searched by a `Nearest`, `Sparse`, `Like` or `Mmr` stage (the field of
    /// a `Text` stage).
    pub fn using(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        match &mut self.stage {
            Stage::Nearest { using, .. }
            | Stage::Sparse { using, .. }
            | Stage::Like { using, .. }
            | Stage::Mmr { using, .. } => *using = name,
            Stage::Text { field, .. } => *field = name,
            Stage::Fusion(_) => {}
        }
        self
    }

    /// Sets the prefetches.
    pub fn prefetch(mut self, prefetch: Vec<Query>) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Sets the limit.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the offset.
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Sets the score threshold.
    pub fn score_threshold(mut self, threshold: f32) -> Self {
        self.score_threshold = Some(threshold);
        self
    }

    /// Returns payloads.
    pub fn with_payload(mut self, yes: bool) -> Self {
        self.with_payload = yes;
        self
    }

    /// Returns vectors.
    pub fn with_vector(mut self, yes: bool) -> Self {
        self.with_vector = yes;
        self
    }

    /// Sets the HNSW search effort.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Sets the oversampling of the dense searches of this query on quantized indexes.
    pub fn oversampling(mut self, oversampling: f32) -> Self {
        self.oversampling = Some(oversampling);
        self
    }
}

/// What one stage of a query did (see [`crate::Collection::query_explain`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    /// Nesting depth: 0 for the query itself, 1 for its prefetches, ...
    pub depth: usize,
    /// `nearest`, `sparse`, `text`, `like`, `rescore`, `fusion`, `mmr`.
    pub stage: &'static str,
    /// The search plan, for stages that searched the collection.
    pub plan: Option<crate::query::search::Plan>,
    /// Candidates the stage started from (prefetch results, or matching entities).
    pub candidates: usize,
    /// Results the stage produced.
    pub results: usize,
    /// Time the stage took, prefetches excluded, in microseconds.
    pub micros: u64,
}

/// The answer of [`crate::Collection::query_explain`]: the hits and a report per stage, in
/// execution order (prefetches before the stage that uses them).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryExplain {
    /// The stages.
    pub stages: Vec<StageReport>,
    /// The hits.
    pub hits: Vec<crate::query::search::Hit>,
}
