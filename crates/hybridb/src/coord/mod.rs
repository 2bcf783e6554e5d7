//! Coordination beyond one write: two-phase commit ([`two_phase`]) and sagas ([`saga`], with
//! the built-in re-embed saga in [`reembed`]), each with a durable log in the database file
//! ([`log`]).
//!
//! Invariants:
//! - every coordination write (log records, staged batches, the writes they apply) runs on the
//!   writer thread (as `Command::Coord` jobs): there is no second writer;
//! - coordination log writes commit with [`Durability::Immediate`] whatever the database
//!   default, because recovery trusts them;
//! - entity writes applied here go through the normal write path (`crate::write`'s validate,
//!   stage, write_staged): the same records, slots, payload index rows and change events as a
//!   plain upsert, in one transaction together with the log record that makes them idempotent.

mod check;
pub mod log;
pub mod reembed;
pub mod saga;
pub mod two_phase;

use std::collections::HashMap;
use std::sync::Arc;

use redb::ReadableTable;

use crate::collection::CollectionShared;
use crate::db::{DbInner, Durability, Shared};
use crate::error::{Error, Result};
use crate::index::slots::SlotCursor;
use crate::index::state::Apply;
use crate::schema::{CHANGES, CollectionTables, META, META_LAST_SEQ};
use crate::sync::now_ms;
use crate::write::{WriteOp, Written, stage, validate, write_staged};
use crate::writer::Command;

pub(crate) use check::check;

