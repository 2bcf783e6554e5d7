//! Two-phase commit across hybridb collections and user-supplied participants.
//!
//! The coordinator's log lives in `coord.txns` (see [`super::log`]); every log write goes
//! through the writer thread and commits `Immediate`.
//!
//! Protocol of [`Transaction::commit`]:
//! 1. **begin**: a new transaction id and the participant names are logged (`Active`);
//! 2. **prepare**: each participant is asked in turn, with a time limit; a participant that
//!    fails transiently (down) is retried with backoff until the limit. Any vote other than
//!    commit, a final error or the limit decides abort;
//! 3. **decision**: `Committing` or `Aborting` is logged durably BEFORE any participant hears
//!    of it;
//! 4. **phase 2**: commit (or abort) is sent to every participant, retried with backoff;
//! 5. **completion**: `Committed` / `Aborted` is logged once every participant acknowledged.
//!    Participants that never acknowledged leave the transaction in doubt for
//!    [`Database::recover_transactions`], which re-sends the logged decision (and aborts
//!    transactions that never reached one).
//!
//! The built-in participant [`STORE`] stands for every hybridb collection written in the
//! transaction: prepare validates the writes and stages them in `coord.staged`; commit applies
//! the staged batch through the normal write path and deletes it, in one transaction (so a
//! repeated commit finds nothing to do); abort deletes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::ReadableTable;

use super::log::{StagedBatch, StagedOp, StagedPart, TxnRecord, TxnState};
use crate::db::collection::Collection;
use crate::db::handle::Database;
use crate::model::entity::Entity;
use crate::model::error::{Error, Result, corrupted};
use crate::model::id::EntityId;
use crate::model::retry::RetryPolicy;
use crate::model::sync::{lock, now_ms};
use crate::store::collection::CollectionShared;
use crate::store::schema::{COORD_STAGED, COORD_TXNS, META_LAST_TXID};
use crate::store::shared::Shared;

mod recovery;

pub(crate) use recovery::resolve_on_open;
use recovery::store_participant;

/// The name of the built-in participant (the hybridb collections of the transaction); user
/// participants may not take it.
pub const STORE: &str = "hybridb";

/// A participant's answer to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// Prepared: the participant has made its part durable and promises to commit it when
    /// told to, even after a crash.
    Commit,
    /// Refused, with the reason; the transaction aborts.
    Abort(String),
}

/// One side of a two-phase commit, e.g. an external service.
///
/// Requirements, which recovery relies on:
/// - every method is idempotent per transaction id: a repeated call (after a timeout, a
///   crash or a retry) has the effect of one;
/// - `prepare` returning [`Vote::Commit`] means the participant's part is durable and will
///   commit if `commit` is called, whatever happens in between;
/// - `abort` may be called for a transaction the participant never prepared (or never heard
///   of) and must then succeed; a `prepare` arriving after `abort` for the same id must vote
///   [`Vote::Abort`] (a prepare that timed out may still be running when the abort is sent);
/// - errors that may go away (the service is down) should be [`Error::Participant`] with
///   `transient: true` (or another transient error): they are retried with backoff.
pub trait Participant: Send + Sync {
    /// A stable name, unique in a transaction; recorded in the log, and used to find the
    /// participant again in [`Database::recover_transactions`].
    fn name(&self) -> &str;
    /// Phase 1: make this transaction's part durable and vote.
    fn prepare(&self, txid: u64) -> Result<Vote>;
    /// Phase 2 after a commit decision.
    fn commit(&self, txid: u64) -> Result<()>;
    /// Phase 2 after an abort decision (or in recovery of an undecided transaction).
    fn abort(&self, txid: u64) -> Result<()>;
}

/// Timing of a two-phase commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoPhaseOptions {
    /// How long one participant may take to prepare, retries included; then the transaction
    /// aborts. Default 10 s.
    pub prepare_timeout: Duration,
    /// Backoff between prepare attempts of a participant that failed transiently (its
    /// `max_attempts` is ignored: the timeout bounds the retries). Default 10 ms doubling to
    /// 500 ms.
    pub prepare_backoff: RetryPolicy,
    /// Retries of phase-2 calls (commit or abort), any error. After the last attempt the
    /// participant is reported in doubt. Default 8 attempts, 10 ms doubling to 1 s.
    pub phase2_retry: RetryPolicy,
}

impl Default for TwoPhaseOptions {
    fn default() -> Self {
        TwoPhaseOptions {
            prepare_timeout: Duration::from_secs(10),
            prepare_backoff: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(500),
            },
            phase2_retry: RetryPolicy {
                max_attempts: 8,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_secs(1),
            },
        }
    }
}

