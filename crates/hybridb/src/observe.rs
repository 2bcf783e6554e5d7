//! Observability of the public operations, in one pattern: every operation runs inside
//! [`op`] (or [`op_async`]), which opens a `tracing` span, times the operation, and records a
//! counter (by collection, operation and outcome) and a latency histogram (by collection and
//! operation) through the `metrics` facade. Gauges that describe state rather than events
//! (index size, applied lag, checkpoint age, cache sizes) are set by [`record_gauges`].
//!
//! Names and meanings: `docs/metrics.md`. Nothing here runs unless an operation does; without
//! an installed recorder or subscriber the cost is a few atomic loads per operation.

use std::future::Future;
use std::time::Instant;

use metrics::SharedString;
use tracing::Instrument;
use tracing::field::Empty;

use crate::db::Shared;
use crate::error::{Error, Result};
use crate::sync::now_ms;

/// Operation counter: `collection`, `op`, `outcome` (`ok`, `invalid` for user errors such as a
/// bad vector or a version conflict, `error` otherwise).
pub const OPERATIONS: &str = "hybridb_operations_total";
/// Operation latency histogram (seconds): `collection`, `op`.
pub const OPERATION_SECONDS: &str = "hybridb_operation_duration_seconds";

fn outcome<T>(r: &Result<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) if e.is_user_error() => "invalid",
        Err(_) => "error",
    }
}

fn span(op: &'static str, collection: &str, items: usize) -> tracing::Span {
    tracing::debug_span!(
        "hybridb",
        op,
        collection,
        items,
        micros = Empty,
        outcome = Empty
    )
}

fn finish<T>(
    op: &'static str,
    collection: &SharedString,
    span: &tracing::Span,
    start: Instant,
    r: &Result<T>,
) {
    let took = start.elapsed();
    let outcome = outcome(r);
    span.record("micros", took.as_micros() as u64);
    span.record("outcome", outcome);
    metrics::counter!(OPERATIONS, "collection" => collection.clone(), "op" => op, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(OPERATION_SECONDS, "collection" => collection.clone(), "op" => op)
        .record(took.as_secs_f64());
}

/// Runs one public operation `op` on `collection` (empty for database-wide operations) that
/// handles `items` entities (or 1).
pub(crate) fn op<T>(
    op: &'static str,
    collection: &SharedString,
    items: usize,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let span = span(op, collection, items);
    let _entered = span.enter();
    let start = Instant::now();
    let r = f();
    finish(op, collection, &span, start, &r);
    r
}

/// [`op`] for async operations: the span covers every poll of `fut`.
pub(crate) async fn op_async<T>(
    op: &'static str,
    collection: &SharedString,
    items: usize,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = span(op, collection, items);
    let start = Instant::now();
    let r = fut.instrument(span.clone()).await;
    finish(op, collection, &span, start, &r);
    r
}

/// The label of database-wide operations.
pub(crate) fn database_label() -> SharedString {
    SharedString::const_str("")
}

/// Sets the state gauges of one database: per collection `hybridb_index_entities`,
/// `hybridb_index_memory_bytes`, `hybridb_checkpoint_age_seconds` (HNSW indexes that have a
/// checkpoint); `hybridb_applied_lag` (committed minus applied sequence numbers),
/// `hybridb_last_seq`; the writer's totals `hybridb_writer_{groups,commands,items,
/// failed_commits}_total`; cache bytes and entries per level.
pub(crate) fn record_gauges(shared: &Shared) {
    let now = now_ms();
    for c in shared.collection_list() {
        let name = c.metric_name.clone();
        metrics::gauge!("hybridb_index_entities", "collection" => name.clone())
            .set(c.index.live_count() as f64);
        metrics::gauge!("hybridb_index_memory_bytes", "collection" => name.clone())
            .set(c.index.memory_bytes() as f64);
        if let Some(at) = c.index.checkpoint_written_ms() {
            metrics::gauge!("hybridb_checkpoint_age_seconds", "collection" => name)
                .set(now.saturating_sub(at) as f64 / 1000.0);
        }
    }
    let committed = shared.progress.committed_seq();
    let applied = shared.progress.applied_seq();
    metrics::gauge!("hybridb_applied_lag").set(committed.saturating_sub(applied) as f64);
    metrics::gauge!("hybridb_last_seq").set(committed as f64);
    let w = &shared.counters;
    for (name, value) in [
        ("hybridb_writer_groups_total", &w.groups),
        ("hybridb_writer_commands_total", &w.commands),
        ("hybridb_writer_items_total", &w.items),
        ("hybridb_writer_failed_commits_total", &w.failed_commits),
    ] {
        metrics::counter!(name).absolute(value.load(std::sync::atomic::Ordering::Relaxed));
    }
    shared.caches.record_gauges();
}

/// Counts a failed writer-side step that has no caller to report to.
pub(crate) fn background_error(what: &'static str, e: &Error) {
    tracing::warn!(what, error = %e, "hybridb background work failed");
    metrics::counter!("hybridb_background_errors_total", "what" => what).increment(1);
}
