//! The SQL translation of filters means what `Filter::matches` means: random payloads and
//! random filters, the ids each selects in PostgreSQL against the ids `matches` accepts; and
//! filtered searches on the target return the exact top k where k entities match.
//!
//! Needs `HYBRIDB_TEST_PG_URL` (see `scripts/pgvector.sh`); without it the tests print why
//! they skip, unless `HYBRIDB_REQUIRE_PG` is set (CI), which makes that a failure.

mod common;
use common::target_url;

use std::collections::BTreeSet;

use hybridb::{EntityId, Filter, Metric, SearchRequest};
use hybridb_replicate::{
    Batch, CollectionSpec, Cursor, Distribution, Op, PgOptions, PgTarget, Row, Target, query,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

const KEYS: [&str; 4] = ["a", "b", "c.d", "c"];

fn scalar(r: &mut Rng) -> Value {
    match r.below(7) {
        0 => json!(r.below(5) as i64 - 2),
        1 => json!((r.below(9) as f64 - 4.0) / 2.0),
        2 => json!(["x", "y", "z"][r.below(3) as usize]),
        3 => json!(r.below(2) == 0),
        4 => Value::Null,
        5 => json!(r.below(5) as i64 - 2),
        _ => json!(["x", "y"][r.below(2) as usize]),
    }
}

fn value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 2 { 1 } else { 5 }) {
        0 | 1 => scalar(r),
        2 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
        3 => json!({"d": value(r, depth + 1)}),
        _ => Value::Array(vec![json!({"d": scalar(r)}), value(r, depth + 1)]),
    }
}

fn payload(r: &mut Rng) -> Map<String, Value> {
    let mut m = Map::new();
    for k in ["a", "b", "c"] {
        if r.below(4) != 0 {
            m.insert(k.into(), value(r, 0));
        }
    }
    m
}

fn match_value(r: &mut Rng) -> Value {
    match r.below(3) {
        0 => json!(r.below(5) as i64 - 2),
        1 => json!(["x", "y", "z"][r.below(3) as usize]),
        _ => json!(r.below(2) == 0),
    }
}

fn condition(r: &mut Rng, ids: &[Uuid], depth: u32) -> Value {
    let key = KEYS[r.below(4) as usize];
    match r.below(if depth > 1 { 7 } else { 8 }) {
        0 => json!({"key": key, "match": {"value": match_value(r)}}),
        1 => json!({"key": key, "match": {"any": [match_value(r), match_value(r)]}}),
        2 => {
            let lo = r.below(5) as i64 - 2;
            match r.below(3) {
                0 => json!({"key": key, "range": {"gte": lo}}),
                1 => json!({"key": key, "range": {"gt": lo as f64 - 0.5, "lte": lo + 1}}),
                _ => json!({"key": key, "range": {"lt": lo}}),
            }
        }
        3 => json!({"is_empty": {"key": key}}),
        4 => json!({"is_null": {"key": key}}),
        5 => json!({"has_id": [ids[r.below(ids.len() as u64) as usize].to_string(),
                               ids[r.below(ids.len() as u64) as usize].to_string()]}),
        6 => json!({"key": key, "match": {"except": [match_value(r), match_value(r)]}}),
        _ => filter(r, ids, depth + 1),
    }
}

fn filter(r: &mut Rng, ids: &[Uuid], depth: u32) -> Value {
    let mut f = Map::new();
    for clause in ["must", "should", "must_not"] {
        if r.below(2) == 0 {
            let n = r.below(3) + 1;
            f.insert(
                clause.into(),
                Value::Array((0..n).map(|_| condition(r, ids, depth)).collect()),
            );
        }
    }
    if r.below(4) == 0 {
        let n = r.below(3) + 1;
        let conditions: Vec<Value> = (0..n).map(|_| condition(r, ids, depth)).collect();
        f.insert(
            "min_should".into(),
            json!({"conditions": conditions, "min_count": r.below(3) + 1}),
        );
    }
    if f.is_empty() {
        f.insert("must".into(), Value::Array(vec![condition(r, ids, depth)]));
    }
    Value::Object(f)
}

async fn load(url: &str, schema: &str, n: usize, dim: usize, seed: u64) -> (PgTarget, Vec<Row>) {
    let mut opts = PgOptions::new(url);
    opts.schema = schema.into();
    opts.distribution = Distribution::Auto;
    let mut t = PgTarget::new(opts);
    t.connect().await.unwrap();
    t.reset("q").await.unwrap();
    let mut r = Rng(seed);
    let rows: Vec<Row> = (0..n)
        .map(|i| Row {
            id: *EntityId::from_u128(i as u128 + 1).as_uuid(),
            version: 1,
            updated_at: 0,
            payload: payload(&mut r),
            vector: (0..dim).map(|_| r.f32()).collect(),
            vectors: None,
        })
        .collect();
    let spec = CollectionSpec {
        name: "c".into(),
        dim: dim as u32,
        metric: Metric::L2,
        payload_indexes: vec![("a".into(), "keyword".into())],
        count: None,
    };
    let batch = Batch {
        ops: vec![
            Op::CreateCollection {
                spec,
                indexes: true,
            },
            Op::Upsert {
                collection: "c".into(),
                rows: rows.clone(),
            },
        ],
    };
    t.apply("q", &batch, &Cursor::default()).await.unwrap();
    (t, rows)
}

