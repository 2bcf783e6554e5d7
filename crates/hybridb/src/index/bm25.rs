//! A BM25 text index: term postings with frequencies, document lengths, and exact top-k with
//! the MaxScore walk of `index::maxscore`, with BM25 bounds.
//!
//! Score of a document `d` for query terms `t` (a repeated query term counts each time):
//! `Σ idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))`, with
//! Lucene's `idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))` over `N` documents of which `n(t)`
//! hold `t`, and `avgdl` the mean length in terms. Statistics are those of the moment of the
//! search, so scores are exact whatever was inserted or removed before.
//!
//! Invariants:
//! - results equal [`Bm25Index::search_exhaustive`] (ids, scores, ties by slot): a term's
//!   contribution is computed by one function (`Bm25Index::tf_part` times the term's weight)
//!   and a score sums the contributions in query order, in both searches; pruning skips a
//!   document only if a bound is below the `k`-th score by more than the float error;
//! - the pruned search reads only the query's posting lists and the flat array of document
//!   lengths (no per-document lookups), so its memory traffic is the lists it walks;
//! - a term's bound uses the largest frequency and the smallest document length its postings
//!   ever held (a BM25 term score grows with `tf` and shrinks with `|d|`), which only widen
//!   between rebuilds, so they stay bounds;
//! - a filter is applied inside the walk.

use std::collections::HashMap;

use crate::index::maxscore::{List, top_k_with_ties};

/// BM25's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation (default 1.2).
    pub k1: f32,
    /// Length normalisation, 0..=1 (default 0.75).
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

/// A document: its `(term, tf)` sorted by term, and its length in terms.
type Doc = (Vec<(u32, u32)>, u32);

#[derive(Debug, Default, Clone)]
struct Posting {
    /// Strictly increasing.
    slots: Vec<u32>,
    tfs: Vec<u32>,
    /// Largest frequency and smallest document length ever held (bounds).
    max_tf: u32,
    min_len: u32,
}

/// An exact BM25 index over slots (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    vocab: HashMap<String, u32>,
    /// By term id (empty for a term no document holds now).
    postings: Vec<Posting>,
    /// By slot.
    docs: Vec<Option<Doc>>,
    /// Document length by slot (0 for a slot without a document), read by the pruned search.
    lens: Vec<u32>,
    count: usize,
    total_len: u64,
}

