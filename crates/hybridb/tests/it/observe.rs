//! Metrics move as operations run (through the Prometheus exporter) and every public
//! operation opens a span naming its collection.

use std::sync::{Arc, Mutex};

use hybridb::prometheus::Prometheus;
use hybridb::{CollectionConfig, Database, Entity, EntityId, SearchRequest};
use serde_json::json;

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_move_as_operations_run() {
    let exporter = Prometheus::install().expect("install");
    assert!(
        Prometheus::install().is_ok(),
        "a second install shares the first"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("m.redb")).unwrap();
    // A name no other test uses: the recorder is process-wide.
    let name = "metrics_probe";
    let c = db
        .create_collection(name, CollectionConfig::new(2, hybridb::Metric::L2))
        .unwrap();
    let ops = |text: &str, op: &str, outcome: &str| {
        sample(
            text,
            "hybridb_operations_total",
            &[("collection", name), ("op", op), ("outcome", outcome)],
        )
        .unwrap_or(0.0)
    };
    let before = exporter.render(&[&db]);
    let ids: Vec<EntityId> = (0..10)
        .map(|i| EntityId::from_key(&format!("m{i}")))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        c.upsert(Entity::new(*id, json!({"i": i}), vec![i as f32, 0.0]))
            .unwrap();
    }
    for id in &ids {
        c.get(*id).unwrap();
        c.get(*id).unwrap(); // cached on the second read
        c.get(*id).unwrap(); // a cache hit
    }
    let req = SearchRequest::new(vec![1.0, 0.0], 3);
    for _ in 0..3 {
        c.search_with(&req).unwrap(); // the third is a result-cache hit
    }
    assert!(c.search(&[1.0, 0.0, 0.0], 3).is_err(), "wrong dimension");
    let after = exporter.render(&[&db]);

    assert_eq!(
        ops(&after, "upsert", "ok") - ops(&before, "upsert", "ok"),
        10.0
    );
    assert_eq!(ops(&after, "get", "ok") - ops(&before, "get", "ok"), 30.0);
    assert_eq!(
        ops(&after, "search", "ok") - ops(&before, "search", "ok"),
        3.0
    );
    assert_eq!(
        ops(&after, "search", "invalid") - ops(&before, "search", "invalid"),
        1.0
    );
    let latency = |t: &str| {
        sample(
            t,
            "hybridb_operation_duration_seconds_count",
            &[("collection", name), ("op", "get")],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(latency(&after) - latency(&before), 30.0);
    assert_eq!(
        sample(&after, "hybridb_index_entities", &[("collection", name)]),
        Some(10.0)
    );
    assert!(
        sample(
            &after,
            "hybridb_index_memory_bytes",
            &[("collection", name)]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample(&after, "hybridb_index_unlinked", &[("collection", name)]),
        Some(0.0)
    );
    // Process-wide series: other tests add to them too, so only growth is certain.
    for (metric, labels) in [
        ("hybridb_commits_total", vec![("outcome", "ok")]),
        ("hybridb_commit_duration_seconds_count", vec![]),
        ("hybridb_writer_group_commands_count", vec![]),
        (
            "hybridb_cache_lookups_total",
            vec![("level", "records"), ("outcome", "hit")],
        ),
        (
            "hybridb_cache_lookups_total",
            vec![("level", "results"), ("outcome", "hit")],
        ),
    ] {
        let b = sample(&before, metric, &labels).unwrap_or(0.0);
        let a = sample(&after, metric, &labels).unwrap_or(0.0);
        assert!(a > b, "{metric} {labels:?} moved: {b} -> {a}");
    }
    for gauge in [
        "hybridb_applied_lag",
        "hybridb_last_seq",
        "hybridb_cache_bytes",
    ] {
        assert!(sample(&after, gauge, &[]).is_some(), "{gauge} exported");
    }
    assert!(after.contains("# HELP hybridb_operations_total"));
}

/// A span's name and its fields as (name, value) text.
type SpanRecord = (String, Vec<(String, String)>);

/// Records every span's name and fields.
#[derive(Default, Clone)]
struct Spans(Arc<Mutex<Vec<SpanRecord>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
}

impl tracing::Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut spans = self.0.lock().unwrap();
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        spans.push((span.metadata().name().to_string(), fields));
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.0.lock().unwrap();
        let i = id.into_u64() as usize - 1;
        values.record(&mut Fields(&mut spans[i].1));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_public_operation_opens_a_span() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("s.redb")).unwrap();
    let spans = Spans::default();
    let ops_of = |spans: &Spans| -> Vec<String> {
        let spans = spans.0.lock().unwrap();
        spans
            .iter()
            .filter(|(name, _)| name == "hybridb")
            .filter_map(|(_, f)| {
                f.iter()
                    .find(|(n, _)| n == "op")
                    .map(|(_, v)| v.trim_matches('"').to_string())
            })
            .collect()
    };
    // Tests of this binary run in parallel, some without a subscriber, and tracing's
    // per-callsite interest cache is global: another test can re-cache the span's callsite as
    // "never" while this one runs (seen once in CI after a rebuild). So the operations run
    // again, in a fresh collection, up to three times; a span that is never opened still fails.
    let mut name = String::new();
    for attempt in 0..3 {
        spans.0.lock().unwrap().clear();
        name = format!("traced{attempt}");
        tracing::subscriber::with_default(spans.clone(), || {
            // Recompute the callsites' interest with this subscriber in.
            tracing::callsite::rebuild_interest_cache();
            let c = db
                .create_collection(&name, CollectionConfig::new(2, hybridb::Metric::L2))
                .unwrap();
            let id = EntityId::from_key("t");
            c.upsert_batch(vec![Entity::new(id, json!({}), vec![0.0, 1.0])])
                .unwrap();
            c.get(id).unwrap();
            c.search(&[0.0, 1.0], 1).unwrap();
            c.delete(id).unwrap();
            db.sync().unwrap();
        });
        if ops_of(&spans).len() == 6 {
            break;
        }
    }
    let ops = ops_of(&spans);
    let spans = spans.0.lock().unwrap();
    let field = |fields: &[(String, String)], k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim_matches('"').to_string())
    };
    assert_eq!(
        ops,
        [
            "create_collection",
            "upsert_batch",
            "get",
            "search",
            "delete",
            "sync"
        ]
    );
    for (_, fields) in spans.iter().filter(|(n, _)| n == "hybridb") {
        assert!(
            field(fields, "micros").is_some(),
            "duration recorded: {fields:?}"
        );
        assert_eq!(field(fields, "outcome").as_deref(), Some("ok"));
    }
    let batch = spans
        .iter()
        .find(|(_, f)| field(f, "op").as_deref() == Some("upsert_batch"))
        .unwrap();
    assert_eq!(
        field(&batch.1, "collection").as_deref(),
        Some(name.as_str())
    );
    assert_eq!(field(&batch.1, "items").as_deref(), Some("1"));
}
