//! Failpoints: named places on the commit, index-apply and checkpoint paths where a test makes
//! hybridb fail on purpose, to show that every such failure is reported (never a hang, never a
//! panic reaching a caller) and that reopening gives back the last committed state.
//!
//! They belong to one database (passed in through [`crate::DatabaseBuilder::failpoints`]), not
//! to the process, so tests that run in parallel in one process do not trip each other's. Built
//! only with the `failpoints` cargo feature.
//!
//! The points:
//! - `commit`: just before a write transaction commits (the commit fails; nothing is written);
//! - `apply`: after a commit, before its changes reach the in-memory index (the data is
//!   committed; an error makes the writer rebuild the index from the file);
//! - `checkpoint`: before an index checkpoint file replaces the previous one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::error::{Error, Result};

/// The failpoints hybridb checks.
pub const POINTS: &[&str] = &["commit", "apply", "checkpoint"];

/// What an armed failpoint does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    /// Return an I/O error from that place.
    Error,
    /// Panic there (a bug inside hybridb, as far as the code around it can tell).
    Panic,
}

#[derive(Debug, Clone, Copy)]
struct Arm {
    /// Passes left before it fires.
    skip: u64,
    action: FailAction,
}

/// The failpoints of one database. Cheap when nothing is armed.
#[derive(Debug, Default)]
pub struct Failpoints {
    armed: Mutex<HashMap<String, Arm>>,
    fired: AtomicU64,
}

impl Failpoints {
    /// No point armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `point` (one of [`POINTS`]) to fire once, after `skip` passes that do not.
    pub fn arm(&self, point: &str, skip: u64, action: FailAction) {
        crate::model::sync::lock(&self.armed).insert(point.to_string(), Arm { skip, action });
    }

    /// Disarms every point.
    pub fn disarm_all(&self) {
        crate::model::sync::lock(&self.armed).clear();
    }

    /// How many times a point has fired.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// Called by hybridb at `point`.
    pub(crate) fn pass(&self, point: &str) -> Result<()> {
        let action = {
            let mut armed = crate::model::sync::lock(&self.armed);
            let Some(arm) = armed.get_mut(point) else {
                return Ok(());
            };
            if arm.skip > 0 {
                arm.skip -= 1;
                return Ok(());
            }
            let action = arm.action;
            armed.remove(point);
            action
        };
        self.fired.fetch_add(1, Ordering::Relaxed);
        match action {
            FailAction::Error => Err(Error::Io(std::io::Error::other(format!(
                "failpoint {point}"
            )))),
            FailAction::Panic => panic!("failpoint {point}"),
        }
    }
}
