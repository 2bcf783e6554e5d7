//! The Qdrant-compatible API through a real server (under `/qdrant` on the main port): the
//! edges the Python client suite does not reach — Qdrant's error form from the shared layers,
//! keys, reserved ids, limits at and beyond the library's maximum, the native and Qdrant views
//! of the same entities.

mod common;

use common::TestServer;
use serde_json::json;

const Q: &str = "/qdrant/collections";

fn setup(s: &TestServer, n: u64) {
    s.ok(
        "PUT",
        &format!("{Q}/c"),
        json!({"vectors": {"size": 2, "distance": "Euclid"}}),
    );
    let points: Vec<_> = (0..n)
        .map(|i| json!({"id": i, "vector": [i as f32, 0.0], "payload": {"i": i}}))
        .collect();
    s.ok(
        "PUT",
        &format!("{Q}/c/points?wait=true"),
        json!({ "points": points }),
    );
}

#[test]
fn errors_of_every_layer_come_in_qdrant_form() {
    let s = TestServer::with_config(|c| {
        c.api_keys.read_write = vec!["rw".into()];
        c.api_keys.read_only = vec!["ro".into()];
    });
    let no_key = s.get(Q);
    assert_eq!(no_key.status, 401);
    assert!(
        no_key.body["status"]["error"]
            .as_str()
            .unwrap()
            .contains("API key"),
        "{}",
        no_key.body
    );
    assert!(no_key.body["result"].is_null() && no_key.body["time"].is_number());
    // The native routes keep their own form.
    assert_eq!(s.get("/collections").code(), "unauthorized");
    let ro = [("api-key", "ro")];
    assert_eq!(s.raw("GET", Q, None, &ro).status, 200);
    let create = br#"{"vectors": {"size": 2, "distance": "Dot"}}"#;
    let a = s.raw("PUT", &format!("{Q}/c"), Some(create), &ro);
    assert_eq!(a.status, 403, "{}", a.body);
    let rw = [("api-key", "rw")];
    assert_eq!(
        s.raw("PUT", &format!("{Q}/c"), Some(create), &rw).status,
        200
    );
    // A read-only key may query (a reading POST).
    let a = s.raw(
        "POST",
        &format!("{Q}/c/points/query"),
        Some(br#"{"query": [1, 0]}"#),
        &ro,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    // Body decoding errors.
    let a = s.raw("POST", &format!("{Q}/c/points/query"), Some(b"{"), &rw);
    assert_eq!(a.status, 400);
    assert!(
        a.body["status"]["error"]
            .as_str()
            .unwrap()
            .starts_with("Bad request"),
        "{}",
        a.body
    );
    let a = s.raw("PUT", &format!("{Q}/c"), Some(create), &rw);
    assert_eq!(a.status, 409, "{}", a.body);
}

#[test]
fn ids_limits_and_both_views_of_an_entity() {
    let s = TestServer::start();
    setup(&s, 30);
    // A UUID in the integer range is refused, not turned into an integer.
    let a = s.send(
        "PUT",
        &format!("{Q}/c/points"),
        json!({"points": [{"id": "00000000-0000-0000-0000-000000000005", "vector": [1, 1]}]}),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    let a = s.get(&format!("{Q}/c/points/0000"));
    assert_eq!(a.body["result"]["id"], 0, "{}", a.body);
    assert_eq!(s.get(&format!("{Q}/c/points/99")).status, 404);
    // A condition with a key and no test is Qdrant's validation error (422), other bad
    // filters a 400.
    let f = |filter: serde_json::Value| {
        s.send(
            "POST",
            &format!("{Q}/c/points/count"),
            json!({"filter": filter}),
        )
    };
    let a = f(json!({"must": [{"key": "city"}]}));
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(
        a.body["status"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("At least one field condition must be specified")),
        "{}",
        a.body
    );
    assert_eq!(
        f(json!({"must": [{"key": "city", "bogus": 1}]})).status,
        400
    );
    // Searching like a point that does not exist is Qdrant's 404, not a bad query.
    let like = s.send("POST", &format!("{Q}/c/points/query"), json!({"query": 99}));
    assert_eq!(like.status, 404, "{}", like.body);
    let like = s.send(
        "POST",
        &format!("{Q}/c/points/query"),
        json!({"query": 7, "limit": 3}),
    );
    assert_eq!(like.status, 200, "{}", like.body);
    let ids = like.body["result"]["points"].as_array().unwrap();
    assert_eq!(ids.len(), 3, "{}", like.body);
    assert!(
        ids.iter().all(|p| p["id"] != 7),
        "the point itself is left out: {}",
        like.body
    );
    assert_eq!(s.get(&format!("{Q}/c/points/x-y")).status, 400);
    // The native API sees point 7 as the entity 00000000-0000-0000-0000-000000000007.
    let native = s.get("/collections/c/entities/00000000-0000-0000-0000-000000000007");
    assert_eq!(native.body["payload"]["i"], 7, "{}", native.body);
    // Limits: at the library's maximum a scroll works; beyond any size a 400, never a panic.
    let page = s.ok(
        "POST",
        &format!("{Q}/c/points/scroll"),
        json!({"limit": 10000}),
    );
    assert_eq!(page["result"]["points"].as_array().unwrap().len(), 30);
    assert!(page["result"]["next_page_offset"].is_null());
    let page = s.ok(
        "POST",
        &format!("{Q}/c/points/scroll"),
        json!({"limit": 29, "offset": 0}),
    );
    assert_eq!(page["result"]["next_page_offset"], 29);
    // A query takes any limit and offset, as Qdrant does: at most every point comes back.
    for (body, n) in [
        (json!({"query": [1, 0], "limit": u64::MAX}), 30),
        (json!({"query": [1, 0], "limit": 5, "offset": u64::MAX}), 0),
        (json!({"limit": u64::MAX}), 30),
    ] {
        let a = s.ok("POST", &format!("{Q}/c/points/query"), body.clone());
        assert_eq!(a["result"]["points"].as_array().unwrap().len(), n, "{body}");
    }
    let body = json!({"query": [1, 0], "params": {"hnsw_ef": 0}});
    let a = s.send("POST", &format!("{Q}/c/points/query"), body);
    assert_eq!(a.status, 400, "{}", a.body);
    let a = s.send(
        "POST",
        &format!("{Q}/c/points/scroll"),
        json!({"limit": u64::MAX}),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    // Euclid scores are distances, ascending; by id, the point itself is left out.
    let hits = s.ok(
        "POST",
        &format!("{Q}/c/points/query"),
        json!({"query": 3, "limit": 3}),
    );
    let ids: Vec<_> = hits["result"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&json!(3)), "{ids:?}");
    let hits = s.ok(
        "POST",
        &format!("{Q}/c/points/query"),
        json!({"query": [10.0, 0.0], "limit": 2}),
    );
    let points = hits["result"]["points"].as_array().unwrap();
    assert_eq!(points[0]["id"], 10);
    assert!(points[0]["score"].as_f64().unwrap() < points[1]["score"].as_f64().unwrap());
}
