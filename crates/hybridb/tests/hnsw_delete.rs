//! Removal with graph repair, slot reuse, updates, and filtered search.

mod hnsw_common;

use std::collections::HashSet;
use std::sync::OnceLock;

use hnsw_common::*;
use hybridb::index::hnsw::Hnsw;

const N: usize = 5000;

fn fixture_params() -> hybridb::index::hnsw::HnswParams {
    hybridb::index::hnsw::HnswParams {
        ef_construction: 100,
        ..params(128)
    }
}

/// The first `N` bigann rows and an index over them, built once per test binary.
fn fixture() -> &'static (Rows, Hnsw) {
    static F: OnceLock<(Rows, Hnsw)> = OnceLock::new();
    F.get_or_init(|| {
        let (base, _, _) = bigann();
        let base = base[..N].to_vec();
        // ef_construction 100 halves the debug-build time; fresh and repaired graphs share it.
        let index = build(&base, fixture_params());
        (base, index)
    })
}

fn exact_gt(
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    k: usize,
    keep: impl Fn(u32) -> bool + Copy,
) -> Vec<Vec<u32>> {
    queries
        .iter()
        .map(|q| brute_force(base, q, k, keep))
        .collect()
}

#[test]
fn delete_30_percent_and_reinsert_keeps_recall() {
    let (_, queries, _) = bigann();
    let (base, fresh) = fixture();
    let gt = exact_gt(base, &queries, 10, |_| true);

    let fresh_low = recall(&search_all(fresh, &queries, 10, 16), &gt, 10);
    let fresh_high = recall(&search_all(fresh, &queries, 10, 64), &gt, 10);

    let index = Hnsw::from_bytes(&fresh.to_bytes()).expect("copy");
    let gone: Vec<u32> = Rng(11)
        .sample(N, N * 3 / 10)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    for &s in &gone {
        assert!(index.remove(s), "slot {s} was live");
        assert!(!index.remove(s), "slot {s} removed twice");
    }
    assert_eq!(index.len(), N - gone.len());
    let gone_set: HashSet<u32> = gone.iter().copied().collect();
    assert!(gone.iter().all(|&s| !index.contains(s)));
    for q in &queries {
        for (s, _) in index.search(q, 50, 100) {
            assert!(!gone_set.contains(&s), "removed slot {s} returned");
        }
    }
    let gt_after = exact_gt(base, &queries, 10, |s| !gone_set.contains(&s));
    let deleted_state = recall(&search_all(&index, &queries, 10, 64), &gt_after, 10);

    let mut index = index;
    for &s in &gone {
        index.insert(s, &base[s as usize]).expect("reinsert");
    }
    assert_eq!(index.len(), N);
    let low = recall(&search_all(&index, &queries, 10, 16), &gt, 10);
    let high = recall(&search_all(&index, &queries, 10, 64), &gt, 10);
    eprintln!(
        "fresh {fresh_low:.4}/{fresh_high:.4}, after delete {deleted_state:.4}, after reinsert {low:.4}/{high:.4} (ef 16/64)"
    );
    assert!(fresh_high >= 0.95);
    assert!(
        deleted_state >= fresh_high - 0.02,
        "recall with 30% deleted: {deleted_state}"
    );
    assert!(low >= fresh_low - 0.01, "ef 16: {low} vs fresh {fresh_low}");
    assert!(
        high >= fresh_high - 0.01,
        "ef 64: {high} vs fresh {fresh_high}"
    );
    // No tombstones: the graph is no larger than a fresh one (modulo upper-layer levels).
    assert!(index.memory_bytes() <= fresh.memory_bytes() * 21 / 20);
}

/// The consolidated path (one batch of 30%, two threads): same recall bounds as one-by-one
/// removal, and no list names a removed slot afterwards.
#[test]
fn delete_30_percent_in_one_batch_and_reinsert_keeps_recall() {
    let (_, queries, _) = bigann();
    let (base, fresh) = fixture();
    let gt = exact_gt(base, &queries, 10, |_| true);
    let fresh_low = recall(&search_all(fresh, &queries, 10, 16), &gt, 10);
    let fresh_high = recall(&search_all(fresh, &queries, 10, 64), &gt, 10);

    let index = Hnsw::from_bytes(&fresh.to_bytes()).expect("copy");
    let gone: Vec<u32> = Rng(12)
        .sample(N, N * 3 / 10)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    assert_eq!(index.remove_batch_parallel(&gone, 2), gone.len());
    assert_eq!(index.remove_batch_parallel(&gone, 2), 0, "already gone");
    assert_eq!(index.len(), N - gone.len());
    let gone_set: HashSet<u32> = gone.iter().copied().collect();
    assert_eq!(index.dead_links(), 0, "consolidation leaves no dead link");
    let gt_after = exact_gt(base, &queries, 10, |s| !gone_set.contains(&s));
    let deleted_state = recall(&search_all(&index, &queries, 10, 64), &gt_after, 10);
    let mut index = index;
    for &s in &gone {
        index.insert(s, &base[s as usize]).expect("reinsert");
    }
    let low = recall(&search_all(&index, &queries, 10, 16), &gt, 10);
    let high = recall(&search_all(&index, &queries, 10, 64), &gt, 10);
    eprintln!(
        "batch: fresh {fresh_low:.4}/{fresh_high:.4}, after delete {deleted_state:.4}, after reinsert {low:.4}/{high:.4} (ef 16/64)"
    );
    assert!(
        deleted_state >= fresh_high - 0.02,
        "recall with 30% deleted: {deleted_state}"
    );
    assert!(low >= fresh_low - 0.01, "ef 16: {low} vs fresh {fresh_low}");
    assert!(
        high >= fresh_high - 0.01,
        "ef 64: {high} vs fresh {fresh_high}"
    );
}

