//! A growable bitset over slots, used for the set of searchable slots (and, later, filters).

/// Bits indexed by slot; bits past the end read as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotBitset {
    words: Vec<u64>,
    count: usize,
}

impl SlotBitset {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `slot` is in the set.
    #[inline]
    pub fn contains(&self, slot: u32) -> bool {
        self.words
            .get((slot / 64) as usize)
            .is_some_and(|w| w >> (slot % 64) & 1 == 1)
    }

    /// Adds `slot`; returns whether it was absent.
    pub fn insert(&mut self, slot: u32) -> bool {
        let w = (slot / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let bit = 1u64 << (slot % 64);
        let absent = self.words[w] & bit == 0;
        self.words[w] |= bit;
        self.count += usize::from(absent);
        absent
    }

    /// Removes `slot`; returns whether it was present.
    pub fn remove(&mut self, slot: u32) -> bool {
        let w = (slot / 64) as usize;
        let Some(word) = self.words.get_mut(w) else {
            return false;
        };
        let bit = 1u64 << (slot % 64);
        let present = *word & bit != 0;
        *word &= !bit;
        self.count -= usize::from(present);
        present
    }

    /// Number of slots in the set.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The raw words (bit `i` of word `w` is slot `64 * w + i`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The slots in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some(w as u32 * 64 + b)
            })
        })
    }

    /// Keeps only the slots also in `other`.
    pub fn intersect_with(&mut self, other: &SlotBitset) {
        self.words.truncate(other.words.len());
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= o;
        }
        self.recount();
    }

    /// Adds every slot of `other`.
    pub fn union_with(&mut self, other: &SlotBitset) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        self.recount();
    }

    /// Removes every slot of `other`.
    pub fn subtract(&mut self, other: &SlotBitset) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= !o;
        }
        self.recount();
    }

    /// Adds slots without keeping the count (call [`SlotBitset::recount`] after).
    pub(crate) fn insert_uncounted(&mut self, slot: u32) {
        let w = (slot / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1u64 << (slot % 64);
    }

    /// Recomputes the count from the words.
    pub(crate) fn recount(&mut self) {
        self.count = self.words.iter().map(|w| w.count_ones() as usize).sum();
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_iterate() {
        let mut b = SlotBitset::new();
        assert!(b.insert(3) && b.insert(64) && b.insert(200));
        assert!(!b.insert(3));
        assert_eq!(b.len(), 3);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 64, 200]);
        assert!(b.remove(64) && !b.remove(64) && !b.remove(10_000));
        assert!(b.contains(3) && !b.contains(64) && !b.contains(9999));
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn set_operations() {
        let set = |xs: &[u32]| {
            let mut b = SlotBitset::new();
            for &x in xs {
                b.insert(x);
            }
            b
        };
        let mut a = set(&[1, 5, 70, 300]);
        a.intersect_with(&set(&[5, 70, 71]));
        assert_eq!(a, set(&[5, 70]).tap_len(2));
        a.union_with(&set(&[2, 500]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![2, 5, 70, 500]);
        assert_eq!(a.len(), 4);
        a.subtract(&set(&[5, 500, 9000]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![2, 70]);
        assert_eq!(a.len(), 2);
    }

    trait TapLen {
        fn tap_len(self, n: usize) -> Self;
    }
    impl TapLen for SlotBitset {
        fn tap_len(self, n: usize) -> Self {
            assert_eq!(self.len(), n);
            self
        }
    }
}
