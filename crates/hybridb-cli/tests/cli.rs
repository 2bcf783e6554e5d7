//! The real `hybridb` binary: import -> search -> backup -> restore -> verify, resuming an
//! import, vector files with payloads, strict mode, and `serve` answering HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");

fn hybridb(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Runs, asserts success, parses stdout as JSON.
fn json(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = hybridb(data, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn write_jsonl(path: &Path, n: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in 0..n {
        let angle = i as f32 * 0.1;
        writeln!(
            f,
            r#"{{"key":"doc{i}","payload":{{"n":{i}}},"vector":[{},{},1.0]}}"#,
            angle.cos(),
            angle.sin()
        )
        .unwrap();
    }
}

#[test]
fn import_search_backup_restore_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, 50);
    // A bad line in the middle is reported by number; the rest is imported.
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("{\"key\":\"bad\",\"vector\":[1,2]}\n");
    std::fs::write(&input, text).unwrap();
    let out = hybridb(
        &data,
        &[
            "import",
            "docs",
            input.to_str().unwrap(),
            "--dim",
            "3",
            "--batch",
            "16",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 51: vector has dimension 2"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 50 entities"));

    let hits = json(
        &data,
        &[
            "search",
            "docs",
            "--vector",
            "[1,0,1]",
            "-k",
            "3",
            "--with-payload",
        ],
    );
    assert_eq!(hits["hits"][0]["payload"]["n"], 0);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 3);
    let filtered = json(
        &data,
        &[
            "search",
            "docs",
            "--vector",
            "[1,0,1]",
            "-k",
            "3",
            "--with-payload",
            "--filter",
            r#"{"must":[{"key":"n","range":{"gte":40}}]}"#,
        ],
    );
    assert_eq!(filtered["hits"].as_array().unwrap().len(), 3);
    assert!(
        filtered["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["payload"]["n"].as_u64().unwrap() >= 40)
    );
    let bad = hybridb(
        &data,
        &[
            "search",
            "docs",
            "--vector",
            "1,0,1",
            "--filter",
            r#"{"must":5}"#,
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--filter"));

    let backup = dir.path().join("b.redb");
    let b = json(&data, &["backup", backup.to_str().unwrap()]);
    assert_eq!(b["entities"], 50);

    // Change the database after the backup, then restore: the change is gone.
    json(&data, &["collections", "drop", "docs"]);
    assert_eq!(
        json(&data, &["collections", "list"])["collections"],
        serde_json::json!([])
    );
    let refused = hybridb(&data, &["restore", backup.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let restored = json(&data, &["restore", backup.to_str().unwrap(), "--force"]);
    assert_eq!(restored["clean"], true);
    let v = json(&data, &["verify"]);
    assert_eq!(v["clean"], true);
    assert_eq!(v["collections"][0]["entities"], 50);
    let stats = json(&data, &["stats"]);
    assert_eq!(stats["collections"][0]["count"], 50);

    // get, export, compact.
    let id = hits["hits"][0]["id"].as_str().unwrap();
    let e = json(&data, &["get", "docs", id]);
    assert_eq!(e["payload"]["n"], 0);
    let out = hybridb(&data, &["export", "docs"]);
    assert!(out.status.success());
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    assert!(lines[0]["vector"].is_array());
    let out = hybridb(
        &data,
        &[
            "export",
            "docs",
            "--filter",
            r#"{"must":[{"key":"n","range":{"lt":5}}]}"#,
        ],
    );
    assert_eq!(out.stdout.lines().count(), 5);
    // An export imports as is (same ids, payloads and vectors).
    let exported = dir.path().join("export.jsonl");
    let out = hybridb(
        &data,
        &["export", "docs", "--out", exported.to_str().unwrap()],
    );
    assert!(out.status.success());
    let s = json(
        &data,
        &["import", "copy", exported.to_str().unwrap(), "--dim", "3"],
    );
    assert_eq!(
        (s["imported"].as_u64(), s["bad"].as_u64()),
        (Some(50), Some(0))
    );
    assert_eq!(
        e_without_time(&json(&data, &["get", "copy", id])),
        e_without_time(&e)
    );
    assert!(json(&data, &["compact"])["bytes_after"].is_u64());
    assert_eq!(json(&data, &["verify", "--repair"])["clean"], true);
}

/// An entity as `get` prints it, less what a rewrite changes.
fn e_without_time(e: &Value) -> Value {
    let mut e = e.clone();
    e["updated_at"] = Value::Null;
    e
}

#[test]
fn import_resumes_and_strict_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, 30);
    json(
        &data,
        &[
            "collections",
            "create",
            "docs",
            "--dim",
            "3",
            "--index",
            "exact",
        ],
    );
    // A previous run that stopped after 20 records (as its state file records).
    let state = data.join("imports").join("docs--in.jsonl.state");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let abs = std::path::absolute(&input).unwrap();
    std::fs::write(
        &state,
        serde_json::json!({"input": abs, "collection": "docs", "done": 20}).to_string(),
    )
    .unwrap();
    let s = json(&data, &["import", "docs", input.to_str().unwrap()]);
    assert_eq!(
        (s["imported"].as_u64(), s["skipped"].as_u64()),
        (Some(10), Some(20))
    );
    assert!(!state.exists(), "a finished import removes its state");
    // --skip, and --restart (ids from keys: re-importing overwrites).
    let s = json(
        &data,
        &["import", "docs", input.to_str().unwrap(), "--skip", "25"],
    );
    assert_eq!(s["imported"], 5);
    let s = json(
        &data,
        &["import", "docs", input.to_str().unwrap(), "--restart"],
    );
    assert_eq!(s["imported"], 30);
    assert_eq!(json(&data, &["stats"])["collections"][0]["count"], 30);
    // Strict: the first bad record stops the import with exit status 1.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"vector\":[1,2,3]}\n{\"vector\":\"x\"}\n").unwrap();
    let out = hybridb(
        &data,
        &["import", "docs", bad.to_str().unwrap(), "--strict"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("vector"), "{err}");
    let s = json(&data, &["import", "docs", bad.to_str().unwrap()]);
    assert_eq!(
        (s["imported"].as_u64(), s["bad"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["errors"][0]["line"], 2);
}

#[test]
fn vector_files_with_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fvecs = dir.path().join("base.fvecs");
    let bvecs = dir.path().join("base.bvecs");
    let payloads = dir.path().join("payloads.jsonl");
    let (mut f, mut b, mut p) = (Vec::new(), Vec::new(), String::new());
    for i in 0..20u8 {
        f.extend_from_slice(&2i32.to_le_bytes());
        b.extend_from_slice(&2i32.to_le_bytes());
        for x in [f32::from(i), 1.0] {
            f.extend_from_slice(&x.to_le_bytes());
        }
        b.extend_from_slice(&[i, 1]);
        p.push_str(&format!("{{\"row\":{i}}}\n"));
    }
    std::fs::write(&fvecs, f).unwrap();
    std::fs::write(&bvecs, b).unwrap();
    std::fs::write(&payloads, p).unwrap();
    let s = json(
        &data,
        &[
            "import",
            "f",
            fvecs.to_str().unwrap(),
            "--payloads",
            payloads.to_str().unwrap(),
            "--dim",
            "2",
            "--metric",
            "l2",
            "--batch",
            "7",
        ],
    );
    assert_eq!(s["imported"], 20);
    let hits = json(
        &data,
        &[
            "search",
            "f",
            "--vector",
            "5,1",
            "-k",
            "1",
            "--with-payload",
        ],
    );
    assert_eq!(hits["hits"][0]["payload"]["row"], 5);
    assert_eq!(hits["hits"][0]["score"], 0.0);
    let s = json(
        &data,
        &[
            "import",
            "b",
            bvecs.to_str().unwrap(),
            "--dim",
            "2",
            "--metric",
            "l2",
            "--key-prefix",
            "b-",
        ],
    );
    assert_eq!(s["imported"], 20);
    let hits = json(
        &data,
        &[
            "search",
            "b",
            "--vector",
            "[7,1]",
            "-k",
            "1",
            "--with-vector",
        ],
    );
    assert_eq!(hits["hits"][0]["vector"], serde_json::json!([7.0, 1.0]));
}

#[test]
fn serve_answers_http_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["serve", "--port", "0", "--qdrant-port", "0"])
        .env_remove("HYBRIDB_API_KEY")
        .env_remove("HYBRIDB_READ_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first.trim().rsplit("http://").next().unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"status":"ok"}"#), "{answer}");
    // SIGTERM: a graceful stop with status 0 (the database closes cleanly).
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(data.join("hybridb.redb").is_file());
}

#[test]
fn aliases_set_list_resolve_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, 5);
    let out = hybridb(
        &data,
        &["import", "docs_v1", input.to_str().unwrap(), "--dim", "3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set = json(&data, &["aliases", "set", "docs", "docs_v1"]);
    assert_eq!(set["collection"], "docs_v1");
    assert_eq!(set["previous"], Value::Null);
    let list = json(&data, &["aliases", "list"]);
    assert_eq!(list["aliases"][0]["alias"], "docs");
    assert_eq!(list["aliases"][0]["collection"], "docs_v1");
    // Commands that take a collection accept the alias.
    let hits = json(&data, &["search", "docs", "--vector", "[1,0,1]", "-k", "2"]);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 2);
    // A bad target is a clear error, and nothing changes.
    let bad = hybridb(&data, &["aliases", "set", "docs", "nope"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("nope"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let gone = json(&data, &["aliases", "delete", "docs"]);
    assert_eq!(gone["collection"], "docs_v1");
    assert_eq!(
        json(&data, &["aliases", "list"])["aliases"],
        Value::Array(Vec::new())
    );
    assert!(
        !hybridb(&data, &["aliases", "delete", "docs"])
            .status
            .success()
    );
}

#[test]
fn query_runs_a_hybrid_query_on_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        use hybridb::{CollectionConfig, Entity, EntityId, Metric, TextIndexConfig};
        let db = hybridb::Database::open(data.join("hybridb.redb")).unwrap();
        let c = db
            .create_collection(
                "docs",
                CollectionConfig::new(2, Metric::Cosine)
                    .with_text_index("body", TextIndexConfig::english()),
            )
            .unwrap();
        for (i, body) in ["reading files", "vector search", "writing files"]
            .iter()
            .enumerate()
        {
            c.upsert(Entity::new(
                EntityId::from_key(&format!("d{i}")),
                serde_json::json!({"body": body}),
                vec![1.0, i as f32],
            ))
            .unwrap();
        }
    }
    let q = r#"{"prefetch": [{"query": {"nearest": [1.0, 0.0]}, "limit": 3},
                             {"query": {"text": "file"}, "using": "body", "limit": 3}],
                "query": {"fusion": {"method": "rrf"}}, "limit": 2, "with_payload": true}"#;
    let hits = json(&data, &["query", "docs", q]);
    let hits = hits["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0]["payload"]["body"], "reading files",
        "in both lists, first in one"
    );
    let path = dir.path().join("q.json");
    std::fs::write(&path, r#"{"query": {"text": "search"}, "using": "body"}"#).unwrap();
    let from_file = json(&data, &["query", "docs", &format!("@{}", path.display())]);
    assert_eq!(from_file["hits"].as_array().unwrap().len(), 1);
    let bad = hybridb(
        &data,
        &[
            "query",
            "docs",
            r#"{"query": {"fusion": {"method": "rrf"}}}"#,
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("prefetch"));
}

#[test]
fn collections_are_created_quantized_and_requantized() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = json(
        &data,
        &[
            "collections",
            "create",
            "docs",
            "--dim",
            "3",
            "--metric",
            "l2",
            "--quantization",
            "rq2",
        ],
    );
    assert_eq!(created["config"]["quantization"], "rq2", "{created}");
    let input = dir.path().join("in.jsonl");
    write_jsonl(&input, 20);
    json(&data, &["import", "docs", input.to_str().unwrap()]);
    let out = json(&data, &["collections", "quantize", "docs", "sq8"]);
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(out["config"]["quantization"], "sq8");
    let again = json(&data, &["collections", "quantize", "docs", "sq8"]);
    assert_eq!(again["changed"], false, "the same setting only retrains");
    let hits = json(&data, &["search", "docs", "--vector", "1,0,1", "--k", "2"]);
    assert_eq!(hits["hits"].as_array().map(Vec::len), Some(2), "{hits}");
    // Errors name the problem and change nothing.
    let bad = hybridb(
        &data,
        &["collections", "quantize", "docs", "sq8", "--vector", "nope"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));
    let listed = json(&data, &["collections", "list"]);
    assert_eq!(listed["collections"][0]["config"]["quantization"], "sq8");
    let off = json(&data, &["collections", "quantize", "docs", "none"]);
    assert!(off["config"].get("quantization").is_none(), "{off}");
}
