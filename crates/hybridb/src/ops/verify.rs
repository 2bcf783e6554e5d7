//! `verify`: cross-reference integrity of everything hybridb stores and derives.
//!
//! Checked per collection: every entity record decodes, has a vector of the right dimension
//! under the same id and a slot that maps back to it; every slot row points to an entity that
//! claims it; the in-memory slot table names exactly the stored slots; the vector index holds
//! exactly those slots; the payload index rows, stored and in memory, are exactly the ones the
//! payloads call for. Globally: the change log has no gap between the pruned prefix and
//! `last_seq`; aliases and the coordination logs are consistent ([`crate::coord`]). Problems are collected into a report; nothing here panics or stops at the first
//! problem.

use redb::{ReadableTable, ReadableTableMetadata};

use crate::db::handle::Database;
use crate::model::change::ChangeEvent;
use crate::model::entity::{decode_payload, decode_record, decode_vector};
use crate::model::error::Result;
use crate::model::id::EntityId;
use crate::query::payload::{PostingKey, decode_row, index_keys};
use crate::store::schema::{CHANGES, CollectionTables, META, META_LAST_SEQ, META_PRUNED_THROUGH};
use crate::store::writer::Command;

/// The result of [`Database::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// One entry per collection.
    pub collections: Vec<CollectionReport>,
    /// Change events stored.
    pub changes: u64,
    /// Problems outside any collection (the change log).
    pub problems: Vec<String>,
}

/// Integrity of one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionReport {
    /// Collection name.
    pub name: String,
    /// Entities stored.
    pub entities: u64,
    /// What is wrong (empty when clean).
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when no problem was found anywhere.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.collections.iter().all(|c| c.problems.is_empty())
    }
}

/// Problems past this many per collection are counted, not listed.
const MAX_LISTED: usize = 100;

fn note(problems: &mut Vec<String>, p: String) {
    if problems.len() < MAX_LISTED {
        problems.push(p);
    } else if problems.len() == MAX_LISTED {
        problems.push("... more problems not listed".into());
    }
}

