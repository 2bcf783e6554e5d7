//! The changes an HNSW index has accepted but not yet built into its graph: what a reopen
//! replays after loading a checkpoint, linked in the background so that the collection is
//! searchable as soon as the checkpoint is loaded (see [`crate::index::hnsw_index`]).
//!
//! The index's contents (its *view*) are, slot by slot: the vector in `pending` if there is
//! one, else nothing if the slot is `stale`, else the graph's node.
//!
//! Invariants (kept by the owner, which changes a delta only under the collection's apply
//! lock):
//! - every `stale` slot is a live graph node (the linker clears a slot from `stale` right after
//!   removing its node);
//! - a `pending` slot that is also a live graph node is `stale`, except for the moment between
//!   the linker inserting it into the graph and taking it out of `pending`: then both hold the
//!   same vector, and searches merge the two answers by slot.

use std::collections::HashMap;

use crate::index::bitset::SlotBitset;

/// Accepted changes not yet in the graph.
pub(crate) struct Delta {
    dim: usize,
    /// Graph nodes that no longer belong to the view (deleted, or replaced by a pending
    /// vector): kept out of results, still traversed, until the linker removes them.
    stale: SlotBitset,
    /// Position of each pending slot in `slots`.
    pos: HashMap<u32, usize>,
    /// Pending slots, and their vectors (`dim` floats each, in the same order).
    slots: Vec<u32>,
    vectors: Vec<f32>,
    /// Number of slots in the view.
    view_len: usize,
}

impl Delta {
    /// An empty delta over a graph holding `graph_len` nodes.
    pub(crate) fn new(dim: usize, graph_len: usize) -> Self {
        Delta {
            dim,
            stale: SlotBitset::new(),
            pos: HashMap::new(),
            slots: Vec::new(),
            vectors: Vec::new(),
            view_len: graph_len,
        }
    }

    /// Whether the graph alone is the view.
    pub(crate) fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.slots.is_empty()
    }

    /// The pending vector of `slot`, if it has one.
    pub(crate) fn vector(&self, slot: u32) -> Option<&[f32]> {
        let at = *self.pos.get(&slot)? * self.dim;
        self.vectors.get(at..at + self.dim)
    }

    /// Number of slots in the view.
    pub(crate) fn view_len(&self) -> usize {
        self.view_len
    }

    /// Number of pending vectors.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.slots.len()
    }

    /// Changes not yet built into the graph: pending vectors plus stale nodes.
    pub(crate) fn backlog(&self) -> usize {
        self.slots.len() + self.stale.len()
    }

    /// Whether the graph node of `slot` is outside the view.
    #[inline]
    pub(crate) fn is_stale(&self, slot: u32) -> bool {
        self.stale.contains(slot)
    }

    /// Whether `slot` is pending or stale: its changes must go through the delta.
    pub(crate) fn knows(&self, slot: u32) -> bool {
        self.pos.contains_key(&slot) || self.stale.contains(slot)
    }

    /// Records `n` slots added to the view by inserting straight into the graph.
    pub(crate) fn grew(&mut self, n: usize) {
        self.view_len += n;
    }

    /// Records `n` slots taken out of the view by removing them straight from the graph.
    pub(crate) fn shrank(&mut self, n: usize) {
        self.view_len -= n;
    }

    /// Whether the view holds `slot`, given whether the graph has it as a live node.
    pub(crate) fn holds(&self, slot: u32, in_graph: bool) -> bool {
        self.pos.contains_key(&slot) || (in_graph && !self.stale.contains(slot))
    }

    /// Puts `vector` in the view at `slot` (`in_graph`: the graph has a live node there).
    pub(crate) fn set(&mut self, slot: u32, vector: &[f32], in_graph: bool) {
        debug_assert_eq!(vector.len(), self.dim);
        if !self.holds(slot, in_graph) {
            self.view_len += 1;
        }
        if in_graph {
            self.stale.insert(slot);
        }
        match self.pos.get(&slot) {
            Some(&i) => self.vectors[i * self.dim..(i + 1) * self.dim].copy_from_slice(vector),
            None => {
                self.pos.insert(slot, self.slots.len());
                self.slots.push(slot);
                self.vectors.extend_from_slice(vector);
            }
        }
    }

    /// Takes `slot` out of the view (`in_graph` as for [`Delta::set`]).
    pub(crate) fn remove(&mut self, slot: u32, in_graph: bool) {
        if self.holds(slot, in_graph) {
            self.view_len -= 1;
        }
        if in_graph {
            self.stale.insert(slot);
        }
        self.unpend(slot);
    }

    /// Drops `slot`'s pending vector, if any.
    fn unpend(&mut self, slot: u32) {
        let Some(i) = self.pos.remove(&slot) else {
            return;
        };
        let last = self.slots.len() - 1;
        if i != last {
            let moved = self.slots[last];
            self.slots[i] = moved;
            self.pos.insert(moved, i);
            self.vectors
                .copy_within(last * self.dim..(last + 1) * self.dim, i * self.dim);
        }
        self.slots.pop();
        self.vectors.truncate(last * self.dim);
    }

    /// The stale slots (for the linker to remove from the graph).
    pub(crate) fn stale_slots(&self) -> Vec<u32> {
        self.stale.iter().collect()
    }

    /// Forgets that these slots are stale (their nodes have left the graph).
    pub(crate) fn clear_stale(&mut self, slots: &[u32]) {
        for &s in slots {
            self.stale.remove(s);
        }
    }

    /// Up to `n` pending vectors (copies; they stay pending until [`Delta::linked`]).
    pub(crate) fn batch(&self, n: usize) -> Vec<(u32, Vec<f32>)> {
        let start = self.slots.len().saturating_sub(n);
        (start..self.slots.len())
            .map(|i| {
                let v = self.vectors[i * self.dim..(i + 1) * self.dim].to_vec();
                (self.slots[i], v)
            })
            .collect()
    }

    /// Records that the graph now holds the vectors of `batch` (from [`Delta::batch`]): each
    /// leaves `pending`, unless the view changed since the batch was taken (the owner's lock
    /// normally prevents that); then the node is stale instead.
    pub(crate) fn linked(&mut self, batch: &[(u32, Vec<f32>)]) {
        for (slot, v) in batch {
            match self.pos.get(slot) {
                Some(&i) if self.vectors[i * self.dim..(i + 1) * self.dim] == v[..] => {
                    self.unpend(*slot);
                }
                _ => {
                    self.stale.insert(*slot);
                }
            }
        }
    }

    /// Exact distances (by `dist`) from `query` to the pending vectors `allowed` admits.
    pub(crate) fn scan(
        &self,
        query: &[f32],
        dist: impl Fn(&[f32], &[f32]) -> f32,
        allowed: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| allowed(**s))
            .map(|(i, &s)| {
                let v = &self.vectors[i * self.dim..(i + 1) * self.dim];
                (s, dist(query, v))
            })
            .collect()
    }

    /// Bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.vectors.capacity() * 4
            + self.slots.capacity() * 4
            + self.pos.capacity() * 16
            + self.stale.memory_bytes()
    }
}

