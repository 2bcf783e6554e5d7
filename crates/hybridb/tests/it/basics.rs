//! Entity operations, versions, change events, collections and reopening.

use hybridb::{
    ChangeKind, CollectionConfig, Database, Durability, EntityId, Error, Metric, SearchRequest,
};
use serde_json::json;

use crate::{entity, fresh, l2_collection};

#[test]
fn upsert_get_versions_and_events() {
    let (_d, db) = fresh();
    let c = l2_collection(&db);
    let start = db.last_seq().unwrap();
    let w = c.upsert(entity(1, vec![1.0, 2.0, 3.0])).unwrap();
    assert_eq!(w.version, 1);
    assert_eq!(w.seq, Some(start + 1));
    let r = c.get(w.id).unwrap().unwrap();
    assert_eq!(r.vector, vec![1.0, 2.0, 3.0]);
    assert_eq!(r.payload["n"], 1);
    assert_eq!(r.version, 1);
    assert!(r.updated_at > 1_600_000_000_000);

    // Same vector, new payload: StateModified. New vector: VectorUpdated.
    let mut e = entity(1, vec![1.0, 2.0, 3.0]);
    e.payload = json!({"n": 1, "extra": true});
    assert_eq!(c.upsert(e.clone()).unwrap().version, 2);
    e.vector = vec![0.0, 0.0, 1.0];
    assert_eq!(c.upsert(e).unwrap().version, 3);
    assert!(c.delete(w.id).unwrap());
    assert!(!c.delete(w.id).unwrap(), "second delete finds nothing");
    assert_eq!(c.get(w.id).unwrap(), None);

    let events = db.changes_since(start, 100).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::EntityCreated,
            ChangeKind::StateModified,
            ChangeKind::VectorUpdated,
            ChangeKind::Deleted
        ]
    );
    assert!(events[1].payload_changed);
    assert!(!events[2].payload_changed);
    assert_eq!(events[3].version, 3);
    let seqs: Vec<_> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (start + 1..=start + 4).collect::<Vec<_>>(),
        "gap-free"
    );
    assert!(
        events
            .iter()
            .all(|e| e.collection == "c" && e.id == Some(w.id))
    );
}

#[test]
fn batch_writes_one_event_per_entity_and_delete_batch_counts() {
    let (_d, db) = fresh();
    let c = l2_collection(&db);
    let before = db.last_seq().unwrap();
    let ws = c
        .upsert_batch(
            (0..10)
                .map(|n| entity(n, vec![n as f32, 0.0, 0.0]))
                .collect(),
        )
        .unwrap();
    assert_eq!(ws.len(), 10);
    assert_eq!(db.last_seq().unwrap(), before + 10);
    assert_eq!(c.count().unwrap(), 10);
    let ids: Vec<_> = ws.iter().map(|w| w.id).collect();
    assert_eq!(
        c.delete_batch(&[ids[0], ids[1], hybridb::EntityId::from_key("nope")])
            .unwrap(),
        2
    );
    assert_eq!(c.count().unwrap(), 8);
    assert_eq!(c.indexed_count(), 8);
    let got = c.get_many(&[ids[0], ids[2]]).unwrap();
    assert!(got[0].is_none() && got[1].is_some());
}

