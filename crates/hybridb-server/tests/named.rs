//! Named dense and sparse vectors through the native HTTP API: declaring them (at creation
//! and online), writing and reading entities that carry them, searching by any of them (by
//! vector, sparse vector or another entity's stored vector), and the typed errors of every
//! malformed input, each of which writes nothing.

mod common;

use common::TestServer;
use serde_json::{Value, json};

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";
const C: &str = "00000000-0000-0000-0000-00000000000c";

/// `docs`: a default vector (dim 2, L2), a named dense vector `title` (dim 3, dot, exact)
/// and a sparse vector `terms` (no IDF). `A` has everything, `B` lacks `terms`, `C` lacks
/// `title`.
fn docs(s: &TestServer) {
    let created = s.send(
        "PUT",
        "/collections/docs",
        json!({"dim": 2, "metric": "l2", "vectors": {
            "title": {"type": "dense", "dim": 3, "metric": "dot", "index": {"kind": "exact"}},
            "terms": {"type": "sparse"}
        }}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let vectors = &created.body["config"]["vectors"];
    assert_eq!(
        vectors["title"],
        json!({"type": "dense", "dim": 3, "metric": "dot", "index": {"kind": "exact"}})
    );
    assert_eq!(vectors["terms"], json!({"type": "sparse", "idf": false}));
    s.ok(
        "PUT",
        "/collections/docs/entities",
        json!({"entities": [
            {"id": A, "payload": {"lang": "en"}, "vector": [0.0, 0.0], "vectors": {
                "title": [1.0, 0.0, 0.0], "terms": {"indices": [1, 5], "values": [1.0, 2.0]}}},
            {"id": B, "payload": {"lang": "de"}, "vector": [1.0, 0.0], "vectors": {
                "title": [0.0, 1.0, 0.0]}},
            {"id": C, "payload": {"lang": "en"}, "vector": [2.0, 0.0], "vectors": {
                "terms": {"indices": [5, 9], "values": [0.5, 1.0]}}},
        ]}),
    );
}

fn count(s: &TestServer, name: &str) -> Value {
    s.ok("POST", &format!("/collections/{name}/count"), json!({}))["count"].clone()
}

fn ids(hits: &Value) -> Vec<&str> {
    hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect()
}

#[test]
fn entities_carry_named_vectors_in_and_out() {
    let s = TestServer::start();
    docs(&s);
    let a = s.get(&format!("/collections/docs/entities/{A}"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body["vector"], json!([0.0, 0.0]));
    assert_eq!(
        a.body["vectors"],
        json!({"title": [1.0, 0.0, 0.0], "terms": {"indices": [1, 5], "values": [1.0, 2.0]}})
    );
    let b = s.get(&format!("/collections/docs/entities/{B}"));
    assert_eq!(b.body["vectors"], json!({"title": [0.0, 1.0, 0.0]}));
    let bare = s.get(&format!("/collections/docs/entities/{A}?with_vector=false"));
    assert!(bare.body.get("vectors").is_none() && bare.body.get("vector").is_none());
    let many = s.ok(
        "POST",
        "/collections/docs/entities/get",
        json!({"ids": [C, A]}),
    );
    assert_eq!(
        many["entities"][0]["vectors"]["terms"],
        json!({"indices": [5, 9], "values": [0.5, 1.0]})
    );
    let page = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"with_vector": true}),
    );
    assert_eq!(
        page["entities"][1]["vectors"]["title"],
        json!([0.0, 1.0, 0.0])
    );
    // A put replaces the whole entity: the named vectors it leaves out are gone.
    s.ok(
        "PUT",
        &format!("/collections/docs/entities/{A}"),
        json!({"vector": [0.0, 0.0], "vectors": {"title": [0.5, 0.5, 0.0]}}),
    );
    let a = s.get(&format!("/collections/docs/entities/{A}"));
    assert_eq!(a.body["vectors"], json!({"title": [0.5, 0.5, 0.0]}));
    s.ok(
        "PUT",
        &format!("/collections/docs/entities/{A}"),
        json!({"vector": [0.0, 0.0]}),
    );
    let a = s.get(&format!("/collections/docs/entities/{A}"));
    assert!(a.body.get("vectors").is_none(), "{}", a.body);
}

