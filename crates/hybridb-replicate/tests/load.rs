//! Pages of the initial copy (`Op::Load`) go straight into the table; a page meeting ids that
//! are there already falls back to the version-ordered upsert, within the same transaction;
//! `finish_copy` then builds the vector and payload indexes the copy left out.
//!
//! Needs `HYBRIDB_TEST_PG_URL` (see `scripts/pgvector.sh`); without it the test prints why it
//! skips, unless `HYBRIDB_REQUIRE_PG` is set (CI), which makes that a failure.

mod common;
use common::target_url;

use std::collections::BTreeMap;

use hybridb::Metric;
use hybridb_replicate::{
    Batch, CollectionSpec, Cursor, Distribution, Op, PgOptions, PgTarget, Row, Target,
};
use serde_json::json;
use uuid::Uuid;

fn row(i: u128, version: u64) -> Row {
    let mut payload = serde_json::Map::new();
    payload.insert("lang".into(), json!(["en", "de"][(i % 2) as usize]));
    payload.insert("v".into(), json!(version));
    Row {
        id: Uuid::from_u128(i),
        version,
        updated_at: 1_700_000_000_000 + version,
        payload,
        vector: vec![i as f32, version as f32, 1.0],
        vectors: None,
    }
}

fn load(rows: Vec<Row>) -> Batch {
    Batch {
        ops: vec![Op::Load {
            collection: "c".into(),
            rows,
        }],
    }
}

#[tokio::test]
async fn copy_pages_load_straight_and_fall_back_to_version_ordered_upserts() {
    let Some(url) = target_url() else { return };
    let mut opts = PgOptions::new(&url);
    opts.schema = "loadtest".into();
    opts.distribution = Distribution::Local;
    let mut t = PgTarget::new(opts);
    t.connect().await.unwrap();
    t.reset("l").await.unwrap();
    let spec = CollectionSpec {
        name: "c".into(),
        dim: 3,
        metric: Metric::L2,
        payload_indexes: vec![("lang".into(), "keyword".into())],
        count: None,
    };
    let create = Batch {
        ops: vec![Op::CreateCollection {
            spec,
            indexes: false,
        }],
    };
    t.apply("l", &create, &Cursor::default()).await.unwrap();
    // A fresh page: COPY straight in.
    t.apply(
        "l",
        &load((1..=100).map(|i| row(i, 2)).collect()),
        &Cursor::default(),
    )
    .await
    .unwrap();
    // A page overlapping it (ids 91..=110, versions 1 and 3 alternating): the unique
    // violation rolls back to the savepoint and the rows are upserted by version.
    let overlap: Vec<Row> = (91..=110).map(|i| row(i, 1 + 2 * (i as u64 % 2))).collect();
    let cursor = Cursor {
        applied: Some(7),
        ..Cursor::default()
    };
    t.apply("l", &load(overlap), &cursor).await.unwrap();
    assert_eq!(
        t.cursor("l").await.unwrap().applied,
        Some(7),
        "the batch committed"
    );
    let client = hybridb_replicate::connect(&url).await.unwrap();
    let got: BTreeMap<Uuid, (i64, String)> = client
        .query("SELECT id, version, payload->>'v' FROM loadtest.c", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    assert_eq!(got.len(), 110);
    for i in 1..=110u128 {
        let want: i64 = match i {
            91..=110 if i % 2 == 1 => 3, // higher version replaces (or is new)
            101..=110 => 1,              // new rows of the overlapping page
            _ => 2,                      // a lower version never replaces
        };
        let (version, v) = &got[&Uuid::from_u128(i)];
        assert_eq!(*version, want, "id {i}");
        assert_eq!(v, &want.to_string(), "payload of id {i}");
    }
    // The copy left the vector and payload indexes out; finish_copy builds them.
    let indexes = |client: tokio_postgres::Client| async move {
        let rows = client
            .query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'loadtest' AND tablename = 'c'",
                &[],
            )
            .await
            .unwrap();
        let defs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        (client, defs)
    };
    let (client, before) = indexes(client).await;
    assert_eq!(before.len(), 1, "only the primary key: {before:?}");
    t.finish_copy().await.unwrap();
    t.finish_copy().await.unwrap(); // idempotent
    let (_client, after) = indexes(client).await;
    assert!(after.iter().any(|d| d.contains("USING hnsw")), "{after:?}");
    assert!(after.iter().any(|d| d.contains("USING gin")), "{after:?}");
    assert!(after.iter().any(|d| d.contains("{lang}")), "{after:?}");
    t.reset("l").await.unwrap();
}
