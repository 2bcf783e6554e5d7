//! The in-memory mirror of a collection's payload indexes: for each indexed field, the slots
//! holding each value (and `null`). Changed only by the writer thread, under the index's apply
//! order (see [`crate::query::state`]); read by filter evaluation.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound as KeyBound;

use roaring::RoaringBitmap;

use crate::index::bitset::SlotBitset;
use crate::model::config::PayloadIndexKind;
use crate::query::payload::PostingKey;

/// Slots holding one value: most values of high-cardinality fields have one slot.
#[derive(Debug, Clone)]
enum Posting {
    One(u32),
    Many(RoaringBitmap),
}

impl Posting {
    fn insert(&mut self, slot: u32) {
        match self {
            Posting::One(s) if *s == slot => {}
            Posting::One(s) => {
                let mut b = RoaringBitmap::new();
                b.insert(*s);
                b.insert(slot);
                *self = Posting::Many(b);
            }
            Posting::Many(b) => {
                b.insert(slot);
            }
        }
    }

    /// Removes `slot`; returns whether the posting is now empty.
    fn remove(&mut self, slot: u32) -> bool {
        match self {
            Posting::One(s) => *s == slot,
            Posting::Many(b) => {
                b.remove(slot);
                b.is_empty()
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Posting::One(_) => 1,
            Posting::Many(b) => b.len(),
        }
    }

    fn add_to(&self, out: &mut SlotBitset) {
        match self {
            Posting::One(s) => out.insert_uncounted(*s),
            Posting::Many(b) => b.iter().for_each(|s| out.insert_uncounted(s)),
        }
    }

    fn slots(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Posting::One(s) => Box::new(std::iter::once(*s)),
            Posting::Many(b) => Box::new(b.iter()),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Posting::One(_) => 0,
            Posting::Many(b) => b.serialized_size(),
        }
    }
}

/// The postings of one field, and the same facts by slot (for per-slot checks).
///
/// Every value has a `u64` code: the big-endian key itself for numbers, datetimes and
/// booleans (so codes keep the value order), a dictionary number for keywords. `single`,
/// `state` and `multi` give each slot's codes without a lookup by value.
#[derive(Debug, Clone)]
pub(crate) struct FieldPostings {
    pub(crate) kind: PayloadIndexKind,
    values: BTreeMap<Vec<u8>, Posting>,
    nulls: RoaringBitmap,
    /// Keyword fields: value to code, for values some slot holds.
    dict: HashMap<Vec<u8>, u64>,
    next_code: u64,
    /// Per slot: its one code, or [`NO_CODE`], or [`MULTI_CODE`] (codes in `multi`). One array,
    /// so a per-node check during graph search costs one memory access.
    codes: Vec<u64>,
    multi: HashMap<u32, Vec<u64>>,
}

/// `codes` entry of a slot without a value.
const NO_CODE: u64 = u64::MAX;
/// `codes` entry of a slot whose codes are in `multi` (several values, or a code that equals
/// one of these two markers).
const MULTI_CODE: u64 = u64::MAX - 1;

