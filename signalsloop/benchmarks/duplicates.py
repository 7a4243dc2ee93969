"""Duplicate search quality and speed, through ``public.match_feedback_hybrid``.

- ``main``: the logistic fit behind ``public.hybrid_weights()`` on STS-B
  *train* (a pair is a duplicate when its STS score is >= 4): the fused score
  is expressed on the embedding-only fit's cosine scale, so a threshold keeps
  the duplicate probability it had. ``python -m signalsloop.benchmarks.duplicates``
  prints the weights (scikit-learn needed: ``pip install -e '.[train]'``).
- ``retrieval``: STS-B *dev* (never used to fit): every sentence of a pair
  scored >= 4 looks for its partner among all 3,000 dev sentences; recall@5
  of cosine only (the old agent), the weighted lexeme overlap only, and the
  fused search, in its order and in the previous one (its candidates by
  calibrated score).
- ``lookup_latency``: one project of ``n`` synthetic feedback items (random
  pairs of the public sentences); p50/p95 of one agent lookup.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from shared.analyzers.offline import OfflineAnalyzer
from signalsloop.operations.hybrid import ScratchProject, scratch_project

DUPLICATE_STS = 4.0
POOL = 100  # match_feedback_hybrid's candidates: at most 50 lexical and 50 semantic


def sts_pairs(root: Path, split: str) -> tuple[list[str], list[str], np.ndarray]:
    path = root / f"similarity-stsb-{split}" / f"sts-{split}.csv"
    rows = [r for r in (line.split("\t") for line in path.read_text("utf-8").splitlines()) if len(r) >= 7]
    return [r[5] for r in rows], [r[6] for r in rows], np.array([float(r[4]) for r in rows])


def lexical_overlap(conn: psycopg.Connection, texts: Sequence[str], vectors: np.ndarray,
                    pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """The SQL weighted lexeme overlap of each pair of ``texts``, all loaded as
    one scratch project (split into title/body as posts are), so the lexemes'
    rarity comes from the planner's statistics, as in a project."""
    with scratch_project(conn, "calibration") as project:
        project.add(texts, vectors)
        conn.execute("analyze public.feedback_lexemes")
        rows = conn.execute(
            "select public.lexeme_overlap_weighted(a.lexemes, b.lexemes, %s::jsonb)"
            "  from unnest(%s::uuid[], %s::uuid[]) with ordinality as u(x, y, n)"
            "  join public.feedback_lexemes a on a.feedback_id = u.x"
            "  join public.feedback_lexemes b on b.feedback_id = u.y order by u.n",
            (Jsonb(lexeme_shares(conn)), [project.ids[i] for i, _ in pairs],
             [project.ids[j] for _, j in pairs])).fetchall()
    return np.array([float(r[0]) for r in rows])


def lexeme_shares(conn: psycopg.Connection) -> dict[str, float]:
    row = conn.execute("select public.lexeme_shares()").fetchone()
    assert row is not None
    return dict(row[0])


def pair_features(conn: psycopg.Connection, analyzer: OfflineAnalyzer, left: Sequence[str],
                  right: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = analyzer.embed_array(left), analyzer.embed_array(right)
    cos = (a * b).sum(axis=1)
    n = len(left)
    lex = lexical_overlap(conn, [*left, *right], np.vstack([a, b]), [(i, n + i) for i in range(n)])
    return cos.astype(np.float64), lex


def fit_weights(cos: np.ndarray, lex: np.ndarray, duplicate: np.ndarray) -> tuple[float, float, float]:
    """(w_cos, w_lex, w_bias): logit_fused(cos, lex) mapped onto the cosine-only logit's scale."""
    from sklearn.linear_model import LogisticRegression

    only = LogisticRegression(C=1e4).fit(cos[:, None], duplicate)
    both = LogisticRegression(C=1e4).fit(np.c_[cos, lex], duplicate)
    a0, c0 = float(only.coef_[0][0]), float(only.intercept_[0])
    (a1, b1), c1 = (float(x) for x in both.coef_[0]), float(both.intercept_[0])
    return a1 / a0, b1 / a0, (c1 - c0) / a0


def hybrid_weights(conn: psycopg.Connection) -> tuple[float, float, float]:
    row = conn.execute("select w_cos, w_lex, w_bias from public.hybrid_weights()").fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), float(row[2])