/// A step of the protocol, reported to [`Transaction::on_event`] (for logging, metrics and
/// fault-injection tests).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnEvent {
    /// The transaction and its participants are logged.
    Begun {
        /// Transaction id.
        txid: u64,
    },
    /// About to ask `participant` to prepare.
    Preparing {
        /// Transaction id.
        txid: u64,
        /// The participant.
        participant: String,
    },
    /// `participant` answered.
    Voted {
        /// Transaction id.
        txid: u64,
        /// The participant.
        participant: String,
        /// Whether it voted commit.
        commit: bool,
    },
    /// The decision is durable in the log.
    Decided {
        /// Transaction id.
        txid: u64,
        /// Commit (true) or abort.
        commit: bool,
    },
    /// About to send the decision to `participant`.
    Finishing {
        /// Transaction id.
        txid: u64,
        /// The participant.
        participant: String,
    },
    /// Every participant acknowledged; the final state is logged.
    Completed {
        /// Transaction id.
        txid: u64,
        /// Committed (true) or aborted.
        committed: bool,
    },
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOutcome {
    /// The transaction id.
    pub txid: u64,
    /// True if the decision was commit.
    pub committed: bool,
    /// Why it aborted (the first refusal, error or timeout).
    pub reason: Option<String>,
    /// Participants that did not acknowledge the decision after the retries: the transaction
    /// stays in doubt until [`Database::recover_transactions`] finishes it. Empty normally.
    pub in_doubt: Vec<String>,
}

/// A transaction in the coordinator's log, as listed by [`Database::transactions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnInfo {
    /// Transaction id.
    pub txid: u64,
    /// Where it stands.
    pub state: TxnState,
    /// Participant names.
    pub participants: Vec<String>,
    /// Why it aborted, if it did.
    pub reason: Option<String>,
}

/// What [`Database::recover_transactions`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Transactions whose commit decision was re-sent to every participant.
    pub committed: Vec<u64>,
    /// Transactions aborted (undecided ones, and decided aborts re-sent).
    pub aborted: Vec<u64>,
    /// Transactions still in doubt, with the participants that were not supplied or did not
    /// acknowledge.
    pub unresolved: Vec<(u64, Vec<String>)>,
}

type Hook = Arc<dyn Fn(&TxnEvent) + Send + Sync>;

