//! The query API: prefetches, fusion (RRF, DBSF), rescoring, MMR, filters at every stage,
//! offsets and thresholds, explain, batches, and typed errors for malformed queries.

use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, Error, Filter, Fusion, Hit, IndexKind,
    Metric, PayloadIndexKind, Query, QueryProblem, SearchRequest, SparseVector, Stage,
    VectorConfig, fusion,
};
use serde_json::json;

const N: u32 = 300;

fn id(n: u32) -> EntityId {
    EntityId::from_key(&format!("q{n}"))
}

fn dense(n: u32, salt: u32) -> Vec<f32> {
    let mut s = u64::from(n) * 2_654_435_761 + u64::from(salt) * 97 + 1;
    (0..8)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 1000) as f32 / 500.0 - 1.0
        })
        .collect()
}

fn terms(n: u32) -> SparseVector {
    SparseVector::from_pairs((0..5).map(|i| ((n * 7 + i * 13) % 40, 1.0 + (i % 3) as f32)))
}

fn setup() -> (tempfile::TempDir, Database, hybridb::Collection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("q.redb")).expect("open");
    let config = CollectionConfig::new(8, Metric::Cosine)
        .with_index(IndexKind::Exact)
        .with_payload_index("g", PayloadIndexKind::Integer)
        .with_vector(
            "title",
            VectorConfig::dense_with_index(8, Metric::L2, IndexKind::Exact),
        )
        .with_vector("terms", VectorConfig::sparse(false));
    let c = db.create_collection("c", config).expect("create");
    c.upsert_batch(
        (0..N)
            .map(|n| {
                Entity::new(id(n), json!({"g": n % 4}), dense(n, 0))
                    .with_vector("title", dense(n, 1))
                    .with_vector("terms", terms(n))
            })
            .collect(),
    )
    .expect("upsert");
    (dir, db, c)
}

fn pairs(hits: &[Hit]) -> Vec<(EntityId, f32)> {
    hits.iter().map(|h| (h.id, h.score)).collect()
}

fn close(a: &[(EntityId, f32)], b: &[(EntityId, f32)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-5)
}

#[test]
fn hybrid_fusion_equals_the_reference_over_the_stages_run_alone() {
    let (_dir, _db, c) = setup();
    let g1 = Filter::new().must(Condition::matches_value("g", 1));
    for q in 0..10 {
        let dq = dense(q + 1000, 0);
        let sq = terms(q + 1000);
        let dense_alone = c
            .search_with(&SearchRequest::new(dq.clone(), 20).filter(g1.clone()))
            .expect("dense");
        let sparse_alone = c
            .search_with(&SearchRequest::new_sparse("terms", sq.clone(), 20).filter(g1.clone()))
            .expect("sparse");
        let (d, s) = (pairs(&dense_alone), pairs(&sparse_alone));
        // The outer filter reaches both prefetches.
        let prefetch = vec![
            Query::nearest(dq.clone(), 20),
            Query::sparse("terms", sq.clone(), 20),
        ];
        let rrf = c
            .query(&Query::rrf(prefetch.clone()).filter(g1.clone()).limit(10))
            .expect("rrf");
        let want = fusion::rrf(&[&d, &s], None, 60.0, 10);
        assert!(close(&pairs(&rrf), &want), "rrf {q}");
        let weighted = Fusion::Rrf {
            k: 10.0,
            weights: Some(vec![2.0, 0.5]),
        };
        let got = c
            .query(
                &Query::fuse(prefetch.clone(), weighted)
                    .filter(g1.clone())
                    .limit(10),
            )
            .expect("weighted rrf");
        let want = fusion::rrf(&[&d, &s], Some(&[2.0, 0.5]), 10.0, 10);
        assert!(close(&pairs(&got), &want), "weighted rrf {q}");
        let got = c
            .query(
                &Query::fuse(prefetch, Fusion::Dbsf)
                    .filter(g1.clone())
                    .limit(10),
            )
            .expect("dbsf");
        let want = fusion::dbsf(&[&d, &s], 10);
        assert!(close(&pairs(&got), &want), "dbsf {q}");
        for h in &rrf {
            let r = c.get(h.id).expect("get").expect("present");
            assert_eq!(r.payload["g"], 1, "the filter holds at every stage");
        }
    }
}

