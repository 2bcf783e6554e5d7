//! BM25 text indexes on payload fields: exact against the reference index over the same
//! analyzed terms, kept in step by upserts, payload updates and deletes, reloaded on reopen,
//! declared online with a backfill, carried by backups and increments, and usable as a query
//! stage (hybrid RRF with a dense search).

use std::collections::BTreeMap;

use hybridb::index::bm25::{Bm25Index, Bm25Params};
use hybridb::index::text::{Analyzer, Language, Tokenizer};
use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, Error, Filter, Metric,
    PayloadIndexKind, PayloadUpdate, Query, QueryProblem, SearchRequest, TextIndexConfig,
};
use serde_json::json;

const WORDS: &[&str] = &[
    "database",
    "vector",
    "search",
    "running",
    "runs",
    "index",
    "the",
    "query",
    "filters",
    "payload",
    "engine",
    "fast",
    "embedded",
    "transaction",
    "crash",
    "recovery",
    "text",
    "ranking",
    "documents",
    "python",
];

fn id(n: u32) -> EntityId {
    EntityId::from_key(&format!("t{n}"))
}

fn body(n: u32, salt: u32) -> String {
    let mut s = u64::from(n) * 0x9E37_79B9 + u64::from(salt) * 31 + 7;
    let len = 3 + (n % 9) as usize;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            WORDS[(s % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn entity(n: u32, salt: u32) -> Entity {
    Entity::new(
        id(n),
        json!({"body": body(n, salt), "g": n % 3}),
        vec![n as f32 % 7.0, 1.0],
    )
}

fn config() -> CollectionConfig {
    CollectionConfig::new(2, Metric::L2)
        .with_payload_index("g", PayloadIndexKind::Integer)
        .with_text_index("body", TextIndexConfig::english())
}

fn analyzer() -> Analyzer {
    Analyzer::new(Tokenizer::Unicode)
        .with_stop_words(Language::English)
        .with_stemming(Language::English)
}

/// The reference: a BM25 index over the model's texts, exhaustive search, ids by key order.
fn reference(
    model: &BTreeMap<u32, String>,
    q: &str,
    k: usize,
    pass: impl Fn(u32) -> bool,
) -> Vec<(EntityId, f32)> {
    let a = analyzer();
    let mut index = Bm25Index::new(Bm25Params::default());
    let keys: Vec<u32> = model.keys().copied().collect();
    // Slots in id order, so the reference's slot ties are id ties.
    let mut by_id: Vec<(EntityId, u32)> = keys.iter().map(|&n| (id(n), n)).collect();
    by_id.sort();
    for (slot, (_, n)) in by_id.iter().enumerate() {
        let terms = a.terms(&model[n]);
        if !terms.is_empty() {
            index.insert(slot as u32, &terms);
        }
    }
    index
        .search_exhaustive(&a.terms(q), k, &|slot| pass(by_id[slot as usize].1))
        .into_iter()
        .map(|(slot, score)| (by_id[slot as usize].0, score))
        .collect()
}

fn check(c: &hybridb::Collection, model: &BTreeMap<u32, String>) {
    for q in [
        "vector search",
        "running the database",
        "crash recovery text",
        "python",
    ] {
        let got: Vec<(EntityId, f32)> = c
            .search_with(&SearchRequest::new_text("body", q, 10))
            .expect("text search")
            .iter()
            .map(|h| (h.id, h.score))
            .collect();
        let want = reference(model, q, 10, |_| true);
        assert_eq!(got.len(), want.len(), "{q}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{q}: {got:?} vs {want:?}");
            assert!((g.1 - w.1).abs() < 1e-4, "{q}");
        }
        let g1 = Filter::new().must(Condition::matches_value("g", 1));
        let got = c
            .search_with(&SearchRequest::new_text("body", q, 10).filter(g1))
            .expect("filtered");
        let want = reference(model, q, 10, |n| n % 3 == 1);
        assert_eq!(
            got.iter().map(|h| h.id).collect::<Vec<_>>(),
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            "filtered {q}"
        );
    }
}

#[test]
fn text_search_is_exact_and_follows_writes_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("text.redb");
    let mut model: BTreeMap<u32, String> = BTreeMap::new();
    {
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("c", config()).expect("create");
        c.upsert_batch((0..200).map(|n| entity(n, 0)).collect())
            .expect("upsert");
        for n in 0..200 {
            model.insert(n, body(n, 0));
        }
        check(&c, &model);
        // Rewrites, payload updates that change and drop the text, deletes, new entities.
        c.upsert_batch((0..30).map(|n| entity(n, 1)).collect())
            .expect("rewrite");
        for n in 0..30 {
            model.insert(n, body(n, 1));
        }
        let mut set = serde_json::Map::new();
        set.insert("body".into(), json!("embedded vector database engine"));
        c.update_payload(&[id(40), id(41)], PayloadUpdate::set(set))
            .expect("set body");
        model.insert(40, "embedded vector database engine".into());
        model.insert(41, "embedded vector database engine".into());
        c.update_payload(&[id(42)], PayloadUpdate::Delete(vec!["body".into()]))
            .expect("drop body");
        model.insert(42, String::new());
        c.delete_batch(&[id(50), id(51), id(52)]).expect("delete");
        for n in [50, 51, 52] {
            model.remove(&n);
        }
        c.upsert_batch((300..310).map(|n| entity(n, 0)).collect())
            .expect("new");
        for n in 300..310 {
            model.insert(n, body(n, 0));
        }
        check(&c, &model);
        assert!(db.verify().expect("verify").is_clean());
    }
    let db = Database::open(&path).expect("reopen");
    let c = db.collection("c").expect("c");
    check(&c, &model);
    assert!(db.verify().expect("verify").is_clean());
    // A hybrid query: dense and text fused by RRF.
    let q = Query::rrf(vec![
        Query::nearest(vec![3.0, 1.0], 20),
        Query::text("body", "vector database", 20),
    ])
    .limit(5);
    assert_eq!(c.query(&q).expect("hybrid").len(), 5);
    assert!(matches!(
        c.search_with(&SearchRequest::new_text("nope", "x", 3)),
        Err(Error::InvalidQuery(QueryProblem::UnknownTextIndex(_)))
    ));
}

#[test]
fn text_indexes_are_declared_online_and_carried_by_backups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n);
    let db = Database::open(p("src.redb")).expect("open");
    let c = db
        .create_collection(
            "c",
            CollectionConfig::new(2, Metric::L2).with_payload_index("g", PayloadIndexKind::Integer),
        )
        .expect("create");
    c.upsert_batch((0..100).map(|n| entity(n, 0)).collect())
        .expect("upsert");
    let model: BTreeMap<u32, String> = (0..100).map(|n| (n, body(n, 0))).collect();
    assert!(
        c.create_text_index("body", TextIndexConfig::english())
            .expect("declare")
    );
    assert!(
        !c.create_text_index("body", TextIndexConfig::english())
            .expect("again")
    );
    check(&c, &model);
    let full = db.backup(p("full.redb"), |_| {}).expect("backup");
    c.upsert_batch((0..10).map(|n| entity(n, 2)).collect())
        .expect("rewrite");
    let mut later = model.clone();
    for n in 0..10 {
        later.insert(n, body(n, 2));
    }
    let inc = db
        .backup_incremental(p("inc.redb"), full.seq, |_| {})
        .expect("increment");
    assert!(inc.seq > full.seq);
    assert!(
        Database::restore(p("full.redb"), p("t.redb"), false)
            .expect("restore")
            .is_clean()
    );
    assert!(
        Database::apply_incremental(p("inc.redb"), p("t.redb"))
            .expect("apply")
            .is_clean()
    );
    {
        let t = Database::open(p("t.redb")).expect("open target");
        check(&t.collection("c").expect("c"), &later);
    }
    assert!(c.drop_text_index("body").expect("drop"));
    assert!(matches!(
        c.search_with(&SearchRequest::new_text("body", "vector", 3)),
        Err(Error::InvalidQuery(QueryProblem::UnknownTextIndex(_)))
    ));
    assert!(db.verify().expect("verify").is_clean());
}

