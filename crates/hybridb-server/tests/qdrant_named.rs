//! Named dense and sparse vectors through the Qdrant-compatible API (under `/qdrant` on the
//! main port): collections declaring them, points carrying any of them, searches and queries
//! by any of them, prefetch with fusion and re-scoring, named-vector administration, and the
//! errors of malformed input (nothing written).

mod common;

use common::TestServer;
use serde_json::{Value, json};

const Q: &str = "/qdrant/collections";

/// Qdrant's REST suite's basic collection: an unnamed Dot vector and a sparse vector, points
/// 9 and 10 holding only the sparse one.
fn basic(s: &TestServer) {
    s.ok(
        "PUT",
        &format!("{Q}/basic"),
        json!({"vectors": {"size": 4, "distance": "Dot", "on_disk": false},
               "sparse_vectors": {"sparse-text": {}}, "wal_config": {"wal_capacity_mb": null}}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/basic/points?wait=true"),
        json!({"points": [
            {"id": 1, "vector": [0.05, 0.61, 0.76, 0.74], "payload": {"city": "Berlin"}},
            {"id": 2, "vector": [0.19, 0.81, 0.75, 0.11], "payload": {"city": "London"}},
            {"id": 3, "vector": {"": [0.36, 0.55, 0.47, 0.94],
                                 "sparse-text": {"indices": [12, 3], "values": [1.0, 2.0]}}},
            {"id": 9, "vector": {"sparse-text": {"indices": [66, 12], "values": [0.5, 0.5]}}},
            {"id": 10, "vector": {"sparse-text": {"indices": [1, 2, 3], "values": [0.1, 0.2, 0.3]}},
             "payload": {"city": "Berlin"}}
        ]}),
    );
}

fn result(s: &TestServer, method: &str, path: &str, body: Value) -> Value {
    s.ok(method, &format!("{Q}/{path}"), body)["result"].clone()
}

fn ids(points: &Value) -> Vec<u64> {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

fn scores(points: &Value) -> Vec<f64> {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["score"].as_f64().unwrap())
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

/// The error text of a Qdrant error answer, asserting its status.
fn error(s: &TestServer, method: &str, path: &str, body: Value, status: u16) -> String {
    let a = s.send(method, &format!("{Q}/{path}"), body.clone());
    assert_eq!(a.status, status, "{body}: {}", a.body);
    a.body["status"]["error"].as_str().unwrap().to_string()
}

#[test]
fn sparse_vectors_beside_the_unnamed_one() {
    let s = TestServer::start();
    basic(&s);
    let info = result(&s, "GET", "basic", json!(null));
    assert_eq!(info["points_count"], 5);
    // As created, with the knobs the client gave (`on_disk`) reported back.
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"size": 4, "distance": "Dot", "on_disk": false})
    );
    assert_eq!(
        info["config"]["params"]["sparse_vectors"],
        json!({"sparse-text": {}})
    );
    // Vectors come back in Qdrant's forms: the bare list for the unnamed vector alone.
    let points = result(
        &s,
        "POST",
        "basic/points",
        json!({"ids": [1, 3, 9], "with_vector": true}),
    );
    assert_eq!(points[0]["vector"], json!([0.05, 0.61, 0.76, 0.74]));
    assert_eq!(
        points[1]["vector"],
        json!({"": [0.36, 0.55, 0.47, 0.94],
               "sparse-text": {"indices": [3, 12], "values": [2.0, 1.0]}})
    );
    assert_eq!(
        points[2]["vector"],
        json!({"sparse-text": {"indices": [12, 66], "values": [0.5, 0.5]}})
    );
    let only = result(
        &s,
        "POST",
        "basic/points",
        json!({"ids": [1, 3], "with_vector": ["sparse-text"]}),
    );
    assert_eq!(only[0]["vector"], json!({}));
    assert_eq!(
        only[1]["vector"],
        json!({"sparse-text": {"indices": [3, 12], "values": [2.0, 1.0]}})
    );
    // The unnamed vector: points without it are not hits.
    let hits = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": [1.0, 0.0, 0.0, 0.0], "limit": 10}),
    );
    assert_eq!(ids(&hits["points"]), [3, 2, 1]);
    // A sparse query (indices in any order): dot product over shared indices only.
    let hits = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": {"indices": [12, 3], "values": [1.0, 1.0]}, "using": "sparse-text",
               "with_vector": ["sparse-text"]}),
    );
    assert_eq!(ids(&hits["points"]), [3, 9, 10]);
    assert!(close(&scores(&hits["points"]), &[3.0, 0.5, 0.3]), "{hits}");
    assert_eq!(
        hits["points"][1]["vector"]["sparse-text"]["indices"],
        json!([12, 66])
    );
    let hits = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": {"nearest": {"indices": [1], "values": [2.0]}}, "using": "sparse-text",
               "filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]}}),
    );
    assert_eq!(ids(&hits["points"]), [10]);
    // The older search API names the vector.
    let hits = result(
        &s,
        "POST",
        "basic/points/search",
        json!({"vector": {"name": "sparse-text", "vector": {"indices": [66], "values": [2.0]}},
               "limit": 3}),
    );
    assert_eq!(ids(&hits), [9]);
    let hits = result(
        &s,
        "POST",
        "basic/points/search",
        json!({"vector": {"name": "", "vector": [0.0, 0.0, 0.0, 1.0]}, "limit": 1}),
    );
    assert_eq!(ids(&hits), [3]);
    // Like a stored point, by its sparse vector.
    let hits = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": 9, "using": "sparse-text"}),
    );
    assert_eq!(ids(&hits["points"]), [3]);
    // The native API sees the unnamed vector under its reserved name.
    let native = s.get("/collections/basic/entities/00000000-0000-0000-0000-000000000003");
    assert_eq!(
        native.body["vectors"]["(unnamed)"],
        json!([0.36, 0.55, 0.47, 0.94])
    );
}

