//! Online backup under concurrent writes equals the snapshot at its seq; restore refuses to
//! overwrite unless asked and verifies the result.
//!
//! `HYBRIDB_BACKUP_N` sets the collection size (default 3,000; the long run uses 200,000).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use hybridb::{ChangeKind, CollectionConfig, Database, Entity, EntityId, Metric};
use serde_json::json;

fn e(i: u64) -> Entity {
    Entity::new(
        EntityId::from_key(&format!("b{i}")),
        json!({"i": i}),
        vec![i as f32, 1.0, (i % 7) as f32],
    )
}

/// Every entity's version, scrolling page by page.
fn all_versions(c: &hybridb::Collection) -> HashMap<EntityId, u64> {
    let mut out = HashMap::new();
    let mut after = None;
    loop {
        let page = c.scroll(after, 10_000).unwrap();
        out.extend(page.records.iter().map(|r| (r.id, r.version)));
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

#[test]
fn backup_under_writes_equals_its_snapshot_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("live.redb")).unwrap();
    let c = db
        .create_collection("c", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    let n: u64 = std::env::var("HYBRIDB_BACKUP_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        c.upsert_batch(chunk.iter().map(|&i| e(i)).collect())
            .unwrap();
    }
    db.checkpoint().unwrap();
    let stop = AtomicBool::new(false);
    let backup_path = dir.path().join("backup.redb");
    let mut calls = 0;
    let info = std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = n;
            while !stop.load(Ordering::SeqCst) {
                c.upsert(e(i)).unwrap();
                c.delete(e(i - n + 500).id).unwrap();
                i += 1;
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        let info = db.backup(&backup_path, |_| calls += 1).unwrap();
        stop.store(true, Ordering::SeqCst);
        info
    });
    assert!(calls > 0, "progress reported");
    assert!(
        db.last_seq().unwrap() > info.seq,
        "writes went on during and after the backup"
    );
    assert_eq!(
        info.checkpoints, 1,
        "the earlier checkpoint covers less than the snapshot"
    );
    // Expected content at seq S, from the live change log: last event per id up to S.
    let mut expected: HashMap<EntityId, u64> = HashMap::new();
    for ev in db
        .changes_since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.seq <= info.seq)
    {
        if let Some(id) = ev.id {
            if ev.kind == ChangeKind::Deleted {
                expected.remove(&id);
            } else {
                expected.insert(id, ev.version);
            }
        }
    }
    assert!(
        matches!(db.backup(&backup_path, |_| {}), Err(hybridb::Error::Io(_))),
        "no overwrite"
    );
    // Restore and compare.
    let target = dir.path().join("restored.redb");
    let report = Database::restore(&backup_path, &target, false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let restored = Database::open(&target).unwrap();
    assert_eq!(restored.last_seq().unwrap(), info.seq);
    let rc = restored.collection("c").unwrap();
    let got: HashMap<EntityId, u64> = rc
        .scroll(None, 10_000)
        .unwrap()
        .records
        .into_iter()
        .map(|r| (r.id, r.version))
        .collect();
    let got = if got.len() < 10_000 {
        got
    } else {
        all_versions(&rc)
    };
    assert_eq!(got.len() as u64, info.entities);
    assert_eq!(got, expected, "backup equals the snapshot at its seq");
    assert_eq!(rc.indexed_count(), got.len());
    drop(rc);
    drop(restored);
    // Restoring over an existing database needs the flag.
    assert!(Database::restore(&backup_path, &target, false).is_err());
    assert!(
        Database::restore(&backup_path, &target, true)
            .unwrap()
            .is_clean()
    );
    // A missing backup is an error and leaves the target alone.
    assert!(Database::restore(dir.path().join("nope.redb"), &target, true).is_err());
    assert!(Database::open(&target).is_ok());
}

type Dump = std::collections::BTreeMap<String, Vec<(EntityId, u64, serde_json::Value, Vec<f32>)>>;

/// Every collection's records, in id order.
fn dump(db: &Database) -> Dump {
    let mut out = Dump::new();
    for info in db.collections() {
        let c = db.collection(&info.name).unwrap();
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let page = c.scroll(after, 1000).unwrap();
            rows.extend(page.records.into_iter().map(|r| {
                (
                    r.id,
                    r.version,
                    serde_json::Value::Object(r.payload),
                    r.vector,
                )
            }));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        out.insert(info.name, rows);
    }
    out
}

