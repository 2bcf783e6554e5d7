//! The query kinds beyond `nearest` and fusion through a real server (under `/qdrant` on the
//! main port), on collections small enough to score by hand: `recommend` with each strategy
//! (and the older `points/recommend` route), `context`, `discover`, `lookup_from`, `order_by`
//! in query and scroll, `sample`, and the errors around them.

mod common;

use common::TestServer;
use serde_json::{Value, json};

const Q: &str = "/qdrant/collections";

/// A Dot collection: 1 = [1, 0], 2 = [0, 1], 3 = [1, 1], 4 = [-1, 0]; `p` (float index) holds
/// [5, 1] at 1, 3 at 2, nothing at 3, 2.5 at 4.
fn setup(s: &TestServer, name: &str) {
    s.ok(
        "PUT",
        &format!("{Q}/{name}"),
        json!({"vectors": {"size": 2, "distance": "Dot"}}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/{name}/points?wait=true"),
        json!({"points": [
            {"id": 1, "vector": [1.0, 0.0], "payload": {"p": [5, 1]}},
            {"id": 2, "vector": [0.0, 1.0], "payload": {"p": 3}},
            {"id": 3, "vector": [1.0, 1.0], "payload": {}},
            {"id": 4, "vector": [-1.0, 0.0], "payload": {"p": 2.5}}
        ]}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/{name}/index?wait=true"),
        json!({"field_name": "p", "field_schema": "float"}),
    );
}

fn result(s: &TestServer, path: &str, body: Value) -> Value {
    s.ok("POST", &format!("{Q}/{path}"), body)["result"].clone()
}

fn query(s: &TestServer, body: Value) -> Vec<(u64, f64)> {
    let r = result(s, "c/points/query", body);
    pairs(&r["points"])
}

fn pairs(points: &Value) -> Vec<(u64, f64)> {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_u64().unwrap(), p["score"].as_f64().unwrap()))
        .collect()
}

fn assert_close(got: &[(u64, f64)], want: &[(u64, f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?} != {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.0 == w.0 && (g.1 - w.1).abs() < 1e-5,
            "{got:?} != {want:?}"
        );
    }
}

fn error(s: &TestServer, path: &str, body: Value, status: u16) -> String {
    let a = s.send("POST", &format!("{Q}/{path}"), body.clone());
    assert_eq!(a.status, status, "{body}: {}", a.body);
    a.body["status"]["error"].as_str().unwrap().to_string()
}

#[test]
fn recommend_scores_each_strategy_as_qdrant() {
    let s = TestServer::start();
    setup(&s, "c");
    // The examples (1 and 4) are left out. scaled(x) = (x / (1 + |x|) + 1) / 2.
    let reco = |strategy: &str| json!({"query": {"recommend": {"positive": [1], "negative": [4], "strategy": strategy}}});
    // best_score: 3 is nearer the positive: scaled(1) = 0.75; 2 ties (0 = 0): -scaled(0).
    assert_close(&query(&s, reco("best_score")), &[(3, 0.75), (2, -0.5)]);
    // sum_scores: 1 - (-1) and 0 - 0.
    assert_close(&query(&s, reco("sum_scores")), &[(3, 2.0), (2, 0.0)]);
    // average_vector: [1, 0] + ([1, 0] - [-1, 0]) = [3, 0], searched by dot product.
    assert_close(&query(&s, reco("average_vector")), &[(3, 3.0), (2, 0.0)]);
    // A vector example works as an id does; a filter and a threshold hold.
    let body = json!({"query": {"recommend": {"positive": [[1.0, 0.0]], "negative": [[-1.0, 0.0]],
                      "strategy": "sum_scores"}}, "score_threshold": 1.0});
    assert_close(&query(&s, body), &[(1, 2.0), (3, 2.0)]);
    // The older route.
    let r = result(
        &s,
        "c/points/recommend",
        json!({"positive": [1], "negative": [4], "strategy": "best_score", "limit": 1}),
    );
    assert_close(&pairs(&r), &[(3, 0.75)]);
    let r = result(
        &s,
        "c/points/recommend/batch",
        json!({"searches": [{"positive": [2], "limit": 2}, {"positive": [1], "limit": 1}]}),
    );
    assert_eq!(r.as_array().unwrap().len(), 2);
    assert_close(&pairs(&r[1]), &[(3, 1.0)]);
    // Errors: no examples, no positive for average_vector, a missing point, a wrong size.
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"recommend": {}}}),
        422,
    );
    assert!(e.contains("At least one positive or negative"), "{e}");
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"recommend": {"negative": [1]}}}),
        400,
    );
    assert!(
        e.contains("At least one positive vector ID required"),
        "{e}"
    );
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"recommend": {"positive": [77], "strategy": "best_score"}}}),
        404,
    );
    assert!(e.contains("No point with id 77 found"), "{e}");
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"recommend": {"positive": [[1.0, 0.0, 0.0]]}}}),
        400,
    );
    assert!(e.contains("expected dim: 2, got 3"), "{e}");
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"recommend": {"positive": [1], "strategy": "best"}}}),
        400,
    );
    assert!(e.contains("query.recommend.strategy"), "{e}");
}