#[test]
fn named_dense_vectors_and_the_batch_form() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        &format!("{Q}/named"),
        json!({"vectors": {"image": {"size": 2, "distance": "Cosine"},
                           "text": {"size": 3, "distance": "Euclid", "hnsw_config": {"m": 0}}}}),
    );
    let info = result(&s, "GET", "named", json!(null));
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"image": {"size": 2, "distance": "Cosine"},
               "text": {"size": 3, "distance": "Euclid", "hnsw_config": {"m": 0}}})
    );
    assert!(info["config"]["params"].get("sparse_vectors").is_none());
    // Indexing off (`indexing_threshold: 0`): exact search, no vectors in graphs.
    s.ok(
        "PUT",
        &format!("{Q}/flat"),
        json!({"vectors": {"size": 2, "distance": "Dot"},
               "optimizers_config": {"indexing_threshold": 0}}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/flat/points"),
        json!({"points": [{"id": 1, "vector": [1.0, 0.0]}]}),
    );
    let flat = result(&s, "GET", "flat", json!(null));
    assert_eq!(
        (
            flat["points_count"].clone(),
            flat["indexed_vectors_count"].clone()
        ),
        (json!(1), json!(0))
    );
    assert_eq!(flat["config"]["hnsw_config"]["m"], 0);
    s.ok(
        "PUT",
        &format!("{Q}/named/points"),
        json!({"batch": {"ids": [1, 2, 3],
                         "vectors": {"image": [[3.0, 4.0], [0.0, 1.0], null],
                                     "text": [[0.0, 0.0, 0.0], null, [1.0, 1.0, 1.0]]}}}),
    );
    let p = result(&s, "GET", "named/points/1", json!(null));
    // Cosine vectors are stored normalised, as Qdrant does.
    assert_eq!(
        p["vector"],
        json!({"image": [0.6, 0.8], "text": [0.0, 0.0, 0.0]})
    );
    let p = result(&s, "GET", "named/points/2", json!(null));
    assert_eq!(p["vector"], json!({"image": [0.0, 1.0]}));
    let hits = result(
        &s,
        "POST",
        "named/points/query",
        json!({"query": [1.0, 1.0, 1.0], "using": "text", "with_vector": ["text"]}),
    );
    assert_eq!(ids(&hits["points"]), [3, 1]);
    assert!(
        close(&scores(&hits["points"]), &[0.0, 3f64.sqrt()]),
        "{hits}"
    );
    let hits = result(
        &s,
        "POST",
        "named/points/search",
        json!({"vector": {"name": "image", "vector": [0.0, 2.0]}, "limit": 5}),
    );
    assert_eq!(ids(&hits), [2, 1]);
    assert!(close(&scores(&hits), &[1.0, 0.8]), "{hits}");
    // Points may lack any named vector, and a query needs `using` here.
    let e = error(
        &s,
        "POST",
        "named/points/query",
        json!({"query": [1.0, 1.0]}),
        400,
    );
    assert!(e.contains("Not existing vector name error: "), "{e}");
}

