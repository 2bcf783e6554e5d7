//! A Prometheus text exporter for the metrics hybridb records (feature `prometheus`).
//!
//! hybridb records through the [`metrics`](https://docs.rs/metrics) facade, so any recorder
//! works; this one is ready-made: [`Prometheus::install`] installs a process-wide recorder (once;
//! later calls share it) and [`Prometheus::render`] returns the text exposition, after setting
//! the state gauges of the databases it is given. `docs/metrics.md` lists every metric.
//!
//! # Example
//! ```
//! # fn main() -> hybridb::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! use hybridb::{CollectionConfig, Database, Metric};
//! use hybridb::prometheus::Prometheus;
//!
//! let exporter = Prometheus::install()?; // before the first operation
//! let db = Database::open(dir.path().join("m.redb"))?;
//! let docs = db.create_collection("docs", CollectionConfig::new(2, Metric::L2))?;
//! docs.search(&[0.0, 0.0], 1)?;
//! let text = exporter.render(&[&db]);
//! assert!(text.contains("hybridb_operations_total{collection=\"docs\",op=\"search\""));
//! # Ok(()) }
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::handle::Database;
use crate::model::error::{Error, Result};

/// Latency buckets, in seconds: 10 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Size buckets (commands or items per write group).
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0,
];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

static INSTALLED: OnceLock<std::result::Result<PrometheusHandle, String>> = OnceLock::new();

/// The process-wide Prometheus recorder (a cheap handle).
#[derive(Clone, Debug)]
pub struct Prometheus {
    handle: PrometheusHandle,
}

impl Prometheus {
    /// Installs the process-wide recorder, or returns the one an earlier call installed.
    /// Fails if another `metrics` recorder was installed first. Install it before the
    /// operations you want counted: what ran before is not recorded.
    pub fn install() -> Result<Prometheus> {
        INSTALLED
            .get_or_init(|| {
                let handle = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Prefix("hybridb_writer_group_".into()),
                            SIZE_BUCKETS,
                        )
                    })
                    .map_err(|e| e.to_string())?
                    .install_recorder()
                    .map_err(|e| e.to_string())?;
                describe();
                let upkeep = handle.clone();
                std::thread::Builder::new()
                    .name("hybridb-metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(UPKEEP);
                            upkeep.run_upkeep();
                        }
                    })
                    .map_err(|e| e.to_string())?;
                Ok(handle)
            })
            .clone()
            .map(|handle| Prometheus { handle })
            .map_err(|reason| Error::InvalidConfig(format!("metrics recorder: {reason}")))
    }

    /// The text exposition format, after setting the state gauges (index sizes, applied lag,
    /// checkpoint age, cache sizes) of `databases`.
    pub fn render(&self, databases: &[&Database]) -> String {
        for db in databases {
            db.record_metrics();
        }
        self.handle.render()
    }
}

/// The HELP texts.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        crate::observe::OPERATIONS,
        "Public operations by collection, operation and outcome (ok, invalid, error)."
    );
    describe_histogram!(
        crate::observe::OPERATION_SECONDS,
        Unit::Seconds,
        "Latency of public operations by collection and operation."
    );
    describe_histogram!(
        "hybridb_writer_group_commands",
        "Commands (caller writes) committed together in one write group."
    );
    describe_histogram!(
        "hybridb_writer_group_items",
        "Entities written by one write group."
    );
    describe_histogram!(
        "hybridb_commit_duration_seconds",
        Unit::Seconds,
        "Duration of a write group's redb commit (including its fsync)."
    );
    describe_histogram!(
        "hybridb_index_apply_duration_seconds",
        Unit::Seconds,
        "Duration of applying a committed write group to the in-memory indexes."
    );
    describe_counter!(
        "hybridb_commits_total",
        "Write-group commits by outcome (ok, failed)."
    );
    describe_gauge!(
        "hybridb_writer_queue_depth",
        "Commands waiting in the writer's queue when the last group started."
    );
    describe_gauge!(
        "hybridb_index_entities",
        "Entities the collection's index can return."
    );
    describe_gauge!(
        "hybridb_vector_entities",
        "Entities that have the named vector (label `vector`), in its in-memory index."
    );
    describe_gauge!(
        "hybridb_index_memory_bytes",
        Unit::Bytes,
        "Memory held by the collection's in-memory index."
    );
    describe_gauge!(
        "hybridb_index_unlinked",
        "Changes not yet built into the collection's HNSW graph (a reopen's backlog, linked in \
         the background)."
    );
    describe_gauge!(
        "hybridb_checkpoint_age_seconds",
        Unit::Seconds,
        "Time since the collection's HNSW checkpoint was written."
    );
    describe_gauge!(
        "hybridb_applied_lag",
        "Change events committed but not yet applied to the in-memory indexes."
    );
    describe_gauge!(
        "hybridb_last_seq",
        "The last committed change sequence number."
    );
    describe_counter!(
        "hybridb_cache_lookups_total",
        "Cache lookups by level (records, vectors, results) and outcome (hit, miss)."
    );
    describe_gauge!(
        "hybridb_cache_bytes",
        Unit::Bytes,
        "Estimated bytes held by each cache level."
    );
    describe_gauge!("hybridb_cache_entries", "Entries held by each cache level.");
    describe_counter!(
        "hybridb_background_errors_total",
        "Failures of background work (checkpoints) that no caller saw."
    );
}
