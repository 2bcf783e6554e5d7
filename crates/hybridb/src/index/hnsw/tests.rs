//! Unit tests of the pieces behind the public API (heuristic, visited sets, checksum, decoder
//! validation past the checksum, entry-point upkeep).

use super::persist::{Crc32, reseal};
use super::search::{self, Cand};
use super::visited::with_visited;
use super::*;

fn rng(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 40) as f32 / (1u64 << 24) as f32
}

fn random_index(n: usize, dim: usize, seed: u64) -> (Hnsw, Vec<Vec<f32>>) {
    random_index_with(n, dim, seed, 4, 32)
}

fn random_index_with(
    n: usize,
    dim: usize,
    seed: u64,
    m: usize,
    ef_construction: usize,
) -> (Hnsw, Vec<Vec<f32>>) {
    let mut s = seed;
    let data: Vec<Vec<f32>> = (0..n)
        .map(|_| (0..dim).map(|_| rng(&mut s)).collect())
        .collect();
    let mut index = Hnsw::new(HnswParams {
        m,
        ef_construction,
        seed,
        ..HnswParams::new(dim, Metric::L2)
    });
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u32, v).expect("insert");
    }
    (index, data)
}

#[test]
fn crc32_check_value() {
    let mut c = Crc32::new();
    c.update(b"123456789");
    assert_eq!(c.finish(), 0xCBF4_3926);
}

#[test]
fn heuristic_keeps_diverse_neighbours() {
    // Points on a line at 1, 2, 3 and one at -1.5 around the origin: from the origin, 2 and 3
    // are shadowed by 1, while -1.5 lies on the other side and is kept.
    let mut index = Hnsw::new(HnswParams::new(1, Metric::L2));
    for (s, x) in [(0u32, 0.0f32), (1, 1.0), (2, 2.0), (3, 3.0), (4, -1.5)] {
        index.insert(s, &[x]).expect("insert");
    }
    let q = [0.0f32];
    let mut cands: Vec<Cand> = (1..5)
        .map(|id| Cand {
            d: index.dist(&q, index.vector(id)),
            id,
        })
        .collect();
    cands.sort_unstable();
    let kept: Vec<u32> = index.select(&cands, 2).iter().map(|c| c.id).collect();
    assert_eq!(kept, vec![1, 4]);
}

#[test]
fn visited_set_survives_epoch_wrap() {
    with_visited(8, |v| {
        assert!(v.insert(3));
        assert!(!v.insert(3));
    });
    for _ in 0..5 {
        with_visited(8, |v| assert!(v.insert(3)));
    }
    // Nested use gets a fresh set instead of panicking.
    with_visited(8, |outer| {
        outer.insert(1);
        with_visited(8, |inner| assert!(inner.insert(1)));
    });
}

#[test]
fn edge_cases_return_nothing() {
    let index = Hnsw::new(HnswParams::new(4, Metric::L2));
    assert!(index.search(&[0.0; 4], 5, 10).is_empty());
    let (index, data) = random_index(50, 4, 1);
    assert!(index.search(&data[0], 0, 10).is_empty());
    assert!(index.search(&[0.0; 3], 5, 10).is_empty());
    assert_eq!(index.search(&data[0], 100, 10).len(), 50);
}

#[test]
fn mutation_errors_leave_the_index_unchanged() {
    let (mut index, _) = random_index(20, 4, 2);
    assert_eq!(
        index.insert(3, &[1.0; 5]),
        Err(HnswError::DimensionMismatch {
            expected: 4,
            got: 5
        })
    );
    let cap = index.capacity();
    assert!(matches!(
        index.insert_concurrent(cap as u32, &[0.0; 4]),
        Err(HnswError::SlotOutOfCapacity { .. })
    ));
    assert_eq!(index.len(), 20);
    assert!(!index.remove(cap as u32 + 10));
}

