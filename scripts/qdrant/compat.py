#!/usr/bin/env python3
"""The qdrant-client quickstart flow, and more, against hybridb's Qdrant-compatible API,
each result compared with qdrant-client's own in-memory engine (QdrantClient(":memory:"))
fed the same data: same ids in the same order, scores within 1e-4, same payloads and vectors.
Named dense and sparse vectors, hybrid queries and fusion are checked in compat_named.py;
recommend, discover, context, lookup_from, order_by and sample in compat_query.py.

Run by crates/hybridb-cli/tests/qdrant_client.rs against a real `hybridb serve`:
    compat.py --url http://127.0.0.1:6333 --main-url http://127.0.0.1:7411 \
        --key RW --read-key RO
Prints one line per check and ends with "N passed, 0 failed"; exits 1 on any failure.
"""

import argparse
import random
import sys
import traceback
import uuid
import warnings

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

import compat_named
import compat_query

warnings.filterwarnings("ignore")  # api key over http, server version checks

TOL = 1e-4
DIM = 8
N = 240
CITIES = ["Berlin", "London", "Moscow", "Paris", "Rome"]


def point_id(i):
    # Half integers, half UUIDs, as the quickstart mixes them.
    return i if i % 2 == 0 else str(uuid.UUID(int=(0x5C56C793 << 96) + i))


def make_points(rng):
    points = []
    for i in range(N):
        vector = [rng.uniform(-1, 1) for _ in range(DIM)]
        payload = {
            "city": CITIES[i % len(CITIES)],
            "n": i,
            "price": round(rng.uniform(0, 100), 2),
            "meta": {"tag": "t%d" % (i % 7), "ok": i % 3 == 0},
        }
        points.append(models.PointStruct(id=point_id(i), vector=vector, payload=payload))
    return points


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        try:
            fn()
            self.passed += 1
            print("ok    %s" % name)
        except Exception:  # noqa: BLE001 - report every failure and go on
            self.failed += 1
            print("FAIL  %s\n%s" % (name, traceback.format_exc()))


def same_points(ours, theirs, what, scores=True, vectors=False):
    assert [p.id for p in ours] == [p.id for p in theirs], "%s: ids %s != %s" % (
        what, [p.id for p in ours], [p.id for p in theirs])
    for a, b in zip(ours, theirs):
        if scores:
            assert abs(a.score - b.score) <= TOL * max(1.0, abs(b.score)), "%s: %s score %s != %s" % (
                what, a.id, a.score, b.score)
        assert (a.payload or {}) == (b.payload or {}), "%s: %s payload %s != %s" % (
            what, a.id, a.payload, b.payload)
        if vectors:
            assert len(a.vector) == len(b.vector), what
            for x, y in zip(a.vector, b.vector):
                assert abs(x - y) <= TOL, "%s: %s vector %s != %s" % (what, a.id, a.vector, b.vector)


