//! Search requests and results.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::entity::NamedVector;
use crate::model::id::EntityId;
use crate::model::sparse::SparseVector;
use crate::query::filter::Filter;

/// A nearest-neighbour search.
///
/// # Example
/// ```
/// use hybridb::SearchRequest;
/// let req = SearchRequest::new(vec![0.1, 0.2, 0.3], 5).with_payload(true);
/// assert_eq!(req.k, 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The dense query vector (same dimension as the vector searched; unused by a sparse
    /// search).
    pub vector: Vec<f32>,
    /// The named vector to search: `""` (the default) for the collection's default vector.
    pub using: String,
    /// A sparse query, for a search of a sparse named vector (`using` names it).
    pub sparse: Option<SparseVector>,
    /// A text query, for a BM25 search of the text index on the payload field `using`.
    pub text: Option<String>,
    /// How many results, 1..=[`crate::Options::max_k`].
    pub k: usize,
    /// Return each hit's payload.
    pub with_payload: bool,
    /// Return each hit's stored vectors (the default one and every named one).
    pub with_vector: bool,
    /// Whether to wait for writes committed before the search to reach the index.
    pub consistency: Consistency,
    /// Search effort of an HNSW index (candidate list size, raised to `k`); `None` uses the
    /// collection's default. Ignored by exact indexes.
    pub ef: Option<usize>,
    /// On a quantized index: candidates per result, ranked by the codes, that are rescored
    /// with the `f32` vectors (`⌈k · oversampling⌉` of them), 1..=64; `None` uses the
    /// default ([`crate::index::hnsw::DEFAULT_OVERSAMPLING`]). Ignored by `f32` indexes.
    pub oversampling: Option<f32>,
    /// Only entities that pass this filter are returned.
    pub filter: Option<Filter>,
    /// Only hits at least this good are returned: a score `>=` the threshold for cosine and
    /// dot, a distance `<=` it for L2.
    pub score_threshold: Option<f32>,
}

/// How fresh a search's view of the index must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Sees every write committed before the search began (waits, briefly, for the writer to
    /// finish applying them to the index). The default.
    #[default]
    Strong,
    /// Sees what the index holds now; never waits for the writer.
    Eventual,
}

impl SearchRequest {
    /// A request for the `k` nearest entities to `vector`, ids and scores only.
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            vector,
            using: String::new(),
            sparse: None,
            text: None,
            k,
            with_payload: false,
            with_vector: false,
            consistency: Consistency::Strong,
            ef: None,
            oversampling: None,
            filter: None,
            score_threshold: None,
        }
    }

    /// A request for the `k` entities whose sparse vector `using` scores highest against
    /// `query` (by dot product, IDF-weighted if the vector has the IDF modifier).
    pub fn new_sparse(using: impl Into<String>, query: SparseVector, k: usize) -> Self {
        let mut req = SearchRequest::new(Vec::new(), k);
        req.using = using.into();
        req.sparse = Some(query);
        req
    }

    /// A request for the `k` entities whose text-indexed payload field `field` scores highest
    /// by BM25 for `text` (analyzed like the field).
    pub fn new_text(field: impl Into<String>, text: impl Into<String>, k: usize) -> Self {
        let mut req = SearchRequest::new(Vec::new(), k);
        req.using = field.into();
        req.text = Some(text.into());
        req
    }

    /// Searches the named dense vector `name` instead of the default one.
    pub fn using(mut self, name: impl Into<String>) -> Self {
        self.using = name.into();
        self
    }

    /// Restricts the search to entities passing `filter`.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Drops hits worse than `threshold` (see [`SearchRequest::score_threshold`]).
    pub fn score_threshold(mut self, threshold: f32) -> Self {
        self.score_threshold = Some(threshold);
        self
    }

    /// Whether to return payloads.
    pub fn with_payload(mut self, yes: bool) -> Self {
        self.with_payload = yes;
        self
    }

    /// Whether to return stored vectors.
    pub fn with_vector(mut self, yes: bool) -> Self {
        self.with_vector = yes;
        self
    }

    /// Sets the HNSW search effort for this request.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Sets how many candidates per result a quantized index rescores with `f32` vectors.
    pub fn oversampling(mut self, oversampling: f32) -> Self {
        self.oversampling = Some(oversampling);
        self
    }

    /// Sets the consistency level.
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The entity.
    pub id: EntityId,
    /// Cosine similarity (cosine; higher is better), inner product (dot and sparse vectors;
    /// higher is better), Euclidean or Manhattan distance (L2, Manhattan; lower is better).
    /// Hits come best first; equal scores by id.
    pub score: f32,
    /// The payload, when requested.
    pub payload: Option<Map<String, Value>>,
    /// The stored default vector, when requested.
    pub vector: Option<Vec<f32>>,
    /// The stored named vectors, when vectors are requested.
    pub vectors: Option<BTreeMap<String, NamedVector>>,
}

