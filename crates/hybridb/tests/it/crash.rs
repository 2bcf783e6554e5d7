//! Crash suite: a child process writes batches at Immediate durability from several threads and
//! logs every acknowledged write; the parent kills it with SIGKILL at a random moment, reopens
//! the database and checks that every acknowledged write is there (at least at its version),
//! that no batch is partial, and that the index holds exactly the stored entities.
//!
//! `HYBRIDB_CRASH_CYCLES` sets the number of kill cycles (default 20; the long run uses 200+).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
use serde_json::json;

const CHILD_DB: &str = "HYBRIDB_CRASH_CHILD_DB";
const CHILD_CYCLE: &str = "HYBRIDB_CRASH_CHILD_CYCLE";
const THREADS: usize = 3;
const DIM: usize = 8;

fn log_path(db: &Path, cycle: u64, thread: usize) -> PathBuf {
    db.with_file_name(format!("acked-{cycle}-{thread}.log"))
}

fn vector(n: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|i| ((n * 31 + i * 7) % 97) as f32 / 97.0 + 0.01)
        .collect()
}

/// A small sparse vector derived from `n`.
fn sparse(n: u64) -> hybridb::SparseVector {
    let a = (n % 50) as u32;
    hybridb::SparseVector::new(vec![a, a + 1 + (n % 7) as u32], vec![1.0, 0.5])
}

/// The child: writes until killed. Each thread alternates new-entity batches (tagged with
/// their batch and size) and single updates of an entity it created before.
#[test]
fn crash_child_entry() {
    let (Ok(db_path), Ok(cycle)) = (std::env::var(CHILD_DB), std::env::var(CHILD_CYCLE)) else {
        return; // Not a child run.
    };
    let cycle: u64 = cycle.parse().unwrap();
    let db = Database::builder()
        .checkpoint_every(300, Duration::from_millis(150))
        .open(&db_path)
        .unwrap();
    let c = match db.collection("c") {
        Ok(c) => c,
        Err(_) => db
            .create_collection(
                "c",
                // Named vectors too: their tables and sparse postings must survive the kill
                // in step with the entities (verify checks them).
                CollectionConfig::new(DIM as u32, Metric::L2)
                    .with_vector(
                        "n",
                        hybridb::VectorConfig::dense_with_index(
                            DIM as u32,
                            Metric::Dot,
                            hybridb::IndexKind::hnsw(),
                        ),
                    )
                    .with_vector("s", hybridb::VectorConfig::sparse(false))
                    // And a text index: its rows are checked against the payloads by verify.
                    .with_text_index("batch", hybridb::TextIndexConfig::default()),
            )
            .unwrap(),
    };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let c = c.clone();
            let path = log_path(Path::new(&db_path), cycle, t);
            s.spawn(move || {
                let mut log = std::fs::File::create(path).unwrap();
                let mut mine: Vec<EntityId> = Vec::new();
                for b in 0u64.. {
                    let tag = format!("{cycle}-{t}-{b}");
                    let size = 1 + (b % 9);
                    let batch: Vec<Entity> = (0..size)
                        .map(|i| {
                            let id = EntityId::from_key(&format!("{tag}-{i}"));
                            Entity::new(id, json!({"batch": tag, "size": size}), vector(b * 10 + i))
                                .with_vector("n", vector(b + i))
                                .with_vector("s", sparse(b * 10 + i))
                        })
                        .collect();
                    let written = c.upsert_batch(batch).unwrap();
                    let mut lines = String::new();
                    for w in &written {
                        lines.push_str(&format!("{} {}\n", w.id, w.version));
                        mine.push(w.id);
                    }
                    // One update of an older entity: its version goes up.
                    let old = mine[(b as usize * 7) % mine.len()];
                    let prev = c.get(old).unwrap().unwrap();
                    let w = c
                        .upsert(
                            Entity::new(
                                old,
                                serde_json::Value::Object(prev.payload),
                                vector(b + 5),
                            )
                            .with_vector("s", sparse(b + 5)),
                        )
                        .unwrap();
                    lines.push_str(&format!("{} {}\n", w.id, w.version));
                    // Acknowledged: record it (the page cache survives the process being killed).
                    log.write_all(lines.as_bytes()).unwrap();
                }
            });
        }
    });
}