#[test]
fn rescoring_mmr_like_offsets_and_thresholds() {
    let (_dir, _db, c) = setup();
    // Rescore: the default vector's 50 nearest, re-ranked by `title` (L2), equal brute force
    // over exactly those candidates.
    let q = dense(7, 9);
    let pre = c
        .search_with(&SearchRequest::new(dense(5, 0), 50))
        .expect("prefetch alone");
    let query = Query::new(Stage::Nearest {
        using: "title".into(),
        vector: q.clone(),
    })
    .prefetch(vec![Query::nearest(dense(5, 0), 50)])
    .limit(5);
    let got = c.query(&query).expect("rescore");
    let mut want: Vec<(EntityId, f32)> = pre
        .iter()
        .map(|h| {
            let n = (0..N).find(|&n| id(n) == h.id).expect("known id");
            let d: f32 = dense(n, 1)
                .iter()
                .zip(&q)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            (h.id, d)
        })
        .collect();
    want.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    want.truncate(5);
    assert!(close(&pairs(&got), &want), "{:?} vs {want:?}", pairs(&got));

    // MMR with diversity 0 is the plain nearest order; with diversity the picks differ.
    let mmr = |diversity| {
        Query::new(Stage::Mmr {
            using: String::new(),
            vector: dense(11, 0),
            diversity,
            candidates: 40,
        })
        .limit(10)
    };
    let plain = c.search(&dense(11, 0), 10).expect("plain");
    let got = c.query(&mmr(0.0)).expect("mmr 0");
    assert!(close(&pairs(&got), &pairs(&plain)));
    let diverse = c.query(&mmr(0.9)).expect("mmr 0.9");
    assert_eq!(diverse.len(), 10);
    assert_eq!(
        diverse[0].id, plain[0].id,
        "the most relevant is picked first"
    );
    assert_ne!(pairs(&diverse), pairs(&plain));

    // Like: an entity's stored sparse vector, itself left out.
    let like = Query::new(Stage::Like {
        using: "terms".into(),
        id: id(3),
    })
    .limit(5);
    let got = c.query(&like).expect("like");
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|h| h.id != id(3)));

    // Offset and threshold.
    let all = c.query(&Query::nearest(dense(2, 0), 20)).expect("20");
    let page = c
        .query(&Query::nearest(dense(2, 0), 5).offset(5).with_payload(true))
        .expect("page 2");
    assert_eq!(pairs(&page), pairs(&all[5..10]));
    assert!(page.iter().all(|h| h.payload.is_some()));
    let t = all[3].score;
    let above = c
        .query(&Query::nearest(dense(2, 0), 20).score_threshold(t))
        .expect("threshold");
    assert!(above.len() >= 4 && above.iter().all(|h| h.score >= t));

    // Explain: one report per stage, prefetches first; batches answer in order.
    let hybrid = Query::rrf(vec![
        Query::nearest(dense(1, 0), 10),
        Query::sparse("terms", terms(1), 10),
    ]);
    let explain = c.query_explain(&hybrid).expect("explain");
    let names: Vec<_> = explain.stages.iter().map(|s| (s.depth, s.stage)).collect();
    assert_eq!(names, [(1, "nearest"), (1, "sparse"), (0, "fusion")]);
    assert_eq!(explain.hits, c.query(&hybrid).expect("same"));
    let batch = c
        .query_batch(&[hybrid.clone(), Query::nearest(dense(1, 0), 3)])
        .expect("batch");
    assert_eq!(batch[0], explain.hits);
    assert_eq!(batch[1].len(), 3);
}

