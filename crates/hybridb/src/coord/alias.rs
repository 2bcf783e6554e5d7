//! Collection aliases: a second name that resolves to a collection wherever a collection name is
//! accepted ([`Database::collection`], and so every server route), and that can be repointed
//! atomically.
//!
//! Invariants:
//! - the `aliases` table (alias -> collection name) is the source of truth; the in-memory
//!   [`AliasMap`] is a copy, changed only by the writer thread right after the commit that
//!   changed the table, and reloaded whenever the writer reopens the file;
//! - alias names and collection names never collide: creating either checks the other on the
//!   writer thread, where both catalogues are exact;
//! - every alias points to an existing collection: a collection with aliases cannot be dropped
//!   ([`Error::CollectionHasAliases`]) and an alias can only be pointed at an existing one;
//! - resolution holds the alias map's read lock while it looks the target up in the
//!   collection catalogue, and a repoint takes the write lock, so a resolution never sees an
//!   alias pointing to a collection that is already gone.
//!
//! A [`crate::Collection`] handle is bound to the collection it resolved to: after a repoint,
//! `db.collection("alias")` gives the new target, while handles obtained before keep reading
//! the old one until it is dropped. Code that must follow an alias resolves it per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::ReadableTable;

use crate::db::collection::Collection;
use crate::db::handle::Database;
use crate::model::config::validate_collection_name;
use crate::model::error::{Error, Result};
use crate::model::sync::{read, write};
use crate::observe::Op;
use crate::store::schema::{ALIASES, COORD_STAGED};
use crate::store::shared::Shared;

/// Where an alias points, as listed by [`Database::aliases`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasInfo {
    /// The alias.
    pub alias: String,
    /// The collection it resolves to.
    pub collection: String,
}

impl Shared {
    /// Writer thread: creates (`must_exist: Some(false)`), repoints (`None`: either) or
    /// replaces (`Some(true)`) an alias in one transaction. Returns the previous target.
    fn set_alias_txn(
        &self,
        alias: &str,
        collection: &str,
        must_exist: Option<bool>,
    ) -> Result<Option<String>> {
        if self.collection_shared(alias).is_ok() {
            return Err(Error::NameIsCollection(alias.to_string()));
        }
        // The target must be a real collection (aliases never chain).
        self.collection_shared(collection)?;
        // Only this (writer) thread changes the map, so it cannot change under us here.
        let previous = read(&self.coord.aliases.map).get(alias).cloned();
        match (must_exist, &previous) {
            (Some(false), Some(_)) => return Err(Error::AliasExists(alias.to_string())),
            (Some(true), None) => return Err(Error::AliasNotFound(alias.to_string())),
            _ => {}
        }
        let txn = self.redb()?.begin_write()?;
        txn.open_table(ALIASES)?.insert(alias, collection)?;
        crate::coord::commit_immediate(self, txn)?;
        write(&self.coord.aliases.map).insert(alias.to_string(), collection.to_string());
        Ok(previous)
    }

    /// Writer thread: retires `source`: from this job on it refuses entity writes
    /// ([`Error::CollectionReadOnly`]). Declines with [`Error::CollectionInUse`] while a
    /// prepared two-phase-commit transaction holds writes to it (they would land after).
    pub(crate) fn retire(&self, source: &str) -> Result<()> {
        let src = self.collection_shared(source)?;
        let txn = self.begin_read()?;
        for row in txn.open_table(COORD_STAGED)?.iter()? {
            let (txid, batch) = row?;
            let batch = crate::store::coord_log::StagedBatch::decode(batch.value())?;
            if batch.parts.iter().any(|p| p.cid == src.stored.cid) {
                return Err(Error::CollectionInUse {
                    collection: source.to_string(),
                    reason: format!(
                        "two-phase-commit transaction {} has prepared writes to it",
                        txid.value()
                    ),
                });
            }
        }
        drop(txn);
        let txn = self.redb()?.begin_write()?;
        txn.open_table(crate::store::schema::COORD_RETIRED)?
            .insert(src.stored.cid, crate::model::sync::now_ms())?;
        crate::coord::commit_immediate(self, txn)?;
        crate::model::sync::lock(&self.coord.retired).insert(src.stored.cid);
        Ok(())
    }

    /// Writer thread: lets a retired collection take writes again (a re-embed compensated).
    pub(crate) fn unretire(&self, cid: u64) -> Result<()> {
        let txn = self.redb()?.begin_write()?;
        txn.open_table(crate::store::schema::COORD_RETIRED)?
            .remove(cid)?;
        crate::coord::commit_immediate(self, txn)?;
        crate::model::sync::lock(&self.coord.retired).remove(&cid);
        Ok(())
    }

    /// Writer thread: deletes an alias; returns its target.
    fn delete_alias_txn(&self, alias: &str) -> Result<String> {
        let Some(target) = read(&self.coord.aliases.map).get(alias).cloned() else {
            return Err(Error::AliasNotFound(alias.to_string()));
        };
        let txn = self.redb()?.begin_write()?;
        txn.open_table(ALIASES)?.remove(alias)?;
        crate::coord::commit_immediate(self, txn)?;
        write(&self.coord.aliases.map).remove(alias);
        Ok(target)
    }
}

