#!/usr/bin/env python3
"""LangChain's and LlamaIndex's Qdrant vector stores, unchanged, against hybridb's
Qdrant-compatible API; every answer compared with the same calls on qdrant-client's own
in-memory engine (QdrantClient(":memory:")) fed the same data: same ids in the same order,
scores within 1e-4, same texts and metadata.

- LangChain (`langchain-qdrant`'s QdrantVectorStore): from_texts / add_texts / add_documents with
  metadatas and ids (integers, UUIDs, generated hex UUIDs), similarity_search(_with_score)(_by_vector),
  metadata filters (models.Filter), score thresholds, retrievers, get_by_ids, delete by ids,
  max_marginal_relevance_search (server-side MMR), from_existing_collection, force_recreate, and
  the three retrieval modes DENSE, SPARSE and HYBRID (dense + sparse prefetches fused by RRF,
  or DBSF).
- LlamaIndex (`llama-index-vector-stores-qdrant`'s QdrantVectorStore): dense-only (the unnamed
  vector) and enable_hybrid=True (named vectors "text-dense" and "text-sparse-new"): add nodes,
  VectorStoreQuery in default, sparse and hybrid mode, metadata filters (every operator the
  store maps), doc_ids / node_ids, get_nodes, delete by ref_doc_id, delete_nodes, clear, a
  collection made by an older LlamaIndex ("text-sparse"), the async client, and a
  VectorStoreIndex retriever on top.

No model is downloaded: dense embeddings are LangChain's DeterministicFakeEmbedding and a
hash-seeded one of our own for LlamaIndex (its MockEmbedding gives every text the same vector,
which would make every search a tie); sparse embeddings come from a small deterministic
hashing encoder defined here.

Run by crates/hybridb-cli/tests/qdrant_frameworks.rs, or by scripts/qdrant/frameworks.sh,
against a real `hybridb serve`:
    frameworks.py --url http://127.0.0.1:6333 [--only langchain|llamaindex]
Prints one line per check (a failing one with the request that failed) and ends with
"N passed, M failed"; exits 1 on any failure. Calls against hybridb must raise no warning.
"""

import argparse
import asyncio
import hashlib
import random
import re
import sys
import time
import traceback
import uuid
import warnings
import zlib
from collections import Counter

import numpy as np
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

TOL = 1e-4
DIM = 16
N = 150
WORDS = ("apple banana cherry delta echo falcon garden harbor island jungle kettle lemon meadow "
         "needle orchard pepper quartz river saddle timber umbrella valley walnut xenon yellow "
         "zephyr anchor beacon candle desert ember forest glacier hollow ivory jasper").split()
TOPICS = ["fruit", "travel", "science", "history"]


# ---------------------------------------------------------------------------------------------
# Deterministic embeddings


def tokens(text):
    return re.findall(r"[a-z]+", text.lower())


def sparse_encode(text, query):
    """Term-hashing sparse vector: index crc32(word) mod 2^20; a query weighs each word by a
    fixed per-word weight, a document by a per-(document, word) weight, so that two documents
    practically never score alike (ties would make the order engine-defined)."""
    counts = Counter(tokens(text))
    merged = {}
    for word, tf in counts.items():
        index = zlib.crc32(word.encode()) % (1 << 20)
        salt = word if query else text + "|" + word
        weight = 0.5 + (zlib.crc32(salt.encode()) % 1000) / 1000.0
        merged[index] = merged.get(index, 0.0) + round(tf * weight, 4)
    indices = sorted(merged)
    return indices, [merged[i] for i in indices]


def dense_encode(text, dim=DIM):
    seed = int(hashlib.sha256(text.encode()).hexdigest(), 16) % (1 << 32)
    return [float(x) for x in np.random.default_rng(seed).normal(size=dim)]


def make_corpus(rng, n=N):
    texts, metas = [], []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        texts.append("doc %d: %s" % (i, " ".join(words)))
        metas.append({
            "n": i,
            "topic": TOPICS[i % len(TOPICS)],
            "year": 1990 + (i * 7) % 35,
            "rating": round(rng.uniform(0, 5), 2),
            "tags": sorted({rng.choice(WORDS[:8]) for _ in range(2)}),
            "author": {"name": "a%d" % (i % 9), "verified": i % 3 == 0},
        })
    return texts, metas


def queries_for(rng, k=4):
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(k)]


