//! Names to collections: the in-memory copy of the `aliases` table ([`AliasMap`]), alias
//! resolution, the checks that keep aliases and collection names apart, and the
//! coordination state the write path consults ([`CoordState`]: retired collections, live
//! transactions and sagas).
//!
//! Invariants:
//! - the alias map is changed only by the writer thread right after the commit that changed the
//!   table, and reloaded whenever the writer reopens the file;
//! - resolution holds the alias map's read lock while it looks the target up in the collection
//!   catalogue, and a repoint takes the write lock, so a resolution never sees an alias pointing
//!   to a collection that is already gone;
//! - a retired collection takes no entity writes: checked on the writer thread, where retiring
//!   happens. The alias and saga APIs that change these are in `coord`.

use std::sync::Arc;

use redb::ReadableTable;

use crate::model::error::{Error, Result};
use crate::model::sync::read;
use crate::model::sync::write;
use crate::store::collection::CollectionShared;
use crate::store::schema::ALIASES;
use crate::store::schema::COORD_STAGED;
use crate::store::shared::Shared;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// In-memory coordination state of one open database.
#[derive(Debug, Default)]
pub(crate) struct CoordState {
    /// The aliases (a copy of the `aliases` table).
    pub(crate) aliases: crate::store::catalogue::AliasMap,
    /// Transactions and sagas being driven by this process right now: recovery leaves them
    /// alone.
    pub(crate) live_txns: std::sync::Mutex<std::collections::HashSet<u64>>,
    pub(crate) live_sagas: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// Collections (by internal id) that take no more entity writes: the source of a re-embed
    /// after its alias was swapped away. Set and checked on the writer thread only, so no
    /// write is committed to a collection after the job that retired it.
    pub(crate) retired: std::sync::Mutex<std::collections::HashSet<u64>>,
}

impl CoordState {
    /// Writer thread: refuses entity writes to a retired collection.
    pub(crate) fn check_writable(&self, coll: &CollectionShared) -> Result<()> {
        if crate::model::sync::lock(&self.retired).contains(&coll.stored.cid) {
            return Err(Error::CollectionReadOnly(coll.name.clone()));
        }
        Ok(())
    }

    pub(crate) fn load(redb: &redb::Database) -> Result<Self> {
        let mut retired = std::collections::HashSet::new();
        let txn = redb::ReadableDatabase::begin_read(redb)?;
        match txn.open_table(crate::store::schema::COORD_RETIRED) {
            Ok(t) => {
                for row in t.iter()? {
                    retired.insert(row?.0.value());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(CoordState {
            aliases: crate::store::catalogue::AliasMap::load(redb)?,
            retired: std::sync::Mutex::new(retired),
            ..CoordState::default()
        })
    }
}

/// The in-memory copy of the `aliases` table.
#[derive(Debug, Default)]
pub(crate) struct AliasMap {
    pub(crate) map: RwLock<BTreeMap<String, String>>,
}

impl AliasMap {
    /// Reads the table (creating it in files written before aliases existed is not needed:
    /// a missing table is an empty one).
    pub(crate) fn load(redb: &redb::Database) -> Result<Self> {
        let map = AliasMap::default();
        map.reload(redb)?;
        Ok(map)
    }

    /// Replaces the copy with the table's content (writer reopen).
    pub(crate) fn reload(&self, redb: &redb::Database) -> Result<()> {
        use redb::ReadableDatabase;
        let txn = redb.begin_read()?;
        let mut fresh = BTreeMap::new();
        match txn.open_table(ALIASES) {
            Ok(table) => {
                for row in table.iter()? {
                    let (k, v) = row?;
                    fresh.insert(k.value().to_string(), v.value().to_string());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        *write(&self.map) = fresh;
        Ok(())
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        read(&self.map).contains_key(name)
    }

    pub(crate) fn all(&self) -> Vec<(String, String)> {
        read(&self.map)
            .iter()
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect()
    }
}

impl Shared {
    /// A collection by name, or by alias: the collection if `name` names one, else the target
    /// of the alias `name`. See the module invariants for why this cannot race a repoint.
    pub(crate) fn resolve_collection(&self, name: &str) -> Result<Arc<CollectionShared>> {
        let aliases = read(&self.coord.aliases.map);
        match aliases.get(name) {
            Some(target) => self.collection_shared(target),
            None => self.collection_shared(name),
        }
    }

    /// Writer thread: refuses to create a collection under an alias's name.
    pub(crate) fn check_not_alias(&self, name: &str) -> Result<()> {
        if self.coord.aliases.contains(name) {
            return Err(Error::NameIsAlias(name.to_string()));
        }
        Ok(())
    }

    /// Writer thread, inside the dropping transaction: refuses to drop a collection that an
    /// alias points to or that holds prepared two-phase-commit writes.
    pub(crate) fn check_droppable(
        &self,
        txn: &redb::WriteTransaction,
        name: &str,
        cid: u64,
    ) -> Result<()> {
        let aliases: Vec<String> = read(&self.coord.aliases.map)
            .iter()
            .filter(|(_, target)| *target == name)
            .map(|(a, _)| a.clone())
            .collect();
        if !aliases.is_empty() {
            return Err(Error::CollectionHasAliases {
                collection: name.to_string(),
                aliases,
            });
        }
        let staged = txn.open_table(COORD_STAGED)?;
        for row in staged.iter()? {
            let (txid, batch) = row?;
            let batch = crate::store::coord_log::StagedBatch::decode(batch.value())?;
            if batch.parts.iter().any(|p| p.cid == cid) {
                return Err(Error::CollectionInUse {
                    collection: name.to_string(),
                    reason: format!(
                        "two-phase-commit transaction {} has prepared writes to it",
                        txid.value()
                    ),
                });
            }
        }
        Ok(())
    }
}
