//! Quantized collections: the walk on codes keeps recall, plain and filtered; a checkpoint
//! keeps the trained state (a reopen neither retrains nor rebuilds); a rebuild retrains to the
//! same recall; bad settings get typed errors; the `f32` originals kept in a file answer as
//! in memory, through reopens and crashes, and leave nothing behind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, Error, Filter, IndexKind, Metric,
    Originals, PayloadIndexKind, Quantization, QueryProblem, SearchRequest, VectorConfig,
};
use serde_json::json;

const DIM: usize = 128;
const N: u64 = 3000;

/// Entity `i`'s vector: around one of 12 centers (clustered, like real embeddings).
fn vector(i: u64, salt: u64) -> Vec<f32> {
    let mut s = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 2000) as f32 / 1000.0 - 1.0
    };
    // The center's components: a hash of (cluster, dimension), in [-1, 1).
    let c = i % 12;
    (0..DIM as u64)
        .map(|d| {
            let h = (c * 1000 + d).wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (h % 2000) as f32 / 1000.0 - 1.0 + next()
        })
        .collect()
}

fn key(i: u64) -> EntityId {
    EntityId::from_key(&format!("e{i}"))
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Mean recall@10 of the collection's searches (optionally among even `i` only) against
/// brute force. Rescoring 8x: this data (uniform noise around 12 centers, so every
/// neighbour of a query is at nearly the same distance) is hard for the low-bit codes.
fn recall(db: &Database, even_only: bool) -> f64 {
    let c = db.collection("q").unwrap();
    let mut hit = 0;
    let queries = 30;
    for q in 0..queries {
        let query = vector(q * 101 + 7, 55);
        let mut all: Vec<(f32, u64)> = (0..N)
            .filter(|i| !even_only || i % 2 == 0)
            .map(|i| (l2(&query, &vector(i, 0)), i))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let truth: Vec<EntityId> = all[..10].iter().map(|p| key(p.1)).collect();
        let mut req = SearchRequest::new(query, 10).oversampling(8.0);
        if even_only {
            req = req.filter(Filter::new().must(Condition::matches_value("even", true)));
        }
        let hits = c.search_with(&req).unwrap();
        assert_eq!(hits.len(), 10);
        hit += hits.iter().filter(|h| truth.contains(&h.id)).count();
    }
    hit as f64 / (10 * queries) as f64
}

fn config(q: Quantization) -> CollectionConfig {
    CollectionConfig::new(DIM as u32, Metric::L2)
        .with_quantization(q)
        .with_payload_index("even", PayloadIndexKind::Bool)
}

fn load(db: &Database) {
    let c = db.collection("q").unwrap();
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        let batch = chunk
            .iter()
            .map(|&i| Entity::new(key(i), json!({"even": i % 2 == 0}), vector(i, 0)))
            .collect();
        c.upsert_batch(batch).unwrap();
    }
}

/// Writes the `N` entities with their vector as the named vector `v` (no default vector).
fn load_named(c: &hybridb::Collection) {
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        let batch = chunk
            .iter()
            .map(|&i| Entity::new(key(i), json!({}), vec![]).with_vector("v", vector(i, 0)))
            .collect();
        c.upsert_batch(batch).unwrap();
    }
}

/// Opens `path`, counting the progress reports of HNSW rebuilds (an exact index, such as the
/// empty default one of a collection with only named vectors, always reports its load).
fn open(path: &std::path::Path) -> (Database, Arc<Mutex<usize>>) {
    let rebuilds = Arc::new(Mutex::new(0));
    let r = Arc::clone(&rebuilds);
    let db = Database::builder()
        .checkpoint_every(0, Duration::ZERO)
        .on_rebuild_progress(move |p| {
            if !p.reason.contains("exact index") {
                *r.lock().unwrap() += 1;
            }
        })
        .open(path)
        .unwrap();
    (db, rebuilds)
}

