//! Text indexes in redb: per text-indexed field its posting rows `(term, slot) → tf` and its
//! document lengths `slot → terms`, written in the entity's transaction from the analyzed
//! payload text, and loaded into the in-memory BM25 index when the file opens.
//!
//! Invariants: the rows of a slot are exactly the analyzed terms of its entity's field text as
//! the current payload holds it (re-derived from the old payload to remove them); an entity
//! without text there has no rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use crate::model::config::StoredCollection;
use crate::model::entity::{decode_payload, decode_record};
use crate::model::error::{Result, corrupted};
use crate::query::state::Apply;
use crate::query::state::text::{TextIndex, TextIndexes, analyzer_for, field_text};
use crate::store::collection::{TextDecl, TextDecls};
use crate::store::schema::TextTables;

/// Creates the tables of every text index of a new collection.
pub(crate) fn create_tables(txn: &WriteTransaction, stored: &StoredCollection) -> Result<()> {
    for (_, d) in TextDecls::of(stored).iter() {
        create_one(txn, stored.cid, d)?;
    }
    Ok(())
}

/// Creates the tables of one text index.
pub(crate) fn create_one(txn: &WriteTransaction, cid: u64, d: &TextDecl) -> Result<()> {
    let t = TextTables::new(cid, d.tid);
    txn.open_table(t.terms())?;
    txn.open_table(t.lengths())?;
    Ok(())
}

/// Deletes the tables of the text indexes `decls` of collection `cid`.
pub(crate) fn delete_tables(txn: &WriteTransaction, cid: u64, decls: &TextDecls) -> Result<()> {
    for (_, d) in decls.iter() {
        let t = TextTables::new(cid, d.tid);
        txn.delete_table(t.terms())?;
        txn.delete_table(t.lengths())?;
    }
    Ok(())
}

/// The analyzed terms of `field` in a stored record's payload (`None`: no text there).
fn record_terms(
    d: &TextDecl,
    analyzer: &crate::index::text::Analyzer,
    record: &[u8],
) -> Result<Option<Vec<String>>> {
    let (_, json) = decode_record(record)?;
    let payload = decode_payload(json)?;
    Ok(field_text(&payload, &d.field)
        .map(|text| analyzer.terms(&text))
        .filter(|terms| !terms.is_empty()))
}

/// Term frequencies of a term list, by term.
fn counts(terms: &[String]) -> BTreeMap<&str, u32> {
    let mut out = BTreeMap::new();
    for t in terms {
        *out.entry(t.as_str()).or_insert(0) += 1;
    }
    out
}

struct Open<'t> {
    decl: TextDecl,
    analyzer: crate::index::text::Analyzer,
    terms: Table<'t, (&'static str, u32), u32>,
    lengths: Table<'t, u32, u32>,
}

/// Every text index's tables, open for one write command.
pub(crate) struct TextWriter<'t> {
    open: Vec<Open<'t>>,
}

