"""Sentiment on customer-service tweets that no tuning or training here saw.

Twitter US Airline Sentiment: 14,640 tweets written to six US airlines in
February 2015, each labelled negative, neutral or positive by
contributors of Figure Eight's "Data for Everyone" library (published on
Kaggle as ``Tweets.csv``, CC BY-NC-SA 4.0; not shipped, never copied into
the repository). ``SIGNALSLOOP_AIRLINE_TWEETS`` points at that file (its
``airline_sentiment`` and ``text`` columns are read). It is the kind of
text the sentiment target is set on: complaints to a support account about
delays, bags, refunds and waiting, most of them negative. No fit, choice of
C, rule or cue list here was made with it: the figures are scored as
:mod:`~signalsloop.benchmarks.unseen_sentiment` scores every unseen set (the
shipped analyzer, the old lexicon scorer, VADER alone). Without the variable,
:func:`run` returns None and ``make bench-quality`` says it was skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from shared.errors import ConfigurationError
from signalsloop.benchmarks import unseen_sentiment
from signalsloop.benchmarks.unseen_sentiment import LABELS

ENV = "SIGNALSLOOP_AIRLINE_TWEETS"
COLUMNS = ("airline_sentiment", "text")


def load(path: Path) -> tuple[list[str], np.ndarray]:
    """The tweets and their labels (0 negative, 1 neutral, 2 positive)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"{ENV}={path}: not a readable CSV ({exc})") from None
    if not rows or not all(c in rows[0] for c in COLUMNS):
        raise ConfigurationError(f"{ENV}={path}: expected the columns {', '.join(COLUMNS)} (Tweets.csv)")
    unknown = sorted({r["airline_sentiment"] for r in rows} - set(LABELS))
    if unknown:
        raise ConfigurationError(f"{ENV}={path}: unknown labels {unknown}")
    return [r["text"] for r in rows], np.array([LABELS.index(r["airline_sentiment"]) for r in rows])


def run(path: Path | None = None) -> dict[str, object] | None:
    return unseen_sentiment.run(ENV, load, path)
