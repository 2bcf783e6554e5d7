//! Every redb table hybridb uses, defined once.
//!
//! Global tables have fixed names. Each collection owns a set of tables named after its internal
//! id (`c{cid}.entities`, ...), never after its user-visible name, so dropping a collection and
//! creating another of the same name can never mix their data. See `docs/format.md`.

use redb::TableDefinition;

use crate::model::id::EntityId;

/// Global key-value settings: format version and counters (see the `META_*` keys).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Collection name to encoded [`crate::model::config::StoredCollection`].
pub(crate) const COLLECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("collections");
/// Change log: gap-free sequence number to encoded [`crate::model::change::ChangeEvent`].
pub(crate) const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");

/// Durable feed cursors: consumer name to the last sequence number it acknowledged.
pub(crate) const FEED_CURSORS: TableDefinition<&str, u64> = TableDefinition::new("feed_cursors");

/// Key in [`META`]: the on-disk format version.
pub(crate) const META_FORMAT_VERSION: &str = "format_version";
/// Key in [`META`]: the last sequence number assigned (0 = none yet).
pub(crate) const META_LAST_SEQ: &str = "last_seq";
/// Key in [`META`]: every change event with a seq up to this one was pruned (0: none).
pub(crate) const META_PRUNED_THROUGH: &str = "pruned_through";
/// Key in [`META`]: the last collection id assigned.
pub(crate) const META_LAST_CID: &str = "last_cid";
/// Key in an incremental backup's [`META`]: the seq the increment starts after (a file that
/// has it is an increment, not a database, and refuses to open).
pub(crate) const META_INCREMENT_BASE: &str = "increment_base";

/// The on-disk format this build reads and writes (2: named vectors; files of format 1 are
/// migrated in place when opened, see `store::load::init_format`).
pub(crate) const FORMAT_VERSION: u64 = 2;

/// The names of one collection's tables.
#[derive(Debug, Clone)]
pub(crate) struct CollectionTables {
    entities: String,
    vectors: String,
    slots: String,
    postings: String,
}

impl CollectionTables {
    pub(crate) fn new(cid: u64) -> Self {
        CollectionTables {
            entities: format!("c{cid}.entities"),
            vectors: format!("c{cid}.vectors"),
            slots: format!("c{cid}.slots"),
            postings: format!("c{cid}.postings"),
        }
    }

    /// Entity id to encoded record (slot, version, updated_at, payload).
    pub(crate) fn entities(&self) -> TableDefinition<'_, EntityId, &'static [u8]> {
        TableDefinition::new(&self.entities)
    }

    /// Entity id to little-endian `f32` vector bytes.
    pub(crate) fn vectors(&self) -> TableDefinition<'_, EntityId, &'static [u8]> {
        TableDefinition::new(&self.vectors)
    }

    /// Payload index rows `(field, value, slot)`, see [`crate::query::payload::encode_row`].
    pub(crate) fn postings(&self) -> TableDefinition<'_, &'static [u8], ()> {
        crate::query::payload::postings_table(&self.postings)
    }

    /// Dense slot to entity id (the reverse of the slot in each record).
    pub(crate) fn slots(&self) -> TableDefinition<'_, u32, EntityId> {
        TableDefinition::new(&self.slots)
    }
}

/// The tables of one named vector `vid` of collection `cid`.
#[derive(Debug, Clone)]
pub(crate) struct NamedTables {
    vectors: String,
    postings: String,
}

impl NamedTables {
    pub(crate) fn new(cid: u64, vid: u32) -> Self {
        NamedTables {
            vectors: format!("c{cid}.v{vid}"),
            postings: format!("c{cid}.v{vid}.postings"),
        }
    }

    /// Entity id to the stored vector: little-endian `f32`s (dense) or an encoded sparse
    /// vector (see [`crate::model::entity::encode_sparse`]). Entities without the vector have
    /// no row.
    pub(crate) fn vectors(&self) -> TableDefinition<'_, EntityId, &'static [u8]> {
        TableDefinition::new(&self.vectors)
    }

    /// Sparse vectors only: `(dimension, slot)` to the weight, one row per non-zero of each
    /// entity's vector (the posting lists the sparse index is loaded from).
    pub(crate) fn postings(&self) -> TableDefinition<'_, (u32, u32), f32> {
        TableDefinition::new(&self.postings)
    }
}

/// The tables of one text index `tid` of collection `cid`.
#[derive(Debug, Clone)]
pub(crate) struct TextTables {
    terms: String,
    lengths: String,
}

impl TextTables {
    pub(crate) fn new(cid: u64, tid: u32) -> Self {
        TextTables {
            terms: format!("c{cid}.x{tid}.terms"),
            lengths: format!("c{cid}.x{tid}.lengths"),
        }
    }

    /// `(term, slot)` to the term's frequency in that entity's text: the posting lists.
    pub(crate) fn terms(&self) -> TableDefinition<'_, (&'static str, u32), u32> {
        TableDefinition::new(&self.terms)
    }

    /// Slot to the number of terms of that entity's text (entities with at least one term).
    pub(crate) fn lengths(&self) -> TableDefinition<'_, u32, u32> {
        TableDefinition::new(&self.lengths)
    }
}

/// Collection aliases: alias name to the name of the collection it points to.
pub(crate) const ALIASES: TableDefinition<&str, &str> = TableDefinition::new("aliases");

/// Two-phase commit log: transaction id to encoded [`crate::store::coord_log::TxnRecord`].
pub(crate) const COORD_TXNS: TableDefinition<u64, &[u8]> = TableDefinition::new("coord.txns");
/// Writes staged by the built-in participant at prepare: transaction id to encoded
/// [`crate::store::coord_log::StagedBatch`]. A row exists exactly while the transaction is prepared
/// and neither committed nor aborted on the store's side.
pub(crate) const COORD_STAGED: TableDefinition<u64, &[u8]> = TableDefinition::new("coord.staged");
/// Saga log: saga id to encoded [`crate::store::coord_log::SagaRecord`].
pub(crate) const COORD_SAGAS: TableDefinition<u64, &[u8]> = TableDefinition::new("coord.sagas");

/// Retired collections (the source of a re-embed once its alias is about to move): collection
/// id to the time it was retired (ms since the Unix epoch). A retired collection refuses entity
/// writes; the mark is durable so that it survives a crash before the saga drops it.
pub(crate) const COORD_RETIRED: TableDefinition<u64, u64> = TableDefinition::new("coord.retired");

/// Key in [`META`]: the last two-phase-commit transaction id assigned.
pub(crate) const META_LAST_TXID: &str = "coord_last_txid";
/// Key in [`META`]: the last saga id assigned.
pub(crate) const META_LAST_SAGA: &str = "coord_last_saga";
