//! The replication sink end to end, with real processes: a `hybridb serve`, a `hybridb
//! replicate` into PostgreSQL + pgvector, four concurrent HTTP writers (creates, updates,
//! deletes, re-creations), and the sink killed with SIGKILL at random moments and restarted.
//! After it catches up, the target must equal the source: ids, versions, payloads, vectors.
//!
//! Needs a target: `HYBRIDB_TEST_PG_URL` (single node; `scripts/pgvector.sh up` prints it;
//! `.ci/run` sets it) and, for the Citus variant, `HYBRIDB_TEST_CITUS_URL`
//! (`scripts/citus-cluster.sh up`). Without one a test prints why it was skipped, unless
//! `HYBRIDB_REQUIRE_PG=1` (CI), which makes a missing target a failure. Each test works in a
//! database of its own. Sizes: `HYBRIDB_REPLICATE_ENTITIES` (default 2,000),
//! `HYBRIDB_REPLICATE_KILLS` (default 4), `HYBRIDB_REPLICATE_DIM` (default 16); the long run is
//! `HYBRIDB_REPLICATE_ENTITIES=100000 HYBRIDB_REPLICATE_KILLS=20 cargo test --release -p
//! hybridb-cli --test replicate -- --nocapture`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const LANGS: [&str; 3] = ["en", "de", "fr"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The target's admin URL, or `None` (with the reason printed) when the test must skip.
fn target_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let msg = format!(
                "SKIPPED: {var} is not set, so there is no {what} to replicate into \
                 (see the module docs of crates/hybridb-cli/tests/replicate.rs)"
            );
            if var == "HYBRIDB_TEST_PG_URL" && std::env::var("HYBRIDB_REQUIRE_PG").is_ok() {
                panic!("{msg}, and HYBRIDB_REQUIRE_PG is set");
            }
            eprintln!("{msg}");
            None
        }
    }
}

/// Tiny deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs SQL on `url` (admin work: databases, settings).
fn sql(url: &str, statements: &str) {
    rt().block_on(async {
        let client = hybridb_replicate::connect(url).await.unwrap();
        client.batch_execute(statements).await.unwrap();
    })
}