# ---------------------------------------------------------------------------------------------
# Checks and comparisons


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def run(self, name, fn):
        started = time.monotonic()
        try:
            fn()
            self.passed += 1
            print("ok    %s (%.1f s)" % (name, time.monotonic() - started), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            self.failed += 1
            self.failures.append((name, e))
            print("FAIL  %s\n%s" % (name, describe(e)), flush=True)


def describe(e):
    """The traceback, and for an HTTP error the server's answer."""
    text = traceback.format_exc()
    if isinstance(e, UnexpectedResponse):
        text += "  server answered %s: %s\n" % (e.status_code, e.content.decode(errors="replace")[:600])
    return text


class ServerWarning(AssertionError):
    pass


class no_warnings:
    """Records the warnings raised by calls against hybridb; any one fails the check. (The
    in-memory engine's own warnings, e.g. "payload indexes have no effect", are not ours.)"""

    def __enter__(self):
        self._ctx = warnings.catch_warnings(record=True)
        self._seen = self._ctx.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        seen = list(self._seen)
        self._ctx.__exit__(*exc)
        if exc[0] is None and seen:
            raise ServerWarning("calls against hybridb warned: %s" % [
                "%s: %s (%s:%d)" % (w.category.__name__, w.message, w.filename, w.lineno) for w in seen])
        return False


def ours_then_ref(fn, ours, ref):
    """fn(ours) without warnings, then fn(ref) with the reference engine's warnings ignored."""
    with no_warnings():
        a = fn(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = fn(ref)
    return a, b


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def same_docs(ours, theirs, what, scores=True):
    """LangChain results: lists of Document or of (Document, score)."""
    def split(rows):
        if rows and isinstance(rows[0], tuple):
            return [d for d, _ in rows], [s for _, s in rows]
        return list(rows), None
    a_docs, a_scores = split(ours)
    b_docs, b_scores = split(theirs)
    a_ids = [d.metadata.get("_id") for d in a_docs]
    b_ids = [d.metadata.get("_id") for d in b_docs]
    assert a_ids == b_ids, "%s: ids\n  hybridb %s\n  :memory: %s%s" % (
        what, a_ids, b_ids, "\n  scores %s\n  vs     %s" % (a_scores, b_scores) if a_scores else "")
    for x, y in zip(a_docs, b_docs):
        assert x.page_content == y.page_content, "%s: %s text %r != %r" % (what, x.metadata["_id"], x.page_content,
                                                                          y.page_content)
        xm = {k: v for k, v in x.metadata.items() if k != "_collection_name"}
        ym = {k: v for k, v in y.metadata.items() if k != "_collection_name"}
        assert xm == ym, "%s: %s metadata %s != %s" % (what, x.metadata["_id"], xm, ym)
    if scores and a_scores is not None:
        for d, s, t in zip(a_docs, a_scores, b_scores):
            assert close(s, t), "%s: %s score %s != %s" % (what, d.metadata["_id"], s, t)


def same_result(ours, theirs, what, scores=True):
    """LlamaIndex VectorStoreQueryResult."""
    assert (ours.ids or []) == (theirs.ids or []), "%s: ids\n  hybridb %s\n  :memory: %s\n  scores %s\n  vs     %s" % (
        what, ours.ids, theirs.ids, ours.similarities, theirs.similarities)
    for x, y in zip(ours.nodes or [], theirs.nodes or []):
        assert x.get_content() == y.get_content(), "%s: %s text differs" % (what, x.node_id)
        assert x.metadata == y.metadata, "%s: %s metadata %s != %s" % (what, x.node_id, x.metadata, y.metadata)
        assert x.ref_doc_id == y.ref_doc_id, "%s: %s ref_doc_id %s != %s" % (what, x.node_id, x.ref_doc_id,
                                                                            y.ref_doc_id)
    if scores:
        assert len(ours.similarities or []) == len(theirs.similarities or []), what
        for i, s, t in zip(ours.ids or [], ours.similarities or [], theirs.similarities or []):
            assert close(s, t), "%s: %s score %s != %s" % (what, i, s, t)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------------------------------------
# LangChain


def langchain_checks(url, checks, rng):
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector

    class HashSparse(SparseEmbeddings):
        def embed_documents(self, texts):
            return [SparseVector(indices=i, values=v) for i, v in (sparse_encode(t, False) for t in texts)]

        def embed_query(self, text):
            i, v = sparse_encode(text, True)
            return SparseVector(indices=i, values=v)

    embedding = DeterministicFakeEmbedding(size=DIM)
    sparse = HashSparse()
    texts, metas = make_corpus(rng)
    # UUIDs for the first part (from_texts), integers for the rest (add_texts).
    ids = [str(uuid.UUID(int=(0x1A2B3C4D << 96) + i)) for i in range(100)] + list(range(100, N))
    queries = queries_for(rng)
    where = {"ours": dict(url=url, prefer_grpc=False, timeout=30), "ref": dict(location=":memory:")}
    stores = {}  # mode -> (ours, ref)

    def make(mode, name, distance=models.Distance.COSINE, **extra):
        kw = dict(embedding=embedding if mode != RetrievalMode.SPARSE else None,
                  sparse_embedding=sparse if mode != RetrievalMode.DENSE else None,
                  retrieval_mode=mode, collection_name=name, distance=distance, force_recreate=True, **extra)
        pair = []
        for side in ("ours", "ref"):
            ctx = no_warnings() if side == "ours" else warnings.catch_warnings()
            with ctx:
                if side == "ref":
                    warnings.simplefilter("ignore")
                store = QdrantVectorStore.from_texts(texts[:100], metadatas=metas[:100], ids=ids[:100],
                                                     batch_size=32, **where[side], **kw)
                added = store.add_texts(texts[100:], metadatas=metas[100:], ids=ids[100:], batch_size=32)
                expect(added == ids[100:], "add_texts returned %s" % added)
            pair.append(store)
        return tuple(pair)

    def both(mode, fn):
        ours, ref = stores[mode]
        return ours_then_ref(fn, ours, ref)

    filters = [
        ("topic", models.Filter(must=[models.FieldCondition(key="metadata.topic",
                                                            match=models.MatchValue(value="travel"))])),
        ("range+not", models.Filter(
            must=[models.FieldCondition(key="metadata.year", range=models.Range(gte=2000, lt=2020))],
            must_not=[models.FieldCondition(key="metadata.topic", match=models.MatchAny(any=["fruit"]))])),
        ("nested+should", models.Filter(should=[
            models.FieldCondition(key="metadata.author.verified", match=models.MatchValue(value=True)),
            models.FieldCondition(key="metadata.tags", match=models.MatchValue(value="apple"))])),
    ]
    # Qdrant's explicit array-element key syntax (`tags[]`), as in its filtering docs.
    array_filter = models.Filter(must=[models.FieldCondition(key="metadata.tags[]",
                                                             match=models.MatchValue(value="apple"))])

    # -- DENSE ---------------------------------------------------------------------------------
    def dense_setup():
        stores[RetrievalMode.DENSE] = make(RetrievalMode.DENSE, "lc_dense")
        ours = stores[RetrievalMode.DENSE][0]
        info = ours.client.get_collection("lc_dense")
        expect(info.points_count == N, "points_count %s" % info.points_count)
        expect(info.config.params.vectors.size == DIM, info.config.params.vectors)
    checks.run("langchain DENSE: from_texts + add_texts (UUID and integer ids, metadatas), force_recreate",
               dense_setup)

    def dense_search():
        for q in queries:
            a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search(q, k=5))
            same_docs(a, b, "similarity_search %r" % q)
            a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_score(q, k=8))
            same_docs(a, b, "similarity_search_with_score %r" % q)
        v = embedding.embed_query(queries[0])
        a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_score_by_vector(v, k=6))
        same_docs(a, b, "similarity_search_with_score_by_vector")
        a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_by_vector(v, k=3))
        same_docs(a, b, "similarity_search_by_vector")
        a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search(queries[1], k=4, offset=3))
        same_docs(a, b, "similarity_search with offset")
    checks.run("langchain DENSE: similarity_search, _with_score, _by_vector, offset", dense_search)

    def dense_filters():
        for label, flt in filters:
            for q in queries[:2]:
                a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_score(q, k=6, filter=flt))
                same_docs(a, b, "filter %s %r" % (label, q))
                expect(len(a) == 6, "filter %s found %d" % (label, len(a)))
    checks.run("langchain DENSE: metadata filters (match, range, any, must_not, nested key, array value, should)",
               dense_filters)

    def dense_array_key():
        for q in queries[:2]:
            a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_score(q, k=6, filter=array_filter))
            same_docs(a, b, "filter on metadata.tags[] %r" % q)
    checks.run("langchain DENSE: filter with an array-element key (metadata.tags[])", dense_array_key)

    def dense_threshold_and_retrievers():
        ref = stores[RetrievalMode.DENSE][1]
        b = ref.similarity_search_with_score(queries[2], k=40)
        cut = (b[14][1] + b[15][1]) / 2
        a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_score(queries[2], k=40,
                                                                                 score_threshold=cut))
        same_docs(a, b, "score_threshold")
        expect(len(a) == 15, "score_threshold kept %d" % len(a))
        a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_relevance_scores(queries[3], k=5))
        same_docs(a, b, "similarity_search_with_relevance_scores")
        a, b = both(RetrievalMode.DENSE, lambda s: s.as_retriever(search_kwargs={"k": 4}).invoke(queries[0]))
        same_docs(a, b, "as_retriever().invoke")
        a, b = both(RetrievalMode.DENSE, lambda s: s.as_retriever(
            search_type="similarity_score_threshold",
            search_kwargs={"k": 10, "score_threshold": 0.55}).invoke(queries[1]))
        same_docs(a, b, "as_retriever(similarity_score_threshold)")
    checks.run("langchain DENSE: score_threshold, relevance scores, retrievers", dense_threshold_and_retrievers)

    def dense_mmr():
        for q in queries[:2]:
            a, b = both(RetrievalMode.DENSE, lambda s: s.max_marginal_relevance_search(q, k=5, fetch_k=20,
                                                                                      lambda_mult=0.5))
            same_docs(a, b, "max_marginal_relevance_search %r" % q)
        v = embedding.embed_query(queries[2])
        a, b = both(RetrievalMode.DENSE, lambda s: s.max_marginal_relevance_search_with_score_by_vector(
            v, k=6, fetch_k=30, lambda_mult=0.3))
        same_docs(a, b, "max_marginal_relevance_search_with_score_by_vector")
        flt = filters[0][1]
        a, b = both(RetrievalMode.DENSE, lambda s: s.max_marginal_relevance_search(queries[3], k=4, fetch_k=15,
                                                                                  filter=flt))
        same_docs(a, b, "MMR with a filter")
        a, b = both(RetrievalMode.DENSE, lambda s: s.as_retriever(
            search_type="mmr", search_kwargs={"k": 3, "fetch_k": 12}).invoke(queries[0]))
        same_docs(a, b, "as_retriever(mmr)")
    checks.run("langchain DENSE: max_marginal_relevance_search (server-side MMR), with filter, retriever",
               dense_mmr)

    def dense_get_delete():
        picked = [ids[3], ids[50], ids[120], ids[149]]
        a, b = both(RetrievalMode.DENSE, lambda s: s.get_by_ids(picked))
        expect(sorted(str(d.metadata["_id"]) for d in a) == sorted(str(d.metadata["_id"]) for d in b),
               "get_by_ids %s / %s" % (a, b))
        expect(len(a) == 4, "get_by_ids found %d" % len(a))
        gone = [ids[i] for i in (0, 1, 2, 101, 102)]
        a, b = both(RetrievalMode.DENSE, lambda s: s.delete(ids=gone))
        expect(a is True and b is True, "delete answered %s / %s" % (a, b))
        a, b = both(RetrievalMode.DENSE, lambda s: s.client.count(s.collection_name, exact=True).count)
        expect(a == b == N - 5, "count after delete %s / %s" % (a, b))
        a, b = both(RetrievalMode.DENSE, lambda s: s.get_by_ids(gone))
        expect(a == [] and b == [], "deleted points still there: %s" % a)
        for q in queries:
            a, b = both(RetrievalMode.DENSE, lambda s: s.similarity_search_with_score(q, k=8))
            same_docs(a, b, "search after delete %r" % q)
    checks.run("langchain DENSE: get_by_ids, delete by ids (UUIDs and integers), search after delete",
               dense_get_delete)

    def documents_and_async():
        # add_documents takes the ids of the Documents; the async methods run the same calls.
        from langchain_core.documents import Document
        pair = stores[RetrievalMode.DENSE]
        extra = [Document(page_content="zephyr anchor doc %d" % i, metadata={"n": 500 + i}, id=str(uuid.UUID(
            int=(0xD0C << 100) + i))) for i in range(3)]
        a, b = ours_then_ref(lambda s: s.add_documents(extra), *pair)
        expect(a == b == [d.id for d in extra], "add_documents returned %s / %s" % (a, b))
        a, b = ours_then_ref(lambda s: asyncio.run(s.asimilarity_search_with_score("zephyr anchor", k=5)), *pair)
        same_docs(a, b, "asimilarity_search_with_score")
        a, b = ours_then_ref(lambda s: asyncio.run(s.adelete(ids=[d.id for d in extra])), *pair)
        expect(a is True and b is True, "adelete %s / %s" % (a, b))
        a, b = ours_then_ref(lambda s: s.client.count(s.collection_name, exact=True).count, *pair)
        expect(a == b, "count %s / %s" % (a, b))
    checks.run("langchain DENSE: add_documents (Document ids), asimilarity_search_with_score, adelete",
               documents_and_async)

    def generated_ids():
        # add_texts without ids: LangChain makes uuid4().hex ids (no hyphens); hybridb answers
        # them hyphenated, as Qdrant does, and takes them back in either form.
        ours = stores[RetrievalMode.DENSE][0]
        with no_warnings():
            new = ours.add_texts(["zephyr xenon generated one", "zephyr xenon generated two"],
                                 metadatas=[{"n": -1}, {"n": -2}])
            expect(all(re.fullmatch(r"[0-9a-f]{32}", i) for i in new), new)
            got = ours.get_by_ids(new)
            expect(sorted(d.metadata["_id"] for d in got) == sorted(str(uuid.UUID(i)) for i in new),
                   "get_by_ids %s" % [d.metadata["_id"] for d in got])
            expect(ours.delete(ids=new) is True, "delete")
            expect(ours.get_by_ids(new) == [], "still there")
    checks.run("langchain DENSE: add_texts with generated hex UUID ids, get_by_ids and delete them",
               generated_ids)

    def existing_collection():
        for mode, name in ((RetrievalMode.DENSE, "lc_dense"),):
            with no_warnings():
                again = QdrantVectorStore.from_existing_collection(
                    "lc_dense", embedding=embedding, url=url, prefer_grpc=False, retrieval_mode=mode)
                a = again.similarity_search_with_score(queries[0], k=5)
            b = stores[mode][1].similarity_search_with_score(queries[0], k=5)
            same_docs(a, b, "from_existing_collection (%s)" % name)
        # The collection's configuration is validated against the store's: a wrong distance
        # must be refused by LangChain itself, from hybridb's collection info.
        try:
            with no_warnings():
                QdrantVectorStore.from_existing_collection("lc_dense", embedding=embedding, url=url,
                                                           prefer_grpc=False, distance=models.Distance.DOT)
        except Exception as e:  # noqa: BLE001
            expect("distance" in str(e).lower() or "Distance" in str(e), "unexpected refusal %r" % e)
        else:
            raise AssertionError("a DOT store over a COSINE collection was accepted")
    checks.run("langchain: from_existing_collection (validates hybridb's collection info)", existing_collection)

    def other_distances():
        for distance in (models.Distance.EUCLID, models.Distance.DOT):
            name = "lc_%s" % distance.value.lower()
            ours, ref = make(RetrievalMode.DENSE, name, distance=distance)
            for q in queries[:2]:
                a, b = ours_then_ref(lambda s: s.similarity_search_with_score(q, k=6), ours, ref)
                same_docs(a, b, "%s %r" % (distance, q))
            with no_warnings():
                ours.client.delete_collection(name)
    # (Not relevance scores: LangChain's own conversion of Euclid and Dot scores leaves [0, 1] for
    # these unnormalised fake embeddings and warns, whatever the engine.)
    checks.run("langchain DENSE: Euclid and Dot collections", other_distances)

    # -- SPARSE --------------------------------------------------------------------------------
    def sparse_setup():
        stores[RetrievalMode.SPARSE] = make(RetrievalMode.SPARSE, "lc_sparse")
        ours = stores[RetrievalMode.SPARSE][0]
        info = ours.client.get_collection("lc_sparse")
        expect(info.points_count == N, "points_count %s" % info.points_count)
        expect(list(info.config.params.sparse_vectors or {}) == ["langchain-sparse"], info.config.params)
    checks.run("langchain SPARSE: from_texts + add_texts into a sparse-only collection", sparse_setup)

    def sparse_search():
        for q in queries:
            a, b = both(RetrievalMode.SPARSE, lambda s: s.similarity_search_with_score(q, k=8))
            same_docs(a, b, "sparse similarity_search_with_score %r" % q)
        for label, flt in filters:
            a, b = both(RetrievalMode.SPARSE, lambda s: s.similarity_search_with_score(queries[0], k=6, filter=flt))
            same_docs(a, b, "sparse filter %s" % label)
        a, b = both(RetrievalMode.SPARSE, lambda s: s.similarity_search(queries[1], k=5))
        same_docs(a, b, "sparse similarity_search")
        gone = [ids[10], ids[110]]
        a, b = both(RetrievalMode.SPARSE, lambda s: s.delete(ids=gone))
        expect(a is True and b is True, "delete %s / %s" % (a, b))
        for q in queries[:2]:
            a, b = both(RetrievalMode.SPARSE, lambda s: s.similarity_search_with_score(q, k=8))
            same_docs(a, b, "sparse search after delete %r" % q)
    checks.run("langchain SPARSE: similarity_search(_with_score), filters, delete", sparse_search)

    # -- HYBRID --------------------------------------------------------------------------------
    def hybrid_setup():
        stores[RetrievalMode.HYBRID] = make(RetrievalMode.HYBRID, "lc_hybrid")
        ours = stores[RetrievalMode.HYBRID][0]
        info = ours.client.get_collection("lc_hybrid")
        expect(info.points_count == N, "points_count %s" % info.points_count)
        expect(info.config.params.vectors.size == DIM, info.config.params.vectors)
        expect(list(info.config.params.sparse_vectors or {}) == ["langchain-sparse"], info.config.params)
    checks.run("langchain HYBRID: from_texts + add_texts (unnamed dense + sparse vector)", hybrid_setup)

    def hybrid_search():
        for q in queries:
            a, b = both(RetrievalMode.HYBRID, lambda s: s.similarity_search_with_score(q, k=6))
            same_docs(a, b, "hybrid RRF %r" % q)
        for label, flt in filters:
            a, b = both(RetrievalMode.HYBRID, lambda s: s.similarity_search_with_score(queries[1], k=5, filter=flt))
            same_docs(a, b, "hybrid RRF filter %s" % label)
        dbsf = models.FusionQuery(fusion=models.Fusion.DBSF)
        for q in queries[:2]:
            a, b = both(RetrievalMode.HYBRID, lambda s: s.similarity_search_with_score(q, k=6, hybrid_fusion=dbsf))
            same_docs(a, b, "hybrid DBSF %r" % q)
        a, b = both(RetrievalMode.HYBRID, lambda s: s.as_retriever(search_kwargs={"k": 4}).invoke(queries[2]))
        same_docs(a, b, "hybrid retriever")
    checks.run("langchain HYBRID: dense + sparse prefetch fused by RRF (and DBSF), filters, retriever",
               hybrid_search)

    def hybrid_delete_existing():
        gone = [ids[20], ids[21], ids[130]]
        a, b = both(RetrievalMode.HYBRID, lambda s: s.delete(ids=gone))
        expect(a is True and b is True, "delete %s / %s" % (a, b))
        for q in queries[:2]:
            a, b = both(RetrievalMode.HYBRID, lambda s: s.similarity_search_with_score(q, k=6))
            same_docs(a, b, "hybrid after delete %r" % q)
        with no_warnings():
            again = QdrantVectorStore.from_existing_collection(
                "lc_hybrid", embedding=embedding, sparse_embedding=sparse, url=url, prefer_grpc=False,
                retrieval_mode=RetrievalMode.HYBRID)
            a = again.similarity_search_with_score(queries[3], k=5)
        b = stores[RetrievalMode.HYBRID][1].similarity_search_with_score(queries[3], k=5)
        same_docs(a, b, "hybrid from_existing_collection")
    checks.run("langchain HYBRID: delete, from_existing_collection", hybrid_delete_existing)

    def cleanup():
        for mode, pair in stores.items():
            with no_warnings():
                expect(pair[0].client.delete_collection(pair[0].collection_name), "drop %s" % mode)
    checks.run("langchain: drop the collections", cleanup)