#[test]
fn prefetch_with_fusion_and_rescoring() {
    let s = TestServer::start();
    basic(&s);
    let dense = json!([0.2, 0.1, 0.9, 0.7]);
    let sparse = json!({"indices": [3, 12], "values": [1.0, 0.5]});
    let single = |query: &Value, using: &str| {
        result(
            &s,
            "POST",
            "basic/points/query",
            json!({"query": query, "using": using, "limit": 10}),
        )["points"]
            .clone()
    };
    let a = single(&dense, "");
    let b = single(&sparse, "sparse-text");
    // Qdrant's RRF: 1 / ((rank + 1) / weight + k - 1), summed; ties keep the order of first
    // appearance.
    let rrf = |k: f64, weights: [f64; 2]| {
        let mut expected: Vec<(u64, f64)> = Vec::new();
        for (list, w) in [&a, &b].into_iter().zip(weights) {
            for (rank, p) in list.as_array().unwrap().iter().enumerate() {
                let id = p["id"].as_u64().unwrap();
                let score = 1.0 / ((rank as f64 + 1.0) / w + k - 1.0);
                match expected.iter_mut().find(|(i, _)| *i == id) {
                    Some(e) => e.1 += score,
                    None => expected.push((id, score)),
                }
            }
        }
        expected.sort_by(|x, y| y.1.total_cmp(&x.1));
        expected
    };
    let expected = rrf(2.0, [1.0, 1.0]);
    let fused = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": [{"query": dense, "limit": 10},
                            {"query": sparse, "using": "sparse-text", "limit": 10}],
               "query": {"fusion": "rrf"}, "with_payload": true}),
    )["points"]
        .clone();
    assert_eq!(
        ids(&fused),
        expected.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    let want: Vec<f64> = expected.iter().map(|e| e.1).collect();
    assert!(close(&scores(&fused), &want), "{fused}");
    assert_eq!(
        fused[0]["payload"],
        json!({}),
        "payloads are read for the answer"
    );
    // The filter holds in every prefetch; the threshold applies to the fused scores.
    let berlin = json!({"must": [{"key": "city", "match": {"value": "Berlin"}}]});
    let fused = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": [{"query": dense}, {"query": sparse, "using": "sparse-text"}],
               "query": {"fusion": "dbsf"}, "filter": berlin, "score_threshold": 0.1}),
    )["points"]
        .clone();
    assert_eq!(ids(&fused), [1, 10]);
    assert!(close(&scores(&fused), &[0.5, 0.5]), "{fused}");
    let weighted = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": [{"query": dense}, {"query": sparse, "using": "sparse-text"}],
               "query": {"rrf": {"k": 60, "weights": [3.0, 0.5]}}, "limit": 3}),
    )["points"]
        .clone();
    let expected = rrf(60.0, [3.0, 0.5]);
    assert_eq!(
        ids(&weighted),
        expected.iter().take(3).map(|e| e.0).collect::<Vec<_>>()
    );
    let want: Vec<f64> = expected.iter().take(3).map(|e| e.1).collect();
    assert!(close(&scores(&weighted), &want), "{weighted}");
    // Re-scoring: the prefetch's points, ordered by the query's own vector.
    let rescored = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": {"query": sparse, "using": "sparse-text", "limit": 2},
               "query": [0.0, 0.0, 0.0, 1.0]}),
    )["points"]
        .clone();
    assert_eq!(
        ids(&rescored),
        [3],
        "only point 3 of the two has the unnamed vector"
    );
    let all = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": {"limit": 1000}, "query": [0.0, 0.0, 0.0, 1.0], "offset": 1}),
    )["points"]
        .clone();
    let root = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": [0.0, 0.0, 0.0, 1.0], "offset": 1}),
    )["points"]
        .clone();
    assert_eq!(all, root);
    // MMR: diversity 0 keeps the nearest order; more diversity picks the point least like
    // those picked (here 2, then the farthest of the rest from it).
    let nearest = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": [0.2, 0.1, 0.9, 0.7]}),
    )["points"]
        .clone();
    let mmr = |diversity: f64| {
        result(
            &s,
            "POST",
            "basic/points/query",
            json!({"query": {"nearest": [0.2, 0.1, 0.9, 0.7], "mmr": {"diversity": diversity}}}),
        )["points"]
            .clone()
    };
    assert_eq!(mmr(0.0), nearest);
    let diverse = mmr(1.0);
    assert_eq!(diverse[0], nearest[0], "the most relevant point first");
    assert_eq!(ids(&diverse).len(), 3);
    assert_ne!(ids(&diverse), ids(&nearest), "{diverse} {nearest}");
    let e = error(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": {"nearest": [1.0, 0.0, 0.0, 0.0], "mmr": {"diversity": 2}}}),
        422,
    );
    assert!(e.contains("diversity: value 2 invalid"), "{e}");
    // Any limit (u64::MAX too) is taken, at the root and in a prefetch.
    let huge = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": {"limit": u64::MAX}, "query": [0.0, 0.0, 0.0, 1.0], "limit": u64::MAX}),
    )["points"]
        .clone();
    assert_eq!(ids(&huge), [3, 1, 2]);
}

