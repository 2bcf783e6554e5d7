//! The filtered-search planner: given how many live slots match a filter, choose between an
//! exact scan of just those slots and a graph traversal that collects only matching nodes.
//!
//! Cost model, in units of one sequential distance computation:
//! - exact scan: one distance per matching slot;
//! - graph traversal: an unfiltered search computes about `ef * 2m` distances (`ef`
//!   expansions of up to `2m` layer-0 neighbours); one that keeps only a fraction `s` of the
//!   nodes must expand about `1/s` times as many to fill its beam, and each random access
//!   costs about [`RANDOM_ACCESS_COST`] sequential ones.
//!
//! The cheaper plan wins. A traversal that still returns fewer hits than wanted (a filter that
//! cuts the graph into islands) is followed by an exact scan, so a filtered search returns `k`
//! hits whenever `k` entities match.

use crate::search::Plan;

/// Relative cost of a distance computed during graph traversal (random access, neighbour
/// lists, visited set) against one of a sequential scan.
const RANDOM_ACCESS_COST: f64 = 2.0;

/// Below this many matching slots a scan always wins (it is a few microseconds).
const SCAN_ALWAYS: usize = 1024;

/// The plan for a filter matching `matching` of `live` slots. `graph` is `Some(m)` for HNSW
/// indexes. Returns the plan and the beam width to use.
pub(crate) fn choose(
    matching: usize,
    live: usize,
    k: usize,
    ef: usize,
    graph: Option<usize>,
) -> (Plan, usize) {
    let ef = ef.max(k);
    if matching == 0 {
        return (Plan::NoMatches, ef);
    }
    if matching >= live {
        return (Plan::Unfiltered, ef);
    }
    let Some(m) = graph else {
        return (Plan::ExactScan, ef);
    };
    if matching <= SCAN_ALWAYS.max(k) {
        return (Plan::ExactScan, ef);
    }
    let selectivity = matching as f64 / live as f64;
    let graph_cost = RANDOM_ACCESS_COST * (ef * 2 * m) as f64 / selectivity;
    if (matching as f64) <= graph_cost {
        (Plan::ExactScan, ef)
    } else {
        (Plan::FilteredGraph, ef)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_subsets_scan_large_ones_walk_the_graph() {
        assert_eq!(choose(0, 1000, 10, 64, Some(16)).0, Plan::NoMatches);
        assert_eq!(choose(1000, 1000, 10, 64, Some(16)).0, Plan::Unfiltered);
        assert_eq!(choose(500, 1_000_000, 10, 64, Some(16)).0, Plan::ExactScan);
        assert_eq!(choose(500_000, 1_000_000, 10, 64, None).0, Plan::ExactScan);
        assert_eq!(
            choose(500_000, 1_000_000, 10, 64, Some(16)).0,
            Plan::FilteredGraph
        );
        assert_eq!(
            choose(5_000, 1_000_000, 10, 64, Some(16)).0,
            Plan::ExactScan
        );
    }
}
