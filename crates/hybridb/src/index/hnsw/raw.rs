//! The only `unsafe` of the HNSW index: the shared vector array, the zeroed arrays that hold
//! it and the links (mapped from the operating system when large, or from a file for the
//! vectors of a quantized index), and the prefetch hint.
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

/// Cache lines of a vector prefetched ahead of its distance computation. Measured on 128- and
/// 784-dimensional data: the first line alone or all lines were slower than a few (the hardware
/// prefetcher streams the rest).
const PREFETCH_LINES: usize = 4;

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
/// Implement only for types for which every byte being zero is a valid value.
pub(super) unsafe trait ZeroValid: Sized {}

// SAFETY: zero is a valid integer / `false`; `Line` is 16 `f32` zeros.
unsafe impl ZeroValid for std::sync::atomic::AtomicU32 {}
// SAFETY: as above.
unsafe impl ZeroValid for std::sync::atomic::AtomicU8 {}
// SAFETY: as above.
unsafe impl ZeroValid for std::sync::atomic::AtomicBool {}
// SAFETY: as above.
unsafe impl ZeroValid for Line {}
// SAFETY: as above (64 zero bytes).
unsafe impl ZeroValid for ByteLine {}

/// Arrays of at least this many bytes are mapped from the operating system directly.
#[cfg_attr(not(unix), allow(dead_code))]
const MAP_MIN_BYTES: usize = 1 << 20;

/// Where a [`Zeroed`] array's memory came from.
enum Backing {
    /// Nothing allocated (empty array or zero-sized values).
    None,
    /// The global allocator, with this layout.
    Heap(std::alloc::Layout),
    /// An anonymous mapping of this many bytes.
    #[cfg(unix)]
    Mapped(usize),
    /// A shared mapping of the first this many bytes of a file (see [`VectorStore::in_file`]).
    #[cfg(unix)]
    File(usize),
}

/// An owned array of `n` values that start as zero bytes: the index's big arrays (vectors,
/// layer-0 links, node states).
///
/// Large arrays are anonymous mappings straight from the operating system: their pages take no
/// memory until written, so room reserved for growth that is never used is never resident, and
/// dropping one returns its memory at once. Through the allocator that is not assured: glibc
/// serves blocks under its mmap threshold (raised by every large free, up to 32 MiB) from its
/// arenas, where `calloc` writes every byte, slack included, and the generations a grown array
/// leaves behind stay resident. (200k x 128: RSS after the build fell from 1.38x to 1.25x of
/// vectors plus links.)
pub(super) struct Zeroed<T> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    backing: Backing,
}

// SAFETY: `Zeroed<T>` owns its values like a `Box<[T]>` does.
unsafe impl<T: Send> Send for Zeroed<T> {}
// SAFETY: as above; shared access hands out only `&[T]`.
unsafe impl<T: Sync> Sync for Zeroed<T> {}

impl<T: ZeroValid> Zeroed<T> {
    /// `n` zero values.
    pub(super) fn new(n: usize) -> Self {
        let Ok(layout) = std::alloc::Layout::array::<T>(n) else {
            // The same condition under which `Vec::with_capacity` gives up.
            panic!("capacity overflow: {n} index entries");
        };
        if layout.size() == 0 {
            return Self {
                ptr: std::ptr::NonNull::dangling(),
                len: n,
                backing: Backing::None,
            };
        }
        #[cfg(unix)]
        if layout.size() >= MAP_MIN_BYTES && layout.align() <= 4096 {
            // SAFETY: a new private anonymous read-write mapping at an address the kernel
            // chooses; no existing memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED
                && let Some(ptr) = std::ptr::NonNull::new(p.cast::<T>())
            {
                // Page-aligned (>= align of T) and zero-filled by the kernel.
                return Self {
                    ptr,
                    len: n,
                    backing: Backing::Mapped(layout.size()),
                };
            }
            // Out of mappings or address space: the allocator may still manage.
        }
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
        let Some(ptr) = std::ptr::NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout);
        };
        Self {
            ptr,
            len: n,
            backing: Backing::Heap(layout),
        }
    }
}

