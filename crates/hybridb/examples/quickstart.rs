//! Quickstart: creates `./hybridb-data/quickstart.redb`, loads a small sample of documents with
//! their embeddings, and prints the nearest documents for a few queries.
//!
//! Run with `cargo run --release --example quickstart`. Running it again reuses the file: the
//! same ids are upserted again (their versions go up) and the results stay the same.
//!
//! The embeddings come from a tiny feature-hashing "model" (each word adds a signed unit to a
//! few of 64 dimensions), so that the example needs no download; in a real application they
//! come from an embedding model.

use hybridb::{CollectionConfig, Database, Entity, EntityId, Error, Metric, SearchRequest};
use serde_json::json;

const DIM: usize = 64;

const DOCS: &[(&str, &str, &str)] = &[
    (
        "doc-1",
        "en",
        "Rust makes systems programming safe and fast",
    ),
    (
        "doc-2",
        "en",
        "An embedded database keeps data in a single local file",
    ),
    (
        "doc-3",
        "en",
        "Vector search finds the nearest embeddings to a query",
    ),
    (
        "doc-4",
        "de",
        "Eine eingebettete Datenbank speichert Daten in einer Datei",
    ),
    (
        "doc-5",
        "en",
        "Agents remember facts by storing embeddings with their state",
    ),
    (
        "doc-6",
        "en",
        "Recommendation services rank items by vector similarity",
    ),
    (
        "doc-7",
        "en",
        "A crash must never lose an acknowledged database write",
    ),
    (
        "doc-8",
        "fr",
        "La recherche vectorielle trouve les plus proches voisins",
    ),
];

/// Feature hashing: every lower-cased word adds +-1 to three dimensions chosen by its hash.
fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    for word in text.split_whitespace() {
        let word = word.to_lowercase();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        for i in 0..3 {
            let bits = h.rotate_left(i * 21);
            let sign = if bits & 1 == 0 { 1.0 } else { -1.0 };
            v[(bits >> 1) as usize % DIM] += sign;
        }
    }
    v
}

fn main() -> Result<(), Error> {
    std::fs::create_dir_all("hybridb-data")?;
    let db = Database::open("hybridb-data/quickstart.redb")?;
    let docs = match db.collection("docs") {
        Ok(c) => c,
        Err(Error::CollectionNotFound(_)) => {
            db.create_collection("docs", CollectionConfig::new(DIM as u32, Metric::Cosine))?
        }
        Err(e) => return Err(e),
    };

    let batch = DOCS
        .iter()
        .map(|(key, lang, text)| {
            Entity::new(
                EntityId::from_key(key),
                json!({"key": key, "lang": lang, "text": text}),
                embed(text),
            )
        })
        .collect();
    let written = docs.upsert_batch(batch)?;
    println!(
        "stored {} documents in {} (collection 'docs' now holds {}; last change #{})",
        written.len(),
        db.path().display(),
        docs.count()?,
        db.last_seq()?
    );

    for query in [
        "embedded database file",
        "nearest vector embeddings",
        "never lose a write",
    ] {
        println!("\nquery: {query:?}");
        let hits = docs.search_with(&SearchRequest::new(embed(query), 3).with_payload(true))?;
        for hit in hits {
            let payload = hit.payload.unwrap_or_default();
            println!(
                "  {:.3}  {} [{}] {}",
                hit.score, payload["key"], payload["lang"], payload["text"]
            );
        }
    }
    Ok(())
}
