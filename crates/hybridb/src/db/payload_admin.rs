//! Declaring and dropping payload indexes on existing collections (writer thread).
//!
//! Declaring one back-fills it: every entity's payload is read and its rows written in the
//! same transaction as the new config, so the index is complete from its first visible moment.
//! If some entity holds a value of another type, nothing changes and the error names it.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::ReadableTable;

use crate::model::config::{PayloadIndexKind, validate_field_key};
use crate::model::entity::{decode_payload, decode_record};
use crate::model::error::{Error, Result, corrupted};
use crate::query::payload::{
    PostingKey, decode_row, encode_row, field_prefix, index_keys, kind_name,
};
use crate::store::collection::CollectionShared;
use crate::store::schema::{CollectionTables, META, META_LAST_SEQ};
use crate::store::shared::Shared;

impl Shared {
    /// Rewrites a collection's postings table from its payloads (repair); the in-memory
    /// postings are reloaded by the caller.
    pub(crate) fn rebuild_postings_txn(&self, coll: &Arc<CollectionShared>) -> Result<u64> {
        coll.check_live()?;
        let declared = coll.index.with_payload(|p| p.declared());
        let tables = CollectionTables::new(coll.stored.cid);
        let txn = self.redb()?.begin_write()?;
        let mut rows = 0u64;
        let seq = {
            let mut postings = txn.open_table(tables.postings())?;
            postings.retain(|_, _| false)?;
            if !declared.is_empty() {
                let entities = txn.open_table(tables.entities())?;
                for row in entities.iter()? {
                    let (id, rec) = row?;
                    let (header, json) = decode_record(rec.value())?;
                    let keys = index_keys(&declared, &decode_payload(json)?).map_err(|p| {
                        corrupted(format!(
                            "entity {} does not fit its payload index: {p}",
                            id.value()
                        ))
                    })?;
                    for k in keys {
                        postings.insert(encode_row(&k, header.slot).as_slice(), ())?;
                        rows += 1;
                    }
                }
            }
            txn.open_table(META)?
                .get(META_LAST_SEQ)?
                .map_or(0, |v| v.value())
        };
        self.commit(txn, self.options.durability, seq)?;
        Ok(rows)
    }

    /// Declares (`Some(kind)`) or drops (`None`) the payload index on `field`. Returns whether
    /// anything changed.
    pub(crate) fn set_payload_index_txn(
        &self,
        coll: &Arc<CollectionShared>,
        field: &str,
        kind: Option<PayloadIndexKind>,
    ) -> Result<bool> {
        coll.check_live()?;
        validate_field_key(field)?;
        let declared = coll.index.with_payload(|p| p.declared());
        match (declared.get(field), kind) {
            (Some(old), Some(new)) if *old == new => return Ok(false),
            (Some(old), Some(new)) => {
                return Err(Error::InvalidConfig(format!(
                    "field {field:?} is already indexed as {}; drop that index before \
                     declaring it as {}",
                    kind_name(*old),
                    kind_name(new)
                )));
            }
            (None, None) => return Ok(false),
            _ => {}
        }
        let tables = CollectionTables::new(coll.stored.cid);
        let txn = self.redb()?.begin_write()?;
        let mut rows: Vec<(PostingKey, u32)> = Vec::new();
        let seq = {
            let mut postings = txn.open_table(tables.postings())?;
            let prefix = field_prefix(field);
            let mut stale = Vec::new();
            for row in postings.range(prefix.as_slice()..)? {
                let (k, _) = row?;
                let k = k.value();
                if !k.starts_with(&prefix) {
                    break;
                }
                // Another field whose name extends this one shares the prefix bytes only
                // if its length prefix matches too, which the u16 length rules out.
                if decode_row(k).is_some_and(|(key, _)| key.field == field) {
                    stale.push(k.to_vec());
                }
            }
            for k in stale {
                postings.remove(k.as_slice())?;
            }
            if let Some(kind) = kind {
                let one = BTreeMap::from([(field.to_string(), kind)]);
                let entities = txn.open_table(tables.entities())?;
                for row in entities.iter()? {
                    let (id, rec) = row?;
                    let (header, json) = decode_record(rec.value())?;
                    let keys = index_keys(&one, &decode_payload(json)?).map_err(|p| {
                        Error::InvalidConfig(format!(
                            "cannot index field {field:?} as {}: entity {}: {p}",
                            kind_name(kind),
                            id.value()
                        ))
                    })?;
                    for k in keys {
                        postings.insert(encode_row(&k, header.slot).as_slice(), ())?;
                        rows.push((k, header.slot));
                    }
                }
            }
            coll.rewrite_stored(&txn, |stored| {
                match kind {
                    Some(kind) => stored
                        .config
                        .payload_indexes
                        .insert(field.to_string(), kind),
                    None => stored.config.payload_indexes.remove(field),
                };
                Ok(())
            })?
            .1
        };
        self.commit(txn, self.options.durability, seq)?;
        coll.index.update_payload(|p| match kind {
            Some(kind) => {
                p.add_field(field, kind);
                for (k, slot) in &rows {
                    p.insert(k, *slot);
                }
            }
            None => p.remove_field(field),
        });
        Ok(true)
    }
}
