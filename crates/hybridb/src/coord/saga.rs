//! Sagas: multi-step operations with compensations and a durable step log (`coord.sagas`).
//!
//! Invariants:
//! - a step is logged done (`Running { next: i + 1 }`) only after it ran, in one durable
//!   commit with the saga's data; so after a crash a step may run again, and steps (and
//!   compensations) must be idempotent; [`SagaContext::upsert_batch_and_save`] writes entities
//!   and the saga's data in ONE transaction, so a copy loop resumes exactly where it stopped;
//! - direction is in the log: a failed step switches the saga to `Compensating` durably
//!   before the first compensation runs, and recovery continues in the logged direction;
//! - a step without compensation is a point of no return: once it has started, the saga only
//!   goes forward (a failure there leaves it `Running`, to be resumed);
//! - only the writer thread writes the log.

use std::sync::Arc;

use redb::ReadableTable;
use serde_json::Value;

use super::log::{SagaRecord, SagaState};
use super::two_phase::LiveGuard;
use crate::db::collection::Collection;
use crate::db::handle::Database;
use crate::model::entity::Entity;
use crate::model::error::{Error, Result, corrupted};
use crate::model::retry::{RetryPolicy, retry};
use crate::model::sync::{lock, now_ms};
use crate::store::schema::{COORD_SAGAS, META_LAST_SAGA};

/// A step's action or compensation.
pub type StepFn = Arc<dyn Fn(&mut SagaContext<'_>) -> Result<()> + Send + Sync>;

struct StepDef {
    name: String,
    action: StepFn,
    compensation: Option<StepFn>,
}

/// What a running step sees: the saga's parameters and its durable data.
pub struct SagaContext<'a> {
    db: &'a Database,
    id: u64,
    params: &'a Value,
    data: Value,
}

impl std::fmt::Debug for SagaContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaContext")
            .field("id", &self.id)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl SagaContext<'_> {
    /// The database.
    pub fn db(&self) -> &Database {
        self.db
    }

    /// The saga id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The parameters the saga was started with.
    pub fn params(&self) -> &Value {
        self.params
    }

    /// The saga's data: state that steps keep across steps and restarts (a JSON value,
    /// `null` at first). Saved with every logged step, or now with [`SagaContext::save`].
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The saga's data, to change; see [`SagaContext::data`].
    pub fn data_mut(&mut self) -> &mut Value {
        &mut self.data
    }

    /// Makes the data durable now (progress inside a long step).
    pub fn save(&mut self) -> Result<()> {
        let (id, data) = (self.id, self.data.to_string());
        super::call(self.db.inner(), move |s| {
            let txn = s.redb()?.begin_write()?;
            update_record(&txn, id, |r| r.data = data)?;
            super::commit_immediate(s, txn)
        })
    }

    /// Upserts `entities` into `coll` and saves the data, in ONE transaction: after a crash
    /// either both happened or neither, so a batched copy that keeps its cursor in the data
    /// resumes after the last batch written, never duplicating or skipping one.
    pub fn upsert_batch_and_save(
        &mut self,
        coll: &Collection,
        entities: Vec<Entity>,
    ) -> Result<()> {
        let (id, data) = (self.id, self.data.to_string());
        let shared = Arc::clone(&coll.shared);
        let ops = crate::db::collection::upserts(entities);
        super::call(self.db.inner(), move |s| {
            let txn = s.redb()?.begin_write()?;
            update_record(&txn, id, |r| r.data = data)?;
            let (pending, _) = super::write_ops(s, &txn, vec![(shared, ops)])?;
            super::commit_applied(s, txn, pending)
        })
    }
}

/// A step of the protocol, reported to [`SagaDefinition::on_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SagaEvent {
    /// The saga is logged (first run only).
    Started {
        /// Saga id.
        saga: u64,
    },
    /// A step (or, with `compensating`, its compensation) is about to run.
    StepStarting {
        /// Saga id.
        saga: u64,
        /// Step index.
        step: usize,
        /// True for the compensation.
        compensating: bool,
    },
    /// It ran and its completion is logged.
    StepDone {
        /// Saga id.
        saga: u64,
        /// Step index.
        step: usize,
        /// True for the compensation.
        compensating: bool,
    },
    /// The saga reached a final state.
    Finished {
        /// Saga id.
        saga: u64,
        /// `Completed` or `Compensated`.
        state: SagaState,
    },
}