impl Hit {
    /// A hit with nothing attached (no payload, no vectors); joins add them when requested.
    pub fn new(id: EntityId, score: f32) -> Self {
        Hit {
            id,
            score,
            payload: None,
            vector: None,
            vectors: None,
        }
    }
}

/// A page of a scroll through a collection in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    /// Records in id order.
    pub records: Vec<crate::model::entity::Record>,
    /// Pass this as `after` to get the next page; `None` when this page is the last.
    pub next: Option<EntityId>,
}

/// How a search was carried out (see [`crate::Collection::explain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plan {
    /// No filter, or one every live entity passes: the plain index search.
    Unfiltered,
    /// No entity passes the filter: nothing to search.
    NoMatches,
    /// Exact distances to just the matching entities (small matching sets; exact indexes).
    ExactScan,
    /// A graph traversal that collects only matching entities (large matching sets).
    FilteredGraph,
    /// The plain graph search's candidate beam, filtered (filters that pass most entities);
    /// a filtered traversal follows if the beam held fewer than `k` matches.
    PostFilter,
    /// A sparse vector's posting lists, scored exactly with MaxScore pruning, the filter
    /// applied inside the scoring loop.
    Sparse,
    /// A text index's posting lists, scored exactly by BM25 with MaxScore pruning, the filter
    /// applied inside the scoring loop.
    Text,
}

impl Plan {
    /// A short stable name: `unfiltered`, `no_matches`, `exact_scan`, `filtered_graph`,
    /// `post_filter`, `sparse`, `text`.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Unfiltered => "unfiltered",
            Plan::NoMatches => "no_matches",
            Plan::ExactScan => "exact_scan",
            Plan::FilteredGraph => "filtered_graph",
            Plan::PostFilter => "post_filter",
            Plan::Sparse => "sparse",
            Plan::Text => "text",
        }
    }
}

/// The plan, estimates and timings of one search.
#[derive(Debug, Clone, PartialEq)]
pub struct Explain {
    /// The plan the planner chose.
    pub plan: Plan,
    /// The graph traversal found fewer hits than wanted and an exact scan followed.
    pub fallback: bool,
    /// Live entities passing the filter: the planner's cardinality. Exact (from the payload
    /// indexes, and from payloads for conditions on fields without one) unless `estimated`.
    pub matching: usize,
    /// `matching` was estimated from a sample of the entities (large matching sets).
    pub estimated: bool,
    /// Live entities in the collection.
    pub live: usize,
    /// Payloads read to decide conditions on fields without a payload index.
    pub payloads_checked: usize,
    /// Beam width of graph plans.
    pub ef: usize,
    /// Microseconds spent evaluating the filter.
    pub filter_micros: u64,
    /// Microseconds spent in the vector search.
    pub search_micros: u64,
    /// Microseconds for the whole request.
    pub total_micros: u64,
    /// The hits.
    pub hits: Vec<Hit>,
}
