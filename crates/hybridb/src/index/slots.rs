//! The slot table of a collection: which entity holds each dense `u32` slot, which slots are
//! free, and which ones searches may return.
//!
//! Invariants (the writer thread is the only mutator):
//! - a slot is *free* (in `free`, or `>= ids.len()`) or *allocated* to exactly one id, mirroring
//!   the collection's `slots` table in redb;
//! - `live` is a subset of the allocated slots: the ones searches may return. A slot leaves
//!   `live` *before* its deletion commits (so search never returns an entity being deleted)
//!   and enters it only *after* its vector is in the vector index.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::index::bitset::SlotBitset;
use crate::model::id::EntityId;

/// Slot ↔ id map with the free list and the searchable set.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    ids: Vec<EntityId>,
    free: BTreeSet<u32>,
    /// The allocated slots (the complement of `free` below `ids.len()`), for O(1) lookups.
    allocated: SlotBitset,
    live: SlotBitset,
}

impl SlotTable {
    /// The searchable slots.
    pub(crate) fn live(&self) -> &SlotBitset {
        &self.live
    }

    /// Number of searchable slots.
    pub(crate) fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The id allocated to `slot`, if any.
    pub(crate) fn id(&self, slot: u32) -> Option<EntityId> {
        self.allocated
            .contains(slot)
            .then(|| self.ids[slot as usize])
    }

    /// Allocates `slot` to `id` and makes it searchable (its vector must be indexed already).
    pub(crate) fn claim(&mut self, slot: u32, id: EntityId) {
        let s = slot as usize;
        if s >= self.ids.len() {
            for fresh in self.ids.len()..s {
                self.free.insert(fresh as u32);
            }
            self.ids.resize(s + 1, EntityId::MIN);
        }
        self.free.remove(&slot);
        self.ids[s] = id;
        self.allocated.insert(slot);
        self.live.insert(slot);
    }

    /// Takes `slot` out of search results without freeing it (a deletion about to commit).
    pub(crate) fn hide(&mut self, slot: u32) {
        self.live.remove(slot);
    }

    /// Undoes [`SlotTable::hide`] (the deletion did not commit).
    pub(crate) fn unhide(&mut self, slot: u32) {
        if self.id(slot).is_some() {
            self.live.insert(slot);
        }
    }

    /// Frees `slot` (its deletion committed and its vector left the index).
    pub(crate) fn release(&mut self, slot: u32) {
        let s = slot as usize;
        if s < self.ids.len() {
            self.live.remove(slot);
            self.allocated.remove(slot);
            self.ids[s] = EntityId::MIN;
            self.free.insert(slot);
        }
    }

    /// A table holding exactly the allocated slots of `slot_ids` (`EntityId::MIN`: free), all
    /// live.
    pub(crate) fn from_ids(slot_ids: Vec<EntityId>) -> Self {
        let mut t = SlotTable::default();
        for (slot, id) in slot_ids.into_iter().enumerate() {
            if id != EntityId::MIN {
                t.claim(slot as u32, id);
            }
        }
        t
    }

    /// Slot → id for every slot up to the highest allocated one (`EntityId::MIN`: free).
    pub(crate) fn allocated_ids(&self) -> Vec<EntityId> {
        let mut out = self.ids.clone();
        for &f in &self.free {
            if let Some(x) = out.get_mut(f as usize) {
                *x = EntityId::MIN;
            }
        }
        out
    }

    /// Number of allocated slots.
    pub(crate) fn allocated_count(&self) -> usize {
        self.allocated.len()
    }

    /// Bytes held by ids and the live set (not counting the free list).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.ids.capacity() * 16 + self.live.memory_bytes() + self.allocated.memory_bytes()
    }
}

/// Hands out the slots for new entities of one write group, in order: the lowest free slots
/// first, then fresh slots past the end. Pure with respect to the table (slots are taken by
/// [`SlotTable::claim`] after commit), so a group that fails to commit leaves nothing behind.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SlotCursor {
    last_free: Option<u32>,
    fresh: Option<u32>,
}

impl SlotCursor {
    pub(crate) fn next(&mut self, table: &SlotTable) -> u32 {
        if self.fresh.is_none() {
            let after = match self.last_free {
                Some(s) => Bound::Excluded(s),
                None => Bound::Unbounded,
            };
            if let Some(&s) = table.free.range((after, Bound::Unbounded)).next() {
                self.last_free = Some(s);
                return s;
            }
            self.fresh = Some(table.ids.len() as u32);
        }
        let s = self.fresh.unwrap_or(0);
        self.fresh = Some(s + 1);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> EntityId {
        EntityId::from_u128(n)
    }

    #[test]
    fn claim_hide_release_and_reuse() {
        let mut t = SlotTable::default();
        for s in 0..4 {
            t.claim(s, id(u128::from(s) + 1));
        }
        t.hide(3);
        assert!(!t.live().contains(3));
        assert_eq!(t.id(3), Some(id(4)));
        t.unhide(3);
        assert!(t.live().contains(3));
        t.release(1);
        assert_eq!(t.id(1), None);
        assert_eq!(t.live_count(), 3);
        let mut c = SlotCursor::default();
        assert_eq!((c.next(&t), c.next(&t), c.next(&t)), (1, 4, 5));
        t.claim(6, id(7));
        let mut c = SlotCursor::default();
        assert_eq!((c.next(&t), c.next(&t), c.next(&t)), (1, 4, 5));
    }
}
