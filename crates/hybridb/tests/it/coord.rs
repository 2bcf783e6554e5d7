//! Two-phase commit and sagas in one process: outcomes, idempotence, timeouts, retries of a
//! participant that is down, recovery of transactions and sagas cut off by a panic, and typed
//! errors for bad requests. The [`Ledger`] participant keeps its own redb file, so the crash
//! suite (`coord_crash`) can check all-or-nothing across two files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hybridb::coord::log::{SagaState, TxnState};
use hybridb::coord::saga::SagaDefinition;
use hybridb::coord::two_phase::{Participant, TwoPhaseOptions, Vote};
use hybridb::{CollectionConfig, Database, Entity, EntityId, Error, Metric, RetryPolicy};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::json;

const STAGED: TableDefinition<u64, &str> = TableDefinition::new("staged");
const APPLIED: TableDefinition<&str, u64> = TableDefinition::new("applied");
/// 1 = committed, 2 = aborted.
const OUTCOME: TableDefinition<u64, u8> = TableDefinition::new("outcome");

/// An "external service": a key-value ledger in its own redb file.
pub struct Ledger {
    db: redb::Database,
}

impl Ledger {
    pub fn open(path: &Path) -> Arc<Ledger> {
        let db = redb::Database::create(path).expect("ledger file");
        let txn = db.begin_write().unwrap();
        txn.open_table(STAGED).unwrap();
        txn.open_table(APPLIED).unwrap();
        txn.open_table(OUTCOME).unwrap();
        txn.commit().unwrap();
        Arc::new(Ledger { db })
    }

    /// Applied keys and the transaction that applied each.
    pub fn applied(&self) -> BTreeMap<String, u64> {
        let txn = self.db.begin_read().unwrap();
        let t = txn.open_table(APPLIED).unwrap();
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value().to_string(), v.value())
            })
            .collect()
    }

    pub fn staged_count(&self) -> usize {
        let txn = self.db.begin_read().unwrap();
        let t = txn.open_table(STAGED).unwrap();
        t.iter().unwrap().count()
    }
}

fn down(name: &str) -> Error {
    Error::Participant {
        participant: name.to_string(),
        reason: "service unavailable".into(),
        transient: true,
    }
}

fn fatal(name: &str, reason: String) -> Error {
    Error::Participant {
        participant: name.to_string(),
        reason,
        transient: false,
    }
}

/// The ledger as a participant, optionally with a key to write in the transaction, and knobs
/// for the unit tests (refusal, transient failures, slowness, call counts).
pub struct LedgerParticipant {
    pub ledger: Arc<Ledger>,
    pub name: String,
    pub work: Option<String>,
    pub refuse: bool,
    pub prepare_failures: AtomicU32,
    pub commit_failures: AtomicU32,
    pub prepare_delay: Duration,
    pub prepare_calls: AtomicU64,
    pub commit_calls: AtomicU64,
    pub abort_calls: AtomicU64,
}

impl LedgerParticipant {
    pub fn new(ledger: &Arc<Ledger>, work: Option<String>) -> Self {
        LedgerParticipant {
            ledger: Arc::clone(ledger),
            name: "ledger".into(),
            work,
            refuse: false,
            prepare_failures: AtomicU32::new(0),
            commit_failures: AtomicU32::new(0),
            prepare_delay: Duration::ZERO,
            prepare_calls: AtomicU64::new(0),
            commit_calls: AtomicU64::new(0),
            abort_calls: AtomicU64::new(0),
        }
    }

    fn outcome(&self, txid: u64) -> Option<u8> {
        let txn = self.ledger.db.begin_read().unwrap();
        let t = txn.open_table(OUTCOME).unwrap();
        t.get(txid).unwrap().map(|v| v.value())
    }
}