impl Zeroed<Line> {
    /// `n` lines mapped, shared, from the first `64 n` bytes of `file`, which is first
    /// extended to that length (new bytes read as zero) and its blocks allocated, so that a
    /// write into the mapping never meets a full disk (which would raise `SIGBUS`). Bytes the
    /// file held already keep their values: any bit pattern is a valid `f32`.
    #[cfg(unix)]
    fn in_file(n: usize, file: &std::fs::File) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        let bytes = n
            .checked_mul(std::mem::size_of::<Line>())
            .ok_or_else(|| std::io::Error::other("vector file too large"))?;
        if bytes == 0 {
            return Ok(Self {
                ptr: std::ptr::NonNull::dangling(),
                len: 0,
                backing: Backing::None,
            });
        }
        let len = libc::off_t::try_from(bytes)
            .map_err(|_| std::io::Error::other("vector file too large"))?;
        // SAFETY: plain system calls on an open descriptor; no memory is touched.
        let err = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        if err != 0 {
            return Err(std::io::Error::from_raw_os_error(err));
        }
        // SAFETY: a new shared mapping of `bytes` bytes of an open file, at an address the
        // kernel chooses; the file is at least that long (above), so no access faults.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let Some(ptr) = std::ptr::NonNull::new(p.cast::<Line>()) else {
            return Err(std::io::Error::other("mmap returned null"));
        };
        Ok(Self {
            ptr,
            len: n,
            backing: Backing::File(bytes),
        })
    }
}

impl<T> std::ops::Deref for Zeroed<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised values (zero bytes are valid `T`s,
        // `ZeroValid`) owned by `self`, or is dangling with no bytes to read.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> std::ops::DerefMut for Zeroed<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Zeroed<T> {
    fn drop(&mut self) {
        // SAFETY: the values are initialised and dropped once, here.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            ))
        };
        match self.backing {
            Backing::None => {}
            // SAFETY: allocated by the global allocator with this layout, freed once.
            Backing::Heap(layout) => unsafe {
                std::alloc::dealloc(self.ptr.as_ptr().cast(), layout)
            },
            #[cfg(unix)]
            Backing::Mapped(bytes) | Backing::File(bytes) => {
                // SAFETY: the whole mapping made in `new`, unmapped once; no reference into it
                // outlives `self`. A failure would leave the pages mapped (a leak, not UB).
                unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
            }
        }
    }
}

/// One cache line of floats; the store is made of these so that it starts on a line boundary.
#[repr(C, align(64))]
struct Line([UnsafeCell<f32>; 16]);

/// A fixed-capacity flat array of vectors, indexed by slot.
///
/// Rows of 128 floats or more are padded to whole cache lines (at most 1/8 more memory), so
/// every row starts on a line boundary: fewer lines per distance and no split loads.
pub(super) struct VectorStore {
    lines: Zeroed<Line>,
    dim: usize,
    /// Floats from one row to the next (`dim`, or `dim` rounded up to 16).
    stride: usize,
    /// The file `lines` is mapped from, if it is (see [`VectorStore::in_file`]).
    file: Option<std::fs::File>,
}

// SAFETY: concurrent access follows the write protocol in the module docs: a slot is never
// written while another thread may read it.
unsafe impl Sync for VectorStore {}

impl VectorStore {
    pub(super) fn new(capacity: usize, dim: usize) -> Self {
        let stride = Self::stride_for(dim);
        let lines = Zeroed::new((capacity * stride).div_ceil(16));
        Self {
            lines,
            dim,
            stride,
            file: None,
        }
    }

    fn stride_for(dim: usize) -> usize {
        if dim >= 128 {
            dim.next_multiple_of(16)
        } else {
            dim
        }
    }

    /// A store of `capacity` slots whose rows live in `file`, mapped shared: their pages are
    /// the page cache's, written back by the kernel and dropped under memory pressure, not
    /// the process's own memory. The file is the store's alone (the index creates it
    /// unlinked); rows it holds already are kept (growing maps a longer prefix of it).
    #[cfg(unix)]
    pub(super) fn in_file(
        capacity: usize,
        dim: usize,
        file: std::fs::File,
    ) -> std::io::Result<Self> {
        let stride = Self::stride_for(dim);
        let lines = Zeroed::in_file((capacity * stride).div_ceil(16), &file)?;
        Ok(Self {
            lines,
            dim,
            stride,
            file: Some(file),
        })
    }

    /// A store in `file` holding a copy of this one's rows (the first `capacity` slots).
    #[cfg(unix)]
    pub(super) fn moved_to_file(
        &mut self,
        capacity: usize,
        file: std::fs::File,
    ) -> std::io::Result<Self> {
        let mut out = Self::in_file(capacity, self.dim, file)?;
        self.copy_into(&mut out);
        Ok(out)
    }

    /// Whether the rows live in a mapped file.
    pub(super) fn in_a_file(&self) -> bool {
        self.file.is_some()
    }

    /// All floats of the store, row after row.
    #[inline(always)]
    fn data(&self) -> &[UnsafeCell<f32>] {
        // SAFETY: `Line` is `repr(C)` over 16 cells of 4 bytes each, size 64 = its alignment, so
        // the lines are 16 * len contiguous `UnsafeCell<f32>` without padding.
        unsafe {
            std::slice::from_raw_parts(
                self.lines.as_ptr().cast::<UnsafeCell<f32>>(),
                self.lines.len() * 16,
            )
        }
    }

