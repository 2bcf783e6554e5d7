//! Read caches: every level is used (hits counted), follows every write (invalidation), never
//! serves a value older than an acknowledged write under concurrent writers, never mixes two
//! moments in one `get_many` or search, and stays within its byte bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hybridb::{
    CacheSizes, CollectionConfig, Database, Entity, EntityId, Filter, IndexKind, Metric,
    SearchRequest,
};
use serde_json::json;

fn open(dir: &tempfile::TempDir, sizes: CacheSizes) -> Database {
    Database::builder()
        .caches(sizes)
        .open(dir.path().join("c.redb"))
        .expect("open")
}

fn id(n: u64) -> EntityId {
    EntityId::from_key(&format!("e{n}"))
}

fn doc(n: u64, v: u64) -> Entity {
    Entity::new(
        id(n),
        json!({"n": n, "v": v, "tag": if n.is_multiple_of(2) { "even" } else { "odd" }}),
        vec![n as f32, 1.0, 0.5],
    )
}

#[test]
fn each_level_serves_repeats_and_follows_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, CacheSizes::default());
    let c = db
        .create_collection("c", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    c.upsert_batch((0..20).map(|n| doc(n, 1)).collect())
        .unwrap();

    // L1 + L2: a key is cached on its second read (admission), so the third get is a hit;
    // a write is seen at once.
    assert_eq!(c.get(id(3)).unwrap().unwrap().payload["v"], 1);
    assert_eq!(
        db.cache_stats().records.entries,
        0,
        "not admitted on the first read"
    );
    assert_eq!(c.get(id(3)).unwrap().unwrap().payload["v"], 1);
    let before = db.cache_stats();
    assert_eq!(c.get(id(3)).unwrap().unwrap().payload["v"], 1);
    let after = db.cache_stats();
    assert_eq!(after.records.hits, before.records.hits + 1);
    assert_eq!(after.vectors.hits, before.vectors.hits + 1);
    let mut changed = doc(3, 2);
    changed.vector = vec![9.0, 9.0, 9.0];
    c.upsert(changed).unwrap();
    let r = c.get(id(3)).unwrap().unwrap();
    assert_eq!(
        (r.payload["v"].as_u64(), r.vector.clone()),
        (Some(2), vec![9.0; 3])
    );
    assert_eq!(r.version, 2);
    c.delete(id(3)).unwrap();
    assert_eq!(c.get(id(3)).unwrap(), None);

    // L3: a repeated request is a hit; any write to the collection ends it.
    let req = SearchRequest::new(vec![5.0, 1.0, 0.5], 3)
        .with_payload(true)
        .filter(Filter::new().must(hybridb::Condition::matches_value("tag", "odd")));
    let first = c.search_with(&req).unwrap();
    assert_eq!(first[0].id, id(5));
    assert_eq!(c.search_with(&req).unwrap(), first);
    let hits_before = db.cache_stats().results.hits;
    assert_eq!(c.search_with(&req).unwrap(), first);
    assert_eq!(db.cache_stats().results.hits, hits_before + 1);
    c.upsert(doc(5, 7)).unwrap();
    let again = c.search_with(&req).unwrap();
    assert_eq!(
        again[0].payload.as_ref().unwrap()["v"],
        7,
        "payload follows the write"
    );
    c.delete(id(5)).unwrap();
    let gone = c.search_with(&req).unwrap();
    assert!(
        gone.iter().all(|h| h.id != id(5)),
        "deleted entity not served"
    );
    // A write to another collection does not end this collection's entries.
    let other = db
        .create_collection("other", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    let hits_before = db.cache_stats().results.hits;
    other.upsert(doc(1, 1)).unwrap();
    assert_eq!(c.search_with(&req).unwrap(), gone);
    assert_eq!(db.cache_stats().results.hits, hits_before + 1);
    // delete_by_filter and payload-index changes go through the same path.
    let removed = c
        .delete_by_filter(&Filter::new().must(hybridb::Condition::matches_value("tag", "odd")))
        .unwrap();
    assert!(removed > 0);
    assert!(c.search_with(&req).unwrap().is_empty());
    assert_eq!(c.get(id(7)).unwrap(), None);
}

#[test]
fn switched_off_levels_are_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, CacheSizes::OFF);
    let c = db
        .create_collection("c", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    c.upsert(doc(1, 1)).unwrap();
    for _ in 0..3 {
        assert_eq!(c.get(id(1)).unwrap().unwrap().payload["v"], 1);
        c.search(&[1.0, 1.0, 0.5], 1).unwrap();
    }
    let s = db.cache_stats();
    assert_eq!((s.records.hits, s.vectors.hits, s.results.hits), (0, 0, 0));
    assert_eq!((s.records.entries, s.results.entries), (0, 0));
    assert_eq!(s.records.capacity, 0);
}

