//! The change feed: reading the `changes` table in order, live subscriptions, durable named
//! cursors and retention.
//!
//! Invariants:
//! - a subscription reads events only from the table, by sequence number, so it can neither
//!   skip nor repeat an event at the boundary between catching up and following live commits;
//!   it registers for commit notifications *before* reading, so no commit is missed;
//! - retention deletes an event only if every cursor has acknowledged it, every HNSW
//!   checkpoint covers it, and at least [`crate::Options::retain_changes`] newer events exist;
//!   a reader asking for pruned events gets [`Error::ChangesPruned`], never a silent gap.

use std::sync::Arc;

use tokio::sync::watch;

use crate::db::handle::Database;
use crate::model::change::ChangeEvent;
use crate::model::config::validate_collection_name;
use crate::model::error::{Error, Result};
use crate::model::sync::block_on;
use crate::store::changes::MetaOp;
use crate::store::changes::read_after;
use crate::store::schema::FEED_CURSORS;
use crate::store::shared::Shared;
use crate::store::writer::Command;

impl Database {
    /// Up to `limit` change events with a sequence number greater than `after`, in order.
    /// Fails with [`Error::ChangesPruned`] if events after `after` were already pruned.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<ChangeEvent>> {
        self.observe(crate::observe::Op::ChangesSince, || {
            self.changes_since_now(after, limit)
        })
    }

    fn changes_since_now(&self, after: u64, limit: usize) -> Result<Vec<ChangeEvent>> {
        read_after(self.shared(), after, limit)
    }

    /// Follows the change log from the event after `after`: first the stored events, then new
    /// ones as they commit, each exactly once and in order. See [`Subscription`].
    pub fn subscribe(&self, after: u64) -> Subscription {
        Subscription {
            shared: Arc::clone(self.shared()),
            notify: self.shared().feed_receiver(),
            next_after: after,
            buffer: std::collections::VecDeque::new(),
        }
    }

    /// The last sequence number acknowledged by the named cursor, if it exists.
    pub fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let txn = self.shared().begin_read()?;
        let table = txn.open_table(FEED_CURSORS)?;
        Ok(table.get(name)?.map(|v| v.value()))
    }

    /// Durably records that the consumer `name` has processed every event up to `seq`; it
    /// resumes after it (`db.subscribe(db.cursor(name)?.unwrap_or(0))`). Events it has not
    /// acknowledged are never pruned. Names follow the collection name rules.
    pub fn ack(&self, name: &str, seq: u64) -> Result<()> {
        self.observe(crate::observe::Op::Ack, || self.ack_now(name, seq))
    }

    fn ack_now(&self, name: &str, seq: u64) -> Result<()> {
        validate_collection_name(name).map_err(|_| Error::InvalidCursor {
            name: name.chars().take(80).collect(),
            reason: "names are 1..=64 bytes of [A-Za-z0-9_-], not starting with '-'".into(),
        })?;
        let op = MetaOp::SetCursor {
            name: name.to_string(),
            seq,
        };
        self.inner().call(|reply| Command::Meta { op, reply })?;
        Ok(())
    }

    /// Deletes a cursor (its consumer no longer holds back retention).
    pub fn delete_cursor(&self, name: &str) -> Result<()> {
        self.observe(crate::observe::Op::DeleteCursor, || {
            self.delete_cursor_now(name)
        })
    }

    fn delete_cursor_now(&self, name: &str) -> Result<()> {
        let op = MetaOp::DeleteCursor {
            name: name.to_string(),
        };
        self.inner().call(|reply| Command::Meta { op, reply })?;
        Ok(())
    }

    /// Deletes the change events that every cursor acknowledged and every index checkpoint
    /// covers, keeping at least [`crate::Options::retain_changes`] recent ones; returns how
    /// many were deleted.
    pub fn prune_changes(&self) -> Result<u64> {
        self.observe(crate::observe::Op::PruneChanges, || {
            self.prune_changes_now()
        })
    }

    fn prune_changes_now(&self) -> Result<u64> {
        self.inner().call(|reply| Command::Meta {
            op: MetaOp::Prune,
            reply,
        })
    }
}

/// A live, ordered view of the change log, from a given sequence number on.
///
/// Use it as a blocking [`Iterator`] (it waits for new commits and ends when the database
/// closes) or call [`Subscription::next_event`] from async code.
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
/// let db = Database::open(dir.path().join("f.redb"))?;
/// let c = db.create_collection("c", CollectionConfig::new(1, Metric::L2))?;
/// let mut feed = db.subscribe(db.cursor("indexer")?.unwrap_or(0));
/// c.upsert(Entity::new(EntityId::from_key("a"), serde_json::json!({}), vec![1.0]))?;
/// let created = feed.next().unwrap()?; // the collection's creation
/// let upserted = feed.next().unwrap()?;
/// db.ack("indexer", upserted.seq)?;
/// # Ok(()) }
/// ```
pub struct Subscription {
    shared: Arc<Shared>,
    notify: watch::Receiver<u64>,
    next_after: u64,
    buffer: std::collections::VecDeque<ChangeEvent>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("position", &self.next_after)
            .finish_non_exhaustive()
    }
}

const FEED_BATCH: usize = 512;

impl Subscription {
    /// The sequence number of the last event returned (or the starting point).
    pub fn position(&self) -> u64 {
        self.next_after
    }

    /// Takes the next buffered event, refilling from the table; `None` if none is stored yet.
    fn poll_stored(&mut self) -> Result<Option<ChangeEvent>> {
        if self.buffer.is_empty() {
            // Mark the current commit as seen before reading, so that a commit landing after
            // the read still wakes the next wait.
            self.notify.borrow_and_update();
            self.buffer
                .extend(read_after(&self.shared, self.next_after, FEED_BATCH)?);
        }
        Ok(self.buffer.pop_front().inspect(|e| self.next_after = e.seq))
    }

    /// The next event, waiting (asynchronously) for one to commit. Errors if the database
    /// closed or the events were pruned.
    pub async fn next_event(&mut self) -> Result<ChangeEvent> {
        loop {
            if let Some(e) = self.poll_stored()? {
                return Ok(e);
            }
            if self.shared.feed_closed() || self.notify.changed().await.is_err() {
                return Err(Error::WriterUnavailable {
                    reason: "the database closed".into(),
                });
            }
        }
    }
}

impl Iterator for Subscription {
    type Item = Result<ChangeEvent>;

    /// Blocks until the next event commits; `None` once the database has closed.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.poll_stored() {
                Ok(Some(e)) => return Some(Ok(e)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.shared.feed_closed() || block_on(self.notify.changed()).is_err() {
                return None;
            }
        }
    }
}
