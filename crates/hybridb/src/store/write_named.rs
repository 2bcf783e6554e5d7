//! The named-vector part of a write: checking an upsert's named vectors (step 1 of
//! [`crate::store::write`]) and writing them, with their sparse postings, in the group's
//! transaction (step 3).
//!
//! Invariants: an upsert replaces the entity, so a declared vector it does not carry is
//! removed; a sparse vector's postings rows `(dimension, slot)` are exactly its non-zeros, and
//! change in the same transaction as its row; unchanged vectors are not rewritten (no index
//! churn).

use std::sync::Arc;

use redb::{ReadableTable, Table, WriteTransaction};

use crate::model::config::VectorConfig;
use crate::model::entity::{Entity, NamedVector, check_named, decode_sparse, index_form};
use crate::model::error::{EntityProblem, Result};
use crate::model::id::EntityId;
use crate::query::state::Apply;
use crate::store::collection::{Declared, NamedDecls};
use crate::store::schema::NamedTables;

/// The new value of one declared vector: its stored bytes and its in-memory form (dense in
/// index form), or `None` when the entity does not have it.
pub(crate) type NewValue = Option<(Vec<u8>, NamedVector)>;

/// Step 1 for an upsert: checks the entity's named vectors against the declarations and
/// returns the new value of every declared vector, in declaration order.
pub(crate) fn check_upsert(
    decls: &NamedDecls,
    entity: &Entity,
) -> Result<Vec<NewValue>, EntityProblem> {
    for name in entity.vectors.keys() {
        if decls.get(name).is_none() {
            return Err(EntityProblem::UnknownVector { name: name.clone() });
        }
    }
    decls
        .iter()
        .map(|(name, decl)| match entity.vectors.get(name) {
            None => Ok(None),
            Some(value) => {
                let bytes = check_named(name, value, Some(&decl.config))?;
                let value = match (value, decl.config) {
                    (NamedVector::Dense(v), VectorConfig::Dense { metric, .. }) => {
                        NamedVector::Dense(index_form(v, metric))
                    }
                    (v, _) => v.clone(),
                };
                Ok(Some((bytes, value)))
            }
        })
        .collect()
}

/// A declared vector's tables, open in a write transaction.
struct Open<'t> {
    name: Arc<str>,
    vectors: Table<'t, EntityId, &'static [u8]>,
    postings: Option<Table<'t, (u32, u32), f32>>,
}

/// Every declared vector's tables, open for one write group's command.
pub(crate) struct NamedWriter<'t> {
    open: Vec<Open<'t>>,
}

impl<'t> NamedWriter<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction, cid: u64, decls: &NamedDecls) -> Result<Self> {
        let open = decls
            .iter()
            .map(|(_, d)| open_one(txn, cid, d))
            .collect::<Result<_>>()?;
        Ok(NamedWriter { open })
    }

    /// Writes the new values of an upsert for the entity `id` in `slot` (see
    /// [`check_upsert`]) and pushes their index changes. Returns whether any vector changed.
    pub(crate) fn upsert(
        &mut self,
        id: EntityId,
        slot: u32,
        values: &[NewValue],
        applies: &mut Vec<Apply>,
    ) -> Result<bool> {
        let mut changed = false;
        for (open, new) in self.open.iter_mut().zip(values) {
            let old = open.vectors.get(id)?.map(|v| v.value().to_vec());
            let same = match (&old, new) {
                (None, None) => true,
                (Some(old), Some((bytes, _))) => old == bytes,
                _ => false,
            };
            if same {
                continue;
            }
            changed = true;
            if let (Some(postings), Some(old)) = (open.postings.as_mut(), &old) {
                for dim in decode_sparse(old)?.indices {
                    postings.remove((dim, slot))?;
                }
            }
            match new {
                Some((bytes, value)) => {
                    open.vectors.insert(id, bytes.as_slice())?;
                    if let (Some(postings), NamedVector::Sparse(v)) =
                        (open.postings.as_mut(), value)
                    {
                        for (&dim, &w) in v.indices.iter().zip(&v.values) {
                            postings.insert((dim, slot), w)?;
                        }
                    }
                    applies.push(Apply::SetNamed {
                        slot,
                        name: Arc::clone(&open.name),
                        value: value.clone(),
                    });
                }
                None => {
                    open.vectors.remove(id)?;
                    applies.push(Apply::RemoveNamed {
                        slot,
                        name: Arc::clone(&open.name),
                    });
                }
            }
        }
        Ok(changed)
    }

    /// Removes every named vector of the deleted entity `id` that was in `slot` (the index
    /// forgets them with the slot).
    pub(crate) fn delete(&mut self, id: EntityId, slot: u32) -> Result<()> {
        for open in &mut self.open {
            let old = open.vectors.remove(id)?.map(|v| v.value().to_vec());
            if let (Some(postings), Some(old)) = (open.postings.as_mut(), old) {
                for dim in decode_sparse(&old)?.indices {
                    postings.remove((dim, slot))?;
                }
            }
        }
        Ok(())
    }
}

fn open_one<'t>(txn: &'t WriteTransaction, cid: u64, d: &Declared) -> Result<Open<'t>> {
    let tables = NamedTables::new(cid, d.vid);
    let postings = match d.config {
        VectorConfig::Sparse { .. } => Some(txn.open_table(tables.postings())?),
        VectorConfig::Dense { .. } => None,
    };
    Ok(Open {
        name: Arc::clone(&d.name),
        vectors: txn.open_table(tables.vectors())?,
        postings,
    })
}
