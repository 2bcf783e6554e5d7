//! The built-in re-embed saga: moves the collection behind an alias to a new collection with
//! another dimension or metric, with vectors from a user-supplied embedding function, then
//! repoints the alias and drops the old collection.
//!
//! Steps (kind [`REEMBED_KIND`]):
//! 1. `create_target`: create the new collection (or accept it if a previous run created it
//!    with the same dimension and metric); compensation: drop it;
//! 2. `copy`: scroll the source in id order, embed, and write each batch to the target
//!    together with the saga's cursor in one transaction ([`SagaContext::upsert_batch_and_save`]),
//!    so a resumed copy starts after the last written batch; then replay the change log from
//!    the copy's start to carry over writes made to the source meanwhile; no compensation of
//!    its own (dropping the target undoes it);
//! 3. `swap_alias`: catch up again while writers go on (until the delta is small), then
//!    retire the source (it refuses entity writes with [`Error::CollectionReadOnly`] from that
//!    writer job on), carry over the last changes, and repoint the alias (one transaction);
//!    compensation: let the source take writes again and point the alias back to it;
//! 4. `drop_source` (point of no return): drop the source once the searches that resolved the
//!    alias before the swap have let go of it (at most `drop_grace`).
//!
//! What is re-embedded: the default vector (the spec's `vector` is `None`) or one named dense
//! vector (`Some(name)`); every other vector of each entity is carried over unchanged, so the
//! target config must declare the same named vectors (the re-embedded one with its new
//! dimension or metric).
//!
//! Invariants: every entity write the source took before its retirement is in the target
//! when the alias is repointed, and none happens after it (the mark is checked by the writer
//! thread, which set it); so writers that resolve the alias per request lose nothing — during
//! the short final catch-up their writes are refused with a transient error and retried.
//! A reader that resolves the alias for each search ([`Database::collection`]) always gets a
//! live collection and every search runs entirely on one of them: it sees the old vectors
//! until the swap and the new ones after, never a mix and never a missing collection.
//! The retirement mark is durable (`coord.retired`): after a crash the source still refuses
//! writes until the resumed saga drops it (or its compensation lets it take writes again).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::saga::{SagaContext, SagaDefinition, SagaOutcome};
use crate::db::collection::Collection;
use crate::db::handle::Database;
use crate::model::config::{CollectionConfig, validate_collection_name};
use crate::model::entity::Entity;
use crate::model::error::{Error, Result, corrupted};
use crate::model::id::EntityId;

/// The saga kind of the re-embed saga.
pub const REEMBED_KIND: &str = "hybridb.reembed";

/// What to re-embed, and where to.
#[derive(Debug, Clone, PartialEq)]
pub struct ReembedSpec {
    /// The alias readers use; it must exist and point to the source collection.
    pub alias: String,
    /// The new collection's name (must not exist yet, unless a previous run of this saga
    /// created it).
    pub target: String,
    /// The new collection's config (dimension, metric, index, payload indexes, named vectors).
    pub config: CollectionConfig,
    /// The named dense vector to re-embed; `None`: the default vector.
    pub vector: Option<String>,
    /// Entities per copy batch (one transaction each). Default 1,000.
    pub batch_size: usize,
    /// How long `drop_source` waits for handles on the old collection to be released before
    /// dropping it anyway. Default 10 s.
    pub drop_grace: Duration,
}

impl ReembedSpec {
    /// A spec with the default batch size and grace.
    pub fn new(alias: &str, target: &str, config: CollectionConfig) -> Self {
        ReembedSpec {
            alias: alias.to_string(),
            target: target.to_string(),
            config,
            vector: None,
            batch_size: 1000,
            drop_grace: Duration::from_secs(10),
        }
    }

    /// Re-embeds the named dense vector `name` instead of the default one.
    pub fn with_vector(mut self, name: impl Into<String>) -> Self {
        self.vector = Some(name.into());
        self
    }
}

