#!/usr/bin/env python3
"""Measures the replication sink (issue 22): initial-copy throughput into PostgreSQL +
pgvector, feed lag under a steady write rate, and recall of filtered queries on a Citus
cluster against hybridb's exact answers. Standard library only.

  cargo build --release -p hybridb-cli
  PG=$(scripts/pgvector.sh up | tail -1); CITUS=$(scripts/citus-cluster.sh up ../citus | tail -1)
  scripts/replicate-bench.py --bin target/release/hybridb --pg "$PG" --citus "$CITUS"

Prints one JSON line per measurement, each with the 1-minute load average. Not run in CI.

  --old-bin OTHER     also copy with another build, interleaved with --bin (rounds: --rounds)
  --rates 500,2000    lag at each write rate in turn (--secs each), by --writers threads
  --psql PATH         after the lag runs, with the sink stopped: how many 384-d upserts/s
                      PostgreSQL absorbs into the copied table (HNSW, GIN), in plain SQL
"""
import argparse, http.client as httpclient, json, os, random, subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def vec(rng, dim):
    return [round(rng.uniform(-1, 1), 5) for _ in range(dim)]


def payload(rng, i):
    return {"lang": rng.choice(["en", "de", "fr", "es"]), "i": i, "group": rng.randrange(20)}


def load1():
    return round(os.getloadavg()[0], 2)


