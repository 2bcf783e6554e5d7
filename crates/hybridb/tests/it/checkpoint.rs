//! HNSW checkpoints: reopening loads the checkpoint and replays later changes (no rebuild);
//! a damaged or foreign checkpoint means a rebuild with progress reports, to the same result.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hybridb::{
    CollectionConfig, Database, DatabaseBuilder, Entity, EntityId, Metric, RebuildProgress,
};
use serde_json::json;

const DIM: usize = 16;

fn vector(i: u64, salt: u64) -> Vec<f32> {
    // Deterministic pseudo-random components in [-1, 1).
    let mut s = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (0..DIM)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn key(i: u64) -> EntityId {
    EntityId::from_key(&format!("e{i}"))
}

/// A builder that never checkpoints by itself (only on close and on request).
fn quiet() -> DatabaseBuilder {
    Database::builder().checkpoint_every(0, Duration::ZERO)
}

fn with_progress_log(b: DatabaseBuilder) -> (DatabaseBuilder, Arc<Mutex<Vec<RebuildProgress>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    (
        b.on_rebuild_progress(move |p| l.lock().unwrap().push(p)),
        log,
    )
}

/// Copies the database file and its checkpoint folder: with the writer idle and every write
/// at Immediate durability, this is exactly what a crash at this instant would leave.
pub(crate) fn crash_image(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let (src, dst) = (index_dir(from), index_dir(to));
    if src.exists() {
        std::fs::create_dir_all(&dst).unwrap();
        for f in std::fs::read_dir(&src).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
        }
    }
}

fn index_dir(db: &Path) -> std::path::PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".index");
    s.into()
}

/// Top-10 ids for a few queries.
fn answers(db: &Database) -> Vec<Vec<EntityId>> {
    let c = db.collection("c").unwrap();
    (0..20)
        .map(|q| {
            c.search(&vector(q, 99), 10)
                .unwrap()
                .iter()
                .map(|h| h.id)
                .collect()
        })
        .collect()
}

/// Fraction of top-10 ids two answer sets share.
fn overlap(a: &[Vec<EntityId>], b: &[Vec<EntityId>]) -> f64 {
    let shared: usize = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.iter().filter(|id| y.contains(id)).count())
        .sum();
    shared as f64 / a.iter().map(Vec::len).sum::<usize>().max(1) as f64
}

fn build(db: &Database, n: u64) {
    let c = db
        .create_collection("c", CollectionConfig::new(DIM as u32, Metric::Cosine))
        .unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        c.upsert_batch(
            chunk
                .iter()
                .map(|&i| Entity::new(key(i), json!({"i": i}), vector(i, 0)))
                .collect(),
        )
        .unwrap();
    }
}

/// Changes after the checkpoint: new entities, new vectors, deletes, and slot reuse.
fn later_changes(db: &Database) {
    let c = db.collection("c").unwrap();
    let deleted: Vec<_> = (0..300).step_by(7).map(key).collect();
    c.delete_batch(&deleted).unwrap();
    c.upsert_batch(
        (2000..2100)
            .map(|i| Entity::new(key(i), json!({"i": i}), vector(i, 0)))
            .collect(),
    )
    .unwrap();
    c.upsert_batch(
        (300..360)
            .map(|i| Entity::new(key(i), json!({"i": i}), vector(i, 5)))
            .collect(),
    )
    .unwrap();
    // Payload-only updates: replay leaves their graph nodes alone.
    c.upsert_batch(
        (400..500)
            .map(|i| Entity::new(key(i), json!({"i": i, "touched": true}), vector(i, 0)))
            .collect(),
    )
    .unwrap();
}