#[test]
fn byte_bounds_hold() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = CacheSizes {
        records: 256 << 10,
        vectors: 128 << 10,
        results: 64 << 10,
    };
    let db = open(&dir, sizes);
    let dim = 64;
    let c = db
        .create_collection("c", CollectionConfig::new(dim, Metric::Cosine))
        .unwrap();
    let n = 3000u64;
    let big = "x".repeat(400);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let v: Vec<f32> = (0..dim)
                    .map(|d| ((i + d as u64) % 17) as f32 + 1.0)
                    .collect();
                Entity::new(id(i), json!({"i": i, "text": big}), v)
            })
            .collect();
        c.upsert_batch(batch).unwrap();
    }
    // Twice each: values are cached on their second read.
    for _ in 0..2 {
        for i in 0..n {
            assert_eq!(c.get(id(i)).unwrap().unwrap().payload["i"], i);
        }
        for i in 0..300u64 {
            let q: Vec<f32> = (0..dim)
                .map(|d| ((i * 7 + d as u64) % 13) as f32 + 1.0)
                .collect();
            c.search_with(&SearchRequest::new(q, 10).with_payload(true))
                .unwrap();
        }
    }
    let s = db.cache_stats();
    for (name, l) in [
        ("records", s.records),
        ("vectors", s.vectors),
        ("results", s.results),
    ] {
        assert!(l.entries > 0, "{name} holds entries: {l:?}");
        assert!(l.bytes <= l.capacity, "{name} within its bound: {l:?}");
    }
    // The bound bites: far fewer records than were read fit.
    assert!(s.records.entries < n / 2, "{:?}", s.records);
}

/// Writers rewrite all entities in atomic batches (payload `v` = batch number) and publish
/// the number once acknowledged; readers read through every cache level and check that what
/// they see is at least what was acknowledged before they started, and one batch throughout.
#[test]
fn no_stale_or_torn_reads_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, CacheSizes::default());
    let n = 8u64;
    for (name, index) in [("exact", IndexKind::Exact), ("hnsw", IndexKind::hnsw())] {
        let c = db
            .create_collection(name, CollectionConfig::new(3, Metric::L2).with_index(index))
            .unwrap();
        c.upsert_batch((0..n).map(|i| doc(i, 0)).collect()).unwrap();
        let acked = AtomicU64::new(0);
        let deleted_acked = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
        let rounds: u64 = std::env::var("HYBRIDB_CACHE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let victim = id(n + 1);
        std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=rounds {
                    c.upsert_batch((0..n).map(|i| doc(i, v)).collect()).unwrap();
                    acked.store(v, Ordering::SeqCst);
                    if v == rounds / 2 {
                        c.upsert(doc(n + 1, v)).unwrap();
                        c.delete(victim).unwrap();
                        deleted_acked.store(true, Ordering::SeqCst);
                    }
                }
                stop.store(true, Ordering::SeqCst);
            });
            for r in 0..3u64 {
                let (c, acked, stop, deleted_acked) = (&c, &acked, &stop, &deleted_acked);
                s.spawn(move || {
                    let ids: Vec<EntityId> = (0..n).map(id).collect();
                    let q = vec![3.0, 1.0, 0.5];
                    let mut checks = 0u64;
                    while !stop.load(Ordering::SeqCst) || checks < 50 {
                        let floor = acked.load(Ordering::SeqCst);
                        let gone = deleted_acked.load(Ordering::SeqCst);
                        let seen: Vec<u64> = match (checks + r) % 3 {
                            0 => c
                                .get_many(&ids)
                                .unwrap()
                                .into_iter()
                                .map(|e| e.expect("present").payload["v"].as_u64().unwrap())
                                .collect(),
                            1 => vec![
                                c.get(ids[(checks % n) as usize]).unwrap().unwrap().payload["v"]
                                    .as_u64()
                                    .unwrap(),
                            ],
                            _ => {
                                let req = SearchRequest::new(q.clone(), n as usize + 1)
                                    .with_payload(true);
                                let hits = c.search_with(&req).unwrap();
                                if gone {
                                    assert!(hits.iter().all(|h| h.id != victim));
                                }
                                hits.iter()
                                    .filter(|h| h.id != victim)
                                    .map(|h| h.payload.as_ref().unwrap()["v"].as_u64().unwrap())
                                    .collect()
                            }
                        };
                        assert!(
                            seen.iter().all(|&v| v >= floor),
                            "stale read: saw {seen:?} after batch {floor} was acknowledged"
                        );
                        assert!(
                            seen.windows(2).all(|w| w[0] == w[1]),
                            "torn read of one batch: {seen:?}"
                        );
                        if gone {
                            assert_eq!(c.get(victim).unwrap(), None);
                        }
                        checks += 1;
                    }
                });
            }
        });
        assert_eq!(c.get(id(0)).unwrap().unwrap().payload["v"], rounds);
    }
    let s = db.cache_stats();
    assert!(
        s.records.hits > 0 && s.results.hits > 0,
        "the caches were used: {s:?}"
    );
}

/// Keys read once are not copied into the caches (admission on the second read), so a workload
/// of unique reads fills nothing; reading them again does.
#[test]
fn values_read_once_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir, CacheSizes::default());
    let c = db
        .create_collection("c", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    c.upsert_batch((0..200).map(|n| doc(n, 1)).collect())
        .unwrap();
    for n in 0..200 {
        c.get(id(n)).unwrap().unwrap();
        c.search(&[n as f32, 1.0, 0.5], 3).unwrap();
    }
    let once = db.cache_stats();
    assert_eq!(
        (once.records.entries, once.results.entries),
        (0, 0),
        "{once:?}"
    );
    for n in 0..200 {
        c.get(id(n)).unwrap().unwrap();
        c.search(&[n as f32, 1.0, 0.5], 3).unwrap();
    }
    let twice = db.cache_stats();
    assert!(twice.records.entries >= 190, "{twice:?}");
    assert!(twice.results.entries >= 190, "{twice:?}");
}
