"""Duplicate search on real issue trackers: recall@5 on known duplicate pairs.

Optional: the data is not shipped and is not in the shared set. Point
``SIGNALSLOOP_TRACKER_DIR`` at a checkout of GitBugs (github.com/av9ash/gitbugs,
CC BY 4.0: Jira and Bugzilla exports, one folder per project holding
``<Name>_bugs.csv`` with ``Summary``, ``Issue id`` and ``Description``, and
``<Name>_bugs-combined.csv`` with ``Issue id`` and ``Duplicate id``, the latter
possibly a comma-separated list). Every project folder whose report file and
pair file are both present is scored; a pair counts when both of its reports
are in the report file. A folder of Jahan & Rahman's pair tables (SANER 2023:
Eclipse, Firefox, Mobile; see :data:`PAIR_COLUMNS`) beside them is scored too,
its reports being those of its pairs.

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
with Hadoop, SeaMonkey, Eclipse and Mobile (Firefox held out; migration
20261203000101), and with all five: its cosine share, since the title weighs
double in the overlap (20261203000201), the lead rule's word limits and the
embedder's 512 tokens per part.

``python -m signalsloop.benchmarks.tracker_duplicates`` prints the figures;
``make bench-quality`` includes them when the variable is set.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.analyzers.offline import OfflineAnalyzer

ENV = "SIGNALSLOOP_TRACKER_DIR"


@dataclass(frozen=True)
class Tracker:
    name: str
    texts: list[str]  # "summary\ndescription", one per report
    pairs: list[tuple[int, int]]  # (query: the later report, its earlier duplicate)


def _rows(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)  # descriptions hold whole logs
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        return list(csv.DictReader(f))


def load_gitbugs(folder: Path) -> Tracker | None:
    """One GitBugs project folder, or None when its report or pair file is missing."""
    reports = sorted(p for p in folder.glob("*_bugs.csv"))
    if len(reports) != 1 or not (pairs_file := reports[0].with_name(reports[0].stem + "-combined.csv")).is_file():
        return None
    rows = _rows(reports[0])
    index = {(r.get("Issue id") or "").strip(): i for i, r in enumerate(rows)}
    texts = [f"{(r.get('Summary') or '').strip()}\n{(r.get('Description') or '').strip()}" for r in rows]
    pairs: set[tuple[str, str]] = set()
    for r in _rows(pairs_file):
        a = (r.get("Issue id") or "").strip()
        for b in (x.strip() for x in (r.get("Duplicate id") or "").split(",")):
            if a in index and b in index and a != b:
                pairs.add((a, b))
    return _tracker(folder.name, texts, index, pairs)


#: The pair tables of Jahan & Rahman (SANER 2023, repository
#: SigmaJahan/Towards-Understanding-the-Impacts-of-Textual-Dissimilarity-on-Duplicate-Bug-Report-Detection,
#: GPL-3.0): both reports' texts on every row, so the reports are those of the pairs.
PAIR_COLUMNS = ("Bug ID", "Duplicate_Bug_Ids", "Summary1", "description1", "summary2", "description2")


def load_pair_tables(folder: Path) -> Tracker | None:
    """A folder of ``*_pair.csv`` tables with :data:`PAIR_COLUMNS`, or None."""
    tables = [rows for path in sorted(folder.glob("*_pair.csv")) if (rows := _rows(path))
              and all(c in rows[0] for c in PAIR_COLUMNS)]
    if not tables:
        return None
    texts: list[str] = []
    index: dict[str, int] = {}
    pairs: set[tuple[str, str]] = set()
    for row in (r for rows in tables for r in rows):
        a, b = _id(row["Bug ID"]), _id(row["Duplicate_Bug_Ids"])
        sides = ((a, row["Summary1"], row["description1"]), (b, row["summary2"], row["description2"]))
        for issue, title, body in sides:
            if issue not in index:
                index[issue] = len(texts)
                texts.append(f"{_unlist(title)}\n{_unlist(body)}")
        if a != b:
            pairs.add((a, b))
    return _tracker(folder.name, texts, index, pairs)


def _tracker(name: str, texts: list[str], index: dict[str, int], pairs: set[tuple[str, str]]) -> Tracker:
    """Each pair once, in id order, as (the later report, the earlier one)."""
    ordered = sorted({tuple(sorted(p, key=_key)) for p in pairs}, key=lambda p: (_key(p[0]), _key(p[1])))
    return Tracker(name, texts, [(index[later], index[earlier]) for earlier, later in ordered])


def _id(value: str) -> str:
    """``"1464351.0"`` (a float column) as ``"1464351"``."""
    value = value.strip()
    return value[:-2] if value.endswith(".0") and value[:-2].isdigit() else value


def _unlist(value: str) -> str:
    """The tables write a text as a Python list literal (``['...']``)."""
    value = (value or "").strip()
    if value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(parsed, list):
            return " ".join(str(x) for x in parsed).strip()
    return value


def _key(issue_id: str) -> tuple[int, str]:
    return (int(issue_id), "") if issue_id.isdigit() else (sys.maxsize, issue_id)


def trackers(root: Path) -> list[Tracker]:
    found = (load_gitbugs(d) or load_pair_tables(d) for d in sorted(root.iterdir()) if d.is_dir())
    return [t for t in found if t is not None and t.pairs]


def score_tracker(conn: psycopg.Connection, analyzer: OfflineAnalyzer, tracker: Tracker,
                  k: int = 5) -> dict[str, object]:
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


def run(conn: psycopg.Connection, analyzer: OfflineAnalyzer) -> dict[str, object]:
    """Every tracker under ``$SIGNALSLOOP_TRACKER_DIR``, and the pooled recall over all pairs."""
    root = os.environ.get(ENV)
    if not root:
        return {"skipped": f"set {ENV} to a folder of GitBugs projects (github.com/av9ash/gitbugs) or of"
                           " SANER 2023 pair tables to score real trackers"}
    if not Path(root).is_dir():
        return {"skipped": f"{ENV}={root} is not a directory"}
    report: dict[str, object] = {t.name: score_tracker(conn, analyzer, t) for t in trackers(Path(root))}
    figures = [v for v in report.values() if isinstance(v, dict)]
    total = sum(int(f["pairs"]) for f in figures)
    if total:
        report["all_pairs"] = {"pairs": total, **{
            key: round(sum(float(f[key]) * int(f["pairs"]) for f in figures) / total, 4)
            for key in figures[0] if key.startswith("recall_at_")}}
    return report


def main() -> int:
    from signalsloop.operations.hybrid import scratch_database

    with scratch_database(None) as url, psycopg.connect(url) as conn:
        print(json.dumps(run(conn, OfflineAnalyzer()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
