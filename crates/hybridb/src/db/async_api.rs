//! The async (tokio) API: the same writes as [`Collection`], awaited instead of blocking.
//!
//! Writes wait for room in a full queue without limit (backpressure) and resolve after their
//! commit and index update. Reads are the synchronous ones of [`Collection`] (they never wait
//! for the writer; `get` and `scroll` read redb directly and are short).
//!
//! Dropping a write future after it was queued does not cancel the write: it commits anyway,
//! like a fire-and-forget call.

use crate::db::collection::{Collection, upserts};
use crate::model::entity::{Entity, Record};
use crate::model::error::{Result, corrupted};
use crate::model::id::EntityId;
use crate::query::search::{Hit, ScrollPage, SearchRequest};
use crate::store::write::{WriteOp, Written};

/// An async handle to one collection. Cheap to clone.
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
/// let db = Database::open(dir.path().join("a.redb"))?;
/// let docs = db.create_collection("docs", CollectionConfig::new(2, Metric::L2))?.to_async();
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let e = Entity::new(EntityId::from_key("a"), serde_json::json!({}), vec![1.0, 2.0]);
///     let written = docs.upsert(e).await?;
///     assert_eq!(written.version, 1);
///     assert_eq!(docs.search(&[1.0, 2.0], 1)?[0].id, EntityId::from_key("a"));
///     Ok::<_, hybridb::Error>(())
/// })?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AsyncCollection {
    inner: Collection,
}

impl Collection {
    /// The async form of this handle (same collection, same durability).
    pub fn to_async(&self) -> AsyncCollection {
        AsyncCollection {
            inner: self.clone(),
        }
    }
}

impl AsyncCollection {
    /// The blocking form of this handle.
    pub fn blocking(&self) -> &Collection {
        &self.inner
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Written>> {
        self.inner.shared.check_live()?;
        self.inner
            .db
            .call_async(self.inner.write_command(ops))
            .await
    }

    async fn single(&self, op: WriteOp) -> Result<Written> {
        self.write(vec![op])
            .await?
            .pop()
            .ok_or_else(|| corrupted("write returned no outcome"))
    }

    /// See [`Collection::upsert`].
    pub async fn upsert(&self, entity: Entity) -> Result<Written> {
        let fut = self.single(WriteOp::Upsert {
            entity,
            expected_version: None,
        });
        self.observe(crate::observe::Op::Upsert, 1, fut).await
    }

    fn observe<'a, T: 'a>(
        &'a self,
        op: crate::observe::Op,
        items: usize,
        fut: impl std::future::Future<Output = Result<T>> + 'a,
    ) -> impl std::future::Future<Output = Result<T>> + 'a {
        crate::observe::op_async(op, &self.inner.shared.metrics, items, fut)
    }

    /// See [`Collection::upsert_batch`].
    pub async fn upsert_batch(&self, entities: Vec<Entity>) -> Result<Vec<Written>> {
        let n = entities.len();
        self.observe(
            crate::observe::Op::UpsertBatch,
            n,
            self.write(upserts(entities)),
        )
        .await
    }

    /// See [`Collection::upsert_if_version`].
    pub async fn upsert_if_version(&self, entity: Entity, expected: u64) -> Result<Written> {
        let fut = self.single(WriteOp::Upsert {
            entity,
            expected_version: Some(expected),
        });
        self.observe(crate::observe::Op::UpsertIfVersion, 1, fut)
            .await
    }

    /// See [`Collection::delete`].
    pub async fn delete(&self, id: EntityId) -> Result<bool> {
        self.observe(crate::observe::Op::Delete, 1, async {
            Ok(self.single(WriteOp::Delete { id }).await?.seq.is_some())
        })
        .await
    }

    /// See [`Collection::delete_batch`].
    pub async fn delete_batch(&self, ids: &[EntityId]) -> Result<usize> {
        self.observe(crate::observe::Op::DeleteBatch, ids.len(), async {
            let out = self
                .write(ids.iter().map(|&id| WriteOp::Delete { id }).collect())
                .await?;
            Ok(out.iter().filter(|w| w.seq.is_some()).count())
        })
        .await
    }

    /// See [`Collection::delete_by_filter`].
    pub async fn delete_by_filter(&self, filter: &crate::query::filter::Filter) -> Result<usize> {
        self.observe(crate::observe::Op::DeleteByFilter, 1, async {
            let cmd = self.inner.delete_where_command(filter)?;
            let out = self.inner.db.call_async(cmd).await?;
            Ok(out.iter().filter(|w| w.seq.is_some()).count())
        })
        .await
    }

    /// See [`Collection::update_payload`].
    pub async fn update_payload(
        &self,
        ids: &[EntityId],
        update: crate::model::payload_update::PayloadUpdate,
    ) -> Result<Vec<Written>> {
        self.observe(crate::observe::Op::UpdatePayload, ids.len(), async {
            let cmd = self.inner.update_payload_command(ids, update);
            self.inner.db.call_async(cmd).await
        })
        .await
    }

    /// See [`Collection::update_payload_where`].
    pub async fn update_payload_where(
        &self,
        filter: &crate::query::filter::Filter,
        update: crate::model::payload_update::PayloadUpdate,
    ) -> Result<usize> {
        self.observe(crate::observe::Op::UpdatePayloadWhere, 1, async {
            let cmd = self.inner.update_payload_where_command(filter, update)?;
            let out = self.inner.db.call_async(cmd).await?;
            Ok(out.iter().filter(|w| w.seq.is_some()).count())
        })
        .await
    }

    /// See [`Collection::count_where`].
    pub fn count_where(&self, filter: &crate::query::filter::Filter) -> Result<u64> {
        self.inner.count_where(filter)
    }

    /// See [`Collection::scroll_where`].
    pub fn scroll_where(
        &self,
        filter: &crate::query::filter::Filter,
        after: Option<EntityId>,
        limit: usize,
    ) -> Result<ScrollPage> {
        self.inner.scroll_where(filter, after, limit)
    }

    /// See [`Collection::explain`].
    pub fn explain(&self, req: &SearchRequest) -> Result<crate::query::search::Explain> {
        self.inner.explain(req)
    }

    /// See [`Collection::get`].
    pub fn get(&self, id: EntityId) -> Result<Option<Record>> {
        self.inner.get(id)
    }

    /// See [`Collection::get_many`].
    pub fn get_many(&self, ids: &[EntityId]) -> Result<Vec<Option<Record>>> {
        self.inner.get_many(ids)
    }

    /// See [`Collection::count`].
    pub fn count(&self) -> Result<u64> {
        self.inner.count()
    }

    /// See [`Collection::scroll`].
    pub fn scroll(&self, after: Option<EntityId>, limit: usize) -> Result<ScrollPage> {
        self.inner.scroll(after, limit)
    }

    /// See [`Collection::search`].
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.inner.search(query, k)
    }

    /// See [`Collection::search_with`].
    pub fn search_with(&self, req: &SearchRequest) -> Result<Vec<Hit>> {
        self.inner.search_with(req)
    }
}
