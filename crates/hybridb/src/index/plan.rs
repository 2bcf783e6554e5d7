//! The filtered-search planner: given how many live slots match a filter, choose between an
//! exact scan of just those slots and a graph traversal that keeps only matching nodes.
//!
//! The costs come from measurement, not constants: the first filtered search of a collection
//! (and again whenever the collection has doubled or halved since) times one plain graph
//! search and one scan of a sample of slots, on this machine, for this data ([`Costs`]); every
//! executed plan then folds its own time into a running average, so a first measurement that
//! was off (a warm cache, a busy machine) corrects itself. A
//! graph traversal that keeps a fraction `s` of the nodes must expand about `1/s` times as
//! many to fill its beam, so it is estimated at `graph_ns / s` (scaled by the beam width); a
//! scan costs `scan_ns` per matching slot. The cheaper plan wins. A traversal that returns
//! fewer hits than wanted (a filter that cuts the graph into islands) is followed by an exact
//! scan, so a filtered search returns `k` hits whenever `k` entities match.

use crate::search::Plan;

/// Below this many matching slots a scan always wins (it takes microseconds).
const SCAN_ALWAYS: usize = 256;

/// Measured costs of one collection's index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Costs {
    /// Nanoseconds per slot of an exact scan over a subset.
    pub scan_ns: f64,
    /// Nanoseconds of one unfiltered graph search with beam `ef`.
    pub graph_ns: f64,
    pub ef: usize,
    /// Live slots when measured.
    pub live: usize,
}

/// Weight of one observation in the running averages.
const OBSERVED_WEIGHT: f64 = 0.05;

impl Costs {
    /// Folds in an exact scan of `n` slots that took `ns` (small scans say little: skipped).
    pub(crate) fn observe_scan(&mut self, ns: f64, n: usize) {
        if n >= 256 {
            let per = ns / n as f64;
            self.scan_ns += OBSERVED_WEIGHT * (per - self.scan_ns);
        }
    }

    /// Folds in a graph search at selectivity `s` with beam `ef` that took `ns`.
    pub(crate) fn observe_graph(&mut self, ns: f64, s: f64, ef: usize) {
        let normalised = ns * s * self.ef.max(1) as f64 / ef.max(1) as f64;
        self.graph_ns += OBSERVED_WEIGHT * (normalised - self.graph_ns);
    }

    /// Whether these costs still describe a collection of `live` slots.
    pub(crate) fn fits(&self, live: usize) -> bool {
        live <= self.live.saturating_mul(2) && live.saturating_mul(2) >= self.live
    }
}

/// The plan for a filter matching `matching` of `live` slots (`exact`: the count is exact,
/// else estimated). `costs` is `None` for exact indexes. Returns the plan and the beam width.
pub(crate) fn choose(
    matching: usize,
    exact: bool,
    live: usize,
    k: usize,
    ef: usize,
    costs: Option<&Costs>,
) -> (Plan, usize) {
    let ef = ef.max(k);
    if exact && matching == 0 {
        return (Plan::NoMatches, ef);
    }
    if exact && matching >= live {
        return (Plan::Unfiltered, ef);
    }
    let Some(c) = costs else {
        return (Plan::ExactScan, ef);
    };
    if matching <= SCAN_ALWAYS.max(k) {
        return (Plan::ExactScan, ef);
    }
    let selectivity = (matching as f64 / live.max(1) as f64).min(1.0);
    let graph = c.graph_ns * ef as f64 / c.ef.max(1) as f64 / selectivity;
    let scan = c.scan_ns * matching as f64;
    if scan <= graph {
        (Plan::ExactScan, ef)
    } else {
        (Plan::FilteredGraph, ef)
    }
}

/// Whether a post-filter (the plain search's beam of `ef`, then the filter) is expected to
/// keep at least four times `k` matches: then it replaces a filtered graph walk, since it costs
/// one plain search and no per-node checks. (With a smaller margin the `k` nearest matches sit
/// deep in the beam, where an approximate beam is least complete: recall fell to 0.95 at
/// 200k entities with 2k.) If it keeps fewer than `k`, the walk runs after all.
pub(crate) fn post_filter_pays(matching: usize, live: usize, k: usize, ef: usize) -> bool {
    let expected = ef as f64 * matching as f64 / live.max(1) as f64;
    expected >= 4.0 * k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheaper_plan_wins() {
        // A graph search costs as much as scanning 2000 slots.
        let c = Costs {
            scan_ns: 10.0,
            graph_ns: 20_000.0,
            ef: 64,
            live: 1_000_000,
        };
        assert_eq!(choose(0, true, 1000, 10, 64, Some(&c)).0, Plan::NoMatches);
        assert_eq!(
            choose(1000, true, 1000, 10, 64, Some(&c)).0,
            Plan::Unfiltered
        );
        assert_eq!(
            choose(10_000, false, 10_000, 10, 64, Some(&c)).0,
            Plan::FilteredGraph,
            "an estimate of everything is still a filter"
        );
        assert_eq!(
            choose(200, true, 1_000_000, 10, 64, Some(&c)).0,
            Plan::ExactScan
        );
        assert_eq!(
            choose(500_000, false, 1_000_000, 10, 64, None).0,
            Plan::ExactScan
        );
        assert_eq!(
            choose(500_000, false, 1_000_000, 10, 64, Some(&c)).0,
            Plan::FilteredGraph
        );
        // s = 0.5 %: graph 4 ms against a 50 µs scan.
        assert_eq!(
            choose(5_000, true, 1_000_000, 10, 64, Some(&c)).0,
            Plan::ExactScan
        );
        assert!(c.fits(600_000) && !c.fits(400_000) && !c.fits(2_000_001));
    }
}