/// A text field value: a string, an array of strings (some nested), or an object on the way.
fn text_value(words: Vec<Vec<u8>>, shape: u8) -> serde_json::Value {
    let texts: Vec<String> = words
        .iter()
        .map(|w| {
            w.iter()
                .map(|&i| WORDS[i as usize % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    match shape % 4 {
        0 => json!(texts.join(", ")),
        1 => json!(texts),
        2 => json!([texts.first(), [texts.get(1)], 3]),
        _ => json!(texts.iter().map(|t| json!({"t": t})).collect::<Vec<_>>()),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// `match: {text | phrase}` filters answer the same with the field's text index (stemming,
    /// stop words: candidates from the index, payloads decide) as `Filter::matches` says, in
    /// counts, scrolls and filtered searches; and as on a field without an index.
    #[test]
    fn text_filters_agree_with_the_model(
        docs in proptest::collection::vec(
            (proptest::collection::vec(proptest::collection::vec(0u8..20, 0..6), 0..3), 0u8..4),
            1..40,
        ),
        queries in proptest::collection::vec((proptest::collection::vec(0u8..20, 1..3), proptest::bool::ANY), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("t.redb")).unwrap();
        let c = db
            .create_collection(
                "t",
                CollectionConfig::new(2, Metric::L2)
                    .with_text_index("body", TextIndexConfig::english())
                    .with_text_index("nested.t", TextIndexConfig::english()),
            )
            .unwrap();
        let mut payloads = Vec::new();
        for (n, (words, shape)) in docs.into_iter().enumerate() {
            let v = text_value(words, shape);
            let p = json!({"body": v.clone(), "plain": v.clone(), "nested": v});
            payloads.push((id(n as u32), p.as_object().cloned().unwrap()));
            c.upsert(Entity::new(id(n as u32), p, vec![n as f32, 1.0])).unwrap();
        }
        for (q, phrase) in queries {
            let text: Vec<&str> = q.iter().map(|&i| WORDS[i as usize]).collect();
            let op = if phrase { "phrase" } else { "text" };
            for key in ["body", "plain", "nested.t"] {
                let f = Filter::from_json(&json!({"must": [{"key": key, "match": {op: text.join(" ")}}]})).unwrap();
                let want: Vec<EntityId> = {
                    let mut w: Vec<EntityId> = payloads.iter().filter(|(i, p)| f.matches(*i, p)).map(|(i, _)| *i).collect();
                    w.sort();
                    w
                };
                proptest::prop_assert_eq!(c.count_where(&f).unwrap(), want.len() as u64, "count {} {}", key, op);
                let scrolled: Vec<EntityId> = c.scroll_where(&f, None, 1000).unwrap().records.iter().map(|r| r.id).collect();
                proptest::prop_assert_eq!(&scrolled, &want, "scroll {} {}", key, op);
                let mut searched: Vec<EntityId> = c
                    .search_with(&SearchRequest::new(vec![0.0, 1.0], 1000).filter(f.clone()))
                    .unwrap()
                    .iter()
                    .map(|h| h.id)
                    .collect();
                searched.sort();
                proptest::prop_assert_eq!(&searched, &want, "search {} {}", key, op);
            }
        }
    }
}
