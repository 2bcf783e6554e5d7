//! A collection handle: the entity operations (writes through [`crate::store::write`] on the
//! writer thread, reads straight from redb through the read caches). Search and filtered reads
//! are in [`crate::db::read`].
//!
//! Invariant: a handle whose collection was dropped fails every operation with
//! [`Error::CollectionNotFound`]; the `dropped` flag is set under the database write lock, and
//! reads that race with a drop map redb's missing-table error to the same error.

use std::ops::Bound;
use std::sync::Arc;

use redb::ReadableTableMetadata;

use crate::model::config::{
    CollectionConfig, PayloadIndexKind, Quantization, TextIndexConfig, VectorConfig,
};
use crate::model::entity::{Entity, Record, decode_payload, decode_record, decode_vector};
use crate::model::error::{Error, QueryProblem, Result};
use crate::model::id::EntityId;
use crate::model::payload_update::PayloadUpdate;
use crate::observe::cache::CachedRecord;
use crate::query::search::ScrollPage;
use crate::store::inner::DbInner;
use crate::store::options::Durability;
use crate::store::schema::CollectionTables;

use crate::store::collection::CollectionShared;
use crate::store::write::{WhereAction, WriteOp, Written};
use crate::store::writer::{Command, WriteCommand};

/// A handle to one collection. Cheap to clone; `Send + Sync`.
///
/// Writes are atomic per call: a batch commits whole or not at all, and an invalid item fails
/// the call with an error naming it. They go through the database's writer thread, which
/// commits concurrent writes together (group commit) and returns after the commit and the index
/// update, so a caller always reads its own writes. Reads never wait for writes.
///
/// This is the blocking API; from async code use [`Collection::to_async`].
#[derive(Clone)]
pub struct Collection {
    pub(crate) db: Arc<DbInner>,
    pub(crate) shared: Arc<CollectionShared>,
    durability: Durability,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Collection {
    pub(crate) fn new(db: Arc<DbInner>, shared: Arc<CollectionShared>) -> Self {
        let durability = db.shared.options.durability;
        Collection {
            db,
            shared,
            durability,
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The collection's configuration (with the payload indexes declared now).
    pub fn config(&self) -> CollectionConfig {
        self.shared.config()
    }

    /// Declares a payload index on `field` (a dotted key) and back-fills it from every entity,
    /// in one transaction. Returns `false` if the same index existed already. Fails with
    /// [`Error::InvalidConfig`] naming an entity whose value there has another type, or if
    /// the field is indexed with another type (drop that index first).
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = hybridb::Database::open(dir.path().join("t.redb"))?;
    /// use hybridb::{CollectionConfig, Metric, PayloadIndexKind};
    /// let docs = db.create_collection("docs", CollectionConfig::new(4, Metric::Cosine))?;
    /// assert!(docs.create_payload_index("lang", PayloadIndexKind::Keyword)?);
    /// assert_eq!(docs.config().payload_indexes.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn create_payload_index(&self, field: &str, kind: PayloadIndexKind) -> Result<bool> {
        self.observe(crate::observe::Op::CreatePayloadIndex, 1, || {
            self.payload_index_command(field, Some(kind))
        })
    }

    /// Drops the payload index on `field`; returns whether there was one. Filters on the field
    /// keep working, by reading payloads.
    pub fn drop_payload_index(&self, field: &str) -> Result<bool> {
        self.observe(crate::observe::Op::DropPayloadIndex, 1, || {
            self.payload_index_command(field, None)
        })
    }

    fn payload_index_command(&self, field: &str, kind: Option<PayloadIndexKind>) -> Result<bool> {
        self.shared.check_live()?;
        let coll = Arc::clone(&self.shared);
        let field = field.to_string();
        self.db.call(move |reply| Command::PayloadIndex {
            coll,
            field,
            kind,
            reply,
        })
    }

    /// Declares the named vector `name` on this collection, online: no entity has it until one
    /// is written with it. Returns `false` if it was already declared the same way; fails with
    /// [`Error::InvalidConfig`] for a bad name or config, or a name declared another way.
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric, SearchRequest};
    /// use hybridb::{SparseVector, VectorConfig};
    /// use serde_json::json;
    ///
    /// let db = Database::open(dir.path().join("named.redb"))?;
    /// let docs = db.create_collection("docs", CollectionConfig::new(2, Metric::Cosine))?;
    /// docs.add_vector("terms", VectorConfig::sparse(false))?;
    /// docs.upsert(
    ///     Entity::new(EntityId::from_key("a"), json!({}), vec![1.0, 0.0])
    ///         .with_vector("terms", SparseVector::new(vec![7, 42], vec![1.0, 0.5])),
    /// )?;
    /// let query = SparseVector::new(vec![42], vec![2.0]);
    /// let hits = docs.search_with(&SearchRequest::new_sparse("terms", query, 3))?;
    /// assert_eq!(hits[0].id, EntityId::from_key("a"));
    /// assert_eq!(hits[0].score, 1.0);
    /// # Ok(()) }
    /// ```
    pub fn add_vector(&self, name: &str, config: VectorConfig) -> Result<bool> {
        self.observe(crate::observe::Op::AddVector, 1, || {
            self.named_vector_command(name, Some(config))
        })
    }

    /// Removes the named vector `name` and every entity's value of it, online (its tables and
    /// index are freed). Returns `false` if it was not declared; fails if it is the
    /// collection's only vector.
    pub fn remove_vector(&self, name: &str) -> Result<bool> {
        self.observe(crate::observe::Op::RemoveVector, 1, || {
            self.named_vector_command(name, None)
        })
    }

    /// Changes the quantization of the default vector (`using` empty) or of the named dense
    /// vector `using`, online: the setting is stored in one transaction, then the codes are
    /// trained from a fresh sample and every vector encoded (the graph stays as it is; it is
    /// built on `f32`), then the index is checkpointed. Searches go on meanwhile (on the
    /// earlier codes, or `f32`); writes wait for the encoding (about a second per 64 k
    /// 384-d vectors at 2 bits, see `docs/quantization.md`). [`Quantization::None`] drops the
    /// codes. Called with the current setting it retrains, e.g. after the data has drifted.
    /// An index below the training size trains once it reaches it. Returns whether the setting
    /// changed.
    ///
    /// Fails with [`Error::InvalidConfig`] for an unknown or sparse vector, an exact index, or
    /// a rotated code under the Manhattan metric; nothing is written then.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Database, Metric, Quantization};
    /// let db = Database::open(dir.path().join("q.redb"))?;
    /// let docs = db.create_collection("docs", CollectionConfig::new(384, Metric::Cosine))?;
    /// // The default (`Quantization::Auto`) chose 4-bit codes for 384 dimensions.
    /// assert_eq!(docs.config().quantization, Quantization::Rq4);
    /// assert!(docs.set_quantization("", Quantization::Rq2)?);
    /// assert_eq!(docs.config().quantization, Quantization::Rq2);
    /// assert!(!docs.set_quantization("", Quantization::Rq2)?, "the same: only retrains");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_quantization(&self, using: &str, quantization: Quantization) -> Result<bool> {
        self.observe(crate::observe::Op::SetQuantization, 1, || {
            self.shared.check_live()?;
            let coll = Arc::clone(&self.shared);
            let using = using.to_string();
            self.db.call(move |reply| Command::Quantization {
                coll,
                using,
                quantization,
                reply,
            })
        })
    }

