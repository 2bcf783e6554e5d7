//! The OpenAPI document that `hybridb serve` serves is valid OpenAPI 3.1, and a Python client
//! generated from it runs the README walkthrough. Both run Python tools from PyPI
//! (`openapi-spec-validator`, `openapi-python-client`, pinned in
//! `scripts/openapi/requirements.txt`) in a virtual environment this test makes with
//! `python3 -m venv` under the target folder and reuses while python and the requirements stay
//! the same (`HYBRIDB_PYTHON` names another interpreter). Without python3, `venv` or PyPI the
//! tests fail saying so: they never skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/openapi");
const READ_WRITE_KEY: &str = "openapi-test-rw";
const READ_ONLY_KEY: &str = "openapi-test-ro";

mod common;

use common::{make_venv, run};

/// The virtual environment's python, made once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| make_venv("openapi-venv", &Path::new(SCRIPTS).join("requirements.txt")))
}

/// `hybridb serve` on a free loopback port in a fresh folder, with a read-write and a
/// read-only API key; stopped on drop.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--qdrant-port", "0"])
            .current_dir(dir.path())
            .env("HYBRIDB_API_KEY", READ_WRITE_KEY)
            .env("HYBRIDB_READ_API_KEY", READ_ONLY_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first.trim().rsplit("http://").next().unwrap_or_default();
        assert!(!addr.is_empty(), "hybridb serve printed {first:?}");
        Server {
            child,
            url: format!("http://{addr}"),
            dir,
        }
    }

    /// Stops the server with SIGTERM and checks that it shut down cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_served_document_is_valid_openapi_3_1() {
    let python = python();
    let server = Server::start();
    let saved = server.dir.path().join("openapi.json");
    let out = run(
        Command::new(python)
            .arg(Path::new(SCRIPTS).join("validate.py"))
            .args(["--url", &server.url, "--key", READ_ONLY_KEY, "--save"])
            .arg(&saved),
        Duration::from_secs(120),
        "scripts/openapi/validate.py",
    );
    let verdict = out.lines().last().unwrap_or_default();
    assert!(verdict.starts_with("0 errors ("), "{out}");
    // The validator saw the whole document, not an error answer.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert!(doc["paths"]["/collections/{name}/search"]["post"].is_object());
    server.stop();
}

#[test]
fn a_generated_python_client_runs_the_readme_walkthrough() {
    let python = python();
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(python)
            .arg(Path::new(SCRIPTS).join("client_walkthrough.py"))
            .args(["--url", &server.url])
            .args(["--key", READ_WRITE_KEY, "--read-key", READ_ONLY_KEY])
            .arg("--workdir")
            .arg(work.path()),
        Duration::from_secs(300),
        "scripts/openapi/client_walkthrough.py",
    );
    assert!(
        out.contains(
            "walkthrough passed: create, upsert, search, filtered search, get, count, changes, \
             refused bad write, delete, backup, verify, stats and metrics, drop"
        ),
        "{out}"
    );
    assert!(
        server
            .dir
            .path()
            .join("hybridb-data/backups/walkthrough.redb")
            .is_file()
    );
    server.stop();
}
