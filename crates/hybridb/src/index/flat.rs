//! The flat vector store: every vector of a collection in one contiguous slot-ordered array,
//! searched exactly with the SIMD kernels.
//!
//! Invariants (kept by the collection's write path, which is the only mutator):
//! - a slot is either *free* (in `free`, or `>= ids.len()`) or *allocated* to exactly one id,
//!   mirroring the collection's `slots` table in redb;
//! - `live` holds the allocated slots that searches may return; a slot is taken out of `live`
//!   *before* its deletion commits, so search never returns an entity that is being deleted;
//! - vectors are held in index form (unit length under cosine).

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};

use crate::config::Metric;
use crate::id::EntityId;
use crate::index::distance::{DistanceFn, kernels};

/// One search result inside the engine: a slot and its distance (lower is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neighbor {
    pub slot: u32,
    pub id: EntityId,
    pub distance: f32,
}

/// Dense slot-indexed vectors with an exact top-k search.
#[derive(Debug)]
pub(crate) struct FlatIndex {
    dim: usize,
    distance: DistanceFn,
    negate: bool,
    data: Vec<f32>,
    ids: Vec<EntityId>,
    live: Vec<u64>,
    free: BTreeSet<u32>,
    live_count: usize,
}

impl FlatIndex {
    pub(crate) fn new(dim: usize, metric: Metric) -> Self {
        let k = kernels();
        let (distance, negate) = match metric {
            Metric::L2 => (k.l2_squared, false),
            Metric::Dot | Metric::Cosine => (k.dot, true),
        };
        FlatIndex {
            dim,
            distance,
            negate,
            data: Vec::new(),
            ids: Vec::new(),
            live: Vec::new(),
            free: BTreeSet::new(),
            live_count: 0,
        }
    }

    /// Number of slots searches may return.
    pub(crate) fn live_count(&self) -> usize {
        self.live_count
    }

    /// Bytes held by vectors, ids and bitsets (not counting the free list).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.data.capacity() * 4 + self.ids.capacity() * 16 + self.live.capacity() * 8
    }

    /// The `n` slots the next `n` new entities get: lowest free slots first, then fresh ones.
    /// Pure: the slots are taken by [`FlatIndex::set`].
    #[cfg(test)]
    pub(crate) fn plan_slots(&self, n: usize) -> Vec<u32> {
        let mut cursor = SlotCursor::default();
        (0..n).map(|_| cursor.next(self)).collect()
    }

    /// Allocates `slot` to `id` with `vector` (index form) and makes it searchable.
    pub(crate) fn set(&mut self, slot: u32, id: EntityId, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dim);
        let s = slot as usize;
        if s >= self.ids.len() {
            for fresh in self.ids.len()..s {
                self.free.insert(fresh as u32);
            }
            self.ids.resize(s + 1, EntityId::MIN);
            self.data.resize((s + 1) * self.dim, 0.0);
            self.live.resize((s + 1).div_ceil(64), 0);
        }
        self.free.remove(&slot);
        self.ids[s] = id;
        self.data[s * self.dim..(s + 1) * self.dim].copy_from_slice(vector);
        self.set_live(slot, true);
    }

    /// Takes `slot` out of search results without freeing it (a deletion about to commit).
    pub(crate) fn hide(&mut self, slot: u32) {
        self.set_live(slot, false);
    }

    /// Undoes [`FlatIndex::hide`] (the deletion did not commit).
    pub(crate) fn unhide(&mut self, slot: u32) {
        if (slot as usize) < self.ids.len() && !self.free.contains(&slot) {
            self.set_live(slot, true);
        }
    }

    /// Frees `slot` (its deletion committed).
    pub(crate) fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        if s < self.ids.len() {
            self.set_live(slot, false);
            self.ids[s] = EntityId::MIN;
            self.free.insert(slot);
        }
    }

    fn set_live(&mut self, slot: u32, on: bool) {
        let (w, b) = ((slot / 64) as usize, slot % 64);
        let was = self.live[w] >> b & 1 == 1;
        if on && !was {
            self.live[w] |= 1 << b;
            self.live_count += 1;
        } else if !on && was {
            self.live[w] &= !(1 << b);
            self.live_count -= 1;
        }
    }

    /// The `k` nearest live slots to `query` (index form), nearest first, ties by id.
    pub(crate) fn search(&self, query: &[f32], k: usize) -> Vec<Neighbor> {
        debug_assert_eq!(query.len(), self.dim);
        let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(k + 1);
        let mut worst = f32::INFINITY;
        let dim = self.dim;
        let sign = if self.negate { -1.0 } else { 1.0 };
        for (w, &word) in self.live.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let d = sign * (self.distance)(query, &self.data[slot * dim..(slot + 1) * dim]);
                if heap.len() == k && d > worst {
                    continue;
                }
                let cand = Candidate {
                    distance: d,
                    id: self.ids[slot],
                    slot: slot as u32,
                };
                if heap.len() < k {
                    heap.push(cand);
                } else if let Some(mut top) = heap.peek_mut()
                    && cand < *top
                {
                    *top = cand;
                }
                if heap.len() == k {
                    worst = heap.peek().map_or(f32::INFINITY, |c| c.distance);
                }
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(|c| Neighbor {
                slot: c.slot,
                id: c.id,
                distance: c.distance,
            })
            .collect()
    }
}

