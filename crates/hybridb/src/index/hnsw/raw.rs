//! The only `unsafe` of the HNSW index: the shared vector array and the prefetch hint.
//!
//! Vectors live in one flat array of `UnsafeCell<f32>` (slot * dim) so that inserts through
//! `&self` can write a slot's vector while other threads search. The write protocol that makes
//! this sound (see the module docs of `hnsw`):
//! 1. A slot that has never been live since the index was built or loaded is written only by the
//!    thread that claimed it (state `BUSY`); no link names it yet, and it is published by release
//!    stores (its state becoming `LIVE`, links written under node locks) after the write.
//! 2. A slot that was live before (links to it may remain) is written only while holding the
//!    index gate exclusively, so no reader runs at the same time.
//! 3. Readers read a vector only after finding its slot `LIVE` (acquire), or under the lock of a
//!    node whose list names the slot, or while holding the gate.

use std::cell::UnsafeCell;

/// A fixed-capacity flat array of vectors, indexed by slot.
pub(super) struct VectorStore {
    data: Box<[UnsafeCell<f32>]>,
    dim: usize,
}

// SAFETY: concurrent access follows the write protocol in the module docs: a slot is never
// written while another thread may read it.
unsafe impl Sync for VectorStore {}

impl VectorStore {
    pub(super) fn new(capacity: usize, dim: usize) -> Self {
        let data = (0..capacity * dim).map(|_| UnsafeCell::new(0.0)).collect();
        Self { data, dim }
    }

    /// A store of `capacity` slots holding a copy of this one's slots.
    pub(super) fn grown(&mut self, capacity: usize) -> Self {
        let mut out = Self::new(capacity, self.dim);
        let n = self.data.len().min(out.data.len());
        for (dst, src) in out.data[..n].iter_mut().zip(self.data[..n].iter_mut()) {
            *dst.get_mut() = *src.get_mut();
        }
        out
    }

    /// Reads the vector of `slot`.
    ///
    /// # Safety
    /// No thread may write `slot` during the lifetime of the returned slice (module protocol).
    #[inline(always)]
    pub(super) unsafe fn get(&self, slot: u32) -> &[f32] {
        let start = slot as usize * self.dim;
        let cells = &self.data[start..start + self.dim];
        // SAFETY: `UnsafeCell<f32>` has the layout of `f32`; the caller guarantees no writer.
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), self.dim) }
    }

    /// Overwrites the vector of `slot`.
    ///
    /// # Safety
    /// No other thread may read or write `slot` at the same time (module protocol).
    pub(super) unsafe fn write(&self, slot: u32, v: &[f32]) {
        let start = slot as usize * self.dim;
        let cells = &self.data[start..start + self.dim];
        for (c, x) in cells.iter().zip(v) {
            // SAFETY: exclusive access to this slot is guaranteed by the caller.
            unsafe { *c.get() = *x };
        }
    }

    /// Pointer to the start of `slot`'s vector, for prefetching only (never dereferenced).
    #[inline(always)]
    pub(super) fn ptr(&self, slot: u32) -> *const f32 {
        let start = slot as usize * self.dim;
        self.data
            .get(start)
            .map_or(std::ptr::null(), |c| c.get().cast_const())
    }

    /// Bytes held by the vector array.
    pub(super) fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

/// Hints the CPU to bring the cache line at `p` into L1. A no-op off x86_64.
#[inline(always)]
pub(super) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch is a hint and never faults, whatever the address; SSE is part of the
        // x86_64 baseline.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl super::Hnsw {
    /// The vector of `slot`. Callers follow the read rule of the module protocol (rule 3).
    #[inline(always)]
    pub(super) fn vector(&self, slot: u32) -> &[f32] {
        // SAFETY: by rules 1-3 of the module protocol no write to `slot` overlaps this read: the
        // index only reads slots found live, named under a lock, or while holding the gate.
        unsafe { self.vectors.get(slot) }
    }

    /// Writes the vector of a slot this thread has claimed (state `BUSY`).
    ///
    /// The caller either holds the gate exclusively (a slot used before) or the slot has never
    /// been live since creation or load, so no list names it and no reader can reach it.
    pub(super) fn write_claimed_vector(&self, slot: u32, v: &[f32]) {
        // SAFETY: the slot is claimed by this thread (rule 1) or the gate is held exclusively
        // (rule 2), so no other thread reads or writes it now.
        unsafe { self.vectors.write(slot, v) }
    }
}

impl VectorStore {
    /// Writes a slot through `&mut self` (no other thread can hold the store).
    pub(super) fn set(&mut self, slot: u32, v: &[f32]) {
        let start = slot as usize * self.dim;
        for (c, x) in self.data[start..start + self.dim].iter_mut().zip(v) {
            *c.get_mut() = *x;
        }
    }
}