#[test]
fn searches_use_any_vector() {
    let s = TestServer::start();
    docs(&s);
    // The default vector, as before.
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [2.0, 0.0], "k": 3}),
    );
    assert_eq!(ids(&hits), [C, B, A]);
    // A named dense vector: only entities that have it.
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [0.0, 2.0, 0.0], "using": "title", "k": 3, "with_vector": true}),
    );
    assert_eq!(ids(&hits), [B, A]);
    assert_eq!(hits["hits"][0]["score"], 2.0);
    assert_eq!(hits["hits"][0]["vector"], json!([1.0, 0.0]));
    assert_eq!(hits["hits"][0]["vectors"]["title"], json!([0.0, 1.0, 0.0]));
    // A sparse vector: dot product over shared dimensions.
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"sparse": {"indices": [5, 9], "values": [1.0, 1.0]}, "using": "terms", "k": 3,
               "filter": {"must": [{"key": "lang", "match": {"value": "en"}}]}}),
    );
    assert_eq!(ids(&hits), [A, C]);
    assert_eq!(hits["hits"][0]["score"], 2.0);
    assert_eq!(hits["hits"][1]["score"], 1.5);
    // Like a stored entity, by the vector `using` names; the entity itself is left out.
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"like": C, "using": "terms", "k": 3}),
    );
    assert_eq!(ids(&hits), [A]);
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"like": A, "k": 1}),
    );
    assert_eq!(ids(&hits), [B]);
    // Batches and explain take the same bodies.
    let batch = s.ok(
        "POST",
        "/collections/docs/search/batch",
        json!({"searches": [
            {"vector": [1.0, 0.0, 0.0], "using": "title", "k": 1},
            {"sparse": {"indices": [1], "values": [1.0]}, "using": "terms", "k": 5}
        ]}),
    );
    assert_eq!(ids(&batch["results"][0]), [A]);
    assert_eq!(ids(&batch["results"][1]), [A]);
    let explained = s.ok(
        "POST",
        "/collections/docs/search/explain",
        json!({"like": C, "using": "terms", "k": 3}),
    );
    assert_eq!(explained["plan"], "sparse");
    assert_eq!(ids(&explained), [A]);
}

#[test]
fn malformed_vectors_and_queries_get_typed_errors_and_write_nothing() {
    let s = TestServer::start();
    docs(&s);
    let upsert = |entity: Value| {
        s.send(
            "PUT",
            "/collections/docs/entities",
            json!({"entities": [{"key": "ok", "vector": [0.0, 1.0]}, entity]}),
        )
    };
    for (entity, code, words) in [
        (
            json!({"key": "x", "vector": [0.0, 1.0], "vectors": {"image": [1.0]}}),
            "invalid_entity",
            "entities[1] (id",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0], "vectors": {"image": [1.0]}}),
            "invalid_entity",
            "no vector named \"image\"",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0], "vectors": {"terms": [1.0]}}),
            "invalid_entity",
            "\"terms\" is declared sparse, got a dense vector",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0], "vectors": {"title": [1.0]}}),
            "invalid_entity",
            "vector \"title\": vector has dimension 1, collection expects 3",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0],
                   "vectors": {"terms": {"indices": [5, 1], "values": [1.0, 1.0]}}}),
            "invalid_entity",
            "indices must strictly increase",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0],
                   "vectors": {"terms": {"indices": [1, 1], "values": [1.0, 1.0]}}}),
            "invalid_entity",
            "index 1 at position 1",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0],
                   "vectors": {"terms": {"indices": [1, 2], "values": [1.0]}}}),
            "invalid_entity",
            "2 indices but 1 values",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0], "vectors": {"terms": {"indices": [1]}}}),
            "invalid_body",
            "entities[1].vectors.terms: sparse vector: missing field `values`",
        ),
        (
            json!({"key": "x", "vector": [0.0, 1.0], "vectors": {"title": [1.0, "a", 0.0]}}),
            "invalid_body",
            "entities[1].vectors.title: component 1: expected a number",
        ),
        (
            json!({"key": "x", "vectors": {"title": [1.0, 0.0, 0.0]}}),
            "invalid_entity",
            "entities[1]: missing field `vector` (the collection's default vector, dimension 2)",
        ),
    ] {
        let a = upsert(entity.clone());
        assert_eq!((a.status, a.code()), (400, code), "{entity}: {}", a.body);
        assert!(a.message().contains(words), "{entity}: {}", a.message());
    }
    assert_eq!(count(&s, "docs"), 3, "nothing was written");
    let search = |body: Value| s.send("POST", "/collections/docs/search", body);
    for (body, status, code, words) in [
        (
            json!({"vector": [1.0, 0.0, 0.0], "using": "image"}),
            400,
            "invalid_query",
            "no vector named \"image\"",
        ),
        (
            json!({"vector": [1.0, 0.0], "using": "terms"}),
            400,
            "invalid_query",
            "vector \"terms\" is sparse; the query is dense",
        ),
        (
            json!({"sparse": {"indices": [1], "values": [1.0]}, "using": "title"}),
            400,
            "invalid_query",
            "vector \"title\" is dense; the query is sparse",
        ),
        (
            json!({"sparse": {"indices": [1], "values": [1.0]}}),
            400,
            "invalid_query",
            "name the sparse vector to search with `using`",
        ),
        (
            json!({"sparse": {"indices": [3, 2], "values": [1.0, 1.0]}, "using": "terms"}),
            400,
            "invalid_query",
            "strictly increase",
        ),
        (
            json!({"vector": [1.0, 0.0], "sparse": {"indices": [1], "values": [1.0]},
                   "using": "terms"}),
            400,
            "invalid_body",
            "exactly one of `vector` (dense), `sparse`, `text` (BM25) and `like`",
        ),
        (json!({"k": 3}), 400, "invalid_body", "exactly one of"),
        (
            json!({"like": "00000000-0000-0000-0000-0000000000ff"}),
            404,
            "entity_not_found",
            "like: entity 00000000-0000-0000-0000-0000000000ff not found",
        ),
        (
            json!({"like": B, "using": "terms"}),
            400,
            "invalid_query",
            "has no vector named \"terms\" to search like",
        ),
    ] {
        let a = search(body.clone());
        assert_eq!((a.status, a.code()), (status, code), "{body}: {}", a.body);
        assert!(a.message().contains(words), "{body}: {}", a.message());
    }
    let a = s.send(
        "POST",
        "/collections/docs/search/explain",
        json!({"like": B, "using": "terms"}),
    );
    assert_eq!((a.status, a.code()), (400, "invalid_query"), "{}", a.body);
}

