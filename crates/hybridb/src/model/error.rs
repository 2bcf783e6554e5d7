//! The one error type of the crate.
//!
//! Every fallible operation returns [`Error`]. Variants fall into two groups that callers treat
//! differently: **user errors** (bad input, missing collection, version conflict), after which
//! nothing was written and retrying the same request fails the same way, and **service faults**
//! (storage, I/O, corruption), which say nothing about the request. [`Error::is_user_error`] tells
//! them apart.
//!
//! A single `#[non_exhaustive]` enum replaces redb's one-enum-per-operation style: our operations
//! share most failure modes (any write can meet a bad entity or a storage fault), and one type
//! keeps `?` simple for users while the classification keeps the two groups apart.

use std::path::PathBuf;

use std::str::FromStr;

use crate::model::id::EntityId;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in hybridb.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file is held open by another process (or another handle in this process).
    #[error("database {path} is already open by another process or handle")]
    AlreadyOpen {
        /// The file that could not be opened.
        path: PathBuf,
    },
    /// The file was written by an incompatible version of hybridb.
    #[error("unsupported file format version {found}; this build reads version {supported}")]
    IncompatibleFormat {
        /// Format version found in the file.
        found: u32,
        /// Format version this build reads and writes.
        supported: u32,
    },
    /// A collection name is empty, too long or holds characters outside `[A-Za-z0-9_-]`.
    #[error("invalid collection name {name:?}: {reason}")]
    InvalidCollectionName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A collection configuration is out of range.
    #[error("invalid collection config: {0}")]
    InvalidConfig(String),
    /// No collection of that name exists (or it was dropped).
    #[error("collection {0:?} not found")]
    CollectionNotFound(String),
    /// A collection of that name exists already.
    #[error("collection {0:?} already exists")]
    CollectionExists(String),
    /// One item of a write was invalid; nothing of the request was written.
    #[error("item {index} (id {id}): {problem}")]
    InvalidEntity {
        /// Position of the item in the request (0 for single-item calls).
        index: usize,
        /// The item's id.
        id: EntityId,
        /// What was wrong with it.
        problem: EntityProblem,
    },
    /// `upsert_if_version` found another version than the one expected.
    #[error("version conflict on {id}: expected version {expected}, current version {current}")]
    Conflict {
        /// The entity.
        id: EntityId,
        /// The version the caller expected (0: expected the entity not to exist).
        expected: u64,
        /// The version found (0: the entity does not exist).
        current: u64,
    },
    /// A partial payload update by filter is malformed (its key paths); nothing was written.
    /// (By ids, the same problems come as [`Error::InvalidEntity`] naming the item.)
    #[error("invalid payload update: {0}")]
    InvalidUpdate(EntityProblem),
    /// A search or scroll request was invalid.
    #[error("invalid query: {0}")]
    InvalidQuery(QueryProblem),
    /// A string could not be parsed as an entity id.
    #[error("invalid entity id {input:?}: {reason}")]
    InvalidId {
        /// The rejected text.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The write queue stayed full for the whole configured wait ([`crate::Options::busy_timeout`]).
    /// Transient: retry later (see [`crate::retry()`]).
    #[error("the write queue stayed full for {waited_ms} ms")]
    Busy {
        /// How long the caller waited, in milliseconds.
        waited_ms: u64,
    },
    /// The commit of the group holding this write failed; nothing of it was written. The writer
    /// reopened the database and goes on serving; retrying is safe.
    #[error("commit failed, nothing was written: {reason}")]
    CommitFailed {
        /// The underlying error, as text.
        reason: String,
    },
    /// The writer thread is gone (the database is closing) or failed while handling this write;
    /// whether the write committed is unknown only in the second case, which the reason says.
    #[error("writer unavailable: {reason}")]
    WriterUnavailable {
        /// What happened.
        reason: String,
    },
    /// The database is being reopened after a failed commit; retry shortly.
    #[error("database is recovering from a failed commit; retry shortly")]
    Recovering,
    /// The change events after `requested_after` were partly pruned by retention.
    #[error(
        "change events after {requested_after} were pruned; the first available is {first_available}"
    )]
    ChangesPruned {
        /// The position asked for.
        requested_after: u64,
        /// The oldest event still stored.
        first_available: u64,
    },
    /// A feed cursor operation was invalid.
    #[error("invalid cursor {name:?}: {reason}")]
    InvalidCursor {
        /// The cursor name.
        name: String,
        /// Why.
        reason: String,
    },
    /// No alias of that name exists.
    #[error("alias {0:?} not found")]
    AliasNotFound(String),
    /// An alias of that name exists already (use [`crate::Database::set_alias`] to repoint it).
    #[error("alias {0:?} already exists")]
    AliasExists(String),
    /// The name is taken by a collection, so it cannot name an alias.
    #[error("{0:?} is the name of a collection; an alias cannot take it")]
    NameIsCollection(String),
    /// The name is taken by an alias, so it cannot name a collection (or be dropped as one).
    #[error("{0:?} is an alias; a collection cannot take its name")]
    NameIsAlias(String),
    /// A collection still has aliases pointing to it; repoint or delete them first.
    #[error("collection {collection:?} has aliases {aliases:?}; repoint or delete them first")]
    CollectionHasAliases {
        /// The collection.
        collection: String,
        /// The aliases pointing to it.
        aliases: Vec<String>,
    },
    /// The collection is being replaced (the source of a re-embed about to be swapped out of
    /// its alias) and takes no more writes. Transient for writers that resolve the alias per
    /// request: resolve it again shortly and write there.
    #[error("collection {0:?} is being replaced and takes no more writes; resolve its alias again")]
    CollectionReadOnly(String),
    /// A collection is held by unfinished coordination work (prepared two-phase-commit
    /// writes or a running saga) and cannot be dropped yet.
    #[error("collection {collection:?} is in use: {reason}")]
    CollectionInUse {
        /// The collection.
        collection: String,
        /// What holds it.
        reason: String,
    },
    /// A two-phase-commit participant failed. With `transient` the coordinator retries it with
    /// backoff (a participant that is down); otherwise the failure is final.
    #[error("participant {participant:?} failed{}: {reason}", if *transient { " (transient)" } else { "" })]
    Participant {
        /// The participant's name.
        participant: String,
        /// What went wrong.
        reason: String,
        /// Whether retrying later may succeed.
        transient: bool,
    },
    /// A two-phase-commit or saga request was invalid (unknown id, empty transaction,
    /// duplicate participant names, ...).
    #[error("invalid coordination request: {0}")]
    InvalidCoordination(String),
    /// A saga failed at a step and was compensated (or compensation is pending, see `compensated`).
    #[error("saga {saga} failed at step {step:?}: {reason} (compensated: {compensated})")]
    SagaFailed {
        /// The saga id.
        saga: u64,
        /// The step that failed.
        step: String,
        /// Why.
        reason: String,
        /// True if every completed step was compensated; false if compensation must be
        /// resumed by a later recovery.
        compensated: bool,
    },
    /// Stored data failed a consistency check: the file was damaged or written by a bug.
    #[error("corrupted database: {0}")]
    Corrupted(String),
    /// redb reported an error.
    #[error("storage error: {0}")]
    Storage(#[from] redb::Error),
    /// A file-system operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True for errors caused by the request itself: nothing was written, and the same request
    /// will fail the same way. False for service faults (storage, I/O, corruption).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Error::AlreadyOpen { .. }
                | Error::IncompatibleFormat { .. }
                | Error::Busy { .. }
                | Error::CommitFailed { .. }
                | Error::WriterUnavailable { .. }
                | Error::Recovering
                | Error::Corrupted(_)
                | Error::Storage(_)
                | Error::Io(_)
                | Error::Participant { .. }
                | Error::CollectionReadOnly(_)
        )
    }

    /// True for errors that may go away by themselves, so that retrying the same request later
    /// can succeed: [`Error::Busy`], [`Error::CommitFailed`], [`Error::Recovering`] and an
    /// [`Error::Participant`] marked `transient` (a two-phase-commit participant that is down),
    /// and [`Error::CollectionReadOnly`] (resolve the alias again: it is being repointed).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Busy { .. }
                | Error::CommitFailed { .. }
                | Error::Recovering
                | Error::Participant {
                    transient: true,
                    ..
                }
                | Error::CollectionReadOnly(_)
        )
    }
}

