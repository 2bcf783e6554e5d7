//! What the planner remembers about filters it has seen, keyed by the filter's hash: the last
//! selectivity sample, the exact matching set of a repeated filter, and the measured cost of
//! its graph walks.
//!
//! Invariant: each entry is dated by the state's version (`applied_items`) and used only while
//! it is fresh: a kept matching set only at the exact version it was computed at (every change
//! of live slots moves the version), estimates and walk costs until 1/32 of the collection has
//! changed. A stale estimate could make a plan slower, never a result wrong.

use super::*;
use crate::index::bitset::SlotBitset;
use crate::model::sync::lock;
use crate::query::filter::Filter;
use crate::query::plan;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What one filter's graph walks cost. The planner's model prices a walk at a share `s` as
/// `1/s` plain searches, which holds for filters spread evenly over the space; a filter whose
/// matches sit in one region (a tenant, a language) can cost several times that, since the
/// walk crosses the region around the query first. Its own measurement then prices it.
pub(super) struct WalkCost {
    pub(super) filter: Filter,
    /// `applied_items` when last measured.
    pub(super) at: u64,
    /// Nanoseconds of one walk at the beam width of the index's [`plan::Costs`].
    pub(super) ns: f64,
}

/// A filter's last selectivity sample.
pub(super) struct Estimate {
    pub(super) filter: Filter,
    /// `applied_items` when sampled.
    pub(super) at: u64,
    pub(super) hits: usize,
    pub(super) sampled: usize,
}

/// The exact matching set of a repeated filter at one version.
pub(super) struct KeptSet {
    pub(super) hash: u64,
    pub(super) filter: Filter,
    /// `applied_items` when computed: valid only while it has not moved.
    pub(super) version: u64,
    pub(super) bits: Arc<SlotBitset>,
}

/// A filter's hash, the key of the planner's per-filter caches (equal filters hash alike; a
/// filter with a NaN bound never equals itself, so it is simply never found there).
pub(super) fn filter_hash(filter: &Filter) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    filter.hash(&mut h);
    h.finish()
}

/// Matching sets kept for repeated filters (each is one bit per slot).
const SETS_KEPT: usize = 16;

/// Filters whose selectivity estimate is kept.
const ESTIMATES_KEPT: usize = 256;

impl IndexState {
    /// A filter's sample, from the cache while the collection has changed by under 1/32 of
    /// its size since it was taken (repeated filters, such as a tenant's, skip the sampling;
    /// an outdated estimate could only make a plan slower, never a result wrong).
    ///
    /// Returns `(hits, sampled)`.
    pub(super) fn estimate(
        &self,
        hash: u64,
        filter: &Filter,
        live: usize,
        take: impl FnOnce() -> (usize, usize),
    ) -> (usize, usize) {
        let now = self.applied_items.load(Ordering::Relaxed);
        let kept = lock(&self.estimates).get(&hash).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| e.filter == *filter)
                .map(|e| (e.at, e.hits, e.sampled))
        });
        if let Some((at, hits, sampled)) = kept
            && now.saturating_sub(at) <= (live / 32) as u64
        {
            return (hits, sampled);
        }
        let (hits, sampled) = take();
        let mut cache = lock(&self.estimates);
        if cache.len() >= ESTIMATES_KEPT {
            cache.clear();
        }
        let bucket = cache.entry(hash).or_default();
        bucket.retain(|e| e.filter != *filter);
        bucket.push(Estimate {
            filter: filter.clone(),
            at: now,
            hits,
            sampled,
        });
        (hits, sampled)
    }

    /// The matching set of `filter` (whose hash is `hash`) computed at `version`, if kept.
    /// Exact: every change of postings or slots, hiding included, bumps the version.
    pub(super) fn cached_set(
        &self,
        hash: u64,
        filter: &Filter,
        version: u64,
    ) -> Option<Arc<SlotBitset>> {
        let sets = lock(&self.filter_sets);
        sets.iter()
            .find(|k| k.hash == hash && k.version == version && k.filter == *filter)
            .map(|k| k.bits.clone())
    }

    /// Whether a filter with this hash was already evaluated at `version` (recorded now if
    /// not): its matching set is then worth keeping. A hash collision only keeps one set that
    /// is not needed.
    pub(super) fn seen_again(&self, hash: u64, version: u64) -> bool {
        let mut seen = lock(&self.seen);
        if seen.contains(&(hash, version)) {
            return true;
        }
        if seen.len() >= ESTIMATES_KEPT {
            seen.pop_front();
        }
        seen.push_back((hash, version));
        false
    }

    /// Keeps the matching set of `filter` at `version` (a few, for repeated filters).
    pub(super) fn keep_set(
        &self,
        hash: u64,
        filter: &Filter,
        version: u64,
        bits: &Arc<SlotBitset>,
    ) {
        let mut sets = lock(&self.filter_sets);
        sets.retain(|k| k.version == version);
        if sets.len() >= SETS_KEPT {
            sets.remove(0);
        }
        sets.push(KeptSet {
            hash,
            filter: filter.clone(),
            version,
            bits: Arc::clone(bits),
        });
    }

    /// The measured walk cost of `filter` (ns at the costs' beam width), unless the collection
    /// changed by more than a 32nd of `live` since it was measured.
    pub(super) fn walk_cost(&self, hash: u64, filter: &Filter, live: usize) -> Option<f64> {
        let now = self.applied_items.load(Ordering::Relaxed);
        lock(&self.walks)
            .get(&hash)
            .filter(|w| w.filter == *filter && now.saturating_sub(w.at) <= (live / 32) as u64)
            .map(|w| w.ns)
    }

    /// Folds a walk of `filter` that took `ns` (at the costs' beam width) into its cost: the
    /// first measurement (or the first since it went stale, as in [`Self::walk_cost`])
    /// replaces it.
    pub(super) fn observe_walk(&self, hash: u64, filter: &Filter, ns: f64, live: usize) {
        let now = self.applied_items.load(Ordering::Relaxed);
        let mut walks = lock(&self.walks);
        if walks.len() >= ESTIMATES_KEPT && !walks.contains_key(&hash) {
            walks.clear();
        }
        match walks.get_mut(&hash) {
            Some(w) if w.filter == *filter && now.saturating_sub(w.at) <= (live / 32) as u64 => {
                w.ns += plan::OBSERVED_WEIGHT * (ns - w.ns);
                w.at = now;
            }
            _ => {
                walks.insert(
                    hash,
                    WalkCost {
                        filter: filter.clone(),
                        at: now,
                        ns,
                    },
                );
            }
        }
    }
}
