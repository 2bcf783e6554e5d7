//! A bounded load run on loopback: search QPS and upsert throughput through HTTP against the
//! same calls on the library, as an overhead ratio. Every loop is bounded in time.
//!
//! ```sh
//! cargo run --release -p hybridb-server --example load -- [N] [DIM] [SECONDS] [CLIENTS] [MIXED] [CACHE_MB]
//! ```
//! Defaults: 20000 entities of dimension 64, 5 s per phase, 4 clients, the library's redb cache
//! (256 MiB). With MIXED > 0, a last phase of MIXED seconds mixes searches, overwrites, gets and
//! deletes over a fixed id range (so the entities do not grow) through HTTP and prints the
//! process's resident memory every tenth of it. The file still grows (every write adds a change
//! event), and redb's page cache fills up to CACHE_MB with it, so look for a plateau: with a
//! small CACHE_MB, growth past the cache would be a leak.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric, SearchRequest};
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

/// Runs `work(client, i)` from `clients` threads for `secs`; returns operations per second.
fn timed(clients: usize, secs: f64, work: impl Fn(usize, u64) + Sync) -> f64 {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for c in 0..clients {
            let (done, work) = (&done, &work);
            s.spawn(move || {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    work(c, i);
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (n, dim, secs, clients) = (
        arg(0, 20_000.0) as u64,
        arg(1, 64.0) as usize,
        arg(2, 5.0),
        arg(3, 4.0) as usize,
    );
    let mixed = arg(4, 0.0);
    let cache_mb = arg(5, 256.0) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::builder()
        .cache_size(cache_mb << 20)
        .open(dir.path().join("load.redb"))
        .expect("open");
    let coll = db
        .create_collection("load", CollectionConfig::new(dim as u32, Metric::Cosine))
        .expect("create");
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                Entity::new(
                    EntityId::from_u128(i.into()),
                    json!({"i": i}),
                    vector(i, dim),
                )
            })
            .collect();
        coll.upsert_batch(batch).expect("load");
    }
    eprintln!("loaded {n} x {dim} in {:.1} s", t.elapsed().as_secs_f64());

    // Library numbers.
    let lib_search = timed(clients, secs, |c, i| {
        let q = vector(1_000_000 + c as u64 * 1_000_000 + i, dim);
        coll.search_with(&SearchRequest::new(q, 10))
            .expect("search");
    });
    let lib_upsert = timed(clients, secs, |c, i| {
        let batch = (0..100)
            .map(|j| {
                let id = (c as u64) << 40 | i << 8 | j;
                Entity::new(
                    EntityId::from_u128(u128::from(id) + (1 << 100)),
                    json!({}),
                    vector(id, dim),
                )
            })
            .collect();
        coll.upsert_batch(batch).expect("upsert");
    }) * 100.0;

    // The same through the server.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(hybridb_server::serve(
        db.clone(),
        hybridb_server::ServerConfig::default(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    // 404s (a get after a delete) are answers, not failures; 5xx are checked below.
    let agents: Vec<ureq::Agent> = (0..clients)
        .map(|_| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into()
        })
        .collect();
    let agents = Arc::new(agents);
    let health_url = format!("http://{addr}/healthz");
    let http_health = timed(clients, secs, |c, _| {
        let mut r = agents[c].get(&health_url).call().expect("healthz");
        r.body_mut().read_to_string().expect("body");
    });
    let search_url = format!("http://{addr}/collections/load/search");
    let http_search = timed(clients, secs, |c, i| {
        let q = vector(1_000_000 + c as u64 * 1_000_000 + i, dim);
        let body = json!({"vector": q, "k": 10}).to_string();
        let mut r = agents[c]
            .post(&search_url)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .expect("http search");
        r.body_mut().read_to_string().expect("body");
    });
    let upsert_url = format!("http://{addr}/collections/load/entities");
    let http_upsert = timed(clients, secs, |c, i| {
        let entities: Vec<_> = (0..100u64)
            .map(|j| {
                let id = (c as u64) << 40 | i << 8 | j;
                json!({"id": EntityId::from_u128(u128::from(id) + (2 << 100)), "vector": vector(id, dim)})
            })
            .collect();
        let body = json!({ "entities": entities }).to_string();
        let mut r = agents[c]
            .put(&upsert_url)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .expect("http upsert");
        r.body_mut().read_to_string().expect("body");
    }) * 100.0;
    let mut rss = Vec::new();
    if mixed > 0.0 {
        let get_url = format!("http://{addr}/collections/load/entities");
        let delete_url = format!("http://{addr}/collections/load/entities/delete");
        let slices = 10;
        for _ in 0..slices {
            timed(clients, mixed / f64::from(slices), |c, i| {
                let id = EntityId::from_u128(u128::from((i * 7 + c as u64) % n));
                let agent = &agents[c];
                let send = |method: &str, url: &str, body: serde_json::Value| {
                    let req = ureq::http::Request::builder()
                        .method(method)
                        .uri(url)
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .expect("request");
                    let mut r = agent.run(req).expect("http");
                    assert!(r.status().as_u16() < 500, "{method} {url}: {}", r.status());
                    r.body_mut().read_to_string().expect("body");
                };
                match i % 4 {
                    0 => send(
                        "POST",
                        &search_url,
                        json!({"vector": vector(i, dim), "k": 10, "with_payload": true}),
                    ),
                    1 => send(
                        "PUT",
                        &upsert_url,
                        json!({"entities": [{"id": id, "payload": {"i": i}, "vector": vector(i, dim)}]}),
                    ),
                    2 => {
                        let mut r = agent.get(format!("{get_url}/{id}")).call().expect("get");
                        assert!(r.status().as_u16() < 500, "get: {}", r.status());
                        r.body_mut().read_to_string().expect("body");
                    }
                    _ => send("POST", &delete_url, json!({"ids": [id]})),
                }
            });
            rss.push(resident_kib());
        }
        eprintln!("resident memory (KiB) per tenth of the mixed phase: {rss:?}");
    }
    let _ = stop.send(());
    let _ = rt.block_on(server);
    println!(
        "{}",
        json!({
            "n": n, "dim": dim, "clients": clients, "seconds_per_phase": secs,
            "http_healthz_qps": http_health.round(),
            "library_search_qps": lib_search.round(),
            "http_search_qps": http_search.round(),
            "search_overhead_ratio": (lib_search / http_search * 100.0).round() / 100.0,
            "library_upsert_entities_per_s": lib_upsert.round(),
            "http_upsert_entities_per_s": http_upsert.round(),
            "upsert_overhead_ratio": (lib_upsert / http_upsert * 100.0).round() / 100.0,
            "mixed_seconds": mixed,
            "mixed_rss_kib": rss,
        })
    );
}

/// Resident memory of this process in KiB (Linux; 0 elsewhere).
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
