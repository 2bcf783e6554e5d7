//! Fault suite: storage operations (reads, writes, syncs, resizes) fail on a countdown while
//! a random workload runs. Every operation must return (Ok or a typed error: no panic, no
//! hang), and after reopening without faults the database must equal the model of the
//! acknowledged writes — plus, possibly, the one write whose commit failed ambiguously (its
//! data may have reached the disk before the error was reported).
//!
//! `HYBRIDB_FAULT_RUNS` sets the number of runs (default 60; the long run uses 1000+).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hybridb::{
    CollectionConfig, Database, Entity, EntityId, IndexKind, Metric, NamedVector, SparseVector,
    VectorConfig,
};
use serde_json::json;

use crate::faulty::{self, Control, READ, SET_LEN, SYNC, WRITE};

type Model = BTreeMap<EntityId, (Vec<f32>, u64)>;

#[derive(Debug, Clone)]
enum Op {
    Upsert(Vec<(u64, [f32; 4])>),
    Delete(Vec<u64>),
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn id(k: u64) -> EntityId {
    EntityId::from_key(&format!("k{k}"))
}

fn random_op(rng: &mut Rng) -> Op {
    if rng.below(3) == 0 {
        Op::Delete((0..1 + rng.below(3)).map(|_| rng.below(30)).collect())
    } else {
        let mut keys: Vec<u64> = (0..1 + rng.below(4)).map(|_| rng.below(30)).collect();
        keys.sort();
        keys.dedup();
        Op::Upsert(
            keys.into_iter()
                .map(|k| {
                    (
                        k,
                        [
                            rng.below(9) as f32 + 1.0,
                            rng.below(5) as f32,
                            1.0,
                            k as f32,
                        ],
                    )
                })
                .collect(),
        )
    }
}

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Upsert(items) => {
            for (k, v) in items {
                let version = model.get(&id(*k)).map_or(0, |e| e.1) + 1;
                model.insert(id(*k), (v.to_vec(), version));
            }
        }
        Op::Delete(keys) => {
            for k in keys {
                model.remove(&id(*k));
            }
        }
    }
}

/// The collection: a default vector, a named dense vector `n` and a sparse vector `s`.
fn config(index: IndexKind) -> CollectionConfig {
    CollectionConfig::new(4, Metric::L2)
        .with_index(index)
        .with_vector("n", VectorConfig::dense_with_index(4, Metric::L2, index))
        .with_vector("s", VectorConfig::sparse(false))
}

/// The named vectors written with `(k, v)`: `n` (v reversed) for odd keys, `s` (the integer
/// parts of v as weights of dimensions k..k+4) always. Written in the entity's transaction,
/// they must always agree with its default vector (checked by [`stored`]).
fn named_of(k: u64, v: &[f32]) -> BTreeMap<String, NamedVector> {
    let mut out = BTreeMap::new();
    if k % 2 == 1 {
        let n: Vec<f32> = v.iter().rev().copied().collect();
        out.insert("n".to_string(), NamedVector::Dense(n));
    }
    let s = SparseVector::new((k as u32..k as u32 + 4).collect(), v.to_vec());
    out.insert("s".to_string(), NamedVector::Sparse(s));
    out
}

fn run(c: &hybridb::Collection, op: &Op) -> hybridb::Result<()> {
    match op {
        Op::Upsert(items) => c
            .upsert_batch(
                items
                    .iter()
                    .map(|(k, v)| {
                        let mut e = Entity::new(id(*k), json!({"k": k}), v.to_vec());
                        e.vectors = named_of(*k, v);
                        e
                    })
                    .collect(),
            )
            .map(|_| ()),
        Op::Delete(keys) => {
            let mut ids: Vec<_> = keys.iter().map(|k| id(*k)).collect();
            ids.sort();
            ids.dedup();
            c.delete_batch(&ids).map(|_| ())
        }
    }
}

/// The stored state as a model; each entity's named vectors must agree with its default one.
fn stored(c: &hybridb::Collection) -> Model {
    c.scroll(None, 1000)
        .unwrap()
        .records
        .into_iter()
        .map(|r| {
            let k = r.payload["k"].as_u64().expect("k");
            assert_eq!(
                r.vectors,
                named_of(k, &r.vector),
                "named vectors of {}",
                r.id
            );
            (r.id, (r.vector, r.version))
        })
        .collect()
}