fn take_failure(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

fn io(e: impl std::fmt::Display) -> Error {
    fatal("ledger", e.to_string())
}

impl Participant for LedgerParticipant {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, txid: u64) -> hybridb::Result<Vote> {
        self.prepare_calls.fetch_add(1, Ordering::SeqCst);
        if take_failure(&self.prepare_failures) {
            return Err(down(&self.name));
        }
        std::thread::sleep(self.prepare_delay);
        if self.outcome(txid) == Some(2) {
            return Ok(Vote::Abort("already aborted".into()));
        }
        if self.refuse {
            return Ok(Vote::Abort("the ledger refuses".into()));
        }
        let Some(work) = &self.work else {
            return Ok(Vote::Abort("no work for this transaction".into()));
        };
        let txn = self.ledger.db.begin_write().map_err(io)?;
        txn.open_table(STAGED)
            .map_err(io)?
            .insert(txid, work.as_str())
            .map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(Vote::Commit)
    }

    fn commit(&self, txid: u64) -> hybridb::Result<()> {
        self.commit_calls.fetch_add(1, Ordering::SeqCst);
        if take_failure(&self.commit_failures) {
            return Err(down(&self.name));
        }
        let txn = self.ledger.db.begin_write().map_err(io)?;
        {
            let mut outcome = txn.open_table(OUTCOME).map_err(io)?;
            match outcome.get(txid).map_err(io)?.map(|v| v.value()) {
                Some(1) => return Ok(()),
                Some(_) => return Err(fatal(&self.name, format!("commit of aborted {txid}"))),
                None => {}
            }
            let work = txn
                .open_table(STAGED)
                .map_err(io)?
                .remove(txid)
                .map_err(io)?
                .map(|v| v.value().to_string());
            let Some(work) = work else {
                return Err(fatal(&self.name, format!("commit of unprepared {txid}")));
            };
            txn.open_table(APPLIED)
                .map_err(io)?
                .insert(work.as_str(), txid)
                .map_err(io)?;
            outcome.insert(txid, 1).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        Ok(())
    }

    fn abort(&self, txid: u64) -> hybridb::Result<()> {
        self.abort_calls.fetch_add(1, Ordering::SeqCst);
        let txn = self.ledger.db.begin_write().map_err(io)?;
        {
            let mut outcome = txn.open_table(OUTCOME).map_err(io)?;
            match outcome.get(txid).map_err(io)?.map(|v| v.value()) {
                Some(2) => return Ok(()),
                Some(_) => return Err(fatal(&self.name, format!("abort of committed {txid}"))),
                None => {}
            }
            txn.open_table(STAGED)
                .map_err(io)?
                .remove(txid)
                .map_err(io)?;
            outcome.insert(txid, 2).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        Ok(())
    }
}

fn setup() -> (tempfile::TempDir, Database, Arc<Ledger>) {
    let (dir, db) = crate::fresh();
    db.create_collection("a", CollectionConfig::new(2, Metric::L2))
        .unwrap();
    db.create_collection("b", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.redb"));
    (dir, db, ledger)
}

fn ea(key: &str) -> Entity {
    Entity::new(EntityId::from_key(key), json!({"k": key}), vec![1.0, 2.0])
}

fn eb(key: &str) -> Entity {
    Entity::new(
        EntityId::from_key(key),
        json!({"k": key}),
        vec![1.0, 2.0, 3.0],
    )
}

fn fast() -> TwoPhaseOptions {
    TwoPhaseOptions {
        prepare_timeout: Duration::from_millis(300),
        prepare_backoff: RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(20),
        },
        phase2_retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
    }
}

#[test]
fn a_transaction_commits_across_collections_and_a_user_participant() {
    let (_dir, db, ledger) = setup();
    let (a, b) = (db.collection("a").unwrap(), db.collection("b").unwrap());
    a.upsert(ea("gone")).unwrap();
    let p = Arc::new(LedgerParticipant::new(&ledger, Some("k1".into())));
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("x"))
        .upsert(&b, eb("y"))
        .delete(&a, EntityId::from_key("gone"))
        .enlist(p.clone());
    let out = tx.commit().unwrap();
    assert!(out.committed, "{out:?}");
    assert!(out.in_doubt.is_empty());
    assert_eq!(a.get(EntityId::from_key("x")).unwrap().unwrap().version, 1);
    assert!(b.get(EntityId::from_key("y")).unwrap().is_some());
    assert!(a.get(EntityId::from_key("gone")).unwrap().is_none());
    assert_eq!(a.search(&[1.0, 2.0], 5).unwrap().len(), 1);
    assert_eq!(ledger.applied().get("k1"), Some(&out.txid));
    let log = db.transactions().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].state, TxnState::Committed);
    assert_eq!(log[0].participants, vec!["hybridb", "ledger"]);
    // The writes went through the normal path: change events exist for them.
    let events = db.changes_since(0, 100).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.id == Some(EntityId::from_key("y")) && e.collection == "b")
    );
    // Nothing is left staged: the collections can be dropped.
    db.drop_collection("b").unwrap();
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn a_refusal_aborts_everything_and_an_invalid_write_is_refused_up_front() {
    let (_dir, db, ledger) = setup();
    let (a, b) = (db.collection("a").unwrap(), db.collection("b").unwrap());
    // The ledger refuses.
    let mut p = LedgerParticipant::new(&ledger, Some("k".into()));
    p.refuse = true;
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("x")).enlist(Arc::new(p));
    let out = tx.commit().unwrap();
    assert!(!out.committed);
    assert!(
        out.reason.as_deref().unwrap().contains("refuses"),
        "{out:?}"
    );
    assert!(a.get(EntityId::from_key("x")).unwrap().is_none());
    assert_eq!(ledger.staged_count(), 0);
    // An invalid entity (wrong dimension): a typed error before anything is logged or asked.
    let p = Arc::new(LedgerParticipant::new(&ledger, Some("k2".into())));
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("ok"))
        .upsert(&b, eb("fine"))
        .upsert(&b, ea("bad"))
        .enlist(p.clone());
    match tx.commit() {
        Err(Error::InvalidEntity {
            index: 1,
            id,
            problem:
                hybridb::EntityProblem::WrongDimension {
                    expected: 3,
                    got: 2,
                },
        }) => assert_eq!(id, EntityId::from_key("bad")),
        other => panic!("expected InvalidEntity, got {other:?}"),
    }
    assert_eq!(p.prepare_calls.load(Ordering::SeqCst), 0);
    assert!(a.get(EntityId::from_key("ok")).unwrap().is_none());
    assert!(ledger.applied().is_empty());
    let log = db.transactions().unwrap();
    assert_eq!(log.len(), 1, "only the refused transaction is logged");
    assert_eq!(log[0].state, TxnState::Aborted);
}

