//! # hybridb
//!
//! An embedded database for AI systems that keeps each entity's structured state (a JSON
//! payload) and its vector embedding together under one [`EntityId`], in one
//! [redb](https://docs.rs/redb) file, and searches the vectors.
//!
//! - **One write is one ACID transaction**: the entity record, its vector, its slot in the
//!   in-memory index and a change event commit together or not at all; a batch is atomic whole.
//! - **Search never returns an entity that is gone**, and a crash loses no acknowledged write at
//!   [`Durability::Immediate`] (the default).
//! - **Bad input is refused, typed and named**: wrong dimension, non-finite components, zero
//!   vectors under cosine, payloads that are not JSON objects or are too large, duplicate ids
//!   in a batch ([`Error::InvalidEntity`] gives the item's position and id); nothing is written.
//!
//! ## Example
//! ```
//! # fn main() -> hybridb::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
//! use serde_json::json;
//!
//! let db = Database::open(dir.path().join("app.redb"))?;
//! let docs = db.create_collection("docs", CollectionConfig::new(3, Metric::Cosine))?;
//! docs.upsert(Entity::new(EntityId::from_key("a"), json!({"lang": "en"}), vec![1.0, 0.0, 0.0]))?;
//! docs.upsert(Entity::new(EntityId::from_key("b"), json!({"lang": "de"}), vec![0.0, 1.0, 0.0]))?;
//!
//! let hits = docs.search(&[0.9, 0.1, 0.0], 1)?;
//! assert_eq!(hits[0].id, EntityId::from_key("a"));
//! assert_eq!(docs.get(hits[0].id)?.unwrap().payload["lang"], "en");
//! # Ok(()) }
//! ```
//!
//! ## Partial payload updates
//! [`Collection::update_payload`] and [`Collection::update_payload_where`] change payloads
//! without rewriting vectors ([`PayloadUpdate`]: merge keys, overwrite, delete keys, clear),
//! atomically, with one change event per entity; the new payload is computed from the stored
//! one inside the write transaction, so concurrent updates of different keys are not lost.
//!
//! ## Named and sparse vectors
//! Beside its default vector, a collection declares named vectors
//! ([`CollectionConfig::with_vector`], [`Collection::add_vector`]): dense ones with their own
//! dimension, metric and index, and sparse ones ([`SparseVector`], optionally IDF-weighted).
//! An entity may lack any of them ([`Entity::with_vector`]); a search names the vector it uses
//! ([`SearchRequest::using`], [`SearchRequest::new_sparse`]) and sees only the entities that
//! have it. A collection may also have named vectors only ([`CollectionConfig::named_only`]).
//!
//! ## Queries: prefetch, fusion, rescoring, MMR
//! [`Collection::query`] runs a [`Query`]: nested prefetches (each a search with its own
//! vector, filter and limit) and a final [`Stage`] that searches, rescores the prefetched
//! candidates by another vector, fuses them ([`Fusion::Rrf`], [`Fusion::Dbsf`]) or diversifies
//! them (MMR). The hybrid query RAG frameworks send is `Query::rrf(vec![dense, sparse])`. A
//! query's filter holds at every stage; [`Collection::query_explain`] reports each stage.
//!
//! ## Retrieval building blocks
//! Beside the collections, the index layer's pieces are public for direct use and benchmarks:
//! [`index::sparse::SparseIndex`] (exact top-k over [`SparseVector`]s), [`index::bm25::Bm25Index`]
//! with [`index::text::Analyzer`] (BM25 over analyzed text), [`fusion`] (RRF, DBSF, MMR) and
//! [`index::quant::Sq8`] (8-bit codes with asymmetric distance estimates). Collections use
//! them through text indexes ([`Collection::create_text_index`]) and quantization (below).
//!
//! ## Quantized vectors
//! An HNSW-indexed dense vector may walk on compact codes ([`Quantization`]: `sq8`, rotated
//! `rq1`/`rq2`/`rq4`) and rescore the best `k × oversampling` candidates
//! ([`SearchRequest::oversampling`], default 2) with the `f32` originals, which it keeps in a
//! mapped file beside the database ([`Originals`]), so every distance returned is exact and
//! the resident index is a fraction of the vectors' size. New collections default to
//! [`Quantization::Auto`]: `rq4` from [`AUTO_QUANTIZATION_MIN_DIM`] (384) dimensions, `none`
//! below; [`Collection::set_quantization`] changes it online. See `docs/quantization.md`.
//!
//! ## Filters
//! Searches, counts, scrolls and deletes take a [`Filter`] over payload fields (Qdrant's filter
//! JSON; [`Filter::matches`] defines it). Fields with a payload index
//! ([`CollectionConfig::with_payload_index`], [`Collection::create_payload_index`]) are
//! answered from the index, and a planner picks an exact scan of the matches or a filtered HNSW
//! walk by measured cost ([`Collection::explain`] shows which). See `docs/filters.md`.
//!
//! ## Caches, metrics, tracing
//! Reads go through byte-bounded caches of decoded records, vectors and search results that a
//! write invalidates before it is acknowledged ([`Options::caches`], [`Database::cache_stats`]).
//! Every public operation records a counter and a latency histogram through the `metrics`
//! facade and runs in a `tracing` span; the `prometheus` feature adds an exporter. See
//! `docs/metrics.md`.
//!
//! ## Layout
//! [`Database`] opens the file and holds the collection catalogue and the change log
//! ([`Database::changes_since`]); [`Collection`] handles write and read entities and search.
//! The source is in layer folders, bottom to top: `model` (ids, errors, configs, entities),
//! `index` (vector indexes), `query` (filters, payload indexes, planner), `observe` (metrics,
//! caches), `store` (schema, the writer thread, the shared state), `db` (the handles), `coord`
//! (feed, aliases, two-phase commit, sagas), `ops` (backup, verify, Prometheus). Each imports
//! only from the folders below it; `docs/ARCHITECTURE.md` of the repository is the map, and the
//! on-disk format is described in `docs/format.md`.

