//! The write path: validate a batch, write it in one redb transaction, commit, then apply it to
//! the in-memory index.
//!
//! Invariants:
//! - every item is validated before the transaction begins; any invalid item fails the whole
//!   request and nothing is written;
//! - one request is one transaction: entity records, vectors, slot maps and one change event per
//!   affected entity (sequence numbers gap-free) commit together or not at all;
//! - the caller holds `DbInner::write_lock` for the whole call, so slot planning from the
//!   in-memory index sees exactly the committed state;
//! - slots of deleted entities are hidden from search before the commit and restored if it fails.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};

use crate::change::{ChangeEvent, ChangeKind};
use crate::collection::CollectionShared;
use crate::db::DbInner;
use crate::entity::{
    Entity, RecordHeader, check_payload, check_vector, decode_record, encode_record, encode_vector,
    index_form,
};
use crate::error::{EntityProblem, Error, Result};
use crate::id::EntityId;
use crate::schema::{CHANGES, CollectionTables, META, META_LAST_SEQ};
use crate::sync::{now_ms, read, write};

/// One mutation of a batch.
#[derive(Debug, Clone)]
pub(crate) enum WriteOp {
    /// Insert or replace; with `expected_version`, only if the stored version equals it
    /// (0: only if absent).
    Upsert {
        entity: Entity,
        expected_version: Option<u64>,
    },
    /// Delete if present.
    Delete { id: EntityId },
}

impl WriteOp {
    fn id(&self) -> EntityId {
        match self {
            WriteOp::Upsert { entity, .. } => entity.id,
            WriteOp::Delete { id } => *id,
        }
    }
}

/// What one item of a committed write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The entity.
    pub id: EntityId,
    /// Its version after the write (for a delete: the version it had).
    pub version: u64,
    /// Sequence number of the change event, or `None` when nothing changed (deleting an absent id).
    pub seq: Option<u64>,
}

/// A validated item: encodings done, nothing looked up yet.
struct Prepared {
    op: WriteOp,
    payload_json: Vec<u8>,
    vector_bytes: Vec<u8>,
}

/// What the commit must do to the in-memory index for one item.
enum Apply {
    Set {
        slot: u32,
        id: EntityId,
        vector: Vec<f32>,
    },
    Remove {
        slot: u32,
    },
}

/// Runs a batch. The caller holds the write lock.
pub(crate) fn execute(
    db: &DbInner,
    coll: &CollectionShared,
    ops: Vec<WriteOp>,
) -> Result<Vec<Written>> {
    coll.check_live()?;
    let prepared = validate(db, coll, ops)?;
    let tables = CollectionTables::new(coll.stored.cid);
    let txn = db.redb.begin_write()?;
    let (written, applies) = match write_items(&txn, coll, &tables, &prepared) {
        Ok(r) => r,
        Err(e) => {
            // Nothing was committed; dropping the transaction aborts it.
            drop(txn);
            return Err(e);
        }
    };
    let hidden: Vec<u32> = applies
        .iter()
        .filter_map(|a| match a {
            Apply::Remove { slot } => Some(*slot),
            Apply::Set { .. } => None,
        })
        .collect();
    if !hidden.is_empty() {
        let mut index = write(&coll.index);
        for &s in &hidden {
            index.hide(s);
        }
    }
    if let Err(e) = db.commit(txn) {
        let mut index = write(&coll.index);
        for &s in &hidden {
            index.unhide(s);
        }
        return Err(e);
    }
    let mut index = write(&coll.index);
    for a in applies {
        match a {
            Apply::Set { slot, id, vector } => index.set(slot, id, &vector),
            Apply::Remove { slot } => index.remove(slot),
        }
    }
    Ok(written)
}

