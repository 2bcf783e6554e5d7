//! The sink: an initial copy of the source at a sequence number, then the change feed from
//! there, applied to a [`Target`] in batches with the cursor in the same transaction.
//!
//! Why a restart is exact: the cursor (the last applied `seq`) commits with the batch, so a
//! sink killed at any instant resumes after the last batch the target committed. Each batch
//! reads the *current* state of the entities its events name (the feed carries no payloads);
//! a state newer than the event is fine, because upserts only replace lower versions and
//! every delete or drop is applied in feed order before anything that came after it, so the
//! target converges to the source. Deletes are applied before the upserts of the same batch,
//! and collection events (create, drop) cut batches, so a re-created entity or collection is
//! never mixed with its predecessor.
//!
//! Errors that may pass (source or target down, a refused write) are logged, counted in
//! `hybridb_replicate_retries_total`, and retried with exponential backoff, never skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::source::{CollectionSpec, EventKind, FeedEvent, HttpSource};
use crate::target::{Batch, Cursor, Op, Row, Target};

/// Settings of a [`Sink`].
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The cursor's name in the target (several sinks may feed one target).
    pub name: String,
    /// Replicate only these collections (all when `None`).
    pub collections: Option<Vec<String>>,
    /// Most change events per batch.
    pub batch_events: usize,
    /// Entities per page of the initial copy.
    pub copy_page: usize,
    /// Wait between polls of an idle feed.
    pub poll_interval: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Drop what the target holds and copy a fresh snapshot (once, at start).
    pub resync: bool,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            name: "default".into(),
            collections: None,
            batch_events: 5000,
            copy_page: 2000,
            poll_interval: Duration::from_millis(50),
            max_backoff: Duration::from_secs(10),
            resync: false,
        }
    }
}

/// What the sink reports as it goes (for progress bars, logs and benchmarks).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// The initial copy started at this snapshot.
    CopyStarted {
        /// Snapshot sequence number.
        snapshot_seq: u64,
    },
    /// Entities of one collection copied so far.
    Copying {
        /// Collection.
        collection: String,
        /// Copied so far (in this run).
        done: u64,
        /// Entities in the collection, when known.
        total: Option<u64>,
    },
    /// The initial copy is done (indexes built); the feed follows.
    CopyDone {
        /// Snapshot sequence number.
        snapshot_seq: u64,
        /// Entities copied in this run.
        rows: u64,
        /// Seconds spent loading rows.
        load_secs: f64,
        /// Seconds spent building the vector and payload indexes.
        index_secs: f64,
    },
    /// A batch of change events was committed in the target.
    Applied {
        /// The cursor after it.
        applied: u64,
        /// Events in the batch.
        events: usize,
        /// Per event: milliseconds from its commit in the source to the target's commit.
        lags_ms: Vec<u64>,
    },
    /// The feed caught up with the source (reported once per idle spell).
    Idle {
        /// The cursor.
        applied: u64,
    },
    /// An error that will be retried after `wait`.
    Retrying {
        /// The error.
        error: String,
        /// Consecutive failures.
        attempt: u32,
        /// Wait before the next try.
        wait: Duration,
    },
}

/// A progress observer.
pub type Observer = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Tails a hybridb server's change feed into a [`Target`].
pub struct Sink<T: Target> {
    source: HttpSource,
    target: T,
    config: SinkConfig,
    observer: Option<Observer>,
    stop: watch::Receiver<bool>,
    /// Collections in the target and their dimensions.
    known: HashMap<String, u32>,
}

impl<T: Target> std::fmt::Debug for Sink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("source", &self.source)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs a blocking source call off the async workers.
async fn blocking<R: Send + 'static>(
    source: &HttpSource,
    f: impl FnOnce(&HttpSource) -> Result<R> + Send + 'static,
) -> Result<R> {
    let s = source.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .unwrap_or_else(|e| {
            Err(Error::SourceUnreachable {
                url: String::new(),
                reason: format!("source call failed: {e}"),
            })
        })
}

impl<T: Target> Sink<T> {
    /// A sink from `source` into `target`; it stops when `stop` turns true.
    pub fn new(
        source: HttpSource,
        target: T,
        config: SinkConfig,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Sink {
            source,
            target,
            config,
            observer: None,
            stop,
            known: HashMap::new(),
        }
    }