fn check_alias_name(alias: &str) -> Result<()> {
    validate_collection_name(alias)
}

impl Database {
    /// Creates the alias `alias` for the collection `collection`. From now on
    /// [`Database::collection`] (and every server route) accepts `alias` as a name for it.
    ///
    /// Fails with [`Error::InvalidCollectionName`] (aliases follow the collection name rules),
    /// [`Error::NameIsCollection`] if a collection is called `alias`, [`Error::AliasExists`],
    /// or [`Error::CollectionNotFound`] if `collection` is not a collection (aliases of aliases
    /// are not allowed).
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Database, Metric};
    /// let db = Database::open(dir.path().join("a.redb"))?;
    /// db.create_collection("docs_v1", CollectionConfig::new(2, Metric::L2))?;
    /// db.create_collection("docs_v2", CollectionConfig::new(4, Metric::L2))?;
    /// db.create_alias("docs", "docs_v1")?;
    /// assert_eq!(db.collection("docs")?.name(), "docs_v1");
    /// db.set_alias("docs", "docs_v2")?; // atomic repoint
    /// assert_eq!(db.collection("docs")?.config().dim, 4);
    /// # Ok(()) }
    /// ```
    pub fn create_alias(&self, alias: &str, collection: &str) -> Result<()> {
        self.observe(Op::CreateAlias, || {
            check_alias_name(alias)?;
            let (a, c) = (alias.to_string(), collection.to_string());
            crate::coord::call(self.inner(), move |s| s.set_alias_txn(&a, &c, Some(false)))?;
            Ok(())
        })
    }

    /// Points `alias` at `collection` in one transaction, creating the alias if needed; returns
    /// the collection it pointed to before (`None` if it is new). Readers resolving the alias
    /// see either the old or the new target, never neither. Errors as
    /// [`Database::create_alias`], except that an existing alias is repointed.
    pub fn set_alias(&self, alias: &str, collection: &str) -> Result<Option<String>> {
        self.observe(Op::SetAlias, || {
            check_alias_name(alias)?;
            let (a, c) = (alias.to_string(), collection.to_string());
            crate::coord::call(self.inner(), move |s| s.set_alias_txn(&a, &c, None))
        })
    }

    /// Repoints an existing alias to `collection` atomically; returns the previous target.
    /// Fails with [`Error::AliasNotFound`] if the alias does not exist, otherwise as
    /// [`Database::set_alias`].
    pub fn swap_alias(&self, alias: &str, collection: &str) -> Result<String> {
        self.observe(Op::SwapAlias, || {
            check_alias_name(alias)?;
            let (a, c) = (alias.to_string(), collection.to_string());
            crate::coord::call(self.inner(), move |s| s.set_alias_txn(&a, &c, Some(true)))?
                .ok_or_else(|| {
                    crate::model::error::corrupted("a repointed alias had no previous target")
                })
        })
    }

    /// Deletes an alias; returns the collection it pointed to. [`Error::AliasNotFound`] if
    /// there is none.
    pub fn delete_alias(&self, alias: &str) -> Result<String> {
        self.observe(Op::DeleteAlias, || {
            let a = alias.to_string();
            crate::coord::call(self.inner(), move |s| s.delete_alias_txn(&a))
        })
    }

    /// Every alias and its target, sorted by alias.
    pub fn aliases(&self) -> Vec<AliasInfo> {
        self.shared()
            .coord
            .aliases
            .all()
            .into_iter()
            .map(|(alias, collection)| AliasInfo { alias, collection })
            .collect()
    }

    /// The collection `alias` points to, or `None` if it is not an alias.
    pub fn alias_target(&self, alias: &str) -> Option<String> {
        read(&self.shared().coord.aliases.map).get(alias).cloned()
    }

    /// Drops `name` (if it is still the collection with internal id `cid`: names can be
    /// reused) once no handle other than the catalogue's uses it any more, waiting at most
    /// `grace` (then it drops anyway; handles still held then fail with
    /// [`Error::CollectionNotFound`]). Used after an alias was repointed away from `name`, so
    /// that searches that resolved the alias just before the repoint can finish.
    pub(crate) fn drop_collection_when_unused(
        &self,
        name: &str,
        cid: u64,
        grace: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + grace;
        let mut delay = Duration::from_micros(200);
        loop {
            match self.shared().collection_shared(name) {
                Ok(c) if c.stored.cid != cid => return Ok(()), // dropped; the name is reused
                // 2 = the catalogue's reference and this one.
                Ok(c) if Arc::strong_count(&c) > 2 && Instant::now() < deadline => {
                    drop(c);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(20));
                }
                Ok(_) => break,
                Err(Error::CollectionNotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        match self.drop_collection(name) {
            Ok(()) | Err(Error::CollectionNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A handle for a collection name or alias (see [`Database::collection`]).
    pub(crate) fn resolve(&self, name: &str) -> Result<Collection> {
        let shared = self.shared().resolve_collection(name)?;
        Ok(Collection::new(Arc::clone(self.inner()), shared))
    }
}
