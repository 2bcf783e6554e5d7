//! Loading an open file into memory: the format check, the collection catalogue, and each
//! collection's index state — from its newest valid checkpoint plus the change log after it,
//! or rebuilt from the vectors table (with progress) when there is none.
//!
//! Invariant (recovery is replay): a checkpoint is used only if its checksum, collection id and
//! config hash match and it is not ahead of the file; changes after it wait in a delta that
//! searches scan exactly until the background linker has put them in the graph.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::index::checkpoint;
use crate::index::hnsw_index::HnswIndex;
use crate::index::slots::SlotTable;
use crate::model::change::ChangeEvent;
use crate::model::config::{IndexKind, StoredCollection};
use crate::model::entity::{decode_record, decode_vector, index_form};
use crate::model::error::{Error, Result, corrupted};
use crate::model::id::EntityId;
use crate::model::sync::now_ms;
use crate::query::state::{Apply, IndexState};
use crate::store::collection::CollectionShared;
use crate::store::options::Options;
use crate::store::options::RebuildProgress;
use crate::store::schema::{
    CHANGES, COLLECTIONS, CollectionTables, FORMAT_VERSION, META, META_FORMAT_VERSION,
    META_LAST_SEQ,
};

/// Creates the global tables of a new file, or checks the format version of an existing one.
pub(crate) fn init_format(redb: &redb::Database) -> Result<()> {
    let txn = redb.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        if meta
            .get(crate::store::schema::META_INCREMENT_BASE)?
            .is_some()
        {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "this file is an incremental backup; apply it to a restored backup with \
                 Database::apply_incremental",
            )));
        }
        let found = meta.get(META_FORMAT_VERSION)?.map(|v| v.value());
        match found {
            Some(FORMAT_VERSION) => {}
            // Format 1 (before named vectors) is format 2 without named-vector tables, and its
            // collection configs decode with no named vectors: migrating is stamping the
            // version, in this same transaction.
            Some(1) => {
                meta.insert(META_FORMAT_VERSION, FORMAT_VERSION)?;
            }
            Some(v) => {
                return Err(Error::IncompatibleFormat {
                    found: v as u32,
                    supported: FORMAT_VERSION as u32,
                });
            }
            None => {
                meta.insert(META_FORMAT_VERSION, FORMAT_VERSION)?;
            }
        }
        txn.open_table(COLLECTIONS)?;
        txn.open_table(CHANGES)?;
        txn.open_table(crate::store::schema::FEED_CURSORS)?;
        crate::store::coord_log::create_tables(&txn)?;
    }
    txn.commit()?;
    Ok(())
}

pub(crate) type Catalogue = BTreeMap<String, Arc<CollectionShared>>;

/// Entities handed to the index at a time while loading.
const LOAD_BATCH: usize = 8192;

/// Reads every collection's config and loads its index: from its checkpoint plus the changes
/// after it where possible, else by a rebuild from the tables. Returns the catalogue and the
/// last sequence number.
pub(crate) fn load_collections(
    redb: &redb::Database,
    options: &Options,
    ckpt_dir: &Path,
) -> Result<(Catalogue, u64)> {
    let txn = redb.begin_read()?;
    let last_seq = txn
        .open_table(META)?
        .get(META_LAST_SEQ)?
        .map_or(0, |v| v.value());
    let mut out = BTreeMap::new();
    for row in txn.open_table(COLLECTIONS)?.iter()? {
        let (name, value) = row?;
        let stored = StoredCollection::decode(value.value())?;
        let name = name.value().to_string();
        crate::store::collection::check_ids(&stored)?;
        let tables = CollectionTables::new(stored.cid);
        check_counts(&txn, &name, &tables, stored.config.has_default_vector())?;
        let index = match stored.config.index {
            IndexKind::Hnsw { .. } if stored.config.has_default_vector() => {
                match load_from_checkpoint(&txn, &name, &stored, options, ckpt_dir, last_seq) {
                    Ok(index) => index,
                    Err(reason) => rebuild_index(&txn, &name, &stored, options, &reason)?,
                }
            }
            _ => rebuild_index(&txn, &name, &stored, options, "exact index")?,
        };
        index.set_payload(load_postings(&txn, &name, &stored)?);
        index.set_texts(crate::store::text::load(&txn, &name, &stored)?);
        index.set_named(crate::store::load_named::load(
            &txn,
            &name,
            &stored,
            &crate::store::load_named::Sources {
                options,
                ckpt_dir,
                last_seq,
            },
        )?);
        out.insert(
            name.clone(),
            Arc::new(CollectionShared::with_index(name, stored, index)),
        );
    }
    Ok((out, last_seq))
}

