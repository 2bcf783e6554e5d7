//! Plans, kept sets and the slot invariants of [`IndexState`].

use super::*;
use crate::model::config::Metric;
use crate::query::filter::Filter;
use crate::query::search::Plan;

fn id(n: u128) -> EntityId {
    EntityId::from_u128(n)
}

fn set(slot: u32, n: u128, v: &[f32]) -> Apply {
    Apply::Set {
        slot,
        id: id(n),
        vector: v.to_vec(),
    }
}

/// 3000 random 4-d points with payload `g = i % 4` (indexed as integer).
fn grouped() -> (IndexState, Vec<Vec<f32>>) {
    use crate::model::config::PayloadIndexKind;
    let config =
        CollectionConfig::new(4, Metric::L2).with_payload_index("g", PayloadIndexKind::Integer);
    let s = IndexState::new(&config, &IndexEnv::in_memory(2));
    let mut x = 12345u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 24) as f32
    };
    let vectors: Vec<Vec<f32>> = (0..3000).map(|_| (0..4).map(|_| rnd()).collect()).collect();
    let mut applies = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        applies.push(set(i as u32, i as u128 + 1, v));
        applies.push(Apply::Postings {
            slot: i as u32,
            remove: Vec::new(),
            add: vec![PostingKey {
                field: "g".into(),
                value: Some(crate::query::payload::int_key((i % 4) as i64)),
            }],
        });
    }
    s.apply(applies).unwrap();
    (s, vectors)
}

fn planned(s: &IndexState, q: &[f32], filter: &Filter) -> Planned {
    let ids = HashMap::new();
    let input = FilterInput::Filter {
        filter,
        id_slots: &ids,
    };
    match s.search_planned("", q, 10, 64, 1.0, input).unwrap() {
        Searched::Done(p) => p,
        Searched::NeedsPayloads(_) => panic!("every condition is indexed"),
    }
}

#[test]
fn a_kept_matching_set_never_outlives_a_hide() {
    use crate::query::filter::{Condition, Filter};
    let (s, vectors) = grouped();
    let quarter = Filter::new().must(Condition::matches_value("g", 0i64));
    let q = &vectors[8];
    // The first search estimates, the second keeps the exact set, the third uses it.
    assert!(planned(&s, q, &quarter).estimated);
    for _ in 0..2 {
        assert_eq!(planned(&s, q, &quarter).matching, 750);
    }
    let nearest = planned(&s, q, &quarter).hits[0].0;
    let slot = (nearest.as_uuid().as_u128() - 1) as u32;
    // A hide moves the version: estimated afresh, then kept and used again, never with
    // the hidden slot.
    s.set_hidden(&[slot], true);
    for i in 0..3 {
        let p = planned(&s, q, &quarter);
        assert_eq!(p.estimated, i == 0);
        assert!(p.estimated || p.matching == 749, "{}", p.matching);
        assert!(p.hits.iter().all(|h| h.0 != nearest));
    }
    s.set_hidden(&[slot], false);
    for i in 0..3 {
        let p = planned(&s, q, &quarter);
        assert!(p.estimated || p.matching == 750, "{}", p.matching);
        assert_eq!(p.hits[0].0, nearest, "search {i}");
    }
}

#[test]
fn a_filters_measured_walks_price_its_plan() {
    use crate::query::filter::{Condition, Filter};
    let (s, vectors) = grouped();
    let half = Filter::new().must(Condition::matches_any("g", [0i64, 1]));
    let quarter = Filter::new().must(Condition::matches_value("g", 2i64));
    // The model: walks cheap, scans dear.
    *lock(&s.costs) = Some(plan::Costs::new(1e6, 512, 1.0, 64, 3000));
    let q = &vectors[5];
    assert_eq!(planned(&s, q, &half).plan, Plan::FilteredGraph);
    let hash = filter_hash(&half);
    let measured = s.walk_cost(hash, &half, 3000);
    assert!(measured.is_some_and(|ns| ns > 0.0), "{measured:?}");
    // This filter's walks turn out to cost more than scanning its 1500 slots (1.5 s):
    // its plan follows, another filter's does not.
    s.observe_walk(hash, &half, 1e14, 3000);
    assert!(s.walk_cost(hash, &half, 3000).is_some_and(|ns| ns > 1e12));
    assert_eq!(planned(&s, q, &half).plan, Plan::ExactScan);
    assert_eq!(planned(&s, q, &quarter).plan, Plan::FilteredGraph);
    // Once the collection has changed by more than a 32nd, the measurement is dropped.
    let rewrites: Vec<Apply> = (0..100u32)
        .map(|i| set(i, i as u128 + 1, &vectors[i as usize]))
        .collect();
    s.apply(rewrites).unwrap();
    assert_eq!(s.walk_cost(hash, &half, 3000), None);
    assert_eq!(planned(&s, q, &half).plan, Plan::FilteredGraph);
}

