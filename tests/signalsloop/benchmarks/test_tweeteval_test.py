"""The TweetEval test-split benchmark: read from a checkout's layout, scored
with the shipped analyzer's own labels, skipped without the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.errors import ConfigurationError
from signalsloop.benchmarks import tweeteval_test, unseen_sentiment

TWEETS = ["@user worst airline ever, lost my bag again", "Flight 22 leaves at 5pm from gate B",
          "thank you @user for the quick refund!", "still on hold after two hours \u2028 unbelievable",
          "the new update is great", "is the store open on sunday?"]
LABELS = [0, 1, 2, 0, 2, 1]


def checkout(root: Path, tweets: list[str], labels: list[int]) -> Path:
    folder = root / "datasets" / "sentiment"
    folder.mkdir(parents=True)
    (folder / "test_text.txt").write_text("".join(t + "\n" for t in tweets), encoding="utf-8")
    (folder / "test_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    return root


def test_scores_the_shipped_analyzers_labels_against_the_split(tmp_path: Path) -> None:
    report = tweeteval_test.run(checkout(tmp_path, TWEETS, LABELS))
    assert report is not None and report["n"] == len(TWEETS)
    names = unseen_sentiment.LABELS
    predicted = [names.index(s.label) for s in OfflineAnalyzer().sentiment(TWEETS)]
    new = report["new"]
    assert isinstance(new, dict)
    expected = [[sum(1 for y, p in zip(LABELS, predicted, strict=True) if (y, p) == (t, q)) for q in range(3)]
                for t in range(3)]
    assert new["confusion_rows_true_cols_predicted"] == expected
    assert new["accuracy"] == round(sum(y == p for y, p in zip(LABELS, predicted, strict=True)) / len(LABELS), 4)
    assert isinstance(report["old"], dict) and report["old"]["n"] == len(TWEETS)
    vader = report["vader"]
    assert isinstance(vader, dict) and sum(map(sum, vader["confusion_rows_true_cols_predicted"])) == len(TWEETS)
    assert vader["confusion_rows_true_cols_predicted"][2][2] >= 1, "VADER reads 'the new update is great' as positive"


def test_a_line_separator_inside_a_tweet_does_not_shift_the_labels(tmp_path: Path) -> None:
    texts, labels = tweeteval_test.load(checkout(tmp_path, TWEETS, LABELS))
    assert texts == TWEETS and labels.tolist() == LABELS


def test_a_split_whose_counts_disagree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="6 tweets but 5 labels"):
        tweeteval_test.load(checkout(tmp_path, TWEETS, LABELS[:5]))


def test_without_the_variable_it_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tweeteval_test.ENV, raising=False)
    assert tweeteval_test.run() is None
