"""``signalsloop analyze sentiment|similarity|themes``: JSON lines in, JSON lines out.

Each input line is ``{"id": ..., "text": ...}``; each well-formed line gives
one output line, in input order. A malformed line is reported on stderr with
its line number and makes the exit code 2, but the others are still
processed. Analyzer calls are batched; similarity is computed with matrix
products in blocks, so tens of thousands of lines fit in memory and time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from shared.clustering import DEFAULT_THEME_THRESHOLD, ThemeIndex, unit_rows
from shared.ports import Analyzer

KINDS = ("sentiment", "similarity", "themes")
BATCH = 256
#: Similarity cells per block (float32): bounds memory at ~64 MB whatever the input size.
BLOCK_CELLS = 16_000_000
#: Members (closest to the centroid first) whose texts name a theme.
NAMING_SAMPLE = 50
EXIT_OK, EXIT_BAD_INPUT = 0, 2

Advance = Callable[[int], None]


@dataclass(frozen=True)
class Record:
    line: int
    id: str | int
    text: str


def run_analyze(
    kind: str,
    analyzer: Analyzer,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    top: int = 5,
    progress: bool = True,
) -> int:
    """Run one analysis over ``stdin``; returns the process exit code."""
    if kind not in KINDS:
        stderr.write(f"unknown analysis {kind!r}; choose one of {', '.join(KINDS)}\n")
        return EXIT_BAD_INPUT
    if top < 1:
        stderr.write("--top must be at least 1\n")
        return EXIT_BAD_INPUT
    records, bad = read_records(stdin, stderr)
    if records:
        with _progress(stderr, progress, kind, len(records)) as advance:
            if kind == "sentiment":
                _sentiment(records, analyzer, stdout, advance)
            elif kind == "similarity":
                _similarity(records, analyzer, stdout, top, advance)
            else:
                _themes(records, analyzer, stdout, advance)
    if bad:
        stderr.write(f"{bad} malformed line{'s' if bad != 1 else ''} skipped\n")
    return EXIT_BAD_INPUT if bad else EXIT_OK


def read_records(stdin: TextIO, stderr: TextIO) -> tuple[list[Record], int]:
    """Well-formed records, and how many lines were reported malformed.
    Blank lines are skipped silently."""
    records: list[Record] = []
    bad = 0
    for number, raw in enumerate(stdin, start=1):
        if not raw.strip():
            continue
        record, problem = _parse(number, raw)
        if record is None:
            bad += 1
            stderr.write(f"line {number}: {problem}\n")
        else:
            records.append(record)
    return records, bad


def _parse(number: int, raw: str) -> tuple[Record | None, str]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    if not isinstance(obj, dict):
        return None, 'expected an object like {"id": ..., "text": ...}'
    ident, text = obj.get("id"), obj.get("text")
    if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
        return None, '"id" is missing or not a string/integer'
    if not isinstance(text, str):
        return None, '"text" is missing or not a string'
    return Record(number, ident, text), ""


@contextmanager
def _progress(stderr: TextIO, enabled: bool, label: str, total: int) -> Iterator[Advance]:
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=stderr), transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _emit(stdout: TextIO, obj: dict[str, object]) -> None:
    stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _batches(records: Sequence[Record]) -> Iterator[Sequence[Record]]:
    for start in range(0, len(records), BATCH):
        yield records[start : start + BATCH]


def _sentiment(records: Sequence[Record], analyzer: Analyzer, out: TextIO, advance: Advance) -> None:
    for batch in _batches(records):
        for rec, s in zip(batch, analyzer.sentiment([r.text for r in batch]), strict=True):
            _emit(out, {"id": rec.id, "label": s.label, "score": round(s.score, 4), "model": s.model})
        advance(len(batch))


def embed_all(records: Sequence[Record], analyzer: Analyzer, advance: Advance) -> np.ndarray:
    """Unit float32 rows, one per record, embedded in batches."""
    parts = []
    for batch in _batches(records):
        parts.append(np.asarray(analyzer.embed([r.text for r in batch]), dtype=np.float32))
        advance(len(batch))
    return unit_rows(np.concatenate(parts))


def top_neighbours(vectors: np.ndarray, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per row: indices and cosines of its ``k`` most similar *other* rows,
    best first (ties by index). Rows are processed in blocks."""
    n = len(vectors)
    k = min(k, n - 1)
    rows_per_block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, rows_per_block):
        sims = vectors[start : start + rows_per_block] @ vectors.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf
        if k <= 0:
            yield from ((np.empty(0, int), np.empty(0)) for _ in rows)
            continue
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r in rows:
            idx = part[r]
            order = np.lexsort((idx, -sims[r, idx]))
            yield idx[order], sims[r, idx[order]]


def _similarity(records: Sequence[Record], analyzer: Analyzer, out: TextIO, top: int, advance: Advance) -> None:
    vectors = embed_all(records, analyzer, lambda n: None)
    for rec, (idx, scores) in zip(records, top_neighbours(vectors, top), strict=True):
        neighbours = [{"id": records[int(j)].id, "score": round(float(s), 4)} for j, s in zip(idx, scores, strict=True)]
        _emit(out, {"id": rec.id, "neighbours": neighbours})
        advance(1)


def group_themes(vectors: np.ndarray, threshold: float = DEFAULT_THEME_THRESHOLD) -> list[int]:
    """Theme index per row, assigned incrementally in input order."""
    index = ThemeIndex(vectors.shape[1])
    return [index.add(v, threshold)[0] for v in vectors]


def _themes(records: Sequence[Record], analyzer: Analyzer, out: TextIO, advance: Advance) -> None:
    vectors = embed_all(records, analyzer, lambda n: None)
    themes = np.asarray(group_themes(vectors), dtype=np.int64)
    names: dict[int, str] = {}
    for theme in range(int(themes.max()) + 1):
        members = np.flatnonzero(themes == theme)
        centroid = unit_rows(vectors[members].mean(axis=0, keepdims=True))[0]
        closest = members[np.argsort(-(vectors[members] @ centroid), kind="stable")]
        names[theme] = analyzer.name_theme([records[int(i)].text for i in closest[:NAMING_SAMPLE]])
    for rec, theme in zip(records, themes.tolist(), strict=True):
        _emit(out, {"id": rec.id, "theme_id": theme + 1, "theme": names[theme]})
        advance(1)
