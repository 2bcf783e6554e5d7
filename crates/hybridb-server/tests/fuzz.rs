//! No input makes a request decoder panic: arbitrary bytes and arbitrary JSON thrown at every
//! body type (directly, many cases) and at every route taking a body (through the real server,
//! fewer cases), always answered with a 4xx or a success, never a 5xx.

mod common;

use common::TestServer;
use hybridb_server::{
    ApiError, BackupBody, CountBody, CreateCollection, DeleteBody, GetManyBody, PayloadIndexBody,
    PutEntityBody, ScrollBody, SearchBatchBody, SearchBody, UpsertBody, VerifyBody, decode_json,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z_]{0,8}".prop_map(Value::from),
        Just(Value::from("00000000-0000-0000-0000-00000000000a")),
        Just(Value::from(1e300)),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("vector".to_string()),
                    Just("entities".to_string()),
                    Just("ids".to_string()),
                    Just("k".to_string()),
                    Just("filter".to_string()),
                    Just("dim".to_string()),
                    Just("searches".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decodes `bytes` as every request body type; each must fail with a 4xx or succeed.
fn decode_all(bytes: &[u8]) {
    fn one<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
        if let Err(e @ ApiError { code, .. }) = decode_json::<T>(bytes, 64) {
            let status = e.status();
            assert!(status.is_client_error(), "{status} {code}");
        }
    }
    one::<CreateCollection>(bytes);
    one::<UpsertBody>(bytes);
    one::<PutEntityBody>(bytes);
    one::<PayloadIndexBody>(bytes);
    one::<GetManyBody>(bytes);
    one::<DeleteBody>(bytes);
    one::<ScrollBody>(bytes);
    one::<CountBody>(bytes);
    one::<SearchBody>(bytes);
    one::<SearchBatchBody>(bytes);
    one::<BackupBody>(bytes);
    one::<VerifyBody>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn decoders_take_any_json(v in arb_json()) {
        decode_all(v.to_string().as_bytes());
        let wrapped = json!({"entities": [v.clone()], "searches": [v.clone()], "vector": v});
        decode_all(wrapped.to_string().as_bytes());
    }
}

#[test]
fn every_body_route_answers_4xx_or_success_to_garbage() {
    let s = TestServer::start();
    s.ok("PUT", "/collections/docs", json!({"dim": 3}));
    let routes = [
        ("PUT", "/collections/fuzzed"),
        ("PUT", "/collections/docs/entities"),
        (
            "PUT",
            "/collections/docs/entities/00000000-0000-0000-0000-00000000000a",
        ),
        ("POST", "/collections/docs/entities/get"),
        ("POST", "/collections/docs/entities/delete"),
        ("POST", "/collections/docs/scroll"),
        ("POST", "/collections/docs/count"),
        ("POST", "/collections/docs/search"),
        ("POST", "/collections/docs/search/batch"),
        ("POST", "/collections/docs/search/explain"),
        ("PUT", "/collections/docs/payload-indexes/lang"),
        ("POST", "/backup"),
        ("POST", "/verify"),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        arb_json().prop_map(|v| {
            json!({"entities": [{"vector": v}], "vector": v, "searches": [{"vector": v}]})
                .to_string()
                .into_bytes()
        }),
    ];
    for (method, path) in routes {
        runner
            .run(&bodies, |body| {
                let a = s.raw(method, path, Some(&body), &[]);
                prop_assert!(
                    a.status < 500,
                    "{method} {path} answered {} {} to {:?}",
                    a.status,
                    a.body,
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            })
            .unwrap();
    }
    // The server is still healthy afterwards.
    assert_eq!(s.get("/readyz").status, 200);
}
