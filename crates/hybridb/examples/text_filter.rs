//! What a text index does for `match: {text}` filters: counts and filtered searches on a JSON
//! lines corpus (one `{"text": ...}` object per line), once on a field with a text index
//! (candidates from the index, payloads decide) and once on the same text without one (every
//! payload read), in one run, taking turns. Prints one JSON line per query.
//!
//! ```sh
//! zcat ../shared/data/pydoc/corpus.jsonl.gz > /tmp/pydoc.jsonl
//! cargo run --release -p hybridb --example text_filter -- /tmp/pydoc.jsonl
//! ```

use std::io::BufRead;
use std::time::Instant;

use hybridb::{
    CollectionConfig, Database, Entity, EntityId, Filter, IndexKind, Metric, SearchRequest,
    TextIndexConfig,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: text_filter CORPUS.jsonl")?;
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().join("t.redb"))?;
    let c = db.create_collection(
        "docs",
        CollectionConfig::new(2, Metric::L2)
            .with_index(IndexKind::Exact)
            .with_text_index("indexed", TextIndexConfig::english()),
    )?;
    let mut batch = Vec::new();
    let mut n = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(&path)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let text = v["text"].as_str().unwrap_or_default().to_string();
        let vector = vec![(n % 97) as f32, (n % 89) as f32];
        batch.push(Entity::new(
            EntityId::from_u128(u128::from(n) + 1),
            json!({"indexed": text, "plain": text}),
            vector,
        ));
        n += 1;
        if batch.len() == 1000 {
            c.upsert_batch(std::mem::take(&mut batch))?;
        }
    }
    c.upsert_batch(batch)?;
    let reps = 5;
    for q in [
        "asyncio event loop",
        "dictionary",
        "file",
        "the",
        "deprecated since version",
    ] {
        let mut row = serde_json::Map::new();
        row.insert("query".into(), json!(q));
        row.insert("entities".into(), json!(n));
        let mut micros = [0u128; 4];
        let mut counts = [0u64; 2];
        for _ in 0..reps {
            for (i, field) in ["indexed", "plain"].into_iter().enumerate() {
                let f =
                    Filter::from_json(&json!({"must": [{"key": field, "match": {"text": q}}]}))?;
                let t = Instant::now();
                counts[i] = c.count_where(&f)?;
                micros[i] += t.elapsed().as_micros();
                let t = Instant::now();
                c.search_with(&SearchRequest::new(vec![0.0, 0.0], 10).filter(f))?;
                micros[2 + i] += t.elapsed().as_micros();
            }
        }
        assert_eq!(counts[0], counts[1], "{q}: the index changed the answer");
        row.insert("matches".into(), json!(counts[0]));
        for (i, name) in [
            "count_ms_text_index",
            "count_ms_payloads",
            "search_ms_text_index",
            "search_ms_payloads",
        ]
        .into_iter()
        .enumerate()
        {
            row.insert(
                name.into(),
                json!((micros[i] as f64 / reps as f64 / 1000.0 * 100.0).round() / 100.0),
            );
        }
        println!("{}", serde_json::Value::Object(row));
    }
    Ok(())
}
