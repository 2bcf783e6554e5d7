//! Incremental backups: the changes since a full (or earlier incremental) backup's seq.
//!
//! An increment is a redb file holding, from one snapshot at seq `S`: the change events in
//! `(base, S]`, the catalogue and feed cursors at `S`, and for every entity an event in that
//! window names, its record and vector at `S` if it still exists. `meta` marks the file with
//! its `base`, so it can never be opened as a database by mistake.
//!
//! Applying an increment to a restored backup at seq `base` (one write transaction on the
//! closed target file): collections missing from the increment's catalogue, or present under
//! another internal id, are dropped; every named entity is removed (record, vector, slot row,
//! payload index rows) and written again from the increment if it exists at `S`; the change
//! events, catalogue, cursors and `last_seq` are copied. The result equals the source at `S`,
//! table for table, so its index checkpoints replay the copied events on open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::db::handle::Database;
use crate::model::change::ChangeEvent;
use crate::model::config::StoredCollection;
use crate::model::entity::{decode_payload, decode_record};
use crate::model::error::{Error, Result, corrupted};
use crate::model::id::EntityId;
use crate::ops::backup::BackupInfo;
use crate::query::payload::{encode_row, index_keys};
use crate::store::schema::{
    CHANGES, COLLECTIONS, CollectionTables, FEED_CURSORS, FORMAT_VERSION, META,
    META_FORMAT_VERSION, META_INCREMENT_BASE, META_LAST_CID, META_LAST_SEQ, META_PRUNED_THROUGH,
};

fn invalid(msg: impl Into<String>) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        msg.into(),
    ))
}

fn partial_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("partial")
}

impl Database {
    /// Writes the changes after seq `since` (the `seq` of an earlier [`Database::backup`] or
    /// increment) to a new file at `path`, from one consistent snapshot, while writes go on.
    /// Fails with [`Error::ChangesPruned`] if retention removed some of those changes (take a
    /// full backup then, or keep a feed cursor at the backup's seq to hold them).
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
    /// let db = Database::open(dir.path().join("live.redb"))?;
    /// let c = db.create_collection("c", CollectionConfig::new(2, Metric::L2))?;
    /// c.upsert(Entity::new(EntityId::from_key("a"), serde_json::json!({}), vec![1.0, 0.0]))?;
    /// let full = db.backup(dir.path().join("full.redb"), |_| {})?;
    /// c.upsert(Entity::new(EntityId::from_key("b"), serde_json::json!({}), vec![0.0, 1.0]))?;
    /// let inc = db.backup_incremental(dir.path().join("inc1.redb"), full.seq, |_| {})?;
    /// assert_eq!(inc.entities, 1);
    ///
    /// let target = dir.path().join("restored.redb");
    /// Database::restore(dir.path().join("full.redb"), &target, false)?;
    /// let report = Database::apply_incremental(dir.path().join("inc1.redb"), &target)?;
    /// assert!(report.is_clean());
    /// assert_eq!(Database::open(&target)?.collection("c")?.count()?, 2);
    /// # Ok(()) }
    /// ```
    pub fn backup_incremental(
        &self,
        path: impl AsRef<Path>,
        since: u64,
        progress: impl FnMut(u64),
    ) -> Result<BackupInfo> {
        self.observe(crate::observe::Op::BackupIncremental, || {
            self.backup_incremental_now(path, since, progress)
        })
    }

