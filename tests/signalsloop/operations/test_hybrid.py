"""The hybrid duplicate search (``match_feedback_hybrid``) on the real database:
it finds what only the lexical side finds, what only the semantic side finds,
and its fused score keeps the meaning of ``duplicate_threshold``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.clustering import DEFAULT_DUPLICATE_THRESHOLD
from signalsloop.operations.hybrid import (
    LEAD_WORDS,
    TITLE_WORDS,
    ScratchProject,
    lead_as_title,
    scratch_project,
    split_text,
)

DIM = 256  # the HNSW-indexed size, so the pgvector path is the one tested
STACK = ("Export crashes: java.lang.NullPointerException at com.acme.export.CsvWriter.flush(CsvWriter.java:88)\n"
         "Version 2.3.1-beta, Android 14, Pixel 7; steps: open reports, tap Export CSV")


def unit(i: int, mix: dict[int, float] | None = None) -> np.ndarray:
    v = np.zeros(DIM)
    for k, w in (mix or {i: 1.0}).items():
        v[k] = w
    return v / np.linalg.norm(v)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


def _ids(project: ScratchProject, index: int, vector: np.ndarray, k: int = 5) -> list[int]:
    return [m[0] for m in project.matches(index, vector, k)]


def _semantic_only(conn: psycopg.Connection, project: ScratchProject, index: int, vector: np.ndarray) -> list[int]:
    rows = conn.execute("select feedback_id from nearest_feedback(%s, 'm', %s::float8[], 5, %s)",
                        (project.project, vector.tolist(), project.ids[index])).fetchall()
    return [project.ids.index(r[0]) for r in rows]


def _lexical_only(conn: psycopg.Connection, project: ScratchProject, index: int) -> list[int]:
    rows = conn.execute(
        "select l.feedback_id from feedback_lexemes l, feedback_lexemes q where q.feedback_id = %s"
        " and l.project_id = q.project_id and l.feedback_id <> q.feedback_id"
        " order by lexeme_overlap_weighted(q.lexemes, l.lexemes, lexeme_shares()) desc, l.feedback_id limit 5",
        (project.ids[index],)).fetchall()
    return [project.ids.index(r[0]) for r in rows]


def test_a_pair_only_lexical_search_finds(conn: psycopg.Connection) -> None:
    """The same stack trace, but a mean-of-tokens embedding that blurs it; sixty
    unrelated posts sit closer in embedding space than the duplicate does
    (outside the semantic pool of 50)."""
    texts = [STACK, STACK.replace("Pixel 7", "Galaxy S23").replace("tap", "press"),
             *(f"Unrelated idea number {n} about colours" for n in range(60))]
    vectors = np.stack([unit(0), unit(0, {0: 0.2, 1: 0.98}), *(unit(0, {0: 0.3, 2 + n: 0.95}) for n in range(60))])
    with scratch_project(conn, "m") as project:
        project.add(texts, vectors)
        assert 1 not in _semantic_only(conn, project, 0, vectors[0])
        assert _lexical_only(conn, project, 0)[0] == 1
        assert _ids(project, 0, vectors[0])[0] == 1


def test_identifier_parts_join_a_stack_frame_and_a_named_exception(conn: psycopg.Connection) -> None:
    """The english parser keeps "java.lang.NullPointerException" and
    "com.acme.export.CsvWriter.flush" whole; a report that only names the
    exception and the class shares them through their parts, and prose is
    left as the parser made it."""
    named = "NullPointerException when CsvWriter flushes\nHappens every time on export"
    assert conn.execute("select public.feedback_tsvector(%s, '') @@ 'nullpointerexcept & csv & writer'::tsquery",
                        (STACK,)).fetchone() == (True,)
    prose = "The cat's well-known owner didn't sit on the mat."
    assert conn.execute("select public.feedback_tsvector(%s, '')::text"
                        " = setweight(to_tsvector('english', %s), 'A')::text", (prose, prose)).fetchone() == (True,)
    texts = [STACK, named, *(f"Unrelated idea number {n} about colours" for n in range(60))]
    vectors = np.stack([unit(0), unit(0, {0: 0.2, 1: 0.98}), *(unit(0, {0: 0.3, 2 + n: 0.95}) for n in range(60))])
    with scratch_project(conn, "m") as project:
        project.add(texts, vectors)
        overlap = conn.execute("select lexeme_overlap(a.lexemes, b.lexemes) from feedback_lexemes a, feedback_lexemes b"
                               " where a.feedback_id = %s and b.feedback_id = %s", tuple(project.ids[:2])).fetchone()
        assert overlap is not None and overlap[0] > 0.2
        assert 1 not in _semantic_only(conn, project, 0, vectors[0])
        assert _lexical_only(conn, project, 1)[0] == 0
        assert _ids(project, 1, vectors[1])[0] == 0


def test_a_pair_only_semantic_search_finds(conn: psycopg.Connection) -> None:
    """A paraphrase without a shared word; sixty posts share the query's words
    but not its meaning."""
    texts = ["Please add a dark mode to the dashboard", "Night theme wanted",
             *(f"Please add dashboard widget {n} to the mode menu" for n in range(60))]
    vectors = np.stack([unit(0), unit(0, {0: 0.99, 200: 0.14}), *(unit(2 + n) for n in range(60))])
    with scratch_project(conn, "m") as project:
        project.add(texts, vectors)
        assert 1 not in _lexical_only(conn, project, 0)
        assert _semantic_only(conn, project, 0, vectors[0])[0] == 1
        assert _ids(project, 0, vectors[0])[0] == 1


def test_a_rare_shared_name_outranks_a_shared_template(conn: psycopg.Connection) -> None:
    """Sixty reports share the query's template (steps, framework frames) and
    sit closer in embedding space; the duplicate shares only the rare class
    name and version. Lexical candidates are ranked by the rarity of what they
    share (ts_rank, which has no rarity, kept the sixty), and the order is
    each candidate's better rank, so the duplicate is first although its
    calibrated score is below theirs. The score is still the calibrated blend."""
    frames = "at android.os.Handler.dispatchMessage at android.os.Looper.loop at java.lang.Thread.run"
    template = f"Crash after tapping save, then the app closes\nSteps: open the list, tap save. {frames}"
    texts = [f"{template} QuotaResolver.merge 4.17.2",
             "QuotaResolver merge fails on 4.17.2\nWhat I did differs, same class",
             *(f"{template} Item{n}Cache.load" for n in range(60))]
    vectors = np.stack([unit(0), unit(0, {0: 0.2, 1: 0.98}), *(unit(0, {0: 0.95, 2 + n: 0.31}) for n in range(60))])
    with scratch_project(conn, "m") as project:
        project.add(texts, vectors)
        assert 1 not in _semantic_only(conn, project, 0, vectors[0])
        found = project.matches(0, vectors[0], 5)  # (the first lookup gathers the lexemes' statistics)
        ts_ranked = conn.execute(
            "select l.feedback_id from feedback_lexemes l, feedback_lexemes q where q.feedback_id = %s"
            " and l.project_id = q.project_id and l.feedback_id <> q.feedback_id"
            " and l.lexemes @@ lexeme_query(q.lexemes)"
            " order by ts_rank(l.lexemes, lexeme_query(q.lexemes), 1) desc, l.feedback_id limit 50",
            (project.ids[0],)).fetchall()
        assert project.ids[1] not in [r[0] for r in ts_ranked]  # the candidates before this change
        assert found[0][0] == 1
        assert found[0][1] < max(m[1] for m in found[1:])  # ranked first, not scored first
        w_cos, w_lex, w_bias = conn.execute("select * from hybrid_weights()").fetchone() or (0, 0, 0)
        for _, score, cosine, lexical in found:
            assert score == pytest.approx(min(1, max(0, w_cos * cosine + w_lex * lexical + w_bias)), abs=1e-5)
        above = project.matches(0, vectors[0], 5, min_score=found[0][1] + 1e-3)
        assert 1 not in [m[0] for m in above] and all(m[1] > found[0][1] for m in above)


def test_a_report_both_signals_and_its_title_agree_on_is_listed(conn: psycopg.Connection) -> None:
    """The duplicate is fourth by cosine and fourth by overlap, each list's
    first three being a different report: ordered by the better of two ranks
    it would come seventh. It shares the query's title words, and the third
    list (the overlap, where title words weigh double, + a fifth of the
    cosine) puts it first. Reports that hold the title's words in their body
    get no title weight."""
    query = "Sync stops after the upgrade\nCalendar entries vanish from the home widget"
    texts = [query, "Sync stopped since upgrading\nThe widget lost its calendar entries",
             *(f"Widget glitch {n}\n{query} {extra}" for n, extra in enumerate(("today", "again", "twice"))),
             *(f"Unrelated wish {n}\nMore colours for charts" for n in range(3))]
    close = (unit(0, {0: c, 10 + n: float(np.sqrt(1 - c * c))}) for n, c in enumerate((0.99, 0.98, 0.97)))
    vectors = np.stack([unit(0), unit(0, {0: 0.9, 1: 0.436}), *(unit(0, {0: 0.3, 2 + n: 0.95}) for n in range(3)),
                        *close])
    with scratch_project(conn, "m") as project:
        project.add(texts, vectors)
        project.matches(0, vectors[0], 5)  # (the first lookup gathers the lexemes' statistics)
        assert _semantic_only(conn, project, 0, vectors[0])[:4] == [5, 6, 7, 1]
        assert _lexical_only(conn, project, 0)[3] == 1 and set(_lexical_only(conn, project, 0)[:3]) == {2, 3, 4}
        assert 1 in [m[0] for m in project.matches(0, vectors[0], 3)]


def _overlap(conn: psycopg.Connection, a: str, b: str) -> float:
    """lexeme_overlap_weighted of two tsvector literals, every lexeme equally rare."""
    row = conn.execute("select lexeme_overlap_weighted(%s::tsvector, %s::tsvector, '{}'::jsonb)", (a, b)).fetchone()
    assert row is not None
    return float(row[0])


def test_words_shared_in_the_title_weigh_more_than_in_the_body(conn: psycopg.Connection) -> None:
    """Two reports with the same lexemes, the query's words in the title of one
    and in the body of the other: the title one overlaps more (a title lexeme
    weighs double, 20261203000201). Where each side is all title or all body,
    the factor cancels and the overlap is the plain weighted cosine."""
    def lexemes(title: str, body: str) -> str:
        row = conn.execute("select feedback_tsvector(%s, %s)::text", (title, body)).fetchone()
        assert row is not None
        return str(row[0])

    words, other = "Export crashes with quota error", "Printer tray jams monday"
    query = lexemes(words, "Clicked it on the reports page")
    in_title, in_body = lexemes(words, other), lexemes(other, words)
    assert conn.execute("select strip(%s::tsvector) = strip(%s::tsvector)", (in_title, in_body)).fetchone() == (True,)
    assert _overlap(conn, query, in_title) > _overlap(conn, query, in_body) + 0.1
    plain = 2 / np.sqrt(3 * 4)  # 'a b c' and 'b c d e' share two of three and four equal weights
    for left, right in (("a:1A b:2A c:3A", "b:1A c:2A d:3A e:4A"), ("a:1B b:2B c:3B", "b:1A c:2A d:3A e:4A"),
                        ("a b c", "b:1B c:2B d:3B e:4B")):
        assert _overlap(conn, left, right) == pytest.approx(plain)


def test_the_threshold_keeps_its_meaning(conn: psycopg.Connection) -> None:
    """With the real offline embeddings: a known duplicate pair scores above the
    default threshold, a known non-pair sharing words below it, and a
    text-identical pair at the top of the scale."""
    analyzer = OfflineAnalyzer()
    texts = ["Please add dark mode to the dashboard", "Please add a dark mode for the dashboard",
             "The dashboard export to CSV fails", STACK, STACK]
    vectors = analyzer.embed_array(texts)
    with scratch_project(conn, analyzer.embedding_model) as project:
        project.add(texts, vectors)
        scores = {j: score for j, score, _, _ in project.matches(0, vectors[0], 5)}
        assert scores[1] >= DEFAULT_DUPLICATE_THRESHOLD > scores[2]
        best = project.matches(3, vectors[3], 1)[0]
        assert best[0] == 4 and best[1] == pytest.approx(1.0, abs=1e-3)
        assert project.matches(0, vectors[0], 5, min_score=DEFAULT_DUPLICATE_THRESHOLD) == \
            [m for m in project.matches(0, vectors[0], 5) if m[1] >= DEFAULT_DUPLICATE_THRESHOLD]


def test_nothing_is_left_behind_and_odd_texts_load(conn: psycopg.Connection) -> None:
    texts = ["", "   ", "x" * 100_000, "Titel\nKörper mit Umlauten 🚀", "'; drop table posts; --"]
    vectors = np.stack([unit(i) for i in range(len(texts))])
    with scratch_project(conn, "m") as project:
        project.add(texts, vectors)
        for i in range(len(texts)):
            assert all(0 <= m[1] <= 1 for m in project.matches(i, vectors[i], 5))
    assert conn.execute("select count(*) from posts").fetchone() == (0,)
    assert conn.execute("select count(*) from events").fetchone() == (0,)


def test_split_text_fits_the_posts_constraints() -> None:
    title, body = split_text("a" * 600 + "\nrest")
    assert len(title) == 500 and body.startswith("a" * 100) and body.endswith("rest")
    assert split_text("") == (" ", "")


def test_a_long_first_line_gets_its_lead_as_the_title() -> None:
    words = " ".join(f"w{i}" for i in range(40))
    one_line = f"Saving a bookmark crashes the browser. {words}"
    assert lead_as_title(one_line) == f"Saving a bookmark crashes the browser.\n{words}"
    # no sentence end early enough: the first LEAD_WORDS words
    assert lead_as_title(f"{words}\nstack trace") == \
        " ".join(words.split()[:LEAD_WORDS]) + "\n" + " ".join(words.split()[LEAD_WORDS:]) + "\nstack trace"
    # a version number's dot is not a sentence end, and no word is lost
    text = f"Crash in v2.3.1 on start: {words} and more\nline two"
    laid = lead_as_title(text)
    assert laid.split("\n")[0] == "Crash in v2.3.1 on start:" and laid.split() == text.split()


def test_a_title_sized_first_line_is_left_alone() -> None:
    title = " ".join(["word"] * TITLE_WORDS)
    for text in (f"{title}\n" + "body " * 100, "Dark mode please", "", "short\n\nbody"):
        assert lead_as_title(text) == text
