#!/usr/bin/env bash
# LangChain's and LlamaIndex's Qdrant vector stores against a real `hybridb serve`
# (scripts/qdrant/frameworks.py), from the command line: makes (or reuses) its own virtual
# environment from frameworks-requirements.txt, starts the server on free loopback ports with
# a fresh data folder, runs the checks, stops the server and prints the wall time of each step.
#
#   scripts/qdrant/frameworks.sh [--bin PATH] [-- FRAMEWORKS.PY ARGS, e.g. --only langchain]
#
# --bin defaults to $CARGO_TARGET_DIR/release/hybridb (target/release/hybridb), which
# `cargo build --release -p hybridb-cli` makes. The environment goes to $HYBRIDB_FRAMEWORKS_VENV
# (default: the target folder's tmp/frameworks-venv, the one the Rust test
# crates/hybridb-cli/tests/qdrant_frameworks.rs makes); HYBRIDB_PYTHON names the interpreter
# that makes it (default python3). Exits non-zero when a check fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/hybridb"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--bin PATH] [-- frameworks.py args]" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "no hybridb binary at $bin (cargo build --release -p hybridb-cli)" >&2; exit 2; }

requirements="$here/frameworks-requirements.txt"
venv="${HYBRIDB_FRAMEWORKS_VENV:-$target/tmp/frameworks-venv}"
base="${HYBRIDB_PYTHON:-python3}"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
# The stamp the Rust test writes too (tests/common/mod.rs): python's version, then the
# requirements; either one reuses the environment the other made.
{ "$base" --version | head -n 1; cat "$requirements"; } > "$data/stamp"
t0=$(date +%s)
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$data/stamp" "$venv/hybridb-requirements"; then
    echo "making the virtual environment $venv (pip install, a few minutes)"
    mkdir -p "$(dirname "$venv")"
    rm -rf "$venv.new"
    "$base" -m venv "$venv.new"
    "$venv.new/bin/python" -m pip install --disable-pip-version-check --no-input --quiet -r "$requirements"
    cp "$data/stamp" "$venv.new/hybridb-requirements"
    rm -rf "$venv"
    mv "$venv.new" "$venv"
fi
t1=$(date +%s)
python="$venv/bin/python"

log="$data/serve.log"
ports="$("$python" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')"
read -r port qport <<< "$ports"
"$bin" serve --data "$data/db" --port "$port" --qdrant-port "$qport" > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do
    grep -q "Qdrant-compatible API on" "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
status=0
"$python" "$here/frameworks.py" --url "http://127.0.0.1:$qport" "$@" || status=$?
t2=$(date +%s)
echo "virtual environment: $((t1 - t0)) s; checks: $((t2 - t1)) s"
exit "$status"