#[test]
fn bad_transactions_get_typed_errors() {
    let (_dir, db, ledger) = setup();
    assert!(matches!(
        db.begin_transaction().commit(),
        Err(Error::InvalidCoordination(_))
    ));
    let mut tx = db.begin_transaction();
    tx.enlist(Arc::new(LedgerParticipant::new(&ledger, None)))
        .enlist(Arc::new(LedgerParticipant::new(&ledger, None)));
    assert!(matches!(tx.commit(), Err(Error::InvalidCoordination(_))));
    let mut p = LedgerParticipant::new(&ledger, None);
    p.name = "hybridb".into();
    let mut tx = db.begin_transaction();
    tx.enlist(Arc::new(p));
    assert!(matches!(tx.commit(), Err(Error::InvalidCoordination(_))));
    assert!(db.transactions().unwrap().is_empty(), "nothing was logged");
    // A non-object payload, a non-finite vector, a dropped collection's handle: typed errors.
    let a = db.collection("a").unwrap();
    let mut tx = db.begin_transaction();
    tx.upsert(
        &a,
        Entity::new(EntityId::from_key("p"), json!([1]), vec![1.0, 2.0]),
    );
    assert!(matches!(
        tx.commit(),
        Err(Error::InvalidEntity {
            problem: hybridb::EntityProblem::PayloadNotObject { .. },
            ..
        })
    ));
    let mut tx = db.begin_transaction();
    tx.upsert(
        &a,
        Entity::new(EntityId::from_key("n"), json!({}), vec![f32::NAN, 2.0]),
    );
    assert!(matches!(
        tx.commit(),
        Err(Error::InvalidEntity {
            problem: hybridb::EntityProblem::NonFinite { .. },
            ..
        })
    ));
    db.drop_collection("a").unwrap();
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("x"));
    assert!(matches!(tx.commit(), Err(Error::CollectionNotFound(_))));
    assert!(db.transactions().unwrap().is_empty(), "nothing was logged");
}

