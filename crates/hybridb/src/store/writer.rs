//! The writer thread: the only code that opens redb write transactions.
//!
//! Callers send [`Command`]s over a bounded channel, each with a oneshot reply. The thread takes
//! the first queued command, drains what else is queued (up to [`Options::max_group_ops`] items
//! and [`Options::max_group_bytes`]) and commits all of it in ONE transaction (group commit: one
//! fsync for many writes), then applies the result to the in-memory indexes and replies.
//!
//! Invariants:
//! - commands are committed and applied in queue order; the in-memory indexes change only after
//!   a successful commit, in commit order (deleted slots are hidden just before the commit and
//!   restored if it fails);
//! - a command that fails validation or a version check fails alone: it wrote nothing into the
//!   group's transaction; the others commit;
//! - a group holding any `Immediate` write commits `Immediate`;
//! - after a failed commit (redb refuses writes until reopened) or a panic, the thread reopens
//!   the file and reloads every collection from it before taking the next command; the callers
//!   of the failed group get an error and nothing of their writes exists.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redb::ReadableTable;
use tokio::sync::{mpsc, oneshot};

use crate::index::slots::SlotCursor;
use crate::model::config::CollectionConfig;
use crate::model::error::{Error, Result};
use crate::model::sync::now_ms;
use crate::query::state::Apply;
use crate::store::collection::CollectionShared;
use crate::store::options::{Durability, Options};
use crate::store::schema::{CHANGES, CollectionTables, META, META_LAST_SEQ};
use crate::store::shared::Shared;
use crate::store::write::{WhereAction, WriteOp, Written, stage, validate, write_staged};

/// A write of one caller.
pub(crate) struct WriteCommand {
    pub coll: Arc<CollectionShared>,
    pub ops: Vec<WriteOp>,
    /// Delete or update every entity passing this filter (then `ops` is empty): resolved
    /// inside the group's transaction, so the write is atomic.
    pub select: Option<(crate::query::filter::Filter, WhereAction)>,
    pub durability: Durability,
    pub reply: oneshot::Sender<Result<Vec<Written>>>,
}

