//! Named dense and sparse vectors: optional per entity, searched by name, kept in step with
//! writes and deletes, reloaded on reopen, added and removed online; malformed input fails
//! whole with a typed error.

use std::collections::BTreeMap;

use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, EntityProblem, Error, Filter,
    IndexKind, Metric, NamedVector, PayloadIndexKind, QueryProblem, SearchRequest, SparseVector,
    VectorConfig,
};
use serde_json::json;

fn id(n: u32) -> EntityId {
    EntityId::from_key(&format!("e{n}"))
}

/// A deterministic pseudo-random stream.
fn lcg(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
}

fn dense(n: u32, dim: usize, salt: u64) -> Vec<f32> {
    let mut seed = u64::from(n) * 31 + salt;
    (0..dim).map(|_| lcg(&mut seed)).collect()
}

fn sparse(n: u32) -> SparseVector {
    let mut seed = u64::from(n) * 7 + 3;
    SparseVector::from_pairs(
        (0..6).map(|_| (((lcg(&mut seed) + 0.5) * 50.0) as u32, lcg(&mut seed) + 0.6)),
    )
}

fn config() -> CollectionConfig {
    CollectionConfig::new(4, Metric::L2)
        .with_payload_index("group", PayloadIndexKind::Integer)
        .with_vector(
            "title",
            VectorConfig::dense_with_index(3, Metric::Cosine, IndexKind::hnsw()),
        )
        .with_vector(
            "exact",
            VectorConfig::dense_with_index(3, Metric::Dot, IndexKind::Exact),
        )
        .with_vector("terms", VectorConfig::sparse(false))
}

/// Entity `n`: every third lacks `title`, every fourth lacks `terms`.
fn entity(n: u32) -> Entity {
    let mut e = Entity::new(
        id(n),
        json!({"group": n % 5, "parity": n % 2}),
        dense(n, 4, 1),
    )
    .with_vector("exact", dense(n, 3, 3));
    if !n.is_multiple_of(3) {
        e = e.with_vector("title", dense(n, 3, 2));
    }
    if !n.is_multiple_of(4) {
        e = e.with_vector("terms", sparse(n));
    }
    e
}

fn norm(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Brute force over `model`: the ids of the `k` best entities for vector `name`, with their
/// scores (higher is better for cosine, dot and sparse).
fn brute(
    model: &BTreeMap<u32, Entity>,
    name: &str,
    query: &NamedVector,
    k: usize,
    pass: impl Fn(u32) -> bool,
) -> Vec<(EntityId, f32)> {
    let mut scored: Vec<(EntityId, f32)> = model
        .iter()
        .filter(|(n, _)| pass(**n))
        .filter_map(|(_, e)| {
            let score = match (e.vectors.get(name)?, query) {
                (NamedVector::Dense(v), NamedVector::Dense(q)) if name == "title" => {
                    norm(v).iter().zip(norm(q)).map(|(a, b)| a * b).sum()
                }
                (NamedVector::Dense(v), NamedVector::Dense(q)) => {
                    v.iter().zip(q).map(|(a, b)| a * b).sum()
                }
                (NamedVector::Sparse(v), NamedVector::Sparse(q)) => {
                    if !v.indices.iter().any(|i| q.indices.contains(i)) {
                        return None;
                    }
                    v.dot(q)
                }
                _ => return None,
            };
            Some((e.id, score))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

fn check_searches(coll: &hybridb::Collection, model: &BTreeMap<u32, Entity>) {
    for q in 0..12u32 {
        let k = 7;
        // Exact dense named vector: equal to brute force.
        let query = dense(q + 1000, 3, 9);
        let got = coll
            .search_with(&SearchRequest::new(query.clone(), k).using("exact"))
            .expect("exact search");
        let want = brute(
            model,
            "exact",
            &NamedVector::Dense(query.clone()),
            k,
            |_| true,
        );
        let ids = |v: &[(EntityId, f32)]| v.iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(
            got.iter().map(|h| h.id).collect::<Vec<_>>(),
            ids(&want),
            "exact named search, query {q}"
        );
        // HNSW named vector on a small set: all found, only entities that have it.
        let got = coll
            .search_with(&SearchRequest::new(query.clone(), k).using("title"))
            .expect("title search");
        let want = brute(
            model,
            "title",
            &NamedVector::Dense(query.clone()),
            k,
            |_| true,
        );
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), ids(&want));
        for (h, w) in got.iter().zip(&want) {
            assert!((h.score - w.1).abs() < 1e-4);
        }
        // Sparse: exact, scores equal; filtered keeps k.
        let sq = sparse(q + 500);
        let got = coll
            .search_with(&SearchRequest::new_sparse("terms", sq.clone(), k))
            .expect("sparse search");
        let want = brute(model, "terms", &NamedVector::Sparse(sq.clone()), k, |_| {
            true
        });
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), ids(&want));
        let in_group = Filter::new().must(Condition::matches_value("group", 2));
        let got = coll
            .search_with(&SearchRequest::new_sparse("terms", sq.clone(), k).filter(in_group))
            .expect("filtered sparse search");
        let want = brute(model, "terms", &NamedVector::Sparse(sq), k, |n| {
            model[&n].payload["group"] == 2
        });
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), ids(&want));
        // A filter the postings cannot answer (an unindexed field) is checked on payloads.
        let odd = Filter::new().must(Condition::matches_value("parity", 1));
        let got = coll
            .search_with(
                &SearchRequest::new(query.clone(), k)
                    .using("exact")
                    .filter(odd),
            )
            .expect("filtered named search");
        let want = brute(model, "exact", &NamedVector::Dense(query), k, |n| {
            model[&n].payload["parity"] == 1
        });
        assert_eq!(got.iter().map(|h| h.id).collect::<Vec<_>>(), ids(&want));
    }
}

