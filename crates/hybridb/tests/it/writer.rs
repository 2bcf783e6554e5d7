//! The writer thread: group commit under concurrency, read-your-writes, backpressure, commit
//! failures, panics and shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hybridb::{
    CollectionConfig, Consistency, Database, Durability, Entity, EntityId, Error, Metric,
    SearchRequest,
};
use serde_json::json;

use crate::faulty::{self, Control};

fn dim4() -> CollectionConfig {
    CollectionConfig::new(4, Metric::L2)
}

fn key(t: usize, i: usize) -> EntityId {
    EntityId::from_key(&format!("t{t}-{i}"))
}

/// Threads write their own keys (last write wins per key) and increment shared counters with
/// compare-and-set loops, while readers search; the end state equals the serial model, and
/// every counter increment is counted exactly once.
#[test]
fn concurrent_writers_and_readers_end_in_the_serial_models_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let threads = 8;
    let per_thread = 150;
    let counters = 3;
    {
        let db = Database::open(&path).unwrap();
        let c = db.create_collection("c", dim4()).unwrap();
        let barrier = Arc::new(Barrier::new(threads + 2));
        std::thread::scope(|s| {
            for t in 0..threads {
                let c = c.clone();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..per_thread {
                        // Own key, written twice: final vector is the second write.
                        let k = key(t, i % 50);
                        let v = vec![t as f32, i as f32, 0.0, 1.0];
                        let w = c
                            .upsert(Entity::new(k, json!({"t": t, "i": i}), v.clone()))
                            .unwrap();
                        // Read-your-writes: get and a strong search see it at once.
                        let got = c.get(k).unwrap().expect("own write visible");
                        assert_eq!(got.vector, v);
                        assert!(got.version >= w.version);
                        let hits = c.search(&v, 1).unwrap();
                        assert_eq!(hits[0].score, 0.0, "own vector found by search");
                        if i % 10 == 0 {
                            assert!(c.delete(key(t, 1000 + i)).is_ok());
                        }
                        // Counter increment by compare-and-set.
                        let ck = EntityId::from_key(&format!("counter{}", i % counters));
                        loop {
                            let current = c.get(ck).unwrap();
                            let (n, version) = current
                                .map(|r| (r.payload["n"].as_u64().unwrap(), r.version))
                                .unwrap_or((0, 0));
                            let e = Entity::new(ck, json!({"n": n + 1}), vec![0.0, 0.0, 0.0, 9.0]);
                            match c.upsert_if_version(e, version) {
                                Ok(_) => break,
                                Err(Error::Conflict { .. }) => continue,
                                Err(e) => panic!("unexpected {e}"),
                            }
                        }
                    }
                });
            }
            for _ in 0..2 {
                let c = c.clone();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..300 {
                        let q = [(i % 8) as f32, (i % 150) as f32, 0.0, 1.0];
                        let hits = c
                            .search_with(
                                &SearchRequest::new(q.to_vec(), 5)
                                    .consistency(Consistency::Eventual),
                            )
                            .unwrap();
                        assert!(hits.len() <= 5);
                        let _ = c.scroll(None, 20).unwrap();
                    }
                });
            }
        });
        // Serial model: each own key holds its last write; counters hold every increment.
        let mut model: BTreeMap<EntityId, Vec<f32>> = BTreeMap::new();
        for t in 0..threads {
            for i in 0..per_thread {
                model.insert(key(t, i % 50), vec![t as f32, i as f32, 0.0, 1.0]);
            }
        }
        let total: u64 = (0..counters)
            .map(|n| {
                let r = c
                    .get(EntityId::from_key(&format!("counter{n}")))
                    .unwrap()
                    .unwrap();
                r.payload["n"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(
            total,
            (threads * per_thread) as u64,
            "no lost or doubled increment"
        );
        for (k, v) in &model {
            assert_eq!(&c.get(*k).unwrap().unwrap().vector, v);
        }
        assert_eq!(c.count().unwrap(), (model.len() + counters) as u64);
        assert_eq!(c.indexed_count(), model.len() + counters);
    }
    // Same state after reopen; change log gap-free.
    let db = Database::open(&path).unwrap();
    let c = db.collection("c").unwrap();
    assert_eq!(c.count().unwrap(), (threads * 50 + counters) as u64);
    let events = db.changes_since(0, 1_000_000).unwrap();
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(events.last().unwrap().seq, db.last_seq().unwrap());
}

/// One invalid command in a group fails alone; the others in the same group commit.
#[test]
fn a_bad_command_fails_alone_in_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.redb");
    let ctl = Arc::new(Control::default());
    let db = faulty::open(Database::builder(), &path, &ctl);
    let c = db.create_collection("c", dim4()).unwrap();
    // Hold the writer in a commit so that the next commands queue up into one group.
    ctl.close_gate();
    std::thread::scope(|s| {
        let first = s.spawn(|| c.upsert(Entity::new(key(0, 0), json!({}), vec![1.0; 4])));
        while ctl.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let good = s.spawn(|| c.upsert(Entity::new(key(0, 1), json!({}), vec![2.0; 4])));
        let bad_dim = s.spawn(|| c.upsert(Entity::new(key(0, 2), json!({}), vec![2.0; 3])));
        let conflict =
            s.spawn(|| c.upsert_if_version(Entity::new(key(0, 3), json!({}), vec![3.0; 4]), 9));
        let good2 = s.spawn(|| c.upsert(Entity::new(key(0, 4), json!({}), vec![4.0; 4])));
        std::thread::sleep(Duration::from_millis(100));
        ctl.open_gate();
        assert!(first.join().unwrap().is_ok());
        assert!(good.join().unwrap().is_ok());
        assert!(matches!(
            bad_dim.join().unwrap(),
            Err(Error::InvalidEntity { .. })
        ));
        assert!(matches!(
            conflict.join().unwrap(),
            Err(Error::Conflict { current: 0, .. })
        ));
        assert!(good2.join().unwrap().is_ok());
    });
    let ids: Vec<_> = c
        .scroll(None, 100)
        .unwrap()
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    let mut want = vec![key(0, 0), key(0, 1), key(0, 4)];
    want.sort();
    assert_eq!(ids, want);
}

