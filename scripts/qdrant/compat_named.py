"""Named dense and sparse vectors for compat.py: the same comparisons with qdrant-client's
in-memory engine (same ids in the same order, scores within 1e-4, same payloads and vectors)
for collections with named dense vectors, sparse vectors (with and without the IDF modifier)
and the unnamed vector beside sparse ones, points lacking some of them, queries by each
(vector, sparse vector, point id, filters), the older search API with named vectors,
prefetch with RRF, weighted RRF, DBSF and re-scoring, and named-vector administration.
"""

import httpx
from qdrant_client import models

TOL = 1e-4
DIM = 8
N = 200
VOCAB = 60


def sparse(rng, lo=3, hi=12):
    # Unsorted indices with random weights: no two points score alike.
    indices = rng.sample(range(VOCAB), rng.randint(lo, hi))
    return models.SparseVector(indices=indices, values=[round(rng.uniform(0.1, 2.0), 4) for _ in indices])


def same_vector(a, b, what):
    if isinstance(b, dict):
        assert isinstance(a, dict) and set(a) == set(b), "%s: vectors %s != %s" % (what, a, b)
        for k in b:
            same_vector(a[k], b[k], "%s.%s" % (what, k))
    elif isinstance(b, models.SparseVector):
        order = sorted(range(len(b.indices)), key=lambda i: b.indices[i])
        assert a.indices == [b.indices[i] for i in order], "%s: indices %s != %s" % (what, a, b)
        assert all(abs(x - b.values[i]) <= TOL for x, i in zip(a.values, order)), what
    else:
        assert a is not None and len(a) == len(b), "%s: %s != %s" % (what, a, b)
        assert all(abs(x - y) <= TOL for x, y in zip(a, b)), "%s: %s != %s" % (what, a, b)


def make_points(rng):
    points = []
    for i in range(N):
        vector = {"dense": [rng.uniform(-1, 1) for _ in range(DIM)]}
        if i % 3:
            vector["title"] = [rng.uniform(-1, 1) for _ in range(4)]
        if i % 4:
            vector["text"] = sparse(rng)
        if i % 2 == 0:
            vector["plain"] = sparse(rng, 1, 6)
        payload = {"n": i, "even": i % 2 == 0, "tag": "t%d" % (i % 5)}
        points.append(models.PointStruct(id=i, vector=vector, payload=payload))
    return points


