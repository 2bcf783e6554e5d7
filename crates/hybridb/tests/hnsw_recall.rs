//! Recall of the HNSW index on real SIFT data (bigann10k) at default parameters.

mod hnsw_common;

use hnsw_common::*;
use hybridb::index::hnsw::Hnsw;

#[test]
fn bigann10k_recall_at_10_default_params() {
    let (base, queries, gt) = bigann();
    let index = build(&base, params(128));
    assert_eq!(index.len(), base.len());
    let found = search_all(&index, &queries, 10, 64);
    let r = recall(&found, &gt, 10);
    eprintln!("recall@10 (ef 64) = {r:.4}");
    assert!(r >= 0.95, "recall@10 {r} < 0.95");
    // Results are best first and carry the true distance.
    for q in &queries[..5] {
        let hits = index.search(q, 10, 64);
        assert!(hits.windows(2).all(|w| w[0].1 <= w[1].1));
        for (s, d) in hits {
            assert!((d - l2(q, &base[s as usize])).abs() <= 1e-3 * d.max(1.0));
        }
    }
}

#[test]
fn single_threaded_build_is_deterministic() {
    let (base, _, _) = bigann();
    let base = &base[..1500];
    let build1 = || {
        let mut index = Hnsw::new(params(128));
        for (i, v) in base.iter().enumerate() {
            index.insert(i as u32, v).expect("insert");
        }
        index
    };
    assert_eq!(build1().to_bytes(), build1().to_bytes());
}
