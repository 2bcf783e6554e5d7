//! End-to-end: the real server on a loopback port, every route through an HTTP client, with
//! statuses and error codes asserted.

mod common;

use common::TestServer;
use hybridb_server::{ApiKeys, ServerConfig};
use serde_json::{Value, json};

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";

fn docs(s: &TestServer) {
    let created = s.send(
        "PUT",
        "/collections/docs",
        json!({"dim": 3, "metric": "cosine", "index": {"kind": "hnsw", "m": 8},
               "payload_indexes": {"lang": "keyword"}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["name"], "docs");
    assert_eq!(created.body["config"]["index"]["m"], 8);
    assert_eq!(created.body["config"]["index"]["ef_construction"], 200);
    s.ok(
        "PUT",
        "/collections/docs/entities",
        json!({"entities": [
            {"id": A, "payload": {"lang": "en", "title": "a"}, "vector": [1.0, 0.0, 0.0]},
            {"id": B, "payload": {"lang": "de"}, "vector": [0.0, 1.0, 0.0]},
            {"key": "c", "payload": {"lang": "en"}, "vector": [0.0, 0.0, 1.0]},
        ]}),
    );
}

#[test]
fn collections_entities_and_search() {
    let s = TestServer::start();
    docs(&s);
    // Metadata: set at creation, merged (null removes), shown in the config; too big refused.
    let made = s.send(
        "PUT",
        "/collections/meta",
        json!({"dim": 2, "metadata": {"owner": "search", "v": 1}}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(
        made.body["config"]["metadata"],
        json!({"owner": "search", "v": 1})
    );
    let merged = s.send(
        "PATCH",
        "/collections/meta/metadata",
        json!({"owner": null, "model": "minilm"}),
    );
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body, json!({"v": 1, "model": "minilm"}));
    let got = s.get("/collections/meta");
    assert_eq!(
        got.body["config"]["metadata"],
        json!({"v": 1, "model": "minilm"})
    );
    let big = s.send(
        "PATCH",
        "/collections/meta/metadata",
        json!({"blob": "x".repeat(70_000)}),
    );
    assert_eq!((big.status, big.code()), (400, "invalid_config"));
    assert_eq!(
        s.send("DELETE", "/collections/meta", json!(null)).status,
        200
    );
    // Collections.
    let list = s.get("/collections");
    assert_eq!(list.status, 200);
    assert_eq!(list.body["collections"][0]["name"], "docs");
    let one = s.get("/collections/docs");
    assert_eq!(one.body["count"], 3);
    assert_eq!(one.body["indexed"], 3);
    assert_eq!(one.body["unlinked"], 0);
    assert_eq!(one.body["config"]["metric"], "cosine");
    // Writes: a generated id and the version bump.
    let w = s.ok(
        "PUT",
        "/collections/docs/entities",
        json!({"entities": [{"vector": [1.0, 1.0, 0.0]}, {"id": A, "payload": {"lang": "en", "title": "a2"}, "vector": [1.0, 0.0, 0.0]}]}),
    );
    let generated = w["written"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(w["written"][1]["version"], 2);
    // One entity under its id, with optimistic concurrency.
    let put = |body: Value| s.send("PUT", &format!("/collections/docs/entities/{B}"), body);
    let a = put(json!({"vector": [0.0, 1.0, 0.0], "payload": {"lang": "de"}, "if_version": 1}));
    assert_eq!(
        (a.status, a.body["version"].clone()),
        (200, json!(2)),
        "{}",
        a.body
    );
    let a = put(json!({"vector": [0.0, 1.0, 0.0], "if_version": 1}));
    assert_eq!((a.status, a.code()), (409, "version_conflict"));
    assert!(a.message().contains("current version 2"), "{}", a.message());
    let a = put(json!({"vector": [0.0, 1.0], "if_version": 2}));
    assert_eq!((a.status, a.code()), (400, "invalid_entity"));
    let a = s.send(
        "PUT",
        "/collections/docs/entities/00000000-0000-0000-0000-0000000000ff",
        json!({"vector": [1.0, 1.0, 1.0], "if_version": 0}),
    );
    assert_eq!((a.status, a.body["version"].clone()), (200, json!(1)));
    let a = s.send(
        "PUT",
        "/collections/docs/entities/00000000-0000-0000-0000-0000000000ff",
        json!({"vector": [1.0, 1.0, 1.0], "if_version": 0}),
    );
    assert_eq!((a.status, a.code()), (409, "version_conflict"));
    s.ok(
        "DELETE",
        "/collections/docs/entities/00000000-0000-0000-0000-0000000000ff",
        json!({}),
    );
    // Get one, with and without vector.
    let e = s.get(&format!("/collections/docs/entities/{A}"));
    assert_eq!(e.status, 200);
    assert_eq!(e.body["payload"]["title"], "a2");
    assert_eq!(e.body["vector"], json!([1.0, 0.0, 0.0]));
    assert_eq!(e.body["version"], 2);
    let e = s.get(&format!("/collections/docs/entities/{A}?with_vector=false"));
    assert!(e.body.get("vector").is_none());
    // Get many, in order, null for absent.
    let many = s.ok(
        "POST",
        "/collections/docs/entities/get",
        json!({"ids": [B, "00000000-0000-0000-0000-000000000099", A], "with_vector": false}),
    );
    assert_eq!(many["entities"][0]["id"], B);
    assert_eq!(many["entities"][1], Value::Null);
    assert_eq!(many["entities"][2]["id"], A);
    // Count and scroll in two pages.
    assert_eq!(
        s.ok("POST", "/collections/docs/count", json!({}))["count"],
        4
    );
    let empty_body = s.raw("POST", "/collections/docs/count", None, &[]);
    assert_eq!(empty_body.body["count"], 4);
    let p1 = s.ok("POST", "/collections/docs/scroll", json!({"limit": 3}));
    assert_eq!(p1["entities"].as_array().unwrap().len(), 3);
    assert!(p1["entities"][0].get("vector").is_none());
    let next = p1["next"].as_str().unwrap();
    let p2 = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"after": next, "limit": 3, "with_vector": true}),
    );
    assert_eq!(p2["entities"].as_array().unwrap().len(), 1);
    assert_eq!(p2["next"], Value::Null);
    assert!(p2["entities"][0]["vector"].is_array());
    // Search.
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [0.9, 0.1, 0.0], "k": 2, "with_payload": true, "ef": 32, "consistency": "strong"}),
    );
    assert_eq!(hits["hits"][0]["id"], A);
    assert_eq!(hits["hits"][0]["payload"]["lang"], "en");
    assert!(hits["hits"][0].get("vector").is_none());
    assert!(hits["hits"][0]["score"].as_f64().unwrap() > 0.9);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 2);
    let batch = s.ok(
        "POST",
        "/collections/docs/search/batch",
        json!({"searches": [
            {"vector": [0.0, 1.0, 0.0], "k": 1, "with_vector": true},
            {"vector": [0.0, 0.0, 1.0], "k": 1, "consistency": "eventual"}]}),
    );
    assert_eq!(batch["results"][0]["hits"][0]["id"], B);
    assert_eq!(
        batch["results"][0]["hits"][0]["vector"],
        json!([0.0, 1.0, 0.0])
    );
    assert_eq!(batch["results"].as_array().unwrap().len(), 2);
    // Payload indexes: declare, again (no change), explain a filtered search, a type clash.
    let pi = s.ok(
        "PUT",
        "/collections/docs/payload-indexes/title",
        json!({"kind": "keyword"}),
    );
    assert_eq!(
        (pi["field"].as_str(), pi["changed"].as_bool()),
        (Some("title"), Some(true))
    );
    let pi = s.ok(
        "PUT",
        "/collections/docs/payload-indexes/title",
        json!({"kind": "keyword"}),
    );
    assert_eq!(pi["changed"], false);
    let clash = s.send(
        "PUT",
        "/collections/docs/payload-indexes/title",
        json!({"kind": "integer"}),
    );
    assert_eq!(
        (clash.status, clash.code()),
        (400, "invalid_config"),
        "{}",
        clash.body
    );
    let ex = s.ok(
        "POST",
        "/collections/docs/search/explain",
        json!({"vector": [1.0, 0.0, 0.0], "k": 2, "filter": {"must": [{"key": "title", "match": {"value": "a2"}}]}}),
    );
    assert_eq!(ex["hits"][0]["id"], A);
    assert_eq!(ex["matching"], 1);
    assert!(
        ["exact_scan", "filtered_graph"].contains(&ex["plan"].as_str().unwrap()),
        "{ex}"
    );
    let pi = s.raw(
        "DELETE",
        "/collections/docs/payload-indexes/title",
        None,
        &[],
    );
    assert_eq!(pi.body["changed"], true);
    // Filters: search, count, scroll; a score threshold.
    let de = json!({"must": [{"key": "lang", "match": {"value": "de"}}]});
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [1.0, 0.0, 0.0], "k": 3, "filter": de, "with_payload": true}),
    );
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1);
    assert_eq!(hits["hits"][0]["id"], B);
    let en = json!({"must": [{"key": "lang", "match": {"value": "en"}}]});
    let counted = s.ok("POST", "/collections/docs/count", json!({"filter": en}));
    assert_eq!(counted["count"], 2);
    let page = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"filter": {"must_not": [{"key": "lang", "match": {"any": ["en", "de"]}}]}}),
    );
    assert_eq!(page["entities"].as_array().unwrap().len(), 1);
    assert_eq!(page["entities"][0]["id"], generated);
    let close = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [1.0, 0.0, 0.0], "k": 4, "score_threshold": 0.9}),
    );
    assert_eq!(close["hits"].as_array().unwrap().len(), 1);
    let batch = s.ok(
        "POST",
        "/collections/docs/search/batch",
        json!({"searches": [{"vector": [1.0, 0.0, 0.0], "k": 1, "filter": de}, {"vector": [1.0, 0.0, 0.0], "k": 1}]}),
    );
    assert_eq!(batch["results"][0]["hits"][0]["id"], B);
    assert_eq!(batch["results"][1]["hits"][0]["id"], A);
    // Deletes.
    let d = s.ok(
        "POST",
        "/collections/docs/entities/delete",
        json!({"ids": [B, generated, "00000000-0000-0000-0000-000000000099"]}),
    );
    assert_eq!(d["deleted"], 2);
    let d = s.send(
        "DELETE",
        &format!("/collections/docs/entities/{A}"),
        json!({}),
    );
    assert_eq!(d.body["deleted"], 1);
    let d = s.raw(
        "DELETE",
        &format!("/collections/docs/entities/{A}"),
        None,
        &[],
    );
    assert_eq!(d.body["deleted"], 0);
    assert_eq!(
        s.ok("POST", "/collections/docs/count", json!({}))["count"],
        1
    );
    let gone = s.get(&format!("/collections/docs/entities/{A}"));
    assert_eq!((gone.status, gone.code()), (404, "entity_not_found"));
    // Delete by filter (what is left, key "c", is "en").
    let d = s.ok(
        "POST",
        "/collections/docs/entities/delete",
        json!({"filter": en}),
    );
    assert_eq!(d["deleted"], 1);
    assert_eq!(
        s.ok("POST", "/collections/docs/count", json!({}))["count"],
        0
    );
    // Drop.
    let dropped = s.raw("DELETE", "/collections/docs", None, &[]);
    assert_eq!(dropped.status, 200);
    assert_eq!(dropped.body["dropped"], true);
    let after = s.get("/collections/docs");
    assert_eq!((after.status, after.code()), (404, "collection_not_found"));
}

