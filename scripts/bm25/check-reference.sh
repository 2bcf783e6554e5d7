#!/usr/bin/env bash
# Checks hybridb's BM25 against a reference implementation: the Python package `bm25s`
# (Lucene's BM25: idf = ln(1 + (N - n + 0.5) / (n + 0.5)), k1 1.2, b 0.75), given hybridb's
# own analyzed term lists of the pydoc corpus and 200 labeled queries.
#
# Lucene (and bm25s's "lucene" method) leave out BM25's constant factor (k1 + 1), which
# hybridb, tantivy and Robertson's formula keep; the check multiplies the reference's scores
# by it (rankings are the same either way).
#
# Usage: scripts/bm25/check-reference.sh   (needs PyPI; makes its own venv in target/bm25-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/bm25-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "bm25s==0.2.*" numpy scipy
fi
cargo build --release -q -p hybridb-bench
dump=target/bm25-dump.jsonl
"${CARGO_TARGET_DIR:-target}/release/hybridb-bench" bm25-dump --out "$dump" --queries "${QUERIES:-200}"
"$venv/bin/python" scripts/bm25/check_reference.py "$dump"
