"""Sentiment on TweetEval's test split, which no tuning or training here saw.

12,284 tweets of SemEval-2017 Task 4 (negative / neutral / positive), from a
checkout of cardiffnlp/tweeteval that ``SIGNALSLOOP_TWEETEVAL_DIR`` points at
(``datasets/sentiment/test_text.txt`` and ``test_labels.txt``; research use,
Twitter's terms; not shipped, never copied into the repository). The
training script reads only TweetEval's validation split, so this is the
unseen tweet figure, scored by :mod:`~signalsloop.benchmarks.unseen_sentiment`
(the shipped analyzer, the old lexicon scorer, VADER alone). Without the variable, :func:`run` returns None and ``make
bench-quality`` says it was skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.errors import ConfigurationError
from signalsloop.benchmarks import unseen_sentiment

ENV = "SIGNALSLOOP_TWEETEVAL_DIR"


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
    return unseen_sentiment.run(ENV, load, checkout)