/// The code of a non-keyword key (8-byte numbers and datetimes, 1-byte booleans).
pub(crate) fn ordered_code(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[8 - n..].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

impl FieldPostings {
    fn new(kind: PayloadIndexKind) -> Self {
        FieldPostings {
            kind,
            values: BTreeMap::new(),
            nulls: RoaringBitmap::new(),
            dict: HashMap::new(),
            next_code: 0,
            codes: Vec::new(),
            multi: HashMap::new(),
        }
    }

    /// The code of value `key`, if some slot holds it (keywords) or always (ordered kinds).
    pub(crate) fn code(&self, key: &[u8]) -> Option<u64> {
        match self.kind {
            PayloadIndexKind::Keyword => self.dict.get(key).copied(),
            _ => Some(ordered_code(key)),
        }
    }

    /// Whether `slot` holds a value whose code passes `test`.
    #[inline]
    pub(crate) fn slot_has(&self, slot: u32, test: impl Fn(u64) -> bool) -> bool {
        match self.codes.get(slot as usize) {
            Some(&c) if c < MULTI_CODE => test(c),
            Some(&MULTI_CODE) => self
                .multi
                .get(&slot)
                .is_some_and(|c| c.iter().any(|&x| test(x))),
            _ => false,
        }
    }

    /// Whether `slot` holds any non-null value.
    #[inline]
    pub(crate) fn slot_exists(&self, slot: u32) -> bool {
        self.codes.get(slot as usize).is_some_and(|&c| c != NO_CODE)
    }

    /// Whether `slot` holds `null`.
    #[inline]
    pub(crate) fn slot_null(&self, slot: u32) -> bool {
        self.nulls.contains(slot)
    }

    fn add_code(&mut self, slot: u32, code: u64) {
        let s = slot as usize;
        if s >= self.codes.len() {
            self.codes.resize(s + 1, NO_CODE);
        }
        match self.codes[s] {
            NO_CODE if code < MULTI_CODE => self.codes[s] = code,
            NO_CODE => {
                self.codes[s] = MULTI_CODE;
                self.multi.insert(slot, vec![code]);
            }
            MULTI_CODE => {
                let codes = self.multi.entry(slot).or_default();
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
            one if one != code => {
                self.codes[s] = MULTI_CODE;
                self.multi.insert(slot, vec![one, code]);
            }
            _ => {}
        }
    }

    fn remove_code(&mut self, slot: u32, code: u64) {
        let s = slot as usize;
        match self.codes.get(s).copied() {
            Some(MULTI_CODE) => {
                if let Some(codes) = self.multi.get_mut(&slot) {
                    codes.retain(|&c| c != code);
                    match codes.as_slice() {
                        [] => {
                            self.codes[s] = NO_CODE;
                            self.multi.remove(&slot);
                        }
                        [one] if *one < MULTI_CODE => {
                            self.codes[s] = *one;
                            self.multi.remove(&slot);
                        }
                        _ => {}
                    }
                }
            }
            Some(one) if one == code => self.codes[s] = NO_CODE,
            _ => {}
        }
    }

    /// Adds the slots holding exactly `key` to `out`; returns how many.
    pub(crate) fn value_into(&self, key: &[u8], out: &mut SlotBitset) -> u64 {
        self.values.get(key).map_or(0, |p| {
            p.add_to(out);
            p.len()
        })
    }

    /// Number of slots holding exactly `key`.
    pub(crate) fn value_count(&self, key: &[u8]) -> u64 {
        self.values.get(key).map_or(0, Posting::len)
    }

    /// Number of slots holding `null`.
    pub(crate) fn null_count(&self) -> u64 {
        self.nulls.len()
    }

    /// Number of (slot, value) pairs in the key range, if it has at most `budget` values.
    pub(crate) fn range_count(
        &self,
        lo: KeyBound<Vec<u8>>,
        hi: KeyBound<Vec<u8>>,
        budget: usize,
    ) -> Option<u64> {
        use KeyBound::*;
        let empty = match (&lo, &hi) {
            (Included(a), Included(b)) => a > b,
            (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a >= b,
            _ => false,
        };
        if empty {
            return Some(0);
        }
        let mut total = 0;
        for (i, (_, p)) in self.values.range((lo, hi)).enumerate() {
            if i == budget {
                return None;
            }
            total += p.len();
        }
        Some(total)
    }

    /// Adds the slots holding a value in the key range to `out`.
    pub(crate) fn range_into(
        &self,
        lo: KeyBound<Vec<u8>>,
        hi: KeyBound<Vec<u8>>,
        out: &mut SlotBitset,
    ) {
        use KeyBound::*;
        let empty = match (&lo, &hi) {
            (Included(a), Included(b)) => a > b,
            (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a >= b,
            _ => false,
        };
        if empty {
            return;
        }
        for p in self.values.range((lo, hi)).map(|(_, p)| p) {
            p.add_to(out);
        }
    }

    /// Adds the slots holding any non-null value.
    pub(crate) fn exists_into(&self, out: &mut SlotBitset) {
        for p in self.values.values() {
            p.add_to(out);
        }
    }

    /// Adds the slots holding `null`.
    pub(crate) fn nulls_into(&self, out: &mut SlotBitset) {
        self.nulls.iter().for_each(|s| out.insert_uncounted(s));
    }
}

/// Every payload index of one collection.
#[derive(Debug, Clone, Default)]
pub(crate) struct PayloadIndex {
    fields: BTreeMap<String, FieldPostings>,
}

impl PayloadIndex {
    /// Empty postings for the declared `fields`.
    pub(crate) fn new(fields: &BTreeMap<String, PayloadIndexKind>) -> Self {
        PayloadIndex {
            fields: fields
                .iter()
                .map(|(f, &k)| (f.clone(), FieldPostings::new(k)))
                .collect(),
        }
    }

    /// The declared fields and their types.
    pub(crate) fn declared(&self) -> BTreeMap<String, PayloadIndexKind> {
        self.fields
            .iter()
            .map(|(f, p)| (f.clone(), p.kind))
            .collect()
    }

    /// The postings of `field`, if it is indexed.
    pub(crate) fn field(&self, field: &str) -> Option<&FieldPostings> {
        self.fields.get(field)
    }

    /// Declares (or replaces with empty postings) an index on `field`.
    pub(crate) fn add_field(&mut self, field: &str, kind: PayloadIndexKind) {
        self.fields
            .insert(field.to_string(), FieldPostings::new(kind));
    }

    /// Forgets the index on `field`.
    pub(crate) fn remove_field(&mut self, field: &str) {
        self.fields.remove(field);
    }

    /// Records that `slot` holds `key` (keys of undeclared fields are ignored).
    pub(crate) fn insert(&mut self, key: &PostingKey, slot: u32) {
        let Some(f) = self.fields.get_mut(&key.field) else {
            return;
        };
        match &key.value {
            None => {
                f.nulls.insert(slot);
            }
            Some(v) => {
                match f.values.get_mut(v) {
                    Some(p) => p.insert(slot),
                    None => {
                        f.values.insert(v.clone(), Posting::One(slot));
                    }
                }
                let code = match f.kind {
                    PayloadIndexKind::Keyword => match f.dict.get(v) {
                        Some(&c) => c,
                        None => {
                            let c = f.next_code;
                            f.next_code += 1;
                            f.dict.insert(v.clone(), c);
                            c
                        }
                    },
                    _ => ordered_code(v),
                };
                f.add_code(slot, code);
            }
        }
    }

    /// Records that `slot` no longer holds `key`.
    pub(crate) fn remove(&mut self, key: &PostingKey, slot: u32) {
        let Some(f) = self.fields.get_mut(&key.field) else {
            return;
        };
        match &key.value {
            None => {
                f.nulls.remove(slot);
            }
            Some(v) => {
                if let Some(code) = f.code(v) {
                    f.remove_code(slot, code);
                }
                if f.values.get_mut(v).is_some_and(|p| p.remove(slot)) {
                    f.values.remove(v);
                    if f.kind == PayloadIndexKind::Keyword {
                        f.dict.remove(v);
                    }
                }
            }
        }
    }

    /// Every `(key, slot)` pair, in key order (for integrity checks).
    pub(crate) fn rows(&self) -> Vec<(PostingKey, u32)> {
        let mut out = Vec::new();
        for (field, f) in &self.fields {
            for s in f.nulls.iter() {
                out.push((
                    PostingKey {
                        field: field.clone(),
                        value: None,
                    },
                    s,
                ));
            }
            for (v, p) in &f.values {
                for s in p.slots() {
                    out.push((
                        PostingKey {
                            field: field.clone(),
                            value: Some(v.clone()),
                        },
                        s,
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// Approximate bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.fields
            .values()
            .map(|f| {
                f.codes.capacity() * 8
                    + f.multi.len() * 48
                    + f.dict.len() * 48
                    + f.nulls.serialized_size()
                    + f.values
                        .iter()
                        .map(|(k, p)| k.len() + 48 + p.memory_bytes())
                        .sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(field: &str, v: Option<&[u8]>) -> PostingKey {
        PostingKey {
            field: field.into(),
            value: v.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn insert_remove_and_lookups() {
        let mut fields = BTreeMap::new();
        fields.insert("k".to_string(), PayloadIndexKind::Keyword);
        let mut ix = PayloadIndex::new(&fields);
        ix.insert(&key("k", Some(b"a")), 1);
        ix.insert(&key("k", Some(b"a")), 2);
        ix.insert(&key("k", Some(b"b")), 3);
        ix.insert(&key("k", None), 4);
        ix.insert(&key("other", Some(b"a")), 5);
        let f = ix.field("k").unwrap();
        let mut out = SlotBitset::new();
        assert_eq!(f.value_into(b"a", &mut out), 2);
        out.recount();
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![1, 2]);
        let mut all = SlotBitset::new();
        f.exists_into(&mut all);
        f.nulls_into(&mut all);
        all.recount();
        assert_eq!(all.len(), 4);
        let mut r = SlotBitset::new();
        f.range_into(
            KeyBound::Excluded(b"a".to_vec()),
            KeyBound::Unbounded,
            &mut r,
        );
        r.recount();
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![3]);
        let mut none = SlotBitset::new();
        f.range_into(
            KeyBound::Excluded(b"b".to_vec()),
            KeyBound::Excluded(b"b".to_vec()),
            &mut none,
        );
        assert!(none.words().iter().all(|w| *w == 0));
        assert!(f.slot_has(3, |c| Some(c) == f.code(b"b")));
        assert!(!f.slot_has(3, |c| Some(c) == f.code(b"a")));
        assert!(f.slot_exists(1) && !f.slot_exists(4) && f.slot_null(4));
        ix.insert(&key("k", Some(b"b")), 1);
        let f = ix.field("k").unwrap();
        assert!(
            f.slot_has(1, |c| Some(c) == f.code(b"a"))
                && f.slot_has(1, |c| Some(c) == f.code(b"b"))
        );
        ix.remove(&key("k", Some(b"b")), 1);
        ix.remove(&key("k", Some(b"a")), 1);
        ix.remove(&key("k", Some(b"a")), 2);
        ix.remove(&key("k", None), 4);
        assert_eq!(ix.rows(), vec![(key("k", Some(b"b")), 3)]);
    }
}
