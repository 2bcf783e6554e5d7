"""Query kinds beyond `nearest` and fusion, against hybridb's Qdrant-compatible API, each
compared with qdrant-client's in-memory engine fed the same data (see compat.py): `recommend`
(average_vector, best_score, sum_scores; ids and vectors as examples), `discover`, `context`,
`lookup_from`, `order_by` (query and scroll), `sample: random`, and the validation answers
around them.

run(...) is called by compat.py once per distance, on the flow's collection of that distance
(mixed integer and UUID ids, a payload with `n` (integer index) and `price`), with `other` a
collection of the same ids and dimension but other vectors (for `lookup_from`).
"""

import httpx
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

TOL = 1e-4


def same_scores_allowing_ties(ours, theirs, what):
    """Same scores in order; same ids wherever a score is not tied with a neighbour."""
    assert len(ours) == len(theirs), "%s: %d != %d points" % (what, len(ours), len(theirs))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert abs(a.score - b.score) <= TOL * max(1.0, abs(b.score)), "%s: #%d score %s != %s" % (
            what, i, a.score, b.score)
        tied = any(abs(theirs[j].score - b.score) <= TOL for j in (i - 1, i + 1) if 0 <= j < len(theirs))
        if not tied:
            assert a.id == b.id, "%s: #%d id %s != %s" % (what, i, a.id, b.id)


