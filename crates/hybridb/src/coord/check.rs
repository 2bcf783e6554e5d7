//! Integrity checks of the coordination tables, run by [`crate::Database::verify`].
//!
//! Checked: every alias points to a stored collection and no alias shares a collection's
//! name; every log record decodes; every staged batch belongs to a logged transaction that is
//! not final and names collections that still exist with the same internal id.

use std::collections::HashMap;

use redb::ReadableTable;

use super::log::{SagaRecord, StagedBatch, TxnRecord};
use crate::model::config::StoredCollection;
use crate::model::error::Result;
use crate::store::schema::{ALIASES, COLLECTIONS, COORD_SAGAS, COORD_STAGED, COORD_TXNS};

/// Problems past this many are not listed.
const MAX_LISTED: usize = 100;

/// Appends the problems of the coordination tables in `txn` to `problems`.
pub(crate) fn check(txn: &redb::ReadTransaction, problems: &mut Vec<String>) -> Result<()> {
    let mut found = Vec::new();
    let mut collections: HashMap<String, u64> = HashMap::new();
    for row in txn.open_table(COLLECTIONS)?.iter()? {
        let (name, v) = row?;
        if let Ok(stored) = StoredCollection::decode(v.value()) {
            collections.insert(name.value().to_string(), stored.cid);
        }
    }
    for row in txn.open_table(ALIASES)?.iter()? {
        let (alias, target) = row?;
        let (alias, target) = (alias.value(), target.value());
        if collections.contains_key(alias) {
            found.push(format!("alias {alias:?} has the name of a collection"));
        }
        if !collections.contains_key(target) {
            found.push(format!(
                "alias {alias:?} points to missing collection {target:?}"
            ));
        }
    }
    let txns = txn.open_table(COORD_TXNS)?;
    for row in txns.iter()? {
        let (id, v) = row?;
        if let Err(e) = TxnRecord::decode(v.value()) {
            found.push(format!("2PC transaction {}: {e}", id.value()));
        }
    }
    for row in txn.open_table(COORD_STAGED)?.iter()? {
        let (id, v) = row?;
        let id = id.value();
        let batch = match StagedBatch::decode(v.value()) {
            Ok(b) => b,
            Err(e) => {
                found.push(format!("staged batch of transaction {id}: {e}"));
                continue;
            }
        };
        match txns.get(id)?.map(|r| TxnRecord::decode(r.value())) {
            Some(Ok(rec)) if !rec.state.is_final() => {}
            Some(Ok(rec)) => found.push(format!(
                "transaction {id} is {:?} but still has staged writes",
                rec.state
            )),
            Some(Err(_)) => {} // reported above
            None => found.push(format!("staged writes of unlogged transaction {id}")),
        }
        for part in &batch.parts {
            if collections.get(&part.collection) != Some(&part.cid) {
                found.push(format!(
                    "transaction {id} staged writes to collection {:?} (id {}), which is gone",
                    part.collection, part.cid
                ));
            }
        }
    }
    for row in txn.open_table(COORD_SAGAS)?.iter()? {
        let (id, v) = row?;
        if let Err(e) = SagaRecord::decode(v.value()) {
            found.push(format!("saga {}: {e}", id.value()));
        }
    }
    let room = MAX_LISTED.saturating_sub(problems.len());
    if found.len() > room {
        found.truncate(room);
        found.push("... more coordination problems not listed".into());
    }
    problems.extend(found);
    Ok(())
}
