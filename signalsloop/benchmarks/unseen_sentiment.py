"""Scoring a labelled sentiment set that no training or choice here read:
the shipped analyzer (``new``), the old lexicon scorer with its thresholds
(``old``) and VADER alone with its authors' thresholds, compound at or
beyond +-0.05 (``vader``, the issue's baseline). The sets themselves
(:mod:`~signalsloop.benchmarks.tweeteval_test`,
:mod:`~signalsloop.benchmarks.airline_tweets`) are optional, each named by
a variable, and never shipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared.analyzers import sentiment_model
from shared.analyzers.offline import OfflineAnalyzer

LABELS = ("negative", "neutral", "positive")
VADER_THRESHOLD = 0.05
Loader = Callable[[Path], tuple[list[str], np.ndarray]]


def run(env: str, load: Loader, path: Path | None = None) -> dict[str, object] | None:
    """The figures for the set at ``path`` (default: ``$env``), or None when
    neither names one."""
    if path is None:
        if not os.environ.get(env):
            return None
        path = Path(os.environ[env])
    return score(*load(path))


def score(texts: list[str], y: np.ndarray) -> dict[str, object]:
    from signalsloop.benchmarks import train_sentiment

    predicted = np.array([LABELS.index(s.label) for s in OfflineAnalyzer().sentiment(texts)])
    part = train_sentiment.part_of(texts, y)
    compound = part.x[:, sentiment_model.LEXICON_FEATURES.index("vader_compound")]
    vader = np.where(compound >= VADER_THRESHOLD, 2, np.where(compound <= -VADER_THRESHOLD, 0, 1))
    return {"n": len(y), "new": train_sentiment.figures(y, predicted), "old": train_sentiment.scores(None, part),
            "vader": train_sentiment.figures(y, vader)}