#[test]
fn prepare_times_out() {
    let (_dir, db, ledger) = setup();
    let a = db.collection("a").unwrap();
    let mut p = LedgerParticipant::new(&ledger, Some("slow".into()));
    // The participant answers long after the 300 ms prepare timeout; the commit must give
    // up at the timeout, not wait for the answer. (The bound leaves a loaded machine room:
    // it only has to be well below the participant's delay.)
    p.prepare_delay = Duration::from_millis(4000);
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("x")).enlist(Arc::new(p)).options(fast());
    let t0 = Instant::now();
    let out = tx.commit().unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(3000),
        "{:?}",
        t0.elapsed()
    );
    assert!(!out.committed);
    assert!(out.reason.unwrap().contains("timed out"));
    assert!(a.get(EntityId::from_key("x")).unwrap().is_none());
    // The abandoned prepare finishes later and must find the abort: it votes abort, stages
    // nothing.
    std::thread::sleep(Duration::from_millis(4200) - t0.elapsed().min(Duration::from_millis(4200)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ledger.staged_count(), 0);
    assert!(ledger.applied().is_empty());
}

#[test]
fn a_participant_that_is_down_is_retried_with_backoff() {
    let (_dir, db, ledger) = setup();
    let a = db.collection("a").unwrap();
    let p = Arc::new(LedgerParticipant::new(&ledger, Some("k".into())));
    p.prepare_failures.store(3, Ordering::SeqCst);
    p.commit_failures.store(2, Ordering::SeqCst);
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("x")).enlist(p.clone()).options(fast());
    let out = tx.commit().unwrap();
    assert!(out.committed, "{out:?}");
    assert_eq!(p.prepare_calls.load(Ordering::SeqCst), 4);
    assert_eq!(p.commit_calls.load(Ordering::SeqCst), 3);
    assert_eq!(ledger.applied().len(), 1);

    // Down for the whole prepare timeout: abort.
    let p = Arc::new(LedgerParticipant::new(&ledger, Some("k2".into())));
    p.prepare_failures.store(u32::MAX, Ordering::SeqCst);
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("y")).enlist(p.clone()).options(fast());
    let out = tx.commit().unwrap();
    assert!(!out.committed);
    assert!(p.prepare_calls.load(Ordering::SeqCst) > 3);
    assert!(a.get(EntityId::from_key("y")).unwrap().is_none());
}

#[test]
fn a_participant_down_in_phase_two_leaves_the_transaction_in_doubt_until_recovery() {
    let (_dir, db, ledger) = setup();
    let a = db.collection("a").unwrap();
    let p = Arc::new(LedgerParticipant::new(&ledger, Some("k".into())));
    p.commit_failures.store(100, Ordering::SeqCst);
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("x")).enlist(p.clone()).options(fast());
    let out = tx.commit().unwrap();
    assert!(out.committed);
    assert_eq!(out.in_doubt, vec!["ledger".to_string()]);
    assert_eq!(db.transactions().unwrap()[0].state, TxnState::Committing);
    // The store side is committed already.
    assert_eq!(a.get(EntityId::from_key("x")).unwrap().unwrap().version, 1);
    // Without the participant: still in doubt.
    let r = db.recover_transactions(&[]).unwrap();
    assert_eq!(r.unresolved, vec![(out.txid, vec!["ledger".to_string()])]);
    // With it back up: committed; the store's repeated commit changed nothing (idempotent).
    p.commit_failures.store(0, Ordering::SeqCst);
    let parts: Vec<Arc<dyn Participant>> = vec![p.clone()];
    let r = db.recover_transactions(&parts).unwrap();
    assert_eq!(r.committed, vec![out.txid]);
    assert!(r.unresolved.is_empty());
    assert_eq!(a.get(EntityId::from_key("x")).unwrap().unwrap().version, 1);
    assert_eq!(ledger.applied().get("k"), Some(&out.txid));
    // Recovering again does nothing.
    assert_eq!(db.recover_transactions(&parts).unwrap(), Default::default());
}

