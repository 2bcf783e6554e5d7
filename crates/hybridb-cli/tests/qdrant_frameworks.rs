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

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{Server, all_checks_passed, make_venv, run};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/qdrant");

#[test]
fn langchain_and_llamaindex_match_the_in_memory_engine() {
    let python = make_venv(
        "frameworks-venv",
        &Path::new(SCRIPTS).join("frameworks-requirements.txt"),
    );
    let server = Server::start(BIN, &[]);
    let out = run(
        Command::new(&python)
            .arg(Path::new(SCRIPTS).join("frameworks.py"))
            .args(["--url", &server.qdrant_url]),
        Duration::from_secs(480),
        "scripts/qdrant/frameworks.py",
    );
    drop(server);
    assert!(all_checks_passed(&out) >= 28, "{out}");
}
