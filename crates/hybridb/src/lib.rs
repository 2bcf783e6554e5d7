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
//! The on-disk format is described in `docs/format.md` of the repository.

#![warn(missing_docs)]

mod alias;
mod async_api;
mod backup;
mod cache;
mod change;
mod collection;
mod config;
pub mod coord;
mod db;
mod entity;
mod error;
#[cfg(feature = "failpoints")]
pub mod failpoint;
mod feed;
mod filter;
mod id;
mod incremental;
pub mod index;
mod observe;
mod payload;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod query;
mod retry;
mod schema;
mod search;
mod storage;
mod sync;
mod verify;
mod write;
mod writer;

pub use alias::AliasInfo;
pub use async_api::AsyncCollection;
pub use backup::BackupInfo;
pub use cache::{CacheLevelStats, CacheSizes, CacheStats};
pub use change::{ChangeEvent, ChangeKind};
pub use collection::Collection;
pub use config::{CollectionConfig, IndexKind, MAX_DIM, Metric, PayloadIndexKind};
pub use db::{
    CollectionInfo, Database, DatabaseBuilder, Durability, Options, ProgressCallback,
    RebuildProgress, WriterStats,
};
pub use entity::{Entity, Record};
pub use error::{EntityProblem, Error, FilterProblem, QueryProblem, Result};
pub use feed::Subscription;
pub use filter::{Bound, Condition, Filter, MatchValue, Range};
pub use id::EntityId;
pub use retry::{RetryPolicy, retry};
pub use search::{Consistency, Explain, Hit, Plan, ScrollPage, SearchRequest};
pub use storage::BackendFactory;
pub use verify::{CollectionReport, VerifyReport};
pub use write::Written;
