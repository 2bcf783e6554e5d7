//! Where the redb file lives: a path, or a custom [`redb::StorageBackend`] (used by the fault
//! injection tests to fail writes and syncs on purpose).
//!
//! A factory rather than one backend, because after a failed commit the writer reopens the
//! database, which needs a fresh backend.

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{BackendError, StorageBackend};

use crate::model::error::{Error, Result};

/// Makes a fresh storage backend each time the database is (re)opened.
pub type BackendFactory =
    Arc<dyn Fn() -> std::io::Result<Box<dyn StorageBackend>> + Send + Sync + 'static>;

#[derive(Clone)]
pub(crate) enum Storage {
    File(PathBuf),
    Backend {
        label: PathBuf,
        factory: BackendFactory,
    },
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

impl Storage {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Storage::File(p) => p,
            Storage::Backend { label, .. } => label,
        }
    }

    pub(crate) fn open(&self, cache_size: usize) -> Result<redb::Database> {
        let mut builder = redb::Database::builder();
        builder.set_cache_size(cache_size);
        let opened = match self {
            Storage::File(path) => builder.create(path),
            Storage::Backend { factory, .. } => builder.create_with_backend(Boxed(factory()?)),
        };
        opened.map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
                path: self.path().to_path_buf(),
            },
            other => other.into(),
        })
    }
}

/// Adapts a boxed backend to redb's `impl StorageBackend` parameter.
#[derive(Debug)]
struct Boxed(Box<dyn StorageBackend>);

impl StorageBackend for Boxed {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.0.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.0.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.0.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.0.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.0.query_lock_range(s, e)
    }
}