#[test]
fn participants_are_idempotent_by_transaction_id() {
    let (_dir, _db, ledger) = setup();
    let p = LedgerParticipant::new(&ledger, Some("k".into()));
    assert_eq!(p.prepare(7).unwrap(), Vote::Commit);
    assert_eq!(p.prepare(7).unwrap(), Vote::Commit);
    p.commit(7).unwrap();
    p.commit(7).unwrap();
    assert_eq!(ledger.applied().len(), 1);
    p.abort(8).unwrap(); // never prepared
    p.abort(8).unwrap();
    assert!(matches!(p.prepare(8).unwrap(), Vote::Abort(_)));
    assert!(
        p.abort(7).is_err(),
        "abort after commit is a protocol violation"
    );
}

/// Runs a transaction whose hook panics at the first event `at` matches (a crash of the
/// coordinator, as far as the log can tell).
fn interrupted(db: &Database, ledger: &Arc<Ledger>, key: &str, at: &'static str) -> u64 {
    let a = db.collection("a").unwrap();
    let p = Arc::new(LedgerParticipant::new(ledger, Some(key.into())));
    let txid = Arc::new(Mutex::new(0));
    let t2 = Arc::clone(&txid);
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea(key)).enlist(p).on_event(move |e| {
        let s = format!("{e:?}");
        if let hybridb::coord::two_phase::TxnEvent::Begun { txid } = e {
            *t2.lock().unwrap() = *txid;
        }
        if s.starts_with(at) && !s.contains("\"hybridb\"") {
            panic!("simulated coordinator crash at {s}");
        }
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.commit()));
    assert!(r.is_err(), "the hook should have fired at {at}");
    *txid.lock().unwrap()
}

#[test]
fn recovery_aborts_undecided_and_commits_decided_transactions() {
    let (_dir, db, ledger) = setup();
    let a = db.collection("a").unwrap();
    // Both prepared (the ledger's vote is in), no decision: abort.
    let undecided = interrupted(&db, &ledger, "u", "Voted");
    // Decision logged, nobody told: commit.
    let decided = interrupted(&db, &ledger, "d", "Decided");
    assert_eq!(ledger.staged_count(), 2);
    // Staged writes hold the collection.
    assert!(matches!(
        db.drop_collection("a"),
        Err(Error::CollectionInUse { .. })
    ));
    let p: Arc<dyn Participant> = Arc::new(LedgerParticipant::new(&ledger, None));
    let r = db.recover_transactions(&[p]).unwrap();
    assert_eq!(r.aborted, vec![undecided]);
    assert_eq!(r.committed, vec![decided]);
    assert!(a.get(EntityId::from_key("u")).unwrap().is_none());
    assert!(a.get(EntityId::from_key("d")).unwrap().is_some());
    assert_eq!(ledger.applied().keys().collect::<Vec<_>>(), vec!["d"]);
    assert_eq!(ledger.staged_count(), 0);
    let states: Vec<TxnState> = db.transactions().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, vec![TxnState::Aborted, TxnState::Committed]);
    db.drop_collection("a").unwrap();
}

fn counting_saga(log: Arc<Mutex<Vec<String>>>, fail_at: Option<usize>) -> SagaDefinition {
    let mut def = SagaDefinition::new("counting");
    for i in 0..3 {
        let (l1, l2) = (Arc::clone(&log), Arc::clone(&log));
        def = def.step(
            &format!("s{i}"),
            move |ctx| {
                l1.lock().unwrap().push(format!("do{i}"));
                if fail_at == Some(i) {
                    return Err(Error::InvalidCoordination(format!("step {i} fails")));
                }
                ctx.data_mut()[format!("s{i}")] = json!(true);
                Ok(())
            },
            move |_| {
                l2.lock().unwrap().push(format!("undo{i}"));
                Ok(())
            },
        );
    }
    def.retry(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    })
}

