#!/usr/bin/env python3
"""Measures the replication sink (issue 22): initial-copy throughput into PostgreSQL +
pgvector, feed lag under a steady write rate, and recall of filtered queries on a Citus
cluster against hybridb's exact answers. Standard library only.

  cargo build --release -p hybridb-cli
  PG=$(scripts/pgvector.sh up | tail -1); CITUS=$(scripts/citus-cluster.sh up ../citus | tail -1)
  scripts/replicate-bench.py --bin target/release/hybridb --pg "$PG" --citus "$CITUS"

Prints one JSON line per measurement. Not run in CI.
"""
import argparse, json, os, random, subprocess, sys, tempfile, threading, time, urllib.request


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def vec(rng, dim):
    return [round(rng.uniform(-1, 1), 5) for _ in range(dim)]


def payload(rng, i):
    return {"lang": rng.choice(["en", "de", "fr", "es"]), "i": i, "group": rng.randrange(20)}


def start_sink(args, to, extra=()):
    cmd = [args.bin, "--json", "replicate", "--from", args.url, "--to", to, "--resync", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def wait_event(proc, name):
    for line in proc.stdout:
        ev = json.loads(line)
        if ev.get("event") == name:
            return ev
    raise SystemExit(f"sink ended before {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--pg", required=True)
    ap.add_argument("--citus")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--secs", type=int, default=60)
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()
    rng = random.Random(1)
    tmp = tempfile.mkdtemp(prefix="hybridb-repbench-")
    data = os.path.join(tmp, "data")
    src = os.path.join(tmp, "in.jsonl")
    with open(src, "w") as f:
        for i in range(args.n):
            f.write(json.dumps({"key": f"k{i}", "payload": payload(rng, i), "vector": vec(rng, args.dim)}) + "\n")
    subprocess.run([args.bin, "--data", data, "collections", "create", "docs", "--dim", str(args.dim),
                    "--metric", "cosine", "--index", "exact", "--payload-index", "lang=keyword",
                    "--payload-index", "group=integer"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([args.bin, "--data", data, "--json", "import", "docs", src, "--batch", "5000"],
                   check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([args.bin, "--data", data, "serve", "--port", "0", "--qdrant-port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    args.url = server.stdout.readline().split()[-1]
    try:
        # 1. Initial copy into single-node pgvector.
        sink = start_sink(args, args.pg)
        done = wait_event(sink, "copy_done")
        print(json.dumps({"measure": "initial_copy", "target": "pgvector", "dim": args.dim, "rows": done["rows"],
                          "load_secs": round(done["load_secs"], 2),
                          "rows_per_sec": round(done["rows"] / done["load_secs"]),
                          "index_secs": round(done["index_secs"], 2)}), flush=True)
        wait_event(sink, "idle")
        # 2. Lag at a steady write rate (batches of 100 every 100/rate s).
        lags = []
        def collect():
            for line in sink.stdout:
                ev = json.loads(line)
                if ev.get("event") == "applied":
                    lags.extend(ev["lags_ms"])
        threading.Thread(target=collect, daemon=True).start()
        batch = 100
        interval = batch / args.rate
        t0 = time.time()
        sent = 0
        while time.time() - t0 < args.secs:
            ents = [{"key": f"k{rng.randrange(args.n)}", "payload": payload(rng, -1), "vector": vec(rng, args.dim)}
                    for _ in range(batch)]
            ents = list({e["key"]: e for e in ents}.values())
            http("PUT", f"{args.url}/collections/docs/entities", {"entities": ents})
            sent += len(ents)
            time.sleep(max(0.0, t0 + (sent / args.rate) - time.time()))
        time.sleep(3)
        lags.sort()
        pct = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))] if lags else None
        print(json.dumps({"measure": "lag", "target": "pgvector", "writes_per_sec": round(sent / args.secs),
                          "events": len(lags), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": lags[-1] if lags else None}),
              flush=True)
        sink.terminate()
        sink.wait(timeout=30)
        print(json.dumps({"measure": "sigterm", "exit_code": sink.returncode}), flush=True)
        # 3. Recall of filtered queries on Citus against hybridb's exact answers.
        if args.citus:
            csink = start_sink(args, args.citus)
            cdone = wait_event(csink, "copy_done")
            print(json.dumps({"measure": "initial_copy", "target": "citus", "rows": cdone["rows"],
                              "load_secs": round(cdone["load_secs"], 2),
                              "rows_per_sec": round(cdone["rows"] / cdone["load_secs"]),
                              "index_secs": round(cdone["index_secs"], 2)}), flush=True)
            wait_event(csink, "idle")
            recalls, full = [], 0
            for q in range(args.queries):
                v = vec(rng, args.dim)
                flt = [{"must": [{"key": "lang", "match": {"value": rng.choice(["en", "de", "fr", "es"])}}]},
                       {"must": [{"key": "group", "match": {"any": [rng.randrange(20), rng.randrange(20)]}}]},
                       {"must": [{"key": "group", "range": {"gte": 3, "lt": 5}}], "must_not": [{"key": "lang", "match": {"value": "en"}}]},
                       {"must": [{"key": "group", "match": {"value": rng.randrange(20)}}, {"key": "lang", "match": {"value": "de"}}]}][q % 4]
                exact = http("POST", f"{args.url}/collections/docs/search", {"vector": v, "k": 10, "filter": flt})["hits"]
                out = subprocess.run([args.bin, "--json", "search", "docs", "--vector", json.dumps(v), "-k", "10",
                                      "--filter", json.dumps(flt), "--target", args.citus],
                                     check=True, capture_output=True, text=True).stdout
                got = json.loads(out)["hits"]
                truth = {h["id"] for h in exact}
                recalls.append(len(truth & {h["id"] for h in got}) / max(1, len(truth)))
                full += len(got) == len(exact)
            print(json.dumps({"measure": "citus_recall_at_10", "queries": args.queries,
                              "recall": round(sum(recalls) / len(recalls), 4), "min": min(recalls),
                              "k_rows_where_k_match": f"{full}/{args.queries}"}), flush=True)
            csink.terminate()
            csink.wait(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
