//! `vector_format`: the default vector as numbers (the default) or as base64 of its
//! little-endian `f32` bytes, on the routes that read entities.

mod common;

use base64::Engine as _;
use common::TestServer;
use serde_json::{Value, json};

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";

/// The `f32`s of a base64 answer.
fn decode(v: &Value) -> Vec<f32> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    assert_eq!(bytes.len() % 4, 0);
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The `f32`s of a numbers answer.
fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn base64_vectors_carry_the_same_f32s_as_numbers() {
    let s = TestServer::start();
    s.ok(
        "PUT",
        "/collections/docs",
        json!({"dim": 4, "metric": "l2"}),
    );
    let va = [0.1f32, -2.5, 1.0e-7, 3.4e38];
    let vb = [1.0f32 / 3.0, 0.0, -0.0, 7.0];
    s.ok(
        "PUT",
        "/collections/docs/entities",
        json!({"entities": [
            {"id": A, "payload": {"n": 1}, "vector": va},
            {"id": B, "payload": {"n": 2}, "vector": vb},
        ]}),
    );
    // Scroll: numbers by default, base64 when asked; the same values, bit for bit.
    let plain = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"with_vector": true}),
    );
    let compact = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"with_vector": true, "vector_format": "base64"}),
    );
    let asked = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"with_vector": true, "vector_format": "float"}),
    );
    assert_eq!(plain, asked);
    for (i, want) in [va, vb].iter().enumerate() {
        let p = &plain["entities"][i];
        let c = &compact["entities"][i];
        assert_eq!(floats(&p["vector"]), want);
        assert_eq!(decode(&c["vector"]), want);
        // Everything but the vector is the same.
        for field in ["id", "payload", "version", "updated_at"] {
            assert_eq!(p[field], c[field], "{field}");
        }
    }
    // Without vectors the format changes nothing.
    let bare = s.ok(
        "POST",
        "/collections/docs/scroll",
        json!({"vector_format": "base64"}),
    );
    assert!(bare["entities"][0].get("vector").is_none(), "{bare}");
    // Get many and get one.
    let many = s.ok(
        "POST",
        "/collections/docs/entities/get",
        json!({"ids": [B, "00000000-0000-0000-0000-0000000000ff", A], "vector_format": "base64"}),
    );
    assert_eq!(decode(&many["entities"][0]["vector"]), vb);
    assert!(many["entities"][1].is_null());
    assert_eq!(decode(&many["entities"][2]["vector"]), va);
    let one = s.get(&format!(
        "/collections/docs/entities/{A}?vector_format=base64"
    ));
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(decode(&one.body["vector"]), va);
    let one = s.get(&format!("/collections/docs/entities/{A}"));
    assert_eq!(floats(&one.body["vector"]), va);
}

#[test]
fn an_unknown_vector_format_is_refused_naming_the_field() {
    let s = TestServer::start();
    s.ok("PUT", "/collections/docs", json!({"dim": 2}));
    for (method, path, body) in [
        (
            "POST",
            "/collections/docs/scroll",
            json!({"vector_format": "hex"}),
        ),
        (
            "POST",
            "/collections/docs/entities/get",
            json!({"ids": [A], "vector_format": "f32"}),
        ),
    ] {
        let a = s.send(method, path, body);
        assert_eq!(a.status, 400, "{}", a.body);
        assert_eq!(a.code(), "invalid_body");
        assert!(a.message().contains("vector_format"), "{}", a.message());
    }
    let a = s.get(&format!("/collections/docs/entities/{A}?vector_format=hex"));
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.code(), "invalid_query_param");
}
