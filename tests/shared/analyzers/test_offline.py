from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest

from shared.analyzers import offline_pattern
from shared.analyzers.offline import OfflineAnalyzer
from shared.ports import Analyzer, FeedbackItem

ODD_TEXTS = [
    "",
    "   \n\t ",
    "x" * 100_000,
    "Die App stürzt beim Start ab",
    "😍🔥👍",
    "日本語のテキスト",
]


@pytest.fixture(scope="module")
def analyzer() -> OfflineAnalyzer:
    return OfflineAnalyzer()


def test_satisfies_the_port(analyzer: OfflineAnalyzer) -> None:
    port: Analyzer = analyzer
    assert port.model and port.embedding_model
    assert port.model != port.embedding_model


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The app crashes every time I open it", "negative"),
        ("Export doesn't work anymore, totally broken since the update", "negative"),
        ("It keeps freezing and the sync is so slow", "negative"),
        ("I love the new dashboard, it works great!", "positive"),
        ("Thank you, this release is awesome", "positive"),
        ("Can't wait for the Android version!", "positive"),
        ("Looking forward to the next release", "positive"),
        ("The layout is ugly and the search is not good", "negative"),
        ("Please add dark mode", "neutral"),
        ("How do I change my email address?", "neutral"),
        ("The report lists invoices by month", "neutral"),
    ],
)
def test_sentiment_labels_product_feedback(analyzer: OfflineAnalyzer, text: str, label: str) -> None:
    [result] = analyzer.sentiment([text])
    assert result.label == label
    assert result.model == analyzer.model


def test_sentiment_score_orders_by_polarity(analyzer: OfflineAnalyzer) -> None:
    bad, meh, good = analyzer.sentiment(["Terrible, it crashes", "It opens", "Brilliant, love it"])
    assert bad.score < meh.score < good.score
    assert all(-1 <= s.score <= 1 and 0 <= s.confidence <= 1 for s in (bad, meh, good))


def test_sentiment_is_deterministic_and_never_raises(analyzer: OfflineAnalyzer) -> None:
    first = analyzer.sentiment(ODD_TEXTS)
    assert first == OfflineAnalyzer().sentiment(ODD_TEXTS)
    assert len(first) == len(ODD_TEXTS)
    assert first[0].label == "neutral" and first[1].label == "neutral"
    assert analyzer.sentiment([]) == []


@pytest.mark.parametrize(
    "text",
    [
        "The new editor is very nice!",
        "not a good idea",
        "really not bad :)",
        "It was terribly slow, but the support was helpful.",
        "",
        "😍🔥👍",
        "Die App stürzt beim Start ab",
    ],
)
def test_pattern_polarity_is_textblobs(text: str) -> None:
    from textblob import TextBlob

    assert offline_pattern.polarity(text) == pytest.approx(TextBlob(text).sentiment.polarity)


