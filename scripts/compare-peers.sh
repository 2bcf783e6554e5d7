#!/usr/bin/env bash
# Runs hybridb-bench ann and the peer engines (../shared/bench/peers.py) on one dataset in one
# go, then compare.py. Usage:
#   scripts/compare-peers.sh DATASET_DIR [METRIC] [BUILD_THREADS] [EXTRA hybridb-bench ARGS...]
# DATASET_DIR holds base.{f,b}vecs, queries.{f,b}vecs, groundtruth.ivecs. Output goes to
# $OUT (default /tmp/hybridb-compare/<dataset>-<metric>-<threads>t.jsonl). $REPEAT (default 5)
# timed runs per ef, the fastest counting, for every engine: raise it for small query sets (a
# run of bigann10k's 100 queries takes ~2 ms, and machine noise decides a best of 5).
# Needs: bash ../shared/bench/setup.sh (venv at $PEERS_VENV, default /tmp/hybridb-peers-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?dataset folder}; metric=${2:-l2}; threads=${3:-1}; shift $(( $# < 3 ? $# : 3 ))
venv=${PEERS_VENV:-/tmp/hybridb-peers-venv}
ef=${EF:-10,12,14,16,20,24,28,32,40,48,64,80,120,160}
repeat=${REPEAT:-5}
base=$(ls "$data"/base.*vecs); queries=$(ls "$data"/queries.*vecs); gt="$data/groundtruth.ivecs"
name=$(basename "$data")
mkdir -p /tmp/hybridb-compare
out=${OUT:-/tmp/hybridb-compare/$name-$metric-${threads}t.jsonl}
cargo build --release -q -p hybridb-bench
target/release/hybridb-bench ann --base "$base" --queries "$queries" --gt "$gt" --metric "$metric" \
  --ef "$ef" --build-threads "$threads" --repeat "$repeat" "$@" | tee "$out"
pm=$metric; [ "$pm" = dot ] && pm=ip
"$venv/bin/python" ../shared/bench/peers.py --base "$base" --queries "$queries" --gt "$gt" \
  --metric "$pm" --ef "$ef" --build-threads "$threads" --repeat "$repeat" \
  --engines hnswlib,faiss,usearch | tee -a "$out"
python3 ../shared/bench/compare.py "$out" --ours hybridb
