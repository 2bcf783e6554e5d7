//! Every bad input gets a typed error naming the item and the reason, and writes nothing.

use hybridb::{
    Collection, CollectionConfig, Database, Entity, EntityId, EntityProblem, Error, Metric,
    QueryProblem,
};
use serde_json::json;

use crate::{entity, fresh};

/// Everything observable about a database: last sequence number and all records.
fn snapshot(db: &Database, c: &Collection) -> (u64, Vec<hybridb::Record>) {
    (
        db.last_seq().unwrap(),
        c.scroll(None, 10_000).unwrap().records,
    )
}

/// A cosine collection holding three entities, plus its snapshot.
fn seeded() -> (tempfile::TempDir, Database, Collection) {
    let (d, db) = fresh();
    let c = db
        .create_collection("c", CollectionConfig::new(3, Metric::Cosine))
        .unwrap();
    c.upsert_batch(
        (0..3)
            .map(|n| entity(n, vec![1.0, n as f32, 0.5]))
            .collect(),
    )
    .unwrap();
    (d, db, c)
}

/// Asserts that a batch whose LAST item is `bad` fails with `problem` at that index, and that
/// nothing changed.
fn assert_batch_rejected(bad: Entity, problem: fn(&EntityProblem) -> bool) {
    let (_d, db, c) = seeded();
    let before = snapshot(&db, &c);
    let mut batch: Vec<Entity> = (10..14)
        .map(|n| entity(n, vec![0.1, 0.2, n as f32]))
        .collect();
    let bad_id = bad.id;
    batch.push(bad);
    match c.upsert_batch(batch) {
        Err(Error::InvalidEntity {
            index,
            id,
            problem: p,
        }) => {
            assert_eq!(index, 4, "names the failing item's position");
            assert_eq!(id, bad_id, "names the failing item's id");
            assert!(problem(&p), "unexpected problem {p:?}");
        }
        other => panic!("expected InvalidEntity, got {other:?}"),
    }
    assert_eq!(snapshot(&db, &c), before, "nothing written");
    assert_eq!(c.indexed_count(), 3);
}

#[test]
fn wrong_dimension() {
    assert_batch_rejected(entity(99, vec![1.0, 2.0]), |p| {
        *p == EntityProblem::WrongDimension {
            expected: 3,
            got: 2,
        }
    });
}

#[test]
fn nan_component() {
    assert_batch_rejected(entity(99, vec![1.0, f32::NAN, 0.0]), |p| {
        matches!(p, EntityProblem::NonFinite { position: 1, .. })
    });
}

#[test]
fn infinite_component() {
    assert_batch_rejected(entity(99, vec![1.0, 0.0, f32::NEG_INFINITY]), |p| {
        matches!(p, EntityProblem::NonFinite { position: 2, .. })
    });
}

#[test]
fn zero_vector_under_cosine() {
    assert_batch_rejected(entity(99, vec![0.0, 0.0, 0.0]), |p| {
        *p == EntityProblem::ZeroVector
    });
}

#[test]
fn payload_not_an_object() {
    let mut e = entity(99, vec![1.0, 0.0, 0.0]);
    e.payload = json!([1, 2]);
    assert_batch_rejected(e, |p| {
        *p == EntityProblem::PayloadNotObject { kind: "array" }
    });
}

#[test]
fn payload_over_the_limit() {
    let mut e = entity(99, vec![1.0, 0.0, 0.0]);
    e.payload = json!({"big": "x".repeat((1 << 20) + 1)});
    assert_batch_rejected(
        e,
        |p| matches!(p, EntityProblem::PayloadTooLarge { limit, .. } if *limit == 1 << 20),
    );
}

