//! Helpers of the tests that run Python clients against `hybridb serve`: a virtual
//! environment made from pinned requirements under the target folder (reused while python and
//! the requirements stay the same; `HYBRIDB_PYTHON` names another interpreter), and a command
//! runner with a time limit. Without python3, `venv` or PyPI the tests fail saying so: they
//! never skip.

#![allow(dead_code)] // each test binary uses what it needs

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output of a finished command, or a panic saying what ran, how it ended and what it said.
pub fn run(command: &mut Command, limit: Duration, what: &str) -> String {
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

/// Makes (or reuses) the virtual environment `name` under the target folder with the pinned
/// `requirements`; returns its python.
pub fn make_venv(name: &str, requirements: &Path) -> PathBuf {
    let base = std::env::var("HYBRIDB_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let version = run(
        Command::new(&base).arg("--version"),
        Duration::from_secs(30),
        "python3 (needed by the Python client tests; set HYBRIDB_PYTHON to use another)",
    );
    let wanted = format!(
        "{}\n{}",
        version.trim(),
        std::fs::read_to_string(requirements).unwrap()
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(name);
    let python = venv.join("bin").join("python");
    let stamp = |dir: &Path| std::fs::read_to_string(dir.join("hybridb-requirements")).ok();
    if python.exists() && stamp(&venv).as_deref() == Some(wanted.as_str()) {
        return python;
    }
    // Built beside and moved in place once complete: a run stopped halfway leaves no
    // half-made environment to be reused. Inside, only `bin/python -m ...` is used, which
    // works from the moved folder.
    let fresh = root.join(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    run(
        Command::new(&base).args(["-m", "venv"]).arg(&fresh),
        Duration::from_secs(120),
        "python3 -m venv (the Python client tests need Python's venv module)",
    );
    run(
        Command::new(fresh.join("bin").join("python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(["--no-input", "--quiet", "-r"])
            .arg(requirements),
        Duration::from_secs(600),
        &format!("pip install -r {} (needs PyPI)", requirements.display()),
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

/// A `hybridb serve` with both ports on loopback, in its own temporary folder; killed when
/// dropped (also when a test panics).
pub struct Server {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// The native API's URL.
    pub main_url: String,
    /// The Qdrant-compatible API's URL.
    pub qdrant_url: String,
}

impl Server {
    /// Starts `bin serve --port 0 --qdrant-port P` with `envs`, once it printed both URLs.
    pub fn start(bin: &str, envs: &[(&str, &str)]) -> Server {
        use std::io::{BufRead, BufReader};
        // A loopback port that was free a moment ago (`--qdrant-port 0` means "off").
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args(["serve", "--port", "0", "--qdrant-port"])
            .arg(port.to_string())
            .current_dir(dir.path())
            .envs(envs.iter().copied())
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
        // The URL printed on a line `... on http://ADDR`.
        let url_of = |line: &str| {
            let addr = line.trim().rsplit("http://").next().unwrap_or_default();
            assert!(!addr.is_empty(), "hybridb serve printed {line:?}");
            format!("http://{addr}")
        };
        Server {
            main_url: url_of(&first),
            qdrant_url: url_of(&second),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number of passed checks of a check script whose last line is `N passed, 0 failed`
/// (panics with the whole output otherwise).
pub fn all_checks_passed(out: &str) -> usize {
    let verdict = out.lines().last().unwrap_or_default();
    assert!(verdict.ends_with(" passed, 0 failed"), "{out}");
    verdict
        .split(' ')
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}
