//! Partial payload updates: what each form does, that vectors and the index are untouched, the
//! change events, payload indexes and caches, and that a bad update writes nothing.

use hybridb::{
    ChangeKind, CollectionConfig, Condition, EntityProblem, Error, Filter, Metric,
    PayloadIndexKind, PayloadUpdate, SearchRequest,
};
use serde_json::{Map, Value, json};

use hybridb::{Entity, EntityId};

use crate::fresh;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn setup() -> (tempfile::TempDir, hybridb::Database, hybridb::Collection) {
    let (dir, db) = fresh();
    let config =
        CollectionConfig::new(3, Metric::L2).with_payload_index("lang", PayloadIndexKind::Keyword);
    let c = db.create_collection("c", config).expect("create");
    for (i, lang) in ["en", "de", "en", "fr"].iter().enumerate() {
        let payload = json!({"lang": lang, "n": i, "meta": {"a": 1, "b": 2}});
        c.upsert(Entity::new(id(i), payload, vec![i as f32, 1.0, 0.0]))
            .expect("upsert");
    }
    (dir, db, c)
}

fn id(i: usize) -> EntityId {
    EntityId::from_key(&format!("e{i}"))
}

#[test]
fn each_form_changes_the_payload_and_nothing_else() {
    let (_dir, db, c) = setup();
    let before = c.get(id(0)).unwrap().unwrap();
    let seq = db.last_seq().unwrap();

    let w = c
        .update_payload(
            &[id(0)],
            PayloadUpdate::set(obj(json!({"n": 10, "new": true}))),
        )
        .unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].version, before.version + 1);
    let r = c.get(id(0)).unwrap().unwrap();
    assert_eq!(
        r.payload,
        obj(json!({"lang": "en", "n": 10, "new": true, "meta": {"a": 1, "b": 2}}))
    );
    assert_eq!(r.vector, before.vector, "vectors are untouched");

    c.update_payload(
        &[id(0)],
        PayloadUpdate::set_at("meta.deep", obj(json!({"x": 1}))),
    )
    .unwrap();
    c.update_payload(
        &[id(0)],
        PayloadUpdate::Delete(vec!["new".into(), "meta.a".into()]),
    )
    .unwrap();
    assert_eq!(
        c.get(id(0)).unwrap().unwrap().payload,
        obj(json!({"lang": "en", "n": 10, "meta": {"b": 2, "deep": {"x": 1}}}))
    );
    c.update_payload(&[id(0)], PayloadUpdate::Overwrite(obj(json!({"only": 1}))))
        .unwrap();
    assert_eq!(
        c.get(id(0)).unwrap().unwrap().payload,
        obj(json!({"only": 1}))
    );
    c.update_payload(&[id(0)], PayloadUpdate::Clear).unwrap();
    let r = c.get(id(0)).unwrap().unwrap();
    assert_eq!(r.payload, Map::new());
    assert_eq!(r.version, before.version + 5);

    // One change event per update, all "state modified" with a payload change.
    let events = db.changes_since(seq, 100).unwrap();
    assert_eq!(events.len(), 5);
    for e in &events {
        assert_eq!(e.kind, ChangeKind::StateModified);
        assert!(e.payload_changed);
        assert_eq!(e.id, Some(id(0)));
    }
    // Still searchable by its unchanged vector.
    let hits = c.search(&[0.0, 1.0, 0.0], 1).unwrap();
    assert_eq!(hits[0].id, id(0));
}