    /// A store of `capacity` slots holding a copy of this one's slots. A store in a file
    /// maps a longer prefix of the same file (nothing to copy); if that fails (a full disk,
    /// no address space), the rows move to memory.
    pub(super) fn grown(&mut self, capacity: usize) -> Self {
        #[cfg(unix)]
        if let Some(file) = self.file.take() {
            match file
                .try_clone()
                .and_then(|f| Self::in_file(capacity, self.dim, f))
            {
                Ok(out) => return out,
                Err(_) => self.file = Some(file),
            }
        }
        self.moved_to_memory(capacity)
    }

    /// A store in memory holding a copy of this one's rows (the first `capacity` slots).
    pub(super) fn moved_to_memory(&mut self, capacity: usize) -> Self {
        let mut out = Self::new(capacity, self.dim);
        self.copy_into(&mut out);
        out
    }

    /// Copies this store's rows into `out` (as many as both hold).
    fn copy_into(&mut self, out: &mut Self) {
        for (dst, src) in out.lines.iter_mut().zip(self.lines.iter_mut()) {
            for (d, s) in dst.0.iter_mut().zip(src.0.iter_mut()) {
                *d.get_mut() = *s.get_mut();
            }
        }
    }

    /// Reads the vector of `slot`.
    ///
    /// # Safety
    /// No thread may write `slot` during the lifetime of the returned slice (module protocol).
    #[inline(always)]
    pub(super) unsafe fn get(&self, slot: u32) -> &[f32] {
        let start = slot as usize * self.stride;
        let cells = &self.data()[start..start + self.dim];
        // SAFETY: `UnsafeCell<f32>` has the layout of `f32`; the caller guarantees no writer.
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), self.dim) }
    }

    /// Overwrites the vector of `slot`.
    ///
    /// # Safety
    /// No other thread may read or write `slot` at the same time (module protocol).
    pub(super) unsafe fn write(&self, slot: u32, v: &[f32]) {
        let start = slot as usize * self.stride;
        let cells = &self.data()[start..start + self.dim];
        for (c, x) in cells.iter().zip(v) {
            // SAFETY: exclusive access to this slot is guaranteed by the caller.
            unsafe { *c.get() = *x };
        }
    }

    /// Pointer to the start of `slot`'s vector, for prefetching only (never dereferenced).
    #[inline(always)]
    pub(super) fn ptr(&self, slot: u32) -> *const f32 {
        let start = slot as usize * self.stride;
        self.data()
            .get(start)
            .map_or(std::ptr::null(), |c| c.get().cast_const())
    }

    /// Prefetches `slot`'s vector, up to `PREFETCH_LINES` cache lines of it.
    #[inline(always)]
    pub(super) fn prefetch(&self, slot: u32) {
        let p = self.ptr(slot).cast::<u8>();
        let bytes = (self.dim * 4).min(PREFETCH_LINES * 64);
        let mut off = 0;
        while off < bytes {
            prefetch(p.wrapping_add(off));
            off += 64;
        }
    }

    /// Bytes of the vector array (in memory or in its file).
    pub(super) fn bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<Line>()
    }
}

/// One cache line of code bytes.
#[repr(C, align(64))]
struct ByteLine([UnsafeCell<u8>; 64]);

/// A fixed-capacity flat array of quantized code rows (code and correction factors), indexed
/// by slot. Written and read under the same protocol as [`VectorStore`]: a slot's row is
/// written together with its vector (by the thread that claimed the slot, or under the
/// exclusive gate), or into a store no reader can reach yet.
pub(super) struct CodeStore {
    lines: Zeroed<ByteLine>,
    row: usize,
    /// Bytes from one row to the next: `row` rounded up to 16.
    stride: usize,
}

// SAFETY: as for `VectorStore`: a slot's row is never written while another thread may read it.
unsafe impl Sync for CodeStore {}

impl CodeStore {
    pub(super) fn new(capacity: usize, row: usize) -> Self {
        let stride = row.next_multiple_of(16);
        let lines = Zeroed::new((capacity * stride).div_ceil(64));
        Self { lines, row, stride }
    }

    #[inline(always)]
    fn data(&self) -> &[UnsafeCell<u8>] {
        // SAFETY: `ByteLine` is `repr(C)` over 64 one-byte cells, size 64 = its alignment, so
        // the lines are 64 * len contiguous `UnsafeCell<u8>` without padding.
        unsafe {
            std::slice::from_raw_parts(
                self.lines.as_ptr().cast::<UnsafeCell<u8>>(),
                self.lines.len() * 64,
            )
        }
    }

    /// A store of `capacity` slots holding a copy of this one's rows.
    pub(super) fn grown(&mut self, capacity: usize) -> Self {
        let mut out = Self::new(capacity, self.row);
        for (dst, src) in out.lines.iter_mut().zip(self.lines.iter_mut()) {
            for (d, s) in dst.0.iter_mut().zip(src.0.iter_mut()) {
                *d.get_mut() = *s.get_mut();
            }
        }
        out
    }

