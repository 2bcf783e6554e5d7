//! Qdrant's own Python client (`qdrant-client`, pinned with its dependencies in
//! `scripts/qdrant/requirements.txt`) against a real `hybridb serve --qdrant-port`: the
//! quickstart flow and more for every distance, each result compared with the client's
//! in-memory engine (`QdrantClient(":memory:")`) fed the same data — same ids in the same
//! order, scores within 1e-4 — plus aliases, the older search API, API keys, the `/qdrant`
//! prefix of the main port and the "not supported yet" answers (`scripts/qdrant/compat.py`).
//! The virtual environment is made under the target folder like the OpenAPI tests' one.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{Server, all_checks_passed, make_venv, run};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/qdrant");
const READ_WRITE_KEY: &str = "qdrant-test-rw";
const READ_ONLY_KEY: &str = "qdrant-test-ro";

#[test]
fn qdrant_client_matches_its_in_memory_engine() {
    let python = make_venv("qdrant-venv", &Path::new(SCRIPTS).join("requirements.txt"));
    let server = Server::start(
        BIN,
        &[
            ("HYBRIDB_API_KEY", READ_WRITE_KEY),
            ("HYBRIDB_READ_API_KEY", READ_ONLY_KEY),
        ],
    );
    let out = run(
        Command::new(&python)
            .arg(Path::new(SCRIPTS).join("compat.py"))
            .args(["--url", &server.qdrant_url, "--main-url", &server.main_url])
            .args(["--key", READ_WRITE_KEY, "--read-key", READ_ONLY_KEY]),
        Duration::from_secs(240),
        "scripts/qdrant/compat.py",
    );
    drop(server);
    assert!(all_checks_passed(&out) >= 77, "{out}");
}