def flow(ours, ref, distance, rng, checks):
    name = "compat_%s" % distance.value.lower()
    points = make_points(rng)
    exact = models.SearchParams(exact=True)
    queries = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(5)]

    def both(fn):
        return fn(ours), fn(ref)

    def setup():
        for c in (ours, ref):
            if c.collection_exists(name):
                c.delete_collection(name)
            assert c.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=distance))
            # The list form and the column form of an upsert.
            c.upsert(name, points=points[: N // 2], wait=True)
            rest = points[N // 2:]
            c.upsert(name, points=models.Batch(ids=[p.id for p in rest], vectors=[p.vector for p in rest],
                                               payloads=[p.payload for p in rest]), wait=True)
        for field, schema in (("city", models.PayloadSchemaType.KEYWORD), ("n", models.PayloadSchemaType.INTEGER)):
            ours.create_payload_index(name, field, field_schema=schema, wait=True)
        info = ours.get_collection(name)
        assert info.points_count == N, info.points_count
        assert info.config.params.vectors.size == DIM
        assert info.config.params.vectors.distance == distance
        assert set(info.payload_schema) == {"city", "n"}, info.payload_schema
        assert name in [c.name for c in ours.get_collections().collections]
    checks.run("%s: create, upsert (list and batch), payload indexes, info" % name, setup)

    def nearest():
        for i, q in enumerate(queries):
            a, b = both(lambda c: c.query_points(name, query=q, limit=10, with_payload=True,
                                                  search_params=exact).points)
            same_points(a, b, "query %d" % i)
            # The default (HNSW) search finds the same on this small set.
            a = ours.query_points(name, query=q, limit=10).points
            assert len({p.id for p in a} & {p.id for p in b}) >= 9, "hnsw recall"
    checks.run("%s: query nearest by vector (scores within 1e-4)" % name, nearest)

    def filtered():
        flt = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="London"))],
                            must_not=[models.FieldCondition(key="n", range=models.Range(lt=50))])
        for q in queries[:3]:
            a, b = both(lambda c: c.query_points(name, query=q, query_filter=flt, limit=7, with_payload=True,
                                                  search_params=exact).points)
            same_points(a, b, "filtered query")
        flt = models.Filter(should=[models.FieldCondition(key="meta.tag", match=models.MatchAny(any=["t1", "t2"])),
                                    models.HasIdCondition(has_id=[point_id(3), point_id(4)])])
        a, b = both(lambda c: c.query_points(name, query=queries[0], query_filter=flt, limit=15,
                                              with_payload=["city", "meta.tag"], search_params=exact).points)
        same_points(a, b, "has_id, nested key, payload include")
    checks.run("%s: query with filters (match, range, any, has_id) and payload selectors" % name, filtered)

    def threshold_offset_vectors():
        a, b = both(lambda c: c.query_points(name, query=queries[1], limit=50, search_params=exact).points)
        # Midway between two scores: rounding cannot move a point across it.
        cut = (b[19].score + b[20].score) / 2
        a, b = both(lambda c: c.query_points(name, query=queries[1], limit=50, score_threshold=cut,
                                              search_params=exact).points)
        same_points(a, b, "score_threshold")
        assert len(a) == 20, len(a)
        a, b = both(lambda c: c.query_points(name, query=queries[2], limit=5, offset=7, with_vectors=True,
                                              with_payload=models.PayloadSelectorExclude(exclude=["meta"]),
                                              search_params=exact).points)
        same_points(a, b, "offset, vectors, exclude", vectors=True)
    checks.run("%s: score_threshold, offset, with_vectors, exclude" % name, threshold_offset_vectors)

    def by_id_and_listing():
        for pid in (point_id(10), point_id(11)):
            a, b = both(lambda c: c.query_points(name, query=pid, limit=6, search_params=exact).points)
            same_points(a, b, "nearest to point %s" % pid)
            a, b = both(lambda c: c.query_points(name, query=models.NearestQuery(nearest=pid), limit=6,
                                                  search_params=exact).points)
            same_points(a, b, "NearestQuery on point %s" % pid)
        flt = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Rome"))])
        a, b = both(lambda c: c.query_points(name, query_filter=flt, limit=8, offset=3, with_payload=True).points)
        same_points(a, b, "no query: filtered listing in id order")
    checks.run("%s: query by point id, and no query (listing)" % name, by_id_and_listing)

    def batch():
        reqs = [models.QueryRequest(query=q, limit=4, with_payload=True, params=exact) for q in queries]
        a, b = both(lambda c: c.query_batch_points(name, requests=reqs))
        assert len(a) == len(b) == len(queries)
        for x, y in zip(a, b):
            same_points(x.points, y.points, "query batch")
    checks.run("%s: query batch" % name, batch)

    def retrieve_scroll_count():
        ids = [point_id(i) for i in (0, 1, 5, 8, 13)] + [10 ** 9, str(uuid.uuid4())]
        a, b = both(lambda c: c.retrieve(name, ids=ids, with_vectors=True))
        by_id = {p.id: p for p in b}
        assert {p.id for p in a} == set(by_id), (a, b)
        for p in a:
            assert p.payload == by_id[p.id].payload
            assert all(abs(x - y) <= TOL for x, y in zip(p.vector, by_id[p.id].vector)), "vectors"
        for flt in (None, models.Filter(must=[models.FieldCondition(key="meta.ok", match=models.MatchValue(value=True))])):
            pages = []
            for c in (ours, ref):
                seen, offset = [], None
                while True:
                    page, offset = c.scroll(name, scroll_filter=flt, limit=17, offset=offset, with_payload=False)
                    seen.append(([p.id for p in page], offset))
                    if offset is None:
                        break
                pages.append(seen)
            assert pages[0] == pages[1], "scroll pages differ"
            a, b = both(lambda c: c.count(name, count_filter=flt, exact=True).count)
            assert a == b, (a, b)
    checks.run("%s: retrieve, scroll pages with offsets, count" % name, retrieve_scroll_count)

    def payload_updates():
        ids = [point_id(i) for i in (2, 3, 4)]
        under_20 = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=20))])
        steps = [
            lambda c: c.set_payload(name, payload={"color": "red", "n": 1000}, points=ids, wait=True),
            lambda c: c.set_payload(name, payload={"deep": 1}, points=ids[:1], key="meta", wait=True),
            lambda c: c.set_payload(name, payload={"young": True}, points=under_20, wait=True),
            lambda c: c.overwrite_payload(name, payload={"only": "this"}, points=[point_id(6)], wait=True),
            lambda c: c.delete_payload(name, keys=["price", "meta.tag"], points=ids, wait=True),
            lambda c: c.clear_payload(name, points_selector=[point_id(7)], wait=True),
            lambda c: c.delete_payload(name, keys=["young"], points=models.Filter(
                must=[models.FieldCondition(key="city", match=models.MatchValue(value="Paris"))]), wait=True),
        ]
        for step in steps:
            step(ours)
            step(ref)
        check = [point_id(i) for i in range(25)]
        a, b = both(lambda c: c.retrieve(name, ids=check))
        assert {p.id: p.payload for p in a} == {p.id: p.payload for p in b}, "payloads differ"
        try:
            ours.set_payload(name, payload={"x": 1}, points=[point_id(2), 77777], wait=True)
            raise AssertionError("a missing id must fail")
        except UnexpectedResponse as e:
            assert e.status_code == 404, e
        assert ours.retrieve(name, ids=[point_id(2)])[0].payload.get("x") is None, "nothing written"
    checks.run("%s: set (by ids, by filter, at a key), overwrite, delete keys, clear" % name, payload_updates)

    def batch_and_filters():
        ops = [
            models.UpsertOperation(upsert=models.PointsList(points=[
                models.PointStruct(id=point_id(90), vector=queries[0],
                                   payload={"city": "Oslo", "n": 3, "tags": ["a", "b", "c"],
                                            "note": ["Runners were running", "in the parks"],
                                            "diet": [{"food": "fish", "likes": True},
                                                     {"food": "kale", "likes": False}]})])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"extra": 1}, points=[point_id(90)])),
            models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["n"], points=[point_id(90)])),
            models.DeleteOperation(delete=models.PointIdsList(points=[point_id(11)])),
            models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(
                payload={"city": "Rome", "tags": []}, points=[point_id(12)])),
            models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[point_id(13)])),
        ]
        a, b = both(lambda c: c.batch_update_points(name, update_operations=ops, wait=True))
        assert len(a) == len(b) == len(ops), (a, b)
        a, b = both(lambda c: c.retrieve(name, ids=[point_id(i) for i in (90, 11, 12, 13)]))
        assert {p.id: p.payload for p in a} == {p.id: p.payload for p in b}, "payloads differ"
        fm = models.FieldCondition
        filters = [
            models.Filter(min_should=models.MinShould(conditions=[
                fm(key="city", match=models.MatchValue(value="Oslo")),
                fm(key="tags", match=models.MatchValue(value="a")),
                fm(key="n", range=models.Range(gte=50))], min_count=2)),
            models.Filter(must=[fm(key="tags", values_count=models.ValuesCount(gte=2))]),
            models.Filter(must=[fm(key="tags", values_count=models.ValuesCount(lt=1))]),
            models.Filter(must=[models.NestedCondition(nested=models.Nested(key="diet", filter=models.Filter(
                must=[fm(key="food", match=models.MatchValue(value="kale")),
                      fm(key="likes", match=models.MatchValue(value=True))])))]),
            models.Filter(must=[models.NestedCondition(nested=models.Nested(key="diet", filter=models.Filter(
                must=[fm(key="food", match=models.MatchValue(value="fish")),
                      fm(key="likes", match=models.MatchValue(value=True))])))]),
            models.Filter(must=[fm(key="city", match=models.MatchExcept(**{"except": ["Paris", "Oslo"]}))]),
        ]
        for i, f in enumerate(filters):
            a, b = both(lambda c: c.count(name, count_filter=f, exact=True).count)
            assert a == b, (i, a, b)
            a, b = both(lambda c: c.scroll(name, scroll_filter=f, limit=100)[0])
            assert [p.id for p in a] == [p.id for p in b], i
        # An index on a key through an array counts the points holding it.
        ours.create_payload_index(name, "diet[].food", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
        assert ours.get_collection(name).payload_schema["diet[].food"].points == 1
        ours.delete_payload_index(name, "diet[].food", wait=True)
        # A text index (stemming, stop words) gives candidates; the filter's meaning stays.
        assert ours.create_payload_index(name, "note", field_schema=models.TextIndexParams(
            type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True,
            stopwords=models.Language.ENGLISH,
            stemmer=models.SnowballParams(type=models.Snowball.SNOWBALL,
                                          language=models.SnowballLanguage.ENGLISH)), wait=True)
        schema = ours.get_collection(name).payload_schema["note"]
        assert schema.data_type == models.PayloadSchemaType.TEXT, schema
        for text in ("running", "parks", "running parks", "run"):
            f = models.Filter(must=[fm(key="note", match=models.MatchText(text=text))])
            a, b = both(lambda c: c.count(name, count_filter=f, exact=True).count)
            assert a == b, (text, a, b)
        ours.delete_payload_index(name, "note", wait=True)
        assert "note" not in ours.get_collection(name).payload_schema
        # A malformed operation fails the batch whole: nothing of it is written.
        before = ours.count(name, exact=True).count
        try:
            ours.batch_update_points(name, update_operations=[
                models.UpsertOperation(upsert=models.PointsList(points=[
                    models.PointStruct(id=point_id(91), vector=queries[1])])),
                models.UpsertOperation(upsert=models.PointsList(points=[
                    models.PointStruct(id=point_id(92), vector=queries[1][:2])])),
            ], wait=True)
            raise AssertionError("a bad vector must fail the batch")
        except UnexpectedResponse as e:
            assert e.status_code in (400, 422), e
            assert "operations[1]" in str(e.content), e.content
        assert ours.count(name, exact=True).count == before, "nothing written"
        # Collection metadata: kept from creation, merged by updates (None removes a key), as
        # the in-memory client keeps it.
        for c in (ours, ref):
            if c.collection_exists("compat_meta"):
                c.delete_collection("compat_meta")
            c.create_collection("compat_meta", vectors_config=models.VectorParams(size=DIM, distance=distance),
                                metadata={"owner": "search", "v": 1},
                                quantization_config=models.ScalarQuantization(
                                    scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)))
            c.update_collection("compat_meta", metadata={"owner": None, "model": "minilm"})
        a, b = both(lambda c: c.get_collection("compat_meta").config.metadata)
        assert a == b == {"v": 1, "model": "minilm"}, (a, b)
        q = ours.get_collection("compat_meta").config.quantization_config
        assert isinstance(q, models.ScalarQuantization), q
        for c in (ours, ref):
            c.delete_collection("compat_meta")
        # A collection update: tuning knobs accepted; an unknown vector name refused.
        assert ours.update_collection(name, hnsw_config=models.HnswConfigDiff(m=32),
                                      optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1000))
        try:
            ours.update_collection(name, vectors_config={"nope": models.VectorParamsDiff(on_disk=True)})
            raise AssertionError("an unknown vector must be refused")
        except UnexpectedResponse as e:
            assert e.status_code == 400, e
    checks.run("%s: batch update, collection update, min_should, values_count, nested, except" % name,
               batch_and_filters)

    def deletes():
        for c in (ours, ref):
            c.delete(name, points_selector=models.PointIdsList(points=[point_id(i) for i in range(30, 40)]), wait=True)
            c.delete(name, points_selector=models.FilterSelector(filter=models.Filter(
                must=[models.FieldCondition(key="city", match=models.MatchValue(value="Moscow"))])), wait=True)
        a, b = both(lambda c: c.count(name).count)
        assert a == b, (a, b)
        a, b = both(lambda c: c.query_points(name, query=queries[3], limit=10, search_params=exact,
                                              with_payload=True).points)
        same_points(a, b, "query after deletes")
    checks.run("%s: delete by ids and by filter" % name, deletes)
    return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the Qdrant port")
    ap.add_argument("--main-url", required=True, help="the native port (serves /qdrant)")
    ap.add_argument("--key", default=None)
    ap.add_argument("--read-key", default=None)
    args = ap.parse_args()
    ours = QdrantClient(url=args.url, api_key=args.key, prefer_grpc=False, timeout=30)
    ref = QdrantClient(":memory:")
    checks = Checks()
    rng = random.Random(20)
    distances = [models.Distance.COSINE, models.Distance.EUCLID, models.Distance.DOT, models.Distance.MANHATTAN]
    names = [flow(ours, ref, d, rng, checks) for d in distances]
    name = names[0]
    headers = {"api-key": args.key} if args.key else {}
    flows = names[:len(distances)]
    for i, n in enumerate(flows):
        compat_query.run(ours, ref, n, flows[(i + 1) % len(flows)], rng, checks, same_points, point_id,
                         args.url, headers)
    names.append(compat_named.run(ours, ref, rng, checks, same_points, args.url, headers))

    def aliases():
        ours.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name="compat_alias"))])
        assert ("compat_alias", name) in [(a.alias_name, a.collection_name) for a in ours.get_aliases().aliases]
        assert [a.alias_name for a in ours.get_collection_aliases(name).aliases] == ["compat_alias"]
        q = [0.1] * DIM
        a = ours.query_points("compat_alias", query=q, limit=3).points
        b = ours.query_points(name, query=q, limit=3).points
        assert [p.id for p in a] == [p.id for p in b]
        ours.update_collection_aliases(change_aliases_operations=[
            models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="compat_alias",
                                                                        new_alias_name="compat_alias2"))])
        assert ours.collection_exists("compat_alias2") and not ours.collection_exists("compat_alias")
        ours.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="compat_alias2"))])
        assert ours.get_aliases().aliases == []
    checks.run("aliases: create, list, query through, rename, delete", aliases)

    def older_search_api():
        q = [0.3] * DIM
        body = {"vector": q, "limit": 5, "with_payload": True, "params": {"exact": True}}
        r = httpx.post("%s/collections/%s/points/search" % (args.url, name), json=body, headers=headers)
        assert r.status_code == 200, r.text
        hits = r.json()["result"]
        ref_hits = ref.query_points(name, query=q, limit=5, with_payload=True).points
        assert [h["id"] for h in hits] == [p.id for p in ref_hits]
        for h, p in zip(hits, ref_hits):
            assert abs(h["score"] - p.score) <= TOL
        r = httpx.post("%s/collections/%s/points/search/batch" % (args.url, name),
                       json={"searches": [body, dict(body, limit=2)]}, headers=headers)
        assert [len(x) for x in r.json()["result"]] == [5, 2], r.text
    checks.run("older clients: points/search and points/search/batch", older_search_api)

    def unsupported():
        cases = [
            lambda: ours.create_collection("compat_multi", vectors_config={
                "image": models.VectorParams(size=4, distance=models.Distance.DOT,
                                             multivector_config=models.MultiVectorConfig(
                                                 comparator=models.MultiVectorComparator.MAX_SIM))}),
            lambda: ours.query_points(name, query=models.FormulaQuery(formula="$score")),
        ]
        for i, case in enumerate(cases):
            try:
                case()
                raise AssertionError("case %d was accepted" % i)
            except UnexpectedResponse as e:
                assert e.status_code == 400, (i, e)
                assert "not supported yet" in str(e.content), (i, e.content)
        assert not ours.collection_exists("compat_multi")
        r = httpx.get("%s/collections/nope" % args.url, headers=headers)
        assert r.status_code == 404 and "doesn't exist" in r.json()["status"]["error"], r.text
    checks.run("unsupported features answer 400 'not supported yet'; Qdrant's error form", unsupported)

    def keys_and_prefix():
        if args.read_key:
            ro = QdrantClient(url=args.url, api_key=args.read_key, prefer_grpc=False)
            assert ro.count(name).count > 0
            assert ro.query_points(name, query=[0.1] * DIM, limit=2).points
            try:
                ro.upsert(name, points=[models.PointStruct(id=1, vector=[0.1] * DIM)])
                raise AssertionError("a read-only key wrote")
            except UnexpectedResponse as e:
                assert e.status_code == 403, e
            anon = httpx.get("%s/collections" % args.url)
            assert anon.status_code == 401 and "error" in anon.json()["status"], anon.text
            bearer = httpx.get("%s/collections" % args.url, headers={"Authorization": "Bearer %s" % args.key})
            assert bearer.status_code == 200, bearer.text
        # The same API under /qdrant on the main port.
        main = QdrantClient(url=args.main_url, prefix="qdrant", api_key=args.key, prefer_grpc=False)
        assert set(names) <= {c.name for c in main.get_collections().collections}
        assert main.count(name).count == ours.count(name).count
    checks.run("API keys (api-key header, Bearer, read-only) and the /qdrant prefix on the main port",
               keys_and_prefix)

    def default_vector_name():
        # Qdrant's default vector is named "": a map holding only it is the unnamed vector.
        n = "compat_default_name"
        assert ours.create_collection(n, vectors_config={"": models.VectorParams(size=2, distance=models.Distance.EUCLID)})
        ours.upsert(n, points=[models.PointStruct(id=1, vector={"": [1.0, 0.0]}),
                               models.PointStruct(id=2, vector=[0.0, 1.0])], wait=True)
        hits = ours.query_points(n, query=[0.9, 0.1], using="", with_vectors=[""], limit=2).points
        assert [h.id for h in hits] == [1, 2] and hits[0].vector == [1.0, 0.0], hits
        assert ours.delete_collection(n)
    checks.run("the default vector name \"\" is the unnamed vector", default_vector_name)

    def cleanup():
        for n in names:
            assert ours.delete_collection(n)
        assert not ours.delete_collection(names[0])
        assert not any(c.name.startswith("compat_") for c in ours.get_collections().collections)
    checks.run("delete collections", cleanup)

    print("%d passed, %d failed" % (checks.passed, checks.failed))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
