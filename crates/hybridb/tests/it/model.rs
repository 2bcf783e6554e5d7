//! Model-based test: random sequences of upserts, deletes, batches (some invalid), partial
//! payload updates (by ids and by filter) and reopens, on a collection with a default vector,
//! an optional named dense vector `n` and an optional sparse vector `s`,
//! applied to hybridb and to an in-memory model (a BTreeMap plus brute-force k-NN); get, count,
//! scroll and search must agree after every step and every reopen.

use std::collections::BTreeMap;

use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, Filter, IndexKind, Metric,
    NamedVector, PayloadUpdate, Range, SearchRequest, SparseVector, VectorConfig,
};
use proptest::prelude::*;
use serde_json::json;

const DIM: usize = 4;
const KEYS: u32 = 24;

#[derive(Debug, Clone)]
enum Op {
    Upsert(u32, [i8; DIM], u8),
    Batch(Vec<(u32, [i8; DIM], u8)>),
    Delete(u32),
    DeleteBatch(Vec<u32>),
    /// Sets `q` (or `p`, with `true`) on these entities.
    SetPayload(Vec<u32>, u8, bool),
    /// Deletes `q` from these entities.
    DeleteQ(Vec<u32>),
    /// Sets `q` on every entity whose `p` is below the bound.
    SetQWhere(u8, u8),
    /// Clears the payload of every entity whose `p` is at least the bound.
    ClearWhere(u8),
    Reopen,
}

fn vec_strategy() -> impl Strategy<Value = [i8; DIM]> {
    prop::array::uniform4(-4i8..=4)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS, vec_strategy(), any::<u8>()).prop_map(|(k, v, p)| Op::Upsert(k, v, p)),
        2 => prop::collection::vec((0..KEYS, vec_strategy(), any::<u8>()), 1..8).prop_map(Op::Batch),
        2 => (0..KEYS).prop_map(Op::Delete),
        1 => prop::collection::vec(0..KEYS, 1..6).prop_map(Op::DeleteBatch),
        2 => (prop::collection::vec(0..KEYS, 1..5), any::<u8>(), any::<bool>())
            .prop_map(|(k, v, p)| Op::SetPayload(k, v, p)),
        1 => prop::collection::vec(0..KEYS, 1..5).prop_map(Op::DeleteQ),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(t, v)| Op::SetQWhere(t, v)),
        1 => (200u8..=255).prop_map(Op::ClearWhere),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelEntry {
    vector: Vec<f32>,
    /// Payload key `p` (gone after a clear).
    payload: Option<u8>,
    /// Payload key `q` (set by partial updates only).
    q: Option<u8>,
    /// Named vectors (partial payload updates leave them as they are).
    named: BTreeMap<String, NamedVector>,
    version: u64,
}

/// The named vectors an upsert of `(k, v, p)` carries: `n` (the default vector reversed)
/// unless `p` is a multiple of 3, `s` (the non-zero components at indices `4i + p % 4`) when
/// `p` is even.
fn named_of(v: &[i8; DIM], p: u8) -> BTreeMap<String, NamedVector> {
    let mut out = BTreeMap::new();
    if !p.is_multiple_of(3) {
        let n: Vec<f32> = v.iter().rev().map(|&x| f32::from(x)).collect();
        out.insert("n".to_string(), NamedVector::Dense(n));
    }
    if p.is_multiple_of(2) {
        let (indices, values) = v
            .iter()
            .enumerate()
            .filter(|(_, x)| **x != 0)
            .map(|(i, &x)| (i as u32 * 4 + u32::from(p % 4), f32::from(x)))
            .unzip();
        out.insert(
            "s".to_string(),
            NamedVector::Sparse(SparseVector::new(indices, values)),
        );
    }
    out
}

/// The payload object with one key.
fn one(key: &str, v: u8) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(key.to_string(), json!(v));
    m
}

fn id(k: u32) -> EntityId {
    EntityId::from_key(&format!("k{k}"))
}

fn to_entity(k: u32, v: &[i8; DIM], p: u8) -> Entity {
    let mut e = Entity::new(
        id(k),
        json!({"p": p}),
        v.iter().map(|&x| f32::from(x)).collect(),
    );
    e.vectors = named_of(v, p);
    e
}

/// Valid under this metric? Cosine refuses zero vectors.
fn valid(metric: Metric, v: &[i8; DIM]) -> bool {
    metric != Metric::Cosine || v.iter().any(|&x| x != 0)
}

/// Brute-force distance, lower is better, in f64.
fn model_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    match metric {
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum(),
        Metric::Dot => -dot,
        Metric::Manhattan => a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
            .sum(),
        _ => {
            let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            -dot / (na * nb)
        }
    }
}

