//! The Qdrant-compatible layer's overhead against the native HTTP API, on one server and one
//! database over loopback: an upsert of N vectors in batches, then single-client query QPS,
//! each through both APIs into its own collection. Every loop is bounded in count or time.
//!
//! The two APIs take turns (one batch each, then rounds of queries each), so the load of a
//! shared machine falls on both alike and their ratio means something even when it is noisy;
//! queries go to one collection through the native `query` (the same API), the native
//! `search` and Qdrant's `points/query` routes, so they search the same graph.
//!
//! ```sh
//! cargo run --release -p hybridb-server --example qdrant_load -- [N] [DIM] [BATCH] [SECONDS]
//! ```
//! Defaults: 100000 vectors of dimension 384 (cosine, HNSW defaults) in batches of 256, 10 s
//! of queries (k = 10) per API. Prints one JSON line.

use std::time::{Duration, Instant};

use hybridb::{CollectionConfig, Database, EntityId, Metric};
use serde_json::json;

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    // A small xorshift: deterministic, no extra dependency.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn send(agent: &ureq::Agent, method: &str, url: &str, body: &serde_json::Value) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .expect("request");
    let mut r = agent.run(req).expect("http");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    assert!(status < 300, "{method} {url}: {status} {text}");
}

/// Seconds each of two writers spends upserting `n` vectors in batches of `batch`, taking
/// turns batch by batch.
fn upsert_both(n: u64, batch: u64, puts: [&dyn Fn(std::ops::Range<u64>); 2]) -> [f64; 2] {
    let mut spent = [0.0; 2];
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        for (put, s) in puts.iter().zip(spent.iter_mut()) {
            let t = Instant::now();
            put(start..end);
            *s += t.elapsed().as_secs_f64();
        }
        start = end;
    }
    spent
}

/// Queries per second of each of several clients, taking turns in rounds of `ROUND` queries
/// for `secs` in all.
fn qps_interleaved(secs: f64, queries: &[&dyn Fn(u64)]) -> Vec<f64> {
    const ROUND: u64 = 50;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut spent = vec![0.0; queries.len()];
    let mut done = vec![0u64; queries.len()];
    while Instant::now() < deadline {
        for ((query, s), d) in queries.iter().zip(spent.iter_mut()).zip(done.iter_mut()) {
            let t = Instant::now();
            for _ in 0..ROUND {
                query(*d);
                *d += 1;
            }
            *s += t.elapsed().as_secs_f64();
        }
    }
    done.iter()
        .zip(&spent)
        .map(|(d, s)| *d as f64 / s)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (n, dim, batch, secs) = (
        arg(0, 100_000.0) as u64,
        arg(1, 384.0) as usize,
        arg(2, 256.0) as u64,
        arg(3, 10.0),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("qload.redb")).expect("open");
    for name in ["native", "qdrant"] {
        db.create_collection(name, CollectionConfig::new(dim as u32, Metric::Cosine))
            .expect("create");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bind = || {
        rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind")
    };
    let (main, qdrant) = (bind(), bind());
    let (addr, qaddr) = (
        main.local_addr().expect("addr"),
        qdrant.local_addr().expect("addr"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(hybridb_server::serve_with_qdrant(
        db.clone(),
        hybridb_server::ServerConfig::default(),
        main,
        qdrant,
        async move {
            let _ = stopped.await;
        },
    ));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();

    let native_url = format!("http://{addr}/collections/native/entities");
    let native_put = |ids: std::ops::Range<u64>| {
        let entities: Vec<_> = ids
            .map(|i| json!({"id": EntityId::from_u128(i.into()), "payload": {"i": i}, "vector": vector(i, dim)}))
            .collect();
        send(&agent, "PUT", &native_url, &json!({ "entities": entities }));
    };
    let qdrant_url = format!("http://{qaddr}/collections/qdrant/points?wait=true");
    let qdrant_put = |ids: std::ops::Range<u64>| {
        let points: Vec<_> = ids
            .map(|i| json!({"id": i, "payload": {"i": i}, "vector": vector(i, dim)}))
            .collect();
        send(&agent, "PUT", &qdrant_url, &json!({ "points": points }));
    };
    let [native_upsert, qdrant_upsert] = upsert_both(n, batch, [&native_put, &qdrant_put]);

    let search_url = format!("http://{addr}/collections/native/search");
    let native_search = |i| {
        let body = json!({"vector": vector(1_000_000 + i, dim), "k": 10});
        send(&agent, "POST", &search_url, &body);
    };
    let native_query_url = format!("http://{addr}/collections/native/query");
    let native_query = |i| {
        let body = json!({"query": {"nearest": vector(1_000_000 + i, dim)}, "limit": 10});
        send(&agent, "POST", &native_query_url, &body);
    };
    // Every query API reads the same collection (the native one; its default vector is the
    // Qdrant API's unnamed vector), so the graph searched is the same and only the layers
    // differ.
    let query_url = format!("http://{qaddr}/collections/native/points/query");
    let qdrant_query = |i| {
        let body = json!({"query": vector(1_000_000 + i, dim), "limit": 10});
        send(&agent, "POST", &query_url, &body);
    };
    let rates = qps_interleaved(3.0 * secs, &[&native_search, &native_query, &qdrant_query]);
    let (native_search_qps, native_qps, qdrant_qps) = (rates[0], rates[1], rates[2]);
    let _ = stop.send(());
    let _ = rt.block_on(server);
    let round = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({
            "n": n, "dim": dim, "batch": batch, "query_seconds": secs,
            "native_upsert_s": round(native_upsert),
            "qdrant_upsert_s": round(qdrant_upsert),
            "native_upsert_points_per_s": (n as f64 / native_upsert).round(),
            "qdrant_upsert_points_per_s": (n as f64 / qdrant_upsert).round(),
            "upsert_overhead_ratio": round(qdrant_upsert / native_upsert),
            "native_search_qps": native_search_qps.round(),
            "native_query_qps": native_qps.round(),
            "qdrant_query_qps": qdrant_qps.round(),
            "query_overhead_ratio": round(native_qps / qdrant_qps),
            "query_overhead_vs_search_ratio": round(native_search_qps / qdrant_qps),
        })
    );
}