impl Bm25Index {
    /// An empty index with `params`.
    pub fn new(params: Bm25Params) -> Self {
        Bm25Index {
            params,
            ..Self::default()
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no documents.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Indexes the terms of a document (from an [`crate::index::text::Analyzer`]) under `slot`,
    /// replacing what it held.
    pub fn insert(&mut self, slot: u32, terms: &[String]) {
        self.remove(slot);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for t in terms {
            let next = self.vocab.len() as u32;
            let id = *self.vocab.entry(t.clone()).or_insert(next);
            *counts.entry(id).or_insert(0) += 1;
        }
        let len = terms.len() as u32;
        let mut tfs: Vec<(u32, u32)> = counts.into_iter().collect();
        tfs.sort_unstable();
        if self.postings.len() < self.vocab.len() {
            self.postings
                .resize_with(self.vocab.len(), Posting::default);
        }
        for &(term, tf) in &tfs {
            let p = &mut self.postings[term as usize];
            if p.slots.is_empty() {
                // New, or emptied by removals: its bounds start again.
                *p = Posting {
                    min_len: len,
                    ..Posting::default()
                };
            }
            p.max_tf = p.max_tf.max(tf);
            p.min_len = p.min_len.min(len);
            let at = p.slots.partition_point(|&s| s < slot);
            p.slots.insert(at, slot);
            p.tfs.insert(at, tf);
        }
        let at = slot as usize;
        if self.docs.len() <= at {
            self.docs.resize(at + 1, None);
            self.lens.resize(at + 1, 0);
        }
        self.docs[at] = Some((tfs, len));
        self.lens[at] = len;
        self.count += 1;
        self.total_len += u64::from(len);
    }

    /// Heap bytes held (approximate).
    pub fn memory_bytes(&self) -> usize {
        let postings: usize = self
            .postings
            .iter()
            .map(|p| p.slots.capacity() * 4 + p.tfs.capacity() * 4 + 56)
            .sum::<usize>()
            + self.lens.capacity() * 4;
        let docs: usize = self
            .docs
            .iter()
            .map(|d| 24 + d.as_ref().map_or(0, |(t, _)| t.capacity() * 8))
            .sum();
        let vocab: usize = self.vocab.keys().map(|k| k.capacity() + 32).sum();
        postings + docs + vocab
    }

    /// The slots whose documents hold every one of `terms` (ascending; no terms: none).
    pub fn slots_with_all(&self, terms: &[String]) -> Vec<u32> {
        let mut lists = Vec::with_capacity(terms.len());
        for t in terms {
            match self
                .vocab
                .get(t)
                .and_then(|&id| self.postings.get(id as usize))
            {
                Some(p) => lists.push(p.slots.as_slice()),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else {
            return Vec::new();
        };
        first
            .iter()
            .copied()
            .filter(|s| rest.iter().all(|l| l.binary_search(s).is_ok()))
            .collect()
    }

    /// The slots that hold a document.
    pub fn doc_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.docs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_some())
            .map(|(s, _)| s as u32)
    }

    /// Removes the document of `slot`, if any.
    pub fn remove(&mut self, slot: u32) {
        let Some((tfs, len)) = self.docs.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.count -= 1;
        self.total_len -= u64::from(len);
        self.lens[slot as usize] = 0;
        for (term, _) in tfs {
            if let Some(p) = self.postings.get_mut(term as usize) {
                if let Ok(at) = p.slots.binary_search(&slot) {
                    p.slots.remove(at);
                    p.tfs.remove(at);
                }
                if p.slots.is_empty() {
                    // Free the lists' memory; the term id stays in the vocabulary.
                    *p = Posting::default();
                }
            }
        }
    }

    fn avgdl(&self) -> f32 {
        if self.count == 0 {
            1.0
        } else {
            (self.total_len as f64 / self.count as f64).max(f64::MIN_POSITIVE) as f32
        }
    }

    /// Lucene's IDF of a term held by `n` documents.
    fn idf(&self, n: usize) -> f32 {
        let (n, total) = (n as f64, self.count as f64);
        (1.0 + (total - n + 0.5) / (n + 0.5)).ln() as f32
    }

    /// The BM25 term-frequency part for `tf` in a document of `len` terms.
    fn tf_part(&self, tf: u32, len: u32, avgdl: f32) -> f32 {
        let Bm25Params { k1, b } = self.params;
        let tf = tf as f32;
        tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len as f32 / avgdl))
    }