#[test]
fn context_and_discover_score_as_qdrant() {
    let s = TestServer::start();
    setup(&s, "c");
    // context (1, 4): 3 is on the positive side (loss 0); 2 is equidistant (loss -ε).
    let got = query(
        &s,
        json!({"query": {"context": [{"positive": 1, "negative": 4}]}}),
    );
    assert_close(&got, &[(3, 0.0), (2, 0.0)]);
    // discover target 3, context (1, 4): only 2 is left; rank 0, scaled(1) = 0.75.
    let got = query(
        &s,
        json!({"query": {"discover": {"target": 3, "context": {"positive": 1, "negative": 4}}}}),
    );
    assert_close(&got, &[(2, 0.75)]);
    // discover with a vector target: 1 ranks +1 (nearer [1,0] than [-1,0]), 4 ranks -1.
    let got = query(
        &s,
        json!({"query": {"discover": {"target": [1.0, 0.0],
               "context": [{"positive": [1.0, 0.0], "negative": [-1.0, 0.0]}]}}}),
    );
    assert_close(&got, &[(1, 1.75), (3, 1.75), (2, 0.5), (4, -1.0 + 0.25)]);
}

#[test]
fn lookup_from_reads_examples_from_another_collection() {
    let s = TestServer::start();
    setup(&s, "c");
    s.ok(
        "PUT",
        &format!("{Q}/other"),
        json!({"vectors": {"v": {"size": 2, "distance": "Dot"}}}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/other/points?wait=true"),
        json!({"points": [{"id": 1, "vector": {"v": [0.5, 2.0]}}]}),
    );
    // Point 1 of `other` is [0.5, 2]: 3 scores 2.5, 2 scores 2, and 1 itself (0.5) is not
    // left out (it is another collection's point).
    let look = json!({"collection": "other", "vector": "v"});
    let got = query(&s, json!({"query": 1, "lookup_from": look, "limit": 3}));
    assert_close(&got, &[(3, 2.5), (2, 2.0), (1, 0.5)]);
    let got = query(
        &s,
        json!({"query": {"recommend": {"positive": [1], "strategy": "sum_scores"}},
               "lookup_from": look, "limit": 1}),
    );
    assert_close(&got, &[(3, 2.5)]);
    let e = error(
        &s,
        "c/points/query",
        json!({"query": [1.0, 0.0], "lookup_from": {"collection": "nope"}}),
        404,
    );
    assert!(e.contains("nope"), "{e}");
    let e = error(
        &s,
        "c/points/query",
        json!({"query": 1, "lookup_from": {"collection": "other", "vector": "w"}}),
        400,
    );
    assert!(e.contains("Not existing vector name error: w"), "{e}");
}

#[test]
fn order_by_lists_each_value_of_a_point() {
    let s = TestServer::start();
    setup(&s, "c");
    let scroll = |body: Value| -> Vec<(u64, f64)> {
        let r = result(&s, "c/points/scroll", body);
        assert!(r["next_page_offset"].is_null());
        r["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_u64().unwrap(),
                    p["order_value"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        scroll(json!({"order_by": "p"})),
        vec![(1, 1.0), (4, 2.5), (2, 3.0), (1, 5.0)]
    );
    assert_eq!(
        scroll(json!({"order_by": {"key": "p", "direction": "desc", "start_from": 3}, "limit": 2})),
        vec![(2, 3.0), (4, 2.5)]
    );
    assert_eq!(
        scroll(json!({"order_by": "p", "filter": {"must": {"has_id": [1, 2]}}})),
        vec![(1, 1.0), (2, 3.0), (1, 5.0)]
    );
    // In a query: score 1.0, the order value given, offset and re-scoring of a prefetch.
    let r = result(
        &s,
        "c/points/query",
        json!({"query": {"order_by": {"key": "p", "direction": "desc"}}, "offset": 1}),
    );
    let pts = r["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3);
    assert_eq!(
        (
            pts[0]["id"].as_u64(),
            pts[0]["order_value"].as_f64(),
            pts[0]["score"].as_f64()
        ),
        (Some(2), Some(3.0), Some(1.0))
    );
    let got = query(
        &s,
        json!({"prefetch": {"query": [0.0, 1.0], "limit": 2}, "query": {"order_by": "p"}}),
    );
    assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2]);
    // A datetime index: microseconds since the epoch; `start_from` a datetime.
    s.ok(
        "POST",
        &format!("{Q}/c/points/payload?wait=true"),
        json!({"payload": {"d": "2024-01-02T00:00:00Z"}, "points": [1]}),
    );
    s.ok(
        "POST",
        &format!("{Q}/c/points/payload?wait=true"),
        json!({"payload": {"d": "2024-01-01"}, "points": [2]}),
    );
    s.ok(
        "POST",
        &format!("{Q}/c/points/payload?wait=true"),
        json!({"payload": {"d": ["2023-12-31T23:00:00+00:00"]}, "points": [4]}),
    );
    s.ok(
        "PUT",
        &format!("{Q}/c/index?wait=true"),
        json!({"field_name": "d", "field_schema": "datetime"}),
    );
    let day = 1_704_067_200_000_000.0; // 2024-01-01T00:00:00Z
    assert_eq!(
        scroll(json!({"order_by": "d"})),
        vec![(4, day - 3.6e9), (2, day), (1, day + 8.64e10)]
    );
    assert_eq!(
        scroll(json!({"order_by": {"key": "d", "start_from": "2024-01-01T00:00:00Z"}})),
        vec![(2, day), (1, day + 8.64e10)]
    );
    let e = error(
        &s,
        "c/points/scroll",
        json!({"order_by": {"key": "d", "start_from": "soon"}}),
        400,
    );
    assert!(e.contains("order_by.start_from"), "{e}");
    // Errors: no range index, an offset, a threshold.
    let e = error(&s, "c/points/scroll", json!({"order_by": "q"}), 400);
    assert!(e.contains("No range index for `order_by` key: `q`"), "{e}");
    let e = error(
        &s,
        "c/points/scroll",
        json!({"order_by": "p", "offset": 1}),
        400,
    );
    assert!(
        e.contains("Cannot use an `offset` when using `order_by`"),
        "{e}"
    );
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"order_by": "p"}, "score_threshold": 1}),
        400,
    );
    assert_eq!(
        e,
        "Bad request: Can't use score_threshold with an order_by query."
    );
}