/// Progress of the copy, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReembedProgress {
    /// Entities copied so far (including those of a previous run).
    pub copied: u64,
    /// Entities in the source when this run's copy began.
    pub total: u64,
}

/// Computes an entity's new vector (of the vector being re-embedded); receives the entity as
/// stored in the source, with all its vectors.
pub type EmbedFn = Arc<dyn Fn(&Entity) -> Result<Vec<f32>> + Send + Sync>;
/// Receives copy progress.
pub type ProgressFn = Arc<dyn Fn(ReembedProgress) + Send + Sync>;

#[derive(Debug, Serialize, Deserialize)]
struct Params {
    alias: String,
    source: String,
    target: String,
    config: CollectionConfig,
    /// The named vector re-embedded (`None`: the default one).
    #[serde(default)]
    vector: Option<String>,
    /// The source's internal id when the saga started.
    source_cid: u64,
    batch_size: usize,
    drop_grace_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    /// Last source id copied.
    cursor: Option<EntityId>,
    copied: u64,
    /// Every change to the source up to this sequence number is in the target (set when the
    /// copy starts, advanced by each catch-up).
    synced: Option<u64>,
    /// The internal id of the target this saga created (names can be reused; ids cannot).
    target_cid: Option<u64>,
}

fn params(ctx: &SagaContext<'_>) -> Result<Params> {
    serde_json::from_value(ctx.params().clone())
        .map_err(|e| corrupted(format!("re-embed saga params: {e}")))
}

fn data(ctx: &SagaContext<'_>) -> Result<Data> {
    if ctx.data().is_null() {
        return Ok(Data::default());
    }
    serde_json::from_value(ctx.data().clone())
        .map_err(|e| corrupted(format!("re-embed saga data: {e}")))
}

fn set_data(ctx: &mut SagaContext<'_>, d: &Data) {
    *ctx.data_mut() = json!({
        "cursor": d.cursor,
        "copied": d.copied,
        "synced": d.synced,
        "target_cid": d.target_cid,
    });
}

/// The target entity for a source record: the re-embedded vector from `embed`, checked
/// against its dimension in the target config, every other vector carried over.
fn reembed_record(embed: &EmbedFn, p: &Params, r: crate::model::entity::Record) -> Result<Entity> {
    let mut e = Entity::new(r.id, Value::Object(r.payload), r.vector);
    e.vectors = r.vectors;
    let v = embed(&e)?;
    let dim = match &p.vector {
        None => Some(p.config.dim),
        Some(name) => match p.config.vectors.get(name) {
            Some(crate::model::config::VectorConfig::Dense { dim, .. }) => Some(*dim),
            _ => None,
        },
    };
    let wrong = |problem| Error::InvalidEntity {
        index: 0,
        id: e.id,
        problem,
    };
    match dim {
        Some(dim) if v.len() == dim as usize => {}
        Some(dim) => {
            return Err(wrong(crate::model::error::EntityProblem::WrongDimension {
                expected: dim as usize,
                got: v.len(),
            }));
        }
        None => {
            return Err(wrong(crate::model::error::EntityProblem::UnknownVector {
                name: p.vector.clone().unwrap_or_default(),
            }));
        }
    }
    match &p.vector {
        None => e.vector = v,
        Some(name) => {
            e.vectors
                .insert(name.clone(), crate::model::entity::NamedVector::Dense(v));
        }
    }
    Ok(e)
}