fn one_run(seed: u64) -> bool {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.redb");
    let ctl = Arc::new(Control::default());
    let index = if seed.is_multiple_of(2) {
        IndexKind::Exact
    } else {
        IndexKind::hnsw()
    };
    let mut model = Model::new();
    let mut ambiguous: Option<Op> = None;
    let fired;
    {
        let db = faulty::open(
            Database::builder()
                .busy_timeout(Duration::from_secs(30))
                .checkpoint_every(0, Duration::ZERO),
            &path,
            &ctl,
        );
        let c = db.create_collection("c", config(index)).unwrap();
        for _ in 0..6 {
            let op = random_op(&mut rng);
            run(&c, &op).unwrap();
            apply(&mut model, &op);
        }
        let kinds =
            [READ, WRITE, SYNC, SET_LEN, READ | WRITE | SYNC | SET_LEN][rng.below(5) as usize];
        ctl.arm(1 + rng.below(25), kinds, rng.below(8) == 0);
        for _ in 0..12 {
            // Reads under faults: any answer but a panic.
            let _ = c.get(id(rng.below(30)));
            let _ = c.search(&[1.0, 1.0, 1.0, 1.0], 3);
            let op = random_op(&mut rng);
            match run(&c, &op) {
                Ok(()) => apply(&mut model, &op),
                Err(e) => {
                    assert!(!e.is_user_error(), "a fault surfaced as a user error: {e}");
                    ambiguous = Some(op);
                    break;
                }
            }
        }
        fired = ctl.fired();
        ctl.disarm();
    }
    // Reopen without faults: the model, or the model plus the ambiguous write.
    let db = Database::open(&path).unwrap();
    let c = db.collection("c").unwrap();
    let got = stored(&c);
    let matches = got == model
        || ambiguous.as_ref().is_some_and(|op| {
            let mut with = model.clone();
            apply(&mut with, op);
            got == with
        });
    assert!(
        matches,
        "seed {seed}: stored state is neither the model nor model + the failed write\n got {got:?}\n model {model:?}\n ambiguous {ambiguous:?}"
    );
    assert_eq!(
        c.indexed_count() as u64,
        c.count().unwrap(),
        "seed {seed}: index and tables disagree"
    );
    for h in c.search(&[1.0, 1.0, 1.0, 1.0], 30).unwrap() {
        assert!(
            got.contains_key(&h.id),
            "seed {seed}: search returned a missing entity"
        );
    }
    let events = db.changes_since(0, usize::MAX).unwrap();
    assert!(
        events.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "seed {seed}: gap in the log"
    );
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "seed {seed}: {report:?}");
    fired
}

#[test]
fn injected_storage_faults_never_corrupt_or_hang() {
    let runs: u64 = std::env::var("HYBRIDB_FAULT_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let started = std::time::Instant::now();
    let fired = (0..runs).filter(|&seed| one_run(seed)).count();
    eprintln!(
        "fault suite: {runs} runs, {fired} with an injected fault, 0 corruptions, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        fired as u64 >= runs / 3,
        "too few runs met a fault: {fired}/{runs}"
    );
}

/// One run with a failpoint armed on the commit, index-apply or checkpoint path: the failing
/// call returns an error, later calls succeed (the writer recovers), and after a reopen the
/// database is the model (plus the failed write where it may have committed).
fn one_failpoint_run(seed: u64) -> bool {
    use hybridb::failpoint::{FailAction, Failpoints, POINTS};
    let mut rng = Rng(seed.wrapping_mul(0xA24B_AED4_963E_E407) | 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fp.redb");
    let fp = Arc::new(Failpoints::new());
    let index = if seed.is_multiple_of(2) {
        IndexKind::hnsw()
    } else {
        IndexKind::Exact
    };
    let point = POINTS[rng.below(POINTS.len() as u64) as usize];
    let action = if rng.below(2) == 0 {
        FailAction::Error
    } else {
        FailAction::Panic
    };
    let mut model = Model::new();
    let mut ambiguous: Vec<Op> = Vec::new();
    // The model had the failed write committed (it may have: a panic after the commit).
    let mut with_failed: Option<Model> = None;
    {
        let db = Database::builder()
            .failpoints(Arc::clone(&fp))
            .checkpoint_every(0, Duration::ZERO)
            .open(&path)
            .unwrap();
        let c = db.create_collection("c", config(index)).unwrap();
        fp.arm(point, rng.below(6), action);
        for step in 0..16 {
            let _ = c.search(&[1.0, 1.0, 1.0, 1.0], 3);
            let op = random_op(&mut rng);
            // After a reload the writer may briefly answer Recovering: retry those.
            let r = hybridb::retry(hybridb::RetryPolicy::default(), || run(&c, &op));
            match r {
                Ok(()) => {
                    apply(&mut model, &op);
                    if let Some(m) = &mut with_failed {
                        apply(m, &op);
                    }
                }
                Err(e) => {
                    assert!(
                        !e.is_user_error(),
                        "seed {seed}: fault surfaced as user error: {e}"
                    );
                    let mut m = model.clone();
                    apply(&mut m, &op);
                    with_failed = Some(m);
                    ambiguous.push(op);
                }
            }
            if step % 4 == 3 {
                match db.checkpoint() {
                    Ok(_) => {}
                    Err(e) => assert!(!e.is_user_error(), "seed {seed}: {e}"),
                }
            }
        }
        assert!(
            ambiguous.len() <= 1,
            "seed {seed}: the writer did not recover: {ambiguous:?}"
        );
        fp.disarm_all();
    }
    let db = Database::open(&path).unwrap();
    let c = db.collection("c").unwrap();
    let got = stored(&c);
    let ok = got == model || with_failed.as_ref() == Some(&got);
    assert!(
        ok,
        "seed {seed} ({point} {action:?}): stored state is not the model\n got {got:?}\n model {model:?}\n ambiguous {ambiguous:?}"
    );
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "seed {seed}: {report:?}");
    assert_eq!(c.indexed_count() as u64, c.count().unwrap());
    fp.fired() > 0
}

#[test]
fn failpoints_on_commit_apply_and_checkpoint_never_corrupt_or_hang() {
    let runs: u64 = std::env::var("HYBRIDB_FAILPOINT_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let started = std::time::Instant::now();
    let fired = (0..runs).filter(|&seed| one_failpoint_run(seed)).count();
    eprintln!(
        "failpoint suite: {runs} runs, {fired} fired, 0 corruptions, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        fired as u64 >= runs / 2,
        "too few failpoints fired: {fired}/{runs}"
    );
}
