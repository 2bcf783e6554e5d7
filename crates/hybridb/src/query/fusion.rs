//! Combining ranked lists and diversifying them: the final stages of a hybrid query.
//!
//! - [`rrf`]: Reciprocal Rank Fusion (Cormack et al., 2009): `Σ w_i / (k + rank_i)`, ranks from
//!   1, over the lists an entity appears in; only ranks count, so lists of incomparable scores
//!   (cosine, BM25) fuse without calibration.
//! - [`dbsf`]: Distribution-Based Score Fusion (Qdrant's): each list's scores are mapped by the
//!   list's own `mean ± 3σ` (sample σ) to about `[0, 1]`, then summed per entity.
//! - [`mmr`]: Maximal Marginal Relevance (Carbonell & Goldstein, 1998): greedily picks the
//!   candidate with the best `(1 - diversity) * sim(query, c) - diversity * max sim(c, picked)`.
//!
//! Inputs are lists of `(id, score)` with higher scores better (callers turn distances into
//! similarities first). Every output is sorted best first with ties broken by id, so the same
//! inputs always give the same order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::model::id::EntityId;

/// Sums each id's parts (in the order given) and ranks the sums: best first, ties by id,
/// `limit` kept, and the number of distinct ids. `capacity` is the number of parts (a hint).
/// Fused lists are a few hundred items: the sums live in an open-addressing table keyed by
/// the id's 128 bits (sorting the parts by id cost twice as much), and the ranking compares
/// integers.
fn ranked(
    parts: impl Iterator<Item = (EntityId, f32)>,
    capacity: usize,
    limit: usize,
) -> (Vec<(EntityId, f32)>, usize) {
    let mut sums = Sums::with_capacity(capacity);
    for (id, x) in parts {
        sums.add(id.as_uuid().as_u128(), x);
    }
    let mut sums = sums.into_sums();
    let distinct = sums.len();
    // Best first: the score in `f32::total_cmp`'s order, descending, then the id (byte order).
    let best_first = |&(id, s): &(u128, f32)| (std::cmp::Reverse(total_order(s)), id);
    if sums.len() > limit && limit > 0 {
        sums.select_nth_unstable_by_key(limit - 1, best_first);
    }
    sums.truncate(limit);
    sums.sort_unstable_by_key(best_first);
    let out = sums
        .into_iter()
        .map(|(id, s)| (EntityId::from_u128(id), s))
        .collect();
    (out, distinct)
}

/// Per-id sums in first-seen order, found through an open-addressing table.
///
/// Invariant: `table` has a power-of-two length of at least twice `sums.len()` (so probes
/// end), and each non-empty entry is the index in `sums` of the id whose probe sequence
/// passes through it.
struct Sums {
    table: Vec<usize>,
    sums: Vec<(u128, f32)>,
}

impl Sums {
    const EMPTY: usize = usize::MAX;

    fn with_capacity(capacity: usize) -> Self {
        let size = capacity.saturating_mul(2).max(16).next_power_of_two();
        Self {
            table: vec![Self::EMPTY; size],
            sums: Vec::with_capacity(capacity),
        }
    }

