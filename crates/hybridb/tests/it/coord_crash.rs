//! Crash suite for coordination: a child process runs two-phase commits (or a re-embed saga)
//! and is killed with SIGKILL at a randomised point — by itself at the N-th protocol event
//! (before prepare, between prepares, after the decision is logged, between phase-2 calls,
//! inside the copy loop, during compensation) or by the parent at a random moment. The parent
//! reopens, runs recovery and checks that every transaction is all-or-nothing across the
//! database and the participant's own file, and that every saga is complete or fully
//! compensated.
//!
//! `HYBRIDB_COORD_CRASH_CYCLES` sets the kill cycles of each test (default 12);
//! `HYBRIDB_CRASH_SEED` the random seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hybridb::coord::log::{SagaState, TxnState};
use hybridb::coord::reembed::{ReembedSpec, reembed_definition};
use hybridb::coord::two_phase::Participant;
use hybridb::{CollectionConfig, Database, Entity, EntityId, Error, IndexKind, Metric};
use serde_json::json;

use crate::coord::{Ledger, LedgerParticipant};

const CHILD_DIR: &str = "HYBRIDB_COORD_CHILD_DIR";
const CHILD_CYCLE: &str = "HYBRIDB_COORD_CHILD_CYCLE";
const CHILD_KILL_AT: &str = "HYBRIDB_COORD_CHILD_KILL_AT";
const CHILD_FAIL_AT: &str = "HYBRIDB_COORD_CHILD_FAIL_AT";

fn cycles() -> u64 {
    std::env::var("HYBRIDB_COORD_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Rng(std::env::var("HYBRIDB_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x2bc_5eed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// SIGKILLs this process, after noting where (for the parent's statistics).
fn kill_self(dir: &Path, cycle: &str, at: &str) -> ! {
    let _ = std::fs::write(dir.join(format!("killed-{cycle}")), at);
    let _ = Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Counts protocol events and kills the process at event number `kill_at` (0: never).
struct Killer {
    dir: PathBuf,
    cycle: String,
    kill_at: u64,
    seen: AtomicU64,
}

impl Killer {
    fn from_env() -> Option<Arc<Killer>> {
        let dir = PathBuf::from(std::env::var(CHILD_DIR).ok()?);
        Some(Arc::new(Killer {
            dir,
            cycle: std::env::var(CHILD_CYCLE).ok()?,
            kill_at: std::env::var(CHILD_KILL_AT).ok()?.parse().ok()?,
            seen: AtomicU64::new(0),
        }))
    }

    fn event(&self, what: &str) {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.kill_at {
            // Without the numbers, the event names the kind of kill point.
            let kind: String = what
                .split(", copied")
                .next()
                .unwrap_or(what)
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            kill_self(&self.dir, &self.cycle, &kind);
        }
    }
}

fn run_child(test: &str, dir: &Path, cycle: u64, kill_at: u64, fail_at: Option<u64>) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_CYCLE, cycle.to_string())
        .env(CHILD_KILL_AT, kill_at.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(f) = fail_at {
        cmd.env(CHILD_FAIL_AT, f.to_string());
    }
    let mut child = cmd.spawn().unwrap();
    if kill_at == 0 {
        // The parent kills at a random moment instead.
        let wait = 30 + (cycle * 7919) % 250;
        std::thread::sleep(Duration::from_millis(wait));
        let _ = child.kill(); // SIGKILL on Unix
        child.wait().unwrap();
        let _ = std::fs::write(dir.join(format!("killed-{cycle}")), "timer");
        return;
    }
    // The child kills itself (or finishes); never wait forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            child.wait().unwrap();
            panic!("child of cycle {cycle} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_points(dir: &Path, cycles: std::ops::RangeInclusive<u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in cycles {
        let at = std::fs::read_to_string(dir.join(format!("killed-{c}")))
            .unwrap_or_else(|_| "not killed (finished)".into());
        *out.entry(at).or_default() += 1;
    }
    out
}

// ---------------------------------------------------------------- two-phase commit

/// Transactions each child attempts at most (it is killed long before, normally).
const TXNS_PER_CHILD: u64 = 40;
/// Protocol events per transaction (Begun, 2 x Preparing + Voted, Decided, 2 x Finishing,
/// Completed).
const EVENTS_PER_TXN: u64 = 9;

fn open_2pc(dir: &Path) -> (Database, hybridb::Collection, hybridb::Collection) {
    let db = Database::open(dir.join("db.redb")).unwrap();
    let get = |name: &str, dim| match db.collection(name) {
        Ok(c) => c,
        Err(_) => db
            .create_collection(
                name,
                CollectionConfig::new(dim, Metric::L2).with_index(IndexKind::Exact),
            )
            .unwrap(),
    };
    let (a, b) = (get("a", 2), get("b", 3));
    (db, a, b)
}

#[test]
fn twopc_child_entry() {
    let Some(killer) = Killer::from_env() else {
        return; // Not a child run.
    };
    let dir = killer.dir.clone();
    let cycle = killer.cycle.clone();
    let (db, a, b) = open_2pc(&dir);
    let ledger = Ledger::open(&dir.join("ledger.redb"));
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("txns-{cycle}.log")))
        .unwrap();
    for i in 0..TXNS_PER_CHILD {
        let tag = format!("{cycle}-{i}");
        let mut p = LedgerParticipant::new(&ledger, Some(tag.clone()));
        // Every fourth transaction is refused by the ledger: the abort path.
        p.refuse = i % 4 == 3;
        let mut tx = db.begin_transaction();
        for j in 0..3 {
            tx.upsert(
                &a,
                Entity::new(
                    EntityId::from_key(&format!("{tag}-a{j}")),
                    json!({"tag": tag}),
                    vec![i as f32, j as f32],
                ),
            );
        }
        tx.upsert(
            &b,
            Entity::new(
                EntityId::from_key(&format!("{tag}-b")),
                json!({"tag": tag}),
                vec![i as f32, 1.0, 2.0],
            ),
        );
        tx.enlist(Arc::new(p));
        let k = Arc::clone(&killer);
        let t = tag.clone();
        let log_line = std::sync::Mutex::new(log.try_clone().unwrap());
        tx.on_event(move |e| {
            if let hybridb::coord::two_phase::TxnEvent::Begun { txid } = e {
                let _ = writeln!(log_line.lock().unwrap(), "{txid} {t}");
            }
            k.event(&format!("{e:?}"));
        });
        tx.commit().unwrap();
    }
    log.flush().unwrap();
}