#[test]
fn malformed_vectors_and_queries_are_refused_and_write_nothing() {
    let s = TestServer::start();
    basic(&s);
    for (point, status, words) in [
        (
            json!({"id": 20, "vector": {"colour": [1.0]}}),
            400,
            "Not existing vector name error: colour",
        ),
        (
            json!({"id": 20, "vector": {"sparse-text": [1.0, 2.0]}}),
            400,
            "is sparse, got a dense vector",
        ),
        (
            json!({"id": 20, "vector": {"": {"indices": [1], "values": [1.0]}}}),
            400,
            "is dense, got a sparse vector",
        ),
        (
            json!({"id": 20, "vector": {"sparse-text": {"indices": [1, 1], "values": [1.0, 2.0]}}}),
            422,
            "Validation error in JSON body: [points[1].vector.?.indices: Validation error: must be unique [{}]",
        ),
        (
            json!({"id": 20, "vector": {"sparse-text": {"indices": [1], "values": [1.0, 2.0]}}}),
            422,
            "points[1].vector.?.values: Validation error: must be the same length as indices [{}]",
        ),
        (json!({"id": 20, "vector": [1.0, 2.0]}), 400, "dimension 2"),
    ] {
        let e = error(
            &s,
            "PUT",
            "basic/points",
            json!({"points": [{"id": 21, "vector": [1.0, 0.0, 0.0, 0.0]}, point]}),
            status,
        );
        assert!(e.contains(words), "{point}: {e}");
    }
    let count = result(&s, "POST", "basic/points/count", json!({}));
    assert_eq!(count["count"], 5, "nothing was written");
    for (body, words) in [
        (
            json!({"query": [1.0, 0.0, 0.0, 0.0], "using": "nope"}),
            "Not existing vector name error: nope",
        ),
        (
            json!({"query": {"indices": [1], "values": [1.0]}}),
            "the query is a sparse vector",
        ),
        (
            json!({"query": [1.0, 0.0], "using": "sparse-text"}),
            "the query is a dense vector",
        ),
        (
            json!({"prefetch": [{"query": [1.0, 0.0, 0.0, 0.0]}]}),
            "A query is needed to merge the prefetches. Can't have prefetches without defining a query.",
        ),
        (
            json!({"score_threshold": 1.0}),
            "A query is needed to use the score_threshold. Can't have score_threshold without defining a query.",
        ),
        (
            json!({"query": {"fusion": "rrf"}}),
            "fusion needs prefetches",
        ),
        (
            json!({"prefetch": [{"query": [1.0, 0.0, 0.0, 0.0]}], "query": {"rrf": {"weights": [1, 2]}}}),
            "Number of weights in RRF should match number of pre-fetches: got 2, expected 1",
        ),
        (
            json!({"query": {"indices": [1], "values": [1.0]}, "using": "sparse-text",
                   "params": {"idf": {"corpus": {"must": []}}}}),
            "params.idf is not supported yet",
        ),
        (
            json!({"query": {"fusion": "max"}, "prefetch": {}}),
            "query.fusion",
        ),
        (
            json!({"query": {"nearest": {"indices": [1], "values": [1.0]}, "mmr": {}},
                   "using": "sparse-text"}),
            "not supported yet",
        ),
    ] {
        let e = error(&s, "POST", "basic/points/query", body.clone(), 400);
        assert!(e.contains(words), "{body}: {e}");
    }
    // A missing `lookup_from` collection is Qdrant's 404, at any level.
    let e = error(
        &s,
        "POST",
        "basic/points/query",
        json!({"prefetch": {"query": [1.0, 0.0, 0.0, 0.0], "lookup_from": {"collection": "x"}},
               "query": {"fusion": "rrf"}}),
        404,
    );
    assert!(e.contains("Collection `x` doesn't exist"), "{e}");
}