/// A two-phase-commit transaction being built: writes to hybridb collections plus user
/// participants. Nothing happens until [`Transaction::commit`].
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
/// let db = Database::open(dir.path().join("t.redb"))?;
/// let a = db.create_collection("a", CollectionConfig::new(2, Metric::L2))?;
/// let b = db.create_collection("b", CollectionConfig::new(3, Metric::L2))?;
/// let mut tx = db.begin_transaction();
/// tx.upsert(&a, Entity::new(EntityId::from_key("x"), serde_json::json!({}), vec![1.0, 2.0]));
/// tx.delete(&b, EntityId::from_key("y"));
/// // tx.enlist(my_service_participant);
/// let outcome = tx.commit()?;
/// assert!(outcome.committed);
/// assert!(a.get(EntityId::from_key("x"))?.is_some());
/// # Ok(()) }
/// ```
pub struct Transaction {
    db: Database,
    writes: BTreeMap<u64, (Arc<CollectionShared>, Vec<StagedOp>)>,
    participants: Vec<Arc<dyn Participant>>,
    options: TwoPhaseOptions,
    hook: Option<Hook>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("collections", &self.writes.len())
            .field(
                "participants",
                &self
                    .participants
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Transaction {
    fn ops(&mut self, coll: &Collection) -> &mut Vec<StagedOp> {
        &mut self
            .writes
            .entry(coll.shared.stored.cid)
            .or_insert_with(|| (Arc::clone(&coll.shared), Vec::new()))
            .1
    }

    /// Adds an upsert of `entity` into `coll` (validated at prepare).
    pub fn upsert(&mut self, coll: &Collection, entity: Entity) -> &mut Self {
        self.ops(coll).push(StagedOp::upsert(&entity));
        self
    }

    /// Adds a delete of `id` from `coll`.
    pub fn delete(&mut self, coll: &Collection, id: EntityId) -> &mut Self {
        self.ops(coll).push(StagedOp::Delete { id });
        self
    }

    /// Adds a user participant; they are prepared in the order enlisted, after the
    /// collections.
    pub fn enlist(&mut self, participant: Arc<dyn Participant>) -> &mut Self {
        self.participants.push(participant);
        self
    }

    /// Replaces the timing options.
    pub fn options(&mut self, options: TwoPhaseOptions) -> &mut Self {
        self.options = options;
        self
    }

    /// Calls `hook` at every step of the protocol (see [`TxnEvent`]), on the committing thread.
    pub fn on_event(&mut self, hook: impl Fn(&TxnEvent) + Send + Sync + 'static) -> &mut Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    fn emit(&self, e: TxnEvent) {
        if let Some(h) = &self.hook {
            h(&e);
        }
    }

    /// Runs the protocol (see the module docs) and returns the outcome: `Ok` with
    /// `committed: false` when a participant refused, failed or timed out (everything was
    /// rolled back). `Err` before anything is logged for bad requests: an invalid entity
    /// ([`Error::InvalidEntity`] naming its position among the writes to its collection), a
    /// dropped collection ([`Error::CollectionNotFound`]), nothing to do or duplicate or
    /// reserved participant names ([`Error::InvalidCoordination`]); and `Err` for failures to
    /// write the log (then nothing was decided, and recovery aborts the transaction).
    pub fn commit(self) -> Result<TxnOutcome> {
        let db = self.db.clone();
        db.observe(crate::observe::Op::CommitTransaction, || self.run())
    }

    fn run(self) -> Result<TxnOutcome> {
        let mut names: Vec<String> = Vec::new();
        let mut all: Vec<Arc<dyn Participant>> = Vec::new();
        if !self.writes.is_empty() {
            let parts = self
                .writes
                .values()
                .map(|(coll, ops)| (Arc::clone(coll), ops.clone()))
                .collect();
            names.push(STORE.to_string());
            all.push(Arc::new(StoreBatch {
                db: self.db.clone(),
                parts,
            }));
        }
        for p in &self.participants {
            let name = p.name();
            if name.is_empty() || name == STORE || names.iter().any(|n| n == name) {
                return Err(Error::InvalidCoordination(format!(
                    "participant name {name:?} is empty, reserved or used twice"
                )));
            }
            names.push(name.to_string());
            all.push(Arc::clone(p));
        }
        if all.is_empty() {
            return Err(Error::InvalidCoordination(
                "the transaction has no writes and no participants".into(),
            ));
        }
        // Bad input is refused before anything is logged, with the same typed errors as a
        // plain write; prepare checks again (durably staged, against the collection as it is
        // then).
        let max_payload = self.db.options().max_payload_bytes;
        for (coll, ops) in self.writes.values() {
            coll.check_live()?;
            let ops = ops
                .iter()
                .map(StagedOp::to_write_op)
                .collect::<Result<Vec<_>>>()?;
            crate::store::write::validate(coll, ops, max_payload)?;
        }
        let txid = begin(&self.db, names)?;
        let _live = LiveGuard::txn(&self.db, txid);
        self.emit(TxnEvent::Begun { txid });
        let mut reason = None;
        for p in &all {
            self.emit(TxnEvent::Preparing {
                txid,
                participant: p.name().to_string(),
            });
            let vote = prepare_with_timeout(p, txid, &self.options);
            self.emit(TxnEvent::Voted {
                txid,
                participant: p.name().to_string(),
                commit: vote == Vote::Commit,
            });
            if let Vote::Abort(why) = vote {
                reason = Some(format!("{}: {why}", p.name()));
                break;
            }
        }
        let commit = reason.is_none();
        let state = if commit {
            TxnState::Committing
        } else {
            TxnState::Aborting
        };
        set_state(&self.db, txid, state, reason.clone())?;
        self.emit(TxnEvent::Decided { txid, commit });
        let mut in_doubt = Vec::new();
        for p in &all {
            self.emit(TxnEvent::Finishing {
                txid,
                participant: p.name().to_string(),
            });
            if finish(p.as_ref(), txid, commit, self.options.phase2_retry).is_err() {
                in_doubt.push(p.name().to_string());
            }
        }
        if in_doubt.is_empty() {
            let done = if commit {
                TxnState::Committed
            } else {
                TxnState::Aborted
            };
            // The outcome stands whether or not this is logged: if it is not, recovery
            // re-sends the decision (idempotent) and logs it then.
            let _ = set_state(&self.db, txid, done, reason.clone());
            self.emit(TxnEvent::Completed {
                txid,
                committed: commit,
            });
        }
        Ok(TxnOutcome {
            txid,
            committed: commit,
            reason,
            in_doubt,
        })
    }
}

/// Marks a transaction or saga as driven by this process while alive (recovery skips it).
pub(crate) struct LiveGuard {
    db: Database,
    id: u64,
    saga: bool,
}

impl LiveGuard {
    pub(crate) fn txn(db: &Database, id: u64) -> Self {
        lock(&db.shared().coord.live_txns).insert(id);
        LiveGuard {
            db: db.clone(),
            id,
            saga: false,
        }
    }

    pub(crate) fn saga(db: &Database, id: u64) -> Self {
        lock(&db.shared().coord.live_sagas).insert(id);
        LiveGuard {
            db: db.clone(),
            id,
            saga: true,
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let c = &self.db.shared().coord;
        let set = if self.saga {
            &c.live_sagas
        } else {
            &c.live_txns
        };
        lock(set).remove(&self.id);
    }
}

/// Logs a new transaction (`Active`) and returns its id.
fn begin(db: &Database, participants: Vec<String>) -> Result<u64> {
    super::call(db.inner(), move |s| {
        let txn = s.redb()?.begin_write()?;
        let txid = super::next_id(&txn, META_LAST_TXID)?;
        // Live before it is visible in the log, so a concurrent recovery never takes it.
        lock(&s.coord.live_txns).insert(txid);
        let now = now_ms();
        let rec = TxnRecord {
            participants,
            state: TxnState::Active,
            reason: None,
            created_at: now,
            updated_at: now,
        };
        txn.open_table(COORD_TXNS)?
            .insert(txid, rec.encode().as_slice())?;
        super::commit_immediate(s, txn)?;
        Ok(txid)
    })
}

/// Moves a logged transaction to `state` (durably).
fn set_state(db: &Database, txid: u64, state: TxnState, reason: Option<String>) -> Result<()> {
    super::call(db.inner(), move |s| {
        let txn = s.redb()?.begin_write()?;
        {
            let mut table = txn.open_table(COORD_TXNS)?;
            let mut rec = match table.get(txid)? {
                Some(v) => TxnRecord::decode(v.value())?,
                None => return Err(corrupted(format!("transaction {txid} is not in the log"))),
            };
            rec.state = state;
            rec.reason = reason.or(rec.reason);
            rec.updated_at = now_ms();
            table.insert(txid, rec.encode().as_slice())?;
        }
        super::commit_immediate(s, txn)
    })
}

/// Phase 1 for one participant: retries transient failures with backoff, bounded by the
/// timeout; a call that hangs past the timeout is abandoned (it runs on its own thread).
fn prepare_with_timeout(p: &Arc<dyn Participant>, txid: u64, options: &TwoPhaseOptions) -> Vote {
    let deadline = Instant::now() + options.prepare_timeout;
    let mut backoff = options.prepare_backoff.initial_backoff;
    loop {
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = Arc::clone(p);
        let spawned = std::thread::Builder::new()
            .name("hybridb-2pc-prepare".into())
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p2.prepare(txid)));
                let r = r.unwrap_or_else(|_| {
                    Err(Error::Participant {
                        participant: p2.name().to_string(),
                        reason: "prepare panicked".into(),
                        transient: false,
                    })
                });
                // Let go of the participant before answering: once the coordinator has its
                // vote, this thread must hold nothing (the built-in participant holds the
                // database, which a caller may close and reopen right after the commit).
                drop(p2);
                let _ = tx.send(r);
            });
        if let Err(e) = spawned {
            return Vote::Abort(format!("could not start prepare: {e}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(vote)) => return vote,
            Ok(Err(e)) if e.is_transient() => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left < backoff {
                    return Vote::Abort(format!(
                        "still failing when the prepare timeout of {:?} ran out: {e}",
                        options.prepare_timeout
                    ));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(options.prepare_backoff.max_backoff);
            }
            Ok(Err(e)) => return Vote::Abort(e.to_string()),
            Err(_) => {
                return Vote::Abort(format!(
                    "prepare timed out after {:?}",
                    options.prepare_timeout
                ));
            }
        }
    }
}

/// Phase 2 for one participant, retried on any error.
fn finish(p: &dyn Participant, txid: u64, commit: bool, policy: RetryPolicy) -> Result<()> {
    let mut backoff = policy.initial_backoff;
    let mut attempt = 1;
    loop {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if commit {
                p.commit(txid)
            } else {
                p.abort(txid)
            }
        }))
        .unwrap_or_else(|_| {
            Err(Error::Participant {
                participant: p.name().to_string(),
                reason: "panicked".into(),
                transient: false,
            })
        });
        match r {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= policy.max_attempts.max(1) => return Err(e),
            Err(_) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(policy.max_backoff);
                attempt += 1;
            }
        }
    }
}

