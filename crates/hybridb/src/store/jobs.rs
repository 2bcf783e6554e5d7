//! Jobs that the layers above run on the writer thread (`Command::Coord`): [`call`] sends one and
//! waits for its reply; the helpers write entities through the normal write path into a job's
//! own transaction ([`write_ops`], [`commit_applied`]) or commit log records ([`commit_immediate`]).
//!
//! Invariants: every job's write transaction is begun on the writer thread, so there is no second
//! writer; a job that committed writes its indexes could not take makes the writer reload the
//! indexes from the file (`NEEDS_RELOAD`), as a failed commit does.

use std::collections::HashMap;
use std::sync::Arc;

use redb::ReadableTable;

use crate::index::slots::SlotCursor;
use crate::model::error::{Error, Result};
use crate::model::sync::now_ms;
use crate::query::state::Apply;
use crate::store::collection::CollectionShared;
use crate::store::inner::DbInner;
use crate::store::options::Durability;
use crate::store::schema::{CHANGES, CollectionTables, META, META_LAST_SEQ};
use crate::store::shared::Shared;
use crate::store::write::{WriteOp, Written, stage, validate, write_staged};
use crate::store::writer::Command;

thread_local! {
    /// Set on the writer thread by a coordination command whose committed writes could not
    /// reach an in-memory index: the writer then reloads the indexes from the file.
    static NEEDS_RELOAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    parts: Vec<(
        Arc<CollectionShared>,
        Vec<Apply>,
        Vec<crate::model::id::EntityId>,
    )>,
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
            let mut prepared = validate(&coll, ops, shared.options.max_payload_bytes)?;
            let tables = CollectionTables::new(coll.stored.cid);
            let staged = stage(
                txn,
                &coll,
                &tables,
                &mut prepared,
                shared.options.max_payload_bytes,
            )?;
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
/// writer's recovery has reloaded everything (see [`crate::observe::cache`]).
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