def run(ours, ref, name, other, rng, checks, same_points, point_id, url, headers):
    exact = models.SearchParams(exact=True)
    present = [p.id for p in ref.scroll(name, limit=1000)[0]]
    dim = len(ours.retrieve(name, ids=[present[0]], with_vectors=True)[0].vector)
    vec = [rng.uniform(-1, 1) for _ in range(dim)]
    city = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Paris"))])

    def both(fn):
        return fn(ours), fn(ref)

    def recommend():
        pos, neg = [present[0], present[3], vec], [present[5]]
        for strategy in (None, models.RecommendStrategy.AVERAGE_VECTOR, models.RecommendStrategy.BEST_SCORE,
                         models.RecommendStrategy.SUM_SCORES):
            q = models.RecommendQuery(recommend=models.RecommendInput(positive=pos, negative=neg, strategy=strategy))
            a, b = both(lambda c: c.query_points(name, query=q, limit=12, with_payload=True,
                                                  search_params=exact).points)
            same_points(a, b, "recommend %s" % strategy)
            assert not {present[0], present[3], present[5]} & {p.id for p in a}, "examples left out"
            # Filtered, with an offset, and only negatives (best_score, sum_scores).
            a, b = both(lambda c: c.query_points(name, query=q, query_filter=city, limit=5, offset=2,
                                                  search_params=exact).points)
            same_points(a, b, "recommend %s filtered" % strategy)
            if strategy in (models.RecommendStrategy.BEST_SCORE, models.RecommendStrategy.SUM_SCORES):
                q = models.RecommendQuery(recommend=models.RecommendInput(negative=neg, strategy=strategy))
                a, b = both(lambda c: c.query_points(name, query=q, limit=5).points)
                same_points(a, b, "recommend %s negatives only" % strategy)
    checks.run("%s: recommend (average_vector, best_score, sum_scores), ids and vectors" % name, recommend)

    def discover_context():
        pairs = [models.ContextPair(positive=present[1], negative=present[2]),
                 models.ContextPair(positive=vec, negative=present[4])]
        q = models.DiscoverQuery(discover=models.DiscoverInput(target=present[6], context=pairs))
        a, b = both(lambda c: c.query_points(name, query=q, limit=10, with_payload=True).points)
        same_scores_allowing_ties(a, b, "discover")
        q = models.ContextQuery(context=pairs)
        a, b = both(lambda c: c.query_points(name, query=q, limit=20, query_filter=city).points)
        same_scores_allowing_ties(a, b, "context")
        # Re-scoring the results of a prefetch.
        pre = models.Prefetch(query=vec, limit=30, params=exact)
        q = models.DiscoverQuery(discover=models.DiscoverInput(target=vec, context=pairs[:1]))
        a, b = both(lambda c: c.query_points(name, prefetch=pre, query=q, limit=8).points)
        same_scores_allowing_ties(a, b, "discover over a prefetch")
    checks.run("%s: discover and context (scores, also over a prefetch)" % name, discover_context)

    def lookup_from():
        look = models.LookupLocation(collection=other)
        q = models.RecommendQuery(recommend=models.RecommendInput(
            positive=[present[0], present[1]], strategy=models.RecommendStrategy.BEST_SCORE))
        a, b = both(lambda c: c.query_points(name, query=q, lookup_from=look, limit=10).points)
        same_points(a, b, "recommend with lookup_from")
        # The examples come from the other collection: the same ids here are not left out.
        a, b = both(lambda c: c.query_points(name, query=present[7], lookup_from=look, limit=10,
                                              search_params=exact).points)
        same_points(a, b, "nearest id with lookup_from")
        r = httpx.post("%s/collections/%s/points/query" % (url, name), headers=headers,
                       json={"query": [0.1] * dim, "lookup_from": {"collection": "compat_nope"}})
        assert r.status_code == 404 and "compat_nope" in r.json()["status"]["error"], r.text
    checks.run("%s: lookup_from (another collection; 404 for a missing one)" % name, lookup_from)

    def order_by():
        ours.create_payload_index(name, "price", field_schema=models.PayloadSchemaType.FLOAT, wait=True)
        for ob in ("n", models.OrderBy(key="n", direction=models.Direction.DESC),
                   models.OrderBy(key="n", direction=models.Direction.ASC, start_from=100),
                   models.OrderBy(key="n", direction=models.Direction.DESC, start_from=150)):
            a, b = both(lambda c: c.scroll(name, order_by=ob, limit=15, scroll_filter=city)[0])
            assert [(p.id, p.order_value) for p in a] == [(p.id, p.order_value) for p in b], (ob, a, b)
            assert [p.payload for p in a] == [p.payload for p in b]
            a, b = both(lambda c: c.query_points(name, query=models.OrderByQuery(order_by=ob), limit=7,
                                                  offset=3, with_payload=True).points)
            same_points(a, b, "order_by %s" % ob)
            assert [p.order_value for p in a] == [p.order_value for p in b]
        # A float index: the same values in the same order (ties may list other ids).
        ob = models.OrderBy(key="price", direction=models.Direction.DESC)
        a, b = both(lambda c: c.scroll(name, order_by=ob, limit=40)[0])
        assert [p.order_value for p in a] == [p.order_value for p in b], (a, b)
        # No range index: Qdrant's 400; an offset with order_by: 400.
        for call in (lambda: ours.scroll(name, order_by="city"),
                     lambda: ours.scroll(name, order_by="n", offset=point_id(2))):
            try:
                call()
                raise AssertionError("accepted")
            except UnexpectedResponse as e:
                assert e.status_code == 400, e
        ours.delete_payload_index(name, "price", wait=True)
    checks.run("%s: order_by in scroll and query (direction, start_from, filter)" % name, order_by)

    def sample_and_validation():
        seen = set()
        paris = {p.id for p in ref.scroll(name, scroll_filter=city, limit=1000)[0]}
        for _ in range(4):
            pts = ours.query_points(name, query=models.SampleQuery(sample=models.Sample.RANDOM),
                                    query_filter=city, limit=10).points
            ids = [p.id for p in pts]
            assert len(ids) == 10 == len(set(ids)) and set(ids) <= paris, ids
            assert all(p.score == 1.0 for p in pts)
            seen.add(tuple(ids))
        assert len(seen) > 1, "four samples in the same order"
        cases = [
            ({"prefetch": [{"query": {"recommend": {"positive": [present[0]]}}}]}, 400,
             "A query is needed to merge the prefetches. Can't have prefetches without defining a query."),
            ({"query": {"order_by": "n"}, "score_threshold": 1}, 400,
             "Can't use score_threshold with an order_by query."),
            ({"query": {"recommend": {"positive": [present[0]]}}, "limit": 0}, 422,
             "Validation error in JSON body: [internal.limit: value 0 invalid, must be 1 or larger]"),
            ({"query": {"recommend": {}}}, 422, "At least one positive or negative"),
            ({"query": {"recommend": {"negative": [present[0]]}}}, 400,
             "At least one positive vector ID required with this strategy"),
        ]
        for body, status, message in cases:
            r = httpx.post("%s/collections/%s/points/query" % (url, name), headers=headers, json=body)
            assert r.status_code == status and message in r.json()["status"]["error"], (body, r.text)
    checks.run("%s: sample random; validation of prefetches, order_by, limits, examples" % name,
               sample_and_validation)
