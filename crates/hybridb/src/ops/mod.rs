//! Operating a database: online backups (full and incremental) and restore, the integrity
//! check ([`verify`]), and the Prometheus exporter.
//!
//! The top layer: it may use every folder below. Invariant: each operation reads one
//! consistent snapshot (one redb read transaction) and writes only through the writer thread
//! or into a file of its own.

pub(crate) mod backup;
pub(crate) mod incremental;
pub(crate) mod incremental_named;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub(crate) mod verify;
pub(crate) mod verify_named;