type Hook = Arc<dyn Fn(&SagaEvent) + Send + Sync>;

/// The steps of a kind of saga. A definition holds code, so it is not stored: recovery
/// needs it again ([`Database::recover_sagas`]), matched by `kind`.
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use hybridb::coord::saga::SagaDefinition;
/// let db = hybridb::Database::open(dir.path().join("s.redb"))?;
/// let def = SagaDefinition::new("greet")
///     .step("a", |ctx| { ctx.data_mut()["a"] = true.into(); Ok(()) }, |_| Ok(()))
///     .final_step("b", |_| Ok(()));
/// let outcome = db.run_saga(&def, serde_json::json!({}))?;
/// assert!(outcome.state == hybridb::coord::log::SagaState::Completed);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SagaDefinition {
    kind: String,
    steps: Arc<Vec<StepDef>>,
    retry: RetryPolicy,
    hook: Option<Hook>,
}

impl std::fmt::Debug for SagaDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaDefinition")
            .field("kind", &self.kind)
            .field(
                "steps",
                &self
                    .steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SagaDefinition {
    /// An empty saga of kind `kind`.
    pub fn new(kind: impl Into<String>) -> Self {
        SagaDefinition {
            kind: kind.into(),
            steps: Arc::new(Vec::new()),
            retry: RetryPolicy::default(),
            hook: None,
        }
    }

    fn push(mut self, name: &str, action: StepFn, compensation: Option<StepFn>) -> Self {
        let mut steps: Vec<StepDef> = match Arc::try_unwrap(self.steps) {
            Ok(v) => v,
            Err(shared) => shared
                .iter()
                .map(|s| StepDef {
                    name: s.name.clone(),
                    action: Arc::clone(&s.action),
                    compensation: s.compensation.clone(),
                })
                .collect(),
        };
        steps.push(StepDef {
            name: name.to_string(),
            action,
            compensation,
        });
        self.steps = Arc::new(steps);
        self
    }

    /// Adds a step and its compensation (both idempotent; the compensation also runs for a
    /// step that failed part-way or never ran).
    pub fn step(
        self,
        name: &str,
        action: impl Fn(&mut SagaContext<'_>) -> Result<()> + Send + Sync + 'static,
        compensation: impl Fn(&mut SagaContext<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.push(name, Arc::new(action), Some(Arc::new(compensation)))
    }

    /// Adds a step that cannot be compensated: once it starts, the saga only goes forward
    /// (put such steps last).
    pub fn final_step(
        self,
        name: &str,
        action: impl Fn(&mut SagaContext<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.push(name, Arc::new(action), None)
    }

    /// Sets the retries of transient step errors (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Calls `hook` at every step (see [`SagaEvent`]).
    pub fn on_event(mut self, hook: impl Fn(&SagaEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    fn emit(&self, e: SagaEvent) {
        if let Some(h) = &self.hook {
            h(&e);
        }
    }
}

/// How a saga run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaOutcome {
    /// Saga id.
    pub id: u64,
    /// `Completed`, `Compensated`, or (after a failure in a step without compensation, or of
    /// a compensation) the state to resume from.
    pub state: SagaState,
    /// The error that stopped it going forward, if any.
    pub error: Option<String>,
    /// The step that failed, if one failed in this run.
    pub failed_step: Option<String>,
}

/// A saga in the log, as listed by [`Database::sagas`].
#[derive(Debug, Clone, PartialEq)]
pub struct SagaInfo {
    /// Saga id.
    pub id: u64,
    /// Its kind.
    pub kind: String,
    /// Where it stands.
    pub state: SagaState,
    /// Its parameters.
    pub params: Value,
    /// Its data.
    pub data: Value,
    /// The error that made it compensate, if any.
    pub error: Option<String>,
}

fn update_record(
    txn: &redb::WriteTransaction,
    id: u64,
    f: impl FnOnce(&mut SagaRecord),
) -> Result<()> {
    let mut table = txn.open_table(COORD_SAGAS)?;
    let mut rec = match table.get(id)? {
        Some(v) => SagaRecord::decode(v.value())?,
        None => return Err(corrupted(format!("saga {id} is not in the log"))),
    };
    f(&mut rec);
    rec.updated_at = now_ms();
    table.insert(id, rec.encode().as_slice())?;
    Ok(())
}

fn log_state(
    db: &Database,
    id: u64,
    state: SagaState,
    data: &Value,
    error: Option<String>,
) -> Result<()> {
    let data = data.to_string();
    super::call(db.inner(), move |s| {
        let txn = s.redb()?.begin_write()?;
        update_record(&txn, id, |r| {
            r.state = state;
            r.data = data;
            if error.is_some() {
                r.error = error;
            }
        })?;
        super::commit_immediate(s, txn)
    })
}

fn parse(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| corrupted(format!("saga {what}: {e}")))
}

/// Runs a saga from its logged state until it is final or cannot go on.
fn drive(db: &Database, def: &SagaDefinition, id: u64, rec: SagaRecord) -> Result<SagaOutcome> {
    let params = parse(&rec.params, "params")?;
    let mut ctx = SagaContext {
        db,
        id,
        params: &params,
        data: parse(&rec.data, "data")?,
    };
    let steps = &def.steps;
    if rec.steps.len() != steps.len()
        || rec
            .steps
            .iter()
            .zip(steps.iter())
            .any(|(a, b)| *a != b.name)
    {
        return Err(Error::InvalidCoordination(format!(
            "saga {id} was logged with steps {:?}, the definition of {:?} has other steps",
            rec.steps, def.kind
        )));
    }
    let mut state = rec.state;
    let mut error = rec.error;
    let mut failed_step = None;
    loop {
        match state {
            SagaState::Completed | SagaState::Compensated => {
                def.emit(SagaEvent::Finished { saga: id, state });
                return Ok(SagaOutcome {
                    id,
                    state,
                    error,
                    failed_step,
                });
            }
            SagaState::Running { next } => {
                let i = next as usize;
                let Some(step) = steps.get(i) else {
                    state = SagaState::Completed;
                    log_state(db, id, state, &ctx.data, None)?;
                    continue;
                };
                def.emit(SagaEvent::StepStarting {
                    saga: id,
                    step: i,
                    compensating: false,
                });
                match retry(def.retry, || (step.action)(&mut ctx)) {
                    Ok(()) => {
                        state = SagaState::Running { next: next + 1 };
                        log_state(db, id, state, &ctx.data, None)?;
                        def.emit(SagaEvent::StepDone {
                            saga: id,
                            step: i,
                            compensating: false,
                        });
                    }
                    Err(e) => {
                        let why = format!("step {:?}: {e}", step.name);
                        failed_step = Some(step.name.clone());
                        // Past a point of no return (this step or an earlier one without
                        // compensation): only forward.
                        if steps[..=i].iter().any(|s| s.compensation.is_none()) {
                            return Ok(SagaOutcome {
                                id,
                                state,
                                error: Some(why),
                                failed_step,
                            });
                        }
                        state = SagaState::Compensating { pending: next + 1 };
                        error = Some(why);
                        log_state(db, id, state, &ctx.data, error.clone())?;
                    }
                }
            }
            SagaState::Compensating { pending } => {
                if pending == 0 {
                    state = SagaState::Compensated;
                    log_state(db, id, state, &ctx.data, None)?;
                    continue;
                }
                let i = pending as usize - 1;
                let step = steps.get(i).ok_or_else(|| {
                    corrupted(format!(
                        "saga {id}: compensating step {i} of {}",
                        steps.len()
                    ))
                })?;
                def.emit(SagaEvent::StepStarting {
                    saga: id,
                    step: i,
                    compensating: true,
                });
                if let Some(comp) = &step.compensation
                    && let Err(e) = retry(def.retry, || comp(&mut ctx))
                {
                    return Ok(SagaOutcome {
                        id,
                        state,
                        error: Some(format!(
                            "{}; then compensating step {:?} failed: {e}",
                            error.unwrap_or_default(),
                            step.name
                        )),
                        failed_step: Some(step.name.clone()),
                    });
                }
                state = SagaState::Compensating {
                    pending: pending - 1,
                };
                log_state(db, id, state, &ctx.data, None)?;
                def.emit(SagaEvent::StepDone {
                    saga: id,
                    step: i,
                    compensating: true,
                });
            }
        }
    }
}

fn read_record(db: &Database, id: u64) -> Result<Option<SagaRecord>> {
    let txn = db.shared().begin_read()?;
    let table = txn.open_table(COORD_SAGAS)?;
    match table.get(id)? {
        Some(v) => Ok(Some(SagaRecord::decode(v.value())?)),
        None => Ok(None),
    }
}

impl Database {
    /// Starts a saga of `def` with `params` (logged durably first) and runs it. Returns the
    /// outcome when it completed; [`Error::SagaFailed`] when a step failed (with
    /// `compensated: true` once every started step was compensated; `false` when it must be
    /// resumed by [`Database::recover_sagas`]).
    pub fn run_saga(&self, def: &SagaDefinition, params: Value) -> Result<SagaOutcome> {
        self.observe(crate::observe::Op::RunSaga, || {
            self.run_saga_unobserved(def, params)
        })
    }

    fn run_saga_unobserved(&self, def: &SagaDefinition, params: Value) -> Result<SagaOutcome> {
        let rec = SagaRecord {
            kind: def.kind.clone(),
            params: params.to_string(),
            steps: def.steps.iter().map(|s| s.name.clone()).collect(),
            state: SagaState::Running { next: 0 },
            data: Value::Null.to_string(),
            error: None,
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        let encoded = rec.encode();
        let id = super::call(self.inner(), move |s| {
            let txn = s.redb()?.begin_write()?;
            let id = super::next_id(&txn, META_LAST_SAGA)?;
            // Live before it is visible in the log, so a concurrent recovery never takes it.
            lock(&s.coord.live_sagas).insert(id);
            txn.open_table(COORD_SAGAS)?
                .insert(id, encoded.as_slice())?;
            super::commit_immediate(s, txn)?;
            Ok(id)
        })?;
        let _live = LiveGuard::saga(self, id);
        def.emit(SagaEvent::Started { saga: id });
        into_result(drive(self, def, id, rec)?)
    }

    /// Resumes every unfinished saga whose kind has a definition in `defs`, forward or
    /// backward as its log says, and returns their outcomes (compensated sagas are outcomes
    /// here, not errors; so is a definition whose steps differ from the logged ones: the saga
    /// is left as it is, with the reason in `error`). Sagas of other kinds are left alone, as are sagas this process is
    /// running right now.
    pub fn recover_sagas(&self, defs: &[&SagaDefinition]) -> Result<Vec<SagaOutcome>> {
        self.observe(crate::observe::Op::RecoverSagas, || {
            self.recover_sagas_unobserved(defs)
        })
    }

    fn recover_sagas_unobserved(&self, defs: &[&SagaDefinition]) -> Result<Vec<SagaOutcome>> {
        let mut out = Vec::new();
        for info in self.sagas()? {
            if info.state.is_final() {
                continue;
            }
            let Some(def) = defs.iter().find(|d| d.kind == info.kind) else {
                continue;
            };
            if !lock(&self.shared().coord.live_sagas).insert(info.id) {
                continue; // running in this process
            }
            let _live = LiveGuardAdopt {
                db: self,
                id: info.id,
            };
            let Some(rec) = read_record(self, info.id)? else {
                continue;
            };
            match drive(self, def, info.id, rec) {
                Ok(o) => out.push(o),
                // A definition that does not fit this saga: report it, go on with the others.
                Err(e @ Error::InvalidCoordination(_)) => out.push(SagaOutcome {
                    id: info.id,
                    state: info.state,
                    error: Some(e.to_string()),
                    failed_step: None,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every saga in the log, oldest first.
    pub fn sagas(&self) -> Result<Vec<SagaInfo>> {
        let txn = self.shared().begin_read()?;
        let table = txn.open_table(COORD_SAGAS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let rec = SagaRecord::decode(v.value())?;
            out.push(SagaInfo {
                id: k.value(),
                kind: rec.kind,
                state: rec.state,
                params: parse(&rec.params, "params")?,
                data: parse(&rec.data, "data")?,
                error: rec.error,
            });
        }
        Ok(out)
    }
}

/// Removes a recovered saga from the live set when recovery is done with it.
struct LiveGuardAdopt<'a> {
    db: &'a Database,
    id: u64,
}

impl Drop for LiveGuardAdopt<'_> {
    fn drop(&mut self) {
        lock(&self.db.shared().coord.live_sagas).remove(&self.id);
    }
}

fn into_result(o: SagaOutcome) -> Result<SagaOutcome> {
    match o.state {
        SagaState::Completed => Ok(o),
        state => Err(Error::SagaFailed {
            saga: o.id,
            step: o.failed_step.unwrap_or_default(),
            reason: o.error.unwrap_or_default(),
            compensated: state == SagaState::Compensated,
        }),
    }
}