#[test]
fn upsert_if_version_conflicts_name_the_current_version() {
    let (_d, db) = fresh();
    let c = l2_collection(&db);
    let e = entity(7, vec![1.0, 1.0, 1.0]);
    assert_eq!(c.upsert_if_version(e.clone(), 0).unwrap().version, 1);
    match c.upsert_if_version(e.clone(), 0) {
        Err(Error::Conflict {
            expected: 0,
            current: 1,
            id,
        }) => assert_eq!(id, e.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(c.upsert_if_version(e.clone(), 1).unwrap().version, 2);
    let err = c.upsert_if_version(e.clone(), 5).unwrap_err();
    assert!(matches!(err, Error::Conflict { current: 2, .. }));
    assert!(err.is_user_error());
    assert_eq!(c.get(e.id).unwrap().unwrap().version, 2);
}

#[test]
fn search_all_metrics_best_first_with_payload_and_vector() {
    let (_d, db) = fresh();
    for (name, metric) in [
        ("l2", Metric::L2),
        ("dot", Metric::Dot),
        ("cos", Metric::Cosine),
        ("l1", Metric::Manhattan),
    ] {
        let c = db
            .create_collection(name, CollectionConfig::new(2, metric))
            .unwrap();
        c.upsert_batch(vec![
            entity(1, vec![1.0, 0.0]),
            entity(2, vec![0.0, 1.0]),
            entity(3, vec![2.0, 0.1]),
        ])
        .unwrap();
        let hits = c
            .search_with(
                &SearchRequest::new(vec![1.0, 0.0], 3)
                    .with_payload(true)
                    .with_vector(true),
            )
            .unwrap();
        assert_eq!(hits.len(), 3);
        let first = hits[0].payload.as_ref().unwrap()["n"].as_u64().unwrap();
        match metric {
            Metric::L2 => {
                assert_eq!(first, 1);
                assert_eq!(hits[0].score, 0.0);
                assert!(hits.windows(2).all(|w| w[0].score <= w[1].score));
            }
            Metric::Manhattan => {
                // |1-1|+|0-0| = 0, then |1-2|+|0-0.1| = 1.1, then |1-0|+|0-1| = 2.
                assert_eq!(first, 1);
                assert_eq!(hits[0].score, 0.0);
                assert!((hits[1].score - 1.1).abs() < 1e-6, "{hits:?}");
                assert!((hits[2].score - 2.0).abs() < 1e-6, "{hits:?}");
                let near = c
                    .search_with(&SearchRequest::new(vec![1.0, 0.0], 3).score_threshold(1.5))
                    .unwrap();
                assert_eq!(near.len(), 2, "a Manhattan threshold is an upper bound");
            }
            Metric::Dot => {
                assert_eq!(first, 3);
                assert!((hits[0].score - 2.0).abs() < 1e-6);
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            }
            _ => {
                assert_eq!(first, 1);
                assert!((hits[0].score - 1.0).abs() < 1e-6);
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            }
        }
        assert!(hits[0].vector.is_some());
    }
}

#[test]
fn scroll_pages_through_everything_in_id_order() {
    let (_d, db) = fresh();
    let c = l2_collection(&db);
    c.upsert_batch(
        (0..25)
            .map(|n| entity(n, vec![0.0, 0.0, n as f32]))
            .collect(),
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = c.scroll(after, 10).unwrap();
        assert!(page.records.len() <= 10);
        seen.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn collections_create_list_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    {
        let db = Database::open(&path).unwrap();
        let a = db
            .create_collection("a", CollectionConfig::new(2, Metric::Dot))
            .unwrap();
        db.create_collection("b", CollectionConfig::new(4, Metric::L2))
            .unwrap();
        assert!(matches!(
            db.create_collection("a", CollectionConfig::new(2, Metric::Dot)),
            Err(Error::CollectionExists(_))
        ));
        a.upsert(entity(1, vec![1.0, 2.0])).unwrap();
        let names: Vec<_> = db.collections().into_iter().map(|c| c.name).collect();
        assert_eq!(names, vec!["a", "b"]);
        db.drop_collection("b").unwrap();
        assert!(matches!(
            db.collection("b"),
            Err(Error::CollectionNotFound(_))
        ));
        assert!(matches!(
            db.drop_collection("b"),
            Err(Error::CollectionNotFound(_))
        ));
    }
    let db = Database::open(&path).unwrap();
    let names: Vec<_> = db.collections().into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["a"]);
    let a = db.collection("a").unwrap();
    assert_eq!(a.config().dim, 2);
    assert_eq!(a.count().unwrap(), 1);
    assert_eq!(
        a.search(&[1.0, 2.0], 1).unwrap()[0].id,
        entity(1, vec![]).id
    );
    // Recreating a dropped name starts empty.
    let b = db
        .create_collection("b", CollectionConfig::new(4, Metric::L2))
        .unwrap();
    assert_eq!(b.count().unwrap(), 0);
    let kinds: Vec<_> = db
        .changes_since(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ChangeKind::CollectionCreated)
            .count(),
        3
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ChangeKind::CollectionDropped)
            .count(),
        1
    );
}

#[test]
fn handles_of_a_dropped_collection_fail_cleanly() {
    let (_d, db) = fresh();
    let c = l2_collection(&db);
    c.upsert(entity(1, vec![1.0, 0.0, 0.0])).unwrap();
    db.drop_collection("c").unwrap();
    assert!(matches!(
        c.get(entity(1, vec![]).id),
        Err(Error::CollectionNotFound(_))
    ));
    assert!(matches!(
        c.search(&[1.0, 0.0, 0.0], 1),
        Err(Error::CollectionNotFound(_))
    ));
    assert!(matches!(
        c.upsert(entity(2, vec![1.0, 0.0, 0.0])),
        Err(Error::CollectionNotFound(_))
    ));
    assert!(matches!(c.count(), Err(Error::CollectionNotFound(_))));
}

#[test]
fn durability_none_is_made_durable_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    {
        let db = Database::builder()
            .durability(Durability::None)
            .open(&path)
            .unwrap();
        let c = l2_collection(&db);
        c.upsert_batch(
            (0..50)
                .map(|n| entity(n, vec![n as f32, 1.0, 1.0]))
                .collect(),
        )
        .unwrap();
        db.close().unwrap();
    }
    let db = Database::open(&path).unwrap();
    assert_eq!(db.collection("c").unwrap().count().unwrap(), 50);
}

