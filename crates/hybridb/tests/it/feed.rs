//! The change feed: ordered exactly-once delivery from durable cursors across restarts and a
//! reopen, retention that never drops an unacknowledged event, async and blocking use.

use std::time::Duration;

use hybridb::{CollectionConfig, Database, Entity, EntityId, Error, Metric};
use serde_json::json;

fn entity(i: u64) -> Entity {
    Entity::new(
        EntityId::from_key(&format!("f{i}")),
        json!({"i": i}),
        vec![i as f32, 1.0],
    )
}

#[test]
fn a_consumer_sees_every_event_once_in_order_across_restarts_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.redb");
    let mut seen: Vec<u64> = Vec::new();
    for round in 0..2 {
        let db = Database::open(&path).unwrap();
        let c = match db.collection("c") {
            Ok(c) => c,
            Err(_) => db
                .create_collection("c", CollectionConfig::new(2, Metric::L2))
                .unwrap(),
        };
        std::thread::scope(|s| {
            // Writers: concurrent upserts and deletes.
            for t in 0..3u64 {
                let c = c.clone();
                s.spawn(move || {
                    for i in 0..60 {
                        let n = round * 10_000 + t * 1000 + i;
                        c.upsert(entity(n)).unwrap();
                        if i % 5 == 0 {
                            c.delete(entity(n).id).unwrap();
                        }
                    }
                });
            }
            // The consumer: restarts from its cursor every 25 events.
            let target = if round == 0 { 150 } else { 200 };
            let mut processed = 0;
            while processed < target {
                let start = db.cursor("consumer").unwrap().unwrap_or(0);
                let mut feed = db.subscribe(start);
                let mut last = start;
                for _ in 0..25 {
                    let e = feed.next().unwrap().unwrap();
                    seen.push(e.seq);
                    last = e.seq;
                    processed += 1;
                }
                db.ack("consumer", last).unwrap();
            }
        });
        // Reopen (round 0 -> 1) with the cursor durable.
    }
    // Drain the rest after a final reopen.
    let db = Database::open(&path).unwrap();
    let last = db.last_seq().unwrap();
    let mut feed = db.subscribe(db.cursor("consumer").unwrap().unwrap());
    while seen.last() != Some(&last) {
        seen.push(feed.next().unwrap().unwrap().seq);
    }
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(seen, expected, "every event exactly once, in order");
}

#[test]
fn retention_keeps_every_unacknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .retain_changes(10)
        .checkpoint_every(0, Duration::ZERO)
        .open(dir.path().join("r.redb"))
        .unwrap();
    let c = db
        .create_collection(
            "c",
            CollectionConfig::new(2, Metric::L2).with_index(hybridb::IndexKind::Exact),
        )
        .unwrap();
    for i in 0..99 {
        c.upsert(entity(i)).unwrap();
    }
    assert_eq!(db.last_seq().unwrap(), 100);
    db.ack("slow", 20).unwrap();
    db.ack("fast", 95).unwrap();
    assert_eq!(
        db.prune_changes().unwrap(),
        20,
        "only what the slowest cursor acknowledged"
    );
    assert!(matches!(
        db.changes_since(19, 10),
        Err(Error::ChangesPruned {
            first_available: 21,
            ..
        })
    ));
    let rest = db.changes_since(20, 1000).unwrap();
    assert_eq!(rest.first().unwrap().seq, 21);
    assert_eq!(rest.len(), 80);
    // Without the slow consumer, retention keeps the 10 newest events.
    db.delete_cursor("slow").unwrap();
    assert_eq!(db.prune_changes().unwrap(), 70);
    assert_eq!(db.changes_since(90, 1000).unwrap().len(), 10);
    assert!(matches!(
        db.ack("fast", 1_000_000),
        Err(Error::InvalidCursor { .. })
    ));
    assert!(matches!(
        db.ack("bad name", 1),
        Err(Error::InvalidCursor { .. })
    ));
}

#[test]
fn retention_keeps_what_an_index_checkpoint_needs_for_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    {
        let db = Database::builder()
            .retain_changes(0)
            .checkpoint_every(0, Duration::ZERO)
            .open(&path)
            .unwrap();
        let c = db
            .create_collection("c", CollectionConfig::new(2, Metric::L2))
            .unwrap();
        for i in 0..40 {
            c.upsert(entity(i)).unwrap();
        }
        db.checkpoint().unwrap();
        let covered = db.last_seq().unwrap();
        for i in 40..80 {
            c.upsert(entity(i)).unwrap();
        }
        assert_eq!(db.prune_changes().unwrap(), covered);
        assert_eq!(db.changes_since(covered, 1000).unwrap().len(), 40);
        // Simulate a crash image: keep the file as it is now (idle writer), drop without the
        // close-time checkpoint by copying first.
        let crash = dir.path().join("crash.redb");
        std::fs::copy(&path, &crash).unwrap();
        let mut src = path.as_os_str().to_owned();
        src.push(".index");
        let mut dst = crash.as_os_str().to_owned();
        dst.push(".index");
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::copy(
            std::path::Path::new(&src).join("c1.hnsw"),
            std::path::Path::new(&dst).join("c1.hnsw"),
        )
        .unwrap();
    }
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    let db = Database::builder()
        .on_rebuild_progress(move |p| log_tx.send(p.reason).unwrap())
        .open(dir.path().join("crash.redb"))
        .unwrap();
    assert!(
        log_rx.try_recv().is_err(),
        "replayed from the checkpoint after pruning"
    );
    assert_eq!(db.collection("c").unwrap().indexed_count(), 80);
}

#[test]
fn async_subscription_and_the_end_of_a_blocking_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("a.redb")).unwrap();
    let c = db
        .create_collection("c", CollectionConfig::new(2, Metric::L2))
        .unwrap();
    let mut feed = db.subscribe(db.last_seq().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let waiter = tokio::spawn(async move {
            let e = feed.next_event().await.unwrap();
            (e.seq, feed)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.to_async().upsert(entity(1)).await.unwrap();
        let (seq, _feed) = waiter.await.unwrap();
        assert_eq!(seq, db.last_seq().unwrap());
    });
    // A blocking subscription ends when the database closes.
    let feed = db.subscribe(db.last_seq().unwrap());
    let reader = std::thread::spawn(move || feed.count());
    std::thread::sleep(Duration::from_millis(50));
    drop(c);
    drop(db);
    assert_eq!(reader.join().unwrap(), 0);
}
