//! `/metrics`: a small hand-written Prometheus text exposition.
//!
//! Everything metric-related lives here so that the planned move to the `metrics` crate facade
//! replaces one module: [`Metrics::record`] is called once per request by the outermost
//! middleware, and [`render`] writes the counters plus the database's own numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hybridb::Database;

/// Request counters kept by the server.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    /// (route, method, status) -> count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (route, method) -> (seconds summed, count).
    durations: Mutex<BTreeMap<(String, String), (f64, u64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            requests: Mutex::default(),
            durations: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts one finished request.
    pub(crate) fn record(&self, route: &str, method: &str, status: StatusCode, took: Duration) {
        {
            let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            *r.entry((route.to_string(), method.to_string(), status.as_u16()))
                .or_default() += 1;
        }
        let mut d = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let e = d
            .entry((route.to_string(), method.to_string()))
            .or_default();
        e.0 += took.as_secs_f64();
        e.1 += 1;
    }

    /// Time since the server started.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition: request counters and durations, writer counters, the last sequence number
/// and per-collection entity counts. Reads redb: call it off the async workers.
pub(crate) fn render(metrics: &Metrics, db: &Database) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP hybridb_http_requests_total HTTP requests by route, method and status.\n\
         # TYPE hybridb_http_requests_total counter"
    );
    for ((route, method, status), n) in metrics
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "hybridb_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
            label(route),
            label(method)
        );
    }
    let _ = writeln!(
        out,
        "# HELP hybridb_http_request_duration_seconds Time spent handling requests.\n\
         # TYPE hybridb_http_request_duration_seconds summary"
    );
    for ((route, method), (sum, count)) in metrics
        .durations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let labels = format!("route=\"{}\",method=\"{}\"", label(route), label(method));
        let _ = writeln!(
            out,
            "hybridb_http_request_duration_seconds_sum{{{labels}}} {sum}\n\
             hybridb_http_request_duration_seconds_count{{{labels}}} {count}"
        );
    }
    let w = db.writer_stats();
    for (name, help, v) in [
        ("groups", "Group commits of the writer.", w.groups),
        ("commands", "Write calls committed.", w.commands),
        ("items", "Entities written or deleted.", w.items),
        ("failed_commits", "Failed commits.", w.failed_commits),
    ] {
        let _ = writeln!(
            out,
            "# HELP hybridb_writer_{name}_total {help}\n# TYPE hybridb_writer_{name}_total counter\n\
             hybridb_writer_{name}_total {v}"
        );
    }
    if let Ok(seq) = db.last_seq() {
        let _ = writeln!(
            out,
            "# HELP hybridb_last_seq Sequence number of the last committed change.\n\
             # TYPE hybridb_last_seq gauge\nhybridb_last_seq {seq}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP hybridb_collection_entities Entities stored per collection.\n\
         # TYPE hybridb_collection_entities gauge"
    );
    let mut indexed = String::new();
    let mut memory = String::new();
    for info in db.collections() {
        let Ok(c) = db.collection(&info.name) else {
            continue;
        };
        let name = label(&info.name);
        if let Ok(n) = c.count() {
            let _ = writeln!(
                out,
                "hybridb_collection_entities{{collection=\"{name}\"}} {n}"
            );
        }
        let _ = writeln!(
            indexed,
            "hybridb_collection_indexed{{collection=\"{name}\"}} {}",
            c.indexed_count()
        );
        let _ = writeln!(
            memory,
            "hybridb_index_memory_bytes{{collection=\"{name}\"}} {}",
            c.index_memory_bytes()
        );
    }
    let _ = write!(
        out,
        "# HELP hybridb_collection_indexed Entities in the vector index per collection.\n\
         # TYPE hybridb_collection_indexed gauge\n{indexed}\
         # HELP hybridb_index_memory_bytes Bytes held by the in-memory index per collection.\n\
         # TYPE hybridb_index_memory_bytes gauge\n{memory}"
    );
    let _ = writeln!(
        out,
        "# HELP hybridb_uptime_seconds Seconds since the server started.\n\
         # TYPE hybridb_uptime_seconds gauge\nhybridb_uptime_seconds {}",
        metrics.uptime().as_secs()
    );
    out
}
