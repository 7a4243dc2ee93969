"""Real issue trackers with known duplicate pairs, read from the layouts
they are published in. None of them is shipped or in the shared set.

- GitBugs (github.com/av9ash/gitbugs, CC BY 4.0): Jira and Bugzilla
  exports, one folder per project holding ``<Name>_bugs.csv`` with
  ``Summary``, ``Issue id`` and ``Description``, and
  ``<Name>_bugs-combined.csv`` with ``Issue id`` and ``Duplicate id``, the
  latter possibly a comma-separated list (:func:`load_gitbugs`).
- Jahan & Rahman's pair tables (SANER 2023: Eclipse, Firefox, Mobile), both
  reports' texts on every row (:func:`load_pair_tables`).
- Jira's own REST issue JSON, one file per issue (``GET
  /rest/api/2/issue/<key>``) or search results (``{"issues": [...]}``), in
  a project folder or its ``details/`` folder, as the SPEAR-SE
  LogInBugReportsEmpirical_Data collection publishes ten Apache projects:
  pairs are the ``Duplicate`` issue links between two issues of the folder
  (:func:`load_jira_issues`).
- Pair tables with ``bug_id_x``, ``title_x``, ``description_x``,
  ``bug_id_y``, ``title_y``, ``description_y`` (tab- or comma-separated),
  as the DWEN replication (github.com/dutta1kartik3/duplicate-bug-detection)
  publishes the OpenOffice pairs of Lazar et al. (MSR 2014)
  (:func:`load_xy_tables`).

A pair counts when both of its reports are read; each pair is scored once,
the later report (higher id) looking for the earlier one.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Tracker:
    name: str
    texts: list[str]  # "summary\ndescription", one per report
    pairs: list[tuple[int, int]]  # (query: the later report, its earlier duplicate)


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)  # descriptions hold whole logs
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


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


def load_jira_issues(folder: Path) -> Tracker | None:
    """A folder of Jira REST issue JSON (or its ``details/``), or None when it holds none."""
    issues = list(_jira_issues(folder / "details" if (folder / "details").is_dir() else folder))
    if not issues:
        return None
    index: dict[str, int] = {}
    texts: list[str] = []
    for issue in issues:
        if (issue_id := str(issue.get("id") or "")) and issue_id not in index:
            fields = issue["fields"]
            index[issue_id] = len(texts)
            texts.append(f"{(fields.get('summary') or '').strip()}\n{(fields.get('description') or '').strip()}")
    pairs: set[tuple[str, str]] = set()
    for issue in issues:
        for link in issue["fields"].get("issuelinks") or []:
            other = link.get("outwardIssue") or link.get("inwardIssue") or {}
            if (link.get("type") or {}).get("name") == "Duplicate" and str(other.get("id")) in index:
                pairs.add((str(issue["id"]), str(other["id"])))
    return _tracker(folder.name, texts, index, {p for p in pairs if p[0] != p[1]})


def _jira_issues(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8", errors="replace") or "null")
        except json.JSONDecodeError:
            continue  # a file left empty by the export: no issue
        for issue in data.get("issues", [data]) if isinstance(data, dict) else []:
            if isinstance(issue, dict) and isinstance(issue.get("fields"), dict):
                yield issue


XY_COLUMNS = ("bug_id_x", "title_x", "description_x", "bug_id_y", "title_y", "description_y")


def load_xy_tables(folder: Path) -> Tracker | None:
    """A folder of pair tables with :data:`XY_COLUMNS` (``*.csv``, ``*.tsv``), or None."""
    texts: list[str] = []
    index: dict[str, int] = {}
    pairs: set[tuple[str, str]] = set()
    for path in sorted([*folder.glob("*.csv"), *folder.glob("*.tsv")]):
        rows = _rows(path, delimiter="\t" if "\t" in _first_line(path) else ",")
        if not rows or not all(c in rows[0] for c in XY_COLUMNS):
            continue
        for row in rows:
            a, b = _id(row["bug_id_x"] or ""), _id(row["bug_id_y"] or "")
            if not a or not b:
                continue  # a short row: no pair
            for issue, side in ((a, "x"), (b, "y")):
                if issue not in index:
                    index[issue] = len(texts)
                    title, body = (row[f"{field}_{side}"] or "" for field in ("title", "description"))
                    texts.append(f"{title.strip()}\n{body.strip()}")
            if a != b:
                pairs.add((a, b))
    return _tracker(folder.name, texts, index, pairs) if texts else None


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as f:
        return f.readline()


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


def pair_reports_only(tracker: Tracker) -> Tracker:
    """The tracker cut down to the reports of its pairs, as the pair tables
    come: a small pool, where every method scores higher."""
    keep = sorted({i for pair in tracker.pairs for i in pair})
    position = {old: new for new, old in enumerate(keep)}
    return Tracker(tracker.name, [tracker.texts[i] for i in keep],
                   [(position[a], position[b]) for a, b in tracker.pairs])


def trackers(root: Path) -> list[Tracker]:
    """Every tracker in a folder of ``root``, in any of the layouts above."""
    found = (load_gitbugs(d) or load_pair_tables(d) or load_xy_tables(d) or load_jira_issues(d)
             for d in sorted(root.iterdir()) if d.is_dir())
    return [t for t in found if t is not None and t.pairs]