impl Database {
    /// Checks the cross-references between entities, vectors, slots, the in-memory index and
    /// the change log, from one consistent snapshot (writes may go on meanwhile; the in-memory
    /// index is compared at the end, so a write racing the check can show up as a problem —
    /// verify an idle database for a definitive answer). Storage errors are returned; data
    /// problems go into the report.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.observe(crate::observe::Op::Verify, || self.verify_now())
    }

    fn verify_now(&self) -> Result<VerifyReport> {
        let shared = self.shared();
        // Strong view of the index: everything committed is applied.
        shared.progress.wait_for_committed();
        let txn = shared.begin_read()?;
        let mut report = VerifyReport::default();
        for info in self.collections() {
            let Ok(coll) = shared.collection_shared(&info.name) else {
                continue;
            };
            let mut r = CollectionReport {
                name: info.name.clone(),
                ..CollectionReport::default()
            };
            let tables = CollectionTables::new(coll.stored.cid);
            let dim = coll.stored.config.dim as usize;
            let entities = txn.open_table(tables.entities())?;
            let vectors = txn.open_table(tables.vectors())?;
            let slots = txn.open_table(tables.slots())?;
            r.entities = entities.len()?;
            let mut stored_slots: Vec<(u32, EntityId)> = Vec::new();
            let declared = coll.index.with_payload(|p| p.declared());
            let mut expected_rows: Vec<(PostingKey, u32)> = Vec::new();
            for row in entities.iter()? {
                let (k, v) = row?;
                let id = k.value();
                let header = match decode_record(v.value()) {
                    Ok((h, json)) => {
                        match decode_payload(json) {
                            Err(e) => note(&mut r.problems, format!("entity {id}: {e}")),
                            Ok(payload) if !declared.is_empty() => {
                                match index_keys(&declared, &payload) {
                                    Ok(keys) => {
                                        expected_rows.extend(keys.into_iter().map(|k| (k, h.slot)))
                                    }
                                    Err(e) => note(&mut r.problems, format!("entity {id}: {e}")),
                                }
                            }
                            Ok(_) => {}
                        }
                        h
                    }
                    Err(e) => {
                        note(&mut r.problems, format!("entity {id}: {e}"));
                        continue;
                    }
                };
                match vectors.get(id)? {
                    None if dim == 0 => {}
                    None => note(&mut r.problems, format!("entity {id} has no vector")),
                    Some(v) => {
                        if let Err(e) = decode_vector(v.value(), dim) {
                            note(&mut r.problems, format!("entity {id}: {e}"));
                        }
                    }
                }
                match slots.get(header.slot)? {
                    Some(owner) if owner.value() == id => {}
                    Some(owner) => note(
                        &mut r.problems,
                        format!("slot {} of {id} belongs to {}", header.slot, owner.value()),
                    ),
                    None => note(
                        &mut r.problems,
                        format!("slot {} of {id} is missing", header.slot),
                    ),
                }
                stored_slots.push((header.slot, id));
            }
            let expected_vectors = if dim == 0 { 0 } else { r.entities };
            if vectors.len()? != expected_vectors {
                note(
                    &mut r.problems,
                    format!("{} vectors for {} entities", vectors.len()?, r.entities),
                );
            }
            if slots.len()? != r.entities {
                note(
                    &mut r.problems,
                    format!("{} slot rows for {} entities", slots.len()?, r.entities),
                );
            }
            crate::ops::verify_named::check(&txn, &coll, &stored_slots, &mut |p| {
                note(&mut r.problems, p)
            })?;
            crate::ops::verify_named::check_texts(&txn, &coll, &mut |p| note(&mut r.problems, p))?;
            // The in-memory index against the stored slots.
            let memory = coll.index.allocated_ids();
            let mut in_memory = memory
                .iter()
                .enumerate()
                .filter(|(_, id)| **id != EntityId::MIN)
                .count();
            for &(slot, id) in &stored_slots {
                match memory.get(slot as usize) {
                    Some(m) if *m == id => in_memory -= 1,
                    _ => note(
                        &mut r.problems,
                        format!("index slot table lacks slot {slot} of {id}"),
                    ),
                }
                if coll.index.holds(slot) == Some(false) {
                    note(
                        &mut r.problems,
                        format!("HNSW graph lacks slot {slot} of {id}"),
                    );
                }
            }
            if in_memory != 0 {
                note(
                    &mut r.problems,
                    format!("index slot table holds {in_memory} slots that are not stored"),
                );
            }
            // Payload indexes: stored rows and in-memory postings against the payloads.
            expected_rows.sort();
            let mut stored_rows = Vec::new();
            for row in txn.open_table(tables.postings())?.iter()? {
                let (k, _) = row?;
                match decode_row(k.value()) {
                    Some(kr) => stored_rows.push(kr),
                    None => note(&mut r.problems, "malformed payload index row".to_string()),
                }
            }
            stored_rows.sort();
            let memory_rows = coll.index.with_payload(|p| p.rows());
            for (what, rows) in [("stored", &stored_rows), ("in-memory", &memory_rows)] {
                if *rows != expected_rows {
                    let missing = expected_rows
                        .iter()
                        .filter(|x| rows.binary_search(x).is_err())
                        .count();
                    let extra = rows
                        .iter()
                        .filter(|x| expected_rows.binary_search(x).is_err())
                        .count();
                    note(
                        &mut r.problems,
                        format!(
                            "{what} payload index: {missing} rows missing, {extra} rows not \
                             backed by a payload"
                        ),
                    );
                }
            }
            if let (allocated, Some(held)) = coll.index.counts()
                && held != allocated
            {
                note(
                    &mut r.problems,
                    format!("HNSW graph holds {held} vectors for {allocated} slots"),
                );
            }
            report.collections.push(r);
        }
        // The change log.
        let meta = txn.open_table(META)?;
        let last = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
        let pruned = meta.get(META_PRUNED_THROUGH)?.map_or(0, |v| v.value());
        let changes = txn.open_table(CHANGES)?;
        report.changes = changes.len()?;
        let mut expect = pruned + 1;
        for row in changes.iter()? {
            let (k, v) = row?;
            let seq = k.value();
            if seq != expect {
                note(
                    &mut report.problems,
                    format!("change log: expected seq {expect}, found {seq}"),
                );
            }
            match ChangeEvent::decode(v.value()) {
                Ok(e) if e.seq == seq => {}
                Ok(e) => note(
                    &mut report.problems,
                    format!("change {seq} claims seq {}", e.seq),
                ),
                Err(e) => note(&mut report.problems, format!("change {seq}: {e}")),
            }
            expect = seq + 1;
        }
        if expect != last + 1 && !(report.changes == 0 && pruned == last) {
            note(
                &mut report.problems,
                format!("change log ends at {}, last_seq is {last}", expect - 1),
            );
        }
        // Aliases and the coordination logs.
        crate::coord::check(&txn, &mut report.problems)?;
        Ok(report)
    }

    /// Rebuilds all derived state (every in-memory index, from the tables; checkpoints are
    /// discarded) and then verifies. Use it when [`Database::verify`] reports index problems.
    pub fn verify_and_repair(&self) -> Result<VerifyReport> {
        self.observe(crate::observe::Op::VerifyAndRepair, || {
            self.verify_and_repair_now()
        })
    }

    fn verify_and_repair_now(&self) -> Result<VerifyReport> {
        let dir = self.shared().checkpoint_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let shared = self.shared();
        for info in self.collections() {
            if let Ok(coll) = shared.collection_shared(&info.name) {
                self.inner()
                    .call(|reply| Command::RebuildPostings { coll, reply })?;
            }
        }
        self.inner().call(|reply| Command::Reload { reply })?;
        self.verify()
    }
}