def start_sink(args, to, extra=(), binary=None):
    cmd = [binary or args.bin, "--json", "replicate", "--from", args.url, "--to", to, "--resync", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def copy_once(args, binary, label, server_bin):
    """Initial copy with `binary` as sink against a server run by `server_bin`; returns its JSON line."""
    server = subprocess.Popen([server_bin, "--data", args.data, "serve", "--port", "0", "--qdrant-port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().split()[-1]
    try:
        before = load1()
        sink = subprocess.Popen([binary, "--json", "replicate", "--from", url, "--to", args.pg, "--resync"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        done = wait_event(sink, "copy_done")
        sink.terminate()
        sink.wait(timeout=60)
        return {"measure": "initial_copy", "target": "pgvector", "build": label, "dim": args.dim, "rows": done["rows"],
                "load_secs": round(done["load_secs"], 2), "rows_per_sec": round(done["rows"] / done["load_secs"]),
                "index_secs": round(done["index_secs"], 2), "load1_before": before, "load1_after": load1()}
    finally:
        server.terminate()
        server.wait(timeout=30)


class Writers:
    """`writers` threads, each on its own keep-alive connection, sending upserts of `batch`
    entities at `rate` entities/s in total. Bodies are assembled from pre-encoded vectors, so
    the generator costs little beside the server and the sink."""

    def __init__(self, args, rng, rate, secs, batch=100):
        self.args, self.rate, self.secs, self.batch = args, rate, secs, batch
        pool_rng = random.Random(rng.random())
        self.pool = [json.dumps(vec(pool_rng, args.dim)) for _ in range(1000)]
        self.sent = 0
        self.lock = threading.Lock()

    def body(self, rng):
        keys = {f"k{rng.randrange(self.args.n)}" for _ in range(self.batch)}
        ents = ",".join('{"key":"%s","payload":%s,"vector":%s}' % (k, json.dumps(payload(rng, -1)),
                                                                    self.pool[rng.randrange(len(self.pool))])
                        for k in keys)
        return ('{"entities":[%s]}' % ents).encode(), len(keys)

    def run(self):
        u = urllib.parse.urlparse(self.args.url)
        t0 = time.time()

        def one(i):
            rng = random.Random(1000 + i)
            conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=120)
            mine = 0
            share = self.rate / self.args.writers
            while time.time() - t0 < self.secs:
                data, n = self.body(rng)
                conn.request("PUT", "/collections/docs/entities", body=data,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise SystemExit(f"write failed: HTTP {r.status}")
                mine += n
                time.sleep(max(0.0, t0 + mine / share - time.time()))
            with self.lock:
                self.sent += mine

        threads = [threading.Thread(target=one, args=(i,)) for i in range(self.args.writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.sent / (time.time() - t0)


def sql_upserts(args, rng):
    """Upserts of new 384-d vectors for existing ids, in batches of 1,000, straight into the
    copied table (HNSW + GIN), with nothing of hybridb running: PostgreSQL's own ceiling."""
    psql = [args.psql, "-X", "-q", "-t", "-A", args.pg, "-v", "ON_ERROR_STOP=1"]
    prep = f"""
      DROP TABLE IF EXISTS bench_stage;
      CREATE UNLOGGED TABLE bench_stage AS
        SELECT id, (SELECT array_agg(random() * 2 - 1)::vector({args.dim}) FROM generate_series(1, {args.dim}) WHERE g > 0) AS v,
               row_number() OVER () AS n
        FROM (SELECT id, g FROM (SELECT id, row_number() OVER (ORDER BY random()) AS g FROM hybridb.docs) x
              WHERE g <= {args.sql_rows}) y;
    """
    subprocess.run(psql + ["-c", prep], check=True)
    steps = []
    for b in range(args.sql_rows // 1000):
        steps.append(f"""INSERT INTO hybridb.docs AS t (id, version, updated_at, payload, embedding)
            SELECT s.id, d.version + 1, now(), d.payload, s.v FROM bench_stage s JOIN hybridb.docs d USING (id)
            WHERE s.n > {b * 1000} AND s.n <= {(b + 1) * 1000}
            ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at,
              payload = excluded.payload, embedding = excluded.embedding WHERE t.version < excluded.version;""")
    before = load1()
    t0 = time.time()
    subprocess.run(psql, input="\n".join(steps), text=True, check=True)
    secs = time.time() - t0
    subprocess.run(psql + ["-c", "DROP TABLE bench_stage"], check=True)
    return {"measure": "sql_upserts", "target": "pgvector", "dim": args.dim, "rows": args.sql_rows, "batch": 1000,
            "secs": round(secs, 2), "rows_per_sec": round(args.sql_rows / secs), "load1_before": before, "load1_after": load1()}


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
    ap.add_argument("--old-bin")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rates", default="2000")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--secs", type=int, default=60)
    ap.add_argument("--psql")
    ap.add_argument("--sql-rows", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()
    rng = random.Random(1)
    tmp = tempfile.mkdtemp(prefix="hybridb-repbench-")
    data = args.data = os.path.join(tmp, "data")
    src = os.path.join(tmp, "in.jsonl")
    with open(src, "w") as f:
        for i in range(args.n):
            f.write(json.dumps({"key": f"k{i}", "payload": payload(rng, i), "vector": vec(rng, args.dim)}) + "\n")
    subprocess.run([args.bin, "--data", data, "collections", "create", "docs", "--dim", str(args.dim),
                    "--metric", "cosine", "--index", "exact", "--payload-index", "lang=keyword",
                    "--payload-index", "group=integer"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([args.bin, "--data", data, "--json", "import", "docs", src, "--batch", "5000"],
                   check=True, stdout=subprocess.DEVNULL)
    if args.old_bin:
        # Before/after, interleaved: each build copies with its own server (the old server
        # may not know the new sink's options; the new sink falls back).
        for r in range(args.rounds):
            for label, b in (("old", args.old_bin), ("new", args.bin)):
                print(json.dumps({**copy_once(args, b, label, b), "round": r}), flush=True)
    server = subprocess.Popen([args.bin, "--data", data, "serve", "--port", "0", "--qdrant-port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    args.url = server.stdout.readline().split()[-1]
    try:
        # 1. Initial copy into single-node pgvector.
        sink = start_sink(args, args.pg)
        before = load1()
        done = wait_event(sink, "copy_done")
        print(json.dumps({"measure": "initial_copy", "target": "pgvector", "dim": args.dim, "rows": done["rows"],
                          "load_secs": round(done["load_secs"], 2),
                          "rows_per_sec": round(done["rows"] / done["load_secs"]),
                          "index_secs": round(done["index_secs"], 2), "load1_before": before, "load1_after": load1()}),
              flush=True)
        wait_event(sink, "idle")
        # 2. Lag at steady write rates.
        lags = []
        state = {"applied": 0}
        def collect():
            for line in sink.stdout:
                ev = json.loads(line)
                if ev.get("event") == "applied":
                    lags.extend(ev["lags_ms"])
                    state["applied"] = ev["applied"]
        threading.Thread(target=collect, daemon=True).start()
        for rate in [int(r) for r in args.rates.split(",")]:
            lags.clear()
            before = load1()
            achieved = Writers(args, rng, rate, args.secs).run()
            head = http("GET", f"{args.url}/stats")["last_seq"]
            t_end = time.time()
            while state["applied"] < head and time.time() - t_end < 600:
                time.sleep(0.2)
            drain = round(time.time() - t_end, 1)
            got = sorted(lags)
            pct = lambda p: got[min(len(got) - 1, int(p * len(got)))] if got else None
            print(json.dumps({"measure": "lag", "target": "pgvector", "asked_writes_per_sec": rate,
                              "writes_per_sec": round(achieved), "writers": args.writers, "events": len(got),
                              "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": got[-1] if got else None,
                              "caught_up_secs_after_load": drain, "load1_before": before, "load1_after": load1()}),
                  flush=True)
        sink.terminate()
        sink.wait(timeout=30)
        print(json.dumps({"measure": "sigterm", "exit_code": sink.returncode}), flush=True)
        if args.psql:
            print(json.dumps(sql_upserts(args, rng)), flush=True)
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
