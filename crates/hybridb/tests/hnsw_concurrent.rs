//! Searches running while other threads insert and remove.

mod hnsw_common;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hnsw_common::*;
use hybridb::index::hnsw::Hnsw;

/// Runs `work` while two threads search `index` for vectors of `data`: no search returns a
/// slot that was in `removed` when it started, and every distance is right. Returns how many
/// searches ran.
fn searching_while(
    index: &Hnsw,
    data: &[Vec<f32>],
    removed: &Mutex<HashSet<u32>>,
    seed: u64,
    work: impl FnOnce() + Send,
) -> usize {
    let done = AtomicBool::new(false);
    let searches = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (done, searches) = (&done, &searches);
            s.spawn(move || {
                let mut rng = Rng(seed + t);
                while !done.load(Ordering::Acquire) {
                    let q = &data[rng.below(data.len())];
                    // Every removal that returned before the search started must be honoured.
                    let before: HashSet<u32> = removed.lock().expect("lock").clone();
                    for (slot, d) in index.search(q, 10, 32) {
                        assert!(!before.contains(&slot), "removed slot {slot} returned");
                        assert!((d - l2(q, &data[slot as usize])).abs() <= 1e-3 * d.max(1.0));
                    }
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        work();
        done.store(true, Ordering::Release);
    });
    searches.into_inner()
}

/// Every slot of `data` not in `removed` is held, and at least 97 % of them are found first
/// by a search for their own vector.
fn assert_live_find_themselves(index: &Hnsw, data: &[Vec<f32>], removed: &Mutex<HashSet<u32>>) {
    let removed = removed.lock().expect("lock");
    let live: Vec<u32> = (0..data.len() as u32)
        .filter(|s| !removed.contains(s))
        .collect();
    assert!(live.iter().all(|&s| index.contains(s)));
    let found = live
        .iter()
        .filter(|&&s| index.search(&data[s as usize], 1, 32).first().map(|h| h.0) == Some(s))
        .count();
    assert!(
        found as f64 >= 0.97 * live.len() as f64,
        "self-recall {found}/{}",
        live.len()
    );
}

#[test]
fn removed_slots_never_returned_under_concurrent_writes() {
    const DIM: usize = 24;
    let mut rng = Rng(21);
    let data = random_vectors(&mut rng, 3000, DIM);
    let mut index = Hnsw::with_capacity(params(DIM), 3000);
    for (i, v) in data.iter().enumerate().take(1500) {
        index.insert(i as u32, v).expect("insert");
    }
    let index = &index;
    let removed: Mutex<HashSet<u32>> = Mutex::new(HashSet::new());
    let to_remove: Vec<u32> = Rng(4)
        .sample(1500, 600)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let searches = searching_while(index, &data, &removed, 100, || {
        std::thread::scope(|s| {
            let data = &data;
            s.spawn(move || {
                for i in 1500..3000u32 {
                    index
                        .insert_concurrent(i, &data[i as usize])
                        .expect("insert");
                }
            });
            s.spawn(|| {
                for &slot in &to_remove {
                    assert!(index.remove(slot));
                    removed.lock().expect("lock").insert(slot);
                }
            });
        });
    });
    assert!(searches > 0);
    assert_eq!(index.len(), 3000 - removed.lock().expect("lock").len());
    // The graph built under contention is still good: each live vector finds itself.
    assert_live_find_themselves(index, &data, &removed);
}

/// Consolidated batch removals repair the graph while searches go on: a search never returns
/// a slot whose removal returned before it started, distances stay right, and afterwards no
/// list names a removed node.
#[test]
fn batch_removals_under_concurrent_searches() {
    const DIM: usize = 24;
    let mut rng = Rng(33);
    let data = random_vectors(&mut rng, 4000, DIM);
    let mut index = Hnsw::with_capacity(params(DIM), 4000);
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u32, v).expect("insert");
    }
    let index = &index;
    let removed: Mutex<HashSet<u32>> = Mutex::new(HashSet::new());
    let to_remove: Vec<u32> = Rng(5)
        .sample(4000, 1600)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let searches = searching_while(index, &data, &removed, 200, || {
        for batch in to_remove.chunks(200) {
            assert_eq!(index.remove_batch_parallel(batch, 2), batch.len());
            removed.lock().expect("lock").extend(batch.iter().copied());
        }
    });
    assert!(searches > 0);
    assert_eq!(index.len(), 4000 - 1600);
    assert_eq!(
        index.dead_links(),
        0,
        "a consolidated removal leaves no dead link"
    );
    assert_live_find_themselves(index, &data, &removed);
}

#[test]
fn parallel_batch_matches_sequential_quality() {
    let (base, queries, _) = bigann();
    let base = &base[..3000];
    let gt: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| brute_force(base, q, 10, |_| true))
        .collect();
    let parallel = build(base, params(128));
    let mut sequential = Hnsw::new(params(128));
    for (i, v) in base.iter().enumerate() {
        sequential.insert(i as u32, v).expect("insert");
    }
    let rp = recall(&search_all(&parallel, &queries, 10, 32), &gt, 10);
    let rs = recall(&search_all(&sequential, &queries, 10, 32), &gt, 10);
    eprintln!("parallel {rp:.4}, sequential {rs:.4}");
    assert!(rp >= rs - 0.02);
}