#[test]
fn reopen_loads_the_checkpoint_and_replays_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    let live_answers;
    {
        let db = quiet().open(&path).unwrap();
        build(&db, 1500);
        assert_eq!(db.checkpoint().unwrap(), 1);
        assert_eq!(db.checkpoint().unwrap(), 0, "unchanged: no new checkpoint");
        later_changes(&db);
        live_answers = answers(&db);
        crash_image(&path, &dir.path().join("crash.redb"));
    }
    // The crash image holds the checkpoint taken before `later_changes`.
    let (b, log) = with_progress_log(quiet());
    let db = b.open(dir.path().join("crash.redb")).unwrap();
    assert!(
        log.lock().unwrap().is_empty(),
        "loaded from checkpoint, no rebuild: {:?}",
        log.lock().unwrap()
    );
    let c = db.collection("c").unwrap();
    assert_eq!(c.count().unwrap(), 1500 - 43 + 100);
    assert_eq!(c.indexed_count(), 1500 - 43 + 100);
    assert!(
        overlap(&answers(&db), &live_answers) >= 0.98,
        "replayed index answers like the live one"
    );
    for q in 0..20 {
        for h in c.search(&vector(q, 99), 10).unwrap() {
            assert!(
                c.get(h.id).unwrap().is_some(),
                "no deleted entity comes back"
            );
        }
    }
    // The payload-only updates are found by their own vectors, with their new payloads.
    for i in (400..500).step_by(9) {
        let req = hybridb::SearchRequest::new(vector(i, 0), 1).with_payload(true);
        let hit = &c.search_with(&req).unwrap()[0];
        assert_eq!(hit.id, key(i));
        assert_eq!(hit.payload.as_ref().unwrap()["touched"], true);
    }
    // A clean close checkpoints again; the next open loads it without rebuilding too.
    drop(c);
    drop(db);
    let (b, log) = with_progress_log(quiet());
    let db = b.open(dir.path().join("crash.redb")).unwrap();
    assert!(log.lock().unwrap().is_empty());
    assert!(overlap(&answers(&db), &live_answers) >= 0.98);
}

/// Searches for each of `ids`' own vectors (`salt`) find it first.
fn finds_itself(c: &hybridb::Collection, ids: impl Iterator<Item = u64>, salt: u64, when: &str) {
    for i in ids {
        let hits = c.search(&vector(i, salt), 1).unwrap();
        assert_eq!(hits[0].id, key(i), "{when}: entity {i} found by its vector");
    }
}

/// Writes a database at `path` whose checkpoint precedes `later_changes` and then `more`
/// (closed without a checkpoint, so that the next open has them to replay).
fn with_backlog(path: &Path, more: impl FnOnce(&Database)) {
    let db = quiet().checkpoint_on_close(false).open(path).unwrap();
    build(&db, 1500);
    assert_eq!(db.checkpoint().unwrap(), 1);
    later_changes(&db);
    more(&db);
}

/// Waits until the background linker has built the backlog in.
fn wait_linked(c: &hybridb::Collection) {
    let t = std::time::Instant::now();
    while c.unlinked_count() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the linker finishes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn replayed_changes_answer_at_once_and_are_linked_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    with_backlog(&path, |_| {});
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&path).unwrap();
    assert!(log.lock().unwrap().is_empty(), "loaded, not rebuilt");
    let c = db.collection("c").unwrap();
    // At once, linked or not: replaced vectors and new entities are found by their vectors,
    // deleted ones never come back.
    finds_itself(&c, 300..360, 5, "after open");
    finds_itself(&c, (2000..2100).step_by(3), 0, "after open");
    // Writes right away meet the replayed changes (likely still deferred).
    let gone: Vec<_> = (2000..2010).chain(300..303).map(key).collect();
    c.delete_batch(&gone).unwrap();
    c.upsert_batch(
        (303..320)
            .chain(3000..3020)
            .map(|i| Entity::new(key(i), json!({"i": i}), vector(i, 6)))
            .collect(),
    )
    .unwrap();
    let deleted: Vec<EntityId> = (0..300).step_by(7).map(key).chain(gone).collect();
    let check = |when: &str| {
        finds_itself(&c, 303..320, 6, when);
        finds_itself(&c, 3000..3020, 6, when);
        finds_itself(&c, 320..360, 5, when);
        for q in 0..40 {
            for h in c.search(&vector(q, 99), 10).unwrap() {
                assert!(
                    !deleted.contains(&h.id),
                    "{when}: deleted {:?} returned",
                    h.id
                );
            }
        }
        assert_eq!(c.indexed_count(), 1500 - 43 + 100 - 13 + 20);
    };
    check("during linking");
    wait_linked(&c);
    check("linked");
    assert!(db.verify().unwrap().is_clean());
    // Checkpointing and reopening keep the same answers.
    let before = answers(&db);
    assert_eq!(db.checkpoint().unwrap(), 1);
    drop(c);
    drop(db);
    let db = quiet().open(&path).unwrap();
    assert_eq!(db.collection("c").unwrap().unlinked_count(), 0);
    assert_eq!(answers(&db), before);
}

