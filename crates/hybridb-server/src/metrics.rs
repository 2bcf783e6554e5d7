//! `/metrics`: the Prometheus exposition of everything recorded through the `metrics` facade —
//! the engine's own metrics (operations, writer, caches, index state; see `docs/metrics.md`)
//! plus the server's request counters and latencies recorded here.
//!
//! The recorder is process-wide ([`hybridb::prometheus::Prometheus`]): one server per process
//! is the expected deployment; several servers in one process share their series.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hybridb::Database;
use hybridb::prometheus::Prometheus;

/// The server's view of the metrics recorder.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    /// The installed exporter, or why there is none (another recorder was installed first).
    exporter: Result<Prometheus, String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            exporter: Prometheus::install().map_err(|e| e.to_string()),
        }
    }
}

impl Metrics {
    /// Counts one finished request.
    pub(crate) fn record(&self, route: &str, method: &str, status: StatusCode, took: Duration) {
        metrics::counter!(
            "hybridb_http_requests_total",
            "route" => route.to_string(),
            "method" => method.to_string(),
            "status" => status.as_u16().to_string()
        )
        .increment(1);
        metrics::histogram!(
            "hybridb_http_request_duration_seconds",
            "route" => route.to_string(),
            "method" => method.to_string()
        )
        .record(took.as_secs_f64());
    }

    /// Time since the server started.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The exposition, after setting the gauges that describe state now: stored entities per
/// collection, uptime, and the database's own gauges. Reads redb: call it off the async
/// workers. Fails if the process had another metrics recorder before the server started.
pub(crate) fn render(metrics: &Metrics, db: &Database) -> Result<String, String> {
    let exporter = metrics.exporter.as_ref().map_err(Clone::clone)?;
    for info in db.collections() {
        let Ok(c) = db.collection(&info.name) else {
            continue;
        };
        if let Ok(n) = c.count() {
            metrics::gauge!("hybridb_collection_entities", "collection" => info.name).set(n as f64);
        }
    }
    metrics::gauge!("hybridb_uptime_seconds").set(metrics.uptime().as_secs_f64());
    Ok(exporter.render(&[db]))
}
