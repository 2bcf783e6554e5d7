//! Loading a collection's named vectors into memory when the file opens: each dense HNSW
//! vector's index from its checkpoint plus the changes after it, else (and for exact indexes)
//! from its vectors table; each sparse vector's posting lists from its postings table
//! (cross-checked against its vectors table).
//!
//! Invariants: a named checkpoint follows the default one's rules (checksums, collection id
//! and a config hash covering the vector's id and config must match, and it is never ahead of
//! the file); a file never holds a named vector for an entity that does not exist (checked
//! here).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;

use redb::{ReadableTable, ReadableTableMetadata};

use crate::index::checkpoint;
use crate::index::hnsw_index::HnswIndex;
use crate::model::config::{IndexKind, Quantization, StoredCollection, VectorConfig};
use crate::model::entity::{NamedVector, decode_record, decode_vector, index_form};
use crate::model::error::{Result, corrupted};
use crate::model::id::EntityId;
use crate::model::sparse::SparseVector;
use crate::query::state::{Named, NamedIndexes};
use crate::store::collection::{Declared, NamedDecls};
use crate::store::options::{Options, RebuildProgress};
use crate::store::schema::{CollectionTables, NamedTables};

/// The hash that ties a named vector's checkpoint to it: the collection id, the vector's id
/// and its config.
pub(crate) fn config_hash(cid: u64, decl: &Declared) -> u64 {
    let shape = serde_json::json!([cid, decl.vid, decl.config]);
    checkpoint::fnv1a(shape.to_string().as_bytes())
}

/// Where the named indexes of a collection may come from besides their tables.
pub(crate) struct Sources<'a> {
    pub options: &'a Options,
    pub ckpt_dir: &'a Path,
    pub last_seq: u64,
}

/// Vectors handed to an index at a time.
const BATCH: usize = 8192;

/// The in-memory indexes of every named vector of `stored`.
pub(crate) fn load(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    sources: &Sources<'_>,
) -> Result<NamedIndexes> {
    let env = sources.options.index_env();
    let decls = NamedDecls::of(stored);
    if decls.is_empty() {
        return Ok(NamedIndexes::new());
    }
    let entities = txn.open_table(CollectionTables::new(stored.cid).entities())?;
    let slot_of = |id: EntityId| -> Result<u32> {
        match entities.get(id)? {
            Some(rec) => Ok(decode_record(rec.value())?.0.slot),
            None => Err(corrupted(format!(
                "collection {name}: a named vector of entity {id}, which does not exist"
            ))),
        }
    };
    let mut out = NamedIndexes::new();
    for (vname, decl) in decls.iter() {
        let tables = NamedTables::new(stored.cid, decl.vid);
        let rows = txn.open_table(tables.vectors())?;
        if let VectorConfig::Dense {
            index: IndexKind::Hnsw { .. },
            ..
        } = decl.config
        {
            match from_checkpoint(txn, name, stored, decl, sources, &slot_of) {
                Ok(index) => {
                    out.insert(vname.clone(), index);
                    continue;
                }
                Err(reason) => {
                    if let Some(cb) = &sources.options.rebuild_progress {
                        (cb.0)(RebuildProgress {
                            collection: name.to_string(),
                            done: 0,
                            total: rows.len()?,
                            reason: format!("vector {vname:?}: {reason}"),
                        });
                    }
                }
            }
        }
        let mut index = Named::new(&decl.config, &env);
        match (&mut index, decl.config) {
            (Named::Dense(d), VectorConfig::Dense { dim, metric, .. }) => {
                let mut batch: Vec<(u32, Vec<f32>)> = Vec::with_capacity(BATCH);
                let mut flush = |batch: &mut Vec<(u32, Vec<f32>)>| -> Result<()> {
                    let needed = batch.iter().map(|(s, _)| *s as usize + 1).max();
                    d.index.reserve(needed.unwrap_or(0));
                    let items: Vec<(u32, &[f32])> =
                        batch.iter().map(|(s, v)| (*s, v.as_slice())).collect();
                    d.index.insert(&items).map_err(|e| {
                        corrupted(format!("collection {name}: vector {vname:?}: {e}"))
                    })?;
                    for (s, _) in batch.drain(..) {
                        d.present.insert(s);
                    }
                    Ok(())
                };
                for row in rows.iter()? {
                    let (id, bytes) = row?;
                    let v = decode_vector(bytes.value(), dim as usize)?;
                    batch.push((slot_of(id.value())?, index_form(&v, metric)));
                    if batch.len() == BATCH {
                        flush(&mut batch)?;
                    }
                }
                flush(&mut batch)?;
                // Rebuilt: the next checkpoint writes it out.
                d.changed.store(d.present.len() as u64, Ordering::Relaxed);
            }
            (Named::Sparse(s), VectorConfig::Sparse { .. }) => {
                let postings = txn.open_table(tables.postings())?;
                // Rows come dimension by dimension, so each slot's indices arrive increasing.
                let mut docs: BTreeMap<u32, SparseVector> = BTreeMap::new();
                for row in postings.iter()? {
                    let (key, w) = row?;
                    let (dim, slot) = key.value();
                    let doc = docs.entry(slot).or_default();
                    doc.indices.push(dim);
                    doc.values.push(w.value());
                }
                // Entities whose vector has no non-zero have no postings rows.
                for row in rows.iter()? {
                    let (id, bytes) = row?;
                    let slot = slot_of(id.value())?;
                    let stored = crate::model::entity::decode_sparse(bytes.value())?;
                    let loaded = docs.remove(&slot).unwrap_or_default();
                    if loaded != stored {
                        return Err(corrupted(format!(
                            "collection {name}: sparse vector {vname:?} of entity {}: its \
                             postings rows differ from its stored vector",
                            id.value()
                        )));
                    }
                    s.index.insert(slot, loaded);
                }
                if let Some(slot) = docs.keys().next() {
                    return Err(corrupted(format!(
                        "collection {name}: sparse vector {vname:?} has postings rows for slot \
                         {slot}, whose entity does not have it"
                    )));
                }
            }
            _ => return Err(corrupted("named vector index of the wrong kind")),
        }
        debug_assert_eq!(index.len() as u64, rows.len()?);
        out.insert(vname.clone(), index);
    }
    Ok(out)
}