/// What was wrong with one entity of a write.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EntityProblem {
    /// The vector's length differs from the collection's dimension.
    #[error("vector has dimension {got}, collection expects {expected}")]
    WrongDimension {
        /// The collection's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A vector component is NaN or infinite.
    #[error("vector component {position} is not finite ({value})")]
    NonFinite {
        /// Index of the first bad component.
        position: usize,
        /// Its value.
        value: f32,
    },
    /// An all-zero vector cannot be normalised for cosine similarity.
    #[error("zero vector has no direction under the cosine metric")]
    ZeroVector,
    /// The payload must be a JSON object.
    #[error("payload must be a JSON object, got {kind}")]
    PayloadNotObject {
        /// The JSON kind found (`"array"`, `"string"`, ...).
        kind: &'static str,
    },
    /// The payload's JSON encoding exceeds the configured limit.
    #[error("payload is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Encoded size.
        size: usize,
        /// Configured limit ([`crate::Options::max_payload_bytes`]).
        limit: usize,
    },
    /// A payload field that has a payload index holds a value of another type.
    #[error("payload field {field:?} is indexed as {indexed}, but holds {found}")]
    PayloadIndexType {
        /// The field's key.
        field: String,
        /// The declared index type.
        indexed: &'static str,
        /// What the payload holds there.
        found: String,
    },
    /// The same id appears twice in one batch.
    #[error("duplicate id: also at item {first}")]
    DuplicateId {
        /// Position of the first occurrence.
        first: usize,
    },
    /// A sparse vector's `indices` and `values` differ in length.
    #[error("sparse vector has {indices} indices but {values} values")]
    SparseShape {
        /// Number of indices.
        indices: usize,
        /// Number of values.
        values: usize,
    },
    /// A sparse vector's indices are not strictly increasing (unsorted or repeated).
    #[error(
        "sparse vector index {index} at position {position} is not above the one before it (indices must strictly increase)"
    )]
    SparseOrder {
        /// Position of the first index that is not above its predecessor.
        position: usize,
        /// That index.
        index: u32,
    },
    /// A named vector the collection does not declare (for the empty name: a vector given to
    /// a collection without a default vector).
    #[error("the collection has no vector named {name:?}")]
    UnknownVector {
        /// The name given.
        name: String,
    },
    /// A named vector of the other kind (dense for sparse or the reverse).
    #[error("vector {name:?} is declared {declared}, got a {got} vector")]
    WrongVectorKind {
        /// The vector's name.
        name: String,
        /// Its declared kind.
        declared: &'static str,
        /// The kind given.
        got: &'static str,
    },
    /// A named vector is malformed.
    #[error("vector {name:?}: {problem}")]
    InVector {
        /// The vector's name.
        name: String,
        /// What is wrong with it.
        problem: Box<EntityProblem>,
    },
    /// An update of an existing entity (a partial payload update) names an id that does not
    /// exist.
    #[error("no entity with this id")]
    NotFound,
    /// A payload key path of a partial payload update is malformed.
    #[error("payload key {key:?}: {reason}")]
    BadPayloadKey {
        /// The path as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// What was wrong with a query.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryProblem {
    /// `k` (or a scroll limit) was zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// `k` (or a scroll limit) exceeded the configured maximum.
    #[error("k = {k} exceeds the limit of {limit}")]
    KTooLarge {
        /// Requested.
        k: usize,
        /// Configured limit ([`crate::Options::max_k`]).
        limit: usize,
    },
    /// The query vector was invalid (wrong dimension, non-finite, zero under cosine).
    #[error("query vector: {0}")]
    Vector(EntityProblem),
    /// The filter was malformed or does not fit the collection's payload indexes.
    #[error("filter: {0}")]
    Filter(FilterProblem),
    /// A score threshold was NaN or infinite.
    #[error("score threshold {0} is not finite")]
    BadScoreThreshold(f32),
    /// An oversampling factor outside 1..=64 (or not a number).
    #[error("oversampling {0} is outside 1..=64")]
    BadOversampling(f32),
    /// A query's shape is wrong (fusion without prefetches, a weight per prefetch missing,
    /// nesting too deep, ...); the text says what.
    #[error("{0}")]
    BadQuery(String),
    /// A text search names a payload field without a text index.
    #[error("the collection has no text index on field {0:?}")]
    UnknownTextIndex(String),
    /// The search names a vector the collection does not declare.
    #[error("the collection has no vector named {0:?}")]
    UnknownVector(String),
    /// The query's kind (dense or sparse) differs from the named vector's.
    #[error("vector {name:?} is {declared}; the query is {got}")]
    WrongVectorKind {
        /// The vector searched.
        name: String,
        /// Its declared kind.
        declared: &'static str,
        /// The query's kind.
        got: &'static str,
    },
    /// A search by an entity's stored vector names a vector the entity does not have.
    #[error("entity {id} has no vector named {name:?} to search like")]
    EntityLacksVector {
        /// The entity.
        id: EntityId,
        /// The vector's name.
        name: String,
    },
    /// A search by an entity's stored vector names an entity that does not exist.
    #[error("no entity with id {0} to search like")]
    UnknownEntity(EntityId),
}