#[test]
fn named_and_sparse_vectors_are_optional_searchable_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("named.redb");
    let mut model = BTreeMap::new();
    {
        let db = Database::open(&path).expect("open");
        let coll = db.create_collection("c", config()).expect("create");
        let batch: Vec<Entity> = (0..120).map(entity).collect();
        for e in &batch {
            model.insert(model.len() as u32, e.clone());
        }
        coll.upsert_batch(batch).expect("upsert");
        let got = coll.get(id(1)).expect("get").expect("present");
        assert_eq!(got.vectors, entity(1).vectors);
        assert!(
            !coll
                .get(id(3))
                .expect("get")
                .expect("e3")
                .vectors
                .contains_key("title")
        );
        check_searches(&coll, &model);

        // An upsert without a vector removes it; deleting frees slots that new entities reuse
        // without inheriting vectors.
        let mut e5 = entity(5);
        e5.vectors.remove("terms");
        coll.upsert(e5.clone()).expect("drop terms of 5");
        model.insert(5, e5);
        for n in [7u32, 8, 9] {
            coll.delete(id(n)).expect("delete");
            model.remove(&n);
        }
        for n in 200..203u32 {
            let e = Entity::new(id(n), json!({"group": 1, "parity": 1}), dense(n, 4, 1));
            coll.upsert(e.clone()).expect("bare entity");
            model.insert(n, e);
        }
        check_searches(&coll, &model);
        let report = db.verify().expect("verify");
        assert!(report.is_clean(), "{report:?}");
    }
    let db = Database::open(&path).expect("reopen");
    let coll = db.collection("c").expect("c");
    check_searches(&coll, &model);
    assert_eq!(
        coll.get(id(5))
            .expect("get")
            .expect("e5")
            .vectors
            .get("terms"),
        None
    );
    assert!(db.verify().expect("verify").is_clean());

    // Search like an entity's named vector, itself left out.
    let hits = coll
        .search_like_with(id(10), SearchRequest::new(Vec::new(), 3).using("exact"))
        .expect("search like");
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.id != id(10)));
    let lacking = coll.search_like_with(id(12), SearchRequest::new(Vec::new(), 3).using("terms"));
    assert!(matches!(
        lacking,
        Err(Error::InvalidQuery(QueryProblem::EntityLacksVector { .. }))
    ));
}