#[test]
fn sample_draws_distinct_matching_points() {
    let s = TestServer::start();
    setup(&s, "c");
    let mut orders = std::collections::HashSet::new();
    for _ in 0..20 {
        let got = query(&s, json!({"query": {"sample": "random"}, "limit": 4}));
        let mut ids: Vec<u64> = got.iter().map(|p| p.0).collect();
        orders.insert(ids.clone());
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 3, 4]);
    }
    assert!(orders.len() > 1, "always the same order");
    let got = query(
        &s,
        json!({"query": {"sample": "random"}, "limit": 2,
               "filter": {"must": {"has_id": [2, 3, 4]}}}),
    );
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| [2, 3, 4].contains(&p.0) && p.1 == 1.0));
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"sample": "first"}}),
        400,
    );
    assert!(e.contains("query.sample"), "{e}");
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"sample": "random"}, "limit": 0}),
        422,
    );
    assert!(e.contains("internal.limit: value 0 invalid"), "{e}");
}

#[test]
fn recommend_over_a_sparse_vector() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        &format!("{Q}/c"),
        json!({"vectors": {}, "sparse_vectors": {"s": {}}}),
    );
    // The dense collection's vectors as sparse ones: 1 = {0: 1}, 2 = {1: 1}, 3 = {0: 1, 1: 1},
    // 4 = {0: -1}.
    let sp = |i: &[u32], v: &[f32]| json!({"s": {"indices": i, "values": v}});
    s.ok(
        "PUT",
        &format!("{Q}/c/points?wait=true"),
        json!({"points": [
            {"id": 1, "vector": sp(&[0], &[1.0])},
            {"id": 2, "vector": sp(&[1], &[1.0])},
            {"id": 3, "vector": sp(&[1, 0], &[1.0, 1.0])},
            {"id": 4, "vector": sp(&[0], &[-1.0])}
        ]}),
    );
    let reco = |strategy: &str| {
        json!({"query": {"recommend": {"positive": [1], "negative": [4], "strategy": strategy}},
               "using": "s"})
    };
    assert_close(&query(&s, reco("best_score")), &[(3, 0.75), (2, -0.5)]);
    assert_close(&query(&s, reco("sum_scores")), &[(3, 2.0), (2, 0.0)]);
    // {0: 1} + ({0: 1} - {0: -1}) = {0: 3}: a sparse search finds only points sharing index 0.
    assert_close(&query(&s, reco("average_vector")), &[(3, 3.0)]);
    // A sparse vector example; a dense one is refused.
    let got = query(
        &s,
        json!({"query": {"context": {"positive": {"indices": [1], "values": [1.0]},
                                     "negative": {"indices": [0], "values": [1.0]}}},
               "using": "s", "limit": 1}),
    );
    assert_close(&got, &[(2, 0.0)]);
    let e = error(
        &s,
        "c/points/query",
        json!({"query": {"recommend": {"positive": [[1.0]]}}, "using": "s"}),
        400,
    );
    assert!(e.contains("an example is dense"), "{e}");
}
