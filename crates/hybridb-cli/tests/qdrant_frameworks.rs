//! LangChain's and LlamaIndex's Qdrant vector stores (`langchain-qdrant`,
//! `llama-index-vector-stores-qdrant`, pinned with everything they pull in in
//! `scripts/qdrant/frameworks-requirements.txt`), unchanged, against a real
//! `hybridb serve --qdrant-port`: LangChain in DENSE, SPARSE and HYBRID retrieval modes plus
//! MMR, filters and deletes; LlamaIndex dense-only and hybrid, with filters, deletes by
//! `ref_doc_id`, the async client and a `VectorStoreIndex` on top. Each answer is compared with
//! the same calls on qdrant-client's in-memory engine (`scripts/qdrant/frameworks.py`; fake,
//! deterministic embeddings, no model download). `scripts/qdrant/frameworks.sh` runs the same
//! from the command line and prints its wall time.
//!
//! All 28 checks pass, and CI runs it: on the 2-core machine the virtual environment (~90
//! packages, 350 MB, made by CI's fresh clone every run) installs in about 40 s when the machine
//! is quiet (3 minutes when it is busy compiling), and the checks take 5-30 s. Run it alone with
//! `cargo test --release -p hybridb-cli --test qdrant_frameworks` (the environment
//! is then kept under the target folder and reused while the requirements stay the same).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{make_venv, run};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/qdrant");

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
fn langchain_and_llamaindex_match_the_in_memory_engine() {
    let python = make_venv(
        "frameworks-venv",
        &Path::new(SCRIPTS).join("frameworks-requirements.txt"),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--qdrant-port"])
        .arg(free_port().to_string())
        .current_dir(dir.path())
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
                .arg(Path::new(SCRIPTS).join("frameworks.py"))
                .args(["--url", &url_of(&second)]),
            Duration::from_secs(480),
            "scripts/qdrant/frameworks.py",
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
    assert!(passed >= 28, "{out}");
}