#[test]
fn a_bad_update_fails_whole_and_writes_nothing() {
    let (_dir, db, c) = setup();
    let seq = db.last_seq().unwrap();
    let payloads: Vec<_> = (0..4).map(|i| c.get(id(i)).unwrap().unwrap()).collect();
    let missing = EntityId::from_key("nope");

    let e = c
        .update_payload(
            &[id(0), missing, id(1)],
            PayloadUpdate::set(obj(json!({"x": 1}))),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidEntity { index: 1, id, problem: EntityProblem::NotFound } if id == missing),
        "{e:?}"
    );
    // An indexed keyword field given a number.
    let e = c
        .update_payload(&[id(0), id(2)], PayloadUpdate::set(obj(json!({"lang": 5}))))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidEntity {
                problem: EntityProblem::PayloadIndexType { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = c
        .update_payload(&[id(0)], PayloadUpdate::Delete(vec!["a..b".into()]))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidEntity {
                problem: EntityProblem::BadPayloadKey { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = c
        .update_payload(&[id(0), id(0)], PayloadUpdate::Clear)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidEntity {
                problem: EntityProblem::DuplicateId { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let big = "x".repeat(db.options().max_payload_bytes + 1);
    let e = c
        .update_payload(&[id(3)], PayloadUpdate::set(obj(json!({"big": big}))))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidEntity {
                problem: EntityProblem::PayloadTooLarge { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = c
        .update_payload_where(&Filter::new(), PayloadUpdate::set_at(".x", Map::new()))
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidUpdate(EntityProblem::BadPayloadKey { .. })),
        "{e:?}"
    );
    let e = c
        .update_payload_where(&Filter::new(), PayloadUpdate::set(obj(json!({"lang": 5}))))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidEntity {
                problem: EntityProblem::PayloadIndexType { .. },
                ..
            }
        ),
        "{e:?}"
    );

    assert_eq!(db.last_seq().unwrap(), seq, "no change event");
    for (i, before) in payloads.iter().enumerate() {
        let now = c.get(id(i)).unwrap().unwrap();
        assert_eq!(&now, before, "entity {i} unchanged");
    }
}

#[test]
fn updates_by_filter_reach_exactly_the_matches_and_move_the_payload_index() {
    let (_dir, _db, c) = setup();
    let en = Filter::new().must(Condition::matches_value("lang", "en"));
    let de = Filter::new().must(Condition::matches_value("lang", "de"));
    assert_eq!(c.count_where(&en).unwrap(), 2);
    let n = c
        .update_payload_where(
            &en,
            PayloadUpdate::set(obj(json!({"lang": "de", "moved": true}))),
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(c.count_where(&en).unwrap(), 0);
    assert_eq!(c.count_where(&de).unwrap(), 3);
    // A filtered search answered from the payload index sees the moved entities.
    let req = SearchRequest::new(vec![0.0, 1.0, 0.0], 10).filter(de.clone());
    let mut got: Vec<_> = c.search_with(&req).unwrap().iter().map(|h| h.id).collect();
    got.sort();
    let mut want = vec![id(0), id(1), id(2)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(c.get(id(3)).unwrap().unwrap().payload["lang"], "fr");
    assert!(
        c.get(id(3))
            .unwrap()
            .unwrap()
            .payload
            .get("moved")
            .is_none()
    );
    // An empty filter reaches every entity; a filter matching nothing changes nothing.
    assert_eq!(
        c.update_payload_where(&Filter::new(), PayloadUpdate::Delete(vec!["moved".into()]))
            .unwrap(),
        4
    );
    let none = Filter::new().must(Condition::matches_value("lang", "xx"));
    assert_eq!(
        c.update_payload_where(&none, PayloadUpdate::Clear).unwrap(),
        0
    );
}

#[test]
fn cached_reads_see_the_update() {
    let (_dir, _db, c) = setup();
    for _ in 0..3 {
        assert_eq!(c.get(id(1)).unwrap().unwrap().payload["n"], 1);
    }
    c.update_payload(&[id(1)], PayloadUpdate::set(obj(json!({"n": 42}))))
        .unwrap();
    assert_eq!(c.get(id(1)).unwrap().unwrap().payload["n"], 42);
    let hits = c
        .search_with(&SearchRequest::new(vec![1.0, 1.0, 0.0], 1).with_payload(true))
        .unwrap();
    assert_eq!(hits[0].payload.as_ref().unwrap()["n"], 42);
}

#[test]
fn concurrent_updates_of_different_keys_lose_nothing() {
    let (_dir, _db, c) = setup();
    let rounds = 50;
    std::thread::scope(|s| {
        for key in ["x", "y"] {
            let c = c.clone();
            s.spawn(move || {
                for v in 0..rounds {
                    c.update_payload(&[id(2)], PayloadUpdate::set(obj(json!({key: v}))))
                        .unwrap();
                }
            });
        }
    });
    let r = c.get(id(2)).unwrap().unwrap();
    assert_eq!(r.payload["x"], rounds - 1);
    assert_eq!(r.payload["y"], rounds - 1);
    assert_eq!(r.payload["lang"], "en");
}

#[test]
fn async_updates_match_the_sync_ones() {
    let (_dir, _db, c) = setup();
    let a = c.to_async();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        a.update_payload(&[id(3)], PayloadUpdate::set(obj(json!({"z": 1}))))
            .await
            .unwrap();
        let fr = Filter::new().must(Condition::matches_value("lang", "fr"));
        let n = a
            .update_payload_where(&fr, PayloadUpdate::Delete(vec!["z".into()]))
            .await
            .unwrap();
        assert_eq!(n, 1);
    });
    assert!(c.get(id(3)).unwrap().unwrap().payload.get("z").is_none());
}
