//! The change log's writer-side operations: reading events after a sequence number (shared by
//! `changes_since` and subscriptions), durable named cursors, and retention.
//!
//! Invariants: events are read only from the `changes` table, by sequence number, so a reader
//! can neither skip nor repeat one; retention deletes an event only if every cursor has
//! acknowledged it, every HNSW checkpoint covers it, and at least
//! [`crate::Options::retain_changes`] newer events exist; a reader asking for pruned events gets
//! [`Error::ChangesPruned`], never a silent gap. The feed's public API is in `coord::feed`.

use crate::model::change::ChangeEvent;
use crate::model::error::{Error, Result};
use crate::store::schema::{CHANGES, FEED_CURSORS, META, META_LAST_SEQ, META_PRUNED_THROUGH};
use crate::store::shared::Shared;
use redb::ReadableTable;

/// Metadata writes that go through the writer thread.
#[derive(Debug)]
pub(crate) enum MetaOp {
    SetCursor { name: String, seq: u64 },
    DeleteCursor { name: String },
    Prune,
}

/// Reads up to `limit` events after `after`; errors if some of them were pruned.
pub(crate) fn read_after(shared: &Shared, after: u64, limit: usize) -> Result<Vec<ChangeEvent>> {
    let txn = shared.begin_read()?;
    let pruned = txn
        .open_table(META)?
        .get(META_PRUNED_THROUGH)?
        .map_or(0, |v| v.value());
    if after < pruned {
        return Err(Error::ChangesPruned {
            requested_after: after,
            first_available: pruned + 1,
        });
    }
    let table = txn.open_table(CHANGES)?;
    let mut out = Vec::new();
    for row in table.range(after.saturating_add(1)..)?.take(limit) {
        let (_, v) = row?;
        out.push(ChangeEvent::decode(v.value())?);
    }
    Ok(out)
}

impl Shared {
    /// Writer thread: one metadata operation in its own transaction; returns its result
    /// (the cursor's seq, or the number of events pruned).
    pub(crate) fn run_meta(&self, op: MetaOp) -> Result<u64> {
        let txn = self.redb()?.begin_write()?;
        let (result, seq) = {
            let last = txn
                .open_table(META)?
                .get(META_LAST_SEQ)?
                .map_or(0, |v| v.value());
            let result = match op {
                MetaOp::SetCursor { name, seq } => {
                    if seq > last {
                        return Err(Error::InvalidCursor {
                            name,
                            reason: format!("seq {seq} is beyond the last change {last}"),
                        });
                    }
                    txn.open_table(FEED_CURSORS)?.insert(name.as_str(), seq)?;
                    seq
                }
                MetaOp::DeleteCursor { name } => {
                    let mut cursors = txn.open_table(FEED_CURSORS)?;
                    cursors.remove(name.as_str())?.map_or(0, |v| v.value())
                }
                MetaOp::Prune => self.prune(&txn, last)?,
            };
            (result, last)
        };
        self.commit(txn, self.options.durability, seq)?;
        Ok(result)
    }

    /// Deletes the events every consumer is done with (see the module invariants).
    fn prune(&self, txn: &redb::WriteTransaction, last: u64) -> Result<u64> {
        let mut floor = last.saturating_sub(self.options.retain_changes);
        for row in txn.open_table(FEED_CURSORS)?.iter()? {
            let (_, acked) = row?;
            floor = floor.min(acked.value());
        }
        floor = floor.min(self.checkpoint_floor());
        let mut meta = txn.open_table(META)?;
        let pruned = meta.get(META_PRUNED_THROUGH)?.map_or(0, |v| v.value());
        if floor <= pruned {
            return Ok(0);
        }
        let mut changes = txn.open_table(CHANGES)?;
        let removed = changes.extract_from_if(..=floor, |_, _| true)?.count() as u64;
        meta.insert(META_PRUNED_THROUGH, floor)?;
        Ok(removed)
    }
}
