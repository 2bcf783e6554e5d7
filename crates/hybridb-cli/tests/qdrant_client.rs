//! Qdrant's own Python client (`qdrant-client`, pinned with its dependencies in
//! `scripts/qdrant/requirements.txt`) against a real `hybridb serve --qdrant-port`: the
//! quickstart flow and more for every distance, each result compared with the client's
//! in-memory engine (`QdrantClient(":memory:")`) fed the same data — same ids in the same
//! order, scores within 1e-4 — plus aliases, the older search API, API keys, the `/qdrant`
//! prefix of the main port and the "not supported yet" answers (`scripts/qdrant/compat.py`).
//! The virtual environment is made under the target folder like the OpenAPI tests' one.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{make_venv, run};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/qdrant");
const READ_WRITE_KEY: &str = "qdrant-test-rw";
const READ_ONLY_KEY: &str = "qdrant-test-ro";

/// A loopback port that was free a moment ago (`--qdrant-port 0` means "off").
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The URL printed on a line `... on http://ADDR`.
fn url_of(line: &str) -> String {
    let addr = line.trim().rsplit("http://").next().unwrap_or_default();
    assert!(!addr.is_empty(), "hybridb serve printed {line:?}");
    format!("http://{addr}")
}

#[test]
fn qdrant_client_matches_its_in_memory_engine() {
    let python = make_venv("qdrant-venv", &Path::new(SCRIPTS).join("requirements.txt"));
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--qdrant-port"])
        .arg(free_port().to_string())
        .current_dir(dir.path())
        .env("HYBRIDB_API_KEY", READ_WRITE_KEY)
        .env("HYBRIDB_READ_API_KEY", READ_ONLY_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    assert!(
        second.contains("Qdrant"),
        "hybridb serve printed {second:?}"
    );
    let result = std::panic::catch_unwind(|| {
        run(
            Command::new(&python)
                .arg(Path::new(SCRIPTS).join("compat.py"))
                .args(["--url", &url_of(&second), "--main-url", &url_of(&first)])
                .args(["--key", READ_WRITE_KEY, "--read-key", READ_ONLY_KEY]),
            Duration::from_secs(240),
            "scripts/qdrant/compat.py",
        )
    });
    let _ = child.kill();
    let _ = child.wait();
    let out = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let verdict = out.lines().last().unwrap_or_default();
    assert!(verdict.ends_with(" passed, 0 failed"), "{out}");
    let passed: usize = verdict
        .split(' ')
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(passed >= 77, "{out}");
}