def _precision_recall(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((predicted & truth).sum())
    return {"precision": round(tp / max(int(predicted.sum()), 1), 4), "recall": round(tp / max(int(truth.sum()), 1), 4)}


def threshold_meaning(conn: psycopg.Connection, analyzer: OfflineAnalyzer, root: Path,
                      threshold: float) -> dict[str, object]:
    """Precision/recall at ``threshold`` on STS-B dev, cosine alone vs fused."""
    left, right, gold = sts_pairs(root, "dev")
    cos, lex = pair_features(conn, analyzer, left, right)
    w_cos, w_lex, w_bias = hybrid_weights(conn)
    fused = np.clip(w_cos * cos + w_lex * lex + w_bias, 0, 1)
    truth = gold >= DUPLICATE_STS
    return {"threshold": threshold, "cosine_only": _precision_recall(cos >= threshold, truth),
            "fused": _precision_recall(fused >= threshold, truth)}


def retrieval(conn: psycopg.Connection, analyzer: OfflineAnalyzer, root: Path, k: int = 5) -> dict[str, object]:
    left, right, gold = sts_pairs(root, "dev")
    texts, n = [*left, *right], len(left)
    vectors = analyzer.embed_array(texts)
    pairs = [int(i) for i in np.flatnonzero(gold >= DUPLICATE_STS)]
    queries = [(i, n + i) for i in pairs] + [(n + i, i) for i in pairs]
    hits = {"cosine_only": 0, "lexical_only": 0, "fused": 0, "fused_ordered_by_score": 0}
    with scratch_project(conn, analyzer.embedding_model) as project:
        project.add(texts, vectors)
        project.matches(0, vectors[0], k)  # builds the vector index and the statistics
        shares = lexeme_shares(conn)
        for query, partner in queries:
            sims = vectors @ vectors[query]
            sims[query] = -np.inf
            hits["cosine_only"] += partner in np.argsort(-sims, kind="stable")[:k]
            fused, by_score = fused_top(project, query, vectors[query], k)
            hits["fused"] += partner in fused
            hits["fused_ordered_by_score"] += partner in by_score
            hits["lexical_only"] += partner in lexical_top(conn, project.ids, query, k, shares)
    return {"dataset": "STS-B dev, partner among 3,000 sentences", "queries": len(queries),
            **{f"recall_at_{k}_{name}": round(v / len(queries), 4) for name, v in hits.items()}}


def fused_top(project: ScratchProject, query: int, vector: np.ndarray, k: int) -> tuple[list[int], list[int]]:
    """The ``k`` best of ``match_feedback_hybrid``: in its order, and its whole
    candidate pool ordered by the calibrated score (the order before
    20261202000801)."""
    pool = project.matches(query, vector, POOL)
    by_score = sorted(pool, key=lambda m: -m[1])
    return [m[0] for m in pool[:k]], [m[0] for m in by_score[:k]]


def lexical_top(conn: psycopg.Connection, ids: Sequence[object], query: int, k: int,
                shares: dict[str, float]) -> list[int]:
    """The ``k`` best by the weighted lexeme overlap alone, over the whole project
    (``shares``: ``public.lexeme_shares()``, read once)."""
    rows = conn.execute(
        "select o.overlap from public.feedback_lexemes q,"
        " public.lexeme_overlaps_weighted(q.lexemes, (select array_agg(l.lexemes order by u.n)"
        "   from unnest(%s::uuid[]) with ordinality as u(id, n)"
        "   join public.feedback_lexemes l on l.feedback_id = u.id), %s::jsonb) o"
        " where q.feedback_id = %s order by o.n", (list(ids), Jsonb(shares), ids[query])).fetchall()
    score = np.array([float(r[0]) for r in rows])
    score[query] = -np.inf
    return [int(i) for i in np.argsort(-score, kind="stable")[:k]]


def synthetic_feedback(root: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` texts, each two random public sentences (a title and a body)."""
    left, right, _ = sts_pairs(root, "train")
    pool = sorted({*left, *right})
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(pool), n), rng.integers(0, len(pool), n)
    return [f"{pool[i]}\n{pool[j]}" for i, j in zip(a.tolist(), b.tolist(), strict=True)]


def lookup_latency(conn: psycopg.Connection, analyzer: OfflineAnalyzer, root: Path, n: int = 100_000,
                   lookups: int = 200) -> dict[str, object]:
    texts = synthetic_feedback(root, n)
    vectors = analyzer.embed_array(texts)
    with scratch_project(conn, analyzer.embedding_model) as project:
        start = time.perf_counter()
        project.add(texts, vectors)
        project.matches(0, vectors[0], 5)  # builds the vector index and the statistics
        loaded = time.perf_counter() - start
        picks = np.random.default_rng(1).choice(n, size=lookups, replace=False)
        times = []
        for i in picks.tolist():
            t0 = time.perf_counter()
            project.matches(i, vectors[i], 5)
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"items_in_project": n, "lookups": lookups, "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "load_s": round(loaded, 1)}


def main() -> int:
    from signalsloop.benchmarks.quality import data_dir
    from signalsloop.operations.hybrid import scratch_database

    root, analyzer = data_dir(), OfflineAnalyzer()
    left, right, gold = sts_pairs(root, "train")
    with scratch_database(None) as url, psycopg.connect(url) as conn:
        cos, lex = pair_features(conn, analyzer, left, right)
    w = fit_weights(cos, lex, gold >= DUPLICATE_STS)
    print(json.dumps({"fit_on": "STS-B train", "w_cos": round(w[0], 4), "w_lex": round(w[1], 4),
                      "w_bias": round(w[2], 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
