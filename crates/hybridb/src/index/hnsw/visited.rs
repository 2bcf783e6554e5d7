//! Per-thread search scratch: an epoch-stamped visited set and the beam buffer, reused across
//! searches so that a search allocates nothing but its result.
//!
//! Invariant: slot `i` is visited in the current search iff `marks[i] == epoch`. Starting a
//! search bumps the epoch (clearing the array only when the counter wraps), so a reset is O(1).

use std::cell::RefCell;
use std::collections::BinaryHeap;

use super::search::Cand;

pub(super) struct Visited {
    marks: Vec<u32>,
    epoch: u32,
    /// Beam buffer of the pool search (`search::Hnsw::beam`), empty between searches.
    pub(super) pool: Vec<PoolEntry>,
    /// Unvisited neighbours of the node being expanded, empty between searches.
    pub(super) fresh: Vec<u32>,
    /// Allowed nodes the beam scored but let go (see [`Spill`]); closed (capacity 0) at the
    /// start of every search.
    pub(super) spill: Spill,
}

/// The best allowed nodes a layer-0 walk scored but its beam did not keep, up to a capacity:
/// what lets a quantized search rescore more candidates (`⌈k · oversampling⌉`) than its beam
/// holds (`ef`), so that the beam width and the rescoring depth are separate knobs.
///
/// Invariant: every node offered is worse than (or tied with) the beam's worst allowed entry
/// at the time, and a node is offered at most once (it is visited once), so the beam's allowed
/// entries followed by the spill's, each sorted, are the best scored allowed nodes.
#[derive(Default)]
pub(super) struct Spill {
    cap: usize,
    /// A max-heap: the worst kept entry on top.
    heap: BinaryHeap<Cand>,
}

impl Spill {
    /// Empties the spill and sets how many entries it keeps (0: it keeps none).
    pub(super) fn open(&mut self, cap: usize) {
        self.heap.clear();
        self.cap = cap;
    }

    /// Whether an entry at distance `d` would be kept (callers check this before paying for
    /// the filter).
    #[inline(always)]
    pub(super) fn wants(&self, d: f32) -> bool {
        self.cap > 0 && (self.heap.len() < self.cap || self.heap.peek().is_some_and(|w| d < w.d))
    }

    /// Keeps `c` if it is among the best `cap` offered so far.
    #[inline]
    pub(super) fn offer(&mut self, c: Cand) {
        if self.cap == 0 {
            return;
        }
        if self.heap.len() < self.cap {
            self.heap.push(c);
        } else if self.heap.peek().is_some_and(|w| c < *w) {
            self.heap.pop();
            self.heap.push(c);
        }
    }

    /// The kept entries, in no particular order; the spill is left empty and closed.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Cand> + '_ {
        self.cap = 0;
        self.heap.drain()
    }
}

/// One beam entry: a node, its distance to the query, whether it was expanded, and whether
/// the search's filter allows it.
#[derive(Clone, Copy, Debug)]
pub(super) struct PoolEntry {
    pub(super) d: f32,
    pub(super) id: u32,
    pub(super) done: bool,
    pub(super) ok: bool,
}

impl Visited {
    const fn new() -> Self {
        Self {
            marks: Vec::new(),
            epoch: 0,
            pool: Vec::new(),
            fresh: Vec::new(),
            spill: Spill {
                cap: 0,
                heap: BinaryHeap::new(),
            },
        }
    }

    fn reset(&mut self, capacity: usize) {
        if self.marks.len() < capacity {
            self.marks.resize(capacity, 0);
        }
        self.spill.open(0);
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `slot`; returns `true` if it was not marked yet in this search.
    #[inline(always)]
    pub(super) fn insert(&mut self, slot: u32) -> bool {
        let m = &mut self.marks[slot as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }

    /// Address of `slot`'s mark, for prefetching.
    #[inline(always)]
    pub(super) fn ptr(&self, slot: u32) -> *const u32 {
        self.marks
            .get(slot as usize)
            .map_or(std::ptr::null(), |m| m as *const u32)
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited::new()) };
}

/// Runs `f` with this thread's visited set, reset for `capacity` slots. A nested call (never
/// made by the index, but cheap to survive) gets a fresh set.
pub(super) fn with_visited<R>(capacity: usize, f: impl FnOnce(&mut Visited) -> R) -> R {
    VISITED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            v.reset(capacity);
            f(&mut v)
        }
        Err(_) => {
            let mut v = Visited::new();
            v.reset(capacity);
            f(&mut v)
        }
    })
}
