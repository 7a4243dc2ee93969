from __future__ import annotations

import io
import json
from collections.abc import Sequence

import numpy as np
import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.feedback import embedding_text, feedback_text
from signalsloop.operations import analyze
from signalsloop.operations.analyze import run_analyze


@pytest.fixture(scope="module")
def offline() -> OfflineAnalyzer:
    return OfflineAnalyzer()


class CountingAnalyzer(OfflineAnalyzer):
    """The offline analyzer, recording batch sizes; ``vectors`` overrides embeddings."""

    def __init__(self, vectors: dict[str, list[float]] | None = None) -> None:
        self.vectors = vectors
        self.batches: list[int] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(len(texts))
        if self.vectors is None:
            return super().embed(texts)
        return [self.vectors[t] for t in texts]

    def sentiment(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        self.batches.append(len(texts))
        return super().sentiment(texts)


def _jsonl(rows: Sequence[object]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def _run(kind: str, analyzer: OfflineAnalyzer, text: str, top: int = 5,
         database_url: str | None = None) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_analyze(kind, analyzer, io.StringIO(text), out, err, top=top, progress=False,
                       database_url=database_url)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_sentiment_lines(offline: OfflineAnalyzer) -> None:
    rows = [{"id": "a", "text": "The app keeps crashing, useless"}, {"id": 7, "text": "Love it, works great"}]
    code, out, err = _run("sentiment", offline, _jsonl(rows))
    assert code == 0 and err == ""
    assert [(o["id"], o["label"]) for o in out] == [("a", "negative"), (7, "positive")]
    assert all(o["model"] == offline.model and -1 <= o["score"] <= 1 for o in out)


def test_malformed_lines_are_reported_and_others_processed(offline: OfflineAnalyzer) -> None:
    text = _jsonl(
        [
            {"id": "ok1", "text": "fine"},
            "{not json",
            {"text": "no id"},
            "",
            {"id": "x", "text": 5},
            "[1, 2]",
            {"id": "ok2", "text": "also fine"},
        ]
    )
    code, out, err = _run("sentiment", offline, text)
    assert code == 2
    assert [o["id"] for o in out] == ["ok1", "ok2"]
    for line in (2, 3, 5, 6):
        assert f"line {line}:" in err
    assert "line 4:" not in err and "line 1:" not in err


@pytest.mark.parametrize("kind", ["similarity", "themes", "sentiment"])
def test_nul_and_lone_surrogates_are_cleaned_not_fatal(kind: str, db_url: str, offline: OfflineAnalyzer) -> None:
    """JSON can carry a NUL and a lone surrogate, which PostgreSQL, the tokenizer
    and UTF-8 output refuse: one such line used to end the whole run."""
    text = "".join([
        '{"id": 1, "text": "Export crashes on save\\u0000 with NullPointerException"}\n',
        '{"id": 2, "text": "NullPointerException when saving the export"}\n',
        '{"id": 3, "title": "Lost my bag \\ud83d", "body": "still waiting \\udc00"}\n',
        '{"id": "bad\\udc00", "text": "an id that cannot be written back"}\n',
    ])
    out, err = io.StringIO(), io.StringIO()
    code = run_analyze(kind, offline, io.StringIO(text), out, err, progress=False, database_url=db_url)
    assert code == 2 and "line 4:" in err.getvalue() and "surrogate" in err.getvalue()
    out.getvalue().encode("utf-8")  # writable as UTF-8
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    if kind == "similarity":
        assert rows[0]["neighbours"][0]["id"] == 2
    if kind == "themes":
        assert all("\ufffd" not in r["theme"] for r in rows)


def _run_bytes(data: bytes) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_analyze("sentiment", OfflineAnalyzer(), io.BytesIO(data), out, err, progress=False)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_bytes_that_are_not_utf8_json_are_reported_by_line() -> None:
    """The CLI reads stdin as bytes: a line of another encoding, a number
    Python refuses to read, or JSON nested past the recursion limit each used
    to end the run with a traceback and no output at all."""
    lines = [
        b'\xef\xbb\xbf{"id": 1, "text": "great app"}',  # a UTF-8 byte-order mark: skipped
        b'{"id": 2, "text": "caf\xe9 latin-1"}',
        b'{"id": 3, "text": "x", "n": 1' + b"0" * 4300 + b"}",
        b'{"id": 4, "text": "x", "e": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"id": 5, "text": "still read"}',
    ]
    code, out, err = _run_bytes(b"\r\n".join(lines) + b"\r\n")
    assert code == 2
    assert [o["id"] for o in out] == [1, 5]
    assert "line 2: not valid UTF-8 (byte 0xe9" in err
    assert "line 3: not valid JSON" in err and "line 4: not valid JSON here (nested too deeply)" in err
    assert "line 1:" not in err and "line 5:" not in err


def test_a_utf16_input_is_named_as_such() -> None:
    code, out, err = _run_bytes('{"id": 1, "text": "hi"}\n'.encode("utf-16"))
    assert code == 2 and out == []
    assert "line 1: the input is UTF-16" in err


def test_raw_line_separators_in_output_are_escaped(offline: OfflineAnalyzer) -> None:
    """JSON allows U+2028 raw, but ``str.splitlines`` splits at it: escaped,
    one output line stays one line for any reader."""
    rows = [{"id": "a\u2028b\x85c", "text": "fine"}, {"id": "d\u2029", "text": "also fine"}]
    out = io.StringIO()
    assert run_analyze("sentiment", offline, io.StringIO(_jsonl(rows)), out, io.StringIO(), progress=False) == 0
    assert len(out.getvalue().splitlines()) == 2
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [r["id"] for r in rows]


def test_a_posts_export_is_read_as_the_agents_read_a_post(db_url: str, offline: OfflineAnalyzer) -> None:
    """Lines with "title" and "body" (a posts export) are scored as the
    agents score the post: sentiment of feedback_text, search over
    embedding_text, the title on its own first line."""
    posts = [{"id": "a", "title": "Export crashes", "body": "Tapping Export CSV closes the app, every time"},
             {"id": "b", "title": "Export crashes on Android", "body": "The app closes when I export a CSV"},
             {"id": "c", "title": "Dark mode", "body": None}, {"id": "d", "body": "Love the new charts"}]
    code, out, err = _run("sentiment", offline, _jsonl(posts))
    agent = offline.sentiment([feedback_text(p) for p in posts])
    assert code == 0 and err == ""
    assert [(o["label"], o["score"]) for o in out] == [(s.label, round(s.score, 4)) for s in agent]
    as_text = [{"id": p["id"], "text": embedding_text(p)} for p in posts]
    code, by_post, _ = _run("similarity", offline, _jsonl(posts), top=3, database_url=db_url)
    assert code == 0 and by_post == _run("similarity", offline, _jsonl(as_text), top=3, database_url=db_url)[1]
    assert {o["id"]: o["neighbours"][0]["id"] for o in by_post}["a"] == "b"


def test_a_line_with_text_and_a_title_or_odd_fields_is_refused(offline: OfflineAnalyzer) -> None:
    rows = [{"id": 1, "text": "x", "title": "y"}, {"id": 2, "title": 5, "body": "b"}, {"id": 3, "title": "fine"}]
    code, out, err = _run("sentiment", offline, _jsonl(rows))
    assert code == 2 and [o["id"] for o in out] == [3]
    assert 'line 1: give "text" or "title" and "body", not both' in err
    assert 'line 2: "title" and "body" must be strings' in err


def test_similarity_excludes_self_and_sorts_best_first(db_url: str) -> None:
    """Texts without a shared word: the fused order is the cosine order."""
    rng = np.random.default_rng(3)
    vectors = {f"t{i}": list(np.abs(rng.normal(size=8))) for i in range(40)}
    fake = CountingAnalyzer(vectors)
    rows = [{"id": i, "text": f"t{i}"} for i in range(40)]
    code, out, _ = _run("similarity", fake, _jsonl(rows), top=4, database_url=db_url)
    assert code == 0 and len(out) == 40
    m = np.array([vectors[f"t{i}"] for i in range(40)])
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    sims = m @ m.T
    for o in out:
        ids = [n["id"] for n in o["neighbours"]]
        scores = [n["score"] for n in o["neighbours"]]
        assert o["id"] not in ids and len(ids) == 4
        assert scores == sorted(scores, reverse=True)
        expected = [j for j in np.argsort(-sims[o["id"]]) if j != o["id"]][:4]
        assert ids == expected


def test_similarity_is_the_duplicate_agents_search(db_url: str, offline: OfflineAnalyzer) -> None:
    """The CLI's neighbours and scores are match_feedback_hybrid's: a shared
    stack trace outranks paraphrase-free filler, scores are fused (0..1)."""
    trace = "NullPointerException at com.acme.CsvWriter.flush(CsvWriter.java:88) v2.3.1"
    rows = [{"id": "a", "text": f"Export fails\n{trace}"}, {"id": "b", "text": f"Crash on export\n{trace}"},
            *({"id": f"f{i}", "text": f"feedback number {i} about {w}"} for i, w in enumerate(["login", "dark"] * 5))]
    code, out, _ = _run("similarity", offline, _jsonl(rows), top=3, database_url=db_url)
    assert code == 0
    first = {o["id"]: o["neighbours"] for o in out}
    assert first["a"][0]["id"] == "b" and first["b"][0]["id"] == "a"
    assert all(0 <= n["score"] <= 1 for o in out for n in o["neighbours"])


def test_a_one_line_export_is_searched_with_its_lead_as_the_title(db_url: str, offline: OfflineAnalyzer) -> None:
    """A report whose summary and description were run into one line is
    searched as the post of its first sentence and the rest: the neighbours
    and scores of that posts export, not those of a 40-word title."""
    log = " ".join(f"at com.acme.Step{i}.run(Step{i}.java:{i})" for i in range(12))
    reports = [("Exporting a CSV crashes the app.", f"Tapping Export in reports closes it. {log}"),
               ("CSV export crash on Android.", f"The app closes while exporting to CSV. {log}"),
               ("Dark mode for the charts page.", "Please add a dark theme to the charts, " + "it hurts " * 12),
               ("Login fails with SSO.", "Signing in through Okta loops back to the login page " + "again " * 20)]
    one_line = [{"id": i, "text": f"{title} {body}"} for i, (title, body) in enumerate(reports)]
    posts = [{"id": i, "title": title, "body": body} for i, (title, body) in enumerate(reports)]
    code, out, _ = _run("similarity", offline, _jsonl(one_line), top=3, database_url=db_url)
    assert code == 0 and out == _run("similarity", offline, _jsonl(posts), top=3, database_url=db_url)[1]
    assert {o["id"]: o["neighbours"][0]["id"] for o in out}[0] == 1
    whole = [{"id": i, "title": f"{title} {body}"[:500], "body": None} for i, (title, body) in enumerate(reports)]
    assert out != _run("similarity", offline, _jsonl(whole), top=3, database_url=db_url)[1]


def test_similarity_with_one_line_has_no_neighbours(offline: OfflineAnalyzer) -> None:
    code, out, _ = _run("similarity", offline, _jsonl([{"id": "only", "text": "hello"}]))
    assert code == 0 and out == [{"id": "only", "neighbours": []}]


def test_themes_group_similar_texts(offline: OfflineAnalyzer) -> None:
    texts = [
        "Please add a dark mode",
        "The app crashes when I log in",
        "Dark mode would be great for night use",
        "Login crashes the app every time",
        "I want dark mode",
        "Crash on login screen since the update",
    ]
    code, out, _ = _run("themes", offline, _jsonl([{"id": i, "text": t} for i, t in enumerate(texts)]))
    assert code == 0
    theme = {o["id"]: o["theme_id"] for o in out}
    assert theme[0] == theme[2] == theme[4]
    assert theme[1] == theme[3] == theme[5]
    assert theme[0] != theme[1]
    names = {o["theme_id"]: o["theme"] for o in out}
    assert "Dark Mode" in names[theme[0]] and "Login" in names[theme[1]]


def test_analyzer_calls_are_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze, "BATCH", 4)
    fake = CountingAnalyzer()
    rows = [{"id": i, "text": f"text {i}"} for i in range(10)]
    _run("sentiment", fake, _jsonl(rows))
    assert fake.batches == [4, 4, 2]


def test_unknown_kind_and_bad_top(offline: OfflineAnalyzer) -> None:
    assert _run("colour", offline, "")[0] == 2
    assert _run("similarity", offline, "", top=0)[0] == 2
    code, out, err = _run("similarity", offline, _jsonl([{"id": 1, "text": "a"}]), top=analyze.MAX_TOP + 1)
    assert code == 2 and out == [] and f"between 1 and {analyze.MAX_TOP}" in err  # was a psycopg error past int4
    assert _run("themes", offline, "") == (0, [], "")


def test_progress_goes_to_stderr(offline: OfflineAnalyzer) -> None:
    out, err = io.StringIO(), io.StringIO()
    rows = _jsonl([{"id": 1, "text": "a"}, {"id": 2, "text": "b"}])
    assert run_analyze("sentiment", offline, io.StringIO(rows), out, err, progress=True) == 0
    assert len(out.getvalue().splitlines()) == 2
    assert "sentiment" in err.getvalue()
