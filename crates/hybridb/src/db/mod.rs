//! The handles users hold: [`handle::Database`] (opening a file, the collection catalogue,
//! sync, checkpoint, compact), its [`builder::DatabaseBuilder`], [`collection::Collection`]
//! (entity writes and reads), the read path of a collection ([`read`]: search, explain, count
//! and scroll with filters), payload index administration, and [`async_api::AsyncCollection`].
//!
//! Uses every layer below (`model` .. `store`). Invariant: a handle holds no state of its own
//! beyond a reference to the store's shared state, so every handle to one file sees one
//! database; writes go to the writer thread, reads open redb read transactions directly.

pub(crate) mod async_api;
pub(crate) mod builder;
pub(crate) mod collection;
pub(crate) mod handle;
pub(crate) mod payload_admin;
pub(crate) mod query;
pub(crate) mod read;
pub(crate) mod text_admin;
pub(crate) mod vector_admin;