#[test]
fn a_saga_completes_or_compensates_in_reverse() {
    let (_dir, db) = crate::fresh();
    let log = Arc::new(Mutex::new(Vec::new()));
    let out = db
        .run_saga(&counting_saga(log.clone(), None), json!({"p": 1}))
        .unwrap();
    assert_eq!(out.state, SagaState::Completed);
    assert_eq!(*log.lock().unwrap(), vec!["do0", "do1", "do2"]);
    let info = &db.sagas().unwrap()[0];
    assert_eq!(info.data, json!({"s0": true, "s1": true, "s2": true}));
    assert_eq!(info.params, json!({"p": 1}));

    log.lock().unwrap().clear();
    match db.run_saga(&counting_saga(log.clone(), Some(1)), json!({})) {
        Err(Error::SagaFailed {
            step, compensated, ..
        }) => {
            assert_eq!(step, "s1");
            assert!(compensated);
        }
        other => panic!("expected SagaFailed, got {other:?}"),
    }
    assert_eq!(*log.lock().unwrap(), vec!["do0", "do1", "undo1", "undo0"]);
    assert_eq!(db.sagas().unwrap()[1].state, SagaState::Compensated);
}

#[test]
fn an_interrupted_saga_resumes_in_the_logged_direction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let log = Arc::new(Mutex::new(Vec::new()));
    {
        let db = Database::open(&path).unwrap();
        // Forward: interrupted after step 1 is logged done.
        let def = counting_saga(log.clone(), None).on_event(|e| {
            if format!("{e:?}").starts_with("StepDone { saga: 1, step: 1") {
                panic!("crash");
            }
        });
        assert!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.run_saga(&def, json!({}))))
                .is_err()
        );
        // Backward: step 2 failed, interrupted after compensating it.
        let def = counting_saga(log.clone(), Some(2)).on_event(|e| {
            if format!("{e:?}").contains("step: 2, compensating: true")
                && format!("{e:?}").starts_with("StepDone")
            {
                panic!("crash");
            }
        });
        assert!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.run_saga(&def, json!({}))))
                .is_err()
        );
    }
    log.lock().unwrap().clear();
    let db = Database::open(&path).unwrap();
    let states: Vec<SagaState> = db.sagas().unwrap().iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        vec![
            SagaState::Running { next: 2 },
            SagaState::Compensating { pending: 2 }
        ]
    );
    let def = counting_saga(log.clone(), None);
    let outs = db.recover_sagas(&[&def]).unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[0].state, SagaState::Completed);
    assert_eq!(outs[1].state, SagaState::Compensated);
    assert_eq!(*log.lock().unwrap(), vec!["do2", "undo1", "undo0"]);
    assert!(db.recover_sagas(&[&def]).unwrap().is_empty());
}

#[test]
fn pruning_the_log_keeps_unfinished_work() {
    let (_dir, db, ledger) = setup();
    let a = db.collection("a").unwrap();
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("done"));
    assert!(tx.commit().unwrap().committed);
    let in_doubt = interrupted(&db, &ledger, "open", "Decided");
    let log = Arc::new(Mutex::new(Vec::new()));
    db.run_saga(&counting_saga(log, None), json!({})).unwrap();
    let pruned = db.prune_coordination_log().unwrap();
    assert_eq!((pruned.transactions, pruned.sagas), (1, 1));
    let left = db.transactions().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].txid, in_doubt);
    assert!(db.sagas().unwrap().is_empty());
    // The unfinished one is still recoverable, and new ids are never reused.
    let p: Arc<dyn Participant> = Arc::new(LedgerParticipant::new(&ledger, None));
    assert_eq!(
        db.recover_transactions(&[p]).unwrap().committed,
        vec![in_doubt]
    );
    let mut tx = db.begin_transaction();
    tx.upsert(&a, ea("later"));
    assert!(tx.commit().unwrap().txid > in_doubt);
}

