//! Writing one command's items inside a (group) write transaction.
//!
//! A command goes through three steps, so that one bad command in a group fails alone:
//! 1. [`validate`]: pure checks and encodings, before any transaction;
//! 2. [`stage`]: reads the current records through the group's transaction (so it sees earlier
//!    commands of the same group) and checks version expectations; it writes nothing, so a
//!    conflict leaves the transaction untouched;
//! 3. [`write_staged`]: writes records, vectors, slots and one change event per affected entity.
//!    Errors here are storage faults and fail the whole group.
//!
//! Invariant: slots for new entities are taken from the group's [`SlotCursor`] only in step 3.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use redb::{ReadableTable, Table, WriteTransaction};

use crate::index::slots::SlotCursor;
use crate::model::change::{ChangeEvent, ChangeKind};
use crate::model::config::PayloadIndexKind;
use crate::model::entity::decode_payload;
use crate::model::entity::{
    Entity, RecordHeader, check_payload, check_vector, decode_record, encode_record, encode_vector,
    index_form,
};
use crate::model::error::{EntityProblem, Error, Result, corrupted};
use crate::model::id::EntityId;
use crate::model::payload_update::PayloadUpdate;
use crate::query::payload::{PostingKey, encode_row, index_keys};
use crate::query::state::Apply;
use crate::store::collection::CollectionShared;
use crate::store::schema::CollectionTables;
use crate::store::write_named::{NamedWriter, NewValue, check_upsert};
use std::collections::BTreeSet;

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
    /// Change the payload of an existing entity (its vector stays): the new payload is
    /// computed from the stored one inside the write transaction (step 2).
    UpdatePayload {
        id: EntityId,
        update: Arc<PayloadUpdate>,
    },
}

/// What a write by filter does to each entity that passes the filter.
#[derive(Debug, Clone)]
pub(crate) enum WhereAction {
    Delete,
    UpdatePayload(Arc<PayloadUpdate>),
}

impl WriteOp {
    fn id(&self) -> EntityId {
        match self {
            WriteOp::Upsert { entity, .. } => entity.id,
            WriteOp::Delete { id } | WriteOp::UpdatePayload { id, .. } => *id,
        }
    }

    /// Rough size for group-commit byte limits.
    pub(crate) fn approx_bytes(&self) -> usize {
        match self {
            WriteOp::Upsert { entity, .. } => {
                64 + entity.vector.len() * 4
                    + entity
                        .vectors
                        .values()
                        .map(crate::model::entity::NamedVector::approx_bytes)
                        .sum::<usize>()
            }
            WriteOp::Delete { .. } => 32,
            WriteOp::UpdatePayload { update, .. } => 64 + update_bytes(update),
        }
    }
}

/// What one item of a committed write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The entity.
    pub id: EntityId,
    /// Its version after the write (for a delete: the version it had; 0 if it was absent).
    pub version: u64,
    /// Sequence number of the change event, or `None` when nothing changed (deleting an absent id).
    pub seq: Option<u64>,
}

/// A validated item: encodings done, nothing looked up yet.
pub(crate) struct Prepared {
    op: WriteOp,
    payload_json: Vec<u8>,
    vector_bytes: Vec<u8>,
    /// Payload index keys of the new payload.
    keys: Vec<PostingKey>,
    /// An upsert's new value of each declared named vector, in declaration order.
    named: Vec<NewValue>,
}

/// Step 1: checks every item; any invalid item fails the command.
pub(crate) fn validate(
    coll: &CollectionShared,
    ops: Vec<WriteOp>,
    max_payload_bytes: usize,
) -> Result<Vec<Prepared>> {
    let config = &coll.stored.config;
    let dim = config.dim as usize;
    let declared = coll.index.with_payload(|p| p.declared());
    let decls = coll.named();
    let mut seen: HashMap<EntityId, usize> = HashMap::with_capacity(ops.len());
    let mut out = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let id = op.id();
        let fail = |problem| Error::InvalidEntity { index, id, problem };
        if let Some(&first) = seen.get(&id) {
            return Err(fail(EntityProblem::DuplicateId { first }));
        }
        seen.insert(id, index);
        let mut named = Vec::new();
        let (payload_json, vector_bytes, keys) = match &op {
            WriteOp::Upsert { entity, .. } => {
                if config.has_default_vector() {
                    check_vector(&entity.vector, dim, config.metric).map_err(fail)?;
                } else if !entity.vector.is_empty() {
                    return Err(fail(EntityProblem::UnknownVector {
                        name: String::new(),
                    }));
                }
                named = check_upsert(&decls, entity).map_err(fail)?;
                let json = check_payload(&entity.payload, max_payload_bytes).map_err(fail)?;
                let keys = match entity.payload.as_object() {
                    Some(map) if !declared.is_empty() => {
                        index_keys(&declared, map).map_err(fail)?
                    }
                    _ => Vec::new(),
                };
                let vector_bytes = if config.has_default_vector() {
                    encode_vector(&entity.vector)
                } else {
                    Vec::new()
                };
                (json, vector_bytes, keys)
            }
            WriteOp::UpdatePayload { update, .. } => {
                update.check().map_err(fail)?;
                (Vec::new(), Vec::new(), Vec::new())
            }
            WriteOp::Delete { .. } => (Vec::new(), Vec::new(), Vec::new()),
        };
        out.push(Prepared {
            op,
            payload_json,
            vector_bytes,
            keys,
            named,
        });
    }
    Ok(out)
}

