//! Online, consistent backup and restore.
//!
//! redb has no safe file copy while writes run, so a backup opens ONE read transaction (a
//! snapshot at some sequence number S) and copies every table into a fresh redb file, in
//! chunks, while writes go on. The HNSW checkpoints are copied too when they cover no more
//! than S (a restored database replays the changes after them, which the snapshot holds);
//! newer ones are left out and the restored index is rebuilt instead. The result is an
//! ordinary hybridb database file.
//!
//! Invariant: the backup file appears under its final name only when complete (written as
//! `<path>.partial`, fsynced, renamed).

use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition};

use crate::db::handle::Database;
use crate::index::checkpoint;
use crate::model::config::StoredCollection;
use crate::model::error::{Error, Result};
use crate::model::id::EntityId;
use crate::store::schema::{
    ALIASES, CHANGES, COLLECTIONS, COORD_SAGAS, COORD_STAGED, COORD_TXNS, CollectionTables,
    FEED_CURSORS, META, META_LAST_SEQ,
};

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Sequence number of the snapshot: the backup holds exactly the changes up to it.
    pub seq: u64,
    /// Entities copied, all collections together.
    pub entities: u64,
    /// Index checkpoints copied (the others are rebuilt on first open; increments carry none).
    pub checkpoints: usize,
    /// For an incremental backup: the seq it starts after (`None` for a full backup). For an
    /// increment, `entities` counts the entity records it carries.
    pub base: Option<u64>,
}

/// Rows copied per write transaction of the backup file.
const CHUNK: usize = 20_000;

fn copy_table<K, V>(
    src: &redb::ReadTransaction,
    dst: &redb::Database,
    def: TableDefinition<K, V>,
    copied: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
    for<'a> V::SelfType<'a>: std::borrow::Borrow<V::SelfType<'a>>,
{
    let table = src.open_table(def)?;
    let mut rows = table.iter()?;
    loop {
        let mut txn = dst.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| Error::Storage(e.into()))?;
        let mut n = 0;
        {
            let mut out = txn.open_table(def)?;
            for row in rows.by_ref() {
                let (k, v) = row?;
                out.insert(k.value(), v.value())?;
                n += 1;
                if n == CHUNK {
                    break;
                }
            }
        }
        txn.commit()?;
        *copied += n as u64;
        progress(*copied);
        if n < CHUNK {
            return Ok(());
        }
    }
}

fn index_dir_of(path: &Path) -> PathBuf {
    checkpoint::dir_for(path)
}

impl Database {
    /// Writes a consistent copy of the whole database to `path` while writes go on, and
    /// returns the sequence number it covers. `progress` is called with the number of rows
    /// copied so far. Fails if `path` (or its checkpoint folder) already exists.
    pub fn backup(&self, path: impl AsRef<Path>, progress: impl FnMut(u64)) -> Result<BackupInfo> {
        self.observe(crate::observe::Op::Backup, || {
            self.backup_now(path, progress)
        })
    }