fn check(metric: Metric, c: &hybridb::Collection, model: &BTreeMap<EntityId, ModelEntry>) {
    assert_eq!(c.count().unwrap(), model.len() as u64);
    assert_eq!(c.indexed_count(), model.len());
    let page = c.scroll(None, 1000).unwrap();
    let got: Vec<_> = page
        .records
        .iter()
        .map(|r| (r.id, r.vector.clone(), r.vectors.clone(), r.version))
        .collect();
    let want: Vec<_> = model
        .iter()
        .map(|(i, e)| (*i, e.vector.clone(), e.named.clone(), e.version))
        .collect();
    assert_eq!(got, want);
    check_named(c, model);
    for k in 0..KEYS {
        let g = c.get(id(k)).unwrap();
        match model.get(&id(k)) {
            None => assert!(g.is_none()),
            Some(e) => {
                let g = g.unwrap();
                assert_eq!(g.payload.get("p"), e.payload.map(|p| json!(p)).as_ref());
                assert_eq!(g.payload.get("q"), e.q.map(|q| json!(q)).as_ref());
                assert_eq!(g.version, e.version);
            }
        }
    }
    // Search: the scores must equal the model's best k scores, and each hit's score must be its
    // own model score (tolerance for SIMD rounding; ties may order differently only within it).
    for q in [
        [1.0, 0.0, 0.0, 0.0],
        [-1.0, 2.0, 0.5, 3.0],
        [0.0, 0.0, -2.0, 1.0],
    ] {
        let k = 5;
        let hits = c.search(&q, k).unwrap();
        let mut scored: Vec<(f64, EntityId)> = model
            .iter()
            .map(|(i, e)| (model_distance(metric, &q, &e.vector), *i))
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(hits.len(), k.min(model.len()));
        for (h, (want, _)) in hits.iter().zip(&scored) {
            let e = model.get(&h.id).expect("hit must be a live entity");
            let own = model_distance(metric, &q, &e.vector);
            let as_distance = match metric {
                Metric::L2 => f64::from(h.score).powi(2),
                Metric::Manhattan => f64::from(h.score),
                _ => -f64::from(h.score),
            };
            assert!(
                (as_distance - own).abs() < 1e-3,
                "hit score {as_distance} vs model {own}"
            );
            assert!((own - want).abs() < 1e-3, "rank mismatch: {own} vs {want}");
        }
    }
}

/// Searches of the named vectors against brute force over the model: `n` (L2) and `s` (sparse
/// dot product, exact: the same ids and scores).
fn check_named(c: &hybridb::Collection, model: &BTreeMap<EntityId, ModelEntry>) {
    let k = 4;
    for q in [[1.0f32, 0.0, -1.0, 2.0], [0.0, 3.0, 0.0, 0.0]] {
        let hits = c
            .search_with(&SearchRequest::new(q.to_vec(), k).using("n"))
            .unwrap();
        let mut want: Vec<(f64, EntityId)> = model
            .iter()
            .filter_map(|(i, e)| match e.named.get("n") {
                Some(NamedVector::Dense(v)) => Some((model_distance(Metric::L2, &q, v), *i)),
                _ => None,
            })
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(hits.len(), k.min(want.len()));
        for (h, (w, _)) in hits.iter().zip(&want) {
            assert!((f64::from(h.score).powi(2) - w).abs() < 1e-3);
        }
    }
    for query in [
        SparseVector::new(vec![0, 1, 2, 3], vec![1.0, 1.0, 1.0, 1.0]),
        SparseVector::new(vec![4, 6, 13], vec![2.0, -1.0, 0.5]),
    ] {
        let hits = c
            .search_with(&SearchRequest::new_sparse("s", query.clone(), k))
            .unwrap();
        let mut want: Vec<(f32, EntityId)> = model
            .iter()
            .filter_map(|(i, e)| match e.named.get("s") {
                Some(NamedVector::Sparse(v))
                    if v.indices.iter().any(|d| query.indices.contains(d)) =>
                {
                    Some((v.dot(&query), *i))
                }
                _ => None,
            })
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        want.truncate(k);
        let got: Vec<(f32, EntityId)> = hits.iter().map(|h| (h.score, h.id)).collect();
        assert_eq!(got, want);
    }
}

