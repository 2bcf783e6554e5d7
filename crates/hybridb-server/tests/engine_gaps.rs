//! Engine behaviour this crate depends on, found missing while building the Qdrant layer and
//! since fixed in the engine: these tests keep it fixed.

use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric, VectorConfig, fusion};

/// `Collection::remove_vector` must invalidate the record cache: an entity read at least
/// twice before the removal (the cache admits on the second read) must not be answered with
/// the removed vector afterwards, from any handle. Seen through the Qdrant API as points that keep
/// a deleted named vector in `retrieve` (`scripts/qdrant/compat_named.py`, `administer`).
#[test]
fn remove_vector_leaves_cached_records_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("r.redb")).unwrap();
    let config =
        CollectionConfig::new(2, Metric::L2).with_vector("t", VectorConfig::dense(2, Metric::L2));
    let c = db.create_collection("c", config).unwrap();
    let id = EntityId::from_u128(1);
    c.upsert(
        Entity::new(id, serde_json::json!({}), vec![1.0, 0.0]).with_vector("t", vec![0.0, 1.0]),
    )
    .unwrap();
    for _ in 0..3 {
        assert!(c.get(id).unwrap().unwrap().vectors.contains_key("t"));
    }
    assert!(c.remove_vector("t").unwrap());
    let after = c.get(id).unwrap().unwrap();
    assert!(
        after.vectors.is_empty(),
        "stale after remove_vector: {:?}",
        after.vectors
    );
}

/// `hybridb::fusion::dbsf` is Qdrant's DBSF: the sample deviation (`n - 1`), no clamping (the
/// Qdrant layer keeps its own copy in `src/qdrant/fusion.rs`, with qdrant-client's tie order).
#[test]
fn fusion_dbsf_matches_qdrant() {
    let ids: Vec<EntityId> = (1..=3).map(EntityId::from_u128).collect();
    let list = [(ids[0], 3.0f32), (ids[1], 2.0), (ids[2], 1.0)];
    let fused = fusion::dbsf(&[&list], 3);
    // Qdrant: mean 2, sample σ 1, so (s - (2 - 3)) / 6: 4/6, 3/6, 2/6.
    let want = [4.0 / 6.0, 0.5, 2.0 / 6.0];
    for ((_, got), want) in fused.iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{fused:?}");
    }
}
