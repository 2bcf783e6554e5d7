//! The re-embed saga: a collection behind an alias moves to a new dimension while a reader
//! searches through the alias; the reader never meets a missing collection and every search
//! answers from exactly one collection (all hit vectors have that collection's dimension).
//!
//! `HYBRIDB_REEMBED_N` sets the number of entities (default 5,000; the run is 50,000
//! in release mode).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hybridb::coord::log::SagaState;
use hybridb::coord::reembed::ReembedSpec;
use hybridb::{
    CollectionConfig, Database, Entity, EntityId, Error, IndexKind, Metric, SearchRequest,
};
use serde_json::json;

fn hnsw(dim: u32) -> CollectionConfig {
    CollectionConfig::new(dim, Metric::L2).with_index(IndexKind::Hnsw {
        m: 12,
        ef_construction: 64,
        ef: 32,
    })
}

fn old_vector(n: u64) -> Vec<f32> {
    (0..8u64)
        .map(|i| ((n * 31 + i * 17) % 101) as f32 / 101.0)
        .collect()
}

/// The "new model": 16 dimensions, derived from the old vector.
fn embed(e: &Entity) -> hybridb::Result<Vec<f32>> {
    let mut v = e.vector.clone();
    v.extend(e.vector.iter().map(|x| 1.0 - x));
    Ok(v)
}

fn populate(db: &Database, name: &str, n: u64) {
    let c = db.create_collection(name, hnsw(8)).unwrap();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.push(Entity::new(
            EntityId::from_key(&format!("e{i}")),
            json!({"n": i}),
            old_vector(i),
        ));
        if batch.len() == 2000 {
            c.upsert_batch(std::mem::take(&mut batch)).unwrap();
        }
    }
    if !batch.is_empty() {
        c.upsert_batch(batch).unwrap();
    }
}

