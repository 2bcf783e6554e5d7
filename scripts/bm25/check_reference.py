"""Compares hybridb's BM25 top-100 (from `hybridb-bench bm25-dump`) with bm25s's scores of the
same term lists. Exits 1 if a score differs by more than 1e-4 (relative to max(1, |score|)) or
if the top-100 sets differ beyond ties at the 100th score."""
import json
import sys

import bm25s
import numpy as np


def main(path):
    with open(path) as f:
        head = json.loads(f.readline())
        docs = [json.loads(f.readline())["terms"] for _ in range(head["docs"])]
        queries = [json.loads(line) for line in f]
    k1, b = head["k1"], head["b"]
    vocab = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in d] for d in docs]
    retriever = bm25s.BM25(method="lucene", k1=k1, b=b)
    retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    worst, bad_sets = 0.0, 0
    for q in queries:
        terms = [t for t in q["terms"] if t in vocab]
        scores = retriever.get_scores(terms) * (k1 + 1.0) if terms else np.zeros(len(docs))
        for slot, score in q["top"]:
            ref = float(scores[slot])
            worst = max(worst, abs(ref - score) / max(1.0, abs(ref)))
        ours = {slot for slot, _ in q["top"]}
        if q["top"]:
            cut = q["top"][-1][1]
            ref_top = set(np.nonzero(scores > cut * (1 + 1e-5) + 1e-6)[0].tolist())
            tied = set(np.nonzero(np.abs(scores - cut) <= 1e-4 * max(1.0, abs(cut)))[0].tolist())
            # Every document the reference ranks above our cut is ours; ours are above or tied.
            if not ref_top <= ours or not ours <= (ref_top | tied):
                bad_sets += 1
    print(json.dumps({"queries": len(queries), "docs": len(docs), "max_rel_score_error": worst,
                      "top100_mismatches": bad_sets}))
    if worst > 1e-4 or bad_sets:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