thread_local! {
    /// Set on the writer thread by a coordination command whose committed writes could not
    /// reach an in-memory index: the writer then reloads the indexes from the file.
    static NEEDS_RELOAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// In-memory coordination state of one open database.
#[derive(Debug, Default)]
pub(crate) struct CoordState {
    /// The aliases (a copy of the `aliases` table).
    pub(crate) aliases: crate::alias::AliasMap,
    /// Transactions and sagas being driven by this process right now: recovery leaves them
    /// alone.
    pub(crate) live_txns: std::sync::Mutex<std::collections::HashSet<u64>>,
    pub(crate) live_sagas: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// Collections (by internal id) that take no more entity writes: the source of a re-embed
    /// after its alias was swapped away. Set and checked on the writer thread only, so no
    /// write is committed to a collection after the job that retired it.
    pub(crate) retired: std::sync::Mutex<std::collections::HashSet<u64>>,
}

impl CoordState {
    /// Writer thread: refuses entity writes to a retired collection.
    pub(crate) fn check_writable(&self, coll: &CollectionShared) -> Result<()> {
        if crate::sync::lock(&self.retired).contains(&coll.stored.cid) {
            return Err(Error::CollectionReadOnly(coll.name.clone()));
        }
        Ok(())
    }

    pub(crate) fn load(redb: &redb::Database) -> Result<Self> {
        let mut retired = std::collections::HashSet::new();
        let txn = redb::ReadableDatabase::begin_read(redb)?;
        match txn.open_table(crate::schema::COORD_RETIRED) {
            Ok(t) => {
                for row in t.iter()? {
                    retired.insert(row?.0.value());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(CoordState {
            aliases: crate::alias::AliasMap::load(redb)?,
            retired: std::sync::Mutex::new(retired),
            ..CoordState::default()
        })
    }
}

/// Runs `f` on the writer thread and returns its result. `f` owns its write transactions; a
/// storage fault in it makes the writer reopen the file afterwards, as for any command.
pub(crate) fn call<T: Send + 'static>(
    inner: &DbInner,
    f: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
) -> Result<T> {
    inner.call(|reply| {
        Command::Coord(Box::new(move |shared: &Shared| {
            NEEDS_RELOAD.with(|c| c.set(false));
            let r = f(shared);
            let failed = NEEDS_RELOAD.with(std::cell::Cell::get)
                || matches!(
                    &r,
                    Err(Error::Storage(_) | Error::Io(_) | Error::CommitFailed { .. })
                );
            let _ = reply.send(r);
            failed
        }))
    })
}

/// The last sequence number as `txn` sees it.
pub(crate) fn last_seq(txn: &redb::WriteTransaction) -> Result<u64> {
    Ok(txn
        .open_table(META)?
        .get(META_LAST_SEQ)?
        .map_or(0, |v| v.value()))
}

/// Commits a transaction that wrote no change events, durably (writer thread).
pub(crate) fn commit_immediate(shared: &Shared, txn: redb::WriteTransaction) -> Result<()> {
    let seq = last_seq(&txn)?;
    shared.commit(txn, Durability::Immediate, seq)
}

/// Takes the next value of the `META` counter `key` in `txn`.
pub(crate) fn next_id(txn: &redb::WriteTransaction, key: &str) -> Result<u64> {
    let mut meta = txn.open_table(META)?;
    let id = meta.get(key)?.map_or(0, |v| v.value()) + 1;
    meta.insert(key, id)?;
    Ok(id)
}

/// Entity writes staged into a coordination transaction, waiting for its commit.
pub(crate) struct PendingApply {
    seq: u64,
    /// Per collection: the index changes and the ids written (for the read caches).
    parts: Vec<(Arc<CollectionShared>, Vec<Apply>, Vec<crate::id::EntityId>)>,
}

/// Writes `batches` into `txn` through the normal write path, with change events. Any
/// validation or version error fails the whole call (nothing of it is kept: the caller drops
/// the transaction). Commit with [`commit_applied`].
pub(crate) fn write_ops(
    shared: &Shared,
    txn: &redb::WriteTransaction,
    batches: Vec<(Arc<CollectionShared>, Vec<WriteOp>)>,
) -> Result<(PendingApply, Vec<Vec<Written>>)> {
    let mut seq = last_seq(txn)?;
    let now = now_ms();
    let mut cursors: HashMap<u64, SlotCursor> = HashMap::new();
    let mut parts = Vec::with_capacity(batches.len());
    let mut written_all = Vec::with_capacity(batches.len());
    {
        let mut changes = txn.open_table(CHANGES)?;
        for (coll, ops) in batches {
            coll.check_live()?;
            shared.coord.check_writable(&coll)?;
            let prepared = validate(&coll, ops, shared.options.max_payload_bytes)?;
            let tables = CollectionTables::new(coll.stored.cid);
            let staged = stage(txn, &coll, &tables, &prepared)?;
            let cursor = cursors.entry(coll.stored.cid).or_default();
            let (written, applies) = write_staged(
                txn,
                &coll,
                &tables,
                &prepared,
                staged,
                &mut changes,
                &mut seq,
                cursor,
                now,
            )?;
            let ids = written.iter().map(|w| w.id).collect();
            parts.push((coll, applies, ids));
            written_all.push(written);
        }
    }
    txn.open_table(META)?.insert(META_LAST_SEQ, seq)?;
    Ok((PendingApply { seq, parts }, written_all))
}

/// Commits `txn` (Immediate) holding the writes of `pending`, then applies them to the
/// in-memory indexes, as the writer does for a write group: the collections' cache windows
/// are open from before the commit until the indexes have the writes, the written ids are
/// invalidated in the read caches, and after a failed commit the windows stay open until the
/// writer's recovery has reloaded everything (see [`crate::cache`]).
pub(crate) fn commit_applied(
    shared: &Shared,
    txn: redb::WriteTransaction,
    pending: PendingApply,
) -> Result<()> {
    let removed = |applies: &[Apply]| -> Vec<u32> {
        applies
            .iter()
            .filter_map(|a| match a {
                Apply::Remove { slot } => Some(*slot),
                _ => None,
            })
            .collect()
    };
    for (coll, _, _) in &pending.parts {
        coll.window.open();
    }
    // Deleted entities disappear from searches before their records do.
    for (coll, applies, _) in &pending.parts {
        coll.index.set_hidden(&removed(applies), true);
    }
    if let Err(e) = shared.commit(txn, Durability::Immediate, pending.seq) {
        for (coll, applies, _) in &pending.parts {
            coll.index.set_hidden(&removed(applies), false);
        }
        return Err(e);
    }
    for (coll, _, ids) in &pending.parts {
        for &id in ids {
            shared.caches.invalidate(coll.stored.cid, id);
        }
    }
    let mut index_failed = false;
    let mut applied = Vec::with_capacity(pending.parts.len());
    for (coll, applies, _) in pending.parts {
        index_failed |= coll.index.apply(applies).is_err();
        applied.push(coll);
    }
    shared.progress.applied(pending.seq);
    if !index_failed {
        for coll in &applied {
            coll.window.close();
        }
    }
    if index_failed {
        // Committed: only the derived index is behind; the writer reloads it from the file.
        NEEDS_RELOAD.with(|c| c.set(true));
    }
    Ok(())
}

/// How many log records [`crate::Database::prune_coordination_log`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Finished two-phase-commit transactions.
    pub transactions: u64,
    /// Finished sagas.
    pub sagas: u64,
}

impl crate::Database {
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
                let mut txns = txn.open_table(crate::schema::COORD_TXNS)?;
                let transactions = txns
                    .extract_if(|_, v| log::TxnRecord::decode(v).is_ok_and(|r| r.state.is_final()))?
                    .count() as u64;
                let mut sagas = txn.open_table(crate::schema::COORD_SAGAS)?;
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
    use crate::schema::{ALIASES, COORD_SAGAS, COORD_STAGED, COORD_TXNS};
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
    let from = src.open_table(crate::schema::COORD_RETIRED);
    if !missing(&from) {
        let mut to = dst.open_table(crate::schema::COORD_RETIRED)?;
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
    for key in [crate::schema::META_LAST_TXID, crate::schema::META_LAST_SAGA] {
        if let Some(v) = meta.get(key)? {
            dst_meta.insert(key, v.value())?;
        }
    }
    Ok(())
}