#[test]
fn plans_follow_measured_costs_and_keep_recall() {
    use crate::query::filter::{Condition, Filter};
    let (s, vectors) = grouped();
    let quarter = Filter::new().must(Condition::matches_value("g", 0i64));
    let most = Filter::new()
        .must_not(Condition::matches_value("g", 3i64))
        .must_not(Condition::has_id([id(7)]));
    let costs = |scan_ns, graph_ns| {
        *lock(&s.costs) = Some(plan::Costs::new(scan_ns, 512, graph_ns, 64, 3000));
    };
    for (filter, keep, scan_ns, graph_ns, want) in [
        (
            &quarter,
            [true, false, false, false],
            1e6,
            1.0,
            Plan::FilteredGraph,
        ),
        (
            &quarter,
            [true, false, false, false],
            1e-6,
            1e9,
            Plan::ExactScan,
        ),
        (&most, [true, true, true, false], 1e6, 1.0, Plan::PostFilter),
    ] {
        costs(scan_ns, graph_ns);
        lock(&s.estimates).clear();
        lock(&s.filter_sets).clear();
        lock(&s.seen).clear();
        let share = keep.iter().filter(|k| **k).count() as i64 * 750;
        let (mut found, mut wanted) = (0, 0);
        for qi in (0..3000).step_by(150) {
            let q = &vectors[qi];
            let p = planned(&s, q, filter);
            assert_eq!(p.plan, want);
            // The first search estimates from a sample; the same filter again on an
            // unchanged collection computes the set once and keeps it (exact).
            assert_eq!(p.estimated, qi == 0, "query {qi}");
            assert!((p.matching as i64 - share).abs() < 150, "{}", p.matching);
            let mut brute: Vec<(f32, EntityId)> = (0..3000)
                .filter(|i| keep[i % 4])
                .map(|i| {
                    let d: f32 = vectors[i]
                        .iter()
                        .zip(q)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    (d, id(i as u128 + 1))
                })
                .collect();
            brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want_ids: Vec<EntityId> = brute.iter().take(10).map(|b| b.1).collect();
            assert_eq!(p.hits.len(), 10);
            for (hid, _) in &p.hits {
                let n = (hid.as_uuid().as_u128() - 1) as usize;
                assert!(keep[n % 4], "hit {n} fails the filter");
            }
            wanted += 10;
            found += want_ids
                .iter()
                .filter(|w| p.hits.iter().any(|h| h.0 == **w))
                .count();
        }
        assert!(
            found as f64 / wanted as f64 >= 0.95,
            "{want:?}: {found}/{wanted}"
        );
    }
}

#[test]
fn exact_ties_break_by_id_even_at_the_boundary() {
    let s = IndexState::new(
        &CollectionConfig::new(2, Metric::L2).with_index(IndexKind::Exact),
        &IndexEnv::in_memory(1),
    );
    s.apply(vec![
        set(0, 5, &[1.0, 0.0]),
        set(1, 3, &[1.0, 0.0]),
        set(2, 9, &[0.0, 0.0]),
        set(3, 1, &[5.0, 5.0]),
        set(4, 2, &[0.0, 1.0]),
    ])
    .unwrap();
    let ids: Vec<_> = s
        .search("", &[0.0, 0.0], 2, 2, 1.0)
        .0
        .iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(
        ids,
        vec![id(9), id(2)],
        "three tie at distance 1: smallest id wins"
    );
    let r = s.search("", &[0.0, 0.0], 4, 4, 1.0).0;
    assert_eq!(
        r.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![id(9), id(2), id(3), id(5)]
    );
    assert_eq!(r[1].1, 1.0);
}

#[test]
fn hidden_and_removed_slots_never_come_back() {
    let s = IndexState::new(
        &CollectionConfig::new(1, Metric::Dot).with_index(IndexKind::Exact),
        &IndexEnv::in_memory(1),
    );
    s.apply(
        (0..4)
            .map(|i| set(i, u128::from(i) + 1, &[i as f32]))
            .collect(),
    )
    .unwrap();
    s.set_hidden(&[3], true);
    assert_eq!(s.search("", &[1.0], 1, 1, 1.0).0[0].0, id(3));
    s.set_hidden(&[3], false);
    assert_eq!(s.search("", &[1.0], 1, 1, 1.0).0[0].0, id(4));
    s.apply(vec![Apply::Remove { slot: 3 }]).unwrap();
    assert_eq!(s.live_count(), 3);
    assert!(
        s.search("", &[1.0], 10, 10, 1.0)
            .0
            .iter()
            .all(|h| h.0 != id(4))
    );
    let mut c = SlotCursor::default();
    assert_eq!(s.next_slot(&mut c), 3, "freed slot reused");
}