def run(ours, ref, rng, checks, same_points, url, headers):
    name = "compat_named"
    points = make_points(rng)
    exact = models.SearchParams(exact=True)

    def both(fn):
        return fn(ours), fn(ref)

    def setup():
        for c in (ours, ref):
            if c.collection_exists(name):
                c.delete_collection(name)
            assert c.create_collection(
                name,
                vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
                                "title": models.VectorParams(size=4, distance=models.Distance.EUCLID)},
                sparse_vectors_config={"text": models.SparseVectorParams(modifier=models.Modifier.IDF),
                                       "plain": models.SparseVectorParams()})
            # The column form with named columns takes the points holding every vector.
            names = {"dense", "title", "text", "plain"}
            full = [p for p in points if set(p.vector) == names]
            c.upsert(name, points=[p for p in points if set(p.vector) != names], wait=True)
            c.upsert(name, points=models.Batch(
                ids=[p.id for p in full],
                vectors={k: [p.vector[k] for p in full] for k in sorted(names)},
                payloads=[p.payload for p in full]), wait=True)
        info = ours.get_collection(name)
        assert info.points_count == N, info.points_count
        assert set(info.config.params.vectors) == {"dense", "title"}, info.config.params.vectors
        assert info.config.params.vectors["title"].distance == models.Distance.EUCLID
        assert info.config.params.sparse_vectors["text"].modifier == models.Modifier.IDF
        assert info.config.params.sparse_vectors["plain"].modifier in (None, models.Modifier.NONE)
    checks.run("%s: create with named dense and sparse vectors, upsert (list and named columns), info" % name, setup)

    def vectors_out():
        ids = [0, 1, 2, 3, 6, 7, 12]
        for sel in (True, ["text"], ["dense", "plain"], ["title"]):
            a, b = both(lambda c: c.retrieve(name, ids=ids, with_vectors=sel, with_payload=False))
            assert [p.id for p in a] == [p.id for p in b]
            for x, y in zip(a, b):
                same_vector(x.vector, y.vector, "point %s with_vectors=%s" % (x.id, sel))
    checks.run("%s: retrieve with all or some named vectors (dense normalised, sparse sorted)" % name, vectors_out)

    def dense_queries():
        for using, dim in (("dense", DIM), ("title", 4)):
            for _ in range(3):
                q = [rng.uniform(-1, 1) for _ in range(dim)]
                a, b = both(lambda c: c.query_points(name, query=q, using=using, limit=12, with_payload=True,
                                                      search_params=exact).points)
                same_points(a, b, "query using %s" % using)
        flt = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
        q = [rng.uniform(-1, 1) for _ in range(4)]
        a, b = both(lambda c: c.query_points(name, query=q, using="title", query_filter=flt, limit=9,
                                              search_params=exact).points)
        same_points(a, b, "filtered query using title")
    checks.run("%s: queries by named dense vectors (only points that have them)" % name, dense_queries)

    def sparse_queries():
        for using in ("plain", "text"):
            for _ in range(4):
                q = sparse(rng, 2, 6)
                a, b = both(lambda c: c.query_points(name, query=q, using=using, limit=15,
                                                      with_payload=True).points)
                same_points(a, b, "sparse query using %s" % using)
        flt = models.Filter(must_not=[models.FieldCondition(key="tag", match=models.MatchAny(any=["t1", "t2"]))])
        q = sparse(rng, 4, 8)
        a, b = both(lambda c: c.query_points(name, query=models.NearestQuery(nearest=q), using="text",
                                              query_filter=flt, limit=20, score_threshold=0.5).points)
        same_points(a, b, "filtered sparse query with a threshold")
    checks.run("%s: sparse queries, with and without IDF, filtered, thresholds" % name, sparse_queries)

    def by_point():
        for pid, using in ((5, "text"), (4, "plain"), (7, "title"), (8, "dense")):
            a, b = both(lambda c: c.query_points(name, query=pid, using=using, limit=6,
                                                  search_params=exact).points)
            same_points(a, b, "nearest to point %s using %s" % (pid, using))
    checks.run("%s: query by point id in a named or sparse vector" % name, by_point)

    def older_search():
        q = sparse(rng, 3, 6)
        for vector, using, query in (
                ({"name": "plain", "vector": {"indices": q.indices, "values": q.values}}, "plain", q),
                ({"name": "title", "vector": [0.3, -0.2, 0.1, 0.5]}, "title", [0.3, -0.2, 0.1, 0.5])):
            r = httpx.post("%s/collections/%s/points/search" % (url, name), headers=headers,
                           json={"vector": vector, "limit": 7, "params": {"exact": True}})
            assert r.status_code == 200, r.text
            hits = r.json()["result"]
            b = ref.query_points(name, query=query, using=using, limit=7, search_params=exact).points
            assert [h["id"] for h in hits] == [p.id for p in b], (hits, b)
            assert all(abs(h["score"] - p.score) <= TOL * max(1.0, abs(p.score)) for h, p in zip(hits, b))
    checks.run("%s: points/search with a named dense and a named sparse vector" % name, older_search)

    def hybrid():
        dq = [rng.uniform(-1, 1) for _ in range(DIM)]
        sq = sparse(rng, 4, 8)
        prefetch = [models.Prefetch(query=dq, using="dense", limit=20, params=exact),
                    models.Prefetch(query=sq, using="text", limit=20)]
        flt = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=30))])
        for query in (models.FusionQuery(fusion=models.Fusion.RRF), models.FusionQuery(fusion=models.Fusion.DBSF),
                      models.RrfQuery(rrf=models.Rrf(k=10, weights=[2.0, 0.5]))):
            for f in (None, flt):
                a, b = both(lambda c: c.query_points(name, prefetch=prefetch, query=query, query_filter=f,
                                                      limit=10, with_payload=True).points)
                same_points(a, b, "%s (filter %s)" % (query, f is not None))
        # Re-scoring: the sparse prefetch's points ordered by a dense vector.
        a, b = both(lambda c: c.query_points(name, prefetch=models.Prefetch(query=sq, using="text", limit=25),
                                              query=dq, using="dense", limit=8, search_params=exact).points)
        same_points(a, b, "re-scoring a sparse prefetch by a dense vector")
        # Nested prefetches.
        nested = models.Prefetch(prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF), limit=15)
        a, b = both(lambda c: c.query_points(name, prefetch=[nested], query=dq, using="dense", limit=5,
                                              search_params=exact).points)
        same_points(a, b, "nested prefetch: fused, then re-scored")
    checks.run("%s: prefetch with RRF, weighted RRF, DBSF, filters, re-scoring, nesting" % name, hybrid)

    def mmr():
        for using, dim in (("dense", DIM), ("title", 4)):
            q = [rng.uniform(-1, 1) for _ in range(dim)]
            for diversity, candidates in ((0.5, None), (0.8, 40), (0.0, 30)):
                query = models.NearestQuery(nearest=q, mmr=models.Mmr(diversity=diversity,
                                                                       candidates_limit=candidates))
                a, b = both(lambda c: c.query_points(name, query=query, using=using, limit=8, offset=2,
                                                      search_params=exact).points)
                same_points(a, b, "mmr using %s, diversity %s" % (using, diversity))
        query = models.NearestQuery(nearest=9, mmr=models.Mmr(diversity=0.6, candidates_limit=25))
        a, b = both(lambda c: c.query_points(name, query=query, using="dense", limit=6, search_params=exact).points)
        same_points(a, b, "mmr around a stored point")
    checks.run("%s: MMR over named dense vectors (Cosine, Euclid), by vector and by point" % name, mmr)

    def administer():
        # A collection of its own: points read twice before a removal would still show the
        # removed vector (an engine cache bug, crates/hybridb-server/tests/engine_gaps.rs:
        # remove_vector_leaves_cached_records_stale), which is not what this checks.
        n3 = "compat_named_admin"
        for c in (ours, ref):
            if c.collection_exists(n3):
                c.delete_collection(n3)
            c.create_collection(n3, vectors_config={
                "a": models.VectorParams(size=2, distance=models.Distance.DOT),
                "b": models.VectorParams(size=2, distance=models.Distance.EUCLID)})
            c.upsert(n3, points=[models.PointStruct(id=i, vector={"a": [i, 1.0], "b": [1.0, -i]})
                                 for i in range(1, 6)], wait=True)
            c.create_vector_name(n3, "extra", models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))
            c.upsert(n3, points=[models.PointStruct(id=1000, vector={"extra": models.SparseVector(
                indices=[3, 1], values=[1.0, 2.0])}, payload={"n": 1000})], wait=True)
        a, b = both(lambda c: c.query_points(n3, query=models.SparseVector(indices=[1], values=[1.0]),
                                              using="extra", limit=3).points)
        same_points(a, b, "query a vector added online")
        for c in (ours, ref):
            c.delete_vector_name(n3, "b")
        a, b = both(lambda c: c.retrieve(n3, ids=[1, 2, 1000], with_vectors=True))
        for x, y in zip(a, b):
            same_vector(x.vector, y.vector, "point %s after removing b" % x.id)
        assert ours.delete_collection(n3)
    checks.run("%s: named vectors added and removed online" % name, administer)

    def unnamed_beside_sparse():
        # LangChain's hybrid mode: the unnamed dense vector beside a sparse one; some points
        # hold only one of them.
        n2 = "compat_unnamed_sparse"
        pts = []
        for i in range(60):
            v = {}
            if i % 5:
                v[""] = [rng.uniform(-1, 1) for _ in range(4)]
            if i % 3:
                v["langchain-sparse"] = sparse(rng)
            pts.append(models.PointStruct(id=i, vector=v, payload={"i": i}))
        for c in (ours, ref):
            if c.collection_exists(n2):
                c.delete_collection(n2)
            c.create_collection(n2, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                                sparse_vectors_config={"langchain-sparse": models.SparseVectorParams()})
            c.upsert(n2, points=pts, wait=True)
        info = ours.get_collection(n2)
        assert info.config.params.vectors.size == 4, info.config.params.vectors
        q = [0.5, -0.1, 0.3, 0.9]
        a, b = both(lambda c: c.query_points(n2, query=q, limit=10, with_vectors=True, search_params=exact).points)
        same_points(a, b, "unnamed vector query")
        for x, y in zip(a, b):
            same_vector(x.vector, y.vector, "hit %s" % x.id)
        a, b = both(lambda c: c.retrieve(n2, ids=[0, 1, 5, 10], with_vectors=True))
        for x, y in zip(a, b):
            same_vector(x.vector, y.vector, "point %s" % x.id)
        sq = sparse(rng, 3, 6)
        a, b = both(lambda c: c.query_points(n2, prefetch=[models.Prefetch(query=q, limit=20),
                                                           models.Prefetch(query=sq, using="langchain-sparse",
                                                                           limit=20)],
                                              query=models.FusionQuery(fusion=models.Fusion.RRF), limit=10).points)
        same_points(a, b, "hybrid RRF over the unnamed and a sparse vector")
        assert ours.delete_collection(n2)
    checks.run("the unnamed vector beside a sparse one (points may lack either)", unnamed_beside_sparse)

    def errors():
        from qdrant_client.http.exceptions import UnexpectedResponse
        cases = [
            lambda: ours.query_points(name, query=[0.1] * DIM, using="image"),
            lambda: ours.upsert(name, points=[models.PointStruct(id=1, vector={"colour": [1.0]})]),
            lambda: ours.upsert(name, points=[models.PointStruct(id=1, vector={"text": [1.0, 2.0]})]),
            lambda: ours.query_points(name, query=models.SparseVector(indices=[1], values=[1.0]), using="dense"),
        ]
        for i, case in enumerate(cases):
            try:
                case()
                raise AssertionError("case %d was accepted" % i)
            except UnexpectedResponse as e:
                assert e.status_code == 400, (i, e)
        assert ours.count(name).count == ref.count(name).count
    checks.run("%s: unknown names and wrong kinds answer 400, write nothing" % name, errors)
    return name
