//! The seam between the sink and a target engine: a small trait, so that a second target (a
//! Qdrant cluster, say) is one more implementation, not a rewrite.
//!
//! Invariants every target keeps:
//! - [`Target::apply`] applies a whole [`Batch`] and the new cursor in one transaction: after
//!   a crash the target holds either all of it or none of it, and the cursor says which.
//! - Upserts are version-ordered: a row is replaced only by a higher version, so replaying a
//!   batch, or applying a state newer than the event that asked for it, never moves a row
//!   back.
//! - Deletes and drops are unconditional: the feed orders them against later re-creations.

use std::future::Future;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::Result;
use crate::source::CollectionSpec;

/// Where the sink is: kept in the target, written in the same transaction as each batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Every change event up to this sequence number is applied (`None`: the initial copy is
    /// not finished).
    pub applied: Option<u64>,
    /// The initial copy's snapshot sequence number: the feed is tailed from here once the copy
    /// is done.
    pub snapshot_seq: Option<u64>,
    /// The initial copy's progress: collections finished, in order.
    pub copied: Vec<String>,
    /// The initial copy's progress within the current collection: the last id copied.
    pub copy_after: Option<(String, Uuid)>,
}

/// One entity's state, as it goes into the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Id.
    pub id: Uuid,
    /// Version.
    pub version: u64,
    /// Last write, milliseconds since the Unix epoch.
    pub updated_at: u64,
    /// Payload object.
    pub payload: Map<String, Value>,
    /// The dense vector.
    pub vector: Vec<f32>,
    /// The named vectors, as the source's JSON gives them (`{name: [..] | {indices, values}}`;
    /// `None`: the entity has none).
    pub vectors: Option<Map<String, Value>>,
}

/// One step of a batch, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Create the collection's table and indexes if missing (and add missing payload indexes).
    CreateCollection {
        /// The collection.
        spec: CollectionSpec,
        /// Build the indexes now (false during the initial copy: [`Target::finish_copy`]
        /// builds the vector and payload indexes once the rows are in, which is much faster).
        indexes: bool,
    },
    /// Drop the collection's table.
    DropCollection(String),
    /// Delete these ids.
    Delete {
        /// Collection.
        collection: String,
        /// Ids.
        ids: Vec<Uuid>,
    },
    /// Insert these rows, or replace rows of a lower version.
    Upsert {
        /// Collection.
        collection: String,
        /// Rows (each id at most once).
        rows: Vec<Row>,
    },
    /// Rows of the initial copy, in id order after the copy's progress: none of them is
    /// expected in the table, so a target may write them straight (as [`Op::Upsert`] would,
    /// falling back to it when one is there after all, e.g. a table another sink filled).
    Load {
        /// Collection.
        collection: String,
        /// Rows (each id at most once).
        rows: Vec<Row>,
    },
}

/// Steps applied together with a new cursor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The steps, in order.
    pub ops: Vec<Op>,
}

impl Batch {
    /// Number of rows upserted or deleted.
    pub fn rows(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Upsert { rows, .. } | Op::Load { rows, .. } => rows.len(),
                Op::Delete { ids, .. } => ids.len(),
                _ => 0,
            })
            .sum()
    }
}

/// A target engine the sink writes into.
pub trait Target: Send {
    /// Connects (or reconnects after an error) and makes sure the sink's own tables exist.
    fn connect(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// The cursor stored for sink `name` (default when there is none).
    fn cursor(&mut self, name: &str) -> impl Future<Output = Result<Cursor>> + Send;

    /// Applies `batch` and stores `cursor` for sink `name`, in one transaction.
    fn apply(
        &mut self,
        name: &str,
        batch: &Batch,
        cursor: &Cursor,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Builds what the initial copy left out to load faster (vector and payload indexes),
    /// for every collection the target holds. Idempotent.
    fn finish_copy(&mut self) -> impl Future<Output = Result<()>> + Send;

    /// The collections the target holds, with their vector dimensions.
    fn collections(&mut self) -> impl Future<Output = Result<Vec<(String, u32)>>> + Send;

    /// Drops every collection and the cursor of sink `name` (a fresh start).
    fn reset(&mut self, name: &str) -> impl Future<Output = Result<()>> + Send;
}
