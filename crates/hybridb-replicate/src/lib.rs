//! # hybridb-replicate
//!
//! Streams a hybridb database into PostgreSQL + pgvector (single node, or a Citus cluster
//! through its coordinator) and runs hybridb's searches there, for when the data or the query
//! load outgrows one machine.
//!
//! - [`Sink`] copies a snapshot of the source at a sequence number, then tails the server's
//!   change feed (`/changes`), writing batches into a [`Target`] with the applied sequence
//!   number in the same transaction: a sink killed at any instant and restarted converges to
//!   the source. Upserts are version-ordered; deletes and drops are applied; errors of the
//!   source or target are retried with backoff, never skipped.
//! - [`PgTarget`] is the PostgreSQL + pgvector target (Citus: tables distributed by id).
//! - [`query::search`] runs a [`hybridb::SearchRequest`] against the target and answers
//!   [`hybridb::Hit`]s; filters it cannot translate exactly are refused.
//!
//! ## Example
//! ```no_run
//! # async fn run() -> Result<(), hybridb_replicate::Error> {
//! use hybridb_replicate::{HttpSource, PgOptions, PgTarget, Sink, SinkConfig};
//! let source = HttpSource::new("http://127.0.0.1:7411", std::env::var("HYBRIDB_API_KEY").ok());
//! let target = PgTarget::new(PgOptions::new("postgres://postgres@127.0.0.1:5432/postgres"));
//! let (_stop, stop_rx) = tokio::sync::watch::channel(false);
//! Sink::new(source, target, SinkConfig::default(), stop_rx).run().await?;
//! # Ok(()) }
//! ```
//!
//! `docs/scale-out.md` of the repository says when and how to move, and what is carried.

#![warn(missing_docs)]

mod error;
mod pg;
pub mod query;
mod sink;
mod source;
mod target;

pub use error::{Error, Result};
pub use pg::{Distribution, PgOptions, PgTarget};
pub use sink::{Observer, Progress, Sink, SinkConfig};
pub use source::{CollectionSpec, EntityState, EventKind, FeedEvent, HttpSource, ScrollPage};
pub use target::{Batch, Cursor, Op, Row, Target};

/// Connects to the target at `url` (a `postgres://` URL), for [`query::search`].
pub async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    pg::connect(url).await
}
