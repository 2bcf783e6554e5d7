//! The durable state and the one write path: every redb table ([`schema`]) and its encodings,
//! the storage backend, the shared state of an open database ([`shared::Shared`], one per file)
//! and of each collection ([`collection::CollectionShared`]), loading it from the file, the
//! write op ([`write`]) and the writer thread that runs it ([`writer`]), jobs that other layers
//! run on that thread ([`jobs`]), the change log's writer-side operations, the coordination
//! logs' record formats, and the background checkpointer.
//!
//! Uses `model`, `index`, `query` and `observe`. Invariants:
//! - the writer thread is the only code that begins redb write transactions;
//! - one mutation is one write transaction: records, vectors, slots, payload rows and a change
//!   event with the next sequence number commit together;
//! - the in-memory indexes are applied only after the commit, and never hold a slot the file
//!   does not.

pub(crate) mod catalogue;
pub(crate) mod changes;
pub(crate) mod checkpointer;
pub(crate) mod collection;
pub mod coord_log;
#[cfg(feature = "failpoints")]
pub mod failpoint;
pub(crate) mod inner;
pub(crate) mod jobs;
pub(crate) mod load;
pub(crate) mod load_named;
pub(crate) mod options;
pub(crate) mod schema;
pub(crate) mod shared;
pub(crate) mod storage;
pub(crate) mod text;
pub(crate) mod write;
pub(crate) mod write_named;
pub(crate) mod writer;