impl<'t> TextWriter<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction, cid: u64, decls: &TextDecls) -> Result<Self> {
        let open = decls
            .iter()
            .map(|(_, d)| {
                let t = TextTables::new(cid, d.tid);
                Ok(Open {
                    decl: d.clone(),
                    analyzer: analyzer_for(&d.config),
                    terms: txn.open_table(t.terms())?,
                    lengths: txn.open_table(t.lengths())?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(TextWriter { open })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The entity in `slot` changed from the stored record `old` to `new` (either absent):
    /// rewrites the rows of every text index whose terms changed and pushes the index change.
    pub(crate) fn update(
        &mut self,
        slot: u32,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
        applies: &mut Vec<Apply>,
    ) -> Result<()> {
        for o in &mut self.open {
            let before = match old {
                Some(r) => record_terms(&o.decl, &o.analyzer, r)?,
                None => None,
            };
            let after = match new {
                Some(r) => record_terms(&o.decl, &o.analyzer, r)?,
                None => None,
            };
            if before == after {
                continue;
            }
            if let Some(terms) = &before {
                for term in counts(terms).keys() {
                    o.terms.remove((*term, slot))?;
                }
                o.lengths.remove(slot)?;
            }
            if let Some(terms) = &after {
                for (term, tf) in counts(terms) {
                    o.terms.insert((term, slot), tf)?;
                }
                o.lengths.insert(slot, terms.len() as u32)?;
            }
            // A deleted entity's slot leaves every index with the slot (`Apply::Remove`).
            if new.is_some() {
                applies.push(Apply::Text {
                    slot,
                    field: Arc::clone(&o.decl.field),
                    terms: after,
                });
            }
        }
        Ok(())
    }
}

/// The in-memory text indexes of `stored`, from their posting rows (checked against the
/// lengths table).
pub(crate) fn load(
    txn: &redb::ReadTransaction,
    name: &str,
    stored: &StoredCollection,
) -> Result<TextIndexes> {
    let mut out = TextIndexes::new();
    for (field, d) in TextDecls::of(stored).iter() {
        let t = TextTables::new(stored.cid, d.tid);
        let mut docs: HashMap<u32, Vec<String>> = HashMap::new();
        for row in txn.open_table(t.terms())?.iter()? {
            let (key, tf) = row?;
            let (term, slot) = key.value();
            let doc = docs.entry(slot).or_default();
            for _ in 0..tf.value() {
                doc.push(term.to_string());
            }
        }
        let lengths = txn.open_table(t.lengths())?;
        if lengths.len()? != docs.len() as u64 {
            return Err(corrupted(format!(
                "collection {name}: text index {field:?} has {} lengths for {} documents",
                lengths.len()?,
                docs.len()
            )));
        }
        let mut index = TextIndex::new(&d.config);
        for (slot, terms) in docs {
            match lengths.get(slot)? {
                Some(len) if len.value() as usize == terms.len() => {}
                _ => {
                    return Err(corrupted(format!(
                        "collection {name}: text index {field:?}: slot {slot}'s length differs \
                         from its terms"
                    )));
                }
            }
            index.index.insert(slot, &terms);
        }
        out.insert(field.clone(), index);
    }
    Ok(out)
}

/// A text index's rows: `(term, slot) → tf` and `slot → length`.
pub(crate) type TextRows = (BTreeMap<(String, u32), u32>, BTreeMap<u32, u32>);

/// The rows a text index should hold, from every entity's payload (for backfills and verify).
pub(crate) fn expected_rows(
    txn_entities: &impl ReadableTable<crate::model::id::EntityId, &'static [u8]>,
    d: &TextDecl,
) -> Result<TextRows> {
    let analyzer = analyzer_for(&d.config);
    let (mut terms, mut lengths) = (BTreeMap::new(), BTreeMap::new());
    for row in txn_entities.iter()? {
        let (_, rec) = row?;
        let (header, _) = decode_record(rec.value())?;
        if let Some(t) = record_terms(d, &analyzer, rec.value())? {
            for (term, tf) in counts(&t) {
                terms.insert((term.to_string(), header.slot), tf);
            }
            lengths.insert(header.slot, t.len() as u32);
        }
    }
    Ok((terms, lengths))
}

/// Replaces the rows of text index `d` of collection `cid` with `rows` in `txn`.
pub(crate) fn write_rows(
    txn: &WriteTransaction,
    cid: u64,
    d: &TextDecl,
    rows: &TextRows,
) -> Result<()> {
    let t = TextTables::new(cid, d.tid);
    let mut term_rows = txn.open_table(t.terms())?;
    term_rows.retain(|_, _| false)?;
    for ((term, slot), tf) in &rows.0 {
        term_rows.insert((term.as_str(), *slot), *tf)?;
    }
    let mut length_rows = txn.open_table(t.lengths())?;
    length_rows.retain(|_, _| false)?;
    for (slot, len) in &rows.1 {
        length_rows.insert(*slot, *len)?;
    }
    Ok(())
}

/// The in-memory index of text index `d` holding `rows`.
pub(crate) fn index_of(d: &TextDecl, rows: &TextRows) -> TextIndex {
    let mut docs: HashMap<u32, Vec<String>> = HashMap::new();
    for ((term, slot), tf) in &rows.0 {
        let doc = docs.entry(*slot).or_default();
        doc.extend(std::iter::repeat_n(term.clone(), *tf as usize));
    }
    let mut index = TextIndex::new(&d.config);
    for (slot, doc) in docs {
        index.index.insert(slot, &doc);
    }
    index
}
