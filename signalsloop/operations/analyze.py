"""``signalsloop analyze sentiment|similarity|themes``: JSON lines in, JSON lines out.

Each input line is ``{"id": ..., "text": ...}`` (a text's first line is read
as a post's title; for similarity, a first line of more than 30 words is taken
as a summary and its description run together, and its lead is the title), or
``{"id": ..., "title": ..., "body": ...}`` as a ``posts`` export has them; each
well-formed line gives one output line, in input order. A NUL in a text is
dropped and a lone UTF-16 surrogate becomes U+FFFD (:func:`shared.text.clean_text`),
which PostgreSQL and UTF-8 could not hold. A title and body are
read as the agents read a post: sentiment and theme names from
``feedback_text``, vectors and lexemes from ``embedding_text`` (the title on its
own first line). A malformed line is reported on stderr with its line number
and makes the exit code 2, but the others are still processed. Analyzer calls
are batched. Similarity is the duplicate agent's hybrid search, run in a
throwaway database; themes group lines in the theme space with the theme
agent's rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, TextIO, TypeVar

import numpy as np

from shared import theme_space
from shared.clustering import DEFAULT_THEME_THRESHOLD, ThemeIndex, unit_rows
from shared.feedback import embedding_text, feedback_text
from shared.ports import Analyzer
from shared.text import clean_text, is_valid_unicode

KINDS = ("sentiment", "similarity", "themes")
BATCH = 256
#: Members (closest to the centroid first) whose texts name a theme.
NAMING_SAMPLE = 50
EXIT_OK, EXIT_BAD_INPUT = 0, 2
#: The most neighbours or themes asked for (the search returns at most its two pools anyway).
MAX_TOP = 10_000
#: Line breaks that JSON leaves raw but ``str.splitlines`` splits at: escaped in the output.
_RAW_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})

Advance = Callable[[int], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    line: int
    id: str | int
    text: str  # what is embedded and searched: the title, if any, on the first line
    plain: str  # what sentiment and theme names read (the same for a "text" line)
    titled: bool = False  # given as "title" and "body", so the first line of ``text`` is a title


def run_analyze(
    kind: str,
    analyzer: Analyzer,
    stdin: TextIO | BinaryIO,
    stdout: TextIO,
    stderr: TextIO,
    top: int = 5,
    progress: bool = True,
    database_url: str | None = None,
) -> int:
    """Run one analysis over ``stdin``; returns the process exit code.

    ``similarity`` runs in PostgreSQL: on ``database_url`` (a superuser's,
    rolled back afterwards) or, by default, on a scratch embedded server."""
    if kind not in KINDS:
        stderr.write(f"unknown analysis {kind!r}; choose one of {', '.join(KINDS)}\n")
        return EXIT_BAD_INPUT
    if not 1 <= top <= MAX_TOP:
        stderr.write(f"--top must be between 1 and {MAX_TOP}\n")
        return EXIT_BAD_INPUT
    records, bad = read_records(stdin, stderr)
    if records:
        with _progress(stderr, progress, kind, len(records)) as advance:
            if kind == "sentiment":
                _sentiment(records, analyzer, stdout, advance)
            elif kind == "similarity":
                _similarity(records, analyzer, stdout, top, advance, database_url)
            else:
                _themes(records, analyzer, stdout, advance)
    if bad:
        stderr.write(f"{bad} malformed line{'s' if bad != 1 else ''} skipped\n")
    return EXIT_BAD_INPUT if bad else EXIT_OK


def read_records(stdin: TextIO | BinaryIO, stderr: TextIO) -> tuple[list[Record], int]:
    """Well-formed records, and how many lines were reported malformed.
    Blank lines are skipped silently. A byte stream (the CLI's stdin) is
    decoded line by line as UTF-8, so one line of another encoding is
    reported as that line, not a traceback that loses the others; a UTF-8
    byte-order mark at the start is skipped."""
    records: list[Record] = []
    bad = 0
    lines: Iterable[str | bytes] = stdin
    for number, line in enumerate(lines, start=1):
        raw, problem = _decoded(line, number == 1)
        if raw is not None and not raw.strip():
            continue
        record, problem = (None, problem) if raw is None else _parse(number, raw)
        if record is None:
            bad += 1
            stderr.write(f"line {number}: {problem}\n")
        else:
            records.append(record)
    return records, bad


def _decoded(line: str | bytes, first: bool) -> tuple[str | None, str]:
    if isinstance(line, str):
        return (line.removeprefix("\ufeff") if first else line), ""
    if first and line[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None, "the input is UTF-16 (it starts with a UTF-16 byte-order mark); convert it to UTF-8"
    try:
        return line.decode("utf-8-sig" if first else "utf-8"), ""
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at byte {exc.start + 1}); save the input as UTF-8"


def _parse(number: int, raw: str) -> tuple[Record | None, str]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    except RecursionError:
        return None, "not valid JSON here (nested too deeply)"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return None, f"not valid JSON here ({str(exc).split(':')[0]})"
    if not isinstance(obj, dict):
        return None, 'expected an object like {"id": ..., "text": ...}'
    ident = obj.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
        return None, '"id" is missing or not a string/integer'
    if isinstance(ident, str) and not is_valid_unicode(ident):
        return None, '"id" holds a lone UTF-16 surrogate, so it cannot be written back as UTF-8'
    obj = {k: clean_text(v) if isinstance(v, str) else v for k, v in obj.items()}
    text = obj.get("text")
    post = "title" in obj or "body" in obj
    if post and "text" in obj:
        return None, 'give "text" or "title" and "body", not both'
    if post:
        if not all(isinstance(obj.get(k), str | None) for k in ("title", "body")):
            return None, '"title" and "body" must be strings'
        return Record(number, ident, embedding_text(obj), feedback_text(obj), titled=True), ""
    if not isinstance(text, str):
        return None, '"text" (or "title" and "body") is missing or not a string'
    return Record(number, ident, text, text), ""


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
    stdout.write(json.dumps(obj, ensure_ascii=False).translate(_RAW_BREAKS) + "\n")


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _sentiment(records: Sequence[Record], analyzer: Analyzer, out: TextIO, advance: Advance) -> None:
    for batch in _batches(records):
        for rec, s in zip(batch, analyzer.sentiment([r.plain for r in batch]), strict=True):
            _emit(out, {"id": rec.id, "label": s.label, "score": round(s.score, 4), "model": s.model})
        advance(len(batch))


def embed_all(texts: Sequence[str], analyzer: Analyzer) -> np.ndarray:
    """Unit float32 rows, one per text, embedded in batches."""
    parts = [np.asarray(analyzer.embed(list(batch)), dtype=np.float32) for batch in _batches(texts)]
    return unit_rows(np.concatenate(parts))


def _similarity(records: Sequence[Record], analyzer: Analyzer, out: TextIO, top: int, advance: Advance,
                database_url: str | None) -> None:
    """Neighbours from the duplicate agent's own SQL (``match_feedback_hybrid``),
    over the lines loaded into a throwaway project (see :mod:`signalsloop.operations.hybrid`).
    A ``text`` line whose first line is too long for a title is searched with
    its lead as the title (:func:`~signalsloop.operations.hybrid.lead_as_title`)."""
    import psycopg

    from signalsloop.operations.hybrid import lead_as_title, scratch_database, scratch_project

    texts = [r.text if r.titled else lead_as_title(r.text) for r in records]
    vectors = embed_all(texts, analyzer)
    if len(records) < 2:
        for rec in records:
            _emit(out, {"id": rec.id, "neighbours": []})
        advance(len(records))
        return
    with scratch_database(database_url) as url, psycopg.connect(url) as conn, \
            scratch_project(conn, analyzer.embedding_model) as project:
        project.add(texts, vectors)
        for i, rec in enumerate(records):
            found = project.matches(i, vectors[i], top)
            _emit(out, {"id": rec.id, "neighbours": [{"id": records[j].id, "score": round(score, 4)}
                                                     for j, score, _, _ in found]})
            advance(1)


def group_themes(vectors: np.ndarray, threshold: float = DEFAULT_THEME_THRESHOLD,
                 namer: Callable[[int], str] | None = None) -> list[int]:
    """Theme index per row, assigned incrementally in input order, as the theme
    agent assigns them one by one: the nearest centroid if close enough, else
    (with ``namer``, the name the agent would give row ``i``'s new theme) a
    theme of exactly that name, else a new theme."""
    index = ThemeIndex(vectors.shape[1])
    names: list[str] = []
    out = []
    for i, vec in enumerate(vectors):
        theme, _ = index.match(vec, threshold)
        name = namer(i) if theme is None and namer is not None else ""
        if theme is None and name.strip():
            same = [t for t, n in enumerate(names) if n == name.strip().casefold()]
            theme = max(same, key=lambda t: (index.counts[t], -t)) if same else None
        if theme is None:
            theme = index.start(vec)
            names.append(name.strip().casefold())
        else:
            index.join(theme, vec)
        out.append(theme)
    return out


def _themes(records: Sequence[Record], analyzer: Analyzer, out: TextIO, advance: Advance) -> None:
    model = analyzer.embedding_model
    raw = embed_all([r.text for r in records], analyzer)
    vectors = theme_space.theme_vectors(raw, model)
    threshold = theme_space.default_threshold(model, DEFAULT_THEME_THRESHOLD)

    def first_name(i: int) -> str:  # what the theme agent calls a theme item i starts
        return theme_space.titled(analyzer.name_theme([records[i].plain]), raw[i : i + 1], model)

    themes = np.asarray(group_themes(vectors, threshold, first_name), dtype=np.int64)
    names: dict[int, str] = {}
    for theme in range(int(themes.max()) + 1):
        members = np.flatnonzero(themes == theme)
        centroid = unit_rows(vectors[members].mean(axis=0, keepdims=True))[0]
        closest = members[np.argsort(-(vectors[members] @ centroid), kind="stable")]
        phrase = analyzer.name_theme([records[int(i)].plain for i in closest[:NAMING_SAMPLE]])
        names[theme] = theme_space.titled(phrase, raw[members], model)
    for rec, theme in zip(records, themes.tolist(), strict=True):
        _emit(out, {"id": rec.id, "theme_id": theme + 1, "theme": names[theme]})
        advance(1)