/// A full queue makes a sync caller wait up to busy_timeout, then get Busy; nothing of the
/// refused write is written, and the queue drains normally afterwards.
#[test]
fn full_queue_gives_busy_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.redb");
    let ctl = Arc::new(Control::default());
    let db = faulty::open(
        Database::builder()
            .queue_capacity(1)
            .busy_timeout(Duration::from_millis(50)),
        &path,
        &ctl,
    );
    let c = db.create_collection("c", dim4()).unwrap();
    ctl.close_gate();
    std::thread::scope(|s| {
        let stuck = s.spawn(|| c.upsert(Entity::new(key(1, 0), json!({}), vec![1.0; 4])));
        while ctl.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // The writer holds command 1 in its commit; command 2 fills the queue.
        let queued = s.spawn(|| c.upsert(Entity::new(key(1, 1), json!({}), vec![1.0; 4])));
        std::thread::sleep(Duration::from_millis(30));
        let started = Instant::now();
        let refused = c.upsert(Entity::new(key(1, 2), json!({}), vec![1.0; 4]));
        assert!(matches!(refused, Err(Error::Busy { .. })), "{refused:?}");
        assert!(refused.as_ref().unwrap_err().is_transient());
        assert!(started.elapsed() >= Duration::from_millis(50));
        ctl.open_gate();
        assert!(stuck.join().unwrap().is_ok());
        assert!(queued.join().unwrap().is_ok());
    });
    assert_eq!(c.count().unwrap(), 2);
    assert!(c.get(key(1, 2)).unwrap().is_none());
}

/// A commit that fails (an fsync error) is reported to its callers, nothing of it exists, and
/// the writer reopens the database and goes on serving.
#[test]
fn commit_failure_is_reported_and_the_writer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.redb");
    let ctl = Arc::new(Control::default());
    {
        let db = faulty::open(Database::builder(), &path, &ctl);
        let c = db.create_collection("c", dim4()).unwrap();
        c.upsert_batch(
            (0..10)
                .map(|i| Entity::new(key(2, i), json!({"i": i}), vec![i as f32; 4]))
                .collect(),
        )
        .unwrap();
        ctl.fail_sync.store(true, Ordering::SeqCst);
        let failed = c.upsert_batch(
            (10..20)
                .map(|i| Entity::new(key(2, i), json!({"i": i}), vec![i as f32; 4]))
                .collect(),
        );
        assert!(
            matches!(failed, Err(Error::CommitFailed { .. })),
            "{failed:?}"
        );
        assert!(ctl.injected.load(Ordering::SeqCst) >= 1);
        let del = c.delete(key(2, 0));
        assert!(del.is_err(), "still failing while the fault lasts");
        ctl.fail_sync.store(false, Ordering::SeqCst);
        // The writer reopened: the failed writes are absent, the deleted one is back, and
        // new writes work.
        let w = hybridb::retry(hybridb::RetryPolicy::default(), || {
            c.upsert(Entity::new(key(2, 99), json!({}), vec![9.0; 4]))
        })
        .unwrap();
        assert_eq!(w.version, 1);
        assert_eq!(c.count().unwrap(), 11);
        assert_eq!(c.indexed_count(), 11);
        assert!(c.get(key(2, 15)).unwrap().is_none());
        assert!(c.get(key(2, 0)).unwrap().is_some());
        assert!(
            c.search(&[15.0; 4], 11)
                .unwrap()
                .iter()
                .all(|h| h.id != key(2, 15))
        );
    }
    let db = Database::open(&path).unwrap();
    let c = db.collection("c").unwrap();
    assert_eq!(c.count().unwrap(), 11);
    let events = db.changes_since(0, 1000).unwrap();
    assert!(
        events.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "no gap from the failed group"
    );
}

