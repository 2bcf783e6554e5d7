//! The state every handler shares, and the helper that runs blocking library calls off the
//! async runtime.

use std::sync::Arc;

use hybridb::Database;
use tokio::sync::{Semaphore, watch};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The database.
    pub(crate) db: Database,
    /// The settings in force.
    pub(crate) config: Arc<ServerConfig>,
    /// Request counters for `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// Slots for concurrently handled requests.
    pub(crate) permits: Arc<Semaphore>,
    /// Turns true when the server shuts down: live streams end, `/readyz` answers 503.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The OpenAPI document, rendered once.
    pub(crate) openapi_json: Arc<String>,
}

impl AppState {
    /// True once shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Runs a blocking library call on tokio's blocking pool (redb reads, searches that may wait
/// for the index, backups) so that it never stalls the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("request handler failed: {e}"))))
}