/// (method, path, body, expected status, expected code, text the message must hold)
type Case<'a> = (&'a str, &'a str, &'a [u8], u16, &'a str, &'a str);

#[test]
fn malformed_requests_get_codes_naming_the_field() {
    let s = TestServer::with_config(|c| c.max_body_bytes = 64 << 10);
    docs(&s);
    let big = format!(
        r#"{{"entities":[{{"vector":[{}1]}}]}}"#,
        "1,".repeat(40_000)
    );
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let cases: Vec<Case> = vec![
        ("PUT", "/collections/docs/entities", b"{\"entities\":[", 400, "invalid_json", "malformed JSON"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[1,"x",3]}]}"#, 400, "invalid_body", "entities[0].vector[1]"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[1,2,3],"payloadd":{}}]}"#, 400, "invalid_body", "payloadd"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[1,2,3]},{"vector":[1,2]}]}"#, 400, "invalid_entity", "entities[1]"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[0,0,0]}]}"#, 400, "invalid_entity", "zero vector"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[1,2,3],"payload":[1]}]}"#, 400, "invalid_entity", "JSON object"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[1,2,3],"id":"nope"}]}"#, 400, "invalid_body", "entities[0].id"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"vector":[1,2,3],"id":"00000000-0000-0000-0000-00000000000a","key":"k"}]}"#, 400, "invalid_entity", "not both"),
        ("PUT", "/collections/docs/entities", big.as_bytes(), 413, "body_too_large", "size limit"),
        ("PUT", "/collections/docs/entities", deep.as_bytes(), 400, "json_too_deep", "64"),
        ("PUT", "/collections/nope/entities", br#"{"entities":[]}"#, 404, "collection_not_found", "nope"),
        ("PUT", "/collections/docs", br#"{"dim":3}"#, 409, "collection_exists", "docs"),
        ("PUT", "/collections/bad%20name", br#"{"dim":3}"#, 400, "invalid_collection_name", "bad name"),
        ("PUT", "/collections/x", br#"{"dim":0}"#, 400, "invalid_config", "dimension"),
        ("PUT", "/collections/x", br#"{"dim":3,"metric":"hamming"}"#, 400, "invalid_body", "metric"),
        ("PUT", "/collections/x", br#"{"dim":3,"index":{"kind":"hnsw","m":1}}"#, 400, "invalid_config", "m 1"),
        ("GET", "/collections/docs/entities/not-a-uuid", b"", 400, "invalid_id", "not-a-uuid"),
        ("GET", "/collections/docs/entities/00000000-0000-0000-0000-00000000000a?with_vector=maybe", b"", 400, "invalid_query_param", "with_vector"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"k":0}"#, 400, "invalid_query", "k must be"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"k":100000}"#, 400, "invalid_query", "exceeds"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0],"k":1}"#, 400, "invalid_query", "dimension"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"ef":1000000}"#, 400, "invalid_query", "ef"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"top_k":3}"#, 400, "invalid_body", "top_k"),
        ("POST", "/collections/docs/search", br#"{"k":3}"#, 400, "invalid_body", "vector"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"filter":{"must":[{"key":"lang","range":"x"}]}}"#, 400, "invalid_filter", "filter"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"filter":{"bogus":[]}}"#, 400, "invalid_filter", "bogus"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"filter":{"must":[{"key":"lang","range":{"gte":1}}]}}"#, 400, "invalid_filter", "keyword"),
        ("POST", "/collections/docs/search", br#"{"vector":[1,0,0],"score_threshold":"high"}"#, 400, "invalid_body", "score_threshold"),
        ("POST", "/collections/docs/search/batch", br#"{"searches":[{"vector":[1,0,0]},{"vector":[1,0]}]}"#, 400, "invalid_query", "searches[1]"),
        ("POST", "/collections/docs/search/batch", br#"{"searches":[{"vector":[1,0,0]},{"vector":[1,0,0],"filter":{"must":7}}]}"#, 400, "invalid_filter", "searches[1].filter"),
        ("POST", "/collections/docs/count", br#"{"filter":{"must":[{"key":"lang","match":{}}]}}"#, 400, "invalid_filter", "filter"),
        ("POST", "/collections/docs/scroll", br#"{"filter":{"must":[{"key":"lang","match":{"value":1.5}}]}}"#, 400, "invalid_filter", "filter"),
        ("POST", "/collections/docs/scroll", br#"{"limit":0}"#, 400, "invalid_query", "limit: invalid query"),
        ("POST", "/collections/nope/scroll", br#"{}"#, 404, "collection_not_found", "collection \"nope\""),
        ("POST", "/collections/docs/entities/delete", br#"{"ids":["00000000-0000-0000-0000-00000000000a","00000000-0000-0000-0000-00000000000a"]}"#, 400, "invalid_entity", "ids[1]"),
        ("PUT", "/collections/docs/entities", br#"{"entities":[{"key":"k","vector":[1,2,3]},{"key":"k","vector":[1,2,3]}]}"#, 400, "invalid_entity", "entities[1]"),
        ("POST", "/collections/docs/scroll", br#"{"after":"zz"}"#, 400, "invalid_body", "after"),
        ("POST", "/collections/docs/entities/delete", br#"{}"#, 400, "invalid_body", "exactly one"),
        ("POST", "/collections/docs/entities/delete", br#"{"ids":[],"filter":{"must":[]}}"#, 400, "invalid_body", "exactly one"),
        ("POST", "/collections/docs/entities/delete", br#"{"filter":{"must":[{"has_id":["nope"]}]}}"#, 400, "invalid_filter", "filter"),
        ("POST", "/collections/docs/entities/delete", br#"{"ids":["x"]}"#, 400, "invalid_body", "ids[0]"),
        ("GET", "/changes?since=abc", b"", 400, "invalid_query_param", "since"),
        ("GET", "/changes?limit=0", b"", 400, "invalid_query_param", "limit"),
        ("GET", "/changes/stream?since=-1", b"", 400, "invalid_query_param", "since"),
        ("POST", "/backup", br#"{"path":"../escape.redb"}"#, 400, "invalid_backup_path", "path"),
        ("POST", "/backup", br#"{"path":"/abs.redb"}"#, 400, "invalid_backup_path", "path"),
        ("POST", "/verify", br#"{"repair":"yes"}"#, 400, "invalid_body", "repair"),
        ("GET", "/no/such/route", b"", 404, "not_found", "/no/such/route"),
        ("PATCH", "/collections/docs", b"", 405, "method_not_allowed", "PATCH"),
    ];
    for (method, path, body, status, code, needle) in cases {
        let body = (!body.is_empty()).then_some(body);
        let a = s.raw(method, path, body, &[]);
        assert_eq!(
            (a.status, a.code()),
            (status, code),
            "{method} {path}: {}",
            a.body
        );
        assert!(
            a.message().contains(needle),
            "{method} {path}: message {:?} lacks {needle:?}",
            a.message()
        );
    }
    // A body without a JSON content type.
    let a = s.raw(
        "POST",
        "/collections/docs/count",
        Some(b"{}"),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!((a.status, a.code()), (415, "unsupported_media_type"));
    // Even empty, a form post is refused (no cross-site form reaches the API).
    let a = s.raw(
        "POST",
        "/verify",
        Some(b""),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!((a.status, a.code()), (415, "unsupported_media_type"));
    // Nothing of the refused batches was written.
    assert_eq!(
        s.ok("POST", "/collections/docs/count", json!({}))["count"],
        3
    );
}

#[test]
fn backup_is_refused_without_a_folder() {
    let s = TestServer::with_config(|c| c.backup_dir = None);
    let a = s.send("POST", "/backup", json!({"path": "b.redb"}));
    assert_eq!((a.status, a.code()), (400, "backup_disabled"));
}

#[test]
fn api_keys() {
    let s = TestServer::with_config(|c| {
        c.api_keys = ApiKeys {
            read_write: vec!["rw-secret".into()],
            read_only: vec!["ro-secret".into()],
        }
    });
    let rw = [("authorization", "Bearer rw-secret")];
    let ro = [("authorization", "Bearer ro-secret")];
    let bad = [("authorization", "Bearer rw-secreT")];
    let basic = [("authorization", "Basic cnctc2VjcmV0")];
    // Open routes.
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(s.get("/readyz").status, 200);
    // No key, a wrong key, a wrong scheme.
    for headers in [&[][..], &bad[..], &basic[..]] {
        let a = s.raw("GET", "/collections", None, headers);
        assert_eq!((a.status, a.code()), (401, "unauthorized"), "{headers:?}");
        assert_eq!(a.headers["www-authenticate"], "Bearer");
    }
    let a = s.raw("GET", "/metrics", None, &[]);
    assert_eq!(a.status, 401);
    // The read-write key does everything.
    let create = br#"{"dim":2,"metric":"l2","index":{"kind":"exact"}}"#;
    let a = s.raw("PUT", "/collections/k", Some(create), &rw);
    assert_eq!(a.status, 201, "{}", a.body);
    let up = br#"{"entities":[{"key":"x","vector":[1,2]}]}"#;
    assert_eq!(
        s.raw("PUT", "/collections/k/entities", Some(up), &rw)
            .status,
        200
    );
    // The read-only key reads and searches, but does not write.
    assert_eq!(s.raw("GET", "/collections/k", None, &ro).status, 200);
    let search = br#"{"vector":[1,2],"k":1}"#;
    let a = s.raw("POST", "/collections/k/search", Some(search), &ro);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["hits"][0]["score"], 0.0);
    assert_eq!(
        s.raw("POST", "/collections/k/count", Some(b"{}"), &ro)
            .status,
        200
    );
    for (method, path, body) in [
        ("PUT", "/collections/k/entities", &up[..]),
        ("PUT", "/collections/k2", &create[..]),
        ("DELETE", "/collections/k", &b""[..]),
        (
            "POST",
            "/collections/k/entities/delete",
            &br#"{"ids":[]}"#[..],
        ),
        ("POST", "/backup", &br#"{"path":"x"}"#[..]),
        ("POST", "/verify", &b""[..]),
        (
            "PUT",
            "/collections/k/payload-indexes/x",
            &br#"{"kind":"keyword"}"#[..],
        ),
    ] {
        let body = (!body.is_empty()).then_some(body);
        let a = s.raw(method, path, body, &ro);
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{method} {path}");
    }
    assert_eq!(s.raw("GET", "/metrics", None, &ro).status, 200);
    // Nothing the read-only key tried was done.
    assert_eq!(s.raw("GET", "/collections/k", None, &rw).body["count"], 1);
}

#[test]
fn changes_pages_and_live_stream() {
    let s = TestServer::start();
    docs(&s);
    let page = s.get("/changes?since=0&limit=2");
    assert_eq!(page.status, 200);
    let events = page.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["kind"], "collection_created");
    assert_eq!(events[1]["kind"], "entity_created");
    assert_eq!(events[1]["id"], A);
    assert_eq!(page.body["next_since"], 2);
    let rest = s.get("/changes?since=2");
    assert_eq!(rest.body["events"].as_array().unwrap().len(), 2);
    assert_eq!(rest.body["next_since"], 4);
    // The stream: stored events first, then a live one written while it is open.
    let got = s.read_stream("?since=2", &[], 3, || {
        s.ok(
            "PUT",
            "/collections/docs/entities",
            json!({"entities": [{"id": B, "payload": {"lang": "fr"}, "vector": [0.0, 1.0, 0.0]}]}),
        );
    });
    let seqs: Vec<u64> = got.iter().map(|e| e.2["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    assert!(got.iter().all(|e| e.0 == "change"));
    assert_eq!(got[2].1.as_deref(), Some("5"));
    assert_eq!(got[2].2["kind"], "state_modified");
    assert_eq!(got[2].2["payload_changed"], true);
    // Resuming with Last-Event-ID.
    let resumed = s.read_stream("", &[("last-event-id", "4")], 1, || {});
    assert_eq!(resumed[0].2["seq"], 5);
    // A reconnecting EventSource sends its original URL too: the header wins.
    let resumed = s.read_stream("?since=0", &[("last-event-id", "4")], 1, || {});
    assert_eq!(resumed[0].2["seq"], 5);
    // Without `since`: only new events.
    let live = s.read_stream("", &[], 1, || {
        s.ok("DELETE", "/collections/docs", json!({}));
    });
    assert_eq!(live[0].2["kind"], "collection_dropped");
    assert_eq!(live[0].2["seq"], 6);
}

#[test]
fn admin_routes() {
    let s = TestServer::start();
    docs(&s);
    assert_eq!(s.get("/healthz").body["status"], "ok");
    assert_eq!(s.get("/readyz").body["status"], "ready");
    // Backup, then the same name again.
    let b = s.ok("POST", "/backup", json!({"path": "nightly/one.redb"}));
    assert_eq!(b["entities"], 3);
    assert_eq!(b["seq"], 4);
    assert!(s.dir.path().join("backups/nightly/one.redb").is_file());
    let again = s.send("POST", "/backup", json!({"path": "nightly/one.redb"}));
    assert_eq!((again.status, again.code()), (409, "backup_exists"));
    // The backup opens and holds the data.
    {
        let copy = hybridb::Database::open(s.dir.path().join("backups/nightly/one.redb")).unwrap();
        assert_eq!(copy.collection("docs").unwrap().count().unwrap(), 3);
    }
    // Verify, plain and with repair.
    let v = s.raw("POST", "/verify", None, &[]);
    assert_eq!(v.status, 200);
    assert_eq!(v.body["clean"], true);
    assert_eq!(v.body["collections"][0]["entities"], 3);
    let v = s.ok("POST", "/verify", json!({"repair": true}));
    assert_eq!(v["clean"], true);
    // Stats.
    let st = s.get("/stats");
    assert_eq!(st.status, 200);
    assert_eq!(st.body["last_seq"], 4);
    assert_eq!(st.body["collections"][0]["count"], 3);
    assert_eq!(st.body["collections"][0]["unlinked"], 0);
    assert!(st.body["writer"]["items"].as_u64().unwrap() >= 3);
    // A read through the record cache, so this test makes the cache series itself (it used
    // to rely on other tests of the process having read first, and failed when it ran first).
    assert_eq!(
        s.get(&format!("/collections/docs/entities/{A}")).status,
        200
    );
    // Metrics: counters from the requests above and the database's numbers. The recorder is
    // process-wide and other tests run servers in this process: values are exact only for
    // series that no other test touches (POST /backup with 200 or 409).
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = m.body.as_str().unwrap();
    for needle in [
        r#"hybridb_http_requests_total{route="/backup",method="POST",status="200"} 1"#,
        r#"hybridb_http_requests_total{route="/backup",method="POST",status="409"} 1"#,
        r#"hybridb_collection_entities{collection="docs"} "#,
        r#"hybridb_index_entities{collection="docs"} "#,
        r#"hybridb_operations_total{collection="docs",op="upsert_batch",outcome="ok"} "#,
        r#"hybridb_http_request_duration_seconds_bucket{route="/backup",method="POST",le="#,
        r#"hybridb_cache_lookups_total{level="#,
        "hybridb_last_seq ",
        "hybridb_writer_items_total ",
        "hybridb_commit_duration_seconds_count ",
        "# TYPE hybridb_http_requests_total counter",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    // The OpenAPI document lists every route.
    let doc = s.get("/openapi.json");
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/collections", &["get"][..]),
        ("/collections/{name}", &["put", "get", "delete"]),
        ("/collections/{name}/entities", &["put"]),
        (
            "/collections/{name}/entities/{id}",
            &["get", "put", "delete"],
        ),
        ("/collections/{name}/entities/get", &["post"]),
        ("/collections/{name}/entities/delete", &["post"]),
        ("/collections/{name}/entities/payload", &["post"]),
        ("/collections/{name}/scroll", &["post"]),
        ("/collections/{name}/count", &["post"]),
        ("/collections/{name}/search", &["post"]),
        ("/collections/{name}/search/batch", &["post"]),
        ("/collections/{name}/search/explain", &["post"]),
        (
            "/collections/{name}/payload-indexes/{field}",
            &["put", "delete"],
        ),
        ("/collections/{name}/query", &["post"]),
        ("/collections/{name}/query/batch", &["post"]),
        ("/collections/{name}/query/explain", &["post"]),
        (
            "/collections/{name}/text-indexes/{field}",
            &["put", "delete"],
        ),
        ("/aliases", &["get"]),
        ("/aliases/{alias}", &["put", "delete"]),
        ("/changes", &["get"]),
        ("/changes/stream", &["get"]),
        ("/backup", &["post"]),
        ("/verify", &["post"]),
        ("/stats", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
    ] {
        for m in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*m)).is_some(),
                "openapi lacks {m} {path}"
            );
        }
    }
    // The native routes, and the Qdrant-compatible ones under `/qdrant` (`tests/openapi.rs`
    // checks both against what is served).
    let native = |paths: &serde_json::Map<String, serde_json::Value>| {
        paths.keys().filter(|p| !p.starts_with("/qdrant")).count()
    };
    assert_eq!(native(paths), 31);
    assert_eq!(paths.len() - native(paths), 27);
    assert!(doc.body["components"]["schemas"]["SearchBody"].is_object());
    assert!(doc.body["components"]["securitySchemes"]["api_key"].is_object());
    assert_eq!(
        native(
            serde_json::to_value(hybridb_server::openapi()).unwrap()["paths"]
                .as_object()
                .unwrap()
        ),
        31
    );
}

#[test]
fn small_limits_are_enforced() {
    use std::time::Duration;
    // One slot and a tiny time limit: a slow stream handshake is not needed; a request that
    // waits for the writer long enough would time out. Here: every route still answers.
    let s = TestServer::with_config(|c: &mut ServerConfig| {
        c.max_concurrent_requests = 1;
        c.request_timeout = Duration::from_secs(5);
        c.max_json_depth = 3;
    });
    let a = s.send("PUT", "/collections/d", json!({"dim": 2}));
    assert_eq!(a.status, 201);
    let a = s.send(
        "PUT",
        "/collections/d/entities",
        json!({"entities": [{"vector": [1, 2], "payload": {"a": {"b": 1}}}]}),
    );
    assert_eq!((a.status, a.code()), (400, "json_too_deep"));
}

#[test]
fn openapi_query_parameters_are_in_the_query() {
    let doc = serde_json::to_value(hybridb_server::openapi()).unwrap();
    for (path, name) in [
        ("/collections/{name}/entities/{id}", "with_vector"),
        ("/changes", "since"),
        ("/changes", "limit"),
        ("/changes/stream", "since"),
    ] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let p = params.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(p["in"], "query", "{path} {name}");
        assert_ne!(p["required"], true, "{path} {name}");
    }
    // Fields with defaults are optional in the schemas.
    let schemas = &doc["components"]["schemas"];
    for (schema, required) in [
        ("SearchBody", Value::Null),
        ("CreateCollection", Value::Null),
        ("EntityIn", Value::Null),
        ("PutEntityBody", Value::Null),
        ("ScrollBody", Value::Null),
    ] {
        assert_eq!(schemas[schema]["required"], required, "{schema}");
    }
}

#[test]
fn aliases_resolve_in_every_collection_route_and_repoint_atomically() {
    let s = TestServer::start();
    for (name, dim) in [("v1", 2), ("v2", 3)] {
        s.ok(
            "PUT",
            &format!("/collections/{name}"),
            json!({"dim": dim, "metric": "l2"}),
        );
    }
    let put = s.ok("PUT", "/aliases/docs", json!({"collection": "v1"}));
    assert_eq!(put["collection"], "v1");
    assert!(put.get("previous").is_none());
    s.ok(
        "PUT",
        "/collections/docs/entities",
        json!({"entities": [{"id": A, "payload": {"v": 1}, "vector": [1.0, 0.0]}]}),
    );
    assert_eq!(s.get("/collections/docs").body["name"], "v1");
    assert_eq!(s.ok("POST", "/collections/v1/count", json!({}))["count"], 1);
    let hits = s.ok(
        "POST",
        "/collections/docs/search",
        json!({"vector": [1.0, 0.0], "k": 1}),
    );
    assert_eq!(hits["hits"][0]["id"], A, "{hits}");
    let put = s.ok("PUT", "/aliases/docs", json!({"collection": "v2"}));
    assert_eq!(put["previous"], "v1");
    assert_eq!(s.get("/collections/docs").body["config"]["dim"], 3);
    assert_eq!(
        s.ok("POST", "/collections/docs/count", json!({}))["count"],
        0
    );
    assert_eq!(
        s.get("/aliases").body,
        json!({"aliases": [{"alias": "docs", "collection": "v2"}]})
    );
    // Typed conflicts.
    let a = s.send("PUT", "/aliases/v1", json!({"collection": "v2"}));
    assert_eq!((a.status, a.code()), (409, "name_is_collection"));
    let a = s.send(
        "PUT",
        "/collections/docs",
        json!({"dim": 2, "metric": "l2"}),
    );
    assert_eq!((a.status, a.code()), (409, "name_is_alias"));
    let a = s.raw("DELETE", "/collections/v2", None, &[]);
    assert_eq!((a.status, a.code()), (409, "collection_has_aliases"));
    let a = s.send("PUT", "/aliases/x", json!({"collection": "nope"}));
    assert_eq!((a.status, a.code()), (404, "collection_not_found"));
    let a = s.raw("DELETE", "/aliases/nope", None, &[]);
    assert_eq!((a.status, a.code()), (404, "alias_not_found"));
    let d = s.raw("DELETE", "/aliases/docs", None, &[]);
    assert_eq!(d.status, 200);
    assert_eq!(d.body["collection"], "v2");
    assert_eq!(s.raw("DELETE", "/collections/v2", None, &[]).status, 200);
}

#[test]
fn payload_updates_by_ids_and_by_filter() {
    let s = TestServer::start();
    docs(&s);
    let path = "/collections/docs/entities/payload";
    let out = s.ok(
        "POST",
        path,
        json!({"ids": [A, B], "set": {"reviewed": true}}),
    );
    assert_eq!(out["updated"], 2);
    let a = s.get(&format!("/collections/docs/entities/{A}?with_vector=true"));
    assert_eq!(a.body["payload"]["reviewed"], true);
    assert_eq!(a.body["payload"]["title"], "a");
    assert_eq!(a.body["version"], 2);
    assert_eq!(a.body["vector"], json!([1.0, 0.0, 0.0]));
    s.ok(
        "POST",
        path,
        json!({"ids": [A], "set": {"x": 1}, "key": "meta.deep"}),
    );
    let a = s.get(&format!("/collections/docs/entities/{A}"));
    assert_eq!(a.body["payload"]["meta"]["deep"]["x"], 1);
    // By filter: the payload index moves with the payload.
    let en = json!({"must": [{"key": "lang", "match": {"value": "en"}}]});
    let out = s.ok("POST", path, json!({"filter": en, "set": {"lang": "fr"}}));
    assert_eq!(out["updated"], 2);
    let counted = s.ok("POST", "/collections/docs/count", json!({"filter": en}));
    assert_eq!(counted["count"], 0);
    let out = s.ok("POST", path, json!({"filter": {}, "delete": ["reviewed"]}));
    assert_eq!(out["updated"], 3);
    let out = s.ok("POST", path, json!({"ids": [B], "clear": true}));
    assert_eq!(out["updated"], 1);
    assert_eq!(
        s.get(&format!("/collections/docs/entities/{B}")).body["payload"],
        json!({})
    );

    // Refused whole, nothing written.
    let before = s.get("/changes?since=0&limit=1000").body["events"]
        .as_array()
        .unwrap()
        .len();
    let missing = "00000000-0000-0000-0000-0000000000ff";
    let bad = s.send("POST", path, json!({"ids": [A, missing], "set": {"y": 1}}));
    assert_eq!(
        (bad.status, bad.code()),
        (400, "invalid_entity"),
        "{}",
        bad.body
    );
    assert!(bad.message().contains("ids[1]"), "{}", bad.body);
    let bad = s.send("POST", path, json!({"ids": [A], "set": {"lang": 3}}));
    assert_eq!(
        (bad.status, bad.code()),
        (400, "invalid_entity"),
        "{}",
        bad.body
    );
    for body in [
        json!({"ids": [A]}),
        json!({"ids": [A], "set": {}, "clear": true}),
        json!({"set": {"y": 1}}),
        json!({"ids": [A], "filter": {}, "clear": true}),
        json!({"ids": [A], "delete": ["a"], "key": "b"}),
        json!({"filter": {}, "delete": ["a..b"]}),
    ] {
        let bad = s.send("POST", path, body.clone());
        assert_eq!(
            (bad.status, bad.code()),
            (400, "invalid_body"),
            "{body}: {}",
            bad.body
        );
    }
    let after = s.get("/changes?since=0&limit=1000").body["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "refused updates write no change event");
}

#[test]
fn quantized_collections_and_oversampling() {
    let s = TestServer::start();
    let created = s.send(
        "PUT",
        "/collections/q",
        json!({"dim": 4, "metric": "l2", "quantization": "sq8",
               "vectors": {"t": {"type": "dense", "dim": 2, "metric": "cosine", "quantization": "rq2"}}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["config"]["quantization"], "sq8");
    assert_eq!(
        created.body["config"]["vectors"]["t"]["quantization"],
        "rq2"
    );
    // Left out, the engine chooses: rq4 from 384 dimensions (named vectors too), else none
    // (which a stored config leaves out).
    let auto = s.send(
        "PUT",
        "/collections/auto",
        json!({"dim": 384, "metric": "cosine",
               "vectors": {"small": {"type": "dense", "dim": 8},
                           "wide": {"type": "dense", "dim": 768, "metric": "dot"}}}),
    );
    assert_eq!(auto.status, 201, "{}", auto.body);
    assert_eq!(auto.body["config"]["quantization"], "rq4");
    assert_eq!(
        auto.body["config"]["vectors"]["wide"]["quantization"],
        "rq4"
    );
    assert!(
        auto.body["config"]["vectors"]["small"]
            .get("quantization")
            .is_none()
    );
    // A rotated code has no Manhattan estimator.
    let bad = s.send(
        "PUT",
        "/collections/m",
        json!({"dim": 4, "metric": "manhattan", "quantization": "rq1"}),
    );
    assert_eq!(
        (bad.status, bad.code()),
        (400, "invalid_config"),
        "{}",
        bad.body
    );
    s.ok(
        "PUT",
        "/collections/q/entities",
        json!({"entities": [{"id": A, "vector": [1.0, 0.0, 0.0, 0.0]},
                            {"id": B, "vector": [0.0, 1.0, 0.0, 0.0]}]}),
    );
    let hits = s.ok(
        "POST",
        "/collections/q/search",
        json!({"vector": [0.9, 0.1, 0.0, 0.0], "k": 1, "oversampling": 4}),
    );
    assert_eq!(hits["hits"][0]["id"], A, "{hits}");
    let bad = s.send(
        "POST",
        "/collections/q/search",
        json!({"vector": [0.9, 0.1, 0.0, 0.0], "k": 1, "oversampling": 0.5}),
    );
    assert_eq!(
        (bad.status, bad.code()),
        (400, "invalid_query"),
        "{}",
        bad.body
    );
    assert!(bad.message().contains("oversampling"), "{}", bad.message());
}
