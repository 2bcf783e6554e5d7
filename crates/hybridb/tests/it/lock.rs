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

#[test]
fn second_process_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Database::open(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let status = Command::new(exe)
        .args([
            "lock::lock_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3), "child should see AlreadyOpen");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(db);
    // Once closed, another process can open it.
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe)
        .args([
            "lock::lock_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
