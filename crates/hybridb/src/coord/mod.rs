//! Coordination beyond one write: two-phase commit ([`two_phase`]) and sagas ([`saga`], with
//! the built-in re-embed saga in [`reembed`]), each with a durable log in the database file
//! ([`log`]).
//!
//! Invariants:
//! - every coordination write (log records, staged batches, the writes they apply) runs on the
//!   writer thread (as `Command::Coord` jobs): there is no second writer;
//! - coordination log writes commit with [`crate::Durability::Immediate`] whatever the database
//!   default, because recovery trusts them;
//! - entity writes applied here go through the normal write path (`crate::store::write`'s validate,
//!   stage, write_staged): the same records, slots, payload index rows and change events as a
//!   plain upsert, in one transaction together with the log record that makes them idempotent.

pub(crate) mod alias;
mod check;
pub(crate) mod feed;
pub use crate::store::coord_log as log;
pub mod reembed;
pub mod saga;
pub mod two_phase;

use redb::ReadableTable;

use crate::model::error::Result;
use crate::store::schema::META;

pub(crate) use crate::store::jobs::{call, commit_applied, commit_immediate, next_id, write_ops};
pub(crate) use check::check;

/// How many log records [`crate::Database::prune_coordination_log`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Finished two-phase-commit transactions.
    pub transactions: u64,
    /// Finished sagas.
    pub sagas: u64,
}

impl crate::db::handle::Database {
    /// Deletes the log records of finished (committed or aborted) transactions and of finished
    /// (completed or compensated) sagas, in one transaction; unfinished ones are kept for
    /// recovery. The ids of deleted records are never reused.
    pub fn prune_coordination_log(&self) -> Result<Pruned> {
        self.observe(crate::observe::Op::PruneCoordinationLog, || {
            self.prune_coordination_log_unobserved()
        })
    }

    fn prune_coordination_log_unobserved(&self) -> Result<Pruned> {
        call(self.inner(), |s| {
            let txn = s.redb()?.begin_write()?;
            let pruned = {
                let mut txns = txn.open_table(crate::store::schema::COORD_TXNS)?;
                let transactions = txns
                    .extract_if(|_, v| log::TxnRecord::decode(v).is_ok_and(|r| r.state.is_final()))?
                    .count() as u64;
                let mut sagas = txn.open_table(crate::store::schema::COORD_SAGAS)?;
                let sagas = sagas
                    .extract_if(|_, v| {
                        log::SagaRecord::decode(v).is_ok_and(|r| r.state.is_final())
                    })?
                    .count() as u64;
                Pruned {
                    transactions,
                    sagas,
                }
            };
            commit_immediate(s, txn)?;
            Ok(pruned)
        })
    }
}

/// Replaces the alias and coordination tables (and their id counters) of `dst` with those of
/// `src` (incremental backups carry them whole: they are small). Tables `src` lacks (a file
/// from before they existed) are left as they are.
pub(crate) fn copy_tables(
    src: &redb::ReadTransaction,
    dst: &redb::WriteTransaction,
    dst_meta: &mut redb::Table<&str, u64>,
) -> Result<()> {
    use crate::store::schema::{ALIASES, COORD_SAGAS, COORD_STAGED, COORD_TXNS};
    fn missing<T>(r: &std::result::Result<T, redb::TableError>) -> bool {
        matches!(r, Err(redb::TableError::TableDoesNotExist(_)))
    }
    let from = src.open_table(ALIASES);
    if !missing(&from) {
        let mut to = dst.open_table(ALIASES)?;
        to.retain(|_, _| false)?;
        for row in from?.iter()? {
            let (k, v) = row?;
            to.insert(k.value(), v.value())?;
        }
    }
    let from = src.open_table(crate::store::schema::COORD_RETIRED);
    if !missing(&from) {
        let mut to = dst.open_table(crate::store::schema::COORD_RETIRED)?;
        to.retain(|_, _| false)?;
        for row in from?.iter()? {
            let (k, v) = row?;
            to.insert(k.value(), v.value())?;
        }
    }
    for def in [COORD_TXNS, COORD_STAGED, COORD_SAGAS] {
        let from = src.open_table(def);
        if missing(&from) {
            continue;
        }
        let mut to = dst.open_table(def)?;
        to.retain(|_, _| false)?;
        for row in from?.iter()? {
            let (k, v) = row?;
            to.insert(k.value(), v.value())?;
        }
    }
    let meta = src.open_table(META)?;
    for key in [
        crate::store::schema::META_LAST_TXID,
        crate::store::schema::META_LAST_SAGA,
    ] {
        if let Some(v) = meta.get(key)? {
            dst_meta.insert(key, v.value())?;
        }
    }
    Ok(())
}
