//! hybridb integration tests: one binary, one module per area.

mod alias;
mod backup;
mod basics;
mod cache;
mod checkpoint;
mod coord;
mod coord_crash;
mod crash;
mod faults;
mod faulty;
mod feed;
mod filter;
mod fixture;
mod layering;
mod lock;
mod model;
mod named;
mod observe;
mod payload_update;
mod quant;
mod query;
mod reembed;
mod text;
mod validation;
mod verify;
mod writer;

use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
use serde_json::json;

/// A fresh database in its own temporary directory (kept alive by the returned guard).
pub fn fresh() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(dir.path().join("t.redb")).expect("open");
    (dir, db)
}

/// Entity `n` of a small test set: id from the key, payload naming `n`.
pub fn entity(n: u32, vector: Vec<f32>) -> Entity {
    Entity::new(
        EntityId::from_key(&n.to_string()),
        json!({"n": n, "tag": format!("t{}", n % 3)}),
        vector,
    )
}

/// A 3-d L2 collection named `c`.
pub fn l2_collection(db: &Database) -> hybridb::Collection {
    db.create_collection("c", CollectionConfig::new(3, Metric::L2))
        .expect("create collection")
}