#[test]
fn collections_without_a_default_vector() {
    let s = TestServer::start();
    let a = s.send("PUT", "/collections/bare", json!({}));
    assert_eq!((a.status, a.code()), (400, "invalid_config"), "{}", a.body);
    assert!(
        a.message().contains("at least one named vector"),
        "{}",
        a.message()
    );
    let a = s.send(
        "PUT",
        "/collections/named",
        json!({"vectors": {"text": {"type": "dense", "dim": 2}, "bm25": {"type": "sparse", "idf": true}}}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["config"]["dim"], 0);
    s.ok(
        "PUT",
        "/collections/named/entities",
        json!({"entities": [
            {"id": A, "vectors": {"text": [1.0, 0.0]}},
            {"id": B, "vectors": {"bm25": {"indices": [4], "values": [1.0]}}},
            {"id": C}
        ]}),
    );
    let a = s.get(&format!("/collections/named/entities/{A}"));
    assert!(
        a.body.get("vector").is_none(),
        "no default vector: {}",
        a.body
    );
    let a = s.send(
        "PUT",
        "/collections/named/entities",
        json!({"entities": [{"key": "x", "vector": [1.0, 0.0]}]}),
    );
    assert_eq!((a.status, a.code()), (400, "invalid_entity"), "{}", a.body);
    assert!(a.message().contains("no default vector"), "{}", a.message());
    let a = s.send(
        "POST",
        "/collections/named/search",
        json!({"vector": [1.0, 0.0]}),
    );
    assert_eq!((a.status, a.code()), (400, "invalid_query"), "{}", a.body);
    assert!(
        a.message()
            .contains("name the vector to search with `using`"),
        "{}",
        a.message()
    );
    let hits = s.ok(
        "POST",
        "/collections/named/search",
        json!({"vector": [1.0, 0.0], "using": "text"}),
    );
    assert_eq!(ids(&hits), [A]);
    assert_eq!(count(&s, "named"), 3);
}

#[test]
fn named_vectors_are_added_and_removed_online() {
    let s = TestServer::start();
    docs(&s);
    let path = "/collections/docs/vectors/image";
    let spec = json!({"type": "dense", "dim": 2, "metric": "cosine"});
    let a = s.send("PUT", path, spec.clone());
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.body["name"].clone(), a.body["changed"].clone()),
        (json!("image"), json!(true))
    );
    assert_eq!(a.body["config"]["vectors"]["image"]["dim"], 2);
    assert_eq!(s.send("PUT", path, spec).body["changed"], false);
    let a = s.send("PUT", path, json!({"type": "sparse"}));
    assert_eq!((a.status, a.code()), (409, "vector_exists"), "{}", a.body);
    for (body, words) in [
        (json!({"type": "dense", "dim": 0}), "dimension 0"),
        (
            json!({"type": "dense", "dim": 2, "index": {"kind": "hnsw", "m": 1}}),
            "hnsw m 1",
        ),
    ] {
        let a = s.send("PUT", "/collections/docs/vectors/other", body.clone());
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_config"),
            "{body}: {}",
            a.body
        );
        assert!(a.message().contains(words), "{body}: {}", a.message());
    }
    let a = s.send(
        "PUT",
        "/collections/docs/vectors/x",
        json!({"type": "dense"}),
    );
    assert_eq!((a.status, a.code()), (400, "invalid_body"), "{}", a.body);
    assert!(
        a.message().contains("missing field `dim`"),
        "{}",
        a.message()
    );
    let a = s.send(
        "PUT",
        "/collections/docs/vectors/a%01b",
        json!({"type": "sparse"}),
    );
    assert_eq!((a.status, a.code()), (400, "invalid_config"), "{}", a.body);
    // The new vector is written and searched like the declared ones.
    s.ok(
        "PUT",
        &format!("/collections/docs/entities/{B}"),
        json!({"vector": [1.0, 0.0], "vectors": {"image": [0.0, 3.0]}}),
    );
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [0.0, 1.0], "using": "image"}),
    );
    assert_eq!(ids(&hits), [B]);
    // Removed: gone from the config, the entities and searches.
    let a = s.send("DELETE", "/collections/docs/vectors/image", json!(null));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["config"]["vectors"].get("image").is_none());
    let b = s.get(&format!("/collections/docs/entities/{B}"));
    assert!(b.body.get("vectors").is_none(), "{}", b.body);
    let a = s.send(
        "POST",
        "/collections/docs/search",
        json!({"vector": [0.0, 1.0], "using": "image"}),
    );
    assert_eq!((a.status, a.code()), (400, "invalid_query"));
    let a = s.raw("DELETE", "/collections/docs/vectors/image", None, &[]);
    assert_eq!(
        (a.status, a.code()),
        (404, "vector_not_found"),
        "{}",
        a.body
    );
    let a = s.raw("DELETE", "/collections/nope/vectors/image", None, &[]);
    assert_eq!((a.status, a.code()), (404, "collection_not_found"));
    // The last vector of a collection without a default one stays.
    s.ok(
        "PUT",
        "/collections/solo",
        json!({"vectors": {"only": {"type": "sparse"}}}),
    );
    let a = s.raw("DELETE", "/collections/solo/vectors/only", None, &[]);
    assert_eq!((a.status, a.code()), (400, "invalid_config"), "{}", a.body);
}

