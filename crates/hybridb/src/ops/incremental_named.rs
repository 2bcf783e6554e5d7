//! Named vectors in incremental backups: the increment carries the named-vector rows of the
//! entities its window touched; applying it replaces those rows in the target and re-derives
//! their sparse postings rows from them (postings are never copied), and drops the tables of
//! named vectors removed in the window.

use std::collections::{BTreeSet, HashMap};

use crate::model::config::{StoredCollection, VectorConfig};
use crate::model::entity::decode_sparse;
use crate::model::error::Result;
use crate::model::id::EntityId;
use crate::store::collection::NamedDecls;
use crate::store::load_named::delete_tables;
use crate::store::schema::NamedTables;

/// Copies the named-vector rows of `ids` from `src` into the increment `out`.
pub(crate) fn copy_rows(
    src: &redb::ReadTransaction,
    out: &redb::WriteTransaction,
    stored: &StoredCollection,
    ids: &BTreeSet<EntityId>,
) -> Result<()> {
    for (_, d) in NamedDecls::of(stored).iter() {
        let t = NamedTables::new(stored.cid, d.vid);
        let from = src.open_table(t.vectors())?;
        let mut to = out.open_table(t.vectors())?;
        for &id in ids {
            if let Some(v) = from.get(id)? {
                to.insert(id, v.value())?;
            }
        }
    }
    Ok(())
}

/// Drops the tables of named vectors that `old` has and `new` (the same collection after the
/// window, or `None` if it is gone) no longer has.
pub(crate) fn drop_removed(
    txn: &redb::WriteTransaction,
    old: &StoredCollection,
    new: Option<&StoredCollection>,
) -> Result<()> {
    let mut gone = old.clone();
    gone.config.vectors.retain(|name, _| {
        new.and_then(|n| n.vector_ids.get(name)) != old.vector_ids.get(name)
            || new.is_none_or(|n| n.cid != old.cid)
    });
    delete_tables(txn, &old.cid, &NamedDecls::of(&gone))?;
    if new.is_none_or(|n| n.cid != old.cid) {
        let texts = crate::store::collection::TextDecls::of(old);
        crate::store::text::delete_tables(txn, old.cid, &texts)?;
    }
    Ok(())
}

/// Replaces the named-vector rows of `ids` in the target `txn` with the increment's, given
/// each id's slot before (`old_slots`) and after (`new_slots`) the window.
pub(crate) fn apply_rows(
    itxn: &redb::ReadTransaction,
    txn: &redb::WriteTransaction,
    stored: &StoredCollection,
    ids: &BTreeSet<EntityId>,
    old_slots: &HashMap<EntityId, u32>,
    new_slots: &HashMap<EntityId, u32>,
) -> Result<()> {
    for (_, d) in NamedDecls::of(stored).iter() {
        let t = NamedTables::new(stored.cid, d.vid);
        let mut vectors = txn.open_table(t.vectors())?;
        let mut postings = match d.config {
            VectorConfig::Sparse { .. } => Some(txn.open_table(t.postings())?),
            VectorConfig::Dense { .. } => None,
        };
        let inc = match itxn.open_table(t.vectors()) {
            Ok(table) => Some(table),
            // Added in the window and never written: the increment has no such table.
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        for &id in ids {
            if let Some(old) = vectors.remove(id)?
                && let Some(postings) = postings.as_mut()
                && let Some(&slot) = old_slots.get(&id)
            {
                for dim in decode_sparse(old.value())?.indices {
                    postings.remove((dim, slot))?;
                }
            }
            let Some(inc) = &inc else { continue };
            let (Some(v), Some(&slot)) = (inc.get(id)?, new_slots.get(&id)) else {
                continue;
            };
            vectors.insert(id, v.value())?;
            if let Some(postings) = postings.as_mut() {
                let s = decode_sparse(v.value())?;
                for (&dim, &w) in s.indices.iter().zip(&s.values) {
                    postings.insert((dim, slot), w)?;
                }
            }
        }
    }
    Ok(())
}

/// Rewrites every text index of `stored` in the target from its payloads (an increment
/// carries no text rows: they are derived), and drops the tables of text indexes that `old`
/// had and `stored` no longer has.
pub(crate) fn rebuild_texts(
    txn: &redb::WriteTransaction,
    old: Option<&StoredCollection>,
    stored: &StoredCollection,
) -> Result<()> {
    use crate::store::collection::TextDecls;
    use crate::store::schema::CollectionTables;
    if let Some(old) = old {
        let mut gone = old.clone();
        gone.config.text_indexes.retain(|field, _| {
            old.cid != stored.cid || stored.text_ids.get(field) != old.text_ids.get(field)
        });
        crate::store::text::delete_tables(txn, old.cid, &TextDecls::of(&gone))?;
    }
    let entities = txn.open_table(CollectionTables::new(stored.cid).entities())?;
    for (_, d) in TextDecls::of(stored).iter() {
        let rows = crate::store::text::expected_rows(&entities, d)?;
        crate::store::text::write_rows(txn, stored.cid, d, &rows)?;
    }
    Ok(())
}