    /// Declares a BM25 text index on the payload field `field`, online: every entity's text
    /// there is indexed in the same transaction. Returns `false` if it was already declared
    /// the same way. Search it with [`SearchRequest::new_text`](crate::SearchRequest::new_text)
    /// or [`Query::text`](crate::Query::text).
    pub fn create_text_index(&self, field: &str, config: TextIndexConfig) -> Result<bool> {
        self.observe(crate::observe::Op::CreatePayloadIndex, 1, || {
            self.text_index_command(field, Some(config))
        })
    }

    /// Drops the text index on `field` (its tables and in-memory index). Returns `false` if
    /// there was none.
    pub fn drop_text_index(&self, field: &str) -> Result<bool> {
        self.observe(crate::observe::Op::DropPayloadIndex, 1, || {
            self.text_index_command(field, None)
        })
    }

    /// Merges `patch` into the collection's metadata ([`CollectionConfig::metadata`]): its keys
    /// are set, a key whose value is `null` is removed, other keys stay. One transaction;
    /// returns the metadata after it. Fails with [`Error::InvalidConfig`] if the result would
    /// exceed [`crate::MAX_METADATA_BYTES`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = hybridb::Database::open(dir.path().join("m.redb"))?;
    /// let c = db.create_collection("docs", hybridb::CollectionConfig::new(2, hybridb::Metric::Cosine))?;
    /// let patch = serde_json::json!({"model": "all-MiniLM-L6-v2", "owner": "search"});
    /// c.update_metadata(patch.as_object().cloned().unwrap_or_default())?;
    /// assert_eq!(c.config().metadata["model"], "all-MiniLM-L6-v2");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update_metadata(
        &self,
        patch: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        self.shared.check_live()?;
        let coll = Arc::clone(&self.shared);
        self.db
            .call(move |reply| Command::Metadata { coll, patch, reply })
    }

    fn text_index_command(&self, field: &str, config: Option<TextIndexConfig>) -> Result<bool> {
        self.shared.check_live()?;
        crate::model::config::validate_field_key(field)?;
        let coll = Arc::clone(&self.shared);
        let field = field.to_string();
        self.db.call(move |reply| Command::TextIndex {
            coll,
            field,
            config,
            reply,
        })
    }

    fn named_vector_command(&self, name: &str, config: Option<VectorConfig>) -> Result<bool> {
        self.shared.check_live()?;
        crate::model::config::validate_vector_name(name)?;
        let coll = Arc::clone(&self.shared);
        let name = name.to_string();
        self.db.call(move |reply| Command::NamedVector {
            coll,
            name,
            config,
            reply,
        })
    }

    /// A handle whose writes use `durability` instead of the database default.
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = hybridb::Database::open(dir.path().join("t.redb"))?;
    /// use hybridb::{CollectionConfig, Durability, Metric};
    /// let logs = db.create_collection("logs", CollectionConfig::new(8, Metric::L2))?;
    /// let fast = logs.with_durability(Durability::None); // visible now, durable at next sync
    /// # Ok(()) }
    /// ```
    pub fn with_durability(&self, durability: Durability) -> Collection {
        Collection {
            durability,
            ..self.clone()
        }
    }

    /// The durability this handle's writes use.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub(crate) fn write_command(
        &self,
        ops: Vec<WriteOp>,
    ) -> impl FnOnce(tokio::sync::oneshot::Sender<Result<Vec<Written>>>) -> Command {
        self.command(ops, None)
    }

    fn command(
        &self,
        ops: Vec<WriteOp>,
        select: Option<(crate::query::filter::Filter, WhereAction)>,
    ) -> impl FnOnce(tokio::sync::oneshot::Sender<Result<Vec<Written>>>) -> Command {
        let coll = Arc::clone(&self.shared);
        let durability = self.durability;
        move |reply| {
            Command::Write(WriteCommand {
                coll,
                ops,
                select,
                durability,
                reply,
            })
        }
    }

    /// The command of [`Collection::delete_by_filter`], after checking the filter is not empty.
    pub(crate) fn delete_where_command(
        &self,
        filter: &crate::query::filter::Filter,
    ) -> Result<impl FnOnce(tokio::sync::oneshot::Sender<Result<Vec<Written>>>) -> Command> {
        if filter.is_empty() {
            return Err(Error::InvalidQuery(
                crate::model::error::QueryProblem::Filter(
                    crate::model::error::FilterProblem::Malformed {
                        path: "filter".into(),
                        reason: "an empty filter would delete everything; drop the collection \
                             instead"
                            .into(),
                    },
                ),
            ));
        }
        self.shared.check_live()?;
        Ok(self.command(Vec::new(), Some((filter.clone(), WhereAction::Delete))))
    }

    /// Deletes every entity that passes `filter`, atomically (the set is decided inside the
    /// deleting transaction); returns how many were deleted. An empty filter is refused.
    pub fn delete_by_filter(&self, filter: &crate::query::filter::Filter) -> Result<usize> {
        self.observe(crate::observe::Op::DeleteByFilter, 1, || {
            let out = self.db.call(self.delete_where_command(filter)?)?;
            Ok(out.iter().filter(|w| w.seq.is_some()).count())
        })
    }

    /// The command of [`Collection::update_payload`].
    pub(crate) fn update_payload_command(
        &self,
        ids: &[EntityId],
        update: PayloadUpdate,
    ) -> impl FnOnce(tokio::sync::oneshot::Sender<Result<Vec<Written>>>) -> Command {
        let update = Arc::new(update);
        let ops = ids
            .iter()
            .map(|&id| WriteOp::UpdatePayload {
                id,
                update: Arc::clone(&update),
            })
            .collect();
        self.command(ops, None)
    }

    /// The command of [`Collection::update_payload_where`].
    pub(crate) fn update_payload_where_command(
        &self,
        filter: &crate::query::filter::Filter,
        update: PayloadUpdate,
    ) -> Result<impl FnOnce(tokio::sync::oneshot::Sender<Result<Vec<Written>>>) -> Command> {
        // The update's form is checked with the filter in the writer's step 1.
        self.shared.check_live()?;
        let action = WhereAction::UpdatePayload(Arc::new(update));
        Ok(self.command(Vec::new(), Some((filter.clone(), action))))
    }

    /// Changes the payloads of the entities `ids` by `update` (merge keys, overwrite, delete
    /// keys, clear), atomically: one transaction, one change event per entity, vectors
    /// untouched (no index work beyond the payload indexes). Each new payload is computed from
    /// the stored one inside the transaction, so concurrent updates of other keys are not
    /// lost. Fails whole, writing nothing, if an id does not exist
    /// ([`Error::InvalidEntity`] with [`crate::EntityProblem::NotFound`]), an id repeats, a
    /// key path is malformed, or a resulting payload is too large or does not fit a payload
    /// index.
    ///
    /// # Example
    /// ```
    /// # fn main() -> hybridb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric, PayloadUpdate};
    /// use serde_json::json;
    ///
    /// let db = Database::open(dir.path().join("app.redb"))?;
    /// let docs = db.create_collection("docs", CollectionConfig::new(2, Metric::L2))?;
    /// let id = EntityId::from_key("a");
    /// docs.upsert(Entity::new(id, json!({"lang": "en", "draft": true}), vec![1.0, 0.0]))?;
    ///
    /// let set = json!({"draft": false, "tags": ["x"]}).as_object().cloned().unwrap_or_default();
    /// docs.update_payload(&[id], PayloadUpdate::set(set))?;
    /// docs.update_payload(&[id], PayloadUpdate::Delete(vec!["lang".into()]))?;
    /// let rec = docs.get(id)?.expect("stored");
    /// assert_eq!(serde_json::Value::Object(rec.payload), json!({"draft": false, "tags": ["x"]}));
    /// assert_eq!(rec.vector, vec![1.0, 0.0]);
    /// # Ok(()) }
    /// ```
    pub fn update_payload(&self, ids: &[EntityId], update: PayloadUpdate) -> Result<Vec<Written>> {
        self.observe(crate::observe::Op::UpdatePayload, ids.len(), || {
            self.db.call(self.update_payload_command(ids, update))
        })
    }

    /// Changes the payload of every entity that passes `filter` by `update`, atomically (the
    /// set is decided inside the writing transaction, like [`Collection::delete_by_filter`]);
    /// returns how many entities were updated. An empty filter updates every entity. A
    /// malformed key path fails with [`Error::InvalidUpdate`]; a resulting payload that is too
    /// large or does not fit a payload index fails the whole call with
    /// [`Error::InvalidEntity`] naming that entity. Nothing is written on failure.
    pub fn update_payload_where(
        &self,
        filter: &crate::query::filter::Filter,
        update: PayloadUpdate,
    ) -> Result<usize> {
        self.observe(crate::observe::Op::UpdatePayloadWhere, 1, || {
            let out = self
                .db
                .call(self.update_payload_where_command(filter, update)?)?;
            Ok(out.iter().filter(|w| w.seq.is_some()).count())
        })
    }

    /// Runs a public operation of this collection inside its span and metrics.
    pub(crate) fn observe<T>(
        &self,
        op: crate::observe::Op,
        items: usize,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        crate::observe::op(op, &self.shared.metrics, items, f)
    }

    pub(crate) fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Written>> {
        self.shared.check_live()?;
        self.db.call(self.write_command(ops))
    }

    fn single(&self, op: WriteOp) -> Result<Written> {
        self.write(vec![op])?
            .pop()
            .ok_or_else(|| crate::model::error::corrupted("write returned no outcome"))
    }

    /// Inserts or replaces one entity; returns its new version and change sequence number.
    pub fn upsert(&self, entity: Entity) -> Result<Written> {
        self.observe(crate::observe::Op::Upsert, 1, || {
            self.single(WriteOp::Upsert {
                entity,
                expected_version: None,
            })
        })
    }

    /// Inserts or replaces many entities in one transaction: all or nothing.
    pub fn upsert_batch(&self, entities: Vec<Entity>) -> Result<Vec<Written>> {
        self.observe(crate::observe::Op::UpsertBatch, entities.len(), || {
            self.write(upserts(entities))
        })
    }

    /// Writes `entity` only if its stored version is `expected` (0: only if it does not exist);
    /// otherwise fails with [`Error::Conflict`] naming the current version.
    pub fn upsert_if_version(&self, entity: Entity, expected: u64) -> Result<Written> {
        self.observe(crate::observe::Op::UpsertIfVersion, 1, || {
            self.single(WriteOp::Upsert {
                entity,
                expected_version: Some(expected),
            })
        })
    }

    /// Deletes one entity; returns whether it existed.
    pub fn delete(&self, id: EntityId) -> Result<bool> {
        self.observe(crate::observe::Op::Delete, 1, || {
            Ok(self.single(WriteOp::Delete { id })?.seq.is_some())
        })
    }

    /// Deletes many entities in one transaction; returns how many existed.
    pub fn delete_batch(&self, ids: &[EntityId]) -> Result<usize> {
        self.observe(crate::observe::Op::DeleteBatch, ids.len(), || {
            let out = self.write(ids.iter().map(|&id| WriteOp::Delete { id }).collect())?;
            Ok(out.iter().filter(|w| w.seq.is_some()).count())
        })
    }

    pub(crate) fn read_txn(&self) -> Result<redb::ReadTransaction> {
        self.shared.check_live()?;
        self.db.shared.begin_read()
    }

    /// Maps redb's missing-table error (a drop raced this read) to `CollectionNotFound`.
    pub(crate) fn table_error(&self, e: redb::TableError) -> Error {
        match e {
            redb::TableError::TableDoesNotExist(_) => {
                Error::CollectionNotFound(self.shared.name.clone())
            }
            other => other.into(),
        }
    }

    /// The stored entity, or `None`.
    pub fn get(&self, id: EntityId) -> Result<Option<Record>> {
        self.observe(crate::observe::Op::Get, 1, || {
            Ok(self.records(&[id])?.pop().flatten())
        })
    }

    /// Many entities from one consistent snapshot, in the order asked (`None` for absent ids).
    ///
    /// Served from the record and vector caches where they hold every id asked for, else from
    /// one redb snapshot (`docs/metrics.md` explains why the two never mix two moments).
    pub fn get_many(&self, ids: &[EntityId]) -> Result<Vec<Option<Record>>> {
        self.observe(crate::observe::Op::GetMany, ids.len(), || self.records(ids))
    }

    /// [`Collection::get_many`] without its span (also joins search hits).
    pub(crate) fn records(&self, ids: &[EntityId]) -> Result<Vec<Option<Record>>> {
        self.shared.check_live()?;
        let caches = &self.db.shared.caches;
        let cid = self.shared.stored.cid;
        let Some(count) = caches
            .entities_on()
            .then(|| self.shared.window.stable())
            .flatten()
        else {
            caches.entities_bypassed(ids.len());
            let txn = self.read_txn()?;
            return self.read_many(&txn, ids, None);
        };
        let stamps: Vec<u64> = ids.iter().map(|&id| caches.stamp(cid, id)).collect();
        let mut out: Vec<Option<Record>> = ids
            .iter()
            .zip(&stamps)
            .map(|(&id, &stamp)| {
                caches
                    .entity(cid, id, stamp)
                    .map(|(r, v)| r.to_record(id, &v))
            })
            .collect();
        if out.iter().all(Option::is_some) && self.shared.window.unchanged(count) {
            return Ok(out);
        }
        let txn = self.read_txn()?;
        if !self.shared.window.unchanged(count) {
            // A write began before this snapshot: the hits may describe another moment.
            return self.read_many(&txn, ids, None);
        }
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| out[i].is_none()).collect();
        let wanted: Vec<EntityId> = missing.iter().map(|&i| ids[i]).collect();
        let wanted_stamps: Vec<u64> = missing.iter().map(|&i| stamps[i]).collect();
        let read = self.read_many(&txn, &wanted, Some(&wanted_stamps))?;
        for (i, r) in missing.into_iter().zip(read) {
            out[i] = r;
        }
        Ok(out)
    }

    /// Reads `ids` from `txn`; with `stamps` (taken, in a closed write window that had not
    /// moved when `txn` began, before it) also fills the caches.
    fn read_many(
        &self,
        txn: &redb::ReadTransaction,
        ids: &[EntityId],
        stamps: Option<&[u64]>,
    ) -> Result<Vec<Option<Record>>> {
        let tables = self.record_tables(txn)?;
        let caches = &self.db.shared.caches;
        let cid = self.shared.stored.cid;
        ids.iter()
            .enumerate()
            .map(|(i, &id)| {
                let Some(rec) = tables.entities.get(id)? else {
                    return Ok(None);
                };
                let record = tables.record(id, rec.value())?;
                if let Some(stamps) = stamps.filter(|_| caches.admit_entity(cid, id)) {
                    let cached = Arc::new(CachedRecord {
                        payload: record.payload.clone(),
                        vectors: record.vectors.clone(),
                        version: record.version,
                        updated_at: record.updated_at,
                    });
                    caches.put_entity(cid, id, stamps[i], cached, Arc::from(&record.vector[..]));
                }
                Ok(Some(record))
            })
            .collect()
    }

    /// Number of entities.
    pub fn count(&self) -> Result<u64> {
        self.observe(crate::observe::Op::Count, 1, || self.count_all())
    }

    pub(crate) fn count_all(&self) -> Result<u64> {
        let txn = self.read_txn()?;
        Ok(self.record_tables(&txn)?.entities.len()?)
    }

    /// Up to `limit` entities in id order, starting after `after` (from the start for `None`).
    pub fn scroll(&self, after: Option<EntityId>, limit: usize) -> Result<ScrollPage> {
        self.observe(crate::observe::Op::Scroll, limit, || {
            self.scroll_all(after, limit)
        })
    }

    pub(crate) fn scroll_all(&self, after: Option<EntityId>, limit: usize) -> Result<ScrollPage> {
        self.check_k(limit)?;
        let txn = self.read_txn()?;
        let tables = self.record_tables(&txn)?;
        let start = match after {
            Some(id) => Bound::Excluded(id),
            None => Bound::Unbounded,
        };
        let mut records = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for row in tables
            .entities
            .range::<EntityId>((start, Bound::Unbounded))?
        {
            if records.len() == limit {
                more = true;
                break;
            }
            let (k, v) = row?;
            records.push(tables.record(k.value(), v.value())?);
        }
        let next = if more {
            records.last().map(|r| r.id)
        } else {
            None
        };
        Ok(ScrollPage { records, next })
    }

    /// Opens the entity and vector tables of this collection in `txn`.
    pub(crate) fn record_tables(&self, txn: &redb::ReadTransaction) -> Result<RecordTables> {
        let cid = self.shared.stored.cid;
        let tables = CollectionTables::new(cid);
        let named = self
            .shared
            .named()
            .iter()
            .map(|(name, d)| {
                let t = crate::store::schema::NamedTables::new(cid, d.vid);
                Ok((
                    name.clone(),
                    d.config,
                    txn.open_table(t.vectors())
                        .map_err(|e| self.table_error(e))?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(RecordTables {
            entities: txn
                .open_table(tables.entities())
                .map_err(|e| self.table_error(e))?,
            vectors: txn
                .open_table(tables.vectors())
                .map_err(|e| self.table_error(e))?,
            named,
            dim: self.shared.stored.config.dim as usize,
        })
    }

    pub(crate) fn check_k(&self, k: usize) -> Result<()> {
        let limit = self.db.shared.options.max_k;
        if k == 0 {
            Err(Error::InvalidQuery(QueryProblem::ZeroK))
        } else if k > limit {
            Err(Error::InvalidQuery(QueryProblem::KTooLarge { k, limit }))
        } else {
            Ok(())
        }
    }

    /// Bytes of memory held by this collection's in-memory index.
    pub fn index_memory_bytes(&self) -> usize {
        self.shared.index.memory_bytes()
    }

    /// Number of entities the index can return (equals [`Collection::count`] when idle).
    pub fn indexed_count(&self) -> usize {
        self.shared.index.live_count()
    }

    /// Changes not yet built into the HNSW graph. After a reopen, the changes written since
    /// the last checkpoint are built in by a background thread; until then searches compare
    /// the query with each new vector exactly and keep replaced or deleted nodes out of
    /// their results. Zero once that is done (and always for exact indexes).
    pub fn unlinked_count(&self) -> usize {
        self.shared.index.pending()
    }
}

/// Wraps entities as unconditional upserts.
pub(crate) fn upserts(entities: Vec<Entity>) -> Vec<WriteOp> {
    entities
        .into_iter()
        .map(|entity| WriteOp::Upsert {
            entity,
            expected_version: None,
        })
        .collect()
}

/// A named vector's name, config and table, open for reading.
type NamedTable = (
    String,
    VectorConfig,
    redb::ReadOnlyTable<EntityId, &'static [u8]>,
);

/// A collection's entity and vector tables in one read transaction.
pub(crate) struct RecordTables {
    pub(crate) entities: redb::ReadOnlyTable<EntityId, &'static [u8]>,
    vectors: redb::ReadOnlyTable<EntityId, &'static [u8]>,
    /// Each declared named vector's table.
    named: Vec<NamedTable>,
    dim: usize,
}

impl RecordTables {
    /// The full record of `id`, whose stored entity record is `rec`.
    pub(crate) fn record(&self, id: EntityId, rec: &[u8]) -> Result<Record> {
        let (header, json) = decode_record(rec)?;
        let vector = if self.dim == 0 {
            Vec::new()
        } else {
            let vec = self.vectors.get(id)?.ok_or_else(|| {
                crate::model::error::corrupted(format!("entity {id} has no vector"))
            })?;
            decode_vector(vec.value(), self.dim)?
        };
        Ok(Record {
            id,
            payload: decode_payload(json)?,
            vector,
            vectors: crate::store::load_named::read_named(&self.named, id)?,
            version: header.version,
            updated_at: header.updated_at,
        })
    }
}