/// Everything the writer thread does.
pub(crate) enum Command {
    Write(WriteCommand),
    CreateCollection {
        name: String,
        config: CollectionConfig,
        reply: oneshot::Sender<Result<Arc<CollectionShared>>>,
    },
    DropCollection {
        name: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Makes every committed write durable.
    Sync {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Compacts the file.
    Compact {
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Reopens the file and rebuilds all in-memory state from it (repair).
    Reload {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Declares (`Some`) or drops (`None`) a payload index.
    PayloadIndex {
        coll: Arc<CollectionShared>,
        field: String,
        kind: Option<crate::model::config::PayloadIndexKind>,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Adds (`Some`) or removes (`None`) a named vector.
    NamedVector {
        coll: Arc<CollectionShared>,
        name: String,
        config: Option<crate::model::config::VectorConfig>,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Sets a dense vector's quantization (`using` empty: the default vector) and retrains.
    Quantization {
        coll: Arc<CollectionShared>,
        using: String,
        quantization: crate::model::config::Quantization,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Declares (`Some`) or drops (`None`) a text index.
    TextIndex {
        coll: Arc<CollectionShared>,
        field: String,
        config: Option<crate::model::config::TextIndexConfig>,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Merges keys into a collection's metadata (`null` removes a key).
    Metadata {
        coll: Arc<CollectionShared>,
        patch: serde_json::Map<String, serde_json::Value>,
        reply: oneshot::Sender<Result<serde_json::Map<String, serde_json::Value>>>,
    },
    /// Rewrites a collection's postings table from its payloads (repair).
    RebuildPostings {
        coll: Arc<CollectionShared>,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// A change-feed metadata operation (cursors, retention).
    Meta {
        op: crate::store::changes::MetaOp,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// A coordination job (aliases, two-phase commit, sagas; see [`crate::coord::call`]): it
    /// replies itself and returns true if the writer must reopen the database.
    Coord(Box<dyn FnOnce(&Shared) -> bool + Send>),
}

/// Starts the writer thread. It ends when every sender is dropped and the queue is drained.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Command>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hybridb-writer".into())
        .spawn(move || run(&shared, rx))
}

/// What the last write groups say about the callers, for lingering.
///
/// The callers of a group send their next writes only after its replies, so right after a
/// reply the queue holds just the callers that were not in it: the last group's size alone
/// ratchets down (a group of 5 out of 8 callers makes the next wait for 5 only, the other 3
/// go alone). The largest of the last few groups counts the callers that are active.
#[derive(Default)]
struct RecentGroups {
    sizes: [usize; 8],
    next: usize,
    last_took: Duration,
}

impl RecentGroups {
    fn record(&mut self, size: usize, took: Duration) {
        self.sizes[self.next % self.sizes.len()] = size;
        self.next += 1;
        self.last_took = took;
    }

    /// Callers active lately: the largest recent group.
    fn callers(&self) -> usize {
        self.sizes.iter().copied().max().unwrap_or(1).max(1)
    }

    /// How long to wait for a group to fill: half the last group's time, at most `cap`. The
    /// wait is worth it when it saves a commit; bounded by the commit's own cost it can at
    /// most add half of it to a caller's latency (an fsync of ~1 ms: up to 0.5 ms; a
    /// commit without fsync: microseconds).
    fn linger(&self, cap: Duration) -> Duration {
        (self.last_took / 2).min(cap)
    }
}

fn run(shared: &Shared, mut rx: mpsc::Receiver<Command>) {
    let options: &Options = &shared.options;
    let mut pending: Option<Command> = None;
    // Sizes of the last write groups and how long the last one took (drive lingering).
    let mut recent = RecentGroups::default();
    loop {
        let first = match pending.take() {
            Some(c) => c,
            None => match rx.blocking_recv() {
                Some(c) => c,
                None => break,
            },
        };
        let outcome = match first {
            Command::Write(w) => {
                let mut ops = w.ops.len();
                let mut bytes: usize = w.ops.iter().map(WriteOp::approx_bytes).sum();
                let mut group = vec![w];
                // Linger only when recent groups showed concurrent callers: a lone caller
                // never waits, concurrent ones get fuller groups (fewer fsyncs).
                let target = recent.callers();
                let linger = recent.linger(options.group_linger);
                let linger_until =
                    (target > 1 && !linger.is_zero()).then(|| Instant::now() + linger);
                // Callers answered by the last group come back in a burst; once nothing has
                // arrived for a quarter of the linger, the burst is over.
                let mut last_arrival = Instant::now();
                while ops < options.max_group_ops && bytes < options.max_group_bytes {
                    match rx.try_recv() {
                        Ok(Command::Write(w)) => {
                            last_arrival = Instant::now();
                            ops += w.ops.len();
                            bytes += w.ops.iter().map(WriteOp::approx_bytes).sum::<usize>();
                            group.push(w);
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(mpsc::error::TryRecvError::Empty)
                            if linger_until.is_some_and(|t| Instant::now() < t)
                                && group.len() < target
                                && last_arrival.elapsed() < linger / 4 =>
                        {
                            std::thread::yield_now();
                        }
                        Err(_) => break,
                    }
                }
                let size = group.len();
                metrics::gauge!("hybridb_writer_queue_depth").set(rx.len() as f64);
                let started = Instant::now();
                let failed = guarded(|| run_group(shared, group));
                recent.record(size, started.elapsed());
                failed
            }
            Command::CreateCollection {
                name,
                config,
                reply,
            } => guarded(|| {
                let (r, failed) = split_commit_failure(shared.create_collection_txn(&name, config));
                let _ = reply.send(r);
                failed
            }),
            Command::DropCollection { name, reply } => guarded(|| {
                let (r, failed) = split_commit_failure(shared.drop_collection_txn(&name));
                let _ = reply.send(r);
                failed
            }),
            Command::Sync { reply } => guarded(|| {
                let (r, failed) = split_commit_failure(shared.sync());
                let _ = reply.send(r);
                failed
            }),
            Command::Compact { reply } => guarded(|| {
                let (r, failed) = split_commit_failure(shared.compact());
                let _ = reply.send(r);
                failed
            }),
            Command::Reload { reply } => guarded(|| {
                let ok = recover(shared);
                let _ = reply.send(if ok { Ok(()) } else { Err(Error::Recovering) });
                !ok
            }),
            Command::PayloadIndex {
                coll,
                field,
                kind,
                reply,
            } => guarded(|| {
                coll.window.open();
                let (r, failed) =
                    split_commit_failure(shared.set_payload_index_txn(&coll, &field, kind));
                if !failed {
                    coll.window.close();
                }
                let _ = reply.send(r);
                failed
            }),
            Command::NamedVector {
                coll,
                name,
                config,
                reply,
            } => guarded(|| {
                coll.window.open();
                let (r, failed) =
                    split_commit_failure(shared.set_named_vector_txn(&coll, &name, config));
                if !failed {
                    coll.window.close();
                }
                let _ = reply.send(r);
                failed
            }),
            Command::Quantization {
                coll,
                using,
                quantization,
                reply,
            } => guarded(|| {
                coll.window.open();
                let (r, failed) =
                    split_commit_failure(shared.set_quantization_txn(&coll, &using, quantization));
                if !failed {
                    coll.window.close();
                }
                let _ = reply.send(r);
                failed
            }),
            Command::TextIndex {
                coll,
                field,
                config,
                reply,
            } => guarded(|| {
                coll.window.open();
                let (r, failed) =
                    split_commit_failure(shared.set_text_index_txn(&coll, &field, config));
                if !failed {
                    coll.window.close();
                }
                let _ = reply.send(r);
                failed
            }),
            Command::Metadata { coll, patch, reply } => guarded(|| {
                let (r, failed) = split_commit_failure(shared.merge_metadata_txn(&coll, patch));
                let _ = reply.send(r);
                failed
            }),
            Command::RebuildPostings { coll, reply } => guarded(|| {
                coll.window.open();
                let (r, failed) = split_commit_failure(shared.rebuild_postings_txn(&coll));
                if !failed {
                    coll.window.close();
                }
                let _ = reply.send(r);
                failed
            }),
            Command::Meta { op, reply } => guarded(|| {
                let (r, failed) = split_commit_failure(shared.run_meta(op));
                let _ = reply.send(r);
                failed
            }),
            Command::Coord(job) => guarded(|| job(shared)),
        };
        if outcome.needs_recovery {
            // On failure the next group finds no database and tries again.
            let _ = recover(shared);
        }
    }
}

struct Outcome {
    needs_recovery: bool,
}

/// Runs `f`, catching a panic (the dropped reply senders tell the callers) and asking for a
/// reopen after a panic or a failed commit.
fn guarded(f: impl FnOnce() -> bool) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(failed) => Outcome {
            needs_recovery: failed,
        },
        Err(_) => Outcome {
            needs_recovery: true,
        },
    }
}

/// Storage faults mean redb may refuse further writes: the writer must reopen.
fn split_commit_failure<T>(r: Result<T>) -> (Result<T>, bool) {
    let failed = matches!(
        &r,
        Err(Error::Storage(_) | Error::Io(_) | Error::CommitFailed { .. })
    );
    (r, failed)
}

/// One staged, not yet committed command.
struct InFlight {
    reply: oneshot::Sender<Result<Vec<Written>>>,
    coll: Arc<CollectionShared>,
    written: Vec<Written>,
    applies: Vec<Apply>,
}

impl InFlight {
    /// A command whose group fails: it only needs its error reply.
    fn failed(reply: oneshot::Sender<Result<Vec<Written>>>, coll: Arc<CollectionShared>) -> Self {
        InFlight {
            reply,
            coll,
            written: Vec::new(),
            applies: Vec::new(),
        }
    }
}

/// Commits a group; returns true if the writer must reopen the database.
fn run_group(shared: &Shared, group: Vec<WriteCommand>) -> bool {
    let span = tracing::debug_span!(
        "hybridb_group_commit",
        commands = group.len(),
        items = tracing::field::Empty,
        commit_micros = tracing::field::Empty,
        apply_micros = tracing::field::Empty,
    );
    let _entered = span.enter();
    // Step 1, outside the transaction: validation failures are answered at once.
    let mut valid = VecDeque::with_capacity(group.len());
    for cmd in group {
        let checked = cmd
            .coll
            .check_live()
            .and_then(|()| shared.coord.check_writable(&cmd.coll))
            .and_then(|()| match &cmd.select {
                Some((filter, action)) => crate::store::write::check_filter(&cmd.coll, filter)
                    .and_then(|()| check_action(action))
                    .map(|()| Vec::new()),
                None => validate(&cmd.coll, cmd.ops, shared.options.max_payload_bytes),
            });
        match checked {
            Ok(prepared) => {
                valid.push_back((cmd.coll, cmd.durability, cmd.reply, prepared, cmd.select))
            }
            Err(e) => {
                let _ = cmd.reply.send(Err(e));
            }
        }
    }
    if valid.is_empty() {
        return false;
    }
    let durability = if valid.iter().any(|v| v.1 == Durability::Immediate) {
        Durability::Immediate
    } else {
        Durability::None
    };
    let redb = match shared.redb() {
        Ok(r) => r,
        Err(e) => {
            let reason = e.to_string();
            for v in valid {
                let _ = v.2.send(Err(Error::CommitFailed {
                    reason: reason.clone(),
                }));
            }
            return true;
        }
    };
    let mut in_flight: Vec<InFlight> = Vec::with_capacity(valid.len());
    let result = (|| -> Result<(redb::WriteTransaction, u64)> {
        let txn = redb.begin_write()?;
        let now = now_ms();
        let mut seq = {
            let meta = txn.open_table(META)?;
            meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value())
        };
        {
            let mut changes = txn.open_table(CHANGES)?;
            let mut cursors: HashMap<u64, SlotCursor> = HashMap::new();
            while let Some((coll, _, reply, prepared, select)) = valid.pop_front() {
                let tables = CollectionTables::new(coll.stored.cid);
                // Step 2: a write by filter becomes deletes or updates (decided in this
                // transaction), then reads and version checks; a user error fails this
                // command alone.
                let step2 = (|| -> Result<_> {
                    let mut prepared = match &select {
                        None => prepared,
                        Some((filter, action)) => {
                            // Entities this group wrote already are not in the postings yet.
                            let touched: Vec<_> = in_flight
                                .iter()
                                .filter(|f| f.coll.stored.cid == coll.stored.cid)
                                .flat_map(|f| f.written.iter().map(|w| w.id))
                                .collect();
                            crate::store::write::resolve_where(
                                &txn, &coll, &tables, filter, action, &touched,
                            )?
                        }
                    };
                    let staged = stage(
                        &txn,
                        &coll,
                        &tables,
                        &mut prepared,
                        shared.options.max_payload_bytes,
                    )?;
                    Ok((prepared, staged))
                })();
                let (prepared, staged) = match step2 {
                    Ok(x) => x,
                    Err(e) if e.is_user_error() => {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    Err(e) => {
                        in_flight.push(InFlight::failed(reply, coll));
                        return Err(e);
                    }
                };
                // Step 3: writes; any error here fails the group.
                let cursor = cursors.entry(coll.stored.cid).or_default();
                let r = write_staged(
                    &txn,
                    &coll,
                    &tables,
                    &prepared,
                    staged,
                    &mut changes,
                    &mut seq,
                    cursor,
                    now,
                );
                let (written, applies) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        in_flight.push(InFlight::failed(reply, coll));
                        return Err(e);
                    }
                };
                in_flight.push(InFlight {
                    reply,
                    coll,
                    written,
                    applies,
                });
            }
        }
        txn.open_table(META)?.insert(META_LAST_SEQ, seq)?;
        Ok((txn, seq))
    })();
    let (txn, seq) = match result {
        Ok(x) => x,
        Err(e) => {
            fail_all(in_flight, valid.into_iter().map(|v| v.2), &e);
            return true;
        }
    };
    if in_flight.iter().all(|f| f.written.is_empty()) {
        // Nothing to commit: every command failed its version check or (a delete by filter
        // that matched nothing) had nothing to do.
        drop(txn);
        for f in in_flight {
            let _ = f.reply.send(Ok(Vec::new()));
        }
        return false;
    }
    // The caches of these collections are bypassed from here until the index has the group;
    // after a failure, until the recovery below has reloaded them.
    for f in &in_flight {
        f.coll.window.open();
    }
    set_hidden(&in_flight, true);
    let t_commit = Instant::now();
    let committed = shared.commit(txn, durability, seq);
    let took = t_commit.elapsed();
    span.record("commit_micros", took.as_micros() as u64);
    metrics::histogram!("hybridb_commit_duration_seconds").record(took.as_secs_f64());
    metrics::counter!("hybridb_commits_total", "outcome" => if committed.is_ok() { "ok" } else { "failed" })
        .increment(1);
    if let Err(e) = committed {
        shared
            .counters
            .failed_commits
            .fetch_add(1, Ordering::Relaxed);
        set_hidden(&in_flight, false);
        fail_all(in_flight, std::iter::empty(), &e);
        return true;
    }
    for f in &in_flight {
        for w in &f.written {
            shared.caches.invalidate(f.coll.stored.cid, w.id);
        }
    }
    let t_apply = Instant::now();
    let mut index_failed = false;
    for f in &mut in_flight {
        // The data is committed; an index that cannot take it is rebuilt from the file below.
        index_failed |= shared.failpoint("apply").is_err()
            || f.coll.index.apply(std::mem::take(&mut f.applies)).is_err();
    }
    shared.progress.applied(seq);
    for f in &in_flight {
        f.coll.window.close();
    }
    let took = t_apply.elapsed();
    span.record("apply_micros", took.as_micros() as u64);
    metrics::histogram!("hybridb_index_apply_duration_seconds").record(took.as_secs_f64());
    let c = &shared.counters;
    c.groups.fetch_add(1, Ordering::Relaxed);
    c.commands
        .fetch_add(in_flight.len() as u64, Ordering::Relaxed);
    let items: usize = in_flight.iter().map(|f| f.written.len()).sum();
    c.items.fetch_add(items as u64, Ordering::Relaxed);
    span.record("items", items as u64);
    metrics::histogram!("hybridb_writer_group_commands").record(in_flight.len() as f64);
    metrics::histogram!("hybridb_writer_group_items").record(items as f64);
    for f in in_flight {
        let _ = f.reply.send(Ok(f.written));
    }
    index_failed
}

fn set_hidden(in_flight: &[InFlight], hide: bool) {
    for f in in_flight {
        let slots: Vec<u32> = f
            .applies
            .iter()
            .filter_map(|a| match a {
                Apply::Remove { slot } => Some(*slot),
                _ => None,
            })
            .collect();
        f.coll.index.set_hidden(&slots, hide);
    }
}

fn fail_all(
    in_flight: Vec<InFlight>,
    others: impl Iterator<Item = oneshot::Sender<Result<Vec<Written>>>>,
    e: &Error,
) {
    let reason = e.to_string();
    for reply in in_flight.into_iter().map(|f| f.reply).chain(others) {
        let _ = reply.send(Err(Error::CommitFailed {
            reason: reason.clone(),
        }));
    }
}

/// Reopens the file and reloads all in-memory state from it, retrying for a few seconds (a
/// read transaction still open on the old handle keeps the file locked). Until it succeeds,
/// reads get [`Error::Recovering`] and the next write group tries again.
fn recover(shared: &Shared) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_millis(1);
    // Dropping a handle that panicked inside redb may panic again (poisoned locks): contain it.
    let attempt = || {
        matches!(
            catch_unwind(AssertUnwindSafe(|| shared.reopen())),
            Ok(Ok(()))
        )
    };
    loop {
        if attempt() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// Step 1 of a write by filter: a payload update's own form (its paths).
fn check_action(action: &WhereAction) -> Result<()> {
    match action {
        WhereAction::Delete => Ok(()),
        WhereAction::UpdatePayload(update) => update.check().map_err(Error::InvalidUpdate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingering_follows_the_largest_recent_group_and_the_last_group_time() {
        let mut r = RecentGroups::default();
        assert_eq!(r.callers(), 1, "nothing seen: a lone caller");
        assert_eq!(r.linger(Duration::from_millis(1)), Duration::ZERO);
        // Eight callers whose groups came out 8, 5, 3: the target stays 8.
        for size in [8, 5, 3] {
            r.record(size, Duration::from_micros(1_200));
        }
        assert_eq!(r.callers(), 8);
        assert_eq!(
            r.linger(Duration::from_millis(1)),
            Duration::from_micros(600)
        );
        assert_eq!(
            r.linger(Duration::from_micros(200)),
            Duration::from_micros(200),
            "the configured cap bounds the wait"
        );
        // The callers went away: after a window of lone writes nobody waits.
        for _ in 0..8 {
            r.record(1, Duration::from_micros(900));
        }
        assert_eq!(r.callers(), 1);
    }
}