#[test]
fn reembed_under_a_searching_reader_never_mixes_or_misses() {
    let n: u64 = std::env::var("HYBRIDB_REEMBED_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let (_dir, db) = crate::fresh();
    let t0 = Instant::now();
    populate(&db, "docs_v1", n);
    db.create_alias("docs", "docs_v1").unwrap();
    let loaded = t0.elapsed();

    let done = Arc::new(AtomicBool::new(false));
    let (old_searches, new_searches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (db, done) = (db.clone(), Arc::clone(&done));
        let (old, new) = (Arc::clone(&old_searches), Arc::clone(&new_searches));
        std::thread::spawn(move || -> Result<(), String> {
            let mut q = 0u64;
            // Keep searching a little after the saga finished, to see the new collection.
            let mut after_done = 0;
            while after_done < 20 {
                if done.load(Ordering::Acquire) {
                    after_done += 1;
                }
                q += 1;
                let c = db
                    .collection("docs")
                    .map_err(|e| format!("resolving the alias: {e}"))?;
                let dim = c.config().dim as usize;
                // A request does some work between resolving the alias and searching.
                std::thread::sleep(Duration::from_micros(100 + (q % 16) * (q % 16) * 100));
                let mut query = old_vector(q * 7919);
                if dim == 16 {
                    query = embed(&Entity::new(EntityId::from_key("q"), json!({}), query))
                        .map_err(|e| e.to_string())?;
                }
                let hits = c
                    .search_with(&SearchRequest::new(query, 10).with_vector(true))
                    .map_err(|e| format!("search on {}: {e}", c.name()))?;
                if hits.len() != 10.min(n as usize) {
                    return Err(format!("{} hits from {}", hits.len(), c.name()));
                }
                // ... and reads through the same handle afterwards.
                c.get(hits[0].id)
                    .map_err(|e| format!("get on {}: {e}", c.name()))?
                    .ok_or_else(|| format!("hit {} missing in {}", hits[0].id, c.name()))?;
                for h in &hits {
                    let len = h.vector.as_ref().map_or(0, Vec::len);
                    if len != dim {
                        return Err(format!(
                            "a search on {} (dim {dim}) returned a {len}-d vector",
                            c.name()
                        ));
                    }
                }
                if dim == 8 { &old } else { &new }.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    let batches = Arc::new(AtomicU64::new(0));
    let b2 = Arc::clone(&batches);
    let mut spec = ReembedSpec::new("docs", "docs_v2", hnsw(16));
    spec.batch_size = 500;
    let t1 = Instant::now();
    let out = db
        .reembed(spec, embed, move |p| {
            assert!(p.copied <= p.total);
            b2.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let took = t1.elapsed();
    done.store(true, Ordering::Release);
    reader.join().unwrap().unwrap();

    assert_eq!(out.state, SagaState::Completed);
    assert_eq!(batches.load(Ordering::Relaxed), n.div_ceil(500));
    let c = db.collection("docs").unwrap();
    assert_eq!(c.name(), "docs_v2");
    assert_eq!(c.count().unwrap(), n);
    assert_eq!(c.indexed_count() as u64, n);
    assert!(matches!(
        db.collection("docs_v1"),
        Err(Error::CollectionNotFound(_))
    ));
    for i in [0, n / 2, n - 1] {
        let id = EntityId::from_key(&format!("e{i}"));
        let r = c.get(id).unwrap().unwrap();
        assert_eq!(r.payload["n"], i);
        let want = embed(&Entity::new(id, json!({}), old_vector(i))).unwrap();
        assert_eq!(r.vector, want);
    }
    assert!(db.verify().unwrap().is_clean());
    let (o, w) = (
        old_searches.load(Ordering::Relaxed),
        new_searches.load(Ordering::Relaxed),
    );
    assert!(o > 0 && w > 0, "reader saw {o} old and {w} new searches");
    eprintln!(
        "re-embed: {n} entities loaded in {:.1} s, re-embedded in {:.1} s; reader: {o} searches \
         on the old collection, {w} on the new, none failed or mixed",
        loaded.as_secs_f64(),
        took.as_secs_f64()
    );
}

#[test]
fn a_failing_embedding_compensates_and_bad_specs_are_refused() {
    let (_dir, db) = crate::fresh();
    populate(&db, "v1", 300);
    db.create_alias("docs", "v1").unwrap();
    let spec = ReembedSpec::new("docs", "v2", hnsw(16));
    let r = db.reembed(
        spec.clone(),
        |e| {
            if e.payload["n"] == 250 {
                Err(Error::InvalidCoordination("model unavailable".into()))
            } else {
                embed(e)
            }
        },
        |_| {},
    );
    assert!(
        matches!(r, Err(Error::SagaFailed { ref step, compensated: true, .. }) if step == "copy"),
        "{r:?}"
    );
    assert_eq!(db.alias_target("docs").as_deref(), Some("v1"));
    assert!(db.collection("v2").is_err(), "the target was dropped");
    assert_eq!(db.collection("docs").unwrap().count().unwrap(), 300);
    // An embedding of the wrong dimension is a typed error too (and compensates).
    let r = db.reembed(spec.clone(), |e| Ok(e.vector.clone()), |_| {});
    assert!(
        matches!(
            r,
            Err(Error::SagaFailed {
                compensated: true,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(db.collection("v2").is_err());

    // Refused before anything starts.
    let mut bad = spec.clone();
    bad.alias = "nope".into();
    assert!(matches!(
        db.reembed(bad, embed, |_| {}),
        Err(Error::AliasNotFound(_))
    ));
    let mut bad = spec.clone();
    bad.target = "v1".into();
    assert!(matches!(
        db.reembed(bad, embed, |_| {}),
        Err(Error::CollectionExists(_))
    ));
    let mut bad = spec.clone();
    bad.target = "bad name".into();
    assert!(matches!(
        db.reembed(bad, embed, |_| {}),
        Err(Error::InvalidCollectionName { .. })
    ));
    let mut bad = spec.clone();
    bad.config = CollectionConfig::new(0, Metric::L2);
    assert!(matches!(
        db.reembed(bad, embed, |_| {}),
        Err(Error::InvalidConfig(_))
    ));
    let mut bad = spec;
    bad.batch_size = 0;
    assert!(matches!(
        db.reembed(bad, embed, |_| {}),
        Err(Error::InvalidCoordination(_))
    ));
    // Then a good run, with a short grace.
    let mut good = ReembedSpec::new("docs", "v2", hnsw(16));
    good.drop_grace = Duration::from_millis(100);
    db.reembed(good, embed, |_| {}).unwrap();
    assert_eq!(db.collection("docs").unwrap().config().dim, 16);
    assert_eq!(db.collections().len(), 1);
}

#[test]
fn writes_to_the_source_during_the_copy_are_carried_over() {
    let (_dir, db) = crate::fresh();
    populate(&db, "v1", 1000);
    db.create_alias("docs", "v1").unwrap();
    let src = db.collection("v1").unwrap();
    let mut spec = ReembedSpec::new("docs", "v2", hnsw(16));
    spec.batch_size = 100;
    // The callback below holds a handle on the source: do not wait long for it.
    spec.drop_grace = Duration::from_millis(200);
    let wrote = Arc::new(AtomicBool::new(false));
    let w2 = Arc::clone(&wrote);
    db.reembed(spec, embed, move |p| {
        // Halfway: change an entity already copied, add one, delete one.
        if p.copied == 500 && !w2.swap(true, Ordering::SeqCst) {
            let first = src.scroll(None, 1).unwrap().records[0].id;
            src.upsert(Entity::new(first, json!({"n": -1}), old_vector(1)))
                .unwrap();
            src.upsert(Entity::new(
                EntityId::from_key("late"),
                json!({"n": 5000}),
                old_vector(5000),
            ))
            .unwrap();
            let last = src.scroll(None, 1000).unwrap().records[999].id;
            src.delete(last).unwrap();
        }
    })
    .unwrap();
    assert!(wrote.load(Ordering::SeqCst));
    let c = db.collection("docs").unwrap();
    assert_eq!(c.count().unwrap(), 1000);
    assert!(c.get(EntityId::from_key("late")).unwrap().is_some());
    let first = c.scroll(None, 1).unwrap().records[0].clone();
    assert_eq!(first.payload["n"], -1);
    assert_eq!(first.vector.len(), 16);
}

#[test]
fn writers_through_the_alias_lose_nothing_during_a_reembed() {
    let (_dir, db) = crate::fresh();
    populate(&db, "v1", 2000);
    db.create_alias("docs", "v1").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (db, done, refused) = (db.clone(), Arc::clone(&done), Arc::clone(&refused));
            std::thread::spawn(move || {
                // The last acknowledged state of each key: Some(write number) or deleted.
                let mut last: std::collections::HashMap<String, Option<u64>> = Default::default();
                let mut after_done = 0;
                let mut i = 0u64;
                while after_done < 30 {
                    if done.load(Ordering::Acquire) {
                        after_done += 1;
                    }
                    i += 1;
                    let key = format!("w{t}-{}", i % 40);
                    let id = EntityId::from_key(&key);
                    loop {
                        // Resolve per write, as a request handler does.
                        let c = db.collection("docs").unwrap();
                        let mut v = old_vector(i);
                        if c.config().dim == 16 {
                            v = embed(&Entity::new(id, json!({}), v)).unwrap();
                        }
                        let r = if i % 7 == 6 {
                            c.delete(id).map(|_| None)
                        } else {
                            c.upsert(Entity::new(id, json!({"n": i, "w": i}), v))
                                .map(|_| Some(i))
                        };
                        match r {
                            Ok(state) => {
                                last.insert(key.clone(), state);
                                break;
                            }
                            Err(Error::CollectionReadOnly(_)) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("write failed: {e}"),
                        }
                    }
                }
                last
            })
        })
        .collect();
    let mut spec = ReembedSpec::new("docs", "v2", hnsw(16));
    spec.batch_size = 100;
    spec.drop_grace = Duration::from_secs(2);
    let out = db.reembed(spec, embed, |_| {}).unwrap();
    assert_eq!(out.state, SagaState::Completed);
    done.store(true, Ordering::Release);
    let c = db.collection("docs").unwrap();
    assert_eq!(c.name(), "v2");
    let mut checked = 0;
    for w in writers {
        for (key, state) in w.join().unwrap() {
            let got = c.get(EntityId::from_key(&key)).unwrap();
            match state {
                None => assert!(got.is_none(), "{key} was deleted last, but exists"),
                Some(i) => {
                    let r = got.unwrap_or_else(|| panic!("{key} (write {i}) is lost"));
                    assert_eq!(r.payload["w"], i, "{key}: an older write won");
                    let want = embed(&Entity::new(r.id, json!({}), old_vector(i))).unwrap();
                    assert_eq!(r.vector, want);
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 80);
    assert!(db.verify().unwrap().is_clean());
    eprintln!(
        "writers during re-embed: {checked} keys exact, {} writes refused by the retired source \
         and retried through the alias",
        refused.load(Ordering::Relaxed)
    );
}

/// A crash between the swap and the drop: the source's retirement survives the reopen (a write
/// by its own name is refused, not lost), and the resumed saga drops it.
#[test]
fn a_retired_source_stays_retired_across_a_crash_until_the_saga_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.redb");
    {
        let db = Database::open(&path).unwrap();
        populate(&db, "v1", 300);
        db.create_alias("docs", "v1").unwrap();
        let mut spec = ReembedSpec::new("docs", "v2", hnsw(16));
        spec.batch_size = 100;
        let def =
            hybridb::coord::reembed::reembed_definition(Arc::new(embed), None).on_event(|e| {
                if let hybridb::coord::saga::SagaEvent::StepStarting {
                    step: 3,
                    compensating: false,
                    ..
                } = e
                {
                    panic!("simulated crash before drop_source");
                }
            });
        let params = db.reembed_params(&spec).unwrap();
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.run_saga(&def, params)));
        assert!(r.is_err(), "the hook fired");
        assert_eq!(db.alias_target("docs").as_deref(), Some("v2"));
    }
    let db = Database::open(&path).unwrap();
    let old = db.collection("v1").unwrap();
    let refused = old.upsert(Entity::new(
        EntityId::from_key("late"),
        json!({"n": -1}),
        old_vector(1),
    ));
    assert!(
        matches!(refused, Err(hybridb::Error::CollectionReadOnly(_))),
        "still retired after the reopen: {refused:?}"
    );
    drop(old);
    let def = hybridb::coord::reembed::reembed_definition(Arc::new(embed), None);
    let outs = db.recover_sagas(&[&def]).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].state, SagaState::Completed);
    assert!(db.collection("v1").is_err(), "the source is dropped");
    let docs = db.collection("docs").unwrap();
    assert_eq!(docs.count().unwrap(), 300);
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn reembedding_one_named_vector_carries_the_others_over() {
    use hybridb::{NamedVector, SparseVector, VectorConfig};
    let (_dir, db) = crate::fresh();
    let with = |dim: u32| {
        hnsw(8)
            .with_vector("text", VectorConfig::dense(dim, Metric::Cosine))
            .with_vector("terms", VectorConfig::sparse(false))
    };
    let c = db.create_collection("v1", with(4)).unwrap();
    let entities: Vec<Entity> = (0..300u64)
        .map(|i| {
            let e = Entity::new(
                EntityId::from_key(&format!("e{i}")),
                json!({"n": i}),
                old_vector(i),
            )
            .with_vector("terms", SparseVector::new(vec![i as u32 % 7], vec![1.0]));
            if i % 2 == 0 {
                e.with_vector("text", vec![1.0, i as f32, 0.0, 0.5])
            } else {
                e
            }
        })
        .collect();
    c.upsert_batch(entities.clone()).unwrap();
    db.create_alias("docs", "v1").unwrap();
    // A target that drops a carried vector is refused before anything runs.
    let bad = ReembedSpec::new(
        "docs",
        "v2",
        hnsw(8).with_vector("text", VectorConfig::dense(6, Metric::Cosine)),
    )
    .with_vector("text");
    assert!(matches!(
        db.reembed(bad, |_: &Entity| Ok(vec![1.0; 6]), |_| {}),
        Err(Error::InvalidConfig(_))
    ));
    let mut spec = ReembedSpec::new("docs", "v2", with(6)).with_vector("text");
    spec.batch_size = 64;
    spec.drop_grace = Duration::from_millis(100);
    // The new "text" model: 6 dimensions from the old text vector, or from the default vector
    // for entities without one (re-embedding may give every entity the vector).
    let embed = |e: &Entity| -> hybridb::Result<Vec<f32>> {
        let base = match e.vectors.get("text") {
            Some(NamedVector::Dense(v)) => v.clone(),
            _ => e.vector[..4].to_vec(),
        };
        let mut v = base.clone();
        v.extend([1.0, 2.0]);
        Ok(v)
    };
    db.reembed(spec, embed, |_| {}).unwrap();
    let docs = db.collection("docs").unwrap();
    assert_eq!(docs.name(), "v2");
    for e in entities.iter().step_by(37) {
        let r = docs.get(e.id).unwrap().unwrap();
        assert_eq!(r.vector, e.vector, "default vector carried over");
        assert_eq!(
            r.vectors.get("terms"),
            e.vectors.get("terms"),
            "sparse carried over"
        );
        match r.vectors.get("text") {
            Some(NamedVector::Dense(v)) => assert_eq!(v.len(), 6),
            other => panic!("text not re-embedded: {other:?}"),
        }
    }
    let hits = docs
        .search_with(&SearchRequest::new(vec![1.0, 0.0, 0.0, 0.5, 1.0, 2.0], 3).using("text"))
        .unwrap();
    assert_eq!(hits.len(), 3);
    assert!(db.verify().unwrap().is_clean());
}