/// While the linker builds a reopen's backlog in, searches from two threads never return an
/// entity deleted before they started (before the reopen, or by a delete that returned), and
/// every hit has its entity.
#[test]
fn searches_during_linking_never_return_deleted_entities() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    // A larger backlog: 600 new vectors for existing entities.
    with_backlog(&path, |db| {
        db.collection("c")
            .unwrap()
            .upsert_batch(
                (600..1200)
                    .map(|i| Entity::new(key(i), json!({"i": i}), vector(i, 3)))
                    .collect(),
            )
            .unwrap();
    });
    let db = quiet().open(&path).unwrap();
    let c = db.collection("c").unwrap();
    let deleted: Mutex<std::collections::HashSet<EntityId>> =
        Mutex::new((0..300).step_by(7).map(key).collect());
    let done = std::sync::atomic::AtomicBool::new(false);
    let searches = std::sync::atomic::AtomicUsize::new(0);
    let backlog_seen = c.unlinked_count();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (c, deleted, done, searches) = (&c, &deleted, &done, &searches);
            s.spawn(move || {
                let mut q = t;
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    let before = deleted.lock().unwrap().clone();
                    for h in c.search(&vector(q % 50, 99), 10).unwrap() {
                        assert!(!before.contains(&h.id), "deleted {:?} returned", h.id);
                    }
                    q += 2;
                    searches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        // Deletes of entities the backlog holds (new vectors) and of plain graph nodes.
        for chunk in (600..700).chain(1300..1400).collect::<Vec<_>>().chunks(20) {
            let ids: Vec<_> = chunk.iter().map(|&i| key(i)).collect();
            c.delete_batch(&ids).unwrap();
            deleted.lock().unwrap().extend(ids);
        }
        wait_linked(&c);
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    assert!(backlog_seen > 0, "the test ran while changes were deferred");
    assert!(searches.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(c.indexed_count(), 1500 - 43 + 100 - 200);
    finds_itself(&c, (700..1200).step_by(11), 3, "linked");
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn a_damaged_checkpoint_means_a_rebuild_with_progress_and_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.redb");
    let fresh_answers;
    {
        let db = quiet().open(&path).unwrap();
        build(&db, 1200);
        fresh_answers = answers(&db);
    } // close writes a checkpoint
    let ckpt = index_dir(&path).join("c1.hnsw");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&ckpt, &bytes).unwrap();
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&path).unwrap();
    let log = log.lock().unwrap().clone();
    assert!(!log.is_empty(), "rebuild reported progress");
    assert_eq!(log.last().unwrap().done, 1200);
    assert_eq!(log.last().unwrap().total, 1200);
    assert!(
        log[0].reason.contains("graph") || log[0].reason.contains("checksum"),
        "{}",
        log[0].reason
    );
    // The rebuilt graph is another graph: it must answer (almost) like the fresh build.
    let o = overlap(&answers(&db), &fresh_answers);
    assert!(o >= 0.95, "overlap {o}");
}

#[test]
fn a_missing_or_foreign_checkpoint_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    {
        let db = quiet().open(&path).unwrap();
        build(&db, 300);
        let other = db
            .create_collection("d", CollectionConfig::new(DIM as u32, Metric::Cosine))
            .unwrap();
        other
            .upsert_batch(
                (0..50)
                    .map(|i| Entity::new(key(i), json!({}), vector(i, 1)))
                    .collect(),
            )
            .unwrap();
    }
    let ckdir = index_dir(&path);
    // Collection "c" has cid 1, "d" cid 2: give "c" the checkpoint of "d".
    std::fs::copy(ckdir.join("c2.hnsw"), ckdir.join("c1.hnsw")).unwrap();
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&path).unwrap();
    let reasons: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.collection.clone(), p.reason.clone()))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|(c, r)| c == "c" && r.contains("collection id")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().all(|(c, _)| c == "c"),
        "d loads from its own checkpoint"
    );
    assert_eq!(db.collection("c").unwrap().indexed_count(), 300);
    drop(db);
    std::fs::remove_dir_all(&ckdir).unwrap();
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&path).unwrap();
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|p| p.reason.contains("no checkpoint"))
    );
    assert_eq!(db.collection("d").unwrap().indexed_count(), 50);
}

/// Explicit checkpoints from several threads while writes go on (and the background
/// checkpointer runs): each call succeeds, and the file they leave loads.
#[test]
fn concurrent_checkpoints_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cc.redb");
    let db = Database::builder()
        .checkpoint_every(1, std::time::Duration::from_millis(1))
        .open(&path)
        .unwrap();
    build(&db, 600);
    let c = db.collection("c").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..150u64 {
                c.upsert_batch(
                    (0..20)
                        .map(|i| Entity::new(key(i), json!({"i": i}), vector(i, round)))
                        .collect(),
                )
                .unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    db.checkpoint().expect("checkpoint");
                }
            });
        }
    });
    drop(c);
    drop(db);
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&path).unwrap();
    assert!(log.lock().unwrap().is_empty(), "the checkpoint loaded");
    assert_eq!(db.collection("c").unwrap().indexed_count(), 600);
}