#[test]
fn quantized_collections_keep_recall_through_checkpoints_and_rebuilds() {
    for q in [Quantization::Sq8, Quantization::Rq2, Quantization::Rq4] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.redb");
        let (db, _) = open(&path);
        db.create_collection("q", config(q)).unwrap();
        load(&db);
        let plain = recall(&db, false);
        let filtered = recall(&db, true);
        assert!(plain >= 0.9, "{q:?}: recall {plain}");
        assert!(filtered >= 0.9, "{q:?}: filtered recall {filtered}");
        let answers = |db: &Database| {
            let c = db.collection("q").unwrap();
            (0..10)
                .map(|i| c.search(&vector(i * 13, 9), 10).unwrap())
                .collect::<Vec<_>>()
        };
        let before = answers(&db);
        db.checkpoint().unwrap();
        drop(db);

        // Reopen: the checkpoint (with the trained state and codes) loads, nothing rebuilds,
        // and every answer is the same.
        let (db, rebuilds) = open(&path);
        assert_eq!(*rebuilds.lock().unwrap(), 0, "{q:?}: reopen rebuilt");
        assert_eq!(answers(&db), before, "{q:?}: answers after reopen");
        assert_eq!(recall(&db, false), plain);
        drop(db);

        // Without the checkpoint the index is rebuilt and retrained: the same recall.
        let mut index_dir = path.as_os_str().to_owned();
        index_dir.push(".index");
        std::fs::remove_dir_all(&index_dir).unwrap();
        let (db, rebuilds) = open(&path);
        assert!(*rebuilds.lock().unwrap() > 0, "{q:?}: no rebuild");
        let rebuilt = recall(&db, false);
        assert!(
            rebuilt >= plain - 0.03,
            "{q:?}: {rebuilt} after a rebuild, {plain} before"
        );
        assert!(recall(&db, true) >= 0.9);
    }
}

#[test]
fn quantization_settings_are_checked() {
    let (_dir, db) = crate::fresh();
    let bad_config = |c: CollectionConfig| {
        matches!(
            db.create_collection("x", c),
            Err(Error::InvalidConfig(m)) if m.contains("quantization")
        )
    };
    for q in [Quantization::Rq1, Quantization::Rq2, Quantization::Rq4] {
        assert!(bad_config(
            CollectionConfig::new(8, Metric::Manhattan).with_quantization(q)
        ));
    }
    assert!(bad_config(
        CollectionConfig::new(8, Metric::L2)
            .with_index(IndexKind::Exact)
            .with_quantization(Quantization::Sq8)
    ));
    db.create_collection(
        "m",
        CollectionConfig::new(4, Metric::Manhattan).with_quantization(Quantization::Sq8),
    )
    .unwrap();
    let c = db.collection("m").unwrap();
    c.upsert(Entity::new(key(1), json!({}), vec![1.0, 2.0, 3.0, 4.0]))
        .unwrap();
    for bad in [0.5, f32::NAN, 65.0] {
        let req = SearchRequest::new(vec![1.0; 4], 1).oversampling(bad);
        assert!(
            matches!(
                c.search_with(&req),
                Err(Error::InvalidQuery(QueryProblem::BadOversampling(_)))
            ),
            "{bad}"
        );
    }
    let req = SearchRequest::new(vec![1.0; 4], 1).oversampling(3.0);
    assert_eq!(c.search_with(&req).unwrap()[0].id, key(1));
}

#[test]
fn a_quantized_named_vector_walks_codes_and_reloads_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.redb");
    let (db, _) = open(&path);
    let config = CollectionConfig::named_only().with_vector(
        "v",
        VectorConfig::dense_quantized(
            DIM as u32,
            Metric::L2,
            IndexKind::default(),
            Quantization::Rq4,
        ),
    );
    let c = db.create_collection("n", config).unwrap();
    load_named(&c);
    let answers = |db: &Database| -> Vec<Vec<EntityId>> {
        let c = db.collection("n").unwrap();
        (0..20)
            .map(|q| {
                let req = SearchRequest::new(vector(q * 101 + 7, 55), 10)
                    .using("v")
                    .oversampling(8.0);
                c.search_with(&req).unwrap().iter().map(|h| h.id).collect()
            })
            .collect()
    };
    let before = answers(&db);
    let mut hit = 0;
    for (q, found) in before.iter().enumerate() {
        let query = vector(q as u64 * 101 + 7, 55);
        let mut all: Vec<(f32, u64)> = (0..N).map(|i| (l2(&query, &vector(i, 0)), i)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        hit += all[..10]
            .iter()
            .filter(|p| found.contains(&key(p.1)))
            .count();
    }
    assert!(hit >= 180, "recall {}", hit as f64 / 200.0);
    db.checkpoint().unwrap();
    drop(c);
    drop(db);
    let (db, rebuilds) = open(&path);
    assert_eq!(*rebuilds.lock().unwrap(), 0, "reopen rebuilt");
    assert_eq!(answers(&db), before);
}