#[test]
fn malformed_queries_get_typed_errors() {
    let (_dir, _db, c) = setup();
    let bad = |q: &Query| match c.query(q) {
        Err(Error::InvalidQuery(p)) => p,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        bad(&Query::new(Stage::Fusion(Fusion::rrf()))),
        QueryProblem::BadQuery(_)
    ));
    let two = vec![
        Query::nearest(dense(1, 0), 5),
        Query::nearest(dense(2, 0), 5),
    ];
    let one_weight = Fusion::Rrf {
        k: 60.0,
        weights: Some(vec![1.0]),
    };
    assert!(matches!(
        bad(&Query::fuse(two.clone(), one_weight)),
        QueryProblem::BadQuery(_)
    ));
    let mut deep = Query::nearest(dense(1, 0), 5);
    for _ in 0..hybridb::MAX_QUERY_DEPTH {
        deep = Query::rrf(vec![deep]);
    }
    assert!(matches!(bad(&deep), QueryProblem::BadQuery(_)));
    assert!(matches!(
        bad(&Query::nearest(dense(1, 0), 5).using("nope")),
        QueryProblem::UnknownVector(_)
    ));
    assert!(matches!(
        bad(&Query::nearest(dense(1, 0), 0)),
        QueryProblem::ZeroK
    ));
    let mmr = Query::new(Stage::Mmr {
        using: String::new(),
        vector: dense(1, 0),
        diversity: 1.5,
        candidates: 10,
    });
    assert!(matches!(bad(&mmr), QueryProblem::BadQuery(_)));
    // One bad query fails a batch before any runs.
    assert!(
        c.query_batch(&[
            Query::nearest(dense(1, 0), 3),
            Query::nearest(dense(1, 0), 0)
        ])
        .is_err()
    );
}

/// MMR picks what `fusion::mmr` picks over the candidates' stored vectors (as a client would
/// read them), whether the stage finds its candidates itself, takes them from a search
/// prefetch (vectors from the in-memory index), or from a fused prefetch (whose slots it does
/// not know: vectors from the store).
#[test]
fn mmr_equals_the_reference_over_the_stored_vectors() {
    let (_dir, _db, c) = setup();
    let l2 = hybridb::index::distance::kernels().l2_squared;
    let similarity = |a: &[f32], b: &[f32]| -l2(a, b);
    let title = |ids: &[EntityId]| -> Vec<(EntityId, Vec<f32>)> {
        c.get_many(ids)
            .expect("get_many")
            .into_iter()
            .map(|r| {
                let r = r.expect("candidate exists");
                match r.vectors.get("title") {
                    Some(hybridb::NamedVector::Dense(v)) => (r.id, v.clone()),
                    other => panic!("title vector: {other:?}"),
                }
            })
            .collect()
    };
    let mmr = |candidates: usize| Stage::Mmr {
        using: "title".into(),
        vector: dense(77, 1),
        diversity: 0.6,
        candidates,
    };
    let q = dense(77, 1);
    let ids = |hits: &[Hit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
    let check = |got: Vec<Hit>, candidates: &[EntityId]| {
        let want = fusion::mmr(&q, &title(candidates), 0.6, 10, similarity);
        assert_eq!(ids(&got), want.iter().map(|p| p.0).collect::<Vec<_>>());
        // Each pick reports its own distance to the query.
        for h in &got {
            let v = &title(&[h.id])[0].1;
            assert!((h.score - l2(&q, v).sqrt()).abs() < 1e-5, "{h:?}");
        }
    };

    // Its own search: the 40 nearest by `title`.
    let own = c
        .search_with(&SearchRequest::new(q.clone(), 40).using("title"))
        .expect("candidates");
    check(
        c.query(&Query::new(mmr(40)).limit(10)).expect("mmr"),
        &ids(&own),
    );

    // A sparse search as the prefetch.
    let sq = terms(1234);
    let pre = c
        .search_with(&SearchRequest::new_sparse("terms", sq.clone(), 30))
        .expect("sparse");
    let query = Query::new(mmr(30))
        .prefetch(vec![Query::sparse("terms", sq.clone(), 30)])
        .limit(10);
    check(c.query(&query).expect("mmr over sparse"), &ids(&pre));

    // A fused prefetch: its candidates are the fusion's.
    let fused = Query::rrf(vec![
        Query::sparse("terms", sq.clone(), 30),
        Query::nearest(dense(5, 0), 30),
    ])
    .limit(25);
    let fused_ids = ids(&c.query(&fused).expect("fused"));
    let query = Query::new(mmr(25)).prefetch(vec![fused]).limit(10);
    check(c.query(&query).expect("mmr over fusion"), &fused_ids);
}