    fn backup_incremental_now(
        &self,
        path: impl AsRef<Path>,
        since: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<BackupInfo> {
        let path = path.as_ref();
        if path.exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("backup target {} already exists", path.display()),
            )));
        }
        let snap = self.shared().begin_read()?;
        let meta = snap.open_table(META)?;
        let seq = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
        let pruned = meta.get(META_PRUNED_THROUGH)?.map_or(0, |v| v.value());
        let last_cid = meta.get(META_LAST_CID)?.map_or(0, |v| v.value());
        if since > seq {
            return Err(invalid(format!(
                "incremental backup since seq {since}, but the database is at seq {seq}"
            )));
        }
        if since < pruned {
            return Err(Error::ChangesPruned {
                requested_after: since,
                first_available: pruned + 1,
            });
        }
        // Entities named by the events of the window, per collection name.
        let mut touched: BTreeMap<String, BTreeSet<EntityId>> = BTreeMap::new();
        let changes = snap.open_table(CHANGES)?;
        let mut events = Vec::new();
        for row in changes.range(since.saturating_add(1)..)? {
            let (k, v) = row?;
            let event = ChangeEvent::decode(v.value())?;
            if let Some(id) = event.id {
                touched
                    .entry(event.collection.clone())
                    .or_default()
                    .insert(id);
            }
            events.push((k.value(), v.value().to_vec()));
        }
        let partial = partial_path(path);
        let _ = std::fs::remove_file(&partial);
        let dst = redb::Database::create(&partial)?;
        let mut txn = dst.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| Error::Storage(e.into()))?;
        let mut entities = 0u64;
        {
            let mut out_meta = txn.open_table(META)?;
            out_meta.insert(META_FORMAT_VERSION, FORMAT_VERSION)?;
            out_meta.insert(META_INCREMENT_BASE, since)?;
            out_meta.insert(META_LAST_SEQ, seq)?;
            out_meta.insert(META_PRUNED_THROUGH, pruned)?;
            out_meta.insert(META_LAST_CID, last_cid)?;
            let mut out_changes = txn.open_table(CHANGES)?;
            for (k, v) in &events {
                out_changes.insert(*k, v.as_slice())?;
            }
            let mut out_cursors = txn.open_table(FEED_CURSORS)?;
            for row in snap.open_table(FEED_CURSORS)?.iter()? {
                let (k, v) = row?;
                out_cursors.insert(k.value(), v.value())?;
            }
            drop(out_cursors);
            crate::coord::copy_tables(&snap, &txn, &mut out_meta)?;
            let mut out_colls = txn.open_table(COLLECTIONS)?;
            for row in snap.open_table(COLLECTIONS)?.iter()? {
                let (name, value) = row?;
                out_colls.insert(name.value(), value.value())?;
                let stored = StoredCollection::decode(value.value())?;
                let tables = CollectionTables::new(stored.cid);
                let src_e = snap.open_table(tables.entities())?;
                let src_v = snap.open_table(tables.vectors())?;
                let mut out_e = txn.open_table(tables.entities())?;
                let mut out_v = txn.open_table(tables.vectors())?;
                let has_default = stored.config.has_default_vector();
                for &id in touched.get(name.value()).into_iter().flatten() {
                    if let Some(rec) = src_e.get(id)? {
                        out_e.insert(id, rec.value())?;
                        if has_default {
                            let vec = src_v
                                .get(id)?
                                .ok_or_else(|| corrupted(format!("entity {id} has no vector")))?;
                            out_v.insert(id, vec.value())?;
                        }
                        entities += 1;
                        progress(entities);
                    }
                }
                if let Some(ids) = touched.get(name.value()) {
                    crate::ops::incremental_named::copy_rows(&snap, &txn, &stored, ids)?;
                }
            }
        }
        txn.commit()?;
        let seal = dst.begin_write()?;
        seal.commit()?;
        drop(dst);
        std::fs::rename(&partial, path)?;
        Ok(BackupInfo {
            seq,
            entities,
            checkpoints: 0,
            base: Some(since),
        })
    }

    /// Applies an increment made by [`Database::backup_incremental`] to `target`, a closed
    /// database at exactly the increment's base seq (a restored backup, or one to which the
    /// earlier increments were applied, in order). All or nothing: one write transaction.
    /// The result is opened and verified before this returns.
    pub fn apply_incremental(
        increment: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<crate::ops::verify::VerifyReport> {
        crate::observe::op(
            crate::observe::Op::ApplyIncremental,
            &crate::observe::OpMetrics::new(""),
            1,
            || Self::apply_incremental_now(increment, target),
        )
    }

    fn apply_incremental_now(
        increment: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<crate::ops::verify::VerifyReport> {
        let (increment, target) = (increment.as_ref(), target.as_ref());
        let inc = redb::Database::open(increment).map_err(redb::Error::from)?;
        let itxn = inc.begin_read()?;
        let imeta = itxn.open_table(META)?;
        let base = imeta
            .get(META_INCREMENT_BASE)?
            .map(|v| v.value())
            .ok_or_else(|| {
                invalid(format!(
                    "{} is not an incremental backup",
                    increment.display()
                ))
            })?;
        let seq = imeta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
        let last_cid = imeta.get(META_LAST_CID)?.map_or(0, |v| v.value());
        let db = redb::Database::open(target).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
                path: target.to_path_buf(),
            },
            other => Error::Storage(other.into()),
        })?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            if meta.get(META_INCREMENT_BASE)?.is_some() {
                return Err(invalid(format!(
                    "{} is an incremental backup, not a database",
                    target.display()
                )));
            }
            let at = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
            if at != base {
                return Err(invalid(format!(
                    "the increment starts after seq {base}, but {} is at seq {at}",
                    target.display()
                )));
            }
            let new_catalogue = catalogue(&itxn.open_table(COLLECTIONS)?)?;
            let old_catalogue = catalogue(&txn.open_table(COLLECTIONS)?)?;
            // Collections gone, or replaced by another of the same name.
            for (name, old) in &old_catalogue {
                crate::ops::incremental_named::drop_removed(&txn, old, new_catalogue.get(name))?;
                if new_catalogue.get(name).map(|n| n.cid) != Some(old.cid) {
                    let t = CollectionTables::new(old.cid);
                    txn.delete_table(t.entities())?;
                    txn.delete_table(t.vectors())?;
                    txn.delete_table(t.slots())?;
                    txn.delete_table(t.postings())?;
                }
            }
            // Entities named in the window, per collection name.
            let mut touched: BTreeMap<String, BTreeSet<EntityId>> = BTreeMap::new();
            {
                let mut changes = txn.open_table(CHANGES)?;
                for row in itxn.open_table(CHANGES)?.iter()? {
                    let (k, v) = row?;
                    let event = ChangeEvent::decode(v.value())?;
                    if let Some(id) = event.id {
                        touched.entry(event.collection).or_default().insert(id);
                    }
                    changes.insert(k.value(), v.value())?;
                }
            }
            for (name, stored) in &new_catalogue {
                let t = CollectionTables::new(stored.cid);
                let same = old_catalogue.get(name).map(|o| o.cid) == Some(stored.cid);
                let reindex = !same
                    || old_catalogue.get(name).map(|o| o.config_version)
                        != Some(stored.config_version);
                let declared = &stored.config.payload_indexes;
                let mut entities = txn.open_table(t.entities())?;
                let mut vectors = txn.open_table(t.vectors())?;
                let mut slots = txn.open_table(t.slots())?;
                let mut postings = txn.open_table(t.postings())?;
                let ids = touched.get(name.as_str()).cloned().unwrap_or_default();
                // Removals first: a slot freed by one entity may be taken by another.
                let mut old_slots = std::collections::HashMap::new();
                let mut new_slots = std::collections::HashMap::new();
                for &id in &ids {
                    if let Some(old) = entities.remove(id)? {
                        let (header, json) = decode_record(old.value())?;
                        old_slots.insert(id, header.slot);
                        if !reindex && !declared.is_empty() {
                            let keys = index_keys(declared, &decode_payload(json)?)
                                .map_err(|p| corrupted(format!("entity {id}: {p}")))?;
                            for k in keys {
                                postings.remove(encode_row(&k, header.slot).as_slice())?;
                            }
                        }
                        slots.remove(header.slot)?;
                    }
                    vectors.remove(id)?;
                }
                let ie = itxn.open_table(t.entities())?;
                let iv = itxn.open_table(t.vectors())?;
                for &id in &ids {
                    let Some(rec) = ie.get(id)? else { continue };
                    let (header, json) = decode_record(rec.value())?;
                    entities.insert(id, rec.value())?;
                    if stored.config.has_default_vector() {
                        let vec = iv
                            .get(id)?
                            .ok_or_else(|| corrupted(format!("increment: {id} has no vector")))?;
                        vectors.insert(id, vec.value())?;
                    }
                    slots.insert(header.slot, id)?;
                    new_slots.insert(id, header.slot);
                    if !reindex && !declared.is_empty() {
                        let keys = index_keys(declared, &decode_payload(json)?)
                            .map_err(|p| corrupted(format!("entity {id}: {p}")))?;
                        for k in keys {
                            postings.insert(encode_row(&k, header.slot).as_slice(), ())?;
                        }
                    }
                }
                crate::ops::incremental_named::apply_rows(
                    &itxn, &txn, stored, &ids, &old_slots, &new_slots,
                )?;
                drop((entities, vectors, slots));
                crate::ops::incremental_named::rebuild_texts(
                    &txn,
                    old_catalogue.get(name),
                    stored,
                )?;
                let entities = txn.open_table(t.entities())?;
                let slots = txn.open_table(t.slots())?;
                if reindex {
                    postings.retain(|_, _| false)?;
                    for row in entities.iter()? {
                        let (id, rec) = row?;
                        let (header, json) = decode_record(rec.value())?;
                        let keys = index_keys(declared, &decode_payload(json)?)
                            .map_err(|p| corrupted(format!("entity {}: {p}", id.value())))?;
                        for k in keys {
                            postings.insert(encode_row(&k, header.slot).as_slice(), ())?;
                        }
                    }
                }
                if entities.len()? != slots.len()? {
                    return Err(corrupted(format!(
                        "collection {name}: the increment does not fit this database"
                    )));
                }
            }
            let mut colls = txn.open_table(COLLECTIONS)?;
            colls.retain(|_, _| false)?;
            for (name, stored) in &new_catalogue {
                colls.insert(name.as_str(), stored.encode().as_slice())?;
            }
            let mut cursors = txn.open_table(FEED_CURSORS)?;
            cursors.retain(|_, _| false)?;
            for row in itxn.open_table(FEED_CURSORS)?.iter()? {
                let (k, v) = row?;
                cursors.insert(k.value(), v.value())?;
            }
            drop(cursors);
            crate::coord::copy_tables(&itxn, &txn, &mut meta)?;
            meta.insert(META_LAST_SEQ, seq)?;
            meta.insert(META_LAST_CID, last_cid)?;
        }
        txn.commit()?;
        drop(db);
        drop(itxn);
        drop(inc);
        Database::open(target)?.verify()
    }
}

/// A `collections` table as name to stored config.
fn catalogue(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<BTreeMap<String, StoredCollection>> {
    table
        .iter()?
        .map(|row| {
            let (k, v) = row?;
            Ok((k.value().to_string(), StoredCollection::decode(v.value())?))
        })
        .collect()
}
