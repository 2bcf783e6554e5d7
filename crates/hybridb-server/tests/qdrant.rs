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

/// The ids a scroll with `filter` answers, sorted.
fn scroll_ids(s: &TestServer, c: &str, filter: serde_json::Value) -> Vec<u64> {
    let a = s.send(
        "POST",
        &format!("{Q}/{c}/points/scroll"),
        json!({"filter": filter, "limit": 100}),
    );
    assert_eq!(a.status, 200, "{filter}: {}", a.body);
    let mut ids: Vec<u64> = a.body["result"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn geo_filters_follow_qdrants_semantics() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        &format!("{Q}/g"),
        json!({"vectors": {"size": 2, "distance": "Dot"}}),
    );
    // Berlin, Moscow, London; a point with two places; one with a bad and one with no value.
    let places = [
        json!({"lon": 13.404954, "lat": 52.520008}),
        json!({"lon": 37.617298, "lat": 55.755825}),
        json!({"lon": -0.127758, "lat": 51.507351}),
        json!([{"lon": 2.352222, "lat": 48.856613}, {"lon": 13.41, "lat": 52.52}]),
        json!({"lon": 500, "lat": 52.52}),
        json!("Berlin"),
    ];
    let points: Vec<_> = places
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"id": i, "vector": [1, 0], "payload": {"city": {"location": p}}}))
        .collect();
    s.ok(
        "PUT",
        &format!("{Q}/g/points?wait=true"),
        json!({ "points": points }),
    );
    // A geo index is declared and reported (the filters read payloads either way).
    s.ok(
        "PUT",
        &format!("{Q}/g/index"),
        json!({"field_name": "city.location", "field_schema": "geo"}),
    );
    let info = s.get(&format!("{Q}/g"));
    assert_eq!(
        info.body["result"]["payload_schema"]["city.location"]["data_type"], "geo",
        "{}",
        info.body
    );
    let berlin = json!({"lon": 13.404954, "lat": 52.520008});
    let radius = |m: f64| json!({"must": [{"key": "city.location", "geo_radius": {"center": berlin, "radius": m}}]});
    // Point 3's second place is ~400 m from Berlin's center; Moscow is ~1,600 km away.
    assert_eq!(scroll_ids(&s, "g", radius(100.0)), [0]);
    assert_eq!(scroll_ids(&s, "g", radius(1_000.0)), [0, 3]);
    assert_eq!(scroll_ids(&s, "g", radius(1_000_000.0)), [0, 2, 3]);
    assert_eq!(scroll_ids(&s, "g", radius(2_000_000.0)), [0, 1, 2, 3]);
    let bbox = json!({"must": [{"key": "city.location", "geo_bounding_box": {
        "top_left": {"lon": 13.08835, "lat": 52.67551},
        "bottom_right": {"lon": 13.76117, "lat": 52.33825}}}]});
    assert_eq!(scroll_ids(&s, "g", bbox), [0, 3]);
    let ring = |pts: &[(f64, f64)]| json!({"points": pts.iter().map(|(lon, lat)| json!({"lon": lon, "lat": lat})).collect::<Vec<_>>()});
    let europe = ring(&[
        (-10.0, 40.0),
        (40.0, 40.0),
        (40.0, 60.0),
        (-10.0, 60.0),
        (-10.0, 40.0),
    ]);
    let hole = ring(&[
        (10.0, 50.0),
        (20.0, 50.0),
        (20.0, 55.0),
        (10.0, 55.0),
        (10.0, 50.0),
    ]);
    let poly = |interiors: serde_json::Value| {
        json!({"must": [{"key": "city.location",
        "geo_polygon": {"exterior": europe, "interiors": interiors}}]})
    };
    assert_eq!(scroll_ids(&s, "g", poly(json!([]))), [0, 1, 2, 3]);
    // Berlin sits in the hole; point 3 still has Paris outside it.
    assert_eq!(scroll_ids(&s, "g", poly(json!([hole]))), [1, 2, 3]);
    // must_not and a nested element filter.
    let not_near = json!({"must_not": [{"key": "city.location", "geo_radius": {"center": berlin, "radius": 1000.0}}]});
    assert_eq!(scroll_ids(&s, "g", not_near), [1, 2, 4, 5]);
    // Bad coordinates and polygons answer 422 with the place named; nothing else changes.
    for (bad, place) in [
        (
            json!({"key": "city.location", "geo_radius": {"center": {"lon": 181, "lat": 0}, "radius": 1}}),
            "geo_radius.center",
        ),
        (
            json!({"key": "city.location", "geo_bounding_box": {"top_left": {"lon": 0, "lat": -91}, "bottom_right": berlin}}),
            "top_left",
        ),
        (
            json!({"key": "city.location", "geo_polygon": {"exterior": ring(&[(0.0, 0.0), (1.0, 0.0), (0.0, 0.0)])}}),
            "at least 4",
        ),
        (
            json!({"key": "city.location", "geo_polygon": {"exterior": ring(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.5, 0.5)])}}),
            "closed",
        ),
    ] {
        let a = s.send(
            "POST",
            &format!("{Q}/g/points/scroll"),
            json!({"filter": {"must": [bad]}}),
        );
        assert_eq!(a.status, 422, "{}", a.body);
        let msg = a.body["status"]["error"].as_str().unwrap();
        assert!(msg.contains(place), "{msg}");
    }
    // Dropping the geo index drops it from the schema.
    s.ok("DELETE", &format!("{Q}/g/index/city.location"), json!({}));
    let info = s.get(&format!("{Q}/g"));
    assert!(
        info.body["result"]["payload_schema"]
            .get("city.location")
            .is_none()
    );
}

