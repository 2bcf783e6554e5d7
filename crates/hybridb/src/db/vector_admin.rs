//! Adding and removing named vectors of existing collections (writer thread).
//!
//! Adding one creates its empty tables: no entity has it until written. Removing one deletes
//! its tables and its in-memory index in one step. Either is one transaction that also
//! rewrites the stored config (bumping `config_version`); a removed vector's id is never
//! reused, so its tables can never be mistaken for a later vector's.

use std::sync::Arc;

use crate::model::config::VectorConfig;
use crate::model::error::{Error, Result};
use crate::query::state::Named;
use crate::store::collection::{CollectionShared, NamedDecls};
use crate::store::load_named::{create_one, delete_tables};
use crate::store::shared::Shared;

impl Shared {
    /// Adds (`Some(config)`) or removes (`None`) the named vector `name`. Returns whether
    /// anything changed.
    pub(crate) fn set_named_vector_txn(
        &self,
        coll: &Arc<CollectionShared>,
        name: &str,
        config: Option<VectorConfig>,
    ) -> Result<bool> {
        coll.check_live()?;
        let decls = coll.named();
        match (decls.get(name), config) {
            (Some(old), Some(new)) if old.config == new => return Ok(false),
            (Some(old), Some(new)) => {
                return Err(Error::InvalidConfig(format!(
                    "vector {name:?} is already declared as {:?}; remove it before declaring \
                     it as {new:?}",
                    old.config
                )));
            }
            (None, None) => return Ok(false),
            _ => {}
        }
        let txn = self.redb()?.begin_write()?;
        let (stored, seq) = coll.rewrite_stored(&txn, |stored| {
            match config {
                Some(config) => {
                    stored.config.vectors.insert(name.to_string(), config);
                    stored.config.validate()?;
                    stored.last_vid += 1;
                    stored.vector_ids.insert(name.to_string(), stored.last_vid);
                    if let Some(d) = NamedDecls::of(stored).get(name) {
                        create_one(&txn, stored.cid, d)?;
                    }
                }
                None => {
                    let mut gone = stored.clone();
                    gone.config.vectors.retain(|n, _| n == name);
                    delete_tables(&txn, &stored.cid, &NamedDecls::of(&gone))?;
                    stored.config.vectors.remove(name);
                    stored.vector_ids.remove(name);
                    stored.config.validate().map_err(|_| {
                        Error::InvalidConfig(format!(
                            "vector {name:?} is the collection's only vector; a collection \
                             needs at least one"
                        ))
                    })?;
                }
            }
            Ok(())
        })?;
        self.commit(txn, self.options.durability, seq)?;
        // The index first, then the declaration: a search that sees the name finds its index
        // (or, for a removal, finds no index and answers with no hits).
        match config {
            Some(config) => {
                coll.index
                    .change_named(name, Some(Named::new(&config, &self.options.index_env())));
                coll.set_named(NamedDecls::of(&stored));
            }
            None => {
                let vid = decls.get(name).map(|d| d.vid);
                coll.set_named(NamedDecls::of(&stored));
                coll.index.change_named(name, None);
                // Every cached record of the collection may hold the removed vector (the
                // collection's window is open: this runs as a writer command).
                self.caches.invalidate_all();
                // Derived state only: a leftover file is never read (vids are not reused).
                if let Some(vid) = vid {
                    let _ = std::fs::remove_file(crate::index::checkpoint::named_path_for(
                        &self.checkpoint_dir(),
                        coll.stored.cid,
                        vid,
                    ));
                }
            }
        }
        Ok(true)
    }
}