#[test]
fn malformed_named_vectors_fail_whole_with_typed_errors() {
    let (_dir, db) = crate::fresh();
    let coll = db.create_collection("c", config()).expect("create");
    coll.upsert(entity(1)).expect("good");
    type Expect = fn(&EntityProblem) -> bool;
    let cases: Vec<(Entity, Expect)> = vec![
        (
            entity(2).with_vector("nope", vec![1.0]),
            |p| matches!(p, EntityProblem::UnknownVector { name } if name == "nope"),
        ),
        (entity(2).with_vector("title", vec![1.0, 2.0]), |p| {
            matches!(p, EntityProblem::InVector { problem, .. }
                if matches!(**problem, EntityProblem::WrongDimension { expected: 3, got: 2 }))
        }),
        (entity(2).with_vector("title", vec![0.0, 0.0, 0.0]), |p| {
            matches!(p, EntityProblem::InVector { problem, .. }
                if **problem == EntityProblem::ZeroVector)
        }),
        (entity(2).with_vector("terms", vec![1.0]), |p| {
            matches!(
                p,
                EntityProblem::WrongVectorKind {
                    declared: "sparse",
                    ..
                }
            )
        }),
        (
            entity(2).with_vector("terms", SparseVector::new(vec![4, 2], vec![1.0, 1.0])),
            |p| {
                matches!(p, EntityProblem::InVector { problem, .. }
                if matches!(**problem, EntityProblem::SparseOrder { .. }))
            },
        ),
        (
            entity(2).with_vector("terms", SparseVector::new(vec![2, 2], vec![1.0, 1.0])),
            |p| {
                matches!(p, EntityProblem::InVector { problem, .. }
                if matches!(**problem, EntityProblem::SparseOrder { .. }))
            },
        ),
        (
            entity(2).with_vector("terms", SparseVector::new(vec![2], vec![1.0, 2.0])),
            |p| {
                matches!(p, EntityProblem::InVector { problem, .. }
                if matches!(**problem, EntityProblem::SparseShape { .. }))
            },
        ),
        (
            entity(2).with_vector("terms", SparseVector::new(vec![2], vec![f32::NAN])),
            |p| {
                matches!(p, EntityProblem::InVector { problem, .. }
                if matches!(**problem, EntityProblem::NonFinite { .. }))
            },
        ),
        (
            entity(2).with_vector("exact", SparseVector::new(vec![2], vec![1.0])),
            |p| {
                matches!(
                    p,
                    EntityProblem::WrongVectorKind {
                        declared: "dense",
                        ..
                    }
                )
            },
        ),
    ];
    for (i, (bad, expected)) in cases.into_iter().enumerate() {
        // The bad item second in a batch: the whole batch fails and nothing is written.
        let err = coll
            .upsert_batch(vec![entity(3), bad])
            .expect_err("a bad named vector");
        match &err {
            Error::InvalidEntity {
                index: 1, problem, ..
            } => {
                assert!(expected(problem), "case {i}: {problem:?}")
            }
            other => panic!("case {i}: {other:?}"),
        }
        assert_eq!(coll.count().expect("count"), 1, "case {i} wrote nothing");
    }
    // Query errors.
    let unknown = coll.search_with(&SearchRequest::new(vec![1.0; 3], 3).using("nope"));
    assert!(matches!(
        unknown,
        Err(Error::InvalidQuery(QueryProblem::UnknownVector(n))) if n == "nope"
    ));
    let kind = coll.search_with(&SearchRequest::new(vec![1.0; 3], 3).using("terms"));
    assert!(matches!(
        kind,
        Err(Error::InvalidQuery(QueryProblem::WrongVectorKind { .. }))
    ));
    let unsorted = coll.search_with(&SearchRequest::new_sparse(
        "terms",
        SparseVector::new(vec![3, 1], vec![1.0, 1.0]),
        3,
    ));
    assert!(matches!(
        unsorted,
        Err(Error::InvalidQuery(QueryProblem::Vector(
            EntityProblem::SparseOrder { .. }
        )))
    ));
    let dim = coll.search_with(&SearchRequest::new(vec![1.0; 4], 3).using("title"));
    assert!(matches!(
        dim,
        Err(Error::InvalidQuery(QueryProblem::Vector(
            EntityProblem::WrongDimension { .. }
        )))
    ));
    // Bad declarations.
    for bad in [
        CollectionConfig::named_only(),
        CollectionConfig::new(2, Metric::L2).with_vector("", VectorConfig::sparse(false)),
        CollectionConfig::new(2, Metric::L2).with_vector("d", VectorConfig::dense(0, Metric::L2)),
    ] {
        assert!(matches!(
            db.create_collection("bad", bad),
            Err(Error::InvalidConfig(_))
        ));
    }
}