/// The built-in participant during a live transaction: it carries the writes to stage.
struct StoreBatch {
    db: Database,
    parts: Vec<(Arc<CollectionShared>, Vec<StagedOp>)>,
}

impl Participant for StoreBatch {
    fn name(&self) -> &str {
        STORE
    }

    fn prepare(&self, txid: u64) -> Result<Vote> {
        let parts = self.parts.clone();
        super::call(self.db.inner(), move |s| prepare_store(s, txid, parts))
    }

    fn commit(&self, txid: u64) -> Result<()> {
        store_participant(&self.db).commit(txid)
    }

    fn abort(&self, txid: u64) -> Result<()> {
        store_participant(&self.db).abort(txid)
    }
}

/// Writer thread: validates and stages the writes of `txid`, unless the transaction has
/// already been decided (a prepare that arrives late votes abort).
fn prepare_store(
    s: &Shared,
    txid: u64,
    parts: Vec<(Arc<CollectionShared>, Vec<StagedOp>)>,
) -> Result<Vote> {
    let txn = s.redb()?.begin_write()?;
    let state = match txn.open_table(COORD_TXNS)?.get(txid)? {
        Some(v) => TxnRecord::decode(v.value())?.state,
        None => return Ok(Vote::Abort(format!("transaction {txid} is not logged"))),
    };
    if state != TxnState::Active {
        return Ok(Vote::Abort(format!(
            "transaction {txid} is already {state:?}"
        )));
    }
    if txn.open_table(COORD_STAGED)?.get(txid)?.is_some() {
        return Ok(Vote::Commit); // prepared before
    }
    let mut batch = StagedBatch { parts: Vec::new() };
    for (coll, ops) in parts {
        if let Err(e) = coll
            .check_live()
            .and_then(|()| s.coord.check_writable(&coll))
        {
            return Ok(Vote::Abort(e.to_string()));
        }
        let write_ops = ops
            .iter()
            .map(StagedOp::to_write_op)
            .collect::<Result<Vec<_>>>()?;
        if let Err(e) = crate::store::write::validate(&coll, write_ops, s.options.max_payload_bytes)
        {
            return Ok(Vote::Abort(format!("collection {}: {e}", coll.name)));
        }
        batch.parts.push(StagedPart {
            cid: coll.stored.cid,
            collection: coll.name.clone(),
            ops,
        });
    }
    txn.open_table(COORD_STAGED)?
        .insert(txid, batch.encode().as_slice())?;
    super::commit_immediate(s, txn)?;
    Ok(Vote::Commit)
}

