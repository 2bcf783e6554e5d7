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
//! scan costs its size class's nanoseconds per matching slot (a scan's cost per slot grows
//! with its size once the vectors it reads outgrow the CPU caches). The cheaper plan wins. A
//! traversal that returns fewer hits than wanted (a filter that cuts the graph into islands)
//! is followed by an exact scan, so a filtered search returns `k` hits whenever `k` entities
//! match.

use crate::query::search::Plan;

/// Below this many matching slots a scan always wins (it takes microseconds).
const SCAN_ALWAYS: usize = 256;

/// Scan size classes: class `c` holds scans of `2^c` to `2^(c+1) - 1` slots.
const SCAN_CLASSES: usize = 33;

fn scan_class(n: usize) -> usize {
    (n.max(1).ilog2() as usize).min(SCAN_CLASSES - 1)
}

/// Measured costs of one collection's index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Costs {
    /// Nanoseconds per slot of an exact scan over a subset, by size class (0: not observed).
    /// One average over all sizes would price a large scan by the small ones before it (and
    /// flip plans back and forth as the two kinds of observation pull it apart).
    scan_ns: [f64; SCAN_CLASSES],
    /// Nanoseconds of one unfiltered graph search with beam `ef`.
    pub graph_ns: f64,
    pub ef: usize,
    /// Live slots when measured.
    pub live: usize,
}

/// Weight of one observation in the running averages.
pub(crate) const OBSERVED_WEIGHT: f64 = 0.05;

impl Costs {
    /// Costs from a first measurement: a scan of `scanned` slots at `scan_ns` per slot, and
    /// a plain graph search of beam `ef` taking `graph_ns`, on `live` slots.
    pub(crate) fn new(scan_ns: f64, scanned: usize, graph_ns: f64, ef: usize, live: usize) -> Self {
        let mut c = Costs {
            scan_ns: [0.0; SCAN_CLASSES],
            graph_ns,
            ef,
            live,
        };
        c.scan_ns[scan_class(scanned)] = scan_ns.max(f64::MIN_POSITIVE);
        c
    }

    /// Estimated nanoseconds per slot of a scan of `n` slots: its class's, else the nearest
    /// observed class's (the larger one on a tie).
    pub(crate) fn scan_ns(&self, n: usize) -> f64 {
        let c = scan_class(n);
        (0..SCAN_CLASSES)
            .flat_map(|d| [c + d, c.wrapping_sub(d)])
            .find_map(|i| self.scan_ns.get(i).copied().filter(|&x| x > 0.0))
            .unwrap_or(0.0)
    }

    /// Folds in an exact scan of `n` slots that took `ns` (small scans say little: skipped).
    /// The first observation of a size class replaces the borrowed estimate outright.
    pub(crate) fn observe_scan(&mut self, ns: f64, n: usize) {
        if n >= 256 {
            let per = (ns / n as f64).max(f64::MIN_POSITIVE);
            let slot = &mut self.scan_ns[scan_class(n)];
            if *slot > 0.0 {
                *slot += OBSERVED_WEIGHT * (per - *slot);
            } else {
                *slot = per;
            }
        }
    }

    /// Folds in a graph search at selectivity `s` with beam `ef` that took `ns`.
    pub(crate) fn observe_graph(&mut self, ns: f64, s: f64, ef: usize) {
        let normalised = ns * s * self.ef.max(1) as f64 / ef.max(1) as f64;
        self.graph_ns += OBSERVED_WEIGHT * (normalised - self.graph_ns);
    }

    /// These costs for one filter whose own walks were measured at `walk_ns` (at this beam
    /// width; `None`: not measured), keeping `selectivity` of the slots: its measurement
    /// replaces the model's `graph_ns / selectivity`.
    pub(crate) fn with_walk(mut self, walk_ns: Option<f64>, selectivity: f64) -> Self {
        if let Some(ns) = walk_ns {
            self.graph_ns = ns * selectivity;
        }
        self
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
    let scan = c.scan_ns(matching) * matching as f64;
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
        let c = Costs::new(10.0, 512, 20_000.0, 64, 1_000_000);
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

    #[test]
    fn a_measured_walk_replaces_the_model() {
        // The model prices a walk at s = 0.3 at 20 us / 0.3 = 67 us; scanning 300k slots at
        // 1 ns costs 300 us.
        let c = Costs::new(1.0, 512, 20_000.0, 64, 1_000_000);
        let plan = |c: Costs| choose(300_000, true, 1_000_000, 10, 64, Some(&c)).0;
        assert_eq!(plan(c), Plan::FilteredGraph);
        assert_eq!(plan(c.with_walk(None, 0.3)), Plan::FilteredGraph);
        // This filter's walks measured 500 us (at beam 64): the scan wins; at beam 32 they
        // are priced at half.
        assert_eq!(plan(c.with_walk(Some(500_000.0), 0.3)), Plan::ExactScan);
        assert_eq!(plan(c.with_walk(Some(100_000.0), 0.3)), Plan::FilteredGraph);
        let at32 = c.with_walk(Some(500_000.0), 0.3);
        assert_eq!(
            choose(300_000, true, 1_000_000, 10, 32, Some(&at32)).0,
            Plan::FilteredGraph
        );
    }

    #[test]
    fn scans_are_priced_by_their_size_class() {
        let mut c = Costs::new(10.0, 512, 20_000.0, 64, 1_000_000);
        // Unobserved sizes borrow the nearest class.
        assert_eq!(c.scan_ns(300), 10.0);
        assert_eq!(c.scan_ns(100_000), 10.0);
        // Large scans measured slower per slot do not make small ones look slower.
        c.observe_scan(40.0 * 100_000.0, 100_000);
        assert_eq!(
            c.scan_ns(100_000),
            40.0,
            "a first observation replaces the estimate"
        );
        assert_eq!(c.scan_ns(600), 10.0);
        assert_eq!(c.scan_ns(70_000), 40.0);
        assert_eq!(c.scan_ns(1 << 30), 40.0);
        // Later observations move the class's average.
        c.observe_scan(20.0 * 100_000.0, 100_000);
        assert!(c.scan_ns(100_000) < 40.0 && c.scan_ns(100_000) > 20.0);
        // Tiny scans are not observed.
        c.observe_scan(1e9, 10);
        assert_eq!(c.scan_ns(10), 10.0);
        // s = 5 % of 1M at 40 ns per slot: 2 ms of scanning against a 400 us walk.
        assert_eq!(
            choose(50_000, true, 1_000_000, 10, 64, Some(&c)).0,
            Plan::FilteredGraph
        );
    }
}