fn validate(db: &DbInner, coll: &CollectionShared, ops: Vec<WriteOp>) -> Result<Vec<Prepared>> {
    let config = &coll.stored.config;
    let dim = config.dim as usize;
    let mut seen: HashMap<EntityId, usize> = HashMap::with_capacity(ops.len());
    let mut out = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let id = op.id();
        let fail = |problem| Error::InvalidEntity { index, id, problem };
        if let Some(&first) = seen.get(&id) {
            return Err(fail(EntityProblem::DuplicateId { first }));
        }
        seen.insert(id, index);
        let (payload_json, vector_bytes) = match &op {
            WriteOp::Upsert { entity, .. } => {
                check_vector(&entity.vector, dim, config.metric).map_err(fail)?;
                let json =
                    check_payload(&entity.payload, db.options.max_payload_bytes).map_err(fail)?;
                (json, encode_vector(&entity.vector))
            }
            WriteOp::Delete { .. } => (Vec::new(), Vec::new()),
        };
        out.push(Prepared {
            op,
            payload_json,
            vector_bytes,
        });
    }
    Ok(out)
}

fn write_items(
    txn: &WriteTransaction,
    coll: &CollectionShared,
    tables: &CollectionTables,
    items: &[Prepared],
) -> Result<(Vec<Written>, Vec<Apply>)> {
    let metric = coll.stored.config.metric;
    let now = now_ms();
    let mut entities = txn.open_table(tables.entities())?;
    let mut vectors = txn.open_table(tables.vectors())?;
    let mut slots = txn.open_table(tables.slots())?;
    let mut changes = txn.open_table(CHANGES)?;
    let mut meta = txn.open_table(META)?;
    let mut seq = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
    let upserts = items
        .iter()
        .filter(|p| matches!(p.op, WriteOp::Upsert { .. }))
        .count();
    let mut new_slots = read(&coll.index).plan_slots(upserts).into_iter();
    let mut written = Vec::with_capacity(items.len());
    let mut applies = Vec::with_capacity(items.len());
    for item in items {
        let id = item.op.id();
        let existing = match entities.get(id)? {
            Some(v) => {
                let (header, json) = decode_record(v.value())?;
                Some((header, json.to_vec()))
            }
            None => None,
        };
        let current = existing.as_ref().map_or(0, |(h, _)| h.version);
        let mut event = ChangeEvent {
            seq: 0,
            collection: coll.name.clone(),
            id: Some(id),
            kind: ChangeKind::EntityCreated,
            version: 0,
            payload_changed: true,
            timestamp: now,
        };
        match &item.op {
            WriteOp::Upsert {
                entity,
                expected_version,
            } => {
                if let Some(expected) = *expected_version
                    && expected != current
                {
                    return Err(Error::Conflict {
                        id,
                        expected,
                        current,
                    });
                }
                let (slot, vector_changed) = match &existing {
                    Some((h, json)) => {
                        let old = vectors.get(id)?.map(|v| v.value().to_vec());
                        let vector_changed = old.as_deref() != Some(item.vector_bytes.as_slice());
                        event.kind = if vector_changed {
                            ChangeKind::VectorUpdated
                        } else {
                            ChangeKind::StateModified
                        };
                        event.payload_changed = *json != item.payload_json;
                        (h.slot, vector_changed)
                    }
                    None => {
                        // `plan_slots` returned one slot per upsert in the batch.
                        let slot = new_slots.next().ok_or_else(|| {
                            crate::error::corrupted("slot planning returned too few slots")
                        })?;
                        slots.insert(slot, id)?;
                        (slot, true)
                    }
                };
                let header = RecordHeader {
                    slot,
                    version: current + 1,
                    updated_at: now,
                };
                entities.insert(id, encode_record(header, &item.payload_json).as_slice())?;
                if vector_changed {
                    vectors.insert(id, item.vector_bytes.as_slice())?;
                    applies.push(Apply::Set {
                        slot,
                        id,
                        vector: index_form(&entity.vector, metric),
                    });
                }
                event.version = header.version;
            }
            WriteOp::Delete { .. } => {
                let Some((header, _)) = existing else {
                    written.push(Written {
                        id,
                        version: 0,
                        seq: None,
                    });
                    continue;
                };
                entities.remove(id)?;
                vectors.remove(id)?;
                slots.remove(header.slot)?;
                applies.push(Apply::Remove { slot: header.slot });
                event.kind = ChangeKind::Deleted;
                event.version = header.version;
                event.payload_changed = false;
            }
        }
        seq += 1;
        event.seq = seq;
        changes.insert(seq, event.encode().as_slice())?;
        written.push(Written {
            id,
            version: event.version,
            seq: Some(seq),
        });
    }
    meta.insert(META_LAST_SEQ, seq)?;
    Ok((written, applies))
}