/// Hands out the slots for new entities of one write group, in order: the lowest free slots
/// first, then fresh slots past the end. Pure with respect to the index (slots are taken by
/// [`FlatIndex::set`] after commit), so a group that fails to commit leaves nothing behind.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SlotCursor {
    last_free: Option<u32>,
    fresh: Option<u32>,
}

impl SlotCursor {
    pub(crate) fn next(&mut self, index: &FlatIndex) -> u32 {
        if self.fresh.is_none() {
            let after = match self.last_free {
                Some(s) => std::ops::Bound::Excluded(s),
                None => std::ops::Bound::Unbounded,
            };
            if let Some(&s) = index.free.range((after, std::ops::Bound::Unbounded)).next() {
                self.last_free = Some(s);
                return s;
            }
            self.fresh = Some(index.ids.len() as u32);
        }
        let s = self.fresh.unwrap_or(0);
        self.fresh = Some(s + 1);
        s
    }
}

/// A search candidate ordered by distance, then by id (the tie rule callers see).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    distance: f32,
    id: EntityId,
    slot: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then_with(|| self.id.cmp(&other.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> EntityId {
        EntityId::from_u128(n)
    }

    #[test]
    fn exact_top_k_with_ties_by_id() {
        let mut f = FlatIndex::new(2, Metric::L2);
        f.set(0, id(5), &[1.0, 0.0]);
        f.set(1, id(3), &[1.0, 0.0]);
        f.set(2, id(9), &[0.0, 0.0]);
        f.set(3, id(1), &[5.0, 5.0]);
        let r = f.search(&[0.0, 0.0], 3);
        let ids: Vec<_> = r.iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![id(9), id(3), id(5)]);
        assert_eq!(r[1].distance, 1.0);
    }

    #[test]
    fn hide_remove_and_slot_reuse() {
        let mut f = FlatIndex::new(1, Metric::Dot);
        for s in 0..4 {
            f.set(s, id(s as u128 + 1), &[s as f32]);
        }
        f.hide(3);
        assert_eq!(f.search(&[1.0], 1)[0].id, id(3));
        f.unhide(3);
        assert_eq!(f.search(&[1.0], 1)[0].id, id(4));
        f.remove(1);
        assert_eq!(f.live_count(), 3);
        assert_eq!(f.plan_slots(3), vec![1, 4, 5]);
        f.set(6, id(7), &[0.5]);
        assert_eq!(f.plan_slots(3), vec![1, 4, 5]);
        assert!(f.search(&[1.0], 10).iter().all(|n| n.slot != 1));
    }
}