/// Step 1 of a delete-by-filter: the filter must fit the payload indexes.
pub(crate) fn check_filter(
    coll: &CollectionShared,
    filter: &crate::query::filter::Filter,
) -> Result<()> {
    coll.index
        .with_payload(|p| crate::query::payload::eval::check(filter, p))
        .map_err(|p| Error::InvalidQuery(crate::model::error::QueryProblem::Filter(p)))
}

/// Turns a write by filter into deletes or payload updates of the entities that pass the
/// filter in `txn`.
///
/// The postings hold every group committed before this one (the writer applies each group
/// before it starts the next), so the candidates they give plus the entities written earlier
/// in this group (`touched`) cover every entity that can pass; each candidate's payload is
/// then checked as it stands in `txn`.
pub(crate) fn resolve_where(
    txn: &WriteTransaction,
    coll: &CollectionShared,
    tables: &CollectionTables,
    filter: &crate::query::filter::Filter,
    action: &WhereAction,
    touched: &[EntityId],
) -> Result<Vec<Prepared>> {
    let entities = txn.open_table(tables.entities())?;
    let id_slots = id_slots(&entities, filter.mentioned_ids())?;
    let superset = coll
        .index
        .evaluate(filter, &id_slots)
        .map_err(|p| Error::InvalidQuery(crate::model::error::QueryProblem::Filter(p)))?;
    let mut candidates: Vec<EntityId> = coll
        .index
        .candidates(&superset.bits)
        .into_iter()
        .map(|(_, id)| id)
        .chain(touched.iter().copied())
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut out = Vec::new();
    for id in candidates {
        let Some(rec) = entities.get(id)? else {
            continue;
        };
        let (_, json) = decode_record(rec.value())?;
        if filter.matches(id, &decode_payload(json)?) {
            out.push(Prepared {
                op: match action {
                    WhereAction::Delete => WriteOp::Delete { id },
                    WhereAction::UpdatePayload(update) => WriteOp::UpdatePayload {
                        id,
                        update: Arc::clone(update),
                    },
                },
                payload_json: Vec::new(),
                vector_bytes: Vec::new(),
                keys: Vec::new(),
                named: Vec::new(),
            });
        }
    }
    Ok(out)
}

/// What step 3 must do for one item, decided by step 2.
pub(crate) enum Staged {
    Create,
    Update {
        slot: u32,
        version: u64,
        vector_changed: bool,
        payload_changed: bool,
        old_keys: Vec<PostingKey>,
    },
    Delete {
        slot: u32,
        version: u64,
        old_keys: Vec<PostingKey>,
    },
    /// Deleting an absent id: nothing to write.
    Absent,
}

