"""Sentiment on TweetEval's test split, which no tuning or training here saw.

12,284 tweets of SemEval-2017 Task 4 (negative / neutral / positive), from a
checkout of cardiffnlp/tweeteval that ``SIGNALSLOOP_TWEETEVAL_DIR`` points at
(``datasets/sentiment/test_text.txt`` and ``test_labels.txt``; research use,
Twitter's terms; not shipped, never copied into the repository). The
training script reads only TweetEval's validation split, so this is the
unseen tweet figure: the shipped analyzer's labels (``new``) beside the old
lexicon scorer with its thresholds (``old``) and VADER alone with its
authors' thresholds, compound at or beyond +-0.05 (``vader``, the issue's
baseline). Without the variable, :func:`run` returns None and ``make
bench-quality`` says it was skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shared.analyzers import sentiment_model
from shared.analyzers.offline import OfflineAnalyzer
from shared.errors import ConfigurationError

ENV = "SIGNALSLOOP_TWEETEVAL_DIR"
LABELS = ("negative", "neutral", "positive")
VADER_THRESHOLD = 0.05


def load(checkout: Path) -> tuple[list[str], np.ndarray]:
    """The test tweets and their labels (0 negative, 1 neutral, 2 positive)."""
    folder = checkout / "datasets" / "sentiment"
    try:
        # one tweet per line; split on newlines only (a tweet may hold U+2028, which splitlines() cuts at)
        texts = (folder / "test_text.txt").read_text(encoding="utf-8").removesuffix("\n").split("\n")
        labels = [int(x) for x in (folder / "test_labels.txt").read_text(encoding="utf-8").split()]
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{ENV}={checkout}: no readable TweetEval sentiment test split ({exc})") from None
    if len(texts) != len(labels) or not set(labels) <= {0, 1, 2}:
        raise ConfigurationError(f"{ENV}={checkout}: {len(texts)} tweets but {len(labels)} labels in 0-2")
    return texts, np.array(labels)


def run(checkout: Path | None = None) -> dict[str, object] | None:
    if checkout is None:
        if not os.environ.get(ENV):
            return None
        checkout = Path(os.environ[ENV])
    return score(*load(checkout))


def score(texts: list[str], y: np.ndarray) -> dict[str, object]:
    """The shipped analyzer (``new``), the old lexicon scorer (``old``) and
    VADER alone (``vader``) on labelled texts never used in training."""
    from signalsloop.benchmarks import train_sentiment

    predicted = np.array([LABELS.index(s.label) for s in OfflineAnalyzer().sentiment(texts)])
    part = train_sentiment.part_of(texts, y)
    compound = part.x[:, sentiment_model.LEXICON_FEATURES.index("vader_compound")]
    vader = np.where(compound >= VADER_THRESHOLD, 2, np.where(compound <= -VADER_THRESHOLD, 0, 1))
    return {"n": len(y), "new": train_sentiment.figures(y, predicted), "old": train_sentiment.scores(None, part),
            "vader": train_sentiment.figures(y, vader)}