fn run(metric: Metric, index: IndexKind, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    let mut db = Database::open(&path).unwrap();
    let mut c = db
        .create_collection(
            "m",
            CollectionConfig::new(DIM as u32, metric)
                .with_index(index)
                .with_vector(
                    "n",
                    VectorConfig::dense_with_index(DIM as u32, Metric::L2, index),
                )
                .with_vector("s", VectorConfig::sparse(false)),
        )
        .unwrap();
    let mut model: BTreeMap<EntityId, ModelEntry> = BTreeMap::new();
    let apply_upsert =
        |model: &mut BTreeMap<EntityId, ModelEntry>, k: u32, v: &[i8; DIM], p: u8| {
            let version = model.get(&id(k)).map_or(0, |e| e.version) + 1;
            model.insert(
                id(k),
                ModelEntry {
                    vector: v.iter().map(|&x| f32::from(x)).collect(),
                    payload: Some(p),
                    q: None,
                    named: named_of(v, p),
                    version,
                },
            );
        };
    for op in ops {
        match op {
            Op::Upsert(k, v, p) => {
                let r = c.upsert(to_entity(k, &v, p));
                if valid(metric, &v) {
                    assert_eq!(
                        r.unwrap().version,
                        model.get(&id(k)).map_or(0, |e| e.version) + 1
                    );
                    apply_upsert(&mut model, k, &v, p);
                } else {
                    assert!(r.is_err());
                }
            }
            Op::Batch(items) => {
                let mut seen = std::collections::HashSet::new();
                let ok = items
                    .iter()
                    .all(|(k, v, _)| valid(metric, v) && seen.insert(*k));
                let r =
                    c.upsert_batch(items.iter().map(|(k, v, p)| to_entity(*k, v, *p)).collect());
                assert_eq!(r.is_ok(), ok, "{r:?}");
                if ok {
                    for (k, v, p) in &items {
                        apply_upsert(&mut model, *k, v, *p);
                    }
                }
            }
            Op::Delete(k) => {
                assert_eq!(c.delete(id(k)).unwrap(), model.remove(&id(k)).is_some());
            }
            Op::DeleteBatch(keys) => {
                let mut seen = std::collections::HashSet::new();
                let ok = keys.iter().all(|k| seen.insert(*k));
                let ids: Vec<_> = keys.iter().map(|&k| id(k)).collect();
                let r = c.delete_batch(&ids);
                if ok {
                    let n = keys
                        .iter()
                        .filter(|k| model.remove(&id(**k)).is_some())
                        .count();
                    assert_eq!(r.unwrap(), n);
                } else {
                    assert!(r.is_err());
                }
            }
            Op::SetPayload(keys, v, on_p) => {
                let mut seen = std::collections::HashSet::new();
                let ok = keys
                    .iter()
                    .all(|k| seen.insert(*k) && model.contains_key(&id(*k)));
                let ids: Vec<_> = keys.iter().map(|&k| id(k)).collect();
                let key = if on_p { "p" } else { "q" };
                let r = c.update_payload(&ids, PayloadUpdate::set(one(key, v)));
                assert_eq!(r.is_ok(), ok, "{r:?}");
                if ok {
                    for k in &keys {
                        let e = model.get_mut(&id(*k)).expect("checked");
                        *(if on_p { &mut e.payload } else { &mut e.q }) = Some(v);
                        e.version += 1;
                    }
                }
            }
            Op::DeleteQ(keys) => {
                let mut seen = std::collections::HashSet::new();
                let ok = keys
                    .iter()
                    .all(|k| seen.insert(*k) && model.contains_key(&id(*k)));
                let ids: Vec<_> = keys.iter().map(|&k| id(k)).collect();
                let r = c.update_payload(&ids, PayloadUpdate::Delete(vec!["q".into()]));
                assert_eq!(r.is_ok(), ok, "{r:?}");
                if ok {
                    for k in &keys {
                        let e = model.get_mut(&id(*k)).expect("checked");
                        e.q = None;
                        e.version += 1;
                    }
                }
            }
            Op::SetQWhere(t, v) => {
                let below =
                    Filter::new().must(Condition::range("p", Range::default().lt(i64::from(t))));
                let n = c
                    .update_payload_where(&below, PayloadUpdate::set(one("q", v)))
                    .unwrap();
                let mut want = 0;
                for e in model
                    .values_mut()
                    .filter(|e| e.payload.is_some_and(|p| p < t))
                {
                    e.q = Some(v);
                    e.version += 1;
                    want += 1;
                }
                assert_eq!(n, want);
            }
            Op::ClearWhere(t) => {
                let high =
                    Filter::new().must(Condition::range("p", Range::default().gte(i64::from(t))));
                let n = c.update_payload_where(&high, PayloadUpdate::Clear).unwrap();
                let mut want = 0;
                for e in model
                    .values_mut()
                    .filter(|e| e.payload.is_some_and(|p| p >= t))
                {
                    e.payload = None;
                    e.q = None;
                    e.version += 1;
                    want += 1;
                }
                assert_eq!(n, want);
            }
            Op::Reopen => {
                drop(c);
                drop(db);
                db = Database::open(&path).unwrap();
                c = db.collection("m").unwrap();
            }
        }
        check(metric, &c, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn l2_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(Metric::L2, IndexKind::Exact, ops);
    }

    #[test]
    fn cosine_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(Metric::Cosine, IndexKind::Exact, ops);
    }

    #[test]
    fn dot_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(Metric::Dot, IndexKind::Exact, ops);
    }

    #[test]
    fn manhattan_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(Metric::Manhattan, IndexKind::hnsw(), ops);
    }

    /// With fewer entities than its search effort, HNSW must find the exact answer: this
    /// checks its inserts, updates, deletes (graph repair), slot reuse and reload.
    #[test]
    fn hnsw_agrees_with_model_on_small_sets(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(Metric::L2, IndexKind::hnsw(), ops);
    }
}
