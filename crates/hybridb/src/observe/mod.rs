//! Observability of the public operations, in one pattern: every operation runs inside
//! [`op`] (or [`op_async`]), which opens a `tracing` span, times the operation, and records a
//! counter (by collection, operation and outcome) and a latency histogram (by collection and
//! operation) through the `metrics` facade. Gauges that describe state rather than events
//! (index size, applied lag, checkpoint age, cache sizes) are set by `Shared::record_gauges` (in `store`).
//!
//! Names and meanings: `docs/metrics.md`. Nothing here runs unless an operation does; without
//! an installed recorder or subscriber the cost is a few atomic loads per operation.

pub(crate) mod cache;

use std::future::Future;
use std::sync::RwLock;
use std::time::Instant;

use metrics::SharedString;
use tracing::Instrument;
use tracing::field::Empty;

use crate::model::error::{Error, Result};
use crate::model::sync::{read, write};

/// Operation counter: `collection`, `op`, `outcome` (`ok`, `invalid` for user errors such as a
/// bad vector or a version conflict, `error` otherwise).
pub(crate) const OPERATIONS: &str = "hybridb_operations_total";
/// Operation latency histogram (seconds): `collection`, `op`.
pub(crate) const OPERATION_SECONDS: &str = "hybridb_operation_duration_seconds";

/// The public operations (the `op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ack,
    Backup,
    BackupIncremental,
    ChangesSince,
    Checkpoint,
    Compact,
    Count,
    CountWhere,
    CreatePayloadIndex,
    Delete,
    DeleteBatch,
    DeleteByFilter,
    DeleteCursor,
    DropPayloadIndex,
    Explain,
    Get,
    GetMany,
    PruneChanges,
    Scroll,
    ScrollWhere,
    Search,
    Sync,
    Upsert,
    UpsertBatch,
    UpsertIfVersion,
    UpdatePayload,
    UpdatePayloadWhere,
    Verify,
    VerifyAndRepair,
    Restore,
    ApplyIncremental,
    CreateCollection,
    DropCollection,
    CreateAlias,
    SetAlias,
    SwapAlias,
    DeleteAlias,
    CommitTransaction,
    RecoverTransactions,
    RunSaga,
    RecoverSagas,
    AddVector,
    RemoveVector,
    Query,
    SetQuantization,
    PruneCoordinationLog,
}

impl Op {
    const COUNT: usize = Op::PruneCoordinationLog as usize + 1;

    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Ack => "ack",
            Op::Backup => "backup",
            Op::BackupIncremental => "backup_incremental",
            Op::ChangesSince => "changes_since",
            Op::Checkpoint => "checkpoint",
            Op::Compact => "compact",
            Op::Count => "count",
            Op::CountWhere => "count_where",
            Op::CreatePayloadIndex => "create_payload_index",
            Op::Delete => "delete",
            Op::DeleteBatch => "delete_batch",
            Op::DeleteByFilter => "delete_by_filter",
            Op::DeleteCursor => "delete_cursor",
            Op::DropPayloadIndex => "drop_payload_index",
            Op::Explain => "explain",
            Op::AddVector => "add_vector",
            Op::Query => "query",
            Op::RemoveVector => "remove_vector",
            Op::SetQuantization => "set_quantization",
            Op::Get => "get",
            Op::GetMany => "get_many",
            Op::PruneChanges => "prune_changes",
            Op::Scroll => "scroll",
            Op::ScrollWhere => "scroll_where",
            Op::Search => "search",
            Op::Sync => "sync",
            Op::Upsert => "upsert",
            Op::UpsertBatch => "upsert_batch",
            Op::UpsertIfVersion => "upsert_if_version",
            Op::UpdatePayload => "update_payload",
            Op::UpdatePayloadWhere => "update_payload_where",
            Op::Verify => "verify",
            Op::VerifyAndRepair => "verify_and_repair",
            Op::Restore => "restore",
            Op::ApplyIncremental => "apply_incremental",
            Op::CreateCollection => "create_collection",
            Op::DropCollection => "drop_collection",
            Op::CreateAlias => "create_alias",
            Op::SetAlias => "set_alias",
            Op::SwapAlias => "swap_alias",
            Op::DeleteAlias => "delete_alias",
            Op::CommitTransaction => "commit_transaction",
            Op::RecoverTransactions => "recover_transactions",
            Op::RunSaga => "run_saga",
            Op::RecoverSagas => "recover_sagas",
            Op::PruneCoordinationLog => "prune_coordination_log",
        }
    }
}