    /// The row of `slot`.
    ///
    /// # Safety
    /// No thread may write `slot` during the lifetime of the returned slice (module protocol).
    #[inline(always)]
    pub(super) unsafe fn get(&self, slot: u32) -> &[u8] {
        let start = slot as usize * self.stride;
        let cells = &self.data()[start..start + self.row];
        // SAFETY: `UnsafeCell<u8>` has the layout of `u8`; the caller guarantees no writer.
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(cells.as_ptr()), self.row) }
    }

    /// Overwrites the row of `slot` with `row` (as long as a row).
    ///
    /// # Safety
    /// No other thread may read or write `slot` at the same time (module protocol).
    pub(super) unsafe fn write(&self, slot: u32, row: &[u8]) {
        let start = slot as usize * self.stride;
        let cells = &self.data()[start..start + self.row];
        for (c, x) in cells.iter().zip(row) {
            // SAFETY: exclusive access to this slot is guaranteed by the caller.
            unsafe { *c.get() = *x };
        }
    }

    /// Prefetches the row of `slot`, up to `PREFETCH_LINES` cache lines of it.
    #[inline(always)]
    pub(super) fn prefetch(&self, slot: u32) {
        let start = slot as usize * self.stride;
        if let Some(c) = self.data().get(start) {
            let p = c.get().cast_const();
            let bytes = self.row.min(PREFETCH_LINES * 64);
            let mut off = 0;
            while off < bytes {
                prefetch(p.wrapping_add(off));
                off += 64;
            }
            // A row need not start on a line: its last byte may be on one more.
            prefetch(p.wrapping_add(bytes.saturating_sub(1)));
        }
    }

    /// Bytes held by the rows.
    pub(super) fn bytes(&self) -> usize {
        self.lines.len() * 64
    }

    /// Writes a row through `&mut self` (no other thread can hold the store).
    pub(super) fn set(&mut self, slot: u32, row: &[u8]) {
        let start = slot as usize * self.stride;
        let data = self.data();
        if let Some(cells) = data.get(start..start + self.row) {
            for (c, x) in cells.iter().zip(row) {
                // SAFETY: `&mut self`: no other reference into the store exists.
                unsafe { *c.get() = *x };
            }
        }
    }
}

impl super::codes::Codes {
    /// The code row of `slot`. Callers follow the read rule of the module protocol (rule 3).
    #[inline(always)]
    pub(super) fn row(&self, slot: u32) -> &[u8] {
        // SAFETY: rows are written with their slot's vector (rules 1-2) or before the store is
        // published; the index reads only slots found live, named under a lock, or while
        // holding the gate, so no write overlaps this read.
        unsafe { self.store.get(slot) }
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

    /// Writes the code row of a slot this thread has claimed, under the conditions of
    /// [`super::Hnsw::write_claimed_vector`], into the published `codes`.
    pub(super) fn write_claimed_code(&self, codes: &super::codes::Codes, slot: u32, row: &[u8]) {
        // SAFETY: as for the vector: the slot is claimed (rule 1) or the gate is exclusive
        // (rule 2), so no other thread reads or writes its row now.
        unsafe { codes.store.write(slot, row) }
    }
}

impl VectorStore {
    /// Writes a slot through `&mut self` (no other thread can hold the store).
    pub(super) fn set(&mut self, slot: u32, v: &[f32]) {
        // Index the line directly: skipping through a flattened iterator would cost O(slot)
        // per call and make loading a checkpoint quadratic.
        let start = slot as usize * self.stride;
        let (mut line, mut off) = (start / 16, start % 16);
        for x in v {
            *self.lines[line].0[off].get_mut() = *x;
            off += 1;
            if off == 16 {
                off = 0;
                line += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn zeroed_arrays_start_at_zero_take_writes_and_map_when_large() {
        for n in [0, 1, 1000, (MAP_MIN_BYTES / 4) - 1, 3 << 20] {
            let mut a: Zeroed<AtomicU32> = Zeroed::new(n);
            assert_eq!(a.len(), n);
            assert!(a.iter().all(|x| x.load(Ordering::Relaxed) == 0));
            if n > 0 {
                *a[n - 1].get_mut() = 7;
                a[0].fetch_add(1, Ordering::Relaxed);
                let first = if n == 1 { 8 } else { 1 };
                assert_eq!(a[0].load(Ordering::Relaxed), first);
                assert_eq!(a[n - 1].load(Ordering::Relaxed), if n == 1 { 8 } else { 7 });
            }
            #[cfg(unix)]
            assert_eq!(
                matches!(a.backing, Backing::Mapped(_)),
                n * 4 >= MAP_MIN_BYTES,
                "{n} values"
            );
        }
    }
}
