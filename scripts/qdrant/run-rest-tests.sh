#!/usr/bin/env bash
# Runs test files of Qdrant's own REST test suite against hybridb's Qdrant-compatible API and
# prints pass/fail per file. Nothing of Qdrant's is copied into this repository: pass the
# folder of a Qdrant checkout (one holding tests/openapi and docs/redoc/master/openapi.json).
#
#   scripts/qdrant/run-rest-tests.sh QDRANT_DIR [test_file.py ...]
#
# Without files it runs the files of the first slice of issue 20 (below). It builds hybridb
# (release), starts `hybridb serve` on free ports in a temporary folder, makes a virtual
# environment under target/qdrant-rest-venv from rest-tests-requirements.txt, runs each file
# with pytest (a JUnit report per file lands in target/qdrant-rest-tests/), then stops the
# server. `target` is Cargo's target folder: CARGO_TARGET_DIR when set. Exit status 0 when every
# file passed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
qdrant="${1:?usage: run-rest-tests.sh QDRANT_DIR [test_file.py ...]}"
shift
qdrant="$(cd "$qdrant" && pwd)"
[ -d "$qdrant/tests/openapi" ] || { echo "no tests/openapi under $qdrant" >&2; exit 2; }
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(test_root_api.py test_collection_exists.py test_alias.py test_basic_retrieve_api.py
         test_count.py test_delete_points.py test_filtered_delete.py test_payload_operations.py
         test_payload_indexing.py test_score_threshold.py test_euclid_dist.py
         test_manhattan_dist.py test_uuid_ops.py test_match_any_empty.py test_filter.py
         test_query.py)
fi

# Cargo's target folder (CARGO_TARGET_DIR when set) holds the build, the venv and the reports.
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/qdrant-rest-tests"
venv="$target/qdrant-rest-venv"
mkdir -p "$out"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/rest-tests-requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/rest-tests-requirements.txt"
  cp "$here/rest-tests-requirements.txt" "$venv/requirements.txt"
fi

cargo build --release --quiet -p hybridb-cli --manifest-path "$root/Cargo.toml"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
(cd "$work" && exec "$target/release/hybridb" serve --port 0 --qdrant-port "$port" >"$work/serve.log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  grep -q "Qdrant-compatible API" "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done

export QDRANT_HOST="http://127.0.0.1:$port"
export OPENAPI_FILE="$qdrant/docs/redoc/master/openapi.json"
failed=0
printf '%-40s %6s %6s %6s %6s\n' file passed failed errors skipped
for f in "${files[@]}"; do
  report="$out/${f%.py}.xml"
  (cd "$qdrant/tests" && "$venv/bin/python" -m pytest -q -p no:cacheprovider -o addopts= \
      --timeout 120 --junitxml "$report" "openapi/$f" >"$out/${f%.py}.log" 2>&1) || true
  "$venv/bin/python" - "$f" "$report" <<'PY' || failed=1
import sys, xml.etree.ElementTree as ET
name, path = sys.argv[1], sys.argv[2]
try:
    s = ET.parse(path).getroot()
    s = s if s.tag == "testsuite" else s.find("testsuite")
    t, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
except Exception as x:  # no report: pytest could not even collect the file
    print("%-40s  no report (%s)" % (name, x)); sys.exit(1)
print("%-40s %6d %6d %6d %6d" % (name, t - f - e - k, f, e, k))
sys.exit(1 if f or e else 0)
PY
done
exit $failed