#[test]
fn two_phase_writes_are_seen_through_the_read_caches() {
    let (_dir, db, ledger) = setup();
    let a = db.collection("a").unwrap();
    let id = EntityId::from_key("x");
    a.upsert(Entity::new(id, json!({"v": 1}), vec![1.0, 2.0]))
        .unwrap();
    a.upsert(ea("other")).unwrap();
    // Warm the caches: records, vectors and search results.
    for _ in 0..3 {
        assert_eq!(a.get(id).unwrap().unwrap().payload["v"], 1);
        assert_eq!(a.search(&[1.0, 2.0], 2).unwrap().len(), 2);
    }
    let mut tx = db.begin_transaction();
    tx.upsert(&a, Entity::new(id, json!({"v": 2}), vec![5.0, 5.0]))
        .delete(&a, EntityId::from_key("other"))
        .enlist(Arc::new(LedgerParticipant::new(&ledger, Some("k".into()))));
    assert!(tx.commit().unwrap().committed);
    let r = a.get(id).unwrap().unwrap();
    assert_eq!(r.payload["v"], 2);
    assert_eq!(r.vector, vec![5.0, 5.0]);
    assert!(a.get(EntityId::from_key("other")).unwrap().is_none());
    let hits = a.search(&[1.0, 2.0], 2).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].id, id);
}

#[test]
fn recovery_with_a_definition_of_other_steps_leaves_the_saga_alone() {
    let (_dir, db) = crate::fresh();
    let log = Arc::new(Mutex::new(Vec::new()));
    let def = counting_saga(log.clone(), None).on_event(|e| {
        if format!("{e:?}").starts_with("StepDone { saga: 1, step: 0") {
            panic!("crash");
        }
    });
    assert!(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.run_saga(&def, json!({}))))
            .is_err()
    );
    let other = SagaDefinition::new("counting").step("only", |_| Ok(()), |_| Ok(()));
    let outs = db.recover_sagas(&[&other]).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].state, SagaState::Running { next: 1 });
    assert!(outs[0].error.as_deref().unwrap().contains("other steps"));
    // The right definition finishes it.
    let outs = db.recover_sagas(&[&counting_saga(log, None)]).unwrap();
    assert_eq!(outs[0].state, SagaState::Completed);
}

/// A transaction of hybridb collections only, cut by a coordinator crash, is resolved when the
/// database opens again (no user code is needed): decided commit is applied, undecided aborted.
#[test]
fn opening_resolves_transactions_of_hybridb_collections_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let cut = |db: &Database, key: &str, at: &'static str| {
        let a = db.collection("a").unwrap();
        let b = db.collection("b").unwrap();
        let mut tx = db.begin_transaction();
        tx.upsert(&a, ea(key))
            .upsert(&b, eb(key))
            .on_event(move |e| {
                if format!("{e:?}").starts_with(at) {
                    panic!("simulated coordinator crash at {e:?}");
                }
            });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.commit()));
        assert!(r.is_err(), "the hook fired at {at}");
    };
    {
        let db = Database::open(&path).unwrap();
        db.create_collection("a", CollectionConfig::new(2, Metric::L2))
            .unwrap();
        db.create_collection("b", CollectionConfig::new(3, Metric::L2))
            .unwrap();
        cut(&db, "decided", "Decided");
        cut(&db, "undecided", "Voted");
        let states: Vec<TxnState> = db.transactions().unwrap().iter().map(|t| t.state).collect();
        assert_eq!(states, vec![TxnState::Committing, TxnState::Active]);
        let a = db.collection("a").unwrap();
        assert!(a.get(EntityId::from_key("decided")).unwrap().is_none());
    }
    let db = Database::open(&path).unwrap();
    let states: Vec<TxnState> = db.transactions().unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, vec![TxnState::Committed, TxnState::Aborted]);
    for (coll, decided_there) in [("a", true), ("b", true)] {
        let c = db.collection(coll).unwrap();
        assert_eq!(
            c.get(EntityId::from_key("decided")).unwrap().is_some(),
            decided_there,
            "{coll}: the decided transaction is applied everywhere"
        );
        assert!(c.get(EntityId::from_key("undecided")).unwrap().is_none());
    }
    assert_eq!(db.recover_transactions(&[]).unwrap(), Default::default());
    assert!(db.verify().unwrap().is_clean());
}