/// After a crash: recover, then check all-or-nothing for every transaction.
fn verify_2pc(dir: &Path, cycles_done: u64) -> (usize, usize) {
    let (db, a, b) = open_2pc(dir);
    let ledger = Ledger::open(&dir.join("ledger.redb"));
    let p: Arc<dyn Participant> = Arc::new(LedgerParticipant::new(&ledger, None));
    let report = db.recover_transactions(&[p]).unwrap();
    assert!(report.unresolved.is_empty(), "{report:?}");
    let states: HashMap<u64, TxnState> = db
        .transactions()
        .unwrap()
        .into_iter()
        .map(|t| (t.txid, t.state))
        .collect();
    assert!(
        states.values().all(|s| s.is_final()),
        "unfinished after recovery: {states:?}"
    );
    // What each side holds, by transaction tag.
    let tags_of = |c: &hybridb::Collection| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = c.scroll(after, 1000).unwrap();
            for r in &page.records {
                *m.entry(r.payload["tag"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        m
    };
    let in_a = tags_of(&a);
    let in_b = tags_of(&b);
    let in_ledger = ledger.applied();
    for (tag, n) in &in_a {
        assert_eq!(*n, 3, "transaction {tag} is partial in collection a");
    }
    let (sa, sb, sl): (BTreeSet<_>, BTreeSet<_>, BTreeSet<_>) = (
        in_a.keys().cloned().collect(),
        in_b.keys().cloned().collect(),
        in_ledger.keys().cloned().collect(),
    );
    assert_eq!(sa, sb, "collections a and b disagree");
    assert_eq!(sa, sl, "the database and the ledger disagree");
    // Present means committed in the log; committed in the log means present.
    for (tag, txid) in &in_ledger {
        assert_eq!(
            states.get(txid),
            Some(&TxnState::Committed),
            "{tag} applied but transaction {txid} is not committed"
        );
    }
    for c in 0..cycles_done {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("txns-{c}.log"))) else {
            continue;
        };
        for line in text.lines() {
            let Some((txid, tag)) = line.split_once(' ') else {
                continue; // torn by the kill
            };
            let Ok(txid) = txid.parse::<u64>() else {
                continue;
            };
            match states.get(&txid) {
                Some(TxnState::Committed) => {
                    assert!(sa.contains(tag), "committed {txid} ({tag}) is missing")
                }
                Some(TxnState::Aborted) => {
                    assert!(!sa.contains(tag), "aborted {txid} ({tag}) is present")
                }
                other => panic!("transaction {txid} is {other:?} after recovery"),
            }
        }
    }
    assert_eq!(ledger.staged_count(), 0, "the ledger kept staged work");
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    // Nothing staged is left in the coordination log: both collections can be dropped.
    let committed = states
        .values()
        .filter(|s| **s == TxnState::Committed)
        .count();
    (states.len(), committed)
}