/// Merges two answers that may name the same slot (with the same distance) into one list.
pub(crate) fn merge(mut a: Vec<(u32, f32)>, b: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    a.extend(b);
    a.sort_unstable_by_key(|x| x.0);
    a.dedup_by_key(|x| x.0);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(graph_len: usize) -> Delta {
        Delta::new(2, graph_len)
    }

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    #[test]
    fn the_view_counts_each_slot_once() {
        let mut d = delta(10);
        // Slot 3 is a graph node: replacing it hides the node and adds nothing.
        d.set(3, &[1.0, 0.0], true);
        assert_eq!((d.view_len(), d.pending()), (10, 1));
        assert!(d.is_stale(3) && d.holds(3, true));
        // Again: still one pending vector, the new one.
        d.set(3, &[2.0, 0.0], true);
        assert_eq!((d.view_len(), d.pending()), (10, 1));
        assert_eq!(d.scan(&[0.0, 0.0], l2, |_| true), vec![(3, 4.0)]);
        // A new slot grows the view; deleting it shrinks it again.
        d.set(12, &[0.0, 1.0], false);
        assert_eq!(d.view_len(), 11);
        d.remove(12, false);
        assert_eq!((d.view_len(), d.pending()), (10, 1));
        assert!(!d.holds(12, false));
        // Deleting a graph node; deleting it twice changes nothing more.
        d.remove(5, true);
        d.remove(5, true);
        assert_eq!(d.view_len(), 9);
        assert_eq!(d.stale_slots(), vec![3, 5]);
        assert!(!d.is_empty());
    }

    #[test]
    fn linking_drains_only_what_is_unchanged() {
        let mut d = delta(0);
        for s in 0..5u32 {
            d.set(s, &[s as f32, 0.0], false);
        }
        let batch = d.batch(3);
        assert_eq!(batch.len(), 3);
        // A write replaces one of them while the batch is being linked: it stays pending.
        let (changed, _) = batch[0];
        d.set(changed, &[9.0, 9.0], false);
        d.linked(&batch);
        assert_eq!(d.pending(), 3);
        // The graph's node holds the old vector: hidden, the new one still pending.
        assert!(d.holds(changed, true) && d.is_stale(changed));
        assert_eq!(d.stale_slots(), vec![changed]);
        // Every remaining vector is still the right one after the swaps.
        let mut left = d.scan(&[0.0, 0.0], l2, |_| true);
        left.sort_by_key(|x| x.0);
        for (s, dist) in left {
            let want = if s == changed { 162.0 } else { (s * s) as f32 };
            assert_eq!(dist, want, "slot {s}");
        }
        // The linker removes stale nodes before it links more.
        d.clear_stale(&[changed]);
        let rest = d.batch(10);
        d.linked(&rest);
        assert!(d.is_empty());
        assert_eq!(d.view_len(), 5);
    }

    #[test]
    fn merge_keeps_one_entry_per_slot() {
        let m = merge(vec![(1, 0.5), (4, 2.0)], vec![(4, 2.0), (2, 1.0)]);
        assert_eq!(m, vec![(1, 0.5), (2, 1.0), (4, 2.0)]);
    }
}
