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
    /// Countdown: when armed (> 0), every backend operation of the kinds in `countdown_kinds`
    /// decrements it, and the one that brings it to 0 fails (as do all later ones while
    /// `fail_after_countdown` is set).
    pub countdown: AtomicU64,
    /// Bit 0: reads, bit 1: writes, bit 2: syncs, bit 3: set_len.
    pub countdown_kinds: AtomicU64,
    /// Keep failing once the countdown fired (a dead disk) rather than failing once.
    pub fail_after_countdown: AtomicBool,
    fired: AtomicBool,
    /// Number of faults injected.
    pub injected: AtomicU64,
}

/// Operation kinds for [`Control::countdown_kinds`].
pub const READ: u64 = 1;
pub const WRITE: u64 = 2;
pub const SYNC: u64 = 4;
pub const SET_LEN: u64 = 8;

impl Control {
    /// Arms a fault on the `n`-th next operation of `kinds`.
    pub fn arm(&self, n: u64, kinds: u64, sticky: bool) {
        self.fired.store(false, Ordering::SeqCst);
        self.countdown_kinds.store(kinds, Ordering::SeqCst);
        self.fail_after_countdown.store(sticky, Ordering::SeqCst);
        self.countdown.store(n.max(1), Ordering::SeqCst);
    }

    /// Disarms every fault.
    pub fn disarm(&self) {
        self.countdown.store(0, Ordering::SeqCst);
        self.fired.store(false, Ordering::SeqCst);
        self.fail_sync.store(false, Ordering::SeqCst);
        self.fail_write.store(false, Ordering::SeqCst);
    }

    /// Whether the countdown has fired.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Counts one operation of `kind`; true if it must fail.
    fn tick(&self, kind: u64) -> bool {
        if self.countdown_kinds.load(Ordering::SeqCst) & kind == 0 {
            return false;
        }
        if self.fired.load(Ordering::SeqCst) {
            return self.fail_after_countdown.load(Ordering::SeqCst);
        }
        let left = self.countdown.load(Ordering::SeqCst);
        if left == 0 {
            return false;
        }
        if self.countdown.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.fired.store(true, Ordering::SeqCst);
            self.injected.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        false
    }

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
        if self.ctl.tick(READ) {
            return Err(std::io::Error::other("injected read failure (countdown)"));
        }
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        if self.ctl.tick(SET_LEN) {
            return Err(std::io::Error::other(
                "injected set_len failure (countdown)",
            ));
        }
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
        if self.ctl.tick(SYNC) {
            return Err(std::io::Error::other("injected sync failure (countdown)"));
        }
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.ctl.fail_write.load(Ordering::SeqCst) {
            return Err(injected(&self.ctl, "write"));
        }
        if self.ctl.tick(WRITE) {
            return Err(std::io::Error::other("injected write failure (countdown)"));
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