#[test]
fn named_vectors_are_created_and_deleted() {
    let s = TestServer::start();
    basic(&s);
    let e = error(
        &s,
        "PUT",
        "unnamed_sparse",
        json!({"sparse_vectors": {"": {}}}),
        400,
    );
    assert!(e.contains("Sparse vector name cannot be empty"), "{e}");
    let e = error(
        &s,
        "PUT",
        "reserved",
        json!({"vectors": {"(unnamed)": {"size": 2, "distance": "Dot"}}}),
        400,
    );
    assert!(e.contains("reserved"), "{e}");
    s.ok(
        "PUT",
        &format!("{Q}/basic/vectors/title?wait=true"),
        json!({"sparse": {"modifier": "idf"}}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/basic/vectors/image"),
        json!({"dense": {"size": 2, "distance": "Euclid"}}),
    );
    let info = result(&s, "GET", "basic", json!(null));
    assert_eq!(
        info["config"]["params"]["sparse_vectors"],
        json!({"sparse-text": {}, "title": {"modifier": "idf"}})
    );
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"": {"size": 4, "distance": "Dot", "on_disk": false},
               "image": {"size": 2, "distance": "Euclid"}})
    );
    let e = error(
        &s,
        "PUT",
        "basic/vectors/image",
        json!({"dense": {"size": 2, "distance": "Euclid"}}),
        409,
    );
    assert!(e.contains("already exists"), "{e}");
    let e = error(
        &s,
        "PUT",
        "basic/vectors/x",
        json!({"dense": {"size": 0, "distance": "Dot"}}),
        422,
    );
    assert!(e.contains("dense.size: value 0 invalid"), "{e}");
    let e = error(
        &s,
        "PUT",
        "basic/vectors/x",
        json!({"dense": {"size": 5000, "distance": "Dot"}}),
        400,
    );
    assert!(e.contains("above hybridb's largest dimension, 4096"), "{e}");
    s.ok(
        "PUT",
        &format!("{Q}/basic/points"),
        json!({"points": [{"id": 1, "vector": {"": [1.0, 0.0, 0.0, 0.0], "image": [1.0, 2.0]}}]}),
    );
    s.ok("DELETE", &format!("{Q}/basic/vectors/image"), json!(null));
    let p = result(&s, "GET", "basic/points/1", json!(null));
    assert_eq!(p["vector"], json!([1.0, 0.0, 0.0, 0.0]));
    let e = error(&s, "DELETE", "basic/vectors/image", json!(null), 400);
    assert!(e.contains("Not existing vector name error: image"), "{e}");
}