def test_sentiment_imports_neither_textblob_nor_nltk() -> None:
    """``import textblob`` imports NLTK (~0.5 s): the scorer reads its lexicon without it."""
    code = (
        "import sys\n"
        "from shared.analyzers.offline import OfflineAnalyzer\n"
        "assert OfflineAnalyzer().sentiment(['a good day'])[0].label == 'positive'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nltk', 'textblob')))\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_pattern_lexicon_loads_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline_pattern, "_scorer", None)  # a cold process: first calls race
    with ThreadPoolExecutor(max_workers=8) as pool:
        scores = list(pool.map(offline_pattern.polarity, ["great"] * 16 + ["awful"] * 16))
    assert set(scores[:16]) == {scores[0]} and scores[0] > 0
    assert set(scores[16:]) == {scores[16]} and scores[16] < 0


def test_embeddings_are_unit_length_and_one_dimension(analyzer: OfflineAnalyzer) -> None:
    vectors = np.array(analyzer.embed(["hello world", *ODD_TEXTS]))
    assert vectors.shape == (len(ODD_TEXTS) + 1, 256)
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert analyzer.embed([]) == []


def test_embeddings_are_deterministic_and_batch_independent(analyzer: OfflineAnalyzer) -> None:
    texts = ["Login fails on Android", "Dark mode please", "x" * 100_000]
    together = np.array(analyzer.embed(texts))
    alone = np.array([analyzer.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_embedding_survives_text_the_tokenizer_refuses(analyzer: OfflineAnalyzer) -> None:
    """A lone surrogate (JSON can carry one) made the tokenizer raise TypeError;
    it is read as U+FFFD, and a NUL is dropped."""
    broken, nul = "lost my bag \ud83d", "crash on\x00 save"
    got = np.asarray(analyzer.embed([broken, nul]))
    want = np.asarray(analyzer.embed(["lost my bag \ufffd", "crash on save"]))
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_texts(analyzer: OfflineAnalyzer) -> None:
    a, b, c = np.array(
        analyzer.embed(
            [
                "The app crashes when I try to log in",
                "Logging in makes the application crash",
                "Please add an option to export invoices to CSV",
            ]
        )
    )
    assert a @ b > a @ c + 0.2
    assert a @ b > b @ c + 0.2


def test_a_title_is_pooled_apart_from_a_long_body(analyzer: OfflineAnalyzer) -> None:
    """Two reports with the same title line and different long bodies stay
    close: the first line's mean counts as much as the body's. One line is
    embedded as it was (the same vector as the first line alone), and the
    vector of title and body is the normalised sum of their two vectors."""
    title = "Export to CSV crashes"
    bodies = [" ".join(["Steps: open the reports page and tap the button, then wait for the spinner"] * 20),
              " ".join(["Log: worker thread stopped, memory at ninety percent, garbage collector busy"] * 20)]
    a, b = np.array(analyzer.embed([f"{title}\n{body}" for body in bodies]))
    whole_a, whole_b = np.array(analyzer.embed([f"{title} {body}" for body in bodies]))
    assert a @ b > whole_a @ whole_b + 0.1
    head, tail = np.array(analyzer.embed([title, bodies[0]]))
    np.testing.assert_allclose(a, (head + tail) / np.linalg.norm(head + tail), atol=1e-5)
    np.testing.assert_allclose(analyzer.embed([f"  {title}  \n  "])[0], head, atol=1e-6)


def test_a_body_is_averaged_over_its_first_tokens_only(analyzer: OfflineAnalyzer) -> None:
    """What a long pasted log adds after MAX_TOKENS tokens of a body does not
    move the vector; what comes before does."""
    from shared.analyzers.offline_embedding import MAX_TOKENS

    prose = " ".join(["the export button closes the app on every report page"] * (MAX_TOKENS // 10 + 1))
    log = " ".join(["at com.acme.worker.Thread.run(Thread.java:42) memory ninety percent"] * 40)
    first, longer, earlier = np.array(analyzer.embed([f"Export crashes\n{prose}", f"Export crashes\n{prose} {log}",
                                                      f"Export crashes\n{log} {prose}"]))
    assert len(prose.split()) > MAX_TOKENS  # and so are its tokens
    np.testing.assert_allclose(first, longer, atol=1e-6)
    assert first @ earlier < 0.99


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (
            ["Please add dark mode", "Dark mode would be great", "I want a dark mode at night"],
            "Dark Mode",
        ),
        (["Export to CSV please", "Can I export to CSV?", "exporting reports to csv fails"], "CSV"),
        (["The app crashes on login", "Login crashes every time", "crash after login"], "Login"),
    ],
)
def test_theme_name_is_short_title_case_and_on_topic(
    analyzer: OfflineAnalyzer, texts: list[str], expected: str
) -> None:
    name = analyzer.name_theme(texts)
    assert expected in name
    assert 2 <= len(name.split()) <= 5
    assert name == analyzer.name_theme(list(texts))


@pytest.mark.parametrize("texts", [[], [""], ["😍😍"], ["x" * 100_000], ["the and of"]])
def test_theme_name_never_empty(analyzer: OfflineAnalyzer, texts: list[str]) -> None:
    name = analyzer.name_theme(texts)
    assert 1 <= len(name.split()) <= 5 and name.strip() == name and name


def _item(n: int, text: str, votes: int) -> FeedbackItem:
    return FeedbackItem(id=UUID(int=n), title=text, votes=votes)


def test_spec_evidence_cites_given_ids_by_votes(analyzer: OfflineAnalyzer) -> None:
    items = [_item(i, f"Please add dark mode, request {i}", votes) for i, votes in enumerate([1, 9, 4, 0, 7, 3, 2])]
    spec = analyzer.draft_spec("Dark Mode", items)
    assert [e.votes for e in spec.evidence] == [9, 7, 4, 3, 2]
    assert [e.feedback_id for e in spec.evidence] == [UUID(int=i) for i in (1, 4, 2, 5, 6)]
    assert spec.evidence[0].quote == "Please add dark mode, request 1"
    assert spec.model == analyzer.model
    assert spec.title.endswith("Dark Mode")
    assert all(s.startswith("As a user, I want") and "so that" in s for s in spec.user_stories)
    assert spec.acceptance_criteria and spec.success_metrics and spec.open_questions
    assert spec == analyzer.draft_spec("Dark Mode", list(reversed(items)))


def test_spec_for_complaints_is_a_fix(analyzer: OfflineAnalyzer) -> None:
    items = [
        _item(1, "Login crashes every time", 5),
        _item(2, "The app crashes on login, useless", 2),
    ]
    spec = analyzer.draft_spec("Login Crashes", items)
    assert spec.title == "Fix: Login Crashes"
    assert "7 votes" in spec.problem


def test_spec_handles_odd_items(analyzer: OfflineAnalyzer) -> None:
    items = [_item(1, "", 0), _item(2, "x" * 100_000, 1), _item(3, "😍", 2)]
    spec = analyzer.draft_spec("", items)
    assert all(len(e.quote) <= 280 for e in spec.evidence)
    assert {e.feedback_id for e in spec.evidence} <= {UUID(int=i) for i in (1, 2, 3)}