    fn backup_now(
        &self,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(u64),
    ) -> Result<BackupInfo> {
        let path = path.as_ref();
        let idx_dir = index_dir_of(path);
        if path.exists() || idx_dir.exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("backup target {} already exists", path.display()),
            )));
        }
        let partial = path.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let shared = self.shared();
        let snap = shared.begin_read()?;
        let seq = snap
            .open_table(META)?
            .get(META_LAST_SEQ)?
            .map_or(0, |v| v.value());
        let dst = redb::Database::create(&partial)?;
        let mut copied = 0u64;
        copy_table(&snap, &dst, META, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, COLLECTIONS, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, CHANGES, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, FEED_CURSORS, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, ALIASES, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, COORD_TXNS, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, COORD_STAGED, &mut copied, &mut progress)?;
        copy_table(&snap, &dst, COORD_SAGAS, &mut copied, &mut progress)?;
        copy_table(
            &snap,
            &dst,
            crate::store::schema::COORD_RETIRED,
            &mut copied,
            &mut progress,
        )?;
        let mut entities = 0u64;
        let mut cids = Vec::new();
        for row in snap.open_table(COLLECTIONS)?.iter()? {
            let (_, v) = row?;
            let stored = StoredCollection::decode(v.value())?;
            let t = CollectionTables::new(stored.cid);
            let before = copied;
            copy_table(&snap, &dst, t.entities(), &mut copied, &mut progress)?;
            entities += copied - before;
            copy_table(&snap, &dst, t.vectors(), &mut copied, &mut progress)?;
            copy_table::<u32, EntityId>(&snap, &dst, t.slots(), &mut copied, &mut progress)?;
            copy_table::<&[u8], ()>(&snap, &dst, t.postings(), &mut copied, &mut progress)?;
            for (_, d) in crate::store::collection::TextDecls::of(&stored).iter() {
                let t = crate::store::schema::TextTables::new(stored.cid, d.tid);
                copy_table(&snap, &dst, t.terms(), &mut copied, &mut progress)?;
                copy_table(&snap, &dst, t.lengths(), &mut copied, &mut progress)?;
            }
            for (_, d) in crate::store::collection::NamedDecls::of(&stored).iter() {
                let n = crate::store::schema::NamedTables::new(stored.cid, d.vid);
                copy_table(&snap, &dst, n.vectors(), &mut copied, &mut progress)?;
                if let crate::model::config::VectorConfig::Sparse { .. } = d.config {
                    copy_table(&snap, &dst, n.postings(), &mut copied, &mut progress)?;
                }
            }
            cids.push(stored);
        }
        drop(snap);
        // One durable commit seals everything written above.
        let seal = dst.begin_write()?;
        seal.commit()?;
        drop(dst);
        // Checkpoints that the snapshot can replay from.
        let mut checkpoints = 0;
        let src_dir = shared.checkpoint_dir();
        for stored in &cids {
            let mut files = vec![(
                checkpoint::path_for(&src_dir, stored.cid),
                checkpoint::path_for(&idx_dir, stored.cid),
                crate::store::load::config_hash(stored),
            )];
            for (_, d) in crate::store::collection::NamedDecls::of(stored).iter() {
                files.push((
                    checkpoint::named_path_for(&src_dir, stored.cid, d.vid),
                    checkpoint::named_path_for(&idx_dir, stored.cid, d.vid),
                    crate::store::load_named::config_hash(stored.cid, d),
                ));
            }
            for (from, to, hash) in files {
                let Ok(bytes) = std::fs::read(&from) else {
                    continue;
                };
                if checkpoint::decode(&bytes, stored.cid, hash, seq).is_ok() {
                    checkpoint::write_atomic(&to, &bytes)?;
                    checkpoints += 1;
                }
            }
        }
        std::fs::rename(&partial, path)?;
        if let Some(parent) = path.parent()
            && let Ok(d) = std::fs::File::open(parent)
        {
            let _ = d.sync_all();
        }
        Ok(BackupInfo {
            seq,
            entities,
            checkpoints,
            base: None,
        })
    }

    /// Restores a backup made by [`Database::backup`] to `target` (which must not be open).
    /// Refuses to replace an existing `target` unless `overwrite` is true. The restored copy
    /// is opened and verified before this returns; if it cannot be opened, the previous
    /// `target` (if any) is put back and the error returned.
    pub fn restore(
        backup: impl AsRef<Path>,
        target: impl AsRef<Path>,
        overwrite: bool,
    ) -> Result<crate::ops::verify::VerifyReport> {
        crate::observe::op(
            crate::observe::Op::Restore,
            &crate::observe::OpMetrics::new(""),
            1,
            || Self::restore_now(backup, target, overwrite),
        )
    }

    fn restore_now(
        backup: impl AsRef<Path>,
        target: impl AsRef<Path>,
        overwrite: bool,
    ) -> Result<crate::ops::verify::VerifyReport> {
        let (backup, target) = (backup.as_ref(), target.as_ref());
        if !backup.is_file() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("backup {} not found", backup.display()),
            )));
        }
        let target_idx = index_dir_of(target);
        let exists = target.exists() || target_idx.exists();
        if exists && !overwrite {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists; pass overwrite to replace it", target.display()),
            )));
        }
        let tmp = target.with_extension("restoring");
        std::fs::copy(backup, &tmp)?;
        // Keep the old target aside until the restored one has opened.
        let old = target.with_extension("before-restore");
        let old_idx = index_dir_of(&old);
        if target.exists() {
            std::fs::rename(target, &old)?;
        }
        if target_idx.exists() {
            std::fs::rename(&target_idx, &old_idx)?;
        }
        let put_back = || {
            let _ = std::fs::remove_file(target);
            let _ = std::fs::remove_dir_all(&target_idx);
            let _ = std::fs::rename(&old, target);
            let _ = std::fs::rename(&old_idx, &target_idx);
        };
        let restored = (|| -> Result<crate::ops::verify::VerifyReport> {
            std::fs::rename(&tmp, target)?;
            let backup_idx = index_dir_of(backup);
            if backup_idx.is_dir() {
                std::fs::create_dir_all(&target_idx)?;
                for f in std::fs::read_dir(&backup_idx)? {
                    let f = f?;
                    std::fs::copy(f.path(), target_idx.join(f.file_name()))?;
                }
            }
            Database::open(target)?.verify()
        })();
        match restored {
            Ok(report) => {
                let _ = std::fs::remove_file(&old);
                let _ = std::fs::remove_dir_all(&old_idx);
                Ok(report)
            }
            Err(e) => {
                put_back();
                Err(e)
            }
        }
    }
}