/// The top 10 of 20 queries at `oversampling` (1: the codes' own ranking, on a quantized
/// index), of the default vector or the named one `using`.
fn answers_at(db: &Database, name: &str, using: &str, oversampling: f32) -> Vec<Vec<EntityId>> {
    let c = db.collection(name).unwrap();
    (0..20)
        .map(|q| {
            let req = SearchRequest::new(vector(q * 101 + 7, 55), 10)
                .using(using)
                .oversampling(oversampling);
            c.search_with(&req).unwrap().iter().map(|h| h.id).collect()
        })
        .collect()
}

/// Opens `path` with the originals placed as `originals`, inserting on one thread (the graph
/// is then a function of the data alone, whatever the placement).
fn open_placed(path: &std::path::Path, originals: Originals) -> Database {
    Database::builder()
        .checkpoint_every(0, Duration::ZERO)
        .index_threads(1)
        .originals(originals)
        .open(path)
        .unwrap()
}

/// Names in `dir` other than the database's own file and checkpoint folder.
fn strays(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("q.redb"))
        .collect()
}

#[test]
fn quantization_changes_online_and_survives_a_reopen() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    let (db, _) = open(&path);
    db.create_collection("q", config(Quantization::None))
        .unwrap();
    load(&db);
    let f32_answers = answers_at(&db, "q", "", 1.0);
    let c = db.collection("q").unwrap();
    let f32_bytes = c.index_memory_bytes();
    let vector_bytes = N as usize * DIM * 4;

    // Searches go on while the codes train; each one answers in full.
    let (stop, searched) = (AtomicBool::new(false), AtomicUsize::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(c.search(&vector(3, 77), 10).unwrap().len(), 10);
                searched.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(c.set_quantization("", Quantization::Rq2).unwrap());
        stop.store(true, Ordering::Relaxed);
    });
    assert!(searched.load(Ordering::Relaxed) > 0);
    assert_eq!(c.config().quantization, Quantization::Rq2);
    // The originals moved to their file at once (not at the next load): the resident index
    // lost the f32 vectors and gained 2-bit codes.
    let coded_bytes = c.index_memory_bytes();
    assert!(
        coded_bytes + vector_bytes * 3 / 4 <= f32_bytes,
        "{coded_bytes} resident after quantizing, {f32_bytes} before"
    );
    // Two bits rank differently from f32 (so the walk is on the codes); rescoring brings the
    // recall back.
    assert_ne!(
        answers_at(&db, "q", "", 1.0),
        f32_answers,
        "the walk ignores the codes"
    );
    assert!(recall(&db, false) >= 0.9);
    // The same setting again retrains (from the same even sample: the same codes).
    assert!(!c.set_quantization("", Quantization::Rq2).unwrap());
    let rq2_answers = answers_at(&db, "q", "", 1.0);
    drop(c);
    drop(db);

    // The change checkpointed the index: a reopen loads the codes, rebuilds nothing.
    let (db, rebuilds) = open(&path);
    assert_eq!(*rebuilds.lock().unwrap(), 0, "reopen rebuilt");
    let c = db.collection("q").unwrap();
    assert_eq!(c.config().quantization, Quantization::Rq2);
    assert_eq!(answers_at(&db, "q", "", 1.0), rq2_answers);

    // Back to f32: the same answers as before any codes, before and after a reopen; the
    // originals are back in memory, where the f32 walk reads them.
    assert!(c.set_quantization("", Quantization::None).unwrap());
    assert_eq!(answers_at(&db, "q", "", 1.0), f32_answers);
    assert!(c.index_memory_bytes() >= vector_bytes);
    drop(c);
    drop(db);
    let (db, rebuilds) = open(&path);
    assert_eq!(*rebuilds.lock().unwrap(), 0, "reopen rebuilt");
    assert_eq!(
        db.collection("q").unwrap().config().quantization,
        Quantization::None
    );
    assert_eq!(answers_at(&db, "q", "", 1.0), f32_answers);
}

