"""The airline-tweets benchmark: Kaggle's ``Tweets.csv`` layout, scored with
the shipped analyzer's own labels, refused when it is not that file,
skipped without the variable."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.errors import ConfigurationError
from signalsloop.benchmarks import airline_tweets, unseen_sentiment

HEADER = ["tweet_id", "airline_sentiment", "airline_sentiment_confidence", "negativereason", "airline", "text"]
ROWS = [("negative", "Lost Luggage", "@united you lost my bag, again. Third time"),
        ("neutral", "", "@united what time does the Denver lounge open?"),
        ("positive", "", "@SouthwestAir thanks, the crew was fantastic!"),
        ("negative", "Customer Service Issue", "@AmericanAir on hold for 2 hours.\nstill nobody"),
        ("neutral", "", "@JetBlue is flight 22 on time?")]


def tweets_csv(path: Path, header: list[str] = HEADER, rows: list[tuple[str, str, str]] = ROWS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows([f"5.7{n}E+17", label, "1", reason, "United", text]
                      for n, (label, reason, text) in enumerate(rows))
    return path


def test_scores_the_shipped_analyzers_labels_against_the_file(tmp_path: Path) -> None:
    report = airline_tweets.run(tweets_csv(tmp_path / "Tweets.csv"))
    assert report is not None and report["n"] == len(ROWS)
    truth = [unseen_sentiment.LABELS.index(label) for label, _, _ in ROWS]
    predicted = [unseen_sentiment.LABELS.index(s.label) for s in OfflineAnalyzer().sentiment([t for *_, t in ROWS])]
    new = report["new"]
    assert isinstance(new, dict)
    assert new["confusion_rows_true_cols_predicted"] == [
        [sum(1 for y, p in zip(truth, predicted, strict=True) if (y, p) == (t, q)) for q in range(3)] for t in range(3)]
    assert isinstance(report["old"], dict) and isinstance(report["vader"], dict)


def test_a_quoted_line_break_stays_inside_its_tweet(tmp_path: Path) -> None:
    texts, labels = airline_tweets.load(tweets_csv(tmp_path / "Tweets.csv"))
    assert texts[3] == "@AmericanAir on hold for 2 hours.\nstill nobody"
    assert labels.tolist() == [0, 1, 2, 0, 1]


@pytest.mark.parametrize(("header", "rows", "error"), [
    (["tweet_id", "sentiment", "confidence", "reason", "airline", "text"], ROWS, "expected the columns"),
    (HEADER, [("angry", "", "@united no")], r"unknown labels \['angry'\]"),
])
def test_a_file_that_is_not_tweets_csv_is_refused(tmp_path: Path, header: list[str],
                                                  rows: list[tuple[str, str, str]], error: str) -> None:
    with pytest.raises(ConfigurationError, match=error):
        airline_tweets.load(tweets_csv(tmp_path / "Tweets.csv", header, rows))


def test_a_missing_file_is_a_clear_error_and_without_the_variable_it_is_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="not a readable CSV"):
        airline_tweets.load(tmp_path / "nope.csv")
    monkeypatch.delenv(airline_tweets.ENV, raising=False)
    assert airline_tweets.run() is None