/// A panic inside the writer (here in the storage layer) reaches the callers as an error, never
/// a hang, and the writer goes on after reloading from disk.
#[test]
fn writer_panic_is_reported_not_hung() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.redb");
    let ctl = Arc::new(Control::default());
    let db = faulty::open(Database::builder(), &path, &ctl);
    let c = db.create_collection("c", dim4()).unwrap();
    c.upsert(Entity::new(key(3, 0), json!({}), vec![1.0; 4]))
        .unwrap();
    ctl.panic_sync.store(true, Ordering::SeqCst);
    let r = c.upsert(Entity::new(key(3, 1), json!({}), vec![1.0; 4]));
    assert!(matches!(r, Err(Error::WriterUnavailable { .. })), "{r:?}");
    let w = hybridb::retry(hybridb::RetryPolicy::default(), || {
        c.upsert(Entity::new(key(3, 2), json!({}), vec![2.0; 4]))
    });
    assert!(w.is_ok(), "{w:?}");
    assert!(c.get(key(3, 0)).unwrap().is_some());
    assert!(c.get(key(3, 2)).unwrap().is_some());
}

/// Dropping every handle while writers are busy: every acknowledged write is there after reopen.
#[test]
fn shutdown_with_pending_writes_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let acked: Vec<EntityId>;
    {
        let db = Database::builder()
            .durability(Durability::None)
            .open(&path)
            .unwrap();
        let c = db.create_collection("c", dim4()).unwrap();
        drop(db);
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..200 {
                        let k = key(10 + t, i);
                        if c.upsert(Entity::new(k, json!({}), vec![i as f32; 4]))
                            .is_ok()
                        {
                            ok.push(k);
                        }
                    }
                    ok
                })
            })
            .collect();
        drop(c);
        acked = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
    }
    assert_eq!(acked.len(), 800);
    let db = Database::open(&path).unwrap();
    let c = db.collection("c").unwrap();
    let found = c.get_many(&acked).unwrap();
    assert!(
        found.iter().all(Option::is_some),
        "acknowledged writes lost"
    );
}

/// The async API: many tasks writing concurrently, all acknowledged writes readable.
#[test]
fn async_writes_from_many_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("a.redb")).unwrap();
    let c = db.create_collection("c", dim4()).unwrap().to_async();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let versions = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..32 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut v = Vec::new();
                for i in 0..20 {
                    let k = key(100 + t, i % 5);
                    v.push(
                        c.upsert(Entity::new(k, json!({}), vec![i as f32; 4]))
                            .await
                            .unwrap()
                            .version,
                    );
                    assert!(c.get(k).unwrap().is_some());
                }
                v
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    assert_eq!(versions.len(), 640);
    assert_eq!(c.count().unwrap(), 32 * 5);
    assert_eq!(versions.iter().filter(|v| **v == 4).count(), 160);
}

/// Searches running while entities are inserted and deleted never return an entity whose
/// delete was acknowledged before the search began (HNSW and exact).
#[test]
fn concurrent_search_never_returns_a_deleted_entity() {
    for index in [hybridb::IndexKind::hnsw(), hybridb::IndexKind::Exact] {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("d.redb")).unwrap();
        let c = db
            .create_collection("c", CollectionConfig::new(4, Metric::L2).with_index(index))
            .unwrap();
        let v = |i: usize| {
            vec![
                (i % 13) as f32,
                (i % 7) as f32,
                (i % 5) as f32,
                (i % 3) as f32,
            ]
        };
        c.upsert_batch(
            (0..400)
                .map(|i| Entity::new(key(7, i), json!({}), v(i)))
                .collect(),
        )
        .unwrap();
        let deleted = std::sync::Mutex::new(std::collections::HashSet::new());
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..400 {
                    // Insert a new one, delete an old one.
                    c.upsert(Entity::new(key(8, i), json!({}), v(i))).unwrap();
                    assert!(c.delete(key(7, i)).unwrap());
                    deleted.lock().unwrap().insert(key(7, i));
                }
                stop.store(true, Ordering::SeqCst);
            });
            for r in 0..2 {
                let (c, deleted, stop) = (&c, &deleted, &stop);
                s.spawn(move || {
                    let mut searches = 0;
                    while !stop.load(Ordering::SeqCst) || searches < 50 {
                        let before = deleted.lock().unwrap().clone();
                        let q = v(searches * 3 + r);
                        for h in c.search(&q, 20).unwrap() {
                            assert!(!before.contains(&h.id), "deleted entity {} returned", h.id);
                        }
                        searches += 1;
                    }
                });
            }
        });
        assert_eq!(c.count().unwrap(), 400);
        assert_eq!(c.indexed_count(), 400);
    }
}