#[test]
fn slots_are_reused_after_deletes_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let ids: Vec<_>;
    {
        let db = Database::open(&path).unwrap();
        let c = l2_collection(&db);
        ids = c
            .upsert_batch(
                (0..20)
                    .map(|n| entity(n, vec![n as f32, 0.0, 0.0]))
                    .collect(),
            )
            .unwrap()
            .iter()
            .map(|w| w.id)
            .collect();
        c.delete_batch(&ids[..10]).unwrap();
        c.upsert_batch(
            (100..105)
                .map(|n| entity(n, vec![n as f32, 0.0, 0.0]))
                .collect(),
        )
        .unwrap();
        assert!(
            c.index_memory_bytes() >= 20 * 3 * 4,
            "no growth past 20 slots expected"
        );
    }
    let db = Database::open(&path).unwrap();
    let c = db.collection("c").unwrap();
    assert_eq!(c.count().unwrap(), 15);
    assert_eq!(c.indexed_count(), 15);
    let hits = c.search(&[104.0, 0.0, 0.0], 1).unwrap();
    assert_eq!(hits[0].id, entity(104, vec![]).id);
    assert!(
        c.search(&[0.0, 0.0, 0.0], 15)
            .unwrap()
            .iter()
            .all(|h| !ids[..10].contains(&h.id))
    );
}

#[test]
fn handles_are_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Database>();
    check::<hybridb::Collection>();
    check::<hybridb::AsyncCollection>();
    fn error_is_std<E: std::error::Error + Send + Sync + 'static>() {}
    error_is_std::<Error>();
}

#[test]
fn search_like_uses_the_stored_vector_and_leaves_the_entity_out() {
    let (_d, db) = fresh();
    let c = l2_collection(&db);
    c.upsert_batch(
        (0..20)
            .map(|n| entity(n, vec![n as f32, 0.0, 0.0]))
            .collect(),
    )
    .unwrap();
    let me = EntityId::from_key("5");
    let hits = c.search_like(me, 4).unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits.iter().all(|h| h.id != me));
    let mut near: Vec<_> = hits.iter().take(2).map(|h| h.id).collect();
    near.sort();
    let mut want = vec![EntityId::from_key("4"), EntityId::from_key("6")];
    want.sort();
    assert_eq!(near, want);
    // With a filter, k others that pass it come back.
    let odd = hybridb::Filter::new().must(hybridb::Condition::matches_any("tag", ["t1", "t2"]));
    let hits = c
        .search_like_with(me, SearchRequest::new(Vec::new(), 5).filter(odd.clone()))
        .unwrap();
    assert_eq!(hits.len(), 5);
    for h in &hits {
        assert_ne!(h.id, me);
        let tag = c.get(h.id).unwrap().unwrap().payload["tag"].clone();
        assert!(tag == "t1" || tag == "t2", "{tag}");
    }
    let missing = c.search_like(EntityId::from_key("nope"), 3).unwrap_err();
    assert!(
        matches!(
            missing,
            Error::InvalidQuery(hybridb::QueryProblem::UnknownEntity(_))
        ),
        "{missing:?}"
    );
}

#[test]
fn collection_metadata_is_kept_merged_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let obj = |v: serde_json::Value| v.as_object().cloned().unwrap();
    {
        let db = hybridb::Database::open(&path).unwrap();
        let c = db
            .create_collection(
                "docs",
                hybridb::CollectionConfig::new(2, hybridb::Metric::Cosine)
                    .with_metadata(obj(json!({"owner": "search", "v": 1}))),
            )
            .unwrap();
        assert_eq!(c.config().metadata, obj(json!({"owner": "search", "v": 1})));
        let after = c
            .update_metadata(obj(json!({"v": 2, "owner": null, "model": "minilm"})))
            .unwrap();
        assert_eq!(after, obj(json!({"v": 2, "model": "minilm"})));
        assert_eq!(c.config().metadata, after);
        // Too large: refused, nothing changed.
        let big = obj(json!({"blob": "x".repeat(hybridb::MAX_METADATA_BYTES)}));
        assert!(matches!(
            c.update_metadata(big.clone()),
            Err(hybridb::Error::InvalidConfig(_))
        ));
        assert_eq!(c.config().metadata, after);
        assert!(matches!(
            db.create_collection(
                "big",
                hybridb::CollectionConfig::new(2, hybridb::Metric::Cosine).with_metadata(big)
            ),
            Err(hybridb::Error::InvalidConfig(_))
        ));
    }
    let db = hybridb::Database::open(&path).unwrap();
    let c = db.collection("docs").unwrap();
    assert_eq!(c.config().metadata, obj(json!({"v": 2, "model": "minilm"})));
}