    /// Where `key`'s probe sequence starts: ids are UUIDs (random bits) or small integers,
    /// so both halves are mixed in.
    fn home(&self, key: u128) -> usize {
        let h = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
        let h = (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & (self.table.len() - 1)
    }

    /// Adds `x` to `key`'s sum (`0.0 + x` for a new key, so `-0.0` sums as the definition's
    /// `Σ` does).
    fn add(&mut self, key: u128, x: f32) {
        if (self.sums.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let mask = self.table.len() - 1;
        let mut at = self.home(key);
        loop {
            match self.table[at] {
                Self::EMPTY => {
                    self.table[at] = self.sums.len();
                    self.sums.push((key, 0.0 + x));
                    return;
                }
                i if self.sums[i].0 == key => {
                    self.sums[i].1 += x;
                    return;
                }
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Doubles the table and re-inserts every key (only when `capacity` was too small).
    fn grow(&mut self) {
        let size = self.table.len() * 2;
        self.table = vec![Self::EMPTY; size];
        for (i, &(key, _)) in self.sums.iter().enumerate() {
            let mut at = self.home(key);
            while self.table[at] != Self::EMPTY {
                at = (at + 1) & (size - 1);
            }
            self.table[at] = i;
        }
    }

    fn into_sums(self) -> Vec<(u128, f32)> {
        self.sums
    }
}

/// `s`'s bits as an integer that orders as [`f32::total_cmp`] orders floats.
fn total_order(s: f32) -> i32 {
    let bits = s.to_bits() as i32;
    bits ^ ((((bits >> 31) as u32) >> 1) as i32)
}

/// Reciprocal Rank Fusion of `lists` (each best first): an entity scores
/// `Σ weight_i / (k + rank_i)` over the lists it is in, `rank_i` from 1. `weights` (one per
/// list; `None`: all 1) lets one signal count more. Returns the best `limit`.
///
/// # Example
/// ```
/// use hybridb::{EntityId, fusion};
/// let (a, b, c) = (EntityId::from_key("a"), EntityId::from_key("b"), EntityId::from_key("c"));
/// let dense = [(a, 0.9), (b, 0.8)];
/// let text = [(b, 12.0), (c, 7.5)];
/// let fused = fusion::rrf(&[&dense, &text], None, 60.0, 10);
/// assert_eq!(fused[0].0, b, "in both lists");
/// ```
pub fn rrf(
    lists: &[&[(EntityId, f32)]],
    weights: Option<&[f32]>,
    k: f32,
    limit: usize,
) -> Vec<(EntityId, f32)> {
    rrf_counted(lists, weights, k, limit).0
}

/// [`rrf`], and the number of distinct ids in `lists`.
pub(crate) fn rrf_counted(
    lists: &[&[(EntityId, f32)]],
    weights: Option<&[f32]>,
    k: f32,
    limit: usize,
) -> (Vec<(EntityId, f32)>, usize) {
    let parts = lists.iter().enumerate().flat_map(|(i, list)| {
        let w = weights.and_then(|w| w.get(i)).copied().unwrap_or(1.0);
        list.iter()
            .enumerate()
            .map(move |(rank, (id, _))| (*id, w / (k + (rank + 1) as f32)))
    });
    ranked(parts, lists.iter().map(|l| l.len()).sum(), limit)
}

/// Distribution-Based Score Fusion of `lists`, as Qdrant defines it: each list's scores become
/// `(s - (mean - 3σ)) / 6σ` with the list's sample standard deviation σ (`n - 1`), not
/// clamped (a list of one item, or of equal scores, gives each 0.5), and an entity scores the
/// sum over the lists it is in. Returns the best `limit`.
pub fn dbsf(lists: &[&[(EntityId, f32)]], limit: usize) -> Vec<(EntityId, f32)> {
    dbsf_counted(lists, limit).0
}

/// [`dbsf`], and the number of distinct ids in `lists`.
pub(crate) fn dbsf_counted(
    lists: &[&[(EntityId, f32)]],
    limit: usize,
) -> (Vec<(EntityId, f32)>, usize) {
    let mut parts = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
    for list in lists {
        if list.is_empty() {
            continue;
        }
        let n = list.len() as f64;
        let mean = list.iter().map(|(_, s)| f64::from(*s)).sum::<f64>() / n;
        let sd = if list.len() < 2 {
            0.0
        } else {
            (list
                .iter()
                .map(|(_, s)| (f64::from(*s) - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0))
                .sqrt()
        };
        for (id, s) in *list {
            let norm = if sd > 0.0 {
                (f64::from(*s) - (mean - 3.0 * sd)) / (6.0 * sd)
            } else {
                0.5
            };
            parts.push((*id, norm as f32));
        }
    }
    let capacity = parts.len();
    ranked(parts.into_iter(), capacity, limit)
}

/// Maximal Marginal Relevance over `candidates` (each with its vector): picks `limit` of them
/// one by one, each maximising `(1 - diversity) * sim(query, c) - diversity * max sim(c, p)`
/// over the already picked `p` (`diversity` in `[0, 1]`: 0 ranks by relevance alone).
/// `similarity` is higher-is-better (cosine for unit vectors: the dot product). Returns the
/// picks in order with their marginal scores.
pub fn mmr<V: AsRef<[f32]>>(
    query: &[f32],
    candidates: &[(EntityId, V)],
    diversity: f32,
    limit: usize,
    similarity: impl Fn(&[f32], &[f32]) -> f32,
) -> Vec<(EntityId, f32)> {
    let diversity = diversity.clamp(0.0, 1.0);
    let relevance: Vec<f32> = candidates
        .iter()
        .map(|(_, v)| similarity(query, v.as_ref()))
        .collect();
    if relevance.iter().all(|r| r.is_finite())
        && let Some(out) = mmr_lazy(candidates, &relevance, diversity, limit, &similarity)
    {
        return out;
    }
    mmr_eager(candidates, &relevance, diversity, limit, &similarity)
}

/// MMR by its definition: every round scores every candidate left.
fn mmr_eager<V: AsRef<[f32]>>(
    candidates: &[(EntityId, V)],
    relevance: &[f32],
    diversity: f32,
    limit: usize,
    similarity: &impl Fn(&[f32], &[f32]) -> f32,
) -> Vec<(EntityId, f32)> {
    // Most similar already-picked vector, per candidate.
    let mut closest = vec![f32::NEG_INFINITY; candidates.len()];
    let mut taken = vec![false; candidates.len()];
    let mut out = Vec::with_capacity(limit.min(candidates.len()));
    while out.len() < limit {
        let mut best: Option<(usize, f32)> = None;
        for (i, (id, _)) in candidates.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let redundancy = if out.is_empty() { 0.0 } else { closest[i] };
            let score = (1.0 - diversity) * relevance[i] - diversity * redundancy;
            let better = match best {
                None => true,
                Some((j, s)) => score > s || (score == s && *id < candidates[j].0),
            };
            if better {
                best = Some((i, score));
            }
        }
        let Some((pick, score)) = best else {
            break;
        };
        taken[pick] = true;
        out.push((candidates[pick].0, score));
        if out.len() == limit {
            break;
        }
        for (i, (_, v)) in candidates.iter().enumerate() {
            if !taken[i] {
                closest[i] = closest[i].max(similarity(v.as_ref(), candidates[pick].1.as_ref()));
            }
        }
    }
    out
}

/// An MMR candidate in [`mmr_lazy`]'s heap: an upper bound of its score, its id, its index.
struct Bounded {
    /// `-0.0` made `0.0`, so that the heap's order is the numeric one of the definition.
    bound: f32,
    id: EntityId,
    index: usize,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bounded {}

impl Ord for Bounded {
    /// Greater is better: the higher bound, then the smaller id.
    fn cmp(&self, other: &Self) -> Ordering {
        self.bound
            .total_cmp(&other.bound)
            .then(other.id.cmp(&self.id))
    }
}

impl PartialOrd for Bounded {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The same picks as [`mmr_eager`], computing fewer similarities ("lazy greedy"): after the
/// first pick a candidate's score can only fall (its redundancy is a maximum over a growing
/// set, and rounding is monotone), so a score computed against the first picks bounds it from
/// above. Candidates wait in a heap by that bound (ties by id, as the definition breaks them);
/// the top one is brought up to date and pushed back until the top is up to date: no other can
/// beat it. `None` if a score comes out NaN (the caller then runs the definition, whose
/// handling of NaN depends on the candidates' order).
fn mmr_lazy<V: AsRef<[f32]>>(
    candidates: &[(EntityId, V)],
    relevance: &[f32],
    diversity: f32,
    limit: usize,
    similarity: &impl Fn(&[f32], &[f32]) -> f32,
) -> Option<Vec<(EntityId, f32)>> {
    let n = candidates.len();
    let mut out = Vec::with_capacity(limit.min(n));
    if n == 0 || limit == 0 {
        return Some(out);
    }
    let score = |rel: f32, redundancy: f32| (1.0 - diversity) * rel - diversity * redundancy;
    // The first pick: relevance alone (no redundancy yet), as the definition scores it.
    let mut first: Option<(usize, f32)> = None;
    for (i, &rel) in relevance.iter().enumerate() {
        let s = score(rel, 0.0);
        let id = candidates[i].0;
        if first.is_none_or(|(j, b)| s > b || (s == b && id < candidates[j].0)) {
            first = Some((i, s));
        }
    }
    let (pick, s) = first?;
    let mut picks = vec![pick];
    out.push((candidates[pick].0, s));
    // Per candidate: its largest similarity to `picks[..seen]`.
    let mut closest = vec![f32::NEG_INFINITY; n];
    let mut seen = vec![0usize; n];
    let mut heap: BinaryHeap<Bounded> = (0..n)
        .filter(|&i| i != pick)
        .map(|i| Bounded {
            bound: f32::INFINITY,
            id: candidates[i].0,
            index: i,
        })
        .collect();
    while out.len() < limit.min(n) {
        let top = heap.pop()?;
        let i = top.index;
        if seen[i] == picks.len() {
            // Up to date, and every other bound is lower (or equal with a larger id).
            picks.push(i);
            out.push((top.id, score(relevance[i], closest[i])));
            continue;
        }
        for &p in &picks[seen[i]..] {
            let (v, w) = (candidates[i].1.as_ref(), candidates[p].1.as_ref());
            closest[i] = closest[i].max(similarity(v, w));
        }
        seen[i] = picks.len();
        let s = score(relevance[i], closest[i]);
        if s.is_nan() {
            return None;
        }
        heap.push(Bounded {
            bound: s + 0.0,
            id: top.id,
            index: i,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> EntityId {
        EntityId::from_u128(n)
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_with_weights() {
        let a = [(id(1), 0.9), (id(2), 0.5), (id(3), 0.1)];
        let b = [(id(3), 40.0), (id(1), 10.0)];
        let fused = rrf(&[&a, &b], None, 60.0, 10);
        let want1 = 1.0 / 61.0 + 1.0 / 62.0;
        let want3 = 1.0 / 63.0 + 1.0 / 61.0;
        assert_eq!(fused[0].0, id(1));
        assert!((fused[0].1 - want1).abs() < 1e-7);
        assert_eq!(fused[1].0, id(3));
        assert!((fused[1].1 - want3).abs() < 1e-7);
        assert_eq!(fused[2].0, id(2));
        // Weighting the second list makes its first entity win.
        let fused = rrf(&[&a, &b], Some(&[1.0, 3.0]), 60.0, 1);
        assert_eq!(fused, vec![(id(3), 1.0 / 63.0 + 3.0 / 61.0)]);
    }

    #[test]
    fn dbsf_normalises_each_list_by_its_spread() {
        let a = [(id(1), 100.0), (id(2), 50.0), (id(3), 0.0)];
        let b = [(id(2), 0.9), (id(3), 0.1)];
        let fused = dbsf(&[&a, &b], 10);
        // The middle of a maps to 0.5; b (mean 0.5, sample σ 0.4·√2): its top to
        // 0.5 + 0.4 / (6 · 0.4·√2).
        let get = |i| fused.iter().find(|p| p.0 == id(i)).map(|p| p.1).unwrap();
        let b_top = 0.5 + 1.0 / (6.0 * 2f32.sqrt());
        assert!((get(2) - (0.5 + b_top)).abs() < 1e-5, "{fused:?}");
        // Qdrant's worked example: 3, 2, 1 -> mean 2, σ 1 -> 4/6, 3/6, 2/6.
        let q = [(id(1), 3.0), (id(2), 2.0), (id(3), 1.0)];
        let got: Vec<f32> = dbsf(&[&q], 3).iter().map(|p| p.1).collect();
        for (g, w) in got.iter().zip([4.0 / 6.0, 0.5, 2.0 / 6.0]) {
            assert!((g - w).abs() < 1e-6);
        }
        let b_low = 0.5 - 1.0 / (6.0 * 2f32.sqrt());
        assert!((get(1) - 2.0 / 3.0).abs() < 1e-5);
        assert!((get(3) - (1.0 / 3.0 + b_low)).abs() < 1e-5);
        assert_eq!(fused[0].0, id(2));
        let flat = [(id(7), 3.0)];
        assert_eq!(dbsf(&[&flat], 5), vec![(id(7), 0.5)]);
    }

    #[test]
    fn mmr_trades_relevance_for_diversity() {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let q = [1.0, 0.0];
        let c = vec![
            (id(1), vec![1.0, 0.0]),
            (id(2), vec![0.99, 0.141]),
            (id(3), vec![0.6, 0.8]),
        ];
        let plain: Vec<_> = mmr(&q, &c, 0.0, 3, dot).into_iter().map(|p| p.0).collect();
        assert_eq!(
            plain,
            [id(1), id(2), id(3)],
            "diversity 0 ranks by relevance"
        );
        let diverse: Vec<_> = mmr(&q, &c, 0.7, 2, dot).into_iter().map(|p| p.0).collect();
        assert_eq!(
            diverse,
            [id(1), id(3)],
            "the near-duplicate of the first pick drops"
        );
        assert_eq!(mmr(&q, &c, 0.5, 10, dot).len(), 3);
    }

    mod reference {
        //! Straightforward definitions, computed the slow way.
        use super::*;

        pub fn rrf(
            lists: &[Vec<(EntityId, f32)>],
            w: &[f32],
            k: f32,
            limit: usize,
        ) -> Vec<(EntityId, f32)> {
            let mut ids: Vec<EntityId> = lists.iter().flatten().map(|p| p.0).collect();
            ids.sort();
            ids.dedup();
            let mut out: Vec<(EntityId, f32)> = ids
                .into_iter()
                .map(|id| {
                    let mut s = 0.0f32;
                    for (i, l) in lists.iter().enumerate() {
                        if let Some(pos) = l.iter().position(|p| p.0 == id) {
                            s += w[i] / (k + (pos + 1) as f32);
                        }
                    }
                    (id, s)
                })
                .collect();
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out.truncate(limit);
            out
        }

        pub fn mmr(q: &[f32], c: &[(EntityId, Vec<f32>)], d: f32, limit: usize) -> Vec<EntityId> {
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            let mut picked: Vec<usize> = Vec::new();
            while picked.len() < limit.min(c.len()) {
                let best = (0..c.len())
                    .filter(|i| !picked.contains(i))
                    .map(|i| {
                        let red = picked
                            .iter()
                            .map(|&p| dot(&c[i].1, &c[p].1))
                            .fold(f32::NEG_INFINITY, f32::max);
                        let red = if picked.is_empty() { 0.0 } else { red };
                        (i, (1.0 - d) * dot(q, &c[i].1) - d * red)
                    })
                    // Numeric comparison (-0.0 equals 0.0), ties by id.
                    .min_by(|a, b| {
                        b.1.partial_cmp(&a.1)
                            .unwrap_or(std::cmp::Ordering::Equal)
                            .then(c[a.0].0.cmp(&c[b.0].0))
                    });
                match best {
                    Some((i, _)) => picked.push(i),
                    None => break,
                }
            }
            picked.into_iter().map(|i| c[i].0).collect()
        }
    }

    use proptest::prelude::*;

    fn lists() -> impl Strategy<Value = Vec<Vec<(EntityId, f32)>>> {
        prop::collection::vec(
            prop::collection::btree_map(0u128..30, -50i32..50, 0..15).prop_map(|m| {
                let mut l: Vec<(EntityId, f32)> = m
                    .into_iter()
                    .map(|(i, s)| (id(i), s as f32 / 4.0))
                    .collect();
                l.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                l
            }),
            1..4,
        )
    }

    proptest! {
        #[test]
        fn rrf_equals_its_definition(
            lists in lists(),
            k in 0u8..100,
            w in prop::collection::vec(0u8..5, 4),
            limit in 1usize..40,
        ) {
            let w: Vec<f32> = w.iter().map(|&x| f32::from(x) / 2.0).collect();
            let refs: Vec<&[(EntityId, f32)]> = lists.iter().map(Vec::as_slice).collect();
            let got = rrf(&refs, Some(&w[..lists.len()]), f32::from(k), limit);
            let want = reference::rrf(&lists, &w[..lists.len()], f32::from(k), limit);
            prop_assert_eq!(got.len(), want.len());
            for (g, r) in got.iter().zip(&want) {
                prop_assert!((g.1 - r.1).abs() < 1e-6);
            }
            // Equal scores may order either way only if they are within rounding.
            let ids = |v: &[(EntityId, f32)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
            if got.windows(2).all(|p| p[0].1 != p[1].1) {
                prop_assert_eq!(ids(&got), ids(&want));
            }
        }

        /// The table keeps one sum per key in first-seen order, whatever the capacity hint
        /// (too small ones make it grow), for small integer keys and random UUID bits alike.
        #[test]
        fn sums_equal_a_map_of_them(
            parts in prop::collection::vec((0u128..40, any::<u128>(), any::<bool>(), -8i8..8), 0..300),
            hint in 0usize..64,
        ) {
            let mut sums = Sums::with_capacity(hint);
            let mut model: Vec<(u128, f32)> = Vec::new();
            for &(small, big, use_big, x) in &parts {
                let key = if use_big { (big % 64).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) } else { small };
                let x = f32::from(x) / 4.0;
                sums.add(key, x);
                match model.iter_mut().find(|p| p.0 == key) {
                    Some(p) => p.1 += x,
                    None => model.push((key, 0.0 + x)),
                }
            }
            prop_assert_eq!(sums.into_sums(), model);
        }

        #[test]
        fn dbsf_equals_its_definition(lists in lists(), limit in 1usize..40) {
            let refs: Vec<&[(EntityId, f32)]> = lists.iter().map(Vec::as_slice).collect();
            let got = dbsf(&refs, limit);
            for w in got.windows(2) {
                prop_assert!(w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0));
            }
            // The definition, entity by entity: the sum of its normalised scores.
            for (id, s) in &got {
                let mut want = 0.0f64;
                for l in &lists {
                    let Some(&(_, x)) = l.iter().find(|p| p.0 == *id) else { continue };
                    let n = l.len() as f64;
                    let mean = l.iter().map(|p| f64::from(p.1)).sum::<f64>() / n;
                    let sd = if l.len() < 2 {
                        0.0
                    } else {
                        (l.iter().map(|p| (f64::from(p.1) - mean).powi(2)).sum::<f64>()
                            / (n - 1.0))
                            .sqrt()
                    };
                    want += if sd > 0.0 {
                        (f64::from(x) - mean + 3.0 * sd) / (6.0 * sd)
                    } else {
                        0.5
                    };
                }
                prop_assert!((f64::from(*s) - want).abs() < 1e-4, "{} vs {}", s, want);
            }
        }

        #[test]
        fn mmr_equals_its_definition(
            vs in prop::collection::vec(prop::collection::vec(-4i8..=4, 3), 1..20),
            d in 0u8..=10,
            limit in 1usize..25,
        ) {
            let q = [1.0f32, 0.5, -0.5];
            let c: Vec<(EntityId, Vec<f32>)> = vs
                .iter()
                .enumerate()
                .map(|(i, v)| (id(i as u128), v.iter().map(|&x| f32::from(x)).collect()))
                .collect();
            let d = f32::from(d) / 10.0;
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            let got: Vec<EntityId> =
                mmr(&q, &c, d, limit, dot).into_iter().map(|p| p.0).collect();
            prop_assert_eq!(got, reference::mmr(&q, &c, d, limit));
        }

        /// The lazy evaluation picks exactly what the definition picks, with the same scores,
        /// on real-valued vectors in any order.
        #[test]
        fn lazy_mmr_equals_the_eager_one(
            vs in prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 4), 1..40),
            d in 0.0f32..=1.0,
            limit in 1usize..45,
        ) {
            let q = [0.3f32, -0.2, 0.9, 0.1];
            let c: Vec<(EntityId, Vec<f32>)> = vs
                .iter()
                .enumerate()
                .map(|(i, v)| (id((i as u128 * 7919) % 97), v.clone()))
                .collect();
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            let rel: Vec<f32> = c.iter().map(|(_, v)| dot(&q, v)).collect();
            let eager = mmr_eager(&c, &rel, d, limit, &dot);
            let lazy = mmr_lazy(&c, &rel, d, limit, &dot);
            prop_assert_eq!(Some(eager), lazy);
        }
    }
}
