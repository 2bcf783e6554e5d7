//! `verify` for named vectors: every stored named vector belongs to an existing entity and
//! decodes to its declared kind and dimension; a sparse vector's postings rows are exactly its
//! non-zeros; each in-memory index holds exactly the stored vectors (same slots, and for
//! sparse vectors the same values).

use std::collections::{BTreeSet, HashMap};

use redb::ReadableTable;

use crate::model::entity::{NamedVector, decode_named};
use crate::model::error::Result;
use crate::model::id::EntityId;
use crate::query::state::Named;
use crate::store::collection::CollectionShared;
use crate::store::schema::NamedTables;

/// Checks the named vectors of `coll`, whose entities are `stored_slots` (`(slot, id)`), in
/// `txn`; reports each problem through `note`.
pub(crate) fn check(
    txn: &redb::ReadTransaction,
    coll: &CollectionShared,
    stored_slots: &[(u32, EntityId)],
    note: &mut dyn FnMut(String),
) -> Result<()> {
    let slot_of: HashMap<EntityId, u32> = stored_slots.iter().map(|&(s, id)| (id, s)).collect();
    for (name, decl) in coll.named().iter() {
        let tables = NamedTables::new(coll.stored.cid, decl.vid);
        let mut expected_postings = BTreeSet::new();
        let mut stored: Vec<(u32, NamedVector)> = Vec::new();
        for row in txn.open_table(tables.vectors())?.iter()? {
            let (id, bytes) = row?;
            let id = id.value();
            let Some(&slot) = slot_of.get(&id) else {
                note(format!(
                    "vector {name:?} of entity {id}, which does not exist"
                ));
                continue;
            };
            match decode_named(bytes.value(), &decl.config) {
                Ok(v) => {
                    if let NamedVector::Sparse(s) = &v {
                        for (&dim, &w) in s.indices.iter().zip(&s.values) {
                            expected_postings.insert((dim, slot, w.to_bits()));
                        }
                    }
                    stored.push((slot, v));
                }
                Err(e) => note(format!("vector {name:?} of entity {id}: {e}")),
            }
        }
        if let crate::model::config::VectorConfig::Sparse { .. } = decl.config {
            let mut rows = BTreeSet::new();
            for row in txn.open_table(tables.postings())?.iter()? {
                let (k, w) = row?;
                let (dim, slot) = k.value();
                rows.insert((dim, slot, w.value().to_bits()));
            }
            if rows != expected_postings {
                note(format!(
                    "sparse vector {name:?}: {} postings rows missing, {} extra",
                    expected_postings.difference(&rows).count(),
                    rows.difference(&expected_postings).count()
                ));
            }
        }
        let problem = coll
            .index
            .with_named(|named| match named.get(name.as_str()) {
                None => Some("has no in-memory index".to_string()),
                Some(index) if index.len() != stored.len() => Some(format!(
                    "in-memory index holds {} vectors, {} are stored",
                    index.len(),
                    stored.len()
                )),
                Some(Named::Dense(d)) => stored
                    .iter()
                    .find(|(slot, _)| !d.present.contains(*slot))
                    .map(|(slot, _)| format!("in-memory index lacks slot {slot}")),
                Some(Named::Sparse(s)) => stored
                    .iter()
                    .find(|(slot, v)| match v {
                        NamedVector::Sparse(v) => s.index.get(*slot) != Some(v),
                        NamedVector::Dense(_) => true,
                    })
                    .map(|(slot, _)| format!("in-memory index differs at slot {slot}")),
            });
        if let Some(p) = problem {
            note(format!("vector {name:?}: {p}"));
        }
    }
    Ok(())
}

/// Checks the text indexes of `coll` in `txn`: the stored rows are exactly those the payloads
/// call for, and each in-memory index holds one document per stored length row.
pub(crate) fn check_texts(
    txn: &redb::ReadTransaction,
    coll: &CollectionShared,
    note: &mut dyn FnMut(String),
) -> Result<()> {
    let entities =
        txn.open_table(crate::store::schema::CollectionTables::new(coll.stored.cid).entities())?;
    for (field, d) in coll.texts().iter() {
        let t = crate::store::schema::TextTables::new(coll.stored.cid, d.tid);
        let (want_terms, want_lengths) = crate::store::text::expected_rows(&entities, d)?;
        let mut terms = std::collections::BTreeMap::new();
        for row in txn.open_table(t.terms())?.iter()? {
            let (k, tf) = row?;
            let (term, slot) = k.value();
            terms.insert((term.to_string(), slot), tf.value());
        }
        let mut lengths = std::collections::BTreeMap::new();
        for row in txn.open_table(t.lengths())?.iter()? {
            let (slot, len) = row?;
            lengths.insert(slot.value(), len.value());
        }
        if terms != want_terms || lengths != want_lengths {
            note(format!(
                "text index {field:?}: stored rows differ from the payloads ({} term rows, \
                 {} expected)",
                terms.len(),
                want_terms.len()
            ));
        }
        let held = coll
            .index
            .with_texts(|texts| texts.get(field.as_str()).map(|x| x.index.len()));
        if held != Some(lengths.len()) {
            note(format!(
                "text index {field:?}: in-memory index holds {held:?} documents, {} stored",
                lengths.len()
            ));
        }
    }
    Ok(())
}
