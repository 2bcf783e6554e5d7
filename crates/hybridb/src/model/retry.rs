//! Retrying transient failures with exponential backoff — explicitly, never silently.
//!
//! hybridb never retries on its own: a write that got [`Error::Busy`] or
//! [`Error::CommitFailed`] did not happen, and the caller decides whether to try again. This
//! helper makes that decision easy to state.

use std::time::Duration;

#[cfg(test)]
use crate::model::error::Error;
use crate::model::error::Result;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1). Default 5.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure. Default 10 ms.
    pub initial_backoff: Duration,
    /// Upper bound of a single wait. Default 1 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Calls `op` until it succeeds, fails with a non-transient error, or the attempts run out;
/// returns the last result. Only [`crate::Error::is_transient`] errors are retried.
///
/// # Example
/// ```
/// # fn main() -> hybridb::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// # let db = hybridb::Database::open(dir.path().join("t.redb"))?;
/// use hybridb::{retry, CollectionConfig, Entity, EntityId, Metric, RetryPolicy};
/// let c = db.create_collection("c", CollectionConfig::new(1, Metric::L2))?;
/// let e = Entity::new(EntityId::from_key("x"), serde_json::json!({}), vec![1.0]);
/// let written = retry(RetryPolicy::default(), || c.upsert(e.clone()))?;
/// # Ok(()) }
/// ```
pub fn retry<T>(policy: RetryPolicy, mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = policy.initial_backoff;
    let mut attempt = 1;
    loop {
        match op() {
            Err(e) if e.is_transient() && attempt < policy.max_attempts.max(1) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(policy.max_backoff);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_only_transient_errors_and_stops() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_micros(1),
            max_backoff: Duration::from_micros(10),
        };
        let mut calls = 0;
        let r: Result<()> = retry(policy, || {
            calls += 1;
            Err(Error::Busy { waited_ms: 1 })
        });
        assert!(matches!(r, Err(Error::Busy { .. })));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<()> = retry(policy, || {
            calls += 1;
            Err(Error::CollectionNotFound("x".into()))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "user errors are not retried");

        let mut calls = 0;
        let r = retry(policy, || {
            calls += 1;
            if calls < 2 {
                Err(Error::Recovering)
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.unwrap(), 7);
    }
}