/// The re-embed saga's definition, with the embedding function and progress callback; pass
/// it to [`Database::recover_sagas`] to resume a re-embed after a crash.
pub fn reembed_definition(embed: EmbedFn, progress: Option<ProgressFn>) -> SagaDefinition {
    let embed_copy = Arc::clone(&embed);
    let embed_swap = Arc::clone(&embed);
    SagaDefinition::new(REEMBED_KIND)
        .step(
            "create_target",
            |ctx| {
                let p = params(ctx)?;
                let mut d = data(ctx)?;
                let cid = match ctx.db().collection(&p.target) {
                    Ok(c) if c.name() == p.target => {
                        // Created by this saga before a crash (the name was free at its start).
                        let have = c.config();
                        if have.dim != p.config.dim || have.metric != p.config.metric {
                            return Err(Error::CollectionExists(p.target));
                        }
                        c.shared.stored.cid
                    }
                    Ok(_) => return Err(Error::NameIsAlias(p.target)),
                    Err(Error::CollectionNotFound(_)) => {
                        ctx.db()
                            .create_collection(&p.target, p.config)?
                            .shared
                            .stored
                            .cid
                    }
                    Err(e) => return Err(e),
                };
                d.target_cid = Some(cid);
                set_data(ctx, &d);
                Ok(())
            },
            |ctx| {
                let p = params(ctx)?;
                let d = data(ctx)?;
                // Only the collection this saga created, never one that took its name since.
                match (d.target_cid, ctx.db().shared().collection_shared(&p.target)) {
                    (Some(cid), Ok(c)) if c.stored.cid == cid => {
                        drop(c);
                        match ctx.db().drop_collection(&p.target) {
                            Ok(()) | Err(Error::CollectionNotFound(_)) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                    _ => Ok(()),
                }
            },
        )
        .step(
            "copy",
            move |ctx| copy(ctx, &embed_copy, progress.as_ref()),
            |_| Ok(()),
        )
        .step(
            "swap_alias",
            move |ctx| swap(ctx, &embed_swap),
            |ctx| {
                let p = params(ctx)?;
                // Point it back, if the source is still there (it is: dropping it comes after),
                // and let it take writes again.
                let db = ctx.db().clone();
                let source = p.source.clone();
                super::call(db.inner(), move |s| match s.collection_shared(&source) {
                    Ok(c) => s.unretire(c.stored.cid),
                    Err(_) => Ok(()),
                })?;
                match ctx.db().set_alias(&p.alias, &p.source) {
                    Ok(_) | Err(Error::CollectionNotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            },
        )
        .final_step("drop_source", |ctx| {
            let p = params(ctx)?;
            // The mark is durable; setting it again costs little and covers a file written
            // before it was (best effort: a gone source needs nothing, a held one fails the
            // drop below).
            let src = p.source.clone();
            let _ = super::call(ctx.db().inner(), move |s| s.retire(&src));
            ctx.db().drop_collection_when_unused(
                &p.source,
                p.source_cid,
                Duration::from_millis(p.drop_grace_ms),
            )
        })
}

/// The copy step: batches from the cursor on, then the writes made to the source meanwhile.
fn copy(ctx: &mut SagaContext<'_>, embed: &EmbedFn, progress: Option<&ProgressFn>) -> Result<()> {
    let p = params(ctx)?;
    let mut d = data(ctx)?;
    let db = ctx.db().clone();
    let source = Collection::new(
        Arc::clone(db.inner()),
        db.shared().collection_shared(&p.source)?,
    );
    let target = Collection::new(
        Arc::clone(db.inner()),
        db.shared().collection_shared(&p.target)?,
    );
    if d.synced.is_none() {
        d.synced = Some(db.last_seq()?);
        set_data(ctx, &d);
        ctx.save()?;
    }
    let total = source.count()?;
    let batch = p.batch_size.clamp(1, db.options().max_k);
    loop {
        let page = source.scroll(d.cursor, batch)?;
        let Some(last) = page.records.last().map(|r| r.id) else {
            break;
        };
        let mut out = Vec::with_capacity(page.records.len());
        for r in page.records {
            out.push(reembed_record(embed, &p, r)?);
        }
        d.copied += out.len() as u64;
        d.cursor = Some(last);
        set_data(ctx, &d);
        ctx.upsert_batch_and_save(&target, out)?;
        if let Some(cb) = progress {
            cb(ReembedProgress {
                copied: d.copied,
                total,
            });
        }
        if page.next.is_none() {
            break;
        }
    }
    // Carry over writes to the source made since the copy began (they may have landed behind
    // the cursor); the swap step carries over the rest.
    catch_up(ctx, &mut d, &p, embed, &source, &target)?;
    Ok(())
}

/// Copies into the target every source entity changed after `d.synced` and up to the last
/// change committed when it starts (or deletes it there), and advances `d.synced` (saved) to
/// that change. Returns how many entities it
/// carried over.
fn catch_up(
    ctx: &mut SagaContext<'_>,
    d: &mut Data,
    p: &Params,
    embed: &EmbedFn,
    source: &Collection,
    target: &Collection,
) -> Result<u64> {
    let db = ctx.db().clone();
    let mut after = d.synced.unwrap_or(0);
    let mut carried = 0;
    // Up to the changes committed now: with writers active (and this loop's own writes to the
    // target) the log never stops growing; later changes are the next round's.
    let until = db.last_seq()?;
    while after < until {
        let mut events = db.changes_since(after, 4096)?;
        events.retain(|e| e.seq <= until);
        let Some(last) = events.last().map(|e| e.seq) else {
            break;
        };
        let mut ids: Vec<EntityId> = events
            .iter()
            .filter(|e| e.collection == p.source)
            .filter_map(|e| e.id)
            .collect();
        ids.sort();
        ids.dedup();
        carried += ids.len() as u64;
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for (id, rec) in ids.iter().zip(source.get_many(&ids)?) {
            match rec {
                Some(r) => upserts.push(reembed_record(embed, p, r)?),
                None => deletes.push(*id),
            }
        }
        if !upserts.is_empty() {
            target.upsert_batch(upserts)?;
        }
        if !deletes.is_empty() {
            target.delete_batch(&deletes)?;
        }
        after = last;
    }
    if d.synced != Some(after) {
        d.synced = Some(after);
        set_data(ctx, d);
        ctx.save()?;
    }
    Ok(carried)
}

/// Catch-up rounds of the swap step before it retires the source anyway.
const SWAP_ROUNDS: usize = 8;
/// A catch-up round that carried over fewer entities than this ends the optimistic rounds.
const SMALL_DELTA: u64 = 100;

/// The swap step: catch up while writers go on (a few rounds, until the delta is small); then
/// retire the source (from then on it refuses writes with [`Error::CollectionReadOnly`]),
/// carry over the last changes, and repoint the alias. So every write the source took is in
/// the target, and writers that resolve the alias per request lose nothing: between the
/// retirement and the repoint (one small catch-up) their writes are refused and retried.
fn swap(ctx: &mut SagaContext<'_>, embed: &EmbedFn) -> Result<()> {
    let p = params(ctx)?;
    let mut d = data(ctx)?;
    let db = ctx.db().clone();
    let handles = |db: &Database| -> Result<(Collection, Collection)> {
        Ok((
            Collection::new(
                Arc::clone(db.inner()),
                db.shared().collection_shared(&p.source)?,
            ),
            Collection::new(
                Arc::clone(db.inner()),
                db.shared().collection_shared(&p.target)?,
            ),
        ))
    };
    // A repeated step (after a crash) may find the alias swapped already.
    if db.alias_target(&p.alias).as_deref() != Some(p.target.as_str()) {
        let (source, target) = handles(&db)?;
        for _ in 0..SWAP_ROUNDS {
            if catch_up(ctx, &mut d, &p, embed, &source, &target)? < SMALL_DELTA {
                break;
            }
        }
        // Prepared two-phase-commit writes to the source must land first: wait for them.
        let mut waited = 0;
        loop {
            let src = p.source.clone();
            match super::call(db.inner(), move |s| s.retire(&src)) {
                Err(Error::CollectionInUse { .. }) if waited < 200 => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                    waited += 1;
                }
                other => break other?,
            }
        }
        catch_up(ctx, &mut d, &p, embed, &source, &target)?;
        drop((source, target));
        ctx.db().set_alias(&p.alias, &p.target)?;
        return Ok(());
    }
    // Swapped before a crash: the durable mark is there; set it again for files written
    // before it was durable.
    let src = p.source.clone();
    match super::call(db.inner(), move |s| s.retire(&src)) {
        Ok(()) | Err(Error::CollectionNotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Database {
    /// Re-embeds the collection behind `spec.alias` into `spec.target` with vectors from
    /// `embed`, then repoints the alias and drops the old collection, as a saga (see
    /// [`crate::coord::reembed`]). `progress` is called after every copied batch.
    ///
    /// Fails before starting with [`Error::AliasNotFound`], [`Error::InvalidCollectionName`],
    /// [`Error::InvalidConfig`], or [`Error::CollectionExists`] when `target` exists. A
    /// failing step (e.g. `embed` returning an error) compensates: the target is dropped and
    /// the alias still points to the source ([`Error::SagaFailed`] with `compensated: true`).
    /// After a crash, resume it with [`Database::recover_sagas`] and [`reembed_definition`].
    ///
    /// Writers may go on during the re-embed: every write the source accepted is carried over.
    /// Just before the swap the source refuses writes ([`Error::CollectionReadOnly`],
    /// transient) until the alias points to the target: resolve the alias again and retry.
    pub fn reembed(
        &self,
        spec: ReembedSpec,
        embed: impl Fn(&Entity) -> Result<Vec<f32>> + Send + Sync + 'static,
        progress: impl Fn(ReembedProgress) + Send + Sync + 'static,
    ) -> Result<SagaOutcome> {
        let def = reembed_definition(Arc::new(embed), Some(Arc::new(progress)));
        self.run_saga(&def, self.reembed_params(&spec)?)
    }

    /// Checks a spec and turns it into the saga's parameters (resolving the source now).
    pub fn reembed_params(&self, spec: &ReembedSpec) -> Result<Value> {
        let source = self
            .alias_target(&spec.alias)
            .ok_or_else(|| Error::AliasNotFound(spec.alias.clone()))?;
        validate_collection_name(&spec.target)?;
        spec.config.validate()?;
        if self.shared().collection_shared(&spec.target).is_ok() {
            return Err(Error::CollectionExists(spec.target.clone()));
        }
        if self.alias_target(&spec.target).is_some() {
            return Err(Error::NameIsAlias(spec.target.clone()));
        }
        if spec.batch_size == 0 {
            return Err(Error::InvalidCoordination(
                "re-embed batch size must be at least 1".into(),
            ));
        }
        let source_shared = self.shared().collection_shared(&source)?;
        // Every vector carried over must exist in the target with the same declaration.
        let carried = source_shared
            .config()
            .vectors
            .into_iter()
            .filter(|(name, _)| Some(name) != spec.vector.as_ref());
        for (name, config) in carried {
            if spec.config.vectors.get(&name) != Some(&config) {
                return Err(Error::InvalidConfig(format!(
                    "the target config must declare vector {name:?} as the source does \
                     ({config:?}): it is carried over unchanged"
                )));
            }
        }
        if let Some(name) = &spec.vector
            && !matches!(
                spec.config.vectors.get(name),
                Some(crate::model::config::VectorConfig::Dense { .. })
            )
        {
            return Err(Error::InvalidConfig(format!(
                "the target config must declare the re-embedded vector {name:?} as dense"
            )));
        }
        let source_cid = source_shared.stored.cid;
        serde_json::to_value(Params {
            alias: spec.alias.clone(),
            source,
            source_cid,
            target: spec.target.clone(),
            config: spec.config.clone(),
            vector: spec.vector.clone(),
            batch_size: spec.batch_size,
            drop_grace_ms: spec.drop_grace.as_millis() as u64,
        })
        .map_err(|e| corrupted(format!("re-embed params: {e}")))
    }
}
