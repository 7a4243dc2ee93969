"""Duplicate search on real issue trackers: recall@5 on known duplicate pairs.

Optional: the data is not shipped and is not in the shared set. Point
``SIGNALSLOOP_TRACKER_DIR`` at a folder of tracker folders, each in one of
the layouts :mod:`signalsloop.benchmarks.tracker_sources` reads (GitBugs
exports, the SANER 2023 pair tables, Jira REST issue JSON, ``_x``/``_y``
pair tables); every folder holding a tracker with pairs is scored.

Each report is loaded as a post (its summary the title, its description the
body) into a scratch project of all the project's reports. For every pair the
later report (higher id) looks for the earlier one, as a new report would:
recall@5 of the fused search (``match_feedback_hybrid``, in its order), of
cosine alone, of the weighted lexeme overlap alone, and of the character
TF-IDF 3-5 baseline (scikit-learn). The fused search is scored again with
each report exported as one line (summary and description, whitespace run
together), read as ``signalsloop analyze`` reads such a line (its lead as the
title, :func:`~signalsloop.operations.hybrid.lead_as_title`) and, for
comparison, as a first line is read otherwise (its first 500 characters the
title). The weights and the threshold were not fit on these reports, but
the order of ``match_feedback_hybrid``'s third, consensus list was chosen
with GitBugs' Hadoop and SeaMonkey and the SANER Eclipse and Mobile tables
(Firefox held out; migration 20261203000101), and with all five: its cosine
share, since the title weighs double in the overlap (20261203000201), the
lead rule's word limits and the embedder's 512 tokens per part. No choice
was made with the Jira JSON projects or the OpenOffice pairs: for the
search, they are unseen.

A tracker whose pool holds reports outside its pairs is scored again on
the reports of its pairs only (``pair_reports_only``, pooled apart as
``all_pairs_pair_reports_only``): a small pool, as the pair tables come, in
which every method scores higher.

``python -m signalsloop.benchmarks.tracker_duplicates`` prints the figures;
``make bench-quality`` includes them when the variable is set.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg

from shared.analyzers.offline import OfflineAnalyzer
from signalsloop.benchmarks.tracker_sources import Tracker, pair_reports_only, trackers

ENV = "SIGNALSLOOP_TRACKER_DIR"


def score_tracker(conn: psycopg.Connection, analyzer: OfflineAnalyzer, tracker: Tracker,
                  k: int = 5) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from signalsloop.benchmarks.duplicates import fused_top, lexeme_shares, lexical_top
    from signalsloop.benchmarks.technical_duplicates import top_k
    from signalsloop.operations.hybrid import lead_as_title, scratch_project

    vectors = analyzer.embed_array(tracker.texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(tracker.texts)
    hits = {"fused": 0, "cosine_only": 0, "lexical_only": 0, "char_tfidf_3_5_baseline": 0}
    with scratch_project(conn, analyzer.embedding_model) as project:
        project.add(tracker.texts, vectors)
        project.matches(0, vectors[0], k)  # builds the vector index and the statistics
        shares = lexeme_shares(conn)
        for query, partner in tracker.pairs:
            hits["fused"] += partner in fused_top(project, query, vectors[query], k)[0]
            hits["cosine_only"] += partner in top_k(vectors @ vectors[query], query, k)
            hits["lexical_only"] += partner in lexical_top(conn, project.ids, query, k, shares)
            hits["char_tfidf_3_5_baseline"] += partner in top_k((char @ char[query].T).toarray().ravel(), query, k)
    one_line = [" ".join(t.split()) for t in tracker.texts]
    hits["fused_one_line_export"] = fused_hits(conn, analyzer, [lead_as_title(t) for t in one_line], tracker.pairs, k)
    hits["fused_one_line_export_without_lead_title"] = fused_hits(conn, analyzer, one_line, tracker.pairs, k)
    return {"reports": len(tracker.texts), "pairs": len(tracker.pairs),
            **{f"recall_at_{k}_{name}": round(v / len(tracker.pairs), 4) for name, v in hits.items()}}


def fused_hits(conn: psycopg.Connection, analyzer: OfflineAnalyzer, texts: list[str],
               pairs: list[tuple[int, int]], k: int) -> int:
    """Pairs whose earlier report is in the later one's fused top ``k``, the
    texts loaded as they are (first line the title)."""
    from signalsloop.benchmarks.duplicates import fused_top
    from signalsloop.operations.hybrid import scratch_project

    vectors = analyzer.embed_array(texts)
    with scratch_project(conn, analyzer.embedding_model) as project:
        project.add(texts, vectors)
        return sum(partner in fused_top(project, query, vectors[query], k)[0] for query, partner in pairs)


def run(conn: psycopg.Connection, analyzer: OfflineAnalyzer) -> dict[str, Any]:
    """Every tracker under ``$SIGNALSLOOP_TRACKER_DIR``, and the pooled recall over all pairs."""
    root = os.environ.get(ENV)
    if not root:
        return {"skipped": f"set {ENV} to a folder of tracker folders (GitBugs projects, SANER 2023 pair"
                           " tables, Jira issue JSON) to score real trackers"}
    if not Path(root).is_dir():
        return {"skipped": f"{ENV}={root} is not a directory"}
    report: dict[str, Any] = {}
    small: list[dict[str, Any]] = []
    for tracker in trackers(Path(root)):
        figures = report[tracker.name] = score_tracker(conn, analyzer, tracker)
        cut = pair_reports_only(tracker)
        if len(cut.texts) < len(tracker.texts):
            small.append(figures.setdefault("pair_reports_only", score_tracker(conn, analyzer, cut)))
    if pooled := _pooled(list(report.values())):
        report["all_pairs"] = pooled
    if pooled := _pooled(small):
        report["all_pairs_pair_reports_only"] = pooled
    return report


def _pooled(figures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Recall over every pair of ``figures``' trackers."""
    total = sum(int(f["pairs"]) for f in figures)
    if not total:
        return None
    return {"pairs": total, **{key: round(sum(float(f[key]) * int(f["pairs"]) for f in figures) / total, 4)
                               for key in figures[0] if key.startswith("recall_at_")}}


def main() -> int:
    from signalsloop.operations.hybrid import scratch_database

    with scratch_database(None) as url, psycopg.connect(url) as conn:
        print(json.dumps(run(conn, OfflineAnalyzer()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