/// Writer thread: applies the staged batch of `txid` and deletes it, in one transaction. No
/// batch: already applied (or there was none), nothing to do.
fn commit_store(s: &Shared, txid: u64) -> Result<()> {
    let txn = s.redb()?.begin_write()?;
    let batch = match txn.open_table(COORD_STAGED)?.remove(txid)? {
        Some(v) => StagedBatch::decode(v.value())?,
        None => return Ok(()),
    };
    let mut batches = Vec::with_capacity(batch.parts.len());
    for part in &batch.parts {
        let coll = s
            .collection_by_cid(&part.collection, part.cid)
            .ok_or_else(|| {
                // Dropping a collection with staged writes is refused, so this is damage.
                corrupted(format!(
                    "transaction {txid} staged writes to collection {} (id {}), which is gone",
                    part.collection, part.cid
                ))
            })?;
        let ops = part
            .ops
            .iter()
            .map(StagedOp::to_write_op)
            .collect::<Result<Vec<_>>>()?;
        batches.push((coll, ops));
    }
    let (pending, _) = super::write_ops(s, &txn, batches)?;
    super::commit_applied(s, txn, pending)
}

impl Shared {
    /// The live collection `name` if it still has internal id `cid`.
    pub(crate) fn collection_by_cid(&self, name: &str, cid: u64) -> Option<Arc<CollectionShared>> {
        self.collection_shared(name)
            .ok()
            .filter(|c| c.stored.cid == cid)
    }
}

impl Database {
    /// Starts a two-phase-commit transaction with default [`TwoPhaseOptions`].
    pub fn begin_transaction(&self) -> Transaction {
        Transaction {
            db: self.clone(),
            writes: BTreeMap::new(),
            participants: Vec::new(),
            options: TwoPhaseOptions::default(),
            hook: None,
        }
    }
}