#[test]
fn array_element_paths_in_filters_and_set_payload() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        &format!("{Q}/c"),
        json!({"vectors": {"size": 2, "distance": "Dot"}}),
    );
    let points = json!([
        {"id": 1, "vector": [1, 0], "payload": {"arr": [{"a": 1}, {"a": 2}]}},
        {"id": 2, "vector": [1, 0], "payload": {"arr": [{"a": 2}, {"a": 1}]}},
        {"id": 3, "vector": [1, 0], "payload": {"arr": [{"a": 2}]}},
    ]);
    s.ok(
        "PUT",
        &format!("{Q}/c/points?wait=true"),
        json!({ "points": points }),
    );
    let m = |key: &str, v: i64| json!({"must": [{"key": key, "match": {"value": v}}]});
    assert_eq!(scroll_ids(&s, "c", m("arr[0].a", 1)), [1]);
    assert_eq!(scroll_ids(&s, "c", m("arr[1].a", 1)), [2]);
    assert_eq!(scroll_ids(&s, "c", m("arr[].a", 1)), [1, 2]);
    assert_eq!(scroll_ids(&s, "c", m("arr[5].a", 2)), Vec::<u64>::new());
    let count = json!({"must": [{"key": "arr[0].a", "values_count": {"gte": 1}}]});
    assert_eq!(scroll_ids(&s, "c", count), [1, 2, 3]);
    // Set payload through an element index, and through every element.
    s.ok(
        "POST",
        &format!("{Q}/c/points/payload?wait=true"),
        json!({"points": [1], "key": "arr[0]", "payload": {"b": "x"}}),
    );
    s.ok(
        "POST",
        &format!("{Q}/c/points/payload?wait=true"),
        json!({"points": [2], "key": "arr[]", "payload": {"c": true}}),
    );
    let p1 = s.get(&format!("{Q}/c/points/1"));
    assert_eq!(
        p1.body["result"]["payload"],
        json!({"arr": [{"a": 1, "b": "x"}, {"a": 2}]})
    );
    let p2 = s.get(&format!("{Q}/c/points/2"));
    assert_eq!(
        p2.body["result"]["payload"],
        json!({"arr": [{"a": 2, "c": true}, {"a": 1, "c": true}]})
    );
    // Malformed paths are refused and write nothing.
    for key in ["arr[x]", "arr[0", "[0]"] {
        let a = s.send(
            "POST",
            &format!("{Q}/c/points/payload?wait=true"),
            json!({"points": [1], "key": key, "payload": {"z": 1}}),
        );
        assert!((400..=422).contains(&a.status), "{key}: {}", a.body);
        let a = s.send(
            "POST",
            &format!("{Q}/c/points/scroll"),
            json!({"filter": m(key, 1)}),
        );
        assert_eq!(a.status, 400, "{key}: {}", a.body);
    }
    assert_eq!(
        s.get(&format!("{Q}/c/points/1")).body["result"],
        p1.body["result"]
    );
}