#[test]
fn vectors_of_existing_points_are_updated_and_deleted() {
    let s = TestServer::start();
    basic(&s);
    // Set the sparse vector of point 1 and replace the unnamed one of point 3; the payload
    // and the other vectors stay.
    s.ok(
        "PUT",
        &format!("{Q}/basic/points/vectors?wait=true"),
        json!({"points": [
            {"id": 1, "vector": {"sparse-text": {"indices": [7], "values": [1.5]}}},
            {"id": 3, "vector": [0.0, 0.0, 0.0, 2.0]},
            {"id": 1, "vector": {"sparse-text": {"indices": [8], "values": [2.5]}}}
        ]}),
    );
    let p = result(&s, "GET", "basic/points/1", json!(null));
    assert_eq!(
        p["vector"],
        json!({"": [0.05, 0.61, 0.76, 0.74], "sparse-text": {"indices": [8], "values": [2.5]}})
    );
    assert_eq!(p["payload"], json!({"city": "Berlin"}));
    let p = result(&s, "GET", "basic/points/3", json!(null));
    assert_eq!(
        p["vector"],
        json!({"": [0.0, 0.0, 0.0, 2.0], "sparse-text": {"indices": [3, 12], "values": [2.0, 1.0]}})
    );
    // A missing point, an unknown name, a wrong dimension, no vectors: nothing is written.
    let before = result(
        &s,
        "POST",
        "basic/points",
        json!({"ids": [2], "with_vector": true}),
    );
    for (body, status, words) in [
        (
            json!({"points": [{"id": 2, "vector": [1.0, 1.0, 1.0, 1.0]}, {"id": 77, "vector": [1.0, 1.0, 1.0, 1.0]}]}),
            404,
            "Not found: No point with id 77 found",
        ),
        (
            json!({"points": [{"id": 2, "vector": [1.0, 1.0, 1.0, 1.0]}, {"id": 1, "vector": {"nope": [1.0]}}]}),
            400,
            "Not existing vector name error: nope",
        ),
        (
            json!({"points": [{"id": 2, "vector": [1.0, 1.0, 1.0, 1.0]}, {"id": 1, "vector": [1.0]}]}),
            400,
            "has dimension 1, expected 4",
        ),
        (
            json!({"points": [{"id": 2, "vector": {}}]}),
            422,
            "Validation error in JSON body: [points[0].vector: must specify vectors to update for point]",
        ),
    ] {
        let e = error(&s, "PUT", "basic/points/vectors", body.clone(), status);
        assert!(e.contains(words), "{body}: {e}");
    }
    let after = result(
        &s,
        "POST",
        "basic/points",
        json!({"ids": [2], "with_vector": true}),
    );
    assert_eq!(before, after);
    // Delete by ids and by filter; the unnamed vector of point 2 goes, so 2 is no hit.
    s.ok(
        "POST",
        &format!("{Q}/basic/points/vectors/delete"),
        json!({"points": [2, 77], "vector": [""]}),
    );
    s.ok(
        "POST",
        &format!("{Q}/basic/points/vectors/delete"),
        json!({"filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]},
               "vector": ["sparse-text"]}),
    );
    let p = result(&s, "GET", "basic/points/10", json!(null));
    assert_eq!(p["vector"], json!({}));
    let p = result(&s, "GET", "basic/points/2", json!(null));
    assert_eq!(p["vector"], json!({}));
    let hits = result(
        &s,
        "POST",
        "basic/points/query",
        json!({"query": [1.0, 1.0, 1.0, 1.0]}),
    );
    assert_eq!(ids(&hits["points"]), [1, 3]);
    let e = error(
        &s,
        "POST",
        "basic/points/vectors/delete",
        json!({"points": [1], "vector": ["a"]}),
        400,
    );
    assert!(
        e.contains("Wrong input: Not existing vector name error: a"),
        "{e}"
    );
}
