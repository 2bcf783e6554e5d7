"""Generates a Python client from a running hybridb server's OpenAPI document with
openapi-python-client, then runs the README's walkthrough through that client: create,
upsert, search, filtered search, get, count, changes, a refused bad write (answered with the
client's typed error model), delete, backup, verify, stats, metrics, drop.

    python scripts/openapi/client_walkthrough.py --url http://127.0.0.1:7411 \\
        --key READ_WRITE_KEY --read-key READ_ONLY_KEY --workdir DIR

The server must be fresh (no collection `docs`) and run with both keys. The client is
generated into DIR (a temporary folder: nothing generated is kept). Exits non-zero, saying
what differed, on any failure. Run by crates/hybridb-cli/tests/openapi_client.rs inside the
virtual environment it makes from requirements.txt beside this file.
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

# Ids derived from the user keys `intro` and `einf` (UUID v5): the same as in the README.
INTRO = uuid.UUID("c4108535-e20b-5666-81f8-37e469cb4074")
EINF = uuid.UUID("8e137603-08bc-5e94-bcea-14d37598272a")


def generate(url: str, key: str, workdir: str) -> None:
    """Downloads the document and generates the `hybridb_client` package into `workdir`."""
    request = urllib.request.Request(url.rstrip("/") + "/openapi.json")
    request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=30) as response:
        document = json.load(response)
    path = os.path.join(workdir, "openapi.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out)
    command = [
        sys.executable, "-m", "openapi_python_client", "generate",
        "--path", path,
        "--output-path", os.path.join(workdir, "hybridb_client"),
        "--config", os.path.join(HERE, "client-config.yml"),
        "--meta", "none",
        "--fail-on-warning",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or "Warning" in done.stdout + done.stderr:
        raise SystemExit(
            f"openapi-python-client failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


def expect(result, kind, what: str):
    """`result` if it is a `kind`, else fails naming `what` and the error answer, if any."""
    if not isinstance(result, kind):
        detail = result
        error = getattr(result, "error", None)
        if error is not None:
            detail = f"{error.code}: {error.message}"
        raise AssertionError(f"{what}: expected {kind.__name__}, got {detail!r}")
    return result


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def refused(response, status: int, code, what: str):
    """Checks that `response` (a `sync_detailed` answer) is the typed error `code`."""
    from hybridb_client.models import ErrorBody

    check(response.status_code == status, f"{what}: status {response.status_code}, not {status}")
    body = expect(response.parsed, ErrorBody, what)
    check(body.error.code == code, f"{what}: code {body.error.code!r}, not {code!r}")
    check(bool(body.error.message), f"{what}: no message")
    return body


def walkthrough(url: str, key: str, read_key: str) -> list[str]:
    """The README walkthrough through the generated client; returns the steps done."""
    from hybridb_client import AuthenticatedClient, Client
    from hybridb_client.api.admin import backup, healthz, metrics, stats, verify
    from hybridb_client.api.changes import list_changes
    from hybridb_client.api.collections import create_collection, drop_collection, get_collection
    from hybridb_client.api.entities import count_entities, delete_entities, get_entity
    from hybridb_client.api.entities import upsert_entities
    from hybridb_client.api.search import search
    from hybridb_client.models import (
        BackupBody, BackupOut, ChangesOut, CollectionOut, CountBody, CountOut, CreateCollection,
        DeleteBody, DeleteOut, Dropped, EntityIn, EntityOut, ErrorCode, Filter, HealthOut,
        MetricSpec, Payload, SearchBody, SearchOut, StatsOut, UpsertBody, UpsertOut, VerifyBody,
        VerifyOut,
    )
    from hybridb_client.types import Unset

    rw = AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
    ro = AuthenticatedClient(base_url=url, token=read_key, raise_on_unexpected_status=True)
    anonymous = Client(base_url=url, raise_on_unexpected_status=True)
    steps = []

    health = expect(healthz.sync(client=anonymous), HealthOut, "healthz")
    check(health.status == "ok", f"healthz: {health.status}")

    # Create a collection of 3-dimensional vectors compared by cosine similarity.
    created = expect(
        create_collection.sync(
            "docs", client=rw, body=CreateCollection(dim=3, metric=MetricSpec.COSINE)
        ),
        CollectionOut,
        "create",
    )
    check(created.name == "docs" and created.config.dim == 3, f"create: {created}")
    check(created.config.metric == MetricSpec.COSINE, f"create: {created.config.metric}")
    steps.append("create")

    # Write two entities in one transaction: a JSON payload and a vector under one id.
    def entity(key_: str, lang: str, title: str, vector: list[float]) -> EntityIn:
        payload = Payload.from_dict({"lang": lang, "title": title})
        return EntityIn(key=key_, payload=payload, vector=vector)

    written = expect(
        upsert_entities.sync(
            "docs",
            client=rw,
            body=UpsertBody(
                entities=[
                    entity("intro", "en", "Introduction", [0.9, 0.1, 0.0]),
                    entity("einf", "de", "Einführung", [0.1, 0.9, 0.0]),
                ]
            ),
        ),
        UpsertOut,
        "upsert",
    )
    check([w.id for w in written.written] == [INTRO, EINF], f"upsert: {written}")
    check([w.version for w in written.written] == [1, 1], f"upsert: {written}")
    steps.append("upsert")

    # The nearest entity to a vector, with its payload.
    found = expect(
        search.sync(
            "docs", client=ro, body=SearchBody(vector=[1.0, 0.0, 0.0], k=1, with_payload=True)
        ),
        SearchOut,
        "search",
    )
    check(len(found.hits) == 1 and found.hits[0].id == INTRO, f"search: {found}")
    check(found.hits[0].payload["title"] == "Introduction", f"search: {found.hits[0].payload}")
    check(found.hits[0].score > 0.99, f"search: score {found.hits[0].score}")
    steps.append("search")

    # The same, only among entities whose payload has lang = "de".
    german = Filter.from_dict({"must": [{"key": "lang", "match": {"value": "de"}}]})
    found = expect(
        search.sync(
            "docs", client=ro, body=SearchBody(vector=[1.0, 0.0, 0.0], k=1, filter_=german)
        ),
        SearchOut,
        "filtered search",
    )
    check([h.id for h in found.hits] == [EINF], f"filtered search: {found}")
    check(isinstance(found.hits[0].payload, Unset), "filtered search: payload not asked for")
    steps.append("filtered search")

    # Read one entity back by id.
    got = expect(get_entity.sync("docs", INTRO, client=ro, with_vector=False), EntityOut, "get")
    check(got.id == INTRO and got.version == 1, f"get: {got}")
    check(got.payload["lang"] == "en", f"get: {got.payload}")
    check(isinstance(got.vector, Unset), f"get: vector {got.vector} not asked for")
    steps.append("get")

    # Count, and the change feed so far.
    counted = expect(count_entities.sync("docs", client=ro, body=CountBody()), CountOut, "count")
    check(counted.count == 2, f"count: {counted.count}")
    steps.append("count")
    feed = expect(list_changes.sync(client=ro, since=0, limit=10), ChangesOut, "changes")
    check(feed.next_since == 3, f"changes: next_since {feed.next_since}")
    check(
        [(e.seq, e.kind) for e in feed.events]
        == [(1, "collection_created"), (2, "entity_created"), (3, "entity_created")],
        f"changes: {feed.events}",
    )
    check(feed.events[1].id == INTRO and feed.events[2].id == EINF, f"changes: {feed.events}")
    steps.append("changes")

    # A bad write is refused whole, with a stable code and the bad item named: the client
    # answers with its typed error model.
    bad = UpsertBody(entities=[EntityIn(key="short", vector=[1.0, 2.0])])
    refusal = refused(
        upsert_entities.sync_detailed("docs", client=rw, body=bad),
        400,
        ErrorCode.INVALID_ENTITY,
        "bad write",
    )
    check(
        refusal.error.message.startswith("entities[0]") and "dimension 2" in refusal.error.message,
        f"bad write: {refusal.error.message}",
    )
    check(isinstance(upsert_entities.sync("docs", client=rw, body=bad).error.code, ErrorCode),
          "bad write: the code is not the ErrorCode enum")
    counted = expect(count_entities.sync("docs", client=ro, body=CountBody()), CountOut, "count")
    check(counted.count == 2, f"bad write: wrote something: count {counted.count}")
    # ... and so are a write with a read-only key, a request without a key, a missing entity.
    refused(upsert_entities.sync_detailed("docs", client=ro, body=bad), 403,
            ErrorCode.FORBIDDEN, "read-only write")
    wrong_key = AuthenticatedClient(base_url=url, token="wrong", raise_on_unexpected_status=True)
    refused(count_entities.sync_detailed("docs", client=wrong_key, body=CountBody()), 401,
            ErrorCode.UNAUTHORIZED, "wrong key")
    refused(get_entity.sync_detailed("docs", uuid.uuid4(), client=ro), 404,
            ErrorCode.ENTITY_NOT_FOUND, "missing entity")
    steps.append("refused bad write")

    # Delete by id.
    deleted = expect(
        delete_entities.sync("docs", client=rw, body=DeleteBody(ids=[EINF])), DeleteOut, "delete"
    )
    check(deleted.deleted == 1, f"delete: {deleted}")
    steps.append("delete")

    # Operations: an online backup (the same name again is refused), an integrity check,
    # numbers.
    saved = expect(backup.sync(client=rw, body=BackupBody(path="walkthrough.redb")), BackupOut,
                   "backup")
    check(saved.entities == 1 and saved.path.endswith("walkthrough.redb"), f"backup: {saved}")
    refused(backup.sync_detailed(client=rw, body=BackupBody(path="walkthrough.redb")), 409,
            ErrorCode.BACKUP_EXISTS, "second backup")
    steps.append("backup")
    report = expect(verify.sync(client=rw, body=VerifyBody()), VerifyOut, "verify")
    check(report.clean and report.collections[0].entities == 1, f"verify: {report}")
    report = expect(verify.sync(client=rw), VerifyOut, "verify without a body")
    check(report.clean, f"verify without a body: {report}")
    steps.append("verify")
    numbers = expect(stats.sync(client=ro), StatsOut, "stats")
    check(numbers.last_seq == 4 and numbers.collections[0].count == 1, f"stats: {numbers}")
    text = metrics.sync(client=ro)
    check(isinstance(text, str) and 'hybridb_collection_entities{collection="docs"} 1' in text,
          "metrics: no entity count for docs")
    steps.append("stats and metrics")

    # Drop the collection.
    dropped = expect(drop_collection.sync("docs", client=rw), Dropped, "drop")
    check(dropped.name == "docs" and dropped.dropped, f"drop: {dropped}")
    refused(get_collection.sync_detailed("docs", client=ro), 404,
            ErrorCode.COLLECTION_NOT_FOUND, "dropped collection")
    steps.append("drop")

    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--key", required=True, help="a read-write API key")
    parser.add_argument("--read-key", required=True, help="a read-only API key")
    parser.add_argument("--workdir", required=True, help="a folder for the generated client")
    args = parser.parse_args()

    started = time.monotonic()
    generate(args.url, args.read_key, args.workdir)
    generated = time.monotonic() - started
    sys.path.insert(0, args.workdir)
    importlib.invalidate_caches()
    steps = walkthrough(args.url, args.key, args.read_key)
    print(f"client generated in {generated:.1f} s; walkthrough passed: {', '.join(steps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