#[test]
fn entry_point_stays_live_and_on_top() {
    let (index, data) = random_index(400, 6, 3);
    let mut live = 400;
    while live > 0 {
        let (ep, level) = unpack_entry(index.entry.load(std::sync::atomic::Ordering::Acquire))
            .expect("non-empty index has an entry");
        assert!(index.contains(ep));
        let top = (0..400u32)
            .filter(|&s| index.contains(s))
            .map(|s| index.levels[s as usize].load(std::sync::atomic::Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        assert_eq!(level, top as usize);
        assert!(index.remove(ep));
        live -= 1;
        assert_eq!(index.search(&data[0], 1, 8).len(), usize::from(live > 0));
    }
    assert!(unpack_entry(index.entry.load(std::sync::atomic::Ordering::Acquire)).is_none());
}

#[test]
fn dot_metric_ranks_by_inner_product() {
    let mut index = Hnsw::new(HnswParams::new(2, Metric::Dot));
    for (s, v) in [
        (0u32, [1.0f32, 0.0]),
        (1, [0.0, 1.0]),
        (2, [0.7, 0.7]),
        (3, [-1.0, 0.0]),
    ] {
        index.insert(s, &v).expect("insert");
    }
    let hits = index.search(&[1.0, 0.1], 4, 8);
    let order: Vec<u32> = hits.iter().map(|h| h.0).collect();
    assert_eq!(order, vec![0, 2, 1, 3]);
    assert!((hits[0].1 + 1.0).abs() < 1e-6);
}

#[test]
fn levels_follow_the_geometric_law() {
    let index = Hnsw::new(HnswParams::new(1, Metric::L2));
    let n = 20_000;
    let above0 = (0..n).filter(|_| index.random_level() > 0).count();
    // P(level > 0) = 1/m = 1/16.
    let p = above0 as f64 / n as f64;
    assert!((p - 1.0 / 16.0).abs() < 0.01, "p = {p}");
}

#[test]
fn decoder_validates_past_the_checksum() {
    // Mutate bytes and re-seal the checksum so that the structural checks run: decoding must
    // return Ok or Err, never panic, and any index it returns must be searchable.
    let (index, data) = random_index(120, 3, 4);
    for s in (0..120).step_by(5) {
        index.remove(s);
    }
    let bytes = index.to_bytes();
    let mut seed = 99u64;
    for round in 0..3000 {
        let mut bad = bytes.clone();
        let flips = 1 + round % 3;
        for _ in 0..flips {
            let at = 12 + (rng(&mut seed) * (bad.len() - 16) as f32) as usize;
            bad[at] = (rng(&mut seed) * 256.0) as u8;
        }
        reseal(&mut bad);
        if let Ok(loaded) = Hnsw::from_bytes(&bad) {
            let _ = loaded.search(&data[0], 5, 16);
        }
    }
}

#[test]
fn removal_repair_leaves_few_dead_links() {
    // After removing 30% of the nodes, count links that still name a removed slot: the repair
    // finds in-neighbours by a search, so a few may be missed; they must stay rare.
    let (index, _) = random_index_with(3000, 8, 6, 16, 100);
    let mut s = 17u64;
    let mut removed = 0;
    for slot in 0..3000u32 {
        if rng(&mut s) < 0.3 {
            assert!(index.remove(slot));
            removed += 1;
        }
    }
    let up = index.read_upper();
    let (mut links, mut dead) = (0usize, 0usize);
    for slot in (0..3000u32).filter(|&x| index.contains(x)) {
        let level = index.levels[slot as usize].load(std::sync::atomic::Ordering::Relaxed);
        for layer in 0..=level as usize {
            for a in search::list_ids(index.block(&up, slot, layer)) {
                links += 1;
                if !index.contains(a.load(std::sync::atomic::Ordering::Relaxed)) {
                    dead += 1;
                }
            }
        }
    }
    let frac = dead as f64 / links as f64;
    eprintln!(
        "{removed} removed: {dead} dead links of {links} ({:.4}%)",
        frac * 100.0
    );
    assert!(frac < 0.002, "dead-link fraction {frac}");
}

#[test]
fn remove_batch_matches_single_removals() {
    let (index, data) = random_index(500, 6, 8);
    let batch: Vec<u32> = (0..500).step_by(3).collect();
    let mut with_dupes = batch.clone();
    with_dupes.push(1000);
    with_dupes.push(0);
    assert_eq!(index.remove_batch(&with_dupes), batch.len());
    assert_eq!(index.len(), 500 - batch.len());
    for q in &data[..50] {
        for (s, _) in index.search(q, 10, 32) {
            assert!(s % 3 != 0, "removed slot {s} returned");
        }
    }
}

#[test]
fn pool_walk_equals_the_two_heap_walk() {
    // The two bookkeepings of the filtered walk expand the same nodes in the same order, so
    // they must return the same hits, whatever share the filter keeps.
    // A sparse graph and a narrow beam, so that a walk that expands more (or less) than the
    // bound allows finds other hits.
    let (index, _) = random_index_with(3000, 16, 11, 4, 16);
    let mut seed = 99;
    for modulus in [1u32, 2, 3, 5, 20] {
        let allowed = |s: u32| s.is_multiple_of(modulus);
        for _ in 0..100 {
            let q: Vec<f32> = (0..16).map(|_| rng(&mut seed)).collect();
            let heaps = index.search_filtered(&q, 10, 10, &allowed);
            let pool = index.search_filtered_with_share(&q, 10, 10, &allowed, 1.0);
            assert_eq!(pool, heaps, "modulus {modulus}");
            assert_eq!(pool.len(), 10);
            assert!(pool.iter().all(|&(s, _)| allowed(s)));
            assert!(pool.windows(2).all(|w| w[0].1 <= w[1].1));
            if modulus == 1 {
                assert_eq!(pool, index.search(&q, 10, 10));
            }
        }
    }
}

/// Vectors moved into a file (before and after inserts, across growth and a checkpoint
/// round trip) give the same graph and the same answers as vectors in memory.
#[cfg(unix)]
#[test]
fn vectors_in_a_file_answer_as_in_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |dir: &std::path::Path| crate::index::originals::originals_file(dir).expect("file");
    let (dim, n) = (20, 600);
    let (memory, data) = random_index(n, dim, 7);
    // Moved while empty, then grown by every insert past the capacity.
    let mut early = Hnsw::new(HnswParams {
        m: 4,
        ef_construction: 32,
        seed: 7,
        ..HnswParams::new(dim, Metric::L2)
    });
    early.keep_vectors_in(file(dir.path())).expect("map");
    for (i, v) in data.iter().enumerate() {
        early.insert(i as u32, v).expect("insert");
    }
    // Moved once full, then grown.
    let (mut late, _) = random_index(n, dim, 7);
    late.keep_vectors_in(file(dir.path())).expect("map");
    // The bytes of a checkpoint, which hold the vectors, are the same.
    assert!(early.to_bytes() == memory.to_bytes() && late.to_bytes() == memory.to_bytes());
    late.reserve(4 * n);
    assert!(early.vectors_in_file() && late.vectors_in_file() && !memory.vectors_in_file());
    assert!(late.vector_file_bytes() >= 4 * n * dim * 4);
    assert!(memory.memory_bytes() >= early.memory_bytes() + n * dim * 4);
    let mut s = 99;
    for _ in 0..20 {
        let q: Vec<f32> = (0..dim).map(|_| rng(&mut s)).collect();
        let want = memory.search(&q, 10, 40);
        assert_eq!(early.search(&q, 10, 40), want);
        assert_eq!(late.search(&q, 10, 40), want);
    }
    for slot in [0u32, 17, n as u32 - 1] {
        assert_eq!(
            late.vector_copy(slot).as_deref(),
            Some(data[slot as usize].as_slice())
        );
    }
    drop((early, late));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
