//! Declaring and dropping text indexes on existing collections, and changing a collection's
//! metadata (writer thread).
//!
//! Declaring one back-fills it: every entity's field text is analyzed and its rows written in
//! the transaction that stores the new config, so the index is complete from its first
//! visible moment. Dropping one deletes its tables in the transaction that rewrites the config.

use std::sync::Arc;

use crate::model::config::TextIndexConfig;
use crate::model::error::{Error, Result, corrupted};
use crate::store::collection::{CollectionShared, TextDecls};
use crate::store::schema::CollectionTables;
use crate::store::shared::Shared;
use crate::store::text::{create_one, delete_tables, expected_rows, index_of, write_rows};

impl Shared {
    /// Declares (`Some`) or drops (`None`) the text index on `field`. Returns whether anything
    /// changed.
    pub(crate) fn set_text_index_txn(
        &self,
        coll: &Arc<CollectionShared>,
        field: &str,
        config: Option<TextIndexConfig>,
    ) -> Result<bool> {
        coll.check_live()?;
        if let Some(c) = &config {
            c.validate(field)?;
        }
        let decls = coll.texts();
        match (decls.get(field), config) {
            (Some(old), Some(new)) if old.config == new => return Ok(false),
            (Some(_), Some(_)) => {
                return Err(Error::InvalidConfig(format!(
                    "field {field:?} already has a text index with another config; drop it \
                     before declaring it again"
                )));
            }
            (None, None) => return Ok(false),
            _ => {}
        }
        let txn = self.redb()?.begin_write()?;
        let mut filled = None;
        let (stored, seq) = coll.rewrite_stored(&txn, |stored| {
            match config {
                Some(config) => {
                    stored.config.text_indexes.insert(field.to_string(), config);
                    stored.last_vid += 1;
                    stored.text_ids.insert(field.to_string(), stored.last_vid);
                    let decls = TextDecls::of(stored);
                    let d = decls
                        .get(field)
                        .ok_or_else(|| corrupted("a declared text index has no id"))?;
                    create_one(&txn, stored.cid, d)?;
                    let entities = txn.open_table(CollectionTables::new(stored.cid).entities())?;
                    let rows = expected_rows(&entities, d)?;
                    write_rows(&txn, stored.cid, d, &rows)?;
                    filled = Some(index_of(d, &rows));
                }
                None => {
                    let mut gone = stored.clone();
                    gone.config.text_indexes.retain(|f, _| f == field);
                    delete_tables(&txn, stored.cid, &TextDecls::of(&gone))?;
                    stored.config.text_indexes.remove(field);
                    stored.text_ids.remove(field);
                }
            }
            Ok(())
        })?;
        self.commit(txn, self.options.durability, seq)?;
        // The index first, then the declaration (as for named vectors).
        match filled {
            Some(index) => {
                coll.index.change_text(field, Some(index));
                coll.set_texts(TextDecls::of(&stored));
            }
            None => {
                coll.set_texts(TextDecls::of(&stored));
                coll.index.change_text(field, None);
            }
        }
        Ok(true)
    }
}

impl Shared {
    /// Merges `patch` into the metadata of `coll` (a `null` value removes its key) and returns
    /// the metadata after it.
    pub(crate) fn merge_metadata_txn(
        &self,
        coll: &Arc<CollectionShared>,
        patch: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        coll.check_live()?;
        let mut merged = (*coll.metadata()).clone();
        for (k, v) in patch {
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        crate::model::config::validate_metadata(&merged)?;
        let txn = self.redb()?.begin_write()?;
        let (_, seq) = coll.rewrite_stored(&txn, |stored| {
            stored.config.metadata = merged.clone();
            Ok(())
        })?;
        self.commit(txn, self.options.durability, seq)?;
        coll.set_metadata(merged.clone());
        Ok(merged)
    }
}
