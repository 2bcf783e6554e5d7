//! The OpenAPI document that `hybridb serve` serves is valid OpenAPI 3.1, and a Python client
//! generated from it runs the README walkthrough. Both run Python tools from PyPI
//! (`openapi-spec-validator`, `openapi-python-client`, pinned in
//! `scripts/openapi/requirements.txt`) in a virtual environment this test makes with
//! `python3 -m venv` under the target folder and reuses while python and the requirements stay
//! the same (`HYBRIDB_PYTHON` names another interpreter). Without python3, `venv` or PyPI the
//! tests fail saying so: they never skip.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/openapi");
const READ_WRITE_KEY: &str = "openapi-test-rw";
const READ_ONLY_KEY: &str = "openapi-test-ro";

/// The virtual environment's python, made once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(make_venv)
}

/// Output of a finished command, or a panic saying what ran, how it ended and what it said.
fn run(command: &mut Command, limit: Duration, what: &str) -> String {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    // Read both pipes while waiting, so that a chatty child cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => out,
        Some(s) => panic!("{what} failed ({s}):\n{out}\n{err}"),
        None => panic!("{what} took over {limit:?} and was stopped:\n{out}\n{err}"),
    }
}

/// Makes (or reuses) the virtual environment with the pinned requirements; returns its python.
fn make_venv() -> PathBuf {
    let base = std::env::var("HYBRIDB_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let version = run(
        Command::new(&base).arg("--version"),
        Duration::from_secs(30),
        "python3 (needed by the OpenAPI tests; set HYBRIDB_PYTHON to use another)",
    );
    let requirements = Path::new(SCRIPTS).join("requirements.txt");
    let wanted = format!(
        "{}\n{}",
        version.trim(),
        std::fs::read_to_string(&requirements).unwrap()
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join("openapi-venv");
    let python = venv.join("bin").join("python");
    let stamp = |dir: &Path| std::fs::read_to_string(dir.join("hybridb-requirements")).ok();
    if python.exists() && stamp(&venv).as_deref() == Some(wanted.as_str()) {
        return python;
    }
    // Built beside and moved in place once complete: a run stopped halfway leaves no
    // half-made environment to be reused. Inside, only `bin/python -m ...` is used, which
    // works from the moved folder.
    let fresh = root.join(format!("openapi-venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    run(
        Command::new(&base).args(["-m", "venv"]).arg(&fresh),
        Duration::from_secs(120),
        "python3 -m venv (the OpenAPI tests need Python's venv module)",
    );
    run(
        Command::new(fresh.join("bin").join("python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(["--no-input", "--quiet", "-r"])
            .arg(&requirements),
        Duration::from_secs(600),
        "pip install -r scripts/openapi/requirements.txt (needs PyPI)",
    );
    std::fs::write(fresh.join("hybridb-requirements"), &wanted).unwrap();
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(&fresh, &venv).is_err() {
        // Another test process moved its own in first: use that one if it is the same.
        let _ = std::fs::remove_dir_all(&fresh);
        assert_eq!(
            stamp(&venv).as_deref(),
            Some(wanted.as_str()),
            "could not put the virtual environment in place at {}",
            venv.display()
        );
    }
    python
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