#[test]
fn named_vectors_are_added_and_removed_online() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("online.redb");
    {
        let db = Database::open(&path).expect("open");
        let coll = db
            .create_collection("c", CollectionConfig::new(2, Metric::L2))
            .expect("create");
        coll.upsert(Entity::new(id(1), json!({}), vec![0.0, 1.0]))
            .expect("plain");
        assert!(
            coll.add_vector("img", VectorConfig::dense(3, Metric::L2))
                .expect("add")
        );
        assert!(
            !coll
                .add_vector("img", VectorConfig::dense(3, Metric::L2))
                .expect("again")
        );
        assert!(matches!(
            coll.add_vector("img", VectorConfig::dense(4, Metric::L2)),
            Err(Error::InvalidConfig(_))
        ));
        assert_eq!(coll.config().vectors.len(), 1);
        // Nobody has it yet.
        let none = coll
            .search_with(&SearchRequest::new(vec![1.0, 0.0, 0.0], 5).using("img"))
            .expect("search empty vector");
        assert!(none.is_empty());
        coll.upsert(
            Entity::new(id(2), json!({}), vec![1.0, 1.0]).with_vector("img", vec![1.0, 0.0, 0.0]),
        )
        .expect("with img");
        let hits = coll
            .search_with(&SearchRequest::new(vec![1.0, 0.0, 0.0], 5).using("img"))
            .expect("search img");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, id(2));
        assert!(coll.remove_vector("img").expect("remove"));
        assert!(!coll.remove_vector("img").expect("remove again"));
        assert!(
            coll.get(id(2))
                .expect("get")
                .expect("e2")
                .vectors
                .is_empty()
        );
        assert!(matches!(
            coll.search_with(&SearchRequest::new(vec![1.0, 0.0, 0.0], 5).using("img")),
            Err(Error::InvalidQuery(QueryProblem::UnknownVector(_)))
        ));
        // A new vector of the same name starts empty (its tables are new).
        coll.add_vector("img", VectorConfig::dense(3, Metric::L2))
            .expect("add again");
        assert!(
            coll.get(id(2))
                .expect("get")
                .expect("e2")
                .vectors
                .is_empty()
        );
        assert!(db.verify().expect("verify").is_clean());
    }
    let db = Database::open(&path).expect("reopen");
    let coll = db.collection("c").expect("c");
    assert_eq!(coll.config().vectors.len(), 1);
    assert_eq!(coll.count().expect("count"), 2);
    assert!(db.verify().expect("verify").is_clean());
}

