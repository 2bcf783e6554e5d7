//! The vocabulary every layer speaks: entity ids, errors, collection configs, entities and
//! their record encoding, partial payload updates and payload key paths, change events, retry
//! policy, and the lock and clock helpers.
//!
//! Invariant: nothing here knows about storage, indexes or handles; this folder imports
//! nothing from the crate outside itself.

pub(crate) mod change;
pub(crate) mod config;
pub(crate) mod entity;
pub(crate) mod error;
pub(crate) mod id;
pub(crate) mod path;
pub(crate) mod payload_update;
pub(crate) mod retry;
pub(crate) mod sparse;
pub(crate) mod sync;
