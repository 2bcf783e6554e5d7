//! Exact top-k over posting lists with MaxScore pruning (Turtle & Flood, 1995), document at a
//! time: the one walk behind the sparse-vector index and the BM25 index.
//!
//! Each query list has an upper bound on what it adds to a document's score. Lists are ordered
//! by bound; once the `k`-th best score `θ` reaches the sum of the smallest bounds, those lists
//! become *non-essential*: a document found only in them cannot enter the top `k`, so only the
//! essential lists drive the walk, and a document whose essential contributions plus every
//! non-essential bound cannot pass `θ` is skipped; before it is scored, each non-essential bound
//! is swapped for the document's actual contribution (a galloping seek), largest first. The
//! survivors are scored exactly by the caller's function, which is also given every list's
//! contribution to the document (0 for lists without it), in the caller's list order, so a
//! caller whose exact score is that sum need not look the document up again.
//!
//! Invariants (the callers' property tests check the results against exhaustive scans):
//! - documents come in increasing slot order, so a later document never wins a tie: pruning
//!   at "cannot exceed `θ`" keeps ties broken by slot;
//! - a bound is compared with `θ` with a slack for float error (bounds and exact scores sum
//!   the same terms in different orders);
//! - `allowed` is checked before anything is scored, so `k` results come back whenever `k`
//!   allowed documents appear in the lists.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A query's posting list: its slots, strictly increasing, and its contribution bound.
pub(crate) struct List<'a> {
    pub slots: &'a [u32],
    pub bound: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Kept {
    score: f32,
    slot: u32,
}

impl Eq for Kept {}

impl Ord for Kept {
    /// Worse is greater: lower score, then the larger slot.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.slot.cmp(&other.slot))
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Cursor<'a> {
    /// Position of the list among the caller's.
    list: usize,
    slots: &'a [u32],
    pos: usize,
    bound: f32,
}

impl Cursor<'_> {
    fn current(&self) -> Option<u32> {
        self.slots.get(self.pos).copied()
    }

    /// Moves to the first entry at or after `slot` (galloping, then binary search).
    fn seek(&mut self, slot: u32) {
        let rest = &self.slots[self.pos.min(self.slots.len())..];
        let mut step = 1;
        while step < rest.len() && rest[step] < slot {
            step *= 2;
        }
        let end = (step + 1).min(rest.len());
        self.pos += rest[..end].partition_point(|&s| s < slot);
    }
}

fn slack(a: f32, b: f32) -> f32 {
    1e-5 * (a.abs() + b.abs()) + 1e-6
}

/// The `k` allowed documents of `lists` with the best `exact` scores, `(slot, score)` best
/// first, ties by slot, plus every further document whose score equals the `k`-th (so that a
/// caller can break ties at the boundary its own way, by entity id, then cut to `k`).
/// `contribution(list, pos, doc)` is what entry `pos` of list `list` (the caller's numbering)
/// adds to `doc`'s score, at most that list's bound; `exact(doc, contributions)` is `doc`'s
/// score, given each list's contribution to it (by the caller's numbering, 0 where the list
/// lacks `doc`).
pub(crate) fn top_k_with_ties(
    lists: Vec<List<'_>>,
    k: usize,
    allowed: &dyn Fn(u32) -> bool,
    contribution: impl Fn(usize, usize, u32) -> f32,
    exact: impl Fn(u32, &[f32]) -> f32,
) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    // This document's contribution from each list, by the caller's numbering.
    let mut parts = vec![0.0f32; lists.len()];
    let mut cursors: Vec<Cursor<'_>> = lists
        .into_iter()
        .enumerate()
        .map(|(list, l)| Cursor {
            list,
            slots: l.slots,
            pos: 0,
            bound: l.bound.max(0.0),
        })
        .collect();
    cursors.sort_by(|a, b| a.bound.total_cmp(&b.bound));
    // prefix[i]: the bounds of cursors 0..=i summed.
    let prefix: Vec<f32> = cursors
        .iter()
        .scan(0.0f32, |acc, c| {
            *acc += c.bound;
            Some(*acc)
        })
        .collect();
    let mut top: BinaryHeap<Kept> = BinaryHeap::with_capacity(k + 1);
    // Documents left out at a score equal to the k-th when they were met (only those equal to
    // the final k-th score are returned). A document tied with the k-th is never pruned: its
    // bounds are at least its score, and pruning needs them below it by the slack.
    let mut ties: Vec<Kept> = Vec::new();
    let mut theta = f32::NEG_INFINITY;
    // Cursors below `essential` are non-essential.
    let mut essential = 0;
    while let Some(doc) = cursors[essential..]
        .iter()
        .filter_map(Cursor::current)
        .min()
    {
        if !allowed(doc) {
            for c in &mut cursors[essential..] {
                if c.current() == Some(doc) {
                    c.pos += 1;
                }
            }
            continue;
        }
        parts.fill(0.0);
        let mut partial = 0.0f32;
        for c in &mut cursors[essential..] {
            if c.current() == Some(doc) {
                let x = contribution(c.list, c.pos, doc);
                parts[c.list] = x;
                partial += x;
                c.pos += 1;
            }
        }
        if top.len() == k {
            let mut bound = partial
                + if essential == 0 {
                    0.0
                } else {
                    prefix[essential - 1]
                };
            let mut hopeless = bound + slack(bound, theta) <= theta;
            for c in cursors[..essential].iter_mut().rev() {
                if hopeless {
                    break;
                }
                bound -= c.bound;
                c.seek(doc);
                if c.current() == Some(doc) {
                    let x = contribution(c.list, c.pos, doc);
                    parts[c.list] = x;
                    bound += x;
                }
                hopeless = bound + slack(bound, theta) <= theta;
            }
            if hopeless {
                continue;
            }
        }
        // Every list has been looked at here: the essential ones above, the others in the
        // bound loop (which runs over all of them unless the document is dropped; with fewer
        // than `k` kept, every list is essential).
        let score = exact(doc, &parts);
        if top.len() < k {
            top.push(Kept { score, slot: doc });
        } else if score > theta {
            if let Some(out) = top.pop() {
                ties.push(out);
            }
            top.push(Kept { score, slot: doc });
        } else {
            if score == theta {
                ties.push(Kept { score, slot: doc });
            }
            continue;
        }
        if top.len() == k {
            theta = top.peek().map_or(f32::NEG_INFINITY, |w| w.score);
            while essential < cursors.len()
                && prefix[essential] + slack(prefix[essential], theta) <= theta
            {
                essential += 1;
            }
        }
    }
    let last = if top.len() == k { theta } else { f32::NAN };
    let mut out: Vec<(u32, f32)> = top
        .into_iter()
        .chain(ties.into_iter().filter(|t| t.score == last))
        .map(|e| (e.slot, e.score))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}