/// Loads a named HNSW vector's checkpoint and applies the changes after it. `Err` gives the
/// reason to rebuild instead (storage errors too: the rebuild meets them again and reports
/// them properly).
fn from_checkpoint(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    decl: &Declared,
    sources: &Sources<'_>,
    slot_of: &dyn Fn(EntityId) -> Result<u32>,
) -> std::result::Result<Named, String> {
    let s = |e: crate::model::error::Error| e.to_string();
    let VectorConfig::Dense { dim, metric, .. } = decl.config else {
        return Err("not a dense vector".into());
    };
    let path = checkpoint::named_path_for(sources.ckpt_dir, stored.cid, decl.vid);
    let bytes = std::fs::read(&path).map_err(|e| format!("no checkpoint ({e})"))?;
    let ckpt = checkpoint::decode(
        &bytes,
        stored.cid,
        config_hash(stored.cid, decl),
        sources.last_seq,
    )?;
    drop(bytes);
    // Entities written after the checkpoint.
    let affected = crate::store::load::changed_after(txn, name, ckpt.seq)?;
    let mut present = crate::index::bitset::SlotBitset::new();
    let mut old_slots: HashMap<EntityId, u32> = HashMap::new();
    for (slot, id) in ckpt.slot_ids.iter().enumerate() {
        if *id != EntityId::MIN {
            present.insert(slot as u32);
            if affected.contains(id) {
                old_slots.insert(*id, slot as u32);
            }
        }
    }
    let graph = ckpt.graph;
    let rows = txn
        .open_table(NamedTables::new(stored.cid, decl.vid).vectors())
        .map_err(|e| s(e.into()))?;
    let entities = txn
        .open_table(CollectionTables::new(stored.cid).entities())
        .map_err(|e| s(e.into()))?;
    let mut removes = BTreeSet::new();
    let mut sets: Vec<(u32, Vec<f32>)> = Vec::new();
    for id in affected {
        let now = match entities.get(id).map_err(|e| s(e.into()))? {
            Some(_) => match rows.get(id).map_err(|e| s(e.into()))? {
                Some(v) => Some((
                    slot_of(id).map_err(s)?,
                    index_form(&decode_vector(v.value(), dim as usize).map_err(s)?, metric),
                )),
                None => None,
            },
            None => None,
        };
        let old = old_slots.get(&id).copied();
        let now_slot = now.as_ref().map(|n| n.0);
        if let Some(old) = old
            && now_slot != Some(old)
        {
            removes.insert(old);
        }
        if let Some((slot, vector)) = now {
            if old == Some(slot) && graph.vector_copy(slot).as_ref() == Some(&vector) {
                continue;
            }
            if present.contains(slot) {
                // The slot holds another (deleted) entity's vector, or this one's old one.
                removes.insert(slot);
            }
            sets.push((slot, vector));
        }
    }
    let quantization = match decl.config {
        VectorConfig::Dense { quantization, .. } => quantization,
        VectorConfig::Sparse { .. } => Quantization::None,
    };
    let index = HnswIndex::deferred(graph, sources.options.index_threads)
        .with_quantization(quantization)
        .with_originals_in(sources.options.index_env().originals_dir.as_deref());
    let mut boxed: Box<dyn crate::index::VectorIndex> = Box::new(index);
    let removes: Vec<u32> = removes.into_iter().collect();
    boxed.remove(&removes);
    for slot in &removes {
        present.remove(*slot);
    }
    boxed.reserve(sets.iter().map(|(s, _)| *s as usize + 1).max().unwrap_or(0));
    let items: Vec<(u32, &[f32])> = sets.iter().map(|(s, v)| (*s, v.as_slice())).collect();
    boxed.insert(&items)?;
    for (slot, _) in &sets {
        present.insert(*slot);
    }
    boxed.finish_loading();
    while boxed.deferring() && boxed.link_step()? {}
    let stored_rows = rows.len().map_err(|e| s(e.into()))? as usize;
    if present.len() != stored_rows || boxed.held() != Some(stored_rows) {
        return Err(format!(
            "after replay the index holds {:?} vectors ({} slots), {stored_rows} are stored",
            boxed.held(),
            present.len()
        ));
    }
    let mut named = Named::new(
        &decl.config,
        &crate::index::originals::IndexEnv::in_memory(sources.options.index_threads),
    );
    if let Named::Dense(d) = &mut named {
        d.index = boxed;
        d.present = present;
        d.checkpoint_seq.store(ckpt.seq, Ordering::Release);
        d.changed
            .store((removes.len() + sets.len()) as u64, Ordering::Relaxed);
    }
    Ok(named)
}