/// Identifies the recorder in force (the global one, or a thread's local one).
fn recorder_id() -> usize {
    metrics::with_recorder(|r| (r as *const dyn metrics::Recorder).cast::<()>() as usize)
}

/// Metric handles registered once per recorder: registering hashes the name and labels and
/// looks them up, recording through a handle is an atomic operation.
pub(crate) struct Registered<T> {
    inner: RwLock<Option<(usize, T)>>,
}

impl<T> Default for Registered<T> {
    fn default() -> Self {
        Registered {
            inner: RwLock::new(None),
        }
    }
}

impl<T> Registered<T> {
    /// Runs `f` with the handles of the recorder in force, registering them first if needed.
    pub(crate) fn with<R>(&self, register: impl FnOnce() -> T, f: impl FnOnce(&T) -> R) -> R {
        let now = recorder_id();
        {
            let guard = read(&self.inner);
            if let Some((id, handles)) = guard.as_ref()
                && *id == now
            {
                return f(handles);
            }
        }
        let mut guard = write(&self.inner);
        let (_, handles) = guard.insert((now, register()));
        f(handles)
    }
}

/// The handles of one operation.
struct OpHandles {
    /// One counter per [`Outcome`], in the order of `Outcome::ALL`.
    counts: [metrics::Counter; 3],
    seconds: metrics::Histogram,
}

/// The operation metrics of one collection (or of the database, label ``).
pub(crate) struct OpMetrics {
    label: SharedString,
    ops: Box<[Registered<OpHandles>]>,
}

impl OpMetrics {
    pub(crate) fn new(label: &str) -> Self {
        OpMetrics {
            label: SharedString::from_shared(std::sync::Arc::from(label)),
            ops: (0..Op::COUNT).map(|_| Registered::default()).collect(),
        }
    }

    /// The collection label.
    pub(crate) fn label(&self) -> &SharedString {
        &self.label
    }

    fn record(&self, op: Op, outcome: Outcome, took: std::time::Duration) {
        let register = || {
            OpHandles {
            counts: Outcome::ALL.map(|o| metrics::counter!(OPERATIONS, "collection" => self.label.clone(), "op" => op.name(), "outcome" => o.name())),
            seconds: metrics::histogram!(OPERATION_SECONDS, "collection" => self.label.clone(), "op" => op.name()),
        }
        };
        self.ops[op as usize].with(register, |h| {
            h.counts[outcome as usize].increment(1);
            h.seconds.record(took.as_secs_f64());
        });
    }
}

/// How an operation ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// A user error: bad input, a version conflict, an unknown collection.
    Invalid,
    Error,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Invalid, Outcome::Error];

    fn of<T>(r: &Result<T>) -> Self {
        match r {
            Ok(_) => Outcome::Ok,
            Err(e) if e.is_user_error() => Outcome::Invalid,
            Err(_) => Outcome::Error,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Invalid => "invalid",
            Outcome::Error => "error",
        }
    }
}

fn span(op: Op, collection: &str, items: usize) -> tracing::Span {
    tracing::debug_span!(
        "hybridb",
        op = op.name(),
        collection,
        items,
        micros = Empty,
        outcome = Empty
    )
}

fn finish<T>(op: Op, metrics: &OpMetrics, span: &tracing::Span, start: Instant, r: &Result<T>) {
    let took = start.elapsed();
    let outcome = Outcome::of(r);
    span.record("micros", took.as_micros() as u64);
    span.record("outcome", outcome.name());
    metrics.record(op, outcome, took);
}

/// Runs one public operation `op` that handles `items` entities (or 1), counted in `metrics`.
pub(crate) fn op<T>(
    op: Op,
    metrics: &OpMetrics,
    items: usize,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let span = span(op, metrics.label(), items);
    let _entered = span.enter();
    let start = Instant::now();
    let r = f();
    finish(op, metrics, &span, start, &r);
    r
}

/// [`op`] for async operations: the span covers every poll of `fut`.
pub(crate) async fn op_async<T>(
    op: Op,
    metrics: &OpMetrics,
    items: usize,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = span(op, metrics.label(), items);
    let start = Instant::now();
    let r = fut.instrument(span.clone()).await;
    finish(op, metrics, &span, start, &r);
    r
}

/// Counts a failed writer-side step that has no caller to report to.
pub(crate) fn background_error(what: &'static str, e: &Error) {
    tracing::warn!(what, error = %e, "hybridb background work failed");
    metrics::counter!("hybridb_background_errors_total", "what" => what).increment(1);
}