#[test]
fn freed_slots_take_new_vectors() {
    let (base, queries, _) = bigann();
    let (first, second) = base.split_at(3000);
    let mut index = build(first, fixture_params());
    // Replace 1000 rows: remove them, then fill the freed slots with other vectors.
    let slots: Vec<u32> = Rng(3)
        .sample(3000, 1000)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let mut content: Vec<Vec<f32>> = first.to_vec();
    for (i, &s) in slots.iter().enumerate() {
        assert!(index.remove(s));
        content[s as usize] = second[i].clone();
    }
    for &s in &slots {
        index.insert(s, &content[s as usize]).expect("insert");
    }
    let gt = exact_gt(&content, &queries, 10, |_| true);
    let r = recall(&search_all(&index, &queries, 10, 64), &gt, 10);
    assert!(r >= 0.95, "recall after slot reuse {r}");
    for q in &queries[..10] {
        for (s, d) in index.search(q, 10, 64) {
            assert!((d - l2(q, &content[s as usize])).abs() <= 1e-3 * d.max(1.0));
        }
    }
}

#[test]
fn update_replaces_the_vector() {
    let mut rng = Rng(5);
    let data = random_vectors(&mut rng, 800, 16);
    let mut index = Hnsw::new(params(16));
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u32, v).expect("insert");
    }
    let moved: Vec<f32> = vec![5.0; 16];
    index.insert(42, &moved).expect("update");
    assert_eq!(index.len(), 800);
    let hit = index.search(&moved, 1, 32);
    assert_eq!(hit[0], (42, 0.0));
    let near_old = index.search(&data[42], 5, 64);
    assert!(near_old.iter().all(|&(s, d)| s != 42 || d > 1.0));
}

#[test]
fn remove_all_then_reuse() {
    let mut rng = Rng(9);
    let data = random_vectors(&mut rng, 300, 8);
    let mut index = Hnsw::new(params(8));
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u32, v).expect("insert");
    }
    for s in (0..300).rev() {
        assert!(index.remove(s));
        let hits = index.search(&data[0], 5, 16);
        assert!(hits.iter().all(|&(h, _)| h < s), "removed slot returned");
        assert_eq!(hits.len(), (s as usize).min(5));
    }
    assert!(index.is_empty());
    assert!(index.search(&data[0], 5, 16).is_empty());
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u32, v).expect("insert");
    }
    let gt = exact_gt(&data, &data[..50], 5, |_| true);
    assert!(recall(&search_all(&index, &data[..50], 5, 32), &gt, 5) >= 0.95);
}

#[test]
fn filtered_search_matches_brute_force_over_allowed() {
    let (_, queries, _) = bigann();
    let (base, index) = fixture();
    // About 30% allowed, uncorrelated with the vectors.
    let allowed = |s: u32| Rng(u64::from(s)).next_u64() % 10 < 3;
    let gt = exact_gt(base, &queries, 10, allowed);
    let found: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| {
            let hits = index.search_filtered(q, 10, 64, &allowed);
            assert_eq!(hits.len(), 10);
            assert!(
                hits.iter().all(|&(s, _)| allowed(s)),
                "a disallowed slot was returned"
            );
            hits.into_iter().map(|(s, _)| s).collect()
        })
        .collect();
    let r = recall(&found, &gt, 10);
    let plain = recall(
        &search_all(index, &queries, 10, 64),
        &exact_gt(base, &queries, 10, |_| true),
        10,
    );
    eprintln!("filtered recall {r:.4}, unfiltered {plain:.4}");
    assert!(r >= 0.95, "filtered recall {r}");
    // Nothing allowed: nothing returned.
    assert!(
        index
            .search_filtered(&queries[0], 10, 64, &|_| false)
            .is_empty()
    );
}

#[test]
fn filtered_search_at_low_selectivity_still_returns_k() {
    let (_, queries, _) = bigann();
    let (base, index) = fixture();
    // About 1% allowed (~50 slots): the traversal must keep going until it has k of them.
    let allowed = |s: u32| Rng(u64::from(s) ^ 0xABCD).next_u64().is_multiple_of(100);
    let gt = exact_gt(base, &queries[..20], 10, allowed);
    let found: Vec<Vec<u32>> = queries[..20]
        .iter()
        .map(|q| {
            let hits = index.search_filtered(q, 10, 64, &allowed);
            assert_eq!(
                hits.len(),
                10,
                "fewer than k results while k allowed slots exist"
            );
            hits.into_iter().map(|(s, _)| s).collect()
        })
        .collect();
    let r = recall(&found, &gt, 10);
    assert!(r >= 0.9, "recall at 1% selectivity {r}");
}