/// The stored named vectors of the entity `id`, by name (reads one row per declared vector).
pub(crate) fn read_named<T>(
    tables: &[(String, VectorConfig, T)],
    id: EntityId,
) -> Result<BTreeMap<String, NamedVector>>
where
    T: ReadableTable<EntityId, &'static [u8]>,
{
    let mut out = BTreeMap::new();
    for (name, config, table) in tables {
        if let Some(bytes) = table.get(id)? {
            out.insert(
                name.clone(),
                crate::model::entity::decode_named(bytes.value(), config)?,
            );
        }
    }
    Ok(out)
}

/// Creates the tables of every named vector of a new collection.
pub(crate) fn create_tables(txn: &redb::WriteTransaction, stored: &StoredCollection) -> Result<()> {
    for (_, d) in NamedDecls::of(stored).iter() {
        create_one(txn, stored.cid, d)?;
    }
    Ok(())
}

/// Creates the tables of one named vector.
pub(crate) fn create_one(
    txn: &redb::WriteTransaction,
    cid: u64,
    d: &crate::store::collection::Declared,
) -> Result<()> {
    let t = NamedTables::new(cid, d.vid);
    txn.open_table(t.vectors())?;
    if let VectorConfig::Sparse { .. } = d.config {
        txn.open_table(t.postings())?;
    }
    Ok(())
}

/// Deletes the tables of the named vectors `decls` of collection `cid`.
pub(crate) fn delete_tables(
    txn: &redb::WriteTransaction,
    cid: &u64,
    decls: &NamedDecls,
) -> Result<()> {
    for (_, d) in decls.iter() {
        let t = NamedTables::new(*cid, d.vid);
        txn.delete_table(t.vectors())?;
        txn.delete_table(t.postings())?;
    }
    Ok(())
}