/// Step 2: reads current state through `txn` and checks version expectations; computes the
/// new payload of a payload update (and checks it as step 1 checks an upsert's). Writes nothing.
pub(crate) fn stage(
    txn: &WriteTransaction,
    coll: &CollectionShared,
    tables: &CollectionTables,
    items: &mut [Prepared],
    max_payload_bytes: usize,
) -> Result<Vec<Staged>> {
    let entities = txn.open_table(tables.entities())?;
    let vectors = txn.open_table(tables.vectors())?;
    let declared = coll.index.with_payload(|p| p.declared());
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter_mut().enumerate() {
        let id = item.op.id();
        let fail = |problem| Error::InvalidEntity { index, id, problem };
        let existing = match entities.get(id)? {
            Some(v) => {
                let (header, json) = decode_record(v.value())?;
                if let WriteOp::UpdatePayload { update, .. } = &item.op {
                    let new = Value::Object(update.apply(decode_payload(json)?));
                    item.payload_json = check_payload(&new, max_payload_bytes).map_err(fail)?;
                    item.keys = match new.as_object() {
                        Some(map) if !declared.is_empty() => {
                            index_keys(&declared, map).map_err(fail)?
                        }
                        _ => Vec::new(),
                    };
                }
                let changed = json != item.payload_json.as_slice();
                let old_keys = if declared.is_empty() || !changed && item.keys.is_empty() {
                    Vec::new()
                } else {
                    stored_keys(&declared, json)?
                };
                Some((header, changed, old_keys))
            }
            None => None,
        };
        let current = existing.as_ref().map_or(0, |(h, _, _)| h.version);
        out.push(match (&item.op, existing) {
            (
                WriteOp::Upsert {
                    expected_version: Some(expected),
                    ..
                },
                _,
            ) if *expected != current => {
                return Err(Error::Conflict {
                    id,
                    expected: *expected,
                    current,
                });
            }
            (WriteOp::Upsert { .. }, None) => Staged::Create,
            (WriteOp::Upsert { .. }, Some((header, payload_changed, old_keys))) => {
                // A collection without a default vector has no vector rows.
                let vector_changed = coll.stored.config.has_default_vector() && {
                    let old = vectors.get(id)?;
                    old.as_ref().map(|v| v.value()) != Some(item.vector_bytes.as_slice())
                };
                Staged::Update {
                    slot: header.slot,
                    version: header.version,
                    vector_changed,
                    payload_changed,
                    old_keys,
                }
            }
            (WriteOp::Delete { .. }, Some((header, _, old_keys))) => Staged::Delete {
                slot: header.slot,
                version: header.version,
                old_keys,
            },
            (WriteOp::Delete { .. }, None) => Staged::Absent,
            (WriteOp::UpdatePayload { .. }, None) => return Err(fail(EntityProblem::NotFound)),
            (WriteOp::UpdatePayload { .. }, Some((header, payload_changed, old_keys))) => {
                Staged::Update {
                    slot: header.slot,
                    version: header.version,
                    vector_changed: false,
                    payload_changed,
                    old_keys,
                }
            }
        });
    }
    Ok(out)
}

/// The payload index keys of a stored payload.
fn stored_keys(
    declared: &BTreeMap<String, PayloadIndexKind>,
    json: &[u8],
) -> Result<Vec<PostingKey>> {
    index_keys(declared, &decode_payload(json)?).map_err(|p| {
        corrupted(format!(
            "stored payload does not fit its payload index: {p}"
        ))
    })
}

