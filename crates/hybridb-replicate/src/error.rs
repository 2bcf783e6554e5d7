//! The one error type of the sink and the query translation, with the transient ones (worth a
//! retry: the source or the target is down or refused the write) apart from the ones that need
//! a person (bad configuration, unsupported input, a feed that retention cut short).

use thiserror::Error;

/// What went wrong while replicating or querying the target.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The hybridb server could not be reached, or the connection broke.
    #[error("source {url}: {reason}")]
    SourceUnreachable {
        /// The URL asked.
        url: String,
        /// The transport's error.
        reason: String,
    },
    /// The hybridb server answered with an error.
    #[error("source {url}: HTTP {status} {code}: {message}")]
    Source {
        /// The URL asked.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's stable error code (`collection_not_found`, `unauthorized`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server's answer did not have the expected shape.
    #[error("source {url}: unexpected answer: {reason}")]
    SourceProtocol {
        /// The URL asked.
        url: String,
        /// What did not fit.
        reason: String,
    },
    /// Retention removed change events the sink had not applied yet: the target can no longer
    /// be brought up to date from the feed. Start over with `--resync` (drops the target's
    /// tables and copies a fresh snapshot).
    #[error(
        "the source pruned change events after seq {applied}, which the target has not applied; \
         rerun with --resync to copy a fresh snapshot"
    )]
    FeedPruned {
        /// The last event the target applied.
        applied: u64,
    },
    /// The target database refused a statement or the connection failed.
    #[error("target: {0}")]
    Target(#[from] tokio_postgres::Error),
    /// The target's connection string is not valid.
    #[error("target URL: {0}")]
    TargetUrl(String),
    /// The target holds something the sink cannot work with (another sink's tables, a
    /// collection table of another dimension).
    #[error("target schema: {0}")]
    TargetSchema(String),
    /// A collection the sink cannot carry (its name, its vectors).
    #[error("collection {collection:?}: {reason}")]
    UnsupportedCollection {
        /// The collection.
        collection: String,
        /// Why.
        reason: String,
    },
    /// A payload the target cannot store (PostgreSQL's `jsonb` refuses the NUL character).
    #[error("collection {collection:?}, entity {id}: {reason}")]
    UnsupportedPayload {
        /// The collection.
        collection: String,
        /// The entity.
        id: uuid::Uuid,
        /// Why.
        reason: String,
    },
    /// A filter form the SQL translation does not carry (it never answers differently from
    /// hybridb: it refuses).
    #[error("filter: {0} is not supported on the target")]
    UnsupportedFilter(String),
    /// A search request the translation refuses (no such collection on the target, wrong
    /// dimension, `k` out of range).
    #[error("query: {0}")]
    InvalidQuery(String),
    /// The sink was asked to stop.
    #[error("stopped")]
    Stopped,
}

impl Error {
    /// True for errors worth waiting out and retrying: the source or the target was
    /// unreachable, refused the statement, or answered with a transient status (5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::SourceUnreachable { .. } | Error::Target(_) => true,
            Error::Source { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