#[tokio::test]
async fn filter_sql_means_what_matches_means() {
    let Some(url) = target_url() else { return };
    let (_t, rows) = load(&url, "qtest_filters", 300, 4, 42).await;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let client = hybridb_replicate::connect(&url).await.unwrap();
    let mut r = Rng(7);
    let mut nonempty = 0;
    for case in 0..400 {
        let fj = filter(&mut r, &ids, 0);
        let f = Filter::from_json(&fj).unwrap_or_else(|e| panic!("{fj}: {e}"));
        let expected: BTreeSet<Uuid> = rows
            .iter()
            .filter(|row| f.matches(EntityId::from_uuid(row.id), &row.payload))
            .map(|row| row.id)
            .collect();
        let sf = query::filter_sql(&f, 1).unwrap();
        let sql = format!("SELECT id FROM qtest_filters.c WHERE {}", sf.sql);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = sf
            .id_params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let got: BTreeSet<Uuid> = client
            .query(&sql, &params)
            .await
            .unwrap_or_else(|e| panic!("case {case}: {fj}\n{sql}\n{e}"))
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !expected.is_empty() && expected.len() < rows.len() {
            nonempty += 1;
        }
        if got != expected {
            let diff: Vec<_> = got.symmetric_difference(&expected).take(3).collect();
            let show: Vec<_> = rows
                .iter()
                .filter(|row| diff.contains(&&row.id))
                .map(|row| Value::Object(row.payload.clone()))
                .collect();
            panic!("case {case}: {fj}\n{sql}\ndiffer on payloads {show:?}");
        }
    }
    // The generator must make filters that select something but not everything.
    assert!(nonempty > 100, "only {nonempty} informative cases");
}

#[tokio::test]
async fn datetime_ranges_are_refused() {
    let f = Filter::from_json(
        &json!({"must": [{"key": "t", "range": {"gte": "2020-01-01T00:00:00Z"}}]}),
    )
    .unwrap();
    let e = query::filter_sql(&f, 1).unwrap_err();
    assert!(
        matches!(e, hybridb_replicate::Error::UnsupportedFilter(_)),
        "{e}"
    );
}

#[tokio::test]
async fn geo_conditions_and_element_indexes_are_refused() {
    let point = json!({"lon": 13.4, "lat": 52.5});
    let ring = json!({"points": [
        {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]});
    for c in [
        json!({"key": "loc", "geo_radius": {"center": point, "radius": 1000.0}}),
        json!({"key": "loc", "geo_bounding_box": {"top_left": point, "bottom_right": point}}),
        json!({"key": "loc", "geo_polygon": {"exterior": ring}}),
        json!({"should": [{"key": "a", "match": {"value": 1}},
                          {"key": "loc", "geo_radius": {"center": point, "radius": 1.0}}]}),
        // An element index is not a plain key: reading it as one would answer differently.
        json!({"key": "a[0].b", "match": {"value": 1}}),
    ] {
        let f = Filter::from_json(&json!({"must": [c]})).unwrap();
        let e = query::filter_sql(&f, 1).unwrap_err();
        assert!(
            matches!(e, hybridb_replicate::Error::UnsupportedFilter(_)),
            "{c}: {e}"
        );
    }
    // `a[]` is the same key as `a`.
    let f = Filter::from_json(&json!({"must": [{"key": "a[].b", "match": {"value": 1}}]})).unwrap();
    assert!(query::filter_sql(&f, 1).is_ok());
}

#[tokio::test]
async fn filtered_search_returns_exact_top_k() {
    let Some(url) = target_url() else { return };
    let (_t, rows) = load(&url, "qtest_search", 2000, 8, 9).await;
    let mut client = hybridb_replicate::connect(&url).await.unwrap();
    let f = Filter::from_json(&json!({"must": [{"key": "a", "match": {"value": "x"}}]})).unwrap();
    let matching: Vec<&Row> = rows
        .iter()
        .filter(|row| f.matches(EntityId::from_uuid(row.id), &row.payload))
        .collect();
    assert!(matching.len() > 20, "{} matches", matching.len());
    let mut r = Rng(3);
    let mut total_recall = 0.0;
    for _ in 0..20 {
        let q: Vec<f32> = (0..8).map(|_| r.f32()).collect();
        let dist = |v: &[f32]| -> f32 { v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum() };
        let mut exact: Vec<(f32, Uuid)> = matching
            .iter()
            .map(|row| (dist(&row.vector), row.id))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let truth: BTreeSet<Uuid> = exact.iter().take(10).map(|e| e.1).collect();
        let req = SearchRequest::new(q.clone(), 10)
            .filter(f.clone())
            .with_payload(true);
        let hits = query::search(&mut client, "qtest_search", "c", &req)
            .await
            .unwrap();
        assert_eq!(hits.len(), 10, "k rows where k match");
        for h in &hits {
            let row = rows.iter().find(|row| row.id == *h.id.as_uuid()).unwrap();
            assert!(f.matches(h.id, &row.payload), "a hit outside the filter");
            assert!(
                (h.score - dist(&row.vector).sqrt()).abs() < 1e-4,
                "L2 score"
            );
        }
        assert!(
            hits.windows(2).all(|w| w[0].score <= w[1].score),
            "best first"
        );
        total_recall += hits
            .iter()
            .filter(|h| truth.contains(h.id.as_uuid()))
            .count() as f64
            / 10.0;
    }
    assert!(total_recall / 20.0 >= 0.9, "recall {}", total_recall / 20.0);
    let bad = SearchRequest::new(vec![0.0; 3], 10);
    assert!(matches!(
        query::search(&mut client, "qtest_search", "c", &bad).await,
        Err(hybridb_replicate::Error::InvalidQuery(_))
    ));
}