/// Step 3: writes the staged items, taking sequence numbers from `seq` (the last one used).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_staged(
    txn: &WriteTransaction,
    coll: &CollectionShared,
    tables: &CollectionTables,
    items: &[Prepared],
    staged: Vec<Staged>,
    changes: &mut Table<u64, &[u8]>,
    seq: &mut u64,
    slots_cursor: &mut SlotCursor,
    now: u64,
) -> Result<(Vec<Written>, Vec<Apply>)> {
    let metric = coll.stored.config.metric;
    let has_default = coll.stored.config.has_default_vector();
    let decls = coll.named();
    let mut named = NamedWriter::open(txn, coll.stored.cid, &decls)?;
    let mut texts = crate::store::text::TextWriter::open(txn, coll.stored.cid, &coll.texts())?;
    let mut entities = txn.open_table(tables.entities())?;
    let mut vectors = txn.open_table(tables.vectors())?;
    let mut slots = txn.open_table(tables.slots())?;
    let mut postings = txn.open_table(tables.postings())?;
    let mut written = Vec::with_capacity(items.len());
    let mut applies = Vec::with_capacity(items.len());
    for (item, staged) in items.iter().zip(staged) {
        let id = item.op.id();
        let (kind, version, payload_changed) = match staged {
            Staged::Absent => {
                written.push(Written {
                    id,
                    version: 0,
                    seq: None,
                });
                continue;
            }
            Staged::Delete {
                slot,
                version,
                old_keys,
            } => {
                let old = entities.remove(id)?.map(|g| g.value().to_vec());
                if !texts.is_empty() {
                    texts.update(slot, old.as_deref(), None, &mut applies)?;
                }
                vectors.remove(id)?;
                named.delete(id, slot)?;
                slots.remove(slot)?;
                for k in &old_keys {
                    postings.remove(encode_row(k, slot).as_slice())?;
                }
                applies.push(Apply::Remove { slot });
                if !old_keys.is_empty() {
                    applies.push(Apply::Postings {
                        slot,
                        remove: old_keys,
                        add: Vec::new(),
                    });
                }
                (ChangeKind::Deleted, version, false)
            }
            Staged::Create | Staged::Update { .. } => {
                let entity = match &item.op {
                    WriteOp::Upsert { entity, .. } => Some(entity),
                    WriteOp::UpdatePayload { .. } => None,
                    WriteOp::Delete { .. } => {
                        return Err(corrupted("staged an upsert for a delete"));
                    }
                };
                let (slot, old_version, vector_changed, payload_changed, mut kind, old_keys) =
                    match staged {
                        Staged::Update {
                            slot,
                            version,
                            vector_changed,
                            payload_changed,
                            old_keys,
                        } => (
                            slot,
                            version,
                            vector_changed,
                            payload_changed,
                            if vector_changed {
                                ChangeKind::VectorUpdated
                            } else {
                                ChangeKind::StateModified
                            },
                            old_keys,
                        ),
                        _ => {
                            let slot = coll.index.next_slot(slots_cursor);
                            slots.insert(slot, id)?;
                            (slot, 0, true, true, ChangeKind::EntityCreated, Vec::new())
                        }
                    };
                let remove: Vec<PostingKey> = old_keys
                    .iter()
                    .filter(|k| !item.keys.contains(k))
                    .cloned()
                    .collect();
                let add: Vec<PostingKey> = item
                    .keys
                    .iter()
                    .filter(|k| !old_keys.contains(k))
                    .cloned()
                    .collect();
                for k in &remove {
                    postings.remove(encode_row(k, slot).as_slice())?;
                }
                for k in &add {
                    postings.insert(encode_row(k, slot).as_slice(), ())?;
                }
                let header = RecordHeader {
                    slot,
                    version: old_version + 1,
                    updated_at: now,
                };
                let record = encode_record(header, &item.payload_json);
                let old = entities
                    .insert(id, record.as_slice())?
                    .map(|g| g.value().to_vec());
                if !texts.is_empty() {
                    texts.update(slot, old.as_deref(), Some(&record), &mut applies)?;
                }
                if vector_changed {
                    let Some(entity) = entity else {
                        return Err(corrupted("a payload update staged a vector change"));
                    };
                    let vector = if has_default {
                        vectors.insert(id, item.vector_bytes.as_slice())?;
                        index_form(&entity.vector, metric)
                    } else {
                        // Claims the slot; no default vector to index.
                        Vec::new()
                    };
                    applies.push(Apply::Set { slot, id, vector });
                }
                if entity.is_some()
                    && named.upsert(id, slot, &item.named, &mut applies)?
                    && kind == ChangeKind::StateModified
                {
                    kind = ChangeKind::VectorUpdated;
                }
                if !remove.is_empty() || !add.is_empty() {
                    applies.push(Apply::Postings { slot, remove, add });
                }
                (kind, header.version, payload_changed)
            }
        };
        *seq += 1;
        let event = ChangeEvent {
            seq: *seq,
            collection: coll.name.clone(),
            id: Some(id),
            kind,
            version,
            payload_changed,
            timestamp: now,
        };
        changes.insert(*seq, event.encode().as_slice())?;
        written.push(Written {
            id,
            version,
            seq: Some(*seq),
        });
    }
    Ok((written, applies))
}

/// The slots of the entities named by `ids` (absent ones are left out).
pub(crate) fn id_slots<T>(entities: &T, ids: BTreeSet<EntityId>) -> Result<HashMap<EntityId, u32>>
where
    T: ReadableTable<EntityId, &'static [u8]>,
{
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        if let Some(rec) = entities.get(id)? {
            out.insert(id, decode_record(rec.value())?.0.slot);
        }
    }
    Ok(out)
}

/// Rough size of a payload update's own data, for group-commit byte limits.
fn update_bytes(update: &PayloadUpdate) -> usize {
    match update {
        PayloadUpdate::Set { payload, .. } | PayloadUpdate::Overwrite(payload) => {
            crate::observe::cache::payload_bytes(payload)
        }
        PayloadUpdate::Delete(keys) => keys.iter().map(String::len).sum(),
        PayloadUpdate::Clear => 0,
    }
}