#[test]
fn incremental_backups_restore_to_each_snapshot() {
    use hybridb::{Condition, Filter, PayloadIndexKind};
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let db = Database::open(p("live.redb")).unwrap();
    let a = db
        .create_collection(
            "a",
            CollectionConfig::new(3, Metric::L2).with_payload_index("i", PayloadIndexKind::Integer),
        )
        .unwrap();
    let gone = db
        .create_collection("gone", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    a.upsert_batch((0..200).map(e).collect()).unwrap();
    gone.upsert_batch((0..20).map(e).collect()).unwrap();
    let full = db.backup(p("full.redb"), |_| {}).unwrap();
    assert_eq!(full.base, None);

    // Window 1: updates, deletes (freeing slots), new entities (reusing them), a dropped
    // collection, a new one, a new payload index.
    a.upsert_batch((150..260).map(e).collect()).unwrap();
    a.delete_batch(&(0..40).map(|i| e(i).id).collect::<Vec<_>>())
        .unwrap();
    a.upsert_batch((1000..1030).map(e).collect()).unwrap();
    drop(gone);
    db.drop_collection("gone").unwrap();
    let b = db
        .create_collection("b", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    b.upsert_batch((0..50).map(e).collect()).unwrap();
    b.create_payload_index("i", PayloadIndexKind::Integer)
        .unwrap();
    db.ack("reader", 5).unwrap();
    let inc1 = db
        .backup_incremental(p("inc1.redb"), full.seq, |_| {})
        .unwrap();
    assert_eq!(inc1.base, Some(full.seq));
    let at_inc1 = dump(&db);

    // Window 2: the name "gone" comes back as another collection; more churn.
    let g2 = db
        .create_collection("gone", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    g2.upsert_batch((5..9).map(e).collect()).unwrap();
    let small = Filter::new().must(Condition::range("i", hybridb::Range::default().lt(100)));
    a.delete_by_filter(&small).unwrap();
    b.upsert(e(7)).unwrap();
    let inc2 = db
        .backup_incremental(p("inc2.redb"), inc1.seq, |_| {})
        .unwrap();
    let at_inc2 = dump(&db);
    assert!(
        inc2.entities < 300,
        "an increment carries only what changed"
    );

    // The increments open as nothing but increments.
    assert!(matches!(
        Database::open(p("inc1.redb")),
        Err(hybridb::Error::Io(_))
    ));
    let target = p("restored.redb");
    Database::restore(p("full.redb"), &target, false).unwrap();
    // Out of order: refused, and the target is untouched.
    let e2 = Database::apply_incremental(p("inc2.redb"), &target);
    assert!(e2.is_err(), "{e2:?}");
    let r1 = Database::apply_incremental(p("inc1.redb"), &target).unwrap();
    assert!(r1.is_clean(), "{r1:?}");
    {
        let restored = Database::open(&target).unwrap();
        assert_eq!(dump(&restored), at_inc1);
        assert_eq!(restored.last_seq().unwrap(), inc1.seq);
        assert_eq!(restored.cursor("reader").unwrap(), Some(5));
        let rb = restored.collection("b").unwrap();
        assert_eq!(rb.config().payload_indexes.len(), 1);
        assert_eq!(rb.count_where(&small).unwrap(), 50);
    }
    let r2 = Database::apply_incremental(p("inc2.redb"), &target).unwrap();
    assert!(r2.is_clean(), "{r2:?}");
    let restored = Database::open(&target).unwrap();
    assert_eq!(dump(&restored), at_inc2);
    let changes = restored.changes_since(0, 100_000).unwrap();
    assert_eq!(
        changes.len() as u64,
        inc2.seq,
        "the change log continues without gaps"
    );

    // Past retention: refused with a typed error.
    drop(restored);
    let pruned_db = Database::builder()
        .retain_changes(1)
        .open(p("pruned.redb"))
        .unwrap();
    let c = pruned_db
        .create_collection("c", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    c.upsert_batch((0..10).map(e).collect()).unwrap();
    c.upsert_batch((0..10).map(e).collect()).unwrap();
    pruned_db.prune_changes().unwrap();
    assert!(matches!(
        pruned_db.backup_incremental(p("late.redb"), 1, |_| {}),
        Err(hybridb::Error::ChangesPruned { .. })
    ));
}