/// A fresh database on the target's server for one test; returns its URL. On Citus (where a
/// new database would need the extension and the nodes set up again) the admin database is
/// used, with the sink's schemas dropped first: run Citus tests one at a time.
fn fresh_database(admin_url: &str, name: &str) -> String {
    let citus = rt().block_on(async {
        let admin = hybridb_replicate::connect(admin_url).await.unwrap();
        admin
            .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
            .await
            .unwrap()
            .is_some()
    });
    if citus {
        sql(admin_url, "DROP SCHEMA IF EXISTS hybridb CASCADE");
        sql(admin_url, "DROP SCHEMA IF EXISTS hybridb_sink CASCADE");
        return admin_url.to_string();
    }
    sql(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    sql(admin_url, &format!("CREATE DATABASE {name}"));
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    format!("{base}/{name}")
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path) -> Server {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--port", "0", "--qdrant-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(url.starts_with("http://"), "serve printed {line:?}");
    Server { child, url }
}

fn sink(from: &str, to: &str) -> Child {
    Command::new(BIN)
        .args(["--json", "replicate", "--from", from, "--to", to])
        .args(["--batch-events", "500", "--copy-page", "500"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(agent: &ureq::Agent, method: &str, url: &str, body: &Value) -> Value {
    for attempt in 0.. {
        let r = match method {
            "PUT" => agent
                .put(url)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
            "GET" => agent.get(url).call(),
            _ => agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
        };
        match r {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp.body_mut().read_to_string().unwrap();
                if status == 503 && attempt < 50 {
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
                assert!(status < 400, "{method} {url}: {status} {text}");
                return serde_json::from_str(&text).unwrap();
            }
            Err(e) => panic!("{method} {url}: {e}"),
        }
    }
    unreachable!()
}

fn vector(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
    v[0] += 1.0; // never the zero vector
    v
}

/// One writer: creates its share of entities in batches, and between batches updates,
/// deletes and re-creates some of its earlier ones.
fn writer(base: String, w: usize, n: usize, dim: usize, seed: u64) {
    let agent = agent();
    let mut rng = Rng(seed | 1);
    let url = format!("{base}/collections/docs/entities");
    let mut created = 0usize;
    while created < n {
        let take = (n - created).min(50);
        let entities: Vec<Value> = (created..created + take)
            .map(|i| {
                let mut e = json!({"key": format!("w{w}-{i}"), "vector": vector(&mut rng, dim),
                       "payload": {"writer": w, "i": i, "lang": LANGS[i % 3], "tags": [i % 7, "t"]}});
                // Half carry the sparse named vector: it must arrive too.
                if i % 2 == 0 {
                    e["vectors"] = json!({"terms": {"indices": [i % 50, 50 + i % 7], "values": [1.0, 0.5]}});
                }
                e
            })
            .collect();
        call(&agent, "PUT", &url, &json!({ "entities": entities }));
        created += take;
        // Updates of payload and vector (one per id per request).
        let mut updates = BTreeMap::new();
        for _ in 0..rng.below(20) {
            let i = rng.below(created as u64) as usize;
            let key = format!("w{w}-{i}");
            let v = vector(&mut rng, dim);
            let round = rng.below(1000);
            let mut e = json!({"key": key, "vector": v, "payload": {"writer": w, "i": i, "lang": "xx", "round": round}});
            if round.is_multiple_of(3) {
                e["vectors"] = json!({"terms": {"indices": [round % 40], "values": [2.0]}});
            }
            updates.insert(key.clone(), e);
        }
        if !updates.is_empty() {
            let updates: Vec<Value> = updates.into_values().collect();
            call(&agent, "PUT", &url, &json!({ "entities": updates }));
        }
        // Deletes (some of which are re-created by a later update: a new version line).
        if rng.below(3) == 0 {
            let ids: std::collections::BTreeSet<String> = (0..rng.below(10) + 1)
                .map(|_| {
                    let i = rng.below(created as u64) as usize;
                    hybridb::EntityId::from_key(&format!("w{w}-{i}")).to_string()
                })
                .collect();
            call(
                &agent,
                "POST",
                &format!("{url}/delete"),
                &json!({ "ids": ids }),
            );
        }
    }
}

/// Id to (version, payload, default vector, named vectors or null).
type State = BTreeMap<String, (i64, Value, Vec<f32>, Value)>;

fn source_state(base: &str) -> State {
    let agent = agent();
    let mut out = State::new();
    let mut after = Value::Null;
    loop {
        let page = call(
            &agent,
            "POST",
            &format!("{base}/collections/docs/scroll"),
            &json!({"after": after, "limit": 1000, "with_vector": true}),
        );
        for e in page["entities"].as_array().unwrap() {
            let v: Vec<f32> = serde_json::from_value(e["vector"].clone()).unwrap();
            out.insert(
                e["id"].as_str().unwrap().to_string(),
                (
                    e["version"].as_i64().unwrap(),
                    e["payload"].clone(),
                    v,
                    e.get("vectors").cloned().unwrap_or(Value::Null),
                ),
            );
        }
        if page["next"].is_null() {
            return out;
        }
        after = page["next"].clone();
    }
}

fn target_state(url: &str) -> State {
    rt().block_on(async {
        let client = hybridb_replicate::connect(url).await.unwrap();
        let rows = client
            .query(
                "SELECT id::text, version, payload, embedding::real[], vectors FROM hybridb.docs",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    (
                        r.get(1),
                        r.get::<_, Value>(2),
                        r.get::<_, Vec<f32>>(3),
                        r.get::<_, Option<Value>>(4).unwrap_or(Value::Null),
                    ),
                )
            })
            .collect()
    })
}

fn target_applied(url: &str) -> Option<u64> {
    rt().block_on(async {
        let client = hybridb_replicate::connect(url).await.ok()?;
        let row = client
            .query_opt(
                "SELECT applied FROM hybridb_sink.cursor WHERE name = 'default'",
                &[],
            )
            .await
            .ok()??;
        row.get::<_, Option<i64>>(0).map(|a| a as u64)
    })
}

/// Waits until the target applied everything the source committed, then compares.
fn assert_converges(server: &Server, target: &str, within: Duration) {
    let head = call(
        &agent(),
        "GET",
        &format!("{}/stats", server.url),
        &json!({}),
    )["last_seq"]
        .as_u64()
        .unwrap();
    let start = Instant::now();
    while target_applied(target) < Some(head) {
        assert!(
            start.elapsed() < within,
            "the sink did not catch up with seq {head} in {within:?} (at {:?})",
            target_applied(target)
        );
        thread::sleep(Duration::from_millis(100));
    }
    let source = source_state(&server.url);
    let target = target_state(target);
    let missing: Vec<_> = source.keys().filter(|k| !target.contains_key(*k)).collect();
    let extra: Vec<_> = target.keys().filter(|k| !source.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing in the target (e.g. {:?}), {} extra (e.g. {:?})",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
    for (id, s) in &source {
        assert_eq!(Some(s), target.get(id), "entity {id} differs");
    }
    eprintln!(
        "converged: {} entities, seq {head}, in {:?} after the last write",
        source.len(),
        start.elapsed()
    );
}

fn create_collection(base: &str, dim: usize) {
    call(
        &agent(),
        "PUT",
        &format!("{base}/collections/docs"),
        &json!({"dim": dim, "metric": "cosine", "payload_indexes": {"lang": "keyword", "i": "integer"},
                "vectors": {"terms": {"type": "sparse"}}}),
    );
}

/// The convergence run: writers and SIGKILLs of the sink, then target == source.
fn kill_restart_converges(admin_url: &str, db_name: &str) {
    let n = env_usize("HYBRIDB_REPLICATE_ENTITIES", 2000);
    let kills = env_usize("HYBRIDB_REPLICATE_KILLS", 4);
    let dim = env_usize("HYBRIDB_REPLICATE_DIM", 16);
    let target = fresh_database(admin_url, db_name);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"));
    create_collection(&server.url, dim);
    // A first share before the sink starts, so the initial copy has work (and gets killed).
    writer(server.url.clone(), 9, n / 10, dim, 99);
    let mut sink_child = sink(&server.url, &target);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = server.url.clone();
            let share = (n - n / 10) / 4;
            thread::spawn(move || writer(base, w, share, dim, 7 + w as u64))
        })
        .collect();
    let mut rng = Rng(0x5eed);
    let started = Instant::now();
    for k in 0..kills {
        thread::sleep(Duration::from_millis(100 + rng.below(900)));
        sink_child.kill().unwrap(); // SIGKILL
        sink_child.wait().unwrap();
        eprintln!(
            "kill {} of {kills} at {:?}, applied {:?}",
            k + 1,
            started.elapsed(),
            target_applied(&target)
        );
        sink_child = sink(&server.url, &target);
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_converges(&server, &target, Duration::from_secs(300));
    sink_child.kill().unwrap();
    sink_child.wait().unwrap();
}

#[test]
fn pgvector_sink_killed_and_restarted_converges() {
    let Some(admin) = target_url("HYBRIDB_TEST_PG_URL", "PostgreSQL + pgvector") else {
        return;
    };
    kill_restart_converges(&admin, "hybridb_test_kill");
}

#[test]
fn citus_sink_killed_and_restarted_converges() {
    let Some(admin) = target_url("HYBRIDB_TEST_CITUS_URL", "Citus cluster") else {
        return;
    };
    kill_restart_converges(&admin, "hybridb_test_kill_citus");
}

/// A TCP relay to the target that can be cut (connections refused and dropped) and restored.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Relay {
    fn start(target_port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let up2 = up.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the sink sees a closed connection
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let up3 = up2.clone();
                    thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        use std::io::{Read, Write};
                        while up3.load(Ordering::SeqCst) {
                            let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
                            match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(k) => {
                                    if to.write_all(&buf[..k]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if e.kind() == std::io::ErrorKind::WouldBlock
                                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => break,
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, up }
    }
}

/// A target that is down, then one that refuses writes: the sink waits and retries, never
/// skips, and converges once the target is back.
#[test]
fn target_down_or_read_only_then_back_converges() {
    let Some(admin) = target_url("HYBRIDB_TEST_PG_URL", "PostgreSQL + pgvector") else {
        return;
    };
    let db = "hybridb_test_down";
    let direct = fresh_database(&admin, db);
    let pg_port: u16 = direct
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port in HYBRIDB_TEST_PG_URL");
    let relay = Relay::start(pg_port);
    let via_relay = direct.replace(&format!(":{pg_port}/"), &format!(":{}/", relay.port));
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"));
    create_collection(&server.url, 8);
    writer(server.url.clone(), 0, 200, 8, 1);
    let mut sink_child = sink(&server.url, &via_relay);
    assert_converges(&server, &direct, Duration::from_secs(60));

    // Down: connections cut and refused while writes go on.
    relay.up.store(false, Ordering::SeqCst);
    let before = target_applied(&direct);
    writer(server.url.clone(), 1, 300, 8, 2);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        target_applied(&direct),
        before,
        "nothing can be applied while the target is unreachable"
    );
    relay.up.store(true, Ordering::SeqCst);
    assert_converges(&server, &direct, Duration::from_secs(60));

    // Refusing writes: the database turns read-only and the sink's sessions are cut.
    sql(
        &admin,
        &format!(
            "ALTER DATABASE {db} SET default_transaction_read_only = on; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ),
    );
    let before = target_applied(&direct);
    writer(server.url.clone(), 2, 300, 8, 3);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        target_applied(&direct),
        before,
        "a read-only target takes nothing"
    );
    assert!(
        sink_child.try_wait().unwrap().is_none(),
        "the sink must wait, not exit"
    );
    sql(
        &admin,
        &format!("ALTER DATABASE {db} RESET default_transaction_read_only"),
    );
    assert_converges(&server, &direct, Duration::from_secs(60));
    sink_child.kill().unwrap();
    sink_child.wait().unwrap();
}
