//! Loading a collection's named vectors into memory when the file opens: each dense vector's
//! index from its vectors table, each sparse vector's posting lists from its postings table
//! (cross-checked against its vectors table).
//!
//! Named dense indexes are rebuilt on every open (they have no checkpoint yet); a file never
//! holds a named vector for an entity that does not exist (checked here).

use std::collections::BTreeMap;

use redb::{ReadableTable, ReadableTableMetadata};

use crate::model::config::{StoredCollection, VectorConfig};
use crate::model::entity::{NamedVector, decode_record, decode_vector, index_form};
use crate::model::error::{Result, corrupted};
use crate::model::id::EntityId;
use crate::model::sparse::SparseVector;
use crate::query::state::{Named, NamedIndexes};
use crate::store::collection::NamedDecls;
use crate::store::schema::{CollectionTables, NamedTables};

/// Vectors handed to an index at a time.
const BATCH: usize = 8192;

/// The in-memory indexes of every named vector of `stored`.
pub(crate) fn load(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
    threads: usize,
) -> Result<NamedIndexes> {
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
        let mut index = Named::new(&decl.config, threads);
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