/// What was wrong with a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterProblem {
    /// The JSON form is not a filter: `path` names the part (`filter.must[1].range`).
    #[error("{path}: {reason}")]
    Malformed {
        /// Where in the filter.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// An operator or clause name that filters do not have.
    #[error("{path}: unknown operator {operator:?}")]
    UnknownOperator {
        /// Where in the filter.
        path: String,
        /// The name found.
        operator: String,
    },
    /// A condition's value does not fit the type of the field's payload index.
    #[error("field {key:?} is indexed as {indexed}; {reason}")]
    TypeMismatch {
        /// The field.
        key: String,
        /// The declared index type.
        indexed: &'static str,
        /// What the condition asked.
        reason: String,
    },
    /// A condition names a field (`key`) but no test of it (`match`, `range`, ...).
    #[error(
        "{path}: At least one field condition must be specified (a \"key\" needs \"match\", \"range\" or \"values_count\")"
    )]
    NoFieldCondition {
        /// Where in the filter.
        path: String,
    },
    /// A geo condition's coordinates or shape are invalid (a longitude outside −180..=180, a
    /// latitude outside −90..=90, a negative radius, a polygon ring that is not closed or has
    /// fewer than 4 points).
    #[error("{path}: {reason}")]
    InvalidGeo {
        /// Where in the filter.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The filter is nested too deep or has too many conditions.
    #[error("filter too complex: {reason}")]
    TooComplex {
        /// Which limit.
        reason: String,
    },
}

/// Builds the error for stored data that fails a check no file written by hybridb can fail.
pub(crate) fn corrupted(what: impl Into<String>) -> Error {
    Error::Corrupted(what.into())
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

/// Parsing lives with the error it returns, so that `id` needs nothing from this module.
impl FromStr for EntityId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        uuid::Uuid::parse_str(s)
            .map(EntityId::from)
            .map_err(|e| Error::InvalidId {
                input: s.chars().take(64).collect(),
                reason: e.to_string(),
            })
    }
}