    /// The query's terms that the index holds, with their weights (idf times repetitions), in
    /// the order they first appear.
    fn query_terms(&self, query: &[String]) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = Vec::new();
        for t in query {
            let Some(&id) = self.vocab.get(t) else {
                continue;
            };
            let Some(p) = self
                .postings
                .get(id as usize)
                .filter(|p| !p.slots.is_empty())
            else {
                continue;
            };
            match out.iter_mut().find(|(i, _)| *i == id) {
                Some((_, w)) => *w += self.idf(p.slots.len()),
                None => out.push((id, self.idf(p.slots.len()))),
            }
        }
        out
    }

    /// The score of the document in `slot` (one function for both searches).
    fn score(&self, terms: &[(u32, f32)], slot: u32, avgdl: f32) -> f32 {
        let Some(Some((tfs, len))) = self.docs.get(slot as usize) else {
            return 0.0;
        };
        let mut sum = 0.0f32;
        for &(term, weight) in terms {
            if let Ok(at) = tfs.binary_search_by_key(&term, |p| p.0) {
                sum += weight * self.tf_part(tfs[at].1, *len, avgdl);
            }
        }
        sum
    }

    /// As [`Self::search_with_ties`], cut to `k` (ties at the boundary by slot).
    pub fn search(
        &self,
        query: &[String],
        k: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut out = self.search_with_ties(query, k, allowed);
        out.truncate(k);
        out
    }

    /// The `k` allowed documents holding a query term with the best BM25 scores:
    /// `(slot, score)`, best first, ties by slot, plus every further
    /// document scoring exactly the `k`-th (for callers that break ties their own way). `query` holds analyzed terms.
    pub fn search_with_ties(
        &self,
        query: &[String],
        k: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let terms = self.query_terms(query);
        let avgdl = self.avgdl();
        // One list per query term, in query order (`query_terms` keeps only held terms).
        let postings: Vec<(f32, &Posting)> = terms
            .iter()
            .map(|&(term, weight)| (weight, &self.postings[term as usize]))
            .collect();
        let lists = postings
            .iter()
            .map(|&(weight, p)| List {
                slots: &p.slots,
                bound: weight * self.tf_part(p.max_tf, p.min_len, avgdl),
            })
            .collect();
        let lens = &self.lens;
        top_k_with_ties(
            lists,
            k,
            allowed,
            |list, pos, doc| {
                let (weight, p) = postings[list];
                let len = lens.get(doc as usize).copied().unwrap_or(0);
                weight * self.tf_part(p.tfs[pos], len, avgdl)
            },
            // The contributions in query order, summed as `score` sums them.
            |_, parts| {
                let mut sum = 0.0f32;
                for &x in parts {
                    sum += x;
                }
                sum
            },
        )
    }

    /// The same answer as [`Bm25Index::search`] by scoring every document that holds a query
    /// term (the baseline and the test oracle).
    pub fn search_exhaustive(
        &self,
        query: &[String],
        k: usize,
        allowed: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let terms = self.query_terms(query);
        let avgdl = self.avgdl();
        let mut scored: Vec<(u32, f32)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(slot, d)| {
                let (tfs, _) = d.as_ref()?;
                let slot = slot as u32;
                let holds = terms
                    .iter()
                    .any(|(t, _)| tfs.binary_search_by_key(t, |p| p.0).is_ok());
                (holds && allowed(slot)).then(|| (slot, self.score(&terms, slot, avgdl)))
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn terms(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn scores_follow_the_bm25_formula() {
        let mut ix = Bm25Index::new(Bm25Params::default());
        ix.insert(0, &terms("a b a"));
        ix.insert(1, &terms("b c"));
        ix.insert(2, &terms("c c c d"));
        // N = 3, avgdl = 3; "a" in 1 doc; doc 0 has tf 2, length 3.
        let idf = (1.0f64 + (3.0 - 1.0 + 0.5) / (1.0 + 0.5)).ln();
        let tf_part = 2.0 * 2.2 / (2.0 + 1.2 * (1.0 - 0.75 + 0.75 * 3.0 / 3.0));
        let hits = ix.search(&terms("a"), 5, &|_| true);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, 0);
        assert!(
            (f64::from(hits[0].1) - idf * tf_part).abs() < 1e-5,
            "{hits:?}"
        );
        // A repeated query term counts twice.
        let twice = ix.search(&terms("a a"), 5, &|_| true);
        assert!((twice[0].1 - 2.0 * hits[0].1).abs() < 1e-5);
        // Unknown terms are ignored; removal updates the statistics.
        assert!(ix.search(&terms("zzz"), 5, &|_| true).is_empty());
        ix.remove(2);
        assert_eq!(ix.len(), 2);
        assert!(ix.search(&terms("d"), 5, &|_| true).is_empty());
        assert_eq!(ix.search(&terms("c"), 5, &|_| true)[0].0, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Pruned search equals the exhaustive scan, with filters, removals and reused slots.
        #[test]
        fn pruned_search_equals_the_scan(
            docs in prop::collection::vec(prop::collection::vec(0u8..30, 0..25), 1..150),
            query in prop::collection::vec(0u8..30, 1..8),
            k in 1usize..12,
            removed in prop::collection::vec(0u32..150, 0..20),
            modulus in 1u32..4,
        ) {
            let word = |t: &u8| format!("w{t}");
            let mut ix = Bm25Index::new(Bm25Params::default());
            for (slot, d) in docs.iter().enumerate() {
                ix.insert(slot as u32, &d.iter().map(word).collect::<Vec<_>>());
            }
            for s in removed {
                ix.remove(s);
                if s % 3 == 0 {
                    ix.insert(s, &[word(&((s % 30) as u8)), word(&7), word(&7)]);
                }
            }
            let q: Vec<String> = query.iter().map(word).collect();
            let allowed = |s: u32| s.is_multiple_of(modulus);
            prop_assert_eq!(ix.search(&q, k, &allowed), ix.search_exhaustive(&q, k, &allowed));
        }
    }
}