#[test]
fn named_vectors_change_quantization_and_bad_changes_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.redb");
    let (db, _) = open(&path);
    let config = CollectionConfig::named_only()
        .with_vector("v", VectorConfig::dense(DIM as u32, Metric::L2))
        .with_vector("s", VectorConfig::sparse(false));
    let c = db.create_collection("n", config).unwrap();
    load_named(&c);
    let f32_answers = answers_at(&db, "n", "v", 1.0);
    assert!(c.set_quantization("v", Quantization::Rq1).unwrap());
    let rq1_answers = answers_at(&db, "n", "v", 1.0);
    assert_ne!(rq1_answers, f32_answers, "the walk ignores the codes");
    let quantized = |db: &Database| match db.collection("n").unwrap().config().vectors["v"] {
        VectorConfig::Dense { quantization, .. } => quantization,
        other => panic!("declared dense, reads {other:?}"),
    };
    assert_eq!(quantized(&db), Quantization::Rq1);

    // Bad changes: typed errors, and the stored config stays as it was.
    let before = c.config();
    for (using, q) in [
        ("", Quantization::Sq8),     // no default vector
        ("s", Quantization::Sq8),    // sparse
        ("nope", Quantization::Sq8), // unknown
    ] {
        assert!(
            matches!(c.set_quantization(using, q), Err(Error::InvalidConfig(_))),
            "{using:?}"
        );
    }
    // (In another database: these empty indexes have no checkpoint to reload.)
    let (_other_dir, other) = crate::fresh();
    let m = other
        .create_collection("m", CollectionConfig::new(4, Metric::Manhattan))
        .unwrap();
    let e = other
        .create_collection(
            "e",
            CollectionConfig::new(4, Metric::L2).with_index(IndexKind::Exact),
        )
        .unwrap();
    assert!(matches!(
        m.set_quantization("", Quantization::Rq2),
        Err(Error::InvalidConfig(msg)) if msg.contains("quantization")
    ));
    assert!(matches!(
        e.set_quantization("", Quantization::Sq8),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(c.config(), before);
    assert_eq!(m.config().quantization, Quantization::None);
    assert_eq!(e.config().quantization, Quantization::None);
    drop((c, m, e));
    drop(db);

    let (db, rebuilds) = open(&path);
    assert_eq!(*rebuilds.lock().unwrap(), 0, "reopen rebuilt");
    assert_eq!(quantized(&db), Quantization::Rq1);
    assert_eq!(answers_at(&db, "n", "v", 1.0), rq1_answers);
}

#[test]
fn originals_in_a_file_answer_as_in_memory_through_reopens_and_crashes() {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let d = root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (mem_path, file_path) = (dir("m").join("q.redb"), dir("f").join("q.redb"));
    let mem = open_placed(&mem_path, Originals::Memory);
    let file = open_placed(&file_path, Originals::BesideDatabase);
    // A directory that does not exist: the originals stay in memory, answers are the same.
    let lost = open_placed(
        &dir("l").join("q.redb"),
        Originals::In(root.path().join("none")),
    );
    for db in [&mem, &file, &lost] {
        db.create_collection("q", config(Quantization::Rq2))
            .unwrap();
        load(db);
    }
    let bytes = |db: &Database| db.collection("q").unwrap().index_memory_bytes();
    let vectors = N as usize * DIM * 4;
    assert!(
        bytes(&file) + vectors <= bytes(&mem),
        "{} {}",
        bytes(&file),
        bytes(&mem)
    );
    assert_eq!(bytes(&lost), bytes(&mem));
    let answers = |db: &Database| {
        let c = db.collection("q").unwrap();
        (0..20)
            .map(|i| c.search(&vector(i * 13, 9), 10).unwrap())
            .collect::<Vec<_>>()
    };
    let want = answers(&mem);
    assert_eq!(answers(&file), want);
    assert_eq!(answers(&lost), want);
    let plain = recall(&file, false);
    assert!(plain >= 0.9, "recall {plain}");
    assert_eq!(recall(&file, true), recall(&mem, true));
    file.checkpoint().unwrap();
    drop(file);
    assert!(strays(&dir("f")).is_empty(), "{:?}", strays(&dir("f")));

    // Reopen: the checkpoint's vectors go to a new file; same answers, same memory.
    let (file, rebuilds) = open(&file_path);
    assert_eq!(*rebuilds.lock().unwrap(), 0, "reopen rebuilt");
    assert!(bytes(&file) + vectors <= bytes(&mem));
    assert_eq!(answers(&file), want);
    assert_eq!(recall(&file, false), plain);

    // Changes after the checkpoint, then a crash at that instant: the image reopens with a
    // new file of its own and answers for the changes.
    let c = file.collection("q").unwrap();
    let moved = vector(5, 77);
    c.upsert(Entity::new(key(5), json!({"even": false}), moved.clone()))
        .unwrap();
    c.delete(key(6)).unwrap();
    let added = vector(N + 1, 3);
    c.upsert(Entity::new(
        key(N + 1),
        json!({"even": false}),
        added.clone(),
    ))
    .unwrap();
    let crashed = dir("c").join("q.redb");
    crate::checkpoint::crash_image(&file_path, &crashed);
    let (image, _) = open(&crashed);
    let ci = image.collection("q").unwrap();
    for (query, id) in [(&moved, key(5)), (&added, key(N + 1))] {
        let hit = &ci.search(query, 1).unwrap()[0];
        assert_eq!(hit.id, id);
        assert!(hit.score.abs() < 1e-3, "{}", hit.score);
    }
    let near_six = ci.search(&vector(6, 0), 10).unwrap();
    assert!(near_six.iter().all(|h| h.id != key(6)));
    assert!(recall(&image, false) >= plain - 0.03);
    drop((c, ci, image, file));
    for d in ["f", "c"] {
        assert!(strays(&dir(d)).is_empty(), "{d}: {:?}", strays(&dir(d)));
    }
}

#[test]
fn auto_quantization_is_resolved_at_creation_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    let (db, _) = open(&path);
    let dense = |c: &CollectionConfig, name: &str| match c.vectors[name] {
        VectorConfig::Dense { quantization, .. } => quantization,
        ref other => panic!("declared dense, reads {other:?}"),
    };
    // `new` and `dense` start from auto; what is stored is the resolved choice.
    let wide = CollectionConfig::new(384, Metric::Cosine)
        .with_vector("narrow", VectorConfig::dense(DIM as u32, Metric::L2))
        .with_vector("wide", VectorConfig::dense(768, Metric::Dot))
        .with_vector("l1", VectorConfig::dense(768, Metric::Manhattan));
    assert_eq!(wide.quantization, Quantization::Auto);
    let c = db.create_collection("wide", wide).unwrap();
    let stored = c.config();
    assert_eq!(stored.quantization, Quantization::Rq4);
    assert_eq!(dense(&stored, "narrow"), Quantization::None);
    assert_eq!(dense(&stored, "wide"), Quantization::Rq4);
    assert_eq!(dense(&stored, "l1"), Quantization::None);
    let narrow = db
        .create_collection("narrow", CollectionConfig::new(DIM as u32, Metric::L2))
        .unwrap();
    assert_eq!(narrow.config().quantization, Quantization::None);
    let exact = db
        .create_collection(
            "exact",
            CollectionConfig::new(1024, Metric::L2).with_index(IndexKind::Exact),
        )
        .unwrap();
    assert_eq!(exact.config().quantization, Quantization::None);

    // A change to auto resolves for that vector: the narrow one stays `f32`, a wide one
    // turned off gets rq4 back.
    assert!(!narrow.set_quantization("", Quantization::Auto).unwrap());
    assert_eq!(narrow.config().quantization, Quantization::None);
    assert!(c.set_quantization("wide", Quantization::None).unwrap());
    assert!(c.set_quantization("wide", Quantization::Auto).unwrap());
    assert_eq!(dense(&c.config(), "wide"), Quantization::Rq4);
    // A vector declared later resolves too; declaring it again the same way changes nothing.
    let later = || VectorConfig::dense(512, Metric::Cosine);
    assert!(c.add_vector("later", later()).unwrap());
    assert_eq!(dense(&c.config(), "later"), Quantization::Rq4);
    assert!(!c.add_vector("later", later()).unwrap());
    drop((c, narrow, exact));
    drop(db);

    let (db, _) = open(&path);
    let stored = db.collection("wide").unwrap().config();
    assert_eq!(
        stored.quantization,
        Quantization::Rq4,
        "the choice is stored"
    );
    assert_eq!(dense(&stored, "wide"), Quantization::Rq4);
    assert_eq!(dense(&stored, "later"), Quantization::Rq4);
    assert_eq!(
        db.collection("narrow").unwrap().config().quantization,
        Quantization::None
    );
}
