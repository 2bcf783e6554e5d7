//! Per-thread search scratch: an epoch-stamped visited set and the beam buffer, reused across
//! searches so that a search allocates nothing but its result.
//!
//! Invariant: slot `i` is visited in the current search iff `marks[i] == epoch`. Starting a
//! search bumps the epoch (clearing the array only when the counter wraps), so a reset is O(1).

use std::cell::RefCell;

pub(super) struct Visited {
    marks: Vec<u32>,
    epoch: u32,
    /// Beam buffer of the pool search (`search::Hnsw::beam`), empty between searches.
    pub(super) pool: Vec<PoolEntry>,
    /// Unvisited neighbours of the node being expanded, empty between searches.
    pub(super) fresh: Vec<u32>,
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
        }
    }

    fn reset(&mut self, capacity: usize) {
        if self.marks.len() < capacity {
            self.marks.resize(capacity, 0);
        }
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
