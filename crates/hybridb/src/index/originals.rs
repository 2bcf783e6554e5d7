//! Where a quantized HNSW index keeps its `f32` originals, the vectors its searches rescore
//! with (and its graph's links are chosen with).
//!
//! A quantized walk reads only the few originals it rescores (`⌈k · oversampling⌉` per
//! search), so they need not be in the process's memory: the index keeps them in a file of its
//! own, mapped shared ([`crate::index::hnsw::Hnsw::keep_vectors_in`]), and its resident set is
//! codes + graph + whatever of the file the page cache holds. The file is created unlinked, in
//! the database's directory, each time the index is built or loaded, and filled from what it
//! is built or loaded from (the tables or the checkpoint): it is scratch space, never read
//! again after a close or a crash, so it cannot be stale, torn or swapped for another one, and
//! nobody else can truncate it under the mapping. redb stays the only source of truth.
//!
//! Anything that stops the file being made (no directory, a read-only or full disk, a
//! platform without `mmap`) leaves the originals in memory, as for an unquantized index.

use std::fs::File;
use std::path::{Path, PathBuf};

/// How the engine builds its vector indexes.
#[derive(Clone, Debug, Default)]
pub(crate) struct IndexEnv {
    /// Threads that insert a write group's vectors into an HNSW index (and rebuild on open).
    pub(crate) threads: usize,
    /// Directory in which quantized HNSW indexes keep their originals; `None`: in memory.
    pub(crate) originals_dir: Option<PathBuf>,
}

impl IndexEnv {
    /// Indexes inserting on `threads` threads, with every vector in memory.
    pub(crate) fn in_memory(threads: usize) -> Self {
        Self {
            threads,
            originals_dir: None,
        }
    }
}

/// A new, empty file for one index's originals in `dir`, already unlinked (it is gone when
/// the index drops it, or when the process ends).
///
/// # Errors
/// The file could not be created or unlinked (the caller keeps the originals in memory).
pub(crate) fn originals_file(dir: &Path) -> std::io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // An anonymous file in `dir` (no name to leave behind after a crash), where the file
        // system supports it.
        let anonymous = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(dir);
        if let Ok(f) = anonymous {
            return Ok(f);
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".hybridb-originals-{}-{n}.tmp", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(f)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "originals files need mmap",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn originals_files_leave_no_name_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = originals_file(dir.path()).expect("file");
        let b = originals_file(dir.path()).expect("file");
        a.set_len(4096).expect("extend");
        b.set_len(8192).expect("extend");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(a.metadata().expect("stat").len(), 4096);
        assert_eq!(b.metadata().expect("stat").len(), 8192);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(originals_file(&dir.path().join("nope")).is_err());
    }
}