#[test]
fn a_collection_without_a_default_vector_holds_named_ones_only() {
    let (_dir, db) = crate::fresh();
    let config = CollectionConfig::named_only()
        .with_vector("dense", VectorConfig::dense(2, Metric::Cosine))
        .with_vector("sparse", VectorConfig::sparse(true));
    let coll = db.create_collection("n", config).expect("create");
    coll.upsert(
        Entity::new(id(1), json!({}), Vec::new())
            .with_vector("dense", vec![1.0, 0.0])
            .with_vector("sparse", SparseVector::new(vec![1], vec![1.0])),
    )
    .expect("named only");
    coll.upsert(
        Entity::new(id(2), json!({}), Vec::new())
            .with_vector("sparse", SparseVector::new(vec![2], vec![1.0])),
    )
    .expect("sparse only");
    let err = coll
        .upsert(Entity::new(id(3), json!({}), vec![1.0, 0.0]))
        .expect_err("no default vector");
    assert!(matches!(
        err,
        Error::InvalidEntity {
            problem: EntityProblem::UnknownVector { .. },
            ..
        }
    ));
    assert!(matches!(
        coll.search(&[1.0, 0.0], 2),
        Err(Error::InvalidQuery(QueryProblem::UnknownVector(n))) if n.is_empty()
    ));
    let hits = coll
        .search_with(&SearchRequest::new(vec![1.0, 0.1], 2).using("dense"))
        .expect("dense");
    assert_eq!(hits.len(), 1);
    // IDF: dimension 2 is in one of two documents, as is dimension 1; both score alike.
    let hits = coll
        .search_with(&SearchRequest::new_sparse(
            "sparse",
            SparseVector::new(vec![1, 2], vec![1.0, 1.0]),
            2,
        ))
        .expect("sparse");
    assert_eq!(hits.len(), 2);
    let idf = ((2.0f64 - 1.0 + 0.5) / (1.0 + 0.5) + 1.0).ln() as f32;
    assert!((hits[0].score - idf).abs() < 1e-6, "{hits:?}");
    assert_eq!(coll.count().expect("count"), 2);
    assert!(db.verify().expect("verify").is_clean());
    // A collection keeps at least one vector.
    assert!(coll.remove_vector("dense").expect("one of two"));
    assert!(matches!(
        coll.remove_vector("sparse"),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(coll.config().vectors.len(), 1);
    assert!(db.verify().expect("verify").is_clean());
}

/// Every record of collection `c`, by id (ids, payloads, vectors, versions).
fn records(db: &Database) -> Vec<hybridb::Record> {
    let c = db.collection("c").expect("c");
    c.scroll(None, 10_000).expect("scroll").records
}

#[test]
fn backups_and_increments_carry_named_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name);
    let db = Database::open(p("src.redb")).expect("open");
    let coll = db.create_collection("c", config()).expect("create");
    coll.upsert_batch((0..40).map(entity).collect())
        .expect("upsert");
    let full = db.backup(p("full.redb"), |_| {}).expect("backup");
    // The window: updates that add, change and drop named vectors, deletes, new entities, and
    // a named vector added and another removed.
    let mut e4 = entity(4).with_vector("terms", sparse(99));
    e4.vectors.remove("exact");
    coll.upsert(e4).expect("update 4");
    let mut e5 = entity(5);
    e5.vectors.remove("terms");
    coll.upsert(e5).expect("update 5");
    coll.delete_batch(&[id(6), id(7)]).expect("delete");
    coll.upsert_batch((100..110).map(entity).collect())
        .expect("new");
    coll.remove_vector("title").expect("remove title");
    coll.add_vector("extra", VectorConfig::sparse(true))
        .expect("add extra");
    let mut e8 = entity(8).with_vector("extra", SparseVector::new(vec![1, 2], vec![0.5, 0.5]));
    e8.vectors.remove("title");
    coll.upsert(e8).expect("extra");
    let inc = db
        .backup_incremental(p("inc.redb"), full.seq, |_| {})
        .expect("increment");
    let want = records(&db);
    drop(coll);
    drop(db);

    let restored = Database::restore(p("full.redb"), p("target.redb"), false).expect("restore");
    assert!(restored.is_clean(), "{restored:?}");
    let report = Database::apply_incremental(p("inc.redb"), p("target.redb")).expect("apply");
    assert!(report.is_clean(), "{report:?}");
    let target = Database::open(p("target.redb")).expect("open target");
    assert_eq!(records(&target), want);
    let c = target.collection("c").expect("c");
    assert_eq!(
        c.config().vectors.keys().collect::<Vec<_>>(),
        ["exact", "extra", "terms"]
    );
    let hits = c
        .search_with(&SearchRequest::new_sparse(
            "extra",
            SparseVector::new(vec![2], vec![1.0]),
            5,
        ))
        .expect("search extra");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, id(8));
    assert!(inc.seq > full.seq);
}