#[test]
fn payload_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .max_payload_bytes(16)
        .open(dir.path().join("t.redb"))
        .unwrap();
    let c = db
        .create_collection("c", CollectionConfig::new(1, Metric::L2))
        .unwrap();
    let ok = Entity::new(EntityId::from_key("a"), json!({"a": 1}), vec![1.0]);
    c.upsert(ok).unwrap();
    let big = Entity::new(
        EntityId::from_key("b"),
        json!({"a": "0123456789abcdef"}),
        vec![1.0],
    );
    assert!(matches!(
        c.upsert(big),
        Err(Error::InvalidEntity {
            problem: EntityProblem::PayloadTooLarge { limit: 16, .. },
            ..
        })
    ));
    assert_eq!(c.count().unwrap(), 1);
}

#[test]
fn duplicate_ids_in_one_batch() {
    assert_batch_rejected(entity(11, vec![1.0, 0.0, 0.0]), |p| {
        *p == EntityProblem::DuplicateId { first: 1 }
    });
}

#[test]
fn duplicate_ids_in_a_delete_batch() {
    let (_d, db, c) = seeded();
    let before = snapshot(&db, &c);
    let id = entity(0, vec![]).id;
    assert!(matches!(
        c.delete_batch(&[id, id]),
        Err(Error::InvalidEntity {
            index: 1,
            problem: EntityProblem::DuplicateId { first: 0 },
            ..
        })
    ));
    assert_eq!(snapshot(&db, &c), before);
}

#[test]
fn conflict_in_a_batch_of_one_writes_nothing() {
    let (_d, db, c) = seeded();
    let before = snapshot(&db, &c);
    assert!(matches!(
        c.upsert_if_version(entity(0, vec![1.0, 1.0, 1.0]), 7),
        Err(Error::Conflict {
            expected: 7,
            current: 1,
            ..
        })
    ));
    assert_eq!(snapshot(&db, &c), before);
}

#[test]
fn unknown_collection() {
    let (_d, db) = fresh();
    let err = db.collection("missing").unwrap_err();
    assert!(matches!(&err, Error::CollectionNotFound(n) if n == "missing"));
    assert!(err.is_user_error());
    assert!(matches!(
        db.drop_collection("missing"),
        Err(Error::CollectionNotFound(_))
    ));
}

#[test]
fn invalid_collection_names_and_configs() {
    let (_d, db) = fresh();
    let before = db.last_seq().unwrap();
    for name in ["", "a b", "../x", "-lead", &"n".repeat(65)] {
        assert!(
            matches!(
                db.create_collection(name, CollectionConfig::new(3, Metric::L2)),
                Err(Error::InvalidCollectionName { .. })
            ),
            "{name:?}"
        );
    }
    for dim in [0, 4097] {
        assert!(matches!(
            db.create_collection("ok", CollectionConfig::new(dim, Metric::L2)),
            Err(Error::InvalidConfig(_))
        ));
    }
    assert!(db.collections().is_empty());
    assert_eq!(db.last_seq().unwrap(), before, "nothing written");
}

#[test]
fn bad_queries() {
    let (_d, _db, c) = seeded();
    let q = [1.0, 0.0, 0.0];
    assert!(matches!(
        c.search(&q, 0),
        Err(Error::InvalidQuery(QueryProblem::ZeroK))
    ));
    assert!(matches!(
        c.search(&q, 10_001),
        Err(Error::InvalidQuery(QueryProblem::KTooLarge {
            k: 10_001,
            limit: 10_000
        }))
    ));
    assert!(matches!(
        c.search(&[1.0], 1),
        Err(Error::InvalidQuery(QueryProblem::Vector(
            EntityProblem::WrongDimension { .. }
        )))
    ));
    assert!(matches!(
        c.search(&[f32::NAN, 0.0, 0.0], 1),
        Err(Error::InvalidQuery(QueryProblem::Vector(
            EntityProblem::NonFinite { .. }
        )))
    ));
    assert!(matches!(
        c.search(&[0.0, 0.0, 0.0], 1),
        Err(Error::InvalidQuery(QueryProblem::Vector(
            EntityProblem::ZeroVector
        )))
    ));
    assert!(matches!(
        c.scroll(None, 0),
        Err(Error::InvalidQuery(QueryProblem::ZeroK))
    ));
    // k larger than the collection is fine: every entity comes back.
    assert_eq!(c.search(&q, 100).unwrap().len(), 3);
}
