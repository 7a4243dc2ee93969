"""The offline sentiment classifier: multinomial logistic regression, numpy only.

Features per text (see :func:`features`): ten lexicon readings: VADER's
compound / positive / negative / neutral, TextBlob's pattern polarity and
subjectivity (:mod:`shared.analyzers.offline_pattern`), the product-feedback
cue sum, the feature-request flag, the old lexicon score and a length term.
The 256-d WordLlama sentence vector was tried as extra input and left out:
it raised the fit on the training sources but lowered every held-out and
cross-data-set figure (it learns topics, not tone), and leaving it out keeps
the sentiment function free of the 16 MB embedding table.

The weights (``sentiment_model.npz``, under 1 KB, package data) are written by
``python -m signalsloop.benchmarks.train_sentiment`` from public labeled data
(TweetEval sentiment validation tweets and CLAP app reviews' star ratings)
with balanced class weights, so no class is favoured by its share in the
training data: the predicted shares follow the text, not the training mix.
That script prints its held-out and cross-data-set figures and the
confusion matrix.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from shared.analyzers import offline_pattern, offline_sentiment
from shared.errors import ConfigurationError
from shared.ports import SentimentLabel

MODEL_NAME = "offline-logreg-lexicon-2"
WEIGHTS = "sentiment_model.npz"
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
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (d, 3)
    intercept: np.ndarray  # (3,)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        cues = x[:, _CUES] + x[:, _SERVICE]
        z[:, 0] += CUE_LOGIT * np.maximum(-cues, 0)
        z[:, 2] += CUE_LOGIT * np.maximum(cues, 0)
        z[:, 1] += REQUEST_LOGIT * ((x[:, _REQUEST] > 0) & (cues >= 0))
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


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


def features(engine: offline_sentiment.LexiconSentiment, texts: Sequence[str]) -> np.ndarray:
    """The classifier's input rows, one per text."""
    return np.array([lexicon_features(engine, t) for t in texts], dtype=np.float64).reshape(len(texts),
                                                                                          len(LEXICON_FEATURES))


_lock = threading.Lock()
_model: Model | None = None


def load() -> Model:
    """The shipped weights, read once per process from the installed package."""
    global _model
    with _lock:
        if _model is None:
            try:
                with resources.files("shared.analyzers").joinpath(WEIGHTS).open("rb") as f, \
                        np.load(f) as data:
                    _model = Model(data["mean"], data["scale"], data["coef"], data["intercept"])
            except (FileNotFoundError, KeyError, ValueError) as exc:
                raise ConfigurationError(f"the sentiment model {WEIGHTS} is missing or damaged: {exc}") from exc
        return _model
