//! The query API and text indexes through the native HTTP API: a hybrid query (dense + BM25
//! prefetches fused by RRF) equals the library's answer, explain reports the stages, batches
//! answer in order, text indexes are declared and dropped online, and malformed queries get
//! typed 400s.

mod common;

use common::TestServer;
use serde_json::{Value, json};

fn setup(s: &TestServer) {
    let created = s.send(
        "PUT",
        "/collections/docs",
        json!({"dim": 2, "metric": "cosine", "payload_indexes": {"lang": "keyword"},
               "text_indexes": {"body": {"language": "english"}}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["config"]["text_indexes"]["body"]["language"],
        "english"
    );
    let texts = [
        "opening files in python",
        "the database runs queries",
        "vector search with filters",
        "reading and writing files",
        "python database drivers",
    ];
    let entities: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"key": format!("d{i}"), "payload": {"body": t, "lang": if i % 2 == 0 {"en"} else {"de"}},
                   "vector": [1.0, i as f64 * 0.3]})
        })
        .collect();
    s.ok(
        "PUT",
        "/collections/docs/entities",
        json!({"entities": entities}),
    );
}

fn keys(s: &TestServer, hits: &Value) -> Vec<String> {
    hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let id = h["id"].as_str().unwrap();
            s.ok(
                "GET",
                &format!("/collections/docs/entities/{id}"),
                Value::Null,
            )["payload"]["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn text_search_and_hybrid_queries_over_http() {
    let s = TestServer::start();
    setup(&s);
    // BM25: stemming finds "files" for "file".
    let text = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"text": "file", "using": "body", "k": 5}),
    );
    assert_eq!(
        keys(&s, &text),
        ["opening files in python", "reading and writing files"]
    );
    let hybrid = json!({
        "prefetch": [
            {"query": {"nearest": [1.0, 0.0]}, "limit": 5},
            {"query": {"text": "python database"}, "using": "body", "limit": 5}
        ],
        "query": {"fusion": {"method": "rrf"}},
        "limit": 3,
        "with_payload": true
    });
    let got = s.ok("POST", "/collections/docs/query", hybrid.clone());
    assert_eq!(got["hits"].as_array().unwrap().len(), 3);
    assert!(got["hits"][0]["payload"].is_object());
    // The filter holds in every prefetch.
    let mut filtered = hybrid.clone();
    filtered["filter"] = json!({"must": [{"key": "lang", "match": {"value": "en"}}]});
    let got = s.ok("POST", "/collections/docs/query", filtered);
    for h in got["hits"].as_array().unwrap() {
        assert_eq!(h["payload"]["lang"], "en");
    }
    let explain = s.ok("POST", "/collections/docs/query/explain", hybrid.clone());
    let stages: Vec<(u64, &str)> = explain["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| (st["depth"].as_u64().unwrap(), st["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(stages, [(1, "nearest"), (1, "text"), (0, "fusion")]);
    let batch = s.ok(
        "POST",
        "/collections/docs/query/batch",
        json!({"queries": [hybrid, {"query": {"nearest": [1.0, 0.0]}, "limit": 2}]}),
    );
    assert_eq!(batch["results"][1]["hits"].as_array().unwrap().len(), 2);
    assert_eq!(batch["results"][0]["hits"], explain["hits"]);

    // MMR and rescoring.
    let mmr = s.ok(
        "POST",
        "/collections/docs/query",
        json!({"query": {"mmr": {"vector": [1.0, 0.0], "diversity": 0.5, "candidates": 5}}, "limit": 3}),
    );
    assert_eq!(mmr["hits"].as_array().unwrap().len(), 3);

    // Malformed queries: typed 400s.
    for (body, code) in [
        (
            json!({"query": {"fusion": {"method": "rrf"}}}),
            "invalid_query",
        ),
        (
            json!({"query": {"text": "x"}, "using": "nope"}),
            "invalid_query",
        ),
        (
            json!({"query": {"nearest": [1.0, 0.0]}, "limit": 0}),
            "invalid_query",
        ),
        (json!({"query": {"bogus": 1}}), "invalid_body"),
        (
            json!({"prefetch": [{"query": {"nearest": [1.0, 0.0]}}],
                   "query": {"fusion": {"method": "rrf", "weights": [1.0, 2.0]}}}),
            "invalid_query",
        ),
    ] {
        let r = s.send("POST", "/collections/docs/query", body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{body}: {}", r.body);
    }
    let r = s.send(
        "POST",
        "/collections/docs/search",
        json!({"text": "python", "k": 3}),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // Text indexes online.
    let declared = s.ok(
        "PUT",
        "/collections/docs/text-indexes/lang",
        json!({"tokenizer": "word"}),
    );
    assert_eq!(declared["changed"], true);
    let de = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"text": "de", "using": "lang", "k": 10}),
    );
    assert_eq!(de["hits"].as_array().unwrap().len(), 2);
    let dropped = s.ok("DELETE", "/collections/docs/text-indexes/lang", Value::Null);
    assert_eq!(dropped["changed"], true);
    let r = s.send(
        "POST",
        "/collections/docs/search",
        json!({"text": "de", "using": "lang", "k": 10}),
    );
    assert_eq!(r.status, 400);
}
