//! Collection aliases: resolution wherever a name is accepted, atomic repoints, durability,
//! and typed errors for every collision.

use hybridb::{AliasInfo, CollectionConfig, Database, Entity, EntityId, Error, Metric};
use serde_json::json;

fn cfg(dim: u32) -> CollectionConfig {
    CollectionConfig::new(dim, Metric::L2)
}

#[test]
fn an_alias_resolves_repoints_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    {
        let db = Database::open(&path).unwrap();
        let v1 = db.create_collection("v1", cfg(2)).unwrap();
        let v2 = db.create_collection("v2", cfg(3)).unwrap();
        v1.upsert(Entity::new(
            EntityId::from_key("x"),
            json!({"v": 1}),
            vec![1.0, 0.0],
        ))
        .unwrap();
        v2.upsert(Entity::new(
            EntityId::from_key("x"),
            json!({"v": 2}),
            vec![1.0, 0.0, 0.0],
        ))
        .unwrap();
        db.create_alias("docs", "v1").unwrap();
        let via_alias = db.collection("docs").unwrap();
        assert_eq!(via_alias.name(), "v1");
        assert_eq!(
            via_alias
                .get(EntityId::from_key("x"))
                .unwrap()
                .unwrap()
                .payload["v"],
            1
        );
        // Writes through the alias land in the target.
        via_alias
            .upsert(Entity::new(
                EntityId::from_key("y"),
                json!({}),
                vec![0.0, 1.0],
            ))
            .unwrap();
        assert_eq!(v1.count().unwrap(), 2);

        assert_eq!(db.swap_alias("docs", "v2").unwrap(), "v1");
        // A handle stays bound to what it resolved to; a new resolution follows the repoint.
        assert_eq!(via_alias.name(), "v1");
        assert_eq!(via_alias.count().unwrap(), 2);
        let now = db.collection("docs").unwrap();
        assert_eq!(now.name(), "v2");
        assert_eq!(now.config().dim, 3);
        assert_eq!(
            now.search(&[1.0, 0.0, 0.0], 1).unwrap()[0].id,
            EntityId::from_key("x")
        );
        assert_eq!(db.set_alias("other", "v1").unwrap(), None);
        assert_eq!(db.set_alias("other", "v2").unwrap(), Some("v1".to_string()));
    }
    let db = Database::open(&path).unwrap();
    assert_eq!(
        db.aliases(),
        vec![
            AliasInfo {
                alias: "docs".into(),
                collection: "v2".into()
            },
            AliasInfo {
                alias: "other".into(),
                collection: "v2".into()
            },
        ]
    );
    assert_eq!(db.collection("docs").unwrap().name(), "v2");
    assert_eq!(db.delete_alias("other").unwrap(), "v2");
    assert_eq!(db.alias_target("other"), None);
    assert!(matches!(
        db.collection("other"),
        Err(Error::CollectionNotFound(_))
    ));
}

