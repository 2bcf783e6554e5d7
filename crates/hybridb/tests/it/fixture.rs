//! A database file written by an earlier release opens, verifies clean and answers as it did.
//!
//! `tests/fixtures/format-v1.redb` was made by [`write_format_v1_fixture`] with the code of
//! on-disk format version 1 (the format before named vectors), and is kept in git: it is the
//! one binary file the repository holds on purpose. When the format changes, opening it must
//! migrate it in place; this test checks the migrated file against the same expectations.
//! (Never regenerate it with newer code: that would test nothing.)

use std::path::{Path, PathBuf};

use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, Filter, IndexKind, Metric,
    PayloadIndexKind, SearchRequest,
};
use serde_json::json;

const DIM: usize = 8;
const DOCS: u32 = 60;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1.redb")
}

/// Vector `n` of the fixture: pseudo-random from `n` (xorshift), so no two point the same way.
fn vector(n: u32) -> Vec<f32> {
    let mut s = n.wrapping_mul(2_654_435_761) ^ 0x9E37_79B9;
    (0..DIM)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn id(n: u32) -> EntityId {
    EntityId::from_key(&format!("doc-{n}"))
}

/// Writes the fixture. Run once, with the code of the format it stands for:
/// `HYBRIDB_WRITE_FIXTURE=1 cargo test -p hybridb --test it fixture::write -- --ignored`.
#[test]
#[ignore = "writes tests/fixtures/format-v1.redb; run only with the code of that format"]
fn write_format_v1_fixture() {
    if std::env::var_os("HYBRIDB_WRITE_FIXTURE").is_none() {
        return;
    }
    let path = fixture();
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("fixtures dir");
    let db = Database::builder()
        .checkpoint_on_close(false)
        .open(&path)
        .expect("open");
    let docs = db
        .create_collection(
            "docs",
            CollectionConfig::new(DIM as u32, Metric::Cosine)
                .with_payload_index("lang", PayloadIndexKind::Keyword)
                .with_payload_index("n", PayloadIndexKind::Integer),
        )
        .expect("docs");
    let exact = db
        .create_collection(
            "exact",
            CollectionConfig::new(DIM as u32, Metric::L2).with_index(IndexKind::Exact),
        )
        .expect("exact");
    for n in 0..DOCS {
        let lang = ["en", "de", "fr"][n as usize % 3];
        let payload = json!({"lang": lang, "n": n, "title": format!("Document {n}")});
        docs.upsert(Entity::new(id(n), payload, vector(n)))
            .expect("upsert");
    }
    for n in 0..10 {
        exact
            .upsert(Entity::new(id(n), json!({"n": n}), vector(n)))
            .expect("upsert");
    }
    // Updates and deletes leave versions above 1, freed slots and a longer change log.
    for n in (0..DOCS).step_by(5) {
        let payload = json!({"lang": "en", "n": n, "title": format!("Document {n} v2")});
        docs.upsert(Entity::new(id(n), payload, vector(n + 100)))
            .expect("update");
    }
    docs.delete_batch(&[id(1), id(2), id(3)]).expect("delete");
    db.create_alias("current", "docs").expect("alias");
    db.ack("fixture-reader", 10).expect("cursor");
    db.sync().expect("sync");
    drop((docs, exact));
    db.compact().expect("compact");
    db.close().expect("close");
}

/// The fixture, copied (opening may migrate it in place) and opened.
fn open_copy() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.redb");
    std::fs::copy(fixture(), &path).expect("copy the fixture");
    let db = Database::open(&path).expect("open the old file");
    (dir, db)
}

#[test]
fn a_format_v1_file_opens_verifies_and_answers() {
    let (_dir, db) = open_copy();
    let report = db.verify().expect("verify");
    assert!(report.is_clean(), "{report:?}");

    let mut names: Vec<_> = db.collections().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(names, ["docs", "exact"]);
    assert_eq!(db.alias_target("current").as_deref(), Some("docs"));
    assert_eq!(db.cursor("fixture-reader").expect("cursor"), Some(10));

    let docs = db.collection("current").expect("docs by alias");
    assert_eq!(docs.count().expect("count"), u64::from(DOCS) - 3);
    assert!(
        docs.get(id(1)).expect("get").is_none(),
        "deleted stays deleted"
    );
    let updated = docs.get(id(5)).expect("get").expect("doc 5");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.payload["title"], "Document 5 v2");
    let plain = docs.get(id(7)).expect("get").expect("doc 7");
    assert_eq!(plain.version, 1);
    assert_eq!(plain.payload["lang"], "de");

    // Search finds each stored vector first (cosine: itself at similarity 1).
    for n in [0u32, 7, 25, 59] {
        let v = if n % 5 == 0 {
            vector(n + 100)
        } else {
            vector(n)
        };
        let hits = docs.search(&v, 1).expect("search");
        assert_eq!(hits[0].id, id(n), "doc {n}");
        assert!((hits[0].score - 1.0).abs() < 1e-4);
    }
    // The payload indexes answer filters.
    let de = Filter::new().must(Condition::matches_value("lang", "de"));
    let want = (0..DOCS)
        .filter(|n| ![1, 2, 3].contains(n) && n % 5 != 0 && n % 3 == 1)
        .count();
    assert_eq!(docs.count_where(&de).expect("count_where"), want as u64);
    let hits = docs
        .search_with(&SearchRequest::new(vector(4), 5).filter(de))
        .expect("filtered search");
    assert_eq!(hits.len(), 5);

    let exact = db.collection("exact").expect("exact");
    assert_eq!(exact.count().expect("count"), 10);
    let hits = exact.search(&vector(3), 1).expect("search");
    assert_eq!(hits[0].id, id(3));
    assert_eq!(hits[0].score, 0.0);

    // It takes new writes.
    docs.upsert(Entity::new(id(1000), json!({"lang": "en"}), vector(1000)))
        .expect("a new write");
    assert!(db.verify().expect("verify").is_clean());

    // Migrated to format 2: named vectors can be added and used, and survive a reopen.
    docs.add_vector("terms", hybridb::VectorConfig::sparse(false))
        .expect("add a named vector to a migrated collection");
    let terms = hybridb::SparseVector::new(vec![3, 9], vec![1.0, 2.0]);
    docs.upsert(
        Entity::new(id(1001), json!({"lang": "en"}), vector(1001)).with_vector("terms", terms),
    )
    .expect("write with a named vector");
    let path = _dir.path().join("old.redb");
    drop((docs, exact));
    drop(db);
    {
        let file = redb::Database::open(&path).expect("open with redb");
        let txn = redb::ReadableDatabase::begin_read(&file).expect("read");
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        let version = txn
            .open_table(meta)
            .expect("meta")
            .get("format_version")
            .expect("get")
            .map(|v| v.value());
        assert_eq!(version, Some(2), "opening migrated the file to format 2");
    }
    let db = Database::open(&path).expect("reopen");
    assert!(db.verify().expect("verify").is_clean());
    let docs = db.collection("docs").expect("docs");
    let hits = docs
        .search_with(&SearchRequest::new_sparse(
            "terms",
            hybridb::SparseVector::new(vec![9], vec![1.0]),
            3,
        ))
        .expect("sparse search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, id(1001));
    assert_eq!(hits[0].score, 2.0);
}
