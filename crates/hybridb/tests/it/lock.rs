//! A second opener of the same file gets a clear error at once, never a hang.

use std::process::Command;
use std::time::{Duration, Instant};

use hybridb::{Database, Error};

const CHILD_ENV: &str = "HYBRIDB_TEST_LOCK_CHILD";

#[test]
fn second_handle_in_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let _db = Database::open(&path).unwrap();
    assert!(matches!(
        Database::open(&path),
        Err(Error::AlreadyOpen { .. })
    ));
}

/// Run as a child: try to open the file named in the environment; exit 3 on AlreadyOpen.
#[test]
fn lock_child_entry() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Not a child run: nothing to do.
    };
    match Database::open(&path) {
        Err(Error::AlreadyOpen { .. }) => std::process::exit(3),
        Ok(_) => std::process::exit(0),
        Err(_) => std::process::exit(4),
    }
}

/// Runs `lock_child_entry` in a new process on `path`; returns its exit code.
fn child_open(path: &std::path::Path) -> Option<i32> {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args([
            "lock::lock_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .status()
        .unwrap()
        .code()
}

#[test]
fn second_process_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Database::open(&path).unwrap();
    let started = Instant::now();
    assert_eq!(child_open(&path), Some(3), "child should see AlreadyOpen");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(db);
    // Once closed, another process can open it.
    assert_eq!(child_open(&path), Some(0));
}