/// Top-10 ids of the named vector `n` for a few queries.
fn named_answers(db: &Database) -> Vec<Vec<EntityId>> {
    let c = db.collection("c").unwrap();
    (0..20)
        .map(|q| {
            let req = hybridb::SearchRequest::new(vector(q, 77), 10).using("n");
            c.search_with(&req).unwrap().iter().map(|h| h.id).collect()
        })
        .collect()
}

#[test]
fn named_dense_vectors_are_checkpointed_and_replayed_too() {
    use hybridb::VectorConfig;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.redb");
    let crash = dir.path().join("crash.redb");
    // Entity `i` has the named vector `n` unless i is a multiple of 5 (salt picks its value).
    let entity = |i: u64, salt: u64| {
        let e = Entity::new(key(i), json!({"i": i}), vector(i, 0));
        if i.is_multiple_of(5) {
            e
        } else {
            e.with_vector("n", vector(i, 10 + salt))
        }
    };
    let live;
    {
        let db = quiet().open(&path).unwrap();
        let config = CollectionConfig::new(DIM as u32, Metric::Cosine)
            .with_vector("n", VectorConfig::dense(DIM as u32, Metric::L2));
        let c = db.create_collection("c", config).unwrap();
        for chunk in (0..1200u64).collect::<Vec<_>>().chunks(200) {
            c.upsert_batch(chunk.iter().map(|&i| entity(i, 0)).collect())
                .unwrap();
        }
        assert_eq!(
            db.checkpoint().unwrap(),
            2,
            "the default and the named index"
        );
        assert!(index_dir(&path).join("c1.v1.hnsw").exists());
        // After the checkpoint: deletes (freeing slots), new entities reusing them, changed
        // and dropped named vectors, and payload-only updates.
        c.delete_batch(&(0..200).step_by(3).map(key).collect::<Vec<_>>())
            .unwrap();
        c.upsert_batch((2000..2080).map(|i| entity(i, 0)).collect())
            .unwrap();
        c.upsert_batch((300..340).map(|i| entity(i, 1)).collect())
            .unwrap();
        c.upsert_batch(
            (340..360)
                .map(|i| Entity::new(key(i), json!({"i": i}), vector(i, 0)))
                .collect(),
        )
        .unwrap();
        c.upsert_batch(
            (400..450)
                .map(|i| entity(i, 0))
                .map(|mut e| {
                    e.payload = json!({"i": 0, "touched": true});
                    e
                })
                .collect(),
        )
        .unwrap();
        live = named_answers(&db);
        crash_image(&path, &crash);
    }
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&crash).unwrap();
    assert!(
        log.lock().unwrap().is_empty(),
        "named index loaded from its checkpoint: {:?}",
        log.lock().unwrap()
    );
    assert!(overlap(&named_answers(&db), &live) >= 0.98);
    let c = db.collection("c").unwrap();
    for i in [301u64, 333, 2001, 2079] {
        let req =
            hybridb::SearchRequest::new(vector(i, if i < 2000 { 11 } else { 10 }), 1).using("n");
        assert_eq!(c.search_with(&req).unwrap()[0].id, key(i), "entity {i}");
    }
    for q in 0..20 {
        let req = hybridb::SearchRequest::new(vector(q, 77), 10).using("n");
        for h in c.search_with(&req).unwrap() {
            let r = c.get(h.id).unwrap().expect("no deleted entity comes back");
            assert!(r.vectors.contains_key("n"), "only entities that have it");
        }
    }
    assert!(db.verify().unwrap().is_clean());
    drop(c);
    drop(db);
    // A damaged named checkpoint means a rebuild of that vector, reported, same answers.
    std::fs::write(index_dir(&crash).join("c1.v1.hnsw"), b"garbage").unwrap();
    let (b, log) = with_progress_log(quiet());
    let db = b.open(&crash).unwrap();
    let reports = log.lock().unwrap().clone();
    assert!(
        reports.iter().any(|p| p.reason.contains("vector \"n\"")),
        "{reports:?}"
    );
    assert!(overlap(&named_answers(&db), &live) >= 0.98);
    assert!(db.verify().unwrap().is_clean());
}