#[test]
fn alias_collisions_and_bad_requests_get_typed_errors() {
    let (_dir, db) = crate::fresh();
    db.create_collection("v1", cfg(2)).unwrap();
    db.create_collection("v2", cfg(2)).unwrap();
    db.create_alias("docs", "v1").unwrap();

    assert!(matches!(
        db.create_alias("v2", "v1"),
        Err(Error::NameIsCollection(n)) if n == "v2"
    ));
    assert!(matches!(
        db.create_collection("docs", cfg(2)),
        Err(Error::NameIsAlias(n)) if n == "docs"
    ));
    assert!(matches!(
        db.create_alias("docs", "v2"),
        Err(Error::AliasExists(n)) if n == "docs"
    ));
    assert!(matches!(
        db.create_alias("x", "missing"),
        Err(Error::CollectionNotFound(_))
    ));
    // Aliases do not chain.
    assert!(matches!(
        db.create_alias("x", "docs"),
        Err(Error::CollectionNotFound(_))
    ));
    assert!(matches!(
        db.swap_alias("nope", "v1"),
        Err(Error::AliasNotFound(_))
    ));
    assert!(matches!(
        db.delete_alias("nope"),
        Err(Error::AliasNotFound(_))
    ));
    assert!(matches!(
        db.create_alias("bad name!", "v1"),
        Err(Error::InvalidCollectionName { .. })
    ));
    assert!(matches!(
        db.create_alias("", "v1"),
        Err(Error::InvalidCollectionName { .. })
    ));
    // A collection with an alias cannot be dropped; an alias is not dropped as a collection.
    match db.drop_collection("v1") {
        Err(Error::CollectionHasAliases {
            collection,
            aliases,
        }) => {
            assert_eq!(collection, "v1");
            assert_eq!(aliases, vec!["docs".to_string()]);
        }
        other => panic!("expected CollectionHasAliases, got {other:?}"),
    }
    assert!(matches!(
        db.drop_collection("docs"),
        Err(Error::NameIsAlias(_))
    ));
    assert!(db.collection("v1").is_ok());
    // Nothing of the refused requests was written.
    assert_eq!(db.aliases().len(), 1);
    db.swap_alias("docs", "v2").unwrap();
    db.drop_collection("v1").unwrap();
    assert!(db.collection("v1").is_err());
    assert_eq!(db.collection("docs").unwrap().name(), "v2");
}

#[test]
fn a_backup_keeps_the_aliases() {
    let (dir, db) = crate::fresh();
    db.create_collection("v1", cfg(2)).unwrap();
    db.create_alias("docs", "v1").unwrap();
    let target = dir.path().join("backup.redb");
    db.backup(&target, |_| {}).unwrap();
    drop(db);
    let restored = Database::open(&target).unwrap();
    assert_eq!(restored.collection("docs").unwrap().name(), "v1");
}

#[test]
fn verify_reports_a_dangling_alias_and_a_damaged_log_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    {
        let db = Database::open(&path).unwrap();
        db.create_collection("v1", cfg(2)).unwrap();
        db.create_alias("docs", "v1").unwrap();
        assert!(db.verify().unwrap().is_clean());
    }
    {
        // Damage the file behind hybridb's back.
        let raw = redb::Database::create(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        {
            let mut aliases = txn
                .open_table(redb::TableDefinition::<&str, &str>::new("aliases"))
                .unwrap();
            aliases.insert("ghost", "missing").unwrap();
            let mut txns = txn
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("coord.txns"))
                .unwrap();
            txns.insert(9, [7u8, 1, 2].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let report = db.verify().unwrap();
    assert!(!report.is_clean());
    let text = report.problems.join("\n");
    assert!(
        text.contains("\"ghost\" points to missing collection"),
        "{text}"
    );
    assert!(text.contains("2PC transaction 9"), "{text}");
}

#[test]
fn incremental_backups_carry_alias_changes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let db = Database::open(p("live.redb")).unwrap();
    db.create_collection("v1", cfg(2)).unwrap();
    db.create_alias("docs", "v1").unwrap();
    db.create_alias("old", "v1").unwrap();
    let full = db.backup(p("full.redb"), |_| {}).unwrap();
    let v2 = db.create_collection("v2", cfg(3)).unwrap();
    v2.upsert(Entity::new(
        EntityId::from_key("x"),
        json!({}),
        vec![1.0, 0.0, 0.0],
    ))
    .unwrap();
    db.swap_alias("docs", "v2").unwrap();
    db.delete_alias("old").unwrap();
    let inc = db
        .backup_incremental(p("inc.redb"), full.seq, |_| {})
        .unwrap();
    let target = p("restored.redb");
    Database::restore(p("full.redb"), &target, false).unwrap();
    assert!(
        Database::apply_incremental(p("inc.redb"), &target)
            .unwrap()
            .is_clean()
    );
    let restored = Database::open(&target).unwrap();
    assert_eq!(restored.last_seq().unwrap(), inc.seq);
    assert_eq!(
        restored.aliases(),
        vec![AliasInfo {
            alias: "docs".into(),
            collection: "v2".into()
        }]
    );
    assert_eq!(restored.collection("docs").unwrap().count().unwrap(), 1);
}