#[test]
fn quantization_changes_online() {
    let s = TestServer::start();
    docs(&s);
    // The default vector: codes on, the same again (retrains, nothing changed), then off.
    let set = |body: Value| s.send("PUT", "/collections/docs/quantization", body);
    let out = set(json!({"quantization": "sq8"}));
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.body["name"], "");
    assert_eq!(out.body["changed"], true);
    assert_eq!(out.body["config"]["quantization"], "sq8");
    let again = set(json!({"vector": "", "quantization": "sq8"}));
    assert_eq!(again.body["changed"], false, "{}", again.body);
    // Searches answer as before (three entities: the walk is below the training size).
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [0.1, 0.0], "k": 3}),
    );
    assert_eq!(ids(&hits), [A, B, C]);
    let off = set(json!({"quantization": "none"}));
    assert_eq!(off.body["changed"], true);
    assert!(
        off.body["config"].get("quantization").is_none(),
        "{}",
        off.body
    );

    // Bad changes: typed errors naming the problem, and the config stays as it was.
    let before = s.ok("GET", "/collections/docs", json!(null));
    for (body, needle) in [
        (json!({"vector": "title", "quantization": "sq8"}), "exact"),
        (json!({"vector": "terms", "quantization": "sq8"}), "sparse"),
        (json!({"vector": "nope", "quantization": "rq2"}), "nope"),
    ] {
        let bad = set(body.clone());
        assert_eq!(bad.status, 400, "{body}: {}", bad.body);
        assert_eq!(bad.body["error"]["code"], "invalid_config", "{body}");
        let msg = bad.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let wrong = set(json!({"quantization": "rq3"}));
    assert!(wrong.status == 400 || wrong.status == 422, "{}", wrong.body);
    assert_eq!(s.ok("GET", "/collections/docs", json!(null)), before);
    let missing = s.send(
        "PUT",
        "/collections/nope/quantization",
        json!({"quantization": "sq8"}),
    );
    assert_eq!(missing.status, 404);
}