#![warn(missing_docs)]

// Layers, bottom to top: model, index, query, observe, store, db, coord, ops. A folder imports
// only from the folders below it (`tests/it/layering.rs` holds the order and checks it); the
// re-exports below are for users, not for the layers.
pub mod coord;
mod db;
pub mod index;
mod model;
mod observe;
mod ops;
mod query;
mod store;

#[cfg(feature = "prometheus")]
pub use ops::prometheus;
pub use query::fusion;
#[cfg(feature = "failpoints")]
pub use store::failpoint;

pub use coord::alias::AliasInfo;
pub use coord::feed::Subscription;
pub use db::async_api::AsyncCollection;
pub use db::builder::DatabaseBuilder;
pub use db::collection::Collection;
pub use db::handle::Database;
pub use model::change::{ChangeEvent, ChangeKind};
pub use model::config::{
    AUTO_QUANTIZATION_MIN_DIM, CollectionConfig, IndexKind, MAX_DIM, MAX_METADATA_BYTES,
    MAX_VECTOR_NAME, Metric, PayloadIndexKind, Quantization, TextIndexConfig, TextLanguage,
    TextTokenizer, VectorConfig,
};
pub use model::entity::{Entity, NamedVector, Record};
pub use model::error::{EntityProblem, Error, FilterProblem, QueryProblem, Result};
pub use model::id::EntityId;
pub use model::payload_update::PayloadUpdate;
pub use model::retry::{RetryPolicy, retry};
pub use model::sparse::SparseVector;
pub use observe::cache::{CacheLevelStats, CacheSizes, CacheStats};
pub use ops::backup::BackupInfo;
pub use ops::verify::{CollectionReport, VerifyReport};
pub use query::datetime::parse_datetime;
pub use query::filter::{
    Bound, Condition, CountRange, Filter, GeoPoint, GeoShape, MatchValue, MinShould, Range,
};
pub use query::hybrid::{Fusion, MAX_QUERY_DEPTH, Query, QueryExplain, Stage, StageReport};
pub use query::search::{Consistency, Explain, Hit, Plan, ScrollPage, SearchRequest};
pub use store::collection::CollectionInfo;
pub use store::options::{Durability, Options, Originals, ProgressCallback, RebuildProgress};
pub use store::shared::WriterStats;
pub use store::storage::BackendFactory;
pub use store::write::Written;

/// Work the layers above the handles do once a database is open, before `open` returns:
/// coordination resolves the in-doubt transactions of hybridb's own collections. The handle
/// layer (`db`) runs these but cannot name them, because imports go downward; the crate root
/// wires them.
pub(crate) const ON_OPEN: &[fn(&db::handle::Database)] = &[coord::two_phase::resolve_on_open];
