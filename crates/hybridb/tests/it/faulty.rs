//! A redb storage backend for fault injection: wraps the real file backend and, on command,
//! fails syncs or writes, panics, or holds syncs until released.

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use hybridb::{BackendFactory, Database, DatabaseBuilder};
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Switches shared by the test and every backend the factory makes.
#[derive(Debug, Default)]
pub struct Control {
    /// Fail every `sync_data` while set.
    pub fail_sync: AtomicBool,
    /// Fail every `write` while set.
    pub fail_write: AtomicBool,
    /// Panic in the next `sync_data` while set.
    pub panic_sync: AtomicBool,
    /// While true, `sync_data` waits.
    gate_closed: Mutex<bool>,
    gate: Condvar,
    /// Number of `sync_data` calls waiting at the gate.
    pub waiting: AtomicU64,
    /// Number of faults injected.
    pub injected: AtomicU64,
}

impl Control {
    pub fn close_gate(&self) {
        *self.gate_closed.lock().unwrap() = true;
    }

    pub fn open_gate(&self) {
        *self.gate_closed.lock().unwrap() = false;
        self.gate.notify_all();
    }
}

#[derive(Debug)]
struct Faulty {
    inner: FileBackend,
    ctl: Arc<Control>,
}

fn injected(ctl: &Control, what: &str) -> std::io::Error {
    ctl.injected.fetch_add(1, Ordering::SeqCst);
    std::io::Error::other(format!("injected {what} failure"))
}

impl StorageBackend for Faulty {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        {
            let mut closed = self.ctl.gate_closed.lock().unwrap();
            if *closed {
                self.ctl.waiting.fetch_add(1, Ordering::SeqCst);
                while *closed {
                    closed = self.ctl.gate.wait(closed).unwrap();
                }
                self.ctl.waiting.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if self.ctl.panic_sync.swap(false, Ordering::SeqCst) {
            self.ctl.injected.fetch_add(1, Ordering::SeqCst);
            panic!("injected panic in sync_data");
        }
        if self.ctl.fail_sync.load(Ordering::SeqCst) {
            return Err(injected(&self.ctl, "sync"));
        }
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.ctl.fail_write.load(Ordering::SeqCst) {
            return Err(injected(&self.ctl, "write"));
        }
        self.inner.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

/// A factory making fault-injecting backends over the file at `path`.
pub fn factory(path: &Path, ctl: Arc<Control>) -> BackendFactory {
    let path: PathBuf = path.to_path_buf();
    Arc::new(move || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let inner = FileBackend::new(file).map_err(std::io::Error::other)?;
        Ok(Box::new(Faulty {
            inner,
            ctl: Arc::clone(&ctl),
        }) as Box<dyn StorageBackend>)
    })
}

/// Opens a database at `path` through a fault-injecting backend.
pub fn open(builder: DatabaseBuilder, path: &Path, ctl: &Arc<Control>) -> Database {
    builder
        .open_with_backend(path, factory(path, Arc::clone(ctl)))
        .expect("open through faulty backend")
}