    /// Reports progress to `observer`.
    pub fn observe(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    fn report(&self, p: Progress) {
        if let Some(o) = &self.observer {
            o(&p);
        }
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn wanted(&self, collection: &str) -> bool {
        self.config
            .collections
            .as_ref()
            .is_none_or(|c| c.iter().any(|n| n == collection))
    }

    /// Sleeps, returning early (with [`Error::Stopped`]) when asked to stop.
    async fn sleep(&mut self, d: Duration) -> Result<()> {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = stop.wait_for(|s| *s) => Err(Error::Stopped),
        }
    }

    /// Runs until stopped (`Ok`) or a error that will not pass by waiting (`Err`). Transient
    /// errors are retried with backoff.
    pub async fn run(mut self) -> Result<()> {
        let mut attempt: u32 = 0;
        let mut resync = self.config.resync;
        loop {
            if self.stopped() {
                return Ok(());
            }
            let result = self.run_once(&mut resync, &mut attempt).await;
            match result {
                Ok(()) | Err(Error::Stopped) => return Ok(()),
                Err(e) if e.is_transient() => {
                    attempt += 1;
                    let wait = Duration::from_millis(100u64 << attempt.min(10).saturating_sub(1))
                        .min(self.config.max_backoff);
                    let side = match e {
                        Error::Target(_) => "target",
                        _ => "source",
                    };
                    metrics::counter!("hybridb_replicate_retries_total", "side" => side)
                        .increment(1);
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "replication paused; retrying");
                    self.report(Progress::Retrying {
                        error: e.to_string(),
                        attempt,
                        wait,
                    });
                    if self.sleep(wait).await.is_err() {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn run_once(&mut self, resync: &mut bool, attempt: &mut u32) -> Result<()> {
        self.target.connect().await?;
        if *resync {
            self.target.reset(&self.config.name).await?;
            *resync = false;
        }
        self.known = self.target.collections().await?.into_iter().collect();
        let mut cursor = self.target.cursor(&self.config.name).await?;
        if cursor.applied.is_none() {
            self.initial_copy(&mut cursor).await?;
        }
        *attempt = 0;
        self.tail(cursor).await
    }

    async fn apply(&mut self, batch: &Batch, cursor: &Cursor) -> Result<()> {
        let name = self.config.name.clone();
        self.target.apply(&name, batch, cursor).await?;
        for op in &batch.ops {
            match op {
                Op::CreateCollection { spec, .. } => {
                    self.known.insert(spec.name.clone(), spec.dim);
                }
                Op::DropCollection(c) => {
                    self.known.remove(c);
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn initial_copy(&mut self, cursor: &mut Cursor) -> Result<()> {
        let snapshot = match cursor.snapshot_seq {
            Some(s) => s,
            None => blocking(&self.source, |s| s.last_seq()).await?,
        };
        cursor.snapshot_seq = Some(snapshot);
        self.report(Progress::CopyStarted {
            snapshot_seq: snapshot,
        });
        let started = Instant::now();
        let mut names = blocking(&self.source, |s| s.collections()).await?;
        names.sort();
        names.retain(|n| self.wanted(n) && !cursor.copied.contains(n));
        let mut rows_copied = 0u64;
        for name in names {
            let n = name.clone();
            let Some(spec) = blocking(&self.source, move |s| s.collection(&n)).await? else {
                continue; // dropped since: its drop event follows the snapshot
            };
            let batch = Batch {
                ops: vec![Op::CreateCollection {
                    spec: spec.clone(),
                    indexes: false,
                }],
            };
            self.apply(&batch, cursor).await?;
            rows_copied += self.copy_collection(&spec, cursor).await?;
            cursor.copied.push(name);
            cursor.copy_after = None;
            self.apply(&Batch::default(), cursor).await?;
        }
        let load_secs = started.elapsed().as_secs_f64();
        let index_started = Instant::now();
        self.target.finish_copy().await?;
        cursor.applied = Some(snapshot);
        cursor.copied.clear();
        self.apply(&Batch::default(), cursor).await?;
        self.report(Progress::CopyDone {
            snapshot_seq: snapshot,
            rows: rows_copied,
            load_secs,
            index_secs: index_started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// Copies one collection page by page; a reader thread stays at most two pages ahead
    /// (bounded memory; a slow target slows the reads).
    async fn copy_collection(&mut self, spec: &CollectionSpec, cursor: &mut Cursor) -> Result<u64> {
        let start = match &cursor.copy_after {
            Some((c, after)) if *c == spec.name => Some(*after),
            _ => None,
        };
        let (tx, mut rx) = mpsc::channel::<Result<Vec<Row>>>(2);
        let source = self.source.clone();
        let name = spec.name.clone();
        let dim = spec.dim as usize;
        let page = self.config.copy_page;
        let reader = tokio::task::spawn_blocking(move || {
            let mut after = start;
            loop {
                let result = source.scroll(&name, after, page);
                let (rows, next) = match result {
                    Ok(Some(p)) => {
                        let rows: Vec<Row> = p
                            .entities
                            .into_iter()
                            .filter_map(|e| to_row(e, dim))
                            .collect();
                        (Ok(rows), p.next)
                    }
                    Ok(None) => (Ok(Vec::new()), None),
                    Err(e) => (Err(e), None),
                };
                let failed = rows.is_err();
                if tx.blocking_send(rows).is_err() || failed || next.is_none() {
                    return;
                }
                after = next;
            }
        });
        let mut done = 0u64;
        while let Some(rows) = rx.recv().await {
            let rows = rows?;
            if self.stopped() {
                return Err(Error::Stopped);
            }
            let Some(last) = rows.last().map(|r| r.id) else {
                continue;
            };
            let n = rows.len() as u64;
            cursor.copy_after = Some((spec.name.clone(), last));
            let batch = Batch {
                ops: vec![Op::Load {
                    collection: spec.name.clone(),
                    rows,
                }],
            };
            self.apply(&batch, cursor).await?;
            done += n;
            metrics::counter!("hybridb_replicate_copied_total").increment(n);
            self.report(Progress::Copying {
                collection: spec.name.clone(),
                done,
                total: spec.count,
            });
        }
        let _ = reader.await;
        Ok(done)
    }

    async fn tail(&mut self, mut cursor: Cursor) -> Result<()> {
        let mut applied = cursor.applied.unwrap_or(0);
        let mut last_head_check = Instant::now() - Duration::from_secs(10);
        let mut idle = false;
        loop {
            if self.stopped() {
                return Err(Error::Stopped);
            }
            let limit = self.config.batch_events;
            let since = applied;
            let events = blocking(&self.source, move |s| s.changes(since, limit)).await?;
            if last_head_check.elapsed() >= Duration::from_secs(1) {
                last_head_check = Instant::now();
                if let Ok(head) = blocking(&self.source, |s| s.last_seq()).await {
                    metrics::gauge!("hybridb_replicate_lag_events")
                        .set(head.saturating_sub(applied) as f64);
                }
            }
            if events.is_empty() {
                metrics::gauge!("hybridb_replicate_lag_seconds").set(0.0);
                if !idle {
                    idle = true;
                    self.report(Progress::Idle { applied });
                }
                self.sleep(self.config.poll_interval).await?;
                continue;
            }
            idle = false;
            for segment in segments(&events) {
                let batch = self.build_batch(segment).await?;
                let last = segment.last().map_or(applied, |e| e.seq);
                cursor.applied = Some(last);
                self.apply(&batch, &cursor).await?;
                applied = last;
                let now = now_ms();
                let lags: Vec<u64> = segment
                    .iter()
                    .map(|e| now.saturating_sub(e.timestamp))
                    .collect();
                let oldest = lags.iter().copied().max().unwrap_or(0);
                metrics::counter!("hybridb_replicate_events_total").increment(segment.len() as u64);
                metrics::gauge!("hybridb_replicate_applied_seq").set(applied as f64);
                metrics::gauge!("hybridb_replicate_lag_seconds").set(oldest as f64 / 1000.0);
                let histogram = metrics::histogram!("hybridb_replicate_event_lag_seconds");
                for l in &lags {
                    histogram.record(*l as f64 / 1000.0);
                }
                self.report(Progress::Applied {
                    applied,
                    events: segment.len(),
                    lags_ms: lags,
                });
            }
        }
    }

    /// The target operations for a run of events: one collection event alone, or entity
    /// events (deletes first, then the current state of every entity whose last event is
    /// not a delete).
    async fn build_batch(&mut self, segment: &[FeedEvent]) -> Result<Batch> {
        let mut ops = Vec::new();
        if let [e] = segment
            && e.id.is_none()
        {
            if !self.wanted(&e.collection) {
                return Ok(Batch::default());
            }
            match e.kind {
                EventKind::CollectionDropped => {
                    ops.push(Op::DropCollection(e.collection.clone()));
                }
                _ => {
                    let n = e.collection.clone();
                    // Absent now: dropped since, and its drop event follows.
                    if let Some(spec) = blocking(&self.source, move |s| s.collection(&n)).await? {
                        ops.push(Op::CreateCollection {
                            spec,
                            indexes: true,
                        });
                    }
                }
            }
            return Ok(Batch { ops });
        }
        // collection → id → (deleted in this segment, last event is a delete)
        let mut per: BTreeMap<&str, BTreeMap<Uuid, (bool, bool)>> = BTreeMap::new();
        for e in segment {
            let Some(id) = e.id else { continue };
            if !self.wanted(&e.collection) {
                continue;
            }
            let deleted = e.kind == EventKind::Deleted;
            let entry = per
                .entry(e.collection.as_str())
                .or_default()
                .entry(id)
                .or_insert((false, false));
            entry.0 |= deleted;
            entry.1 = deleted;
        }
        for (collection, ids) in per {
            if !self.known.contains_key(collection) {
                // A collection the target lacks (e.g. newly selected): create it first.
                let n = collection.to_string();
                match blocking(&self.source, move |s| s.collection(&n)).await? {
                    Some(spec) => {
                        self.known.insert(spec.name.clone(), spec.dim);
                        ops.push(Op::CreateCollection {
                            spec,
                            indexes: true,
                        });
                    }
                    None => continue, // dropped since: its drop event follows
                }
            }
            let dim = self.known.get(collection).copied().unwrap_or(0) as usize;
            let deletes: Vec<Uuid> = ids
                .iter()
                .filter(|(_, (any, _))| *any)
                .map(|(id, _)| *id)
                .collect();
            if !deletes.is_empty() {
                ops.push(Op::Delete {
                    collection: collection.to_string(),
                    ids: deletes,
                });
            }
            let live: Vec<Uuid> = ids
                .iter()
                .filter(|(_, (_, last_deleted))| !*last_deleted)
                .map(|(id, _)| *id)
                .collect();
            if live.is_empty() {
                continue;
            }
            let n = collection.to_string();
            let states = blocking(&self.source, move |s| s.get_many(&n, &live)).await?;
            let Some(states) = states else { continue };
            let rows: Vec<Row> = states
                .into_iter()
                .flatten()
                .filter_map(|e| to_row(e, dim))
                .collect();
            if !rows.is_empty() {
                ops.push(Op::Upsert {
                    collection: collection.to_string(),
                    rows,
                });
            }
        }
        Ok(Batch { ops })
    }
}

/// A source state as a target row; `None` when its vector does not have the table's
/// dimension (the collection was re-created since, and its drop event is still ahead).
fn to_row(e: crate::source::EntityState, dim: usize) -> Option<Row> {
    let vector = e.vector?;
    if vector.len() != dim {
        return None;
    }
    Some(Row {
        id: e.id,
        version: e.version,
        updated_at: e.updated_at,
        payload: e.payload,
        vector,
        vectors: e.vectors.filter(|v| !v.is_empty()),
    })
}

/// Splits events into runs: each collection event alone, entity events together.
fn segments(events: &[FeedEvent]) -> Vec<&[FeedEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in events.iter().enumerate() {
        if e.id.is_none() {
            if start < i {
                out.push(&events[start..i]);
            }
            out.push(&events[i..=i]);
            start = i + 1;
        }
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, id: Option<u128>, kind: EventKind) -> FeedEvent {
        FeedEvent {
            seq,
            collection: "c".into(),
            id: id.map(Uuid::from_u128),
            kind,
            version: 1,
            timestamp: 0,
        }
    }

    #[test]
    fn collection_events_cut_segments() {
        let events = vec![
            ev(1, Some(1), EventKind::EntityCreated),
            ev(2, None, EventKind::CollectionDropped),
            ev(3, None, EventKind::CollectionCreated),
            ev(4, Some(1), EventKind::EntityCreated),
            ev(5, Some(2), EventKind::Deleted),
        ];
        let segs = segments(&events);
        let lens: Vec<usize> = segs.iter().map(|s| s.len()).collect();
        assert_eq!(lens, vec![1, 1, 1, 2]);
        assert_eq!(segs[3][0].seq, 4);
    }
}
