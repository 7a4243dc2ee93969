"""The offline sentiment classifier: multinomial logistic regression, plain Python.

Features per text (see :func:`features`): ten lexicon readings: VADER's
compound / positive / negative / neutral, TextBlob's pattern polarity and
subjectivity (:mod:`shared.analyzers.offline_pattern`), the product-feedback
cue sum, the feature-request flag, the old lexicon score and a length term.
The 256-d WordLlama sentence vector was tried as extra input and left out:
it raised the fit on the training sources but lowered every held-out and
cross-data-set figure (it learns topics, not tone), and leaving it out keeps
the sentiment function free of the 16 MB embedding table.

The weights (``sentiment_model.json``, 2 KB, package data) are written by
``python -m signalsloop.benchmarks.train_sentiment`` from public labeled data
(TweetEval sentiment validation tweets, CLAP app reviews' star ratings, and
the human-rated tweets, product-review and editorial sentences in the
``vaderSentiment`` sdist), every source and, within it, every class
weighed equally, so neither a source's size nor its class mix is learned:
the predicted shares follow the text, not the training mix. That script
prints its held-out and left-out-source figures and the confusion matrices.

Inference is 33 multiplications a text, so it needs no numpy: the sentiment
function's cold start does not pay numpy's import (0.1-0.2 s).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from shared.analyzers import offline_pattern, offline_sentiment
from shared.errors import ConfigurationError
from shared.ports import SentimentLabel

MODEL_NAME = "offline-logreg-lexicon-3"
WEIGHTS = "sentiment_model.json"
LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")
LEXICON_FEATURES = ("vader_compound", "vader_pos", "vader_neg", "vader_neu", "pattern_polarity",
                    "pattern_subjectivity", "cues", "request", "lexicon_score", "log_length", "service_cues")


#: Product-feedback knowledge the public data barely holds (few tweets or
#: reviews say "can't wait", "keeps crashing" or "please add"), applied on top
#: of the learned logits: the cue sum pushes toward its side, and a request
#: without a complaint leans neutral ("please add dark mode" is not praise).
CUE_LOGIT = 2.0
REQUEST_LOGIT = 2.0
_CUES, _REQUEST = LEXICON_FEATURES.index("cues"), LEXICON_FEATURES.index("request")
_SERVICE = LEXICON_FEATURES.index("service_cues")


@dataclass(frozen=True)
class Model:
    mean: tuple[float, ...]  # (d,)
    scale: tuple[float, ...]  # (d,)
    coef: tuple[tuple[float, ...], ...]  # (d, 3)
    intercept: tuple[float, ...]  # (3,)

    @classmethod
    def of(cls, mean: Sequence[float], scale: Sequence[float], coef: Sequence[Sequence[float]],
           intercept: Sequence[float]) -> Model:
        """From any sequences (lists, numpy arrays), as plain floats."""
        return cls(tuple(map(float, mean)), tuple(map(float, scale)),
                   tuple(tuple(map(float, row)) for row in coef), tuple(map(float, intercept)))

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[list[float]]:
        """One distribution over :data:`LABELS` per feature row."""
        return [self._row(row) for row in rows]

    def _row(self, x: Sequence[float]) -> list[float]:
        z = list(self.intercept)
        for xi, m, s, w in zip(x, self.mean, self.scale, self.coef, strict=True):
            t = (xi - m) / s
            z = [zk + t * wk for zk, wk in zip(z, w, strict=True)]
        cues = x[_CUES] + x[_SERVICE]
        z[0] += CUE_LOGIT * max(-cues, 0.0)
        z[2] += CUE_LOGIT * max(cues, 0.0)
        z[1] += REQUEST_LOGIT * float(x[_REQUEST] > 0 and cues >= 0)
        top = max(z)
        e = [math.exp(zk - top) for zk in z]
        total = sum(e)
        return [v / total for v in e]


def lexicon_features(engine: offline_sentiment.LexiconSentiment, text: str) -> list[float]:
    text = (text if isinstance(text, str) else str(text)).strip()[: offline_sentiment.MAX_CHARS]
    if not text:
        return [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    vader = engine.vader().polarity_scores(text)
    polarity, subjectivity = offline_pattern.sentiment(text)
    cues, request = engine.cues(text)
    return [vader["compound"], vader["pos"], vader["neg"], vader["neu"], polarity, subjectivity,
            math.tanh(cues), float(request), engine.score(text).score, math.log1p(len(text)) / 10,
            math.tanh(engine.service(text))]


def features(engine: offline_sentiment.LexiconSentiment, texts: Sequence[str]) -> list[list[float]]:
    """The classifier's input rows, one per text."""
    return [lexicon_features(engine, t) for t in texts]


_lock = threading.Lock()
_model: Model | None = None


def load() -> Model:
    """The shipped weights, read once per process from the installed package."""
    global _model
    with _lock:
        if _model is None:
            try:
                data = json.loads(resources.files("shared.analyzers").joinpath(WEIGHTS).read_text("utf-8"))
                _model = Model.of(data["mean"], data["scale"], data["coef"], data["intercept"])
            except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"the sentiment model {WEIGHTS} is missing or damaged: {exc}") from exc
        return _model
