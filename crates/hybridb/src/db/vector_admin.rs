//! Adding and removing named vectors of existing collections, and changing a dense vector's
//! quantization (writer thread).
//!
//! Adding one creates its empty tables: no entity has it until written. Removing one deletes
//! its tables and its in-memory index in one step. Either is one transaction that also
//! rewrites the stored config (bumping `config_version`); a removed vector's id is never
//! reused, so its tables can never be mistaken for a later vector's.
//!
//! Changing a quantization rewrites the stored config in one transaction, then retrains the
//! index's codes in memory (the graph's links are chosen on `f32` distances and stay as they
//! are) while holding the checkpoint lock, so that no checkpoint image pairs the new config
//! with the old codes; then, still under it, checkpoints that collection, so that a reopen
//! loads the new codes instead of rebuilding.

use std::sync::Arc;

use crate::model::config::{Quantization, VectorConfig};
use crate::model::error::{Error, Result};
use crate::model::sync::lock;
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
        // `auto` is resolved for this vector: what is stored and indexed.
        let config = config.map(VectorConfig::resolved);
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

    /// Sets the quantization of the default vector (`using` empty) or of the named dense
    /// vector `using`, and (re)trains its codes now (see the module docs). Returns whether the
    /// stored setting changed (called with the current one, it only retrains).
    pub(crate) fn set_quantization_txn(
        &self,
        coll: &Arc<CollectionShared>,
        using: &str,
        quantization: Quantization,
    ) -> Result<bool> {
        coll.check_live()?;
        let mut changed = false;
        let mut quantization = quantization;
        let txn = self.redb()?.begin_write()?;
        let (stored, seq) = coll.rewrite_stored(&txn, |stored| {
            let config = &mut stored.config;
            let slot = if using.is_empty() {
                if !config.has_default_vector() {
                    return Err(Error::InvalidConfig(
                        "the collection has no default vector; name a dense vector".into(),
                    ));
                }
                quantization = quantization.resolve(config.dim, config.metric, config.index);
                &mut config.quantization
            } else {
                match config.vectors.get_mut(using) {
                    Some(VectorConfig::Dense {
                        dim,
                        metric,
                        index,
                        quantization: slot,
                    }) => {
                        quantization = quantization.resolve(*dim, *metric, *index);
                        slot
                    }
                    Some(VectorConfig::Sparse { .. }) => {
                        return Err(Error::InvalidConfig(format!(
                            "vector {using:?} is sparse; only dense vectors are quantized"
                        )));
                    }
                    None => {
                        return Err(Error::InvalidConfig(format!(
                            "the collection has no vector named {using:?}"
                        )));
                    }
                }
            };
            changed = *slot != quantization;
            *slot = quantization;
            stored.config.validate()
        })?;
        self.commit(txn, self.options.durability, seq)?;
        // No checkpoint runs from here to the end (so none pairs the new setting's config
        // hash with the old codes); this collection's is written last, so a reopen loads the
        // new codes rather than rebuilding.
        let _no_checkpoint = lock(&self.checkpoint_lock);
        let originals = self.options.index_env().originals_dir;
        let trained = coll.index.set_quantization(
            (!using.is_empty()).then_some(using),
            quantization,
            originals.as_deref(),
        );
        if using.is_empty() {
            coll.set_quantization(quantization);
        } else {
            coll.set_named(NamedDecls::of(&stored));
        }
        // The setting is stored either way: an index whose codes cannot train walks `f32`
        // (as after a failed automatic training), which is slower, never wrong.
        if let Err(e) = trained {
            tracing::warn!(collection = %coll.name, vector = using, error = %e,
                "quantization stored, but its codes did not train");
        }
        // Derived state: a failed checkpoint leaves a stale one, which a reopen does not use
        // (its config hash differs) and rebuilds instead.
        if let Err(e) = self.checkpoint_locked(coll, 1) {
            tracing::warn!(error = %e, "checkpoint after a quantization change failed");
        }
        Ok(changed)
    }
}