fn verify(db_path: &Path, cycles_done: u64) -> usize {
    let db = Database::open(db_path).unwrap();
    let c = db.collection("c").unwrap();
    // Every acknowledged write, at least at its version.
    let mut acked: HashMap<EntityId, u64> = HashMap::new();
    for cycle in 0..cycles_done {
        for t in 0..THREADS {
            let Ok(text) = std::fs::read_to_string(log_path(db_path, cycle, t)) else {
                continue;
            };
            // A line cut by the kill is not acknowledged yet: skip a torn last line.
            for line in text.lines().filter(|l| l.len() > 37) {
                let mut parts = line.split(' ');
                let id: EntityId = parts.next().unwrap().parse().unwrap();
                let Some(Ok(v)) = parts.next().map(str::parse::<u64>) else {
                    continue;
                };
                let e = acked.entry(id).or_default();
                *e = (*e).max(v);
            }
        }
    }
    let ids: Vec<EntityId> = acked.keys().copied().collect();
    let records = c.get_many(&ids).unwrap();
    for (id, r) in ids.iter().zip(&records) {
        let r = r
            .as_ref()
            .unwrap_or_else(|| panic!("acknowledged entity {id} lost"));
        assert!(
            r.version >= acked[id],
            "{id}: version {} < acknowledged {}",
            r.version,
            acked[id]
        );
    }
    // No partial batch: every batch tag present has all its entities.
    let mut batches: HashMap<String, (u64, u64)> = HashMap::new();
    let mut after = None;
    let mut total = 0u64;
    loop {
        let page = c.scroll(after, 1000).unwrap();
        for r in &page.records {
            let tag = r.payload["batch"].as_str().unwrap().to_string();
            let size = r.payload["size"].as_u64().unwrap();
            let e = batches.entry(tag).or_insert((0, size));
            e.0 += 1;
            total += 1;
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    for (tag, (found, size)) in &batches {
        assert_eq!(found, size, "batch {tag} is partial");
    }
    // The index holds exactly the stored entities, and search returns only stored ones.
    assert_eq!(c.count().unwrap(), total);
    assert_eq!(c.indexed_count() as u64, total);
    for q in 0..5 {
        for h in c.search(&vector(q * 13), 10).unwrap() {
            assert!(c.get(h.id).unwrap().is_some());
        }
        let named = hybridb::SearchRequest::new(vector(q), 10).using("n");
        for h in c.search_with(&named).unwrap() {
            assert!(c.get(h.id).unwrap().is_some());
        }
        let sparse = hybridb::SearchRequest::new_sparse("s", sparse(q * 3), 10);
        for h in c.search_with(&sparse).unwrap() {
            let r = c.get(h.id).unwrap().expect("a sparse hit is stored");
            assert!(r.vectors.contains_key("s"));
        }
    }
    // The change log is gap-free.
    let events = db.changes_since(0, usize::MAX).unwrap();
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(events.last().map_or(0, |e| e.seq), db.last_seq().unwrap());
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "verify after a crash: {report:?}");
    acked.len()
}

#[test]
fn kill_minus_nine_loses_no_acknowledged_write() {
    let cycles: u64 = std::env::var("HYBRIDB_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut rng: u64 = 0x5eed;
    let mut acked = 0;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db_path)
            .env(CHILD_CYCLE, cycle.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 400));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        acked = verify(&db_path, cycle + 1);
    }
    eprintln!(
        "crash suite: {cycles} kill cycles, {acked} acknowledged entities checked, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked > 0,
        "the child acknowledged nothing: the test would prove nothing"
    );
}