#[test]
fn sigkill_inside_two_phase_commit_is_all_or_nothing() {
    let cycles = cycles();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut totals = (0, 0);
    let mut event_kills = 0;
    for cycle in 0..cycles {
        // Every third cycle the parent kills at a random time. Otherwise the child kills itself
        // at an event of one of its first four transactions (the fourth is refused): the event
        // kinds in turn (so even a short run covers before prepare, between prepares, after
        // the decision and during phase 2), the transaction at random.
        let kill_at = if cycle % 3 == 2 {
            0
        } else {
            event_kills += 1;
            rng.below(4) * EVENTS_PER_TXN + 1 + (event_kills - 1) % EVENTS_PER_TXN
        };
        run_child(
            "coord_crash::twopc_child_entry",
            dir.path(),
            cycle,
            kill_at,
            None,
        );
        totals = verify_2pc(dir.path(), cycle + 1);
    }
    let points = kill_points(dir.path(), 0..=cycles - 1);
    eprintln!(
        "2PC crash suite: {cycles} SIGKILL cycles, {} transactions ({} committed) checked \
         all-or-nothing, kill points {points:?}, {:.1} s",
        totals.0,
        totals.1,
        started.elapsed().as_secs_f64()
    );
    assert!(
        totals.1 > 0,
        "nothing committed: the test would prove nothing"
    );
    if cycles >= 9 {
        for kind in ["Begun", "Voted", "Decided", "Finishing"] {
            assert!(
                points.keys().any(|k| k.starts_with(kind)),
                "no kill at {kind}: {points:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- re-embed saga

const SAGA_N: u64 = 400;
const SAGA_BATCH: usize = 50;

/// The vector entity `n` has in a collection of dimension `dim`.
fn vec_for(n: u64, dim: usize) -> Vec<f32> {
    (0..dim as u64)
        .map(|i| ((n * 13 + i * 7 + dim as u64) % 29) as f32 + 1.0)
        .collect()
}

fn exact(dim: u32) -> CollectionConfig {
    CollectionConfig::new(dim, Metric::L2).with_index(IndexKind::Exact)
}

/// Alternates between 8 and 16 dimensions; fails at entity `fail_at`.
fn saga_embed(fail_at: Option<u64>) -> impl Fn(&Entity) -> hybridb::Result<Vec<f32>> {
    move |e| {
        let n = e.payload["n"].as_u64().unwrap_or(0);
        if Some(n) == fail_at {
            return Err(Error::InvalidCoordination("the model failed".into()));
        }
        Ok(vec_for(n, if e.vector.len() == 8 { 16 } else { 8 }))
    }
}

#[test]
fn saga_child_entry() {
    let Some(killer) = Killer::from_env() else {
        return; // Not a child run.
    };
    let db = Database::open(killer.dir.join("db.redb")).unwrap();
    if db.alias_target("s").is_none() {
        let g0 = match db.collection("g0") {
            Ok(c) => c,
            Err(_) => db.create_collection("g0", exact(8)).unwrap(),
        };
        if g0.count().unwrap() == 0 {
            let all = (0..SAGA_N)
                .map(|n| {
                    Entity::new(
                        EntityId::from_key(&format!("n{n}")),
                        json!({"n": n}),
                        vec_for(n, 8),
                    )
                })
                .collect();
            g0.upsert_batch(all).unwrap();
        }
        db.create_alias("s", "g0").unwrap();
    }
    let fail_at = std::env::var(CHILD_FAIL_AT)
        .ok()
        .and_then(|s| s.parse().ok());
    let source_dim = db.collection("s").unwrap().config().dim;
    let target_dim = if source_dim == 8 { 16 } else { 8 };
    let mut spec = ReembedSpec::new("s", &format!("g{}", killer.cycle), exact(target_dim));
    spec.batch_size = SAGA_BATCH;
    spec.drop_grace = Duration::from_millis(200);
    let (k1, k2) = (Arc::clone(&killer), Arc::clone(&killer));
    let def = reembed_definition(
        Arc::new(saga_embed(fail_at)),
        Some(Arc::new(move |p| k1.event(&format!("CopyBatch {p:?}")))),
    )
    .on_event(move |e| k2.event(&format!("{e:?}")));
    let params = db.reembed_params(&spec).unwrap();
    let _ = db.run_saga(&def, params);
}

/// After a crash: resume, then check the saga is complete or fully compensated.
fn verify_saga(dir: &Path) -> (u64, u64) {
    let db = Database::open(dir.join("db.redb")).unwrap();
    let def = reembed_definition(Arc::new(saga_embed(None)), None);
    db.recover_sagas(&[&def]).unwrap();
    let sagas = db.sagas().unwrap();
    assert!(
        sagas.iter().all(|s| s.state.is_final()),
        "unfinished sagas after recovery: {sagas:?}"
    );
    let Some(target) = db.alias_target("s") else {
        // Killed before the first alias existed: nothing may have happened yet.
        assert!(sagas.is_empty());
        return (0, 0);
    };
    // Exactly one collection: completed sagas dropped their source, compensated ones their
    // target.
    let names: Vec<String> = db.collections().into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec![target.clone()], "leftover collections");
    if let Some(last) = sagas.last() {
        let side = match last.state {
            SagaState::Completed => "target",
            SagaState::Compensated => "source",
            other => panic!("saga {} is {other:?}", last.id),
        };
        assert_eq!(last.params[side], target.as_str(), "{last:?}");
    }
    let c = db.collection("s").unwrap();
    let dim = c.config().dim as usize;
    let page = c.scroll(None, 1000).unwrap();
    assert_eq!(
        page.records.len() as u64,
        SAGA_N,
        "entities lost or duplicated"
    );
    for r in &page.records {
        let n = r.payload["n"].as_u64().unwrap();
        assert_eq!(
            r.vector,
            vec_for(n, dim),
            "entity {n} has a vector of another model"
        );
    }
    assert_eq!(c.indexed_count() as u64, SAGA_N);
    assert!(db.verify().unwrap().is_clean());
    let completed = sagas
        .iter()
        .filter(|s| s.state == SagaState::Completed)
        .count() as u64;
    (completed, sagas.len() as u64 - completed)
}

#[test]
fn sigkill_inside_the_reembed_saga_completes_or_compensates() {
    let cycles = cycles();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut totals = (0, 0);
    // Events of a run: Started, 2 per step, the copy batches, Finished (plus compensation).
    let events = 10 + SAGA_N / SAGA_BATCH as u64;
    for cycle in 1..=cycles {
        let fail_at = (rng.below(3) == 0).then(|| rng.below(SAGA_N));
        let kill_at = if cycle % 4 == 0 {
            0
        } else {
            1 + rng.below(events + 2)
        };
        run_child(
            "coord_crash::saga_child_entry",
            dir.path(),
            cycle,
            kill_at,
            fail_at,
        );
        totals = verify_saga(dir.path());
    }
    let points = kill_points(dir.path(), 1..=cycles);
    eprintln!(
        "saga crash suite: {cycles} SIGKILL cycles, {} sagas completed and {} compensated, \
         kill points {points:?}, {:.1} s",
        totals.0,
        totals.1,
        started.elapsed().as_secs_f64()
    );
    assert!(
        totals.0 + totals.1 > 0,
        "no saga ran: the test would prove nothing"
    );
}