/// Starts a background thread for each collection whose index deferred the changes replayed
/// at load: it links them into the graph batch by batch (searches meanwhile scan them
/// exactly) and ends when none are left, or when the collection is dropped or closed.
pub(crate) fn start_linkers(catalogue: &Catalogue) {
    for c in catalogue.values().filter(|c| c.index.deferring()) {
        let weak = Arc::downgrade(c);
        let spawned = std::thread::Builder::new()
            .name("hybridb-linker".into())
            .spawn(move || {
                while let Some(c) = weak.upgrade()
                    && c.check_live().is_ok()
                {
                    match c.index.link_pending() {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            crate::observe::background_error("link", &e);
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            // Searches stay correct (they scan the deferred vectors); the next checkpoint
            // links them.
            crate::observe::background_error("link", &Error::Io(e));
        }
    }
}

/// The three per-collection tables must have the same number of rows (no vector rows in a
/// collection without a default vector).
fn check_counts(
    txn: &redb::ReadTransaction,
    name: &str,
    tables: &CollectionTables,
    has_default: bool,
) -> Result<()> {
    let entities = txn.open_table(tables.entities())?.len()?;
    let vectors = txn.open_table(tables.vectors())?.len()?;
    let slots = txn.open_table(tables.slots())?.len()?;
    let expected_vectors = if has_default { entities } else { 0 };
    if vectors != expected_vectors || entities != slots {
        return Err(corrupted(format!(
            "collection {name}: {entities} entities, {vectors} vectors, {slots} slots"
        )));
    }
    Ok(())
}

/// The hash that ties a checkpoint to one collection: its id and the parts of its config that
/// shape the vector index (not the payload indexes, which may change without touching it).
/// The quantization joins the shape only when set, so checkpoints of unquantized collections
/// written before it existed still match.
pub(crate) fn config_hash(stored: &StoredCollection) -> u64 {
    let c = &stored.config;
    let shape = if c.quantization.is_none() {
        serde_json::json!([stored.cid, c.dim, c.metric, c.index])
    } else {
        serde_json::json!([stored.cid, c.dim, c.metric, c.index, c.quantization])
    };
    checkpoint::fnv1a(shape.to_string().as_bytes())
}

/// Reads a collection's payload index rows into the in-memory postings.
fn load_postings(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
) -> Result<crate::query::payload::postings::PayloadIndex> {
    let mut index =
        crate::query::payload::postings::PayloadIndex::new(&stored.config.payload_indexes);
    let tables = CollectionTables::new(stored.cid);
    let table = match txn.open_table(tables.postings()) {
        Ok(t) => t,
        // Files written before payload indexes existed have no such table (and no indexes).
        Err(redb::TableError::TableDoesNotExist(_)) if stored.config.payload_indexes.is_empty() => {
            return Ok(index);
        }
        Err(e) => return Err(e.into()),
    };
    for row in table.iter()? {
        let (k, _) = row?;
        let (key, slot) = crate::query::payload::decode_row(k.value())
            .ok_or_else(|| corrupted(format!("collection {name}: malformed payload index row")))?;
        index.insert(&key, slot);
    }
    Ok(index)
}

/// Loads the checkpoint of an HNSW collection and replays the changes after it. `Err` gives
/// the reason to rebuild instead; storage errors are reasons too (the rebuild will meet them
/// again and report them properly).
/// The ids of `name`'s entities that change events after `seq` name (what a checkpoint taken
/// at `seq` must replay from the tables).
pub(crate) fn changed_after(
    txn: &redb::ReadTransaction,
    name: &str,
    seq: u64,
) -> std::result::Result<BTreeSet<EntityId>, String> {
    let s = |e: Error| e.to_string();
    let mut affected = BTreeSet::new();
    let changes = txn.open_table(CHANGES).map_err(|e| s(e.into()))?;
    for row in changes
        .range(seq.saturating_add(1)..)
        .map_err(|e| s(e.into()))?
    {
        let (_, v) = row.map_err(|e| s(e.into()))?;
        let event = ChangeEvent::decode(v.value()).map_err(s)?;
        if event.collection == name
            && let Some(id) = event.id
        {
            affected.insert(id);
        }
    }
    Ok(affected)
}

fn load_from_checkpoint(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    options: &Options,
    ckpt_dir: &Path,
    last_seq: u64,
) -> std::result::Result<IndexState, String> {
    let path = checkpoint::path_for(ckpt_dir, stored.cid);
    let bytes = std::fs::read(&path).map_err(|e| format!("no checkpoint ({e})"))?;
    let written_ms = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(now_ms, |d| d.as_millis() as u64);
    let ckpt = checkpoint::decode(&bytes, stored.cid, config_hash(stored), last_seq)?;
    drop(bytes);
    let ckpt_seq = ckpt.seq;
    let s = |e: Error| e.to_string();
    let tables = CollectionTables::new(stored.cid);
    // Entities touched after the checkpoint.
    let affected = changed_after(txn, name, ckpt.seq)?;
    let old_slots: HashMap<EntityId, u32> = ckpt
        .slot_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| affected.contains(id))
        .map(|(slot, id)| (*id, slot as u32))
        .collect();
    let slots = SlotTable::from_ids(ckpt.slot_ids);
    let ckpt_graph = ckpt.graph;
    // The index-form vector the checkpoint holds for `slot` (to skip unchanged ones).
    let held: HashMap<u32, Vec<f32>> = old_slots
        .values()
        .filter_map(|&slot| ckpt_graph.vector_copy(slot).map(|v| (slot, v)))
        .collect();
    // The replayed changes wait in a delta, linked in the background (`start_linkers`): the
    // collection is searchable as soon as the checkpoint is loaded.
    let graph = HnswIndex::deferred(ckpt_graph, options.index_threads)
        .with_quantization(stored.config.quantization)
        .with_originals_in(options.index_env().originals_dir.as_deref());
    let index = IndexState::from_parts(slots, Box::new(graph));
    let entities = txn.open_table(tables.entities()).map_err(|e| s(e.into()))?;
    let vectors = txn.open_table(tables.vectors()).map_err(|e| s(e.into()))?;
    let dim = stored.config.dim as usize;
    let metric = stored.config.metric;
    let mut removes = Vec::new();
    let mut sets = Vec::new();
    for id in affected {
        let now = match entities.get(id).map_err(|e| s(e.into()))? {
            Some(rec) => Some(decode_record(rec.value()).map_err(s)?.0.slot),
            None => None,
        };
        if let Some(&old) = old_slots.get(&id)
            && now != Some(old)
        {
            removes.push(Apply::Remove { slot: old });
        }
        if let Some(slot) = now {
            let v = vectors
                .get(id)
                .map_err(|e| s(e.into()))?
                .ok_or_else(|| format!("entity {id} has no vector"))?;
            let vector = index_form(&decode_vector(v.value(), dim).map_err(s)?, metric);
            // Written since, but with the vector the checkpoint holds (a payload-only update):
            // the graph needs nothing.
            let unchanged = old_slots.get(&id) == Some(&slot) && held.get(&slot) == Some(&vector);
            if !unchanged {
                sets.push(Apply::Set { slot, id, vector });
            }
        }
    }
    let replayed = removes.len() + sets.len();
    index.set_checkpoint_seq(ckpt_seq, written_ms);
    index.apply(removes).map_err(s)?;
    index.apply(sets).map_err(s)?;
    index.finish_loading();
    let rows = entities.len().map_err(|e| s(e.into()))? as usize;
    match index.counts() {
        (allocated, Some(held)) if allocated == rows && held == rows => {}
        (allocated, held) => {
            return Err(format!(
                "after replaying {replayed} changes the index holds {held:?} vectors in \
                 {allocated} slots, but the collection has {rows} entities"
            ));
        }
    }
    Ok(index)
}

/// Builds a collection's index from its entities and vectors tables, cross-checking them, and
/// reports progress through [`Options::rebuild_progress`].
fn rebuild_index(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    options: &Options,
    reason: &str,
) -> Result<IndexState> {
    let tables = CollectionTables::new(stored.cid);
    let dim = stored.config.dim as usize;
    let metric = stored.config.metric;
    let index = IndexState::new(&stored.config, &options.index_env());
    let entities = txn.open_table(tables.entities())?;
    let vectors = txn.open_table(tables.vectors())?;
    let slots = txn.open_table(tables.slots())?;
    let total = entities.len()?;
    let report = |done: u64| {
        if let Some(cb) = &options.rebuild_progress {
            (cb.0)(RebuildProgress {
                collection: name.to_string(),
                done,
                total,
                reason: reason.to_string(),
            });
        }
    };
    report(0);
    let mut done = 0u64;
    let mut batch: Vec<Apply> = Vec::with_capacity(LOAD_BATCH);
    let has_default = stored.config.has_default_vector();
    let mut vector_rows = vectors.iter()?;
    for e in entities.iter()? {
        let (eid, record) = e?;
        let id = eid.value();
        // Both tables are keyed by id, so they iterate in the same order.
        let vector = if has_default {
            let (vid, vector) = vector_rows.next().ok_or_else(|| {
                corrupted(format!("collection {name}: entity {id} has no vector"))
            })??;
            if vid.value() != id {
                return Err(corrupted(format!(
                    "collection {name}: entity {id} has no vector"
                )));
            }
            index_form(&decode_vector(vector.value(), dim)?, metric)
        } else {
            Vec::new()
        };
        let (header, _) = decode_record(record.value())?;
        match slots.get(header.slot)? {
            Some(owner) if owner.value() == id => {}
            _ => {
                return Err(corrupted(format!(
                    "collection {name}: slot {} does not point back to {id}",
                    header.slot
                )));
            }
        }
        batch.push(Apply::Set {
            slot: header.slot,
            id,
            vector,
        });
        if batch.len() == LOAD_BATCH {
            done += batch.len() as u64;
            index.apply(std::mem::take(&mut batch))?;
            report(done);
        }
    }
    done += batch.len() as u64;
    index.apply(batch)?;
    report(done);
    Ok(index)
}