# ---------------------------------------------------------------------------------------------
# LlamaIndex


def llamaindex_checks(url, checks, rng):
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import (FilterCondition, FilterOperator, MetadataFilter,
                                                      MetadataFilters, VectorStoreQuery, VectorStoreQueryMode)
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    def sparse_fn(texts):
        pairs = [sparse_encode(t, False) for t in texts]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def sparse_query_fn(texts):
        pairs = [sparse_encode(t, True) for t in texts]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    class HashEmbedding(MockEmbedding):
        """MockEmbedding's interface with a different vector per text."""

        def _get_text_embedding(self, text):
            return dense_encode(text, self.embed_dim)

        def _get_query_embedding(self, query):
            return dense_encode(query, self.embed_dim)

        async def _aget_text_embedding(self, text):
            return dense_encode(text, self.embed_dim)

        async def _aget_query_embedding(self, query):
            return dense_encode(query, self.embed_dim)

    texts, metas = make_corpus(rng)
    docs = ["doc-%02d" % (i % 30) for i in range(N)]

    def nodes(embed=True):
        out = []
        for i, (t, m) in enumerate(zip(texts, metas)):
            meta = {k: v for k, v in m.items() if k != "author"}  # flat metadata
            meta["author"] = m["author"]["name"]
            node = TextNode(id_=str(uuid.UUID(int=(0x11A4 << 112) + i)), text=t, metadata=meta,
                            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=docs[i])})
            if embed:
                node.embedding = dense_encode(t)
            out.append(node)
        return out

    queries = queries_for(rng)
    ref_client = QdrantClient(":memory:")
    with no_warnings():
        ours_client = QdrantClient(url=url, prefer_grpc=False, timeout=30)
    stores = {}

    def make(name, hybrid):
        kw = dict(collection_name=name, enable_hybrid=hybrid, batch_size=32)
        if hybrid:
            kw.update(sparse_doc_fn=sparse_fn, sparse_query_fn=sparse_query_fn)
        for c in (ours_client, ref_client):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if c.collection_exists(name):
                    c.delete_collection(name)
        with no_warnings():
            ours = QdrantVectorStore(client=ours_client, **kw)
            added = ours.add(nodes())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = QdrantVectorStore(client=ref_client, **kw)
            ref.add(nodes())
        expect(added == [n.node_id for n in nodes(False)], "add returned other ids")
        return ours, ref

    def both(name, fn):
        ours, ref = stores[name]
        return ours_then_ref(fn, ours, ref)

    def vq(q, **kw):
        return VectorStoreQuery(query_embedding=dense_encode(q), query_str=q, **kw)

    filter_sets = [
        ("eq", MetadataFilters(filters=[MetadataFilter(key="topic", value="science")])),
        ("gt+lte", MetadataFilters(filters=[MetadataFilter(key="year", value=1995, operator=FilterOperator.GT),
                                            MetadataFilter(key="year", value=2015, operator=FilterOperator.LTE)])),
        ("float eq, or", MetadataFilters(filters=[
            MetadataFilter(key="rating", value=metas[7]["rating"]),
            MetadataFilter(key="n", value=40, operator=FilterOperator.LT)], condition=FilterCondition.OR)),
        ("in, gte", MetadataFilters(filters=[
            MetadataFilter(key="author", value=["a1", "a2", "a5"], operator=FilterOperator.IN),
            MetadataFilter(key="n", value=60, operator=FilterOperator.GTE)])),
        ("text_match", MetadataFilters(filters=[MetadataFilter(key="topic", value="History",
                                                               operator=FilterOperator.TEXT_MATCH)])),
        ("nested not", MetadataFilters(filters=[
            MetadataFilter(key="topic", value="fruit"),
            MetadataFilters(filters=[MetadataFilter(key="year", value=2000, operator=FilterOperator.LT)],
                            condition=FilterCondition.NOT)])),
        ("is_empty", MetadataFilters(filters=[MetadataFilter(key="missing", value=None,
                                                             operator=FilterOperator.IS_EMPTY)])),
    ]
    # NE and NIN: LlamaIndex sends them as Qdrant's `match: {"except": [...]}`.
    except_sets = [
        ("nin", MetadataFilters(filters=[MetadataFilter(key="topic", value=["fruit", "science"],
                                                        operator=FilterOperator.NIN)])),
        ("ne", MetadataFilters(filters=[MetadataFilter(key="topic", value="travel", operator=FilterOperator.NE),
                                        MetadataFilter(key="n", value=60, operator=FilterOperator.GTE)])),
    ]

    # -- dense only ----------------------------------------------------------------------------
    def dense_setup():
        stores["li_dense"] = make("li_dense", False)
        info = ours_client.get_collection("li_dense")
        expect(info.points_count == N, "points_count %s" % info.points_count)
        expect(info.config.params.vectors.size == DIM, info.config.params.vectors)
        expect("doc_id" in info.payload_schema, "doc_id index: %s" % info.payload_schema)
    checks.run("llamaindex dense: add nodes (creates the collection and its doc_id index)", dense_setup)

    def dense_query():
        for q in queries:
            a, b = both("li_dense", lambda s: s.query(vq(q, similarity_top_k=6)))
            same_result(a, b, "dense query %r" % q)
        for label, flt in filter_sets:
            a, b = both("li_dense", lambda s: s.query(vq(queries[0], similarity_top_k=5, filters=flt)))
            same_result(a, b, "dense filter %s" % label)
            expect(len(a.ids) > 0, "filter %s found nothing" % label)
        a, b = both("li_dense", lambda s: s.query(vq(queries[1], similarity_top_k=5, doc_ids=docs[:3])))
        same_result(a, b, "doc_ids")
        wanted = [n.node_id for n in nodes(False)[10:20]]
        a, b = both("li_dense", lambda s: s.query(vq(queries[2], similarity_top_k=4, node_ids=wanted)))
        same_result(a, b, "node_ids")
        qf = models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["apple", "delta"]))])
        a, b = both("li_dense", lambda s: s.query(vq(queries[3], similarity_top_k=5), qdrant_filters=qf))
        same_result(a, b, "qdrant_filters")
    checks.run("llamaindex dense: VectorStoreQuery, metadata filters (eq, gt, lte, float, or, in, gte, "
               "text_match, nested not, is_empty), doc_ids, node_ids, qdrant_filters", dense_query)

    def except_filters():
        for label, flt in except_sets:
            a, b = both("li_dense", lambda s: s.query(vq(queries[0], similarity_top_k=5, filters=flt)))
            same_result(a, b, "dense filter %s" % label)
            a, b = both("li_dense", lambda s: s.get_nodes(filters=flt))
            expect(sorted(n.node_id for n in a) == sorted(n.node_id for n in b), "get_nodes %s" % label)
    checks.run("llamaindex dense: NE and NIN filters (match except)", except_filters)

    def dense_get_delete():
        wanted = [n.node_id for n in nodes(False)[5:9]]
        a, b = both("li_dense", lambda s: s.get_nodes(node_ids=wanted))
        expect(sorted(n.node_id for n in a) == sorted(n.node_id for n in b) == sorted(wanted), "get_nodes ids")
        for x in a:
            expect(x.embedding is not None and len(x.embedding) == DIM, "get_nodes embedding")
        flt = MetadataFilters(filters=[MetadataFilter(key="topic", value="history")])
        a, b = both("li_dense", lambda s: s.get_nodes(filters=flt))
        expect(sorted(n.node_id for n in a) == sorted(n.node_id for n in b), "get_nodes by filter")
        expect(len(a) == N // 4 + (1 if N % 4 > 3 else 0), "get_nodes by filter: %d" % len(a))
        both("li_dense", lambda s: s.delete(ref_doc_id="doc-03"))
        both("li_dense", lambda s: s.delete_nodes(node_ids=wanted[:2]))
        a, b = both("li_dense", lambda s: s.client.count(s.collection_name, exact=True).count)
        expect(a == b == N - 5 - 2, "count after deletes %s / %s" % (a, b))
        for q in queries[:2]:
            a, b = both("li_dense", lambda s: s.query(vq(q, similarity_top_k=6)))
            same_result(a, b, "after deletes %r" % q)
    checks.run("llamaindex dense: get_nodes (ids, filter), delete by ref_doc_id, delete_nodes", dense_get_delete)

    # -- hybrid --------------------------------------------------------------------------------
    def hybrid_setup():
        stores["li_hybrid"] = make("li_hybrid", True)
        info = ours_client.get_collection("li_hybrid")
        expect(info.points_count == N, "points_count %s" % info.points_count)
        expect(set(info.config.params.vectors) == {"text-dense"}, info.config.params.vectors)
        expect(set(info.config.params.sparse_vectors or {}) == {"text-sparse-new"}, info.config.params)
    checks.run("llamaindex hybrid: add nodes (named text-dense + text-sparse-new)", hybrid_setup)

    def hybrid_query():
        for q in queries:
            a, b = both("li_hybrid", lambda s: s.query(vq(q, similarity_top_k=5)))
            same_result(a, b, "default mode %r" % q)
            a, b = both("li_hybrid", lambda s: s.query(vq(q, similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID)))
            same_result(a, b, "hybrid mode %r" % q)
            a, b = both("li_hybrid", lambda s: s.query(vq(q, similarity_top_k=5, mode=VectorStoreQueryMode.SPARSE)))
            same_result(a, b, "sparse mode %r" % q)
        a, b = both("li_hybrid", lambda s: s.query(vq(queries[0], similarity_top_k=4, sparse_top_k=10, alpha=0.2,
                                                       hybrid_top_k=6, mode=VectorStoreQueryMode.HYBRID)))
        same_result(a, b, "hybrid mode, alpha, sparse_top_k, hybrid_top_k")
        for label, flt in filter_sets:
            a, b = both("li_hybrid", lambda s: s.query(vq(queries[1], similarity_top_k=5, filters=flt,
                                                           mode=VectorStoreQueryMode.HYBRID)))
            same_result(a, b, "hybrid filter %s" % label)
    checks.run("llamaindex hybrid: default, hybrid (relative score fusion) and sparse mode, filters",
               hybrid_query)

    def hybrid_delete():
        both("li_hybrid", lambda s: s.delete(ref_doc_id="doc-07"))
        a, b = both("li_hybrid", lambda s: s.client.count(s.collection_name, exact=True).count)
        expect(a == b == N - 5, "count after delete %s / %s" % (a, b))
        for q in queries[:2]:
            a, b = both("li_hybrid", lambda s: s.query(vq(q, similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID)))
            same_result(a, b, "hybrid after delete %r" % q)
        # A second store over the existing collection detects its vector names.
        with no_warnings():
            again = QdrantVectorStore(client=ours_client, collection_name="li_hybrid", enable_hybrid=True,
                                      sparse_doc_fn=sparse_fn, sparse_query_fn=sparse_query_fn)
            a = again.query(vq(queries[2], similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID))
        b = stores["li_hybrid"][1].query(vq(queries[2], similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID))
        same_result(a, b, "reopened store")
    checks.run("llamaindex hybrid: delete by ref_doc_id, a store reopened over the collection", hybrid_delete)

    def older_collection():
        # A collection made by an older LlamaIndex: sparse vector "text-sparse". The store finds
        # the name in hybridb's collection info and writes and queries through it.
        name = "li_older"
        for c in (ours_client, ref_client):
            ctx = no_warnings() if c is ours_client else warnings.catch_warnings()
            with ctx:
                if c is ref_client:
                    warnings.simplefilter("ignore")
                if c.collection_exists(name):
                    c.delete_collection(name)
                c.create_collection(name, vectors_config={"text-dense": models.VectorParams(
                    size=DIM, distance=models.Distance.COSINE)},
                    sparse_vectors_config={"text-sparse": models.SparseVectorParams()})
        kw = dict(collection_name=name, enable_hybrid=True, sparse_doc_fn=sparse_fn, sparse_query_fn=sparse_query_fn)
        with no_warnings():
            ours = QdrantVectorStore(client=ours_client, **kw)
            expect(ours.sparse_vector_name == "text-sparse", "detected %r" % ours.sparse_vector_name)
            ours.add(nodes()[:90])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = QdrantVectorStore(client=ref_client, **kw)
            ref.add(nodes()[:90])
        for q in queries[:3]:
            a, b = ours_then_ref(lambda s: s.query(vq(q, similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID)),
                                 ours, ref)
            same_result(a, b, "older collection, hybrid %r" % q)
        with no_warnings():
            got = ours_client.retrieve(name, ids=[nodes(False)[0].node_id], with_vectors=True)
            expect(set(got[0].vector) == {"text-dense", "text-sparse"}, "vectors %s" % list(got[0].vector))
            ours_client.delete_collection(name)
    checks.run("llamaindex hybrid: a collection made by an older LlamaIndex (sparse vector text-sparse)",
               older_collection)

    def async_client():
        async def go(client, aclient):
            store = QdrantVectorStore(collection_name="li_async", client=client, aclient=aclient,
                                      enable_hybrid=True, sparse_doc_fn=sparse_fn, sparse_query_fn=sparse_query_fn)
            await store.async_add(nodes()[:80])
            out = [await store.aquery(vq(q, similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID))
                   for q in queries[:2]]
            await store.adelete(ref_doc_id="doc-01")
            out.append(await store.aquery(vq(queries[0], similarity_top_k=5)))
            await store.aclear()
            return out
        for c in (ours_client, ref_client):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if c.collection_exists("li_async"):
                    c.delete_collection("li_async")
        with no_warnings():
            a = asyncio.run(go(None, AsyncQdrantClient(url=url, prefer_grpc=False, timeout=30)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = asyncio.run(go(None, AsyncQdrantClient(":memory:")))
        for x, y in zip(a, b):
            same_result(x, y, "async")
        expect(not ours_client.collection_exists("li_async"), "aclear left the collection")
    checks.run("llamaindex hybrid, async client: async_add, aquery, adelete, aclear", async_client)

    def index_retriever():
        from llama_index.core import StorageContext, VectorStoreIndex
        embed = HashEmbedding(embed_dim=DIM)
        out = []
        for c in (ours_client, ref_client):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if c.collection_exists("li_index"):
                    c.delete_collection("li_index")
            ctx = no_warnings() if c is ours_client else warnings.catch_warnings()
            with ctx:
                if c is ref_client:
                    warnings.simplefilter("ignore")
                store = QdrantVectorStore(client=c, collection_name="li_index", enable_hybrid=True,
                                          sparse_doc_fn=sparse_fn, sparse_query_fn=sparse_query_fn)
                index = VectorStoreIndex(nodes(embed=False)[:100], embed_model=embed,
                                         storage_context=StorageContext.from_defaults(vector_store=store))
                got = [index.as_retriever(similarity_top_k=4).retrieve(queries[0]),
                       index.as_retriever(similarity_top_k=4, vector_store_query_mode="hybrid",
                                          alpha=0.5).retrieve(queries[1])]
                index.delete_ref_doc("doc-02")
                got.append(index.as_retriever(similarity_top_k=6).retrieve(queries[2]))
                out.append(got)
        for x, y in zip(*out):
            expect([n.node.node_id for n in x] == [n.node.node_id for n in y],
                   "retrieve: %s != %s" % ([(n.node.node_id, n.score) for n in x],
                                           [(n.node.node_id, n.score) for n in y]))
            for n, m in zip(x, y):
                expect(close(n.score, m.score), "retrieve score %s != %s" % (n.score, m.score))
                expect(n.node.get_content() == m.node.get_content(), "retrieve text")
        with no_warnings():
            ours_client.delete_collection("li_index")
    checks.run("llamaindex: VectorStoreIndex over the store (embed at insert, retrievers, delete_ref_doc)",
               index_retriever)

    def clear():
        for name in list(stores):
            with no_warnings():
                stores[name][0].clear()
            expect(not ours_client.collection_exists(name), "%s still there" % name)
    checks.run("llamaindex: clear() drops the collections", clear)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="hybridb's Qdrant port, e.g. http://127.0.0.1:6333")
    ap.add_argument("--only", choices=["langchain", "llamaindex"], default=None)
    args = ap.parse_args()
    started = time.monotonic()
    checks = Checks()
    if args.only in (None, "langchain"):
        langchain_checks(args.url, checks, random.Random(2001))
    if args.only in (None, "llamaindex"):
        llamaindex_checks(args.url, checks, random.Random(2002))
    print("took %.1f s" % (time.monotonic() - started))
    print("%d passed, %d failed" % (checks.passed, checks.failed))
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