#[test]
fn tuning_knobs_are_kept_and_reported() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        &format!("{Q}/k"),
        json!({"vectors": {"size": 2, "distance": "Dot", "on_disk": true},
               "on_disk_payload": false, "wal_config": {"wal_capacity_mb": 64},
               "metadata": {"owner": "me"}}),
    );
    let config = |s: &TestServer| s.get(&format!("{Q}/k")).body["result"]["config"].clone();
    let c = config(&s);
    assert_eq!(c["params"]["vectors"]["on_disk"], true, "{c}");
    assert_eq!(c["params"]["on_disk_payload"], false, "{c}");
    assert_eq!(c["wal_config"]["wal_capacity_mb"], 64, "{c}");
    assert!(c["params"]["vectors"].get("hnsw_config").is_none(), "{c}");
    assert_eq!(c["metadata"], json!({"owner": "me"}), "{c}");
    s.ok(
        "PATCH",
        &format!("{Q}/k"),
        json!({"vectors": {"": {"hnsw_config": {"m": 32}, "on_disk": false,
                                "quantization_config": {"scalar": {"type": "int8", "quantile": 0.8}}}},
               "hnsw_config": {"ef_construct": 123},
               "optimizers_config": {"default_segment_number": 6},
               "quantization_config": {"scalar": {"type": "int8", "always_ram": true}}}),
    );
    let c = config(&s);
    assert_eq!(c["params"]["vectors"]["hnsw_config"]["m"], 32, "{c}");
    assert_eq!(c["params"]["vectors"]["on_disk"], false, "{c}");
    assert_eq!(
        c["params"]["vectors"]["quantization_config"]["scalar"]["quantile"], 0.8,
        "{c}"
    );
    assert_eq!(c["hnsw_config"]["ef_construct"], 123, "{c}");
    assert_eq!(c["optimizer_config"]["default_segment_number"], 6, "{c}");
    assert_eq!(
        c["quantization_config"]["scalar"]["always_ram"], true,
        "{c}"
    );
    assert_eq!(c["metadata"], json!({"owner": "me"}), "{c}");
    // The reserved key is not the user's.
    let a = s.send(
        "PATCH",
        &format!("{Q}/k"),
        json!({"metadata": {"qdrant:knobs": 1}}),
    );
    assert_eq!(a.status, 400, "{}", a.body);
}

#[test]
fn quantization_config_updates_change_the_codes() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        &format!("{Q}/qc"),
        json!({"vectors": {"a": {"size": 4, "distance": "Cosine"},
                           "b": {"size": 4, "distance": "Manhattan"}}}),
    );
    // The engine's view (native API on the same database).
    let codes = |s: &TestServer| {
        let v = s.get("/collections/qc").body["config"]["vectors"].clone();
        (
            v["a"]["quantization"].clone(),
            v["b"]["quantization"].clone(),
        )
    };
    assert_eq!(codes(&s), (json!(null), json!(null)));
    // The collection's code reaches every vector; Manhattan keeps f32 for rotated codes.
    s.ok(
        "PATCH",
        &format!("{Q}/qc"),
        json!({"quantization_config": {"binary": {"encoding": "two_bits"}}}),
    );
    assert_eq!(codes(&s), (json!("rq2"), json!(null)));
    // A vector's own setting wins over the collection's.
    s.ok(
        "PATCH",
        &format!("{Q}/qc"),
        json!({"vectors": {"b": {"quantization_config": {"scalar": {"type": "int8"}}}},
               "quantization_config": {"scalar": {"type": "int8"}}}),
    );
    assert_eq!(codes(&s), (json!("sq8"), json!("sq8")));
    s.ok(
        "PATCH",
        &format!("{Q}/qc"),
        json!({"vectors": {"a": {"quantization_config": "Disabled"}}}),
    );
    assert_eq!(codes(&s), (json!(null), json!("sq8")));
    // A malformed setting: 4xx, and no code changes.
    let bad = s.send(
        "PATCH",
        &format!("{Q}/qc"),
        json!({"quantization_config": 7}),
    );
    assert!(bad.status == 400 || bad.status == 422, "{}", bad.body);
    assert_eq!(codes(&s), (json!(null), json!("sq8")));
}
