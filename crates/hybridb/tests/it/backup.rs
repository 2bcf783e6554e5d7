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
