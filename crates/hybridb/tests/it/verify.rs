//! verify: a clean database reports clean; damaged slot maps and change-log gaps are reported
//! (not panicked on); verify_and_repair rebuilds derived state.

use std::time::Duration;

use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
use redb::{ReadableDatabase, TableDefinition};
use serde_json::json;

fn fill(db: &Database) {
    let c = db
        .create_collection("c", CollectionConfig::new(3, Metric::L2))
        .unwrap();
    c.upsert_batch(
        (0..200)
            .map(|i| {
                Entity::new(
                    EntityId::from_key(&i.to_string()),
                    json!({"i": i}),
                    vec![i as f32, 1.0, 2.0],
                )
            })
            .collect(),
    )
    .unwrap();
    c.delete_batch(
        &(0..200)
            .step_by(9)
            .map(|i| EntityId::from_key(&i.to_string()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let e = db
        .create_collection(
            "e",
            CollectionConfig::new(2, Metric::Dot).with_index(hybridb::IndexKind::Exact),
        )
        .unwrap();
    e.upsert(Entity::new(
        EntityId::from_key("x"),
        json!({}),
        vec![1.0, 1.0],
    ))
    .unwrap();
}

#[test]
fn clean_database_verifies_clean_and_repair_keeps_it_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("v.redb")).unwrap();
    fill(&db);
    let r = db.verify().unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.collections.len(), 2);
    assert_eq!(r.collections[0].entities, 200 - 23);
    assert_eq!(r.changes, db.last_seq().unwrap());
    db.checkpoint().unwrap();
    let r = db.verify_and_repair().unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(db.collection("c").unwrap().indexed_count(), 177);
}

#[test]
fn damaged_slot_map_and_change_log_gap_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    {
        let db = Database::builder()
            .checkpoint_every(0, Duration::ZERO)
            .open(&path)
            .unwrap();
        fill(&db);
    } // close writes the HNSW checkpoint
    {
        // Damage the file behind hybridb's back: swap the ids of two slots, drop one change.
        let raw = redb::Database::open(&path).unwrap();
        let slots: TableDefinition<u32, EntityId> = TableDefinition::new("c1.slots");
        let changes: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
        let (a, b) = {
            let r = raw.begin_read().unwrap();
            let t = r.open_table(slots).unwrap();
            (
                t.get(1).unwrap().unwrap().value(),
                t.get(2).unwrap().unwrap().value(),
            )
        };
        let w = raw.begin_write().unwrap();
        {
            let mut t = w.open_table(slots).unwrap();
            t.insert(1, b).unwrap();
            t.insert(2, a).unwrap();
            w.open_table(changes).unwrap().remove(5).unwrap();
        }
        w.commit().unwrap();
    }
    // The checkpoint path only checks counts, so the database opens; verify finds the damage.
    let db = Database::open(&path).unwrap();
    let r = db.verify().unwrap();
    assert!(!r.is_clean());
    let c = &r.collections[0];
    assert!(
        c.problems
            .iter()
            .any(|p| p.contains("slot 1") || p.contains("slot 2")),
        "{:?}",
        c.problems
    );
    assert!(
        r.problems.iter().any(|p| p.contains("expected seq 5")),
        "{:?}",
        r.problems
    );
    assert!(
        r.collections[1].problems.is_empty(),
        "the other collection is fine"
    );
}

#[test]
fn compaction_shrinks_the_file_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let db = Database::open(&path).unwrap();
    let c = db
        .create_collection("c", CollectionConfig::new(64, Metric::L2))
        .unwrap();
    let ids: Vec<EntityId> = (0..3000)
        .map(|i| EntityId::from_key(&format!("k{i}")))
        .collect();
    c.upsert_batch(
        ids.iter()
            .enumerate()
            .map(|(i, id)| Entity::new(*id, json!({"pad": "x".repeat(200)}), vec![i as f32; 64]))
            .collect(),
    )
    .unwrap();
    c.delete_batch(&ids[..2900]).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    assert!(db.compact().unwrap());
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after < before, "{after} < {before}");
    assert_eq!(c.count().unwrap(), 100);
    assert!(db.verify().unwrap().is_clean());
    c.upsert(Entity::new(
        EntityId::from_key("new"),
        json!({}),
        vec![1.0; 64],
    ))
    .unwrap();
    assert_eq!(c.count().unwrap(), 101);
}

/// Opening refuses files of another format version and files whose tables disagree, with
/// typed errors (not panics).
#[test]
fn open_refuses_other_formats_and_inconsistent_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    {
        let db = Database::open(&path).unwrap();
        fill(&db);
    }
    let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let vectors: TableDefinition<EntityId, &[u8]> = TableDefinition::new("c1.vectors");
    // A vector row removed behind hybridb's back: the counts disagree.
    {
        let raw = redb::Database::open(&path).unwrap();
        let w = raw.begin_write().unwrap();
        w.open_table(vectors)
            .unwrap()
            .remove(EntityId::from_key("1"))
            .unwrap();
        w.commit().unwrap();
    }
    let err = Database::open(&path).unwrap_err();
    assert!(matches!(err, hybridb::Error::Corrupted(_)), "{err:?}");
    assert!(!err.is_user_error());
    // Another format version.
    {
        let raw = redb::Database::open(&path).unwrap();
        let w = raw.begin_write().unwrap();
        w.open_table(meta)
            .unwrap()
            .insert("format_version", 99)
            .unwrap();
        w.commit().unwrap();
    }
    assert!(matches!(
        Database::open(&path),
        Err(hybridb::Error::IncompatibleFormat {
            found: 99,
            supported: 2
        })
    ));
}
