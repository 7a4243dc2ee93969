"""The offline sentiment classifier: multinomial logistic regression, plain Python.

Features per text: eleven lexicon readings (see :func:`features`): VADER's
compound / positive / negative / neutral, TextBlob's pattern polarity and
subjectivity (:mod:`shared.analyzers.offline_pattern`), the product-feedback
cue sum, the feature-request flag, the old lexicon score, a length term and
the customer-service cue sum; and the text's character 2-5-grams within
words, TF-IDF weighted as scikit-learn's ``TfidfVectorizer(analyzer="char_wb",
sublinear_tf=True)`` weighs them (:class:`CharGrams`, 30,000 n-grams). The
n-grams learn how complaints and praise are spelled where no lexicon scores
them ("unplayable", "can't log in", "fix ur servers", "refund"), and they
read misspellings and word parts that word features miss.
The 256-d WordLlama sentence vector was tried as extra input and left out:
it raised the fit on the training sources but lowered every held-out and
cross-data-set figure (it learns topics, not tone), and leaving it out keeps
the sentiment function free of the 16 MB embedding table.

The weights (``sentiment_model.json``, 1.3 MB, package data) are written by
``python -m signalsloop.benchmarks.train_sentiment`` from public labeled data
(TweetEval sentiment validation tweets, CLAP app reviews' star ratings, and
the human-rated tweets, product-review and editorial sentences in the
``vaderSentiment`` sdist), every source and, within it, every class
weighed equally, so neither a source's size nor its class mix is learned:
the predicted shares follow the text, not the training mix. That script
prints its held-out and left-out-source figures and the confusion matrices.

Inference is a dictionary lookup per n-gram and 33 multiplications for the
lexicon part, so it needs no numpy: the sentiment function's cold start does
not pay numpy's import (0.1-0.2 s).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from shared.analyzers import offline_pattern, offline_sentiment
from shared.errors import ConfigurationError
from shared.ports import SentimentLabel

MODEL_NAME = "offline-logreg-lexicon-chargram-5"
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


NGRAM_RANGE = (2, 5)


_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


def prepare(text: object) -> str:
    """The text both feature families read: every @handle written ``@user`` and
    every link ``http`` (as TweetEval ships its tweets, and as the models
    trained on it read them), stripped and cut as the lexicon reads it.

    Support tweets name the account they complain to ("@united lost my bag").
    Unnormalised, the handle's n-grams carry whatever that string meant in the
    training texts, so two tweets that differ only in the brand would get
    different labels; the training sources write ``@user``, ``@anonymous`` and
    ``http://url_removed``, which this maps to one form too."""
    raw = text if isinstance(text, str) else str(text)
    return _URL.sub("http", _MENTION.sub("@user", raw)).strip()[: offline_sentiment.MAX_CHARS]


def char_wb_ngrams(text: str) -> list[str]:
    """Character n-grams inside space-padded words, exactly as scikit-learn's
    ``char_wb`` analyzer makes them (lowercased; a word shorter than n counted once)."""
    low, high = NGRAM_RANGE
    grams: list[str] = []
    for word in text.lower().split():
        w = f" {word} "
        for n in range(low, high + 1):
            if len(w) <= n:
                grams.append(w)
                break
            grams.extend(w[i : i + n] for i in range(len(w) - n + 1))
    return grams


@dataclass(frozen=True)
class CharGrams:
    """TF-IDF over a fixed n-gram vocabulary (sublinear tf, L2 norm) and its logit weights."""

    index: dict[str, int]
    idf: tuple[float, ...]  # (v,)
    coef: tuple[tuple[float, ...], ...]  # (v, 3)

    @classmethod
    def of(cls, vocabulary: Sequence[str], idf: Sequence[float], coef: Sequence[Sequence[float]]) -> CharGrams:
        return cls({g: i for i, g in enumerate(vocabulary)}, tuple(map(float, idf)),
                   tuple(tuple(map(float, row)) for row in coef))

    def weights(self, text: str) -> dict[int, float]:
        """The text's TF-IDF vector, as {vocabulary index: value}."""
        counts: dict[int, int] = {}
        for gram in char_wb_ngrams(text):
            j = self.index.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        vector = {j: (1.0 + math.log(c)) * self.idf[j] for j, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {j: v / norm for j, v in vector.items()}

    def logits(self, text: str) -> list[float]:
        z = [0.0, 0.0, 0.0]
        for j, v in self.weights(text).items():
            w = self.coef[j]
            z = [z[0] + v * w[0], z[1] + v * w[1], z[2] + v * w[2]]
        return z


@dataclass(frozen=True)
class Model:
    mean: tuple[float, ...]  # (d,)
    scale: tuple[float, ...]  # (d,)
    coef: tuple[tuple[float, ...], ...]  # (d, 3)
    intercept: tuple[float, ...]  # (3,)
    grams: CharGrams | None = None  # None: the lexicon features alone

    @classmethod
    def of(cls, mean: Sequence[float], scale: Sequence[float], coef: Sequence[Sequence[float]],
           intercept: Sequence[float], grams: CharGrams | None = None) -> Model:
        """From any sequences (lists, numpy arrays), as plain floats."""
        return cls(tuple(map(float, mean)), tuple(map(float, scale)),
                   tuple(tuple(map(float, row)) for row in coef), tuple(map(float, intercept)), grams)

    def probabilities(self, rows: Sequence[Sequence[float]], texts: Sequence[str]) -> list[list[float]]:
        """One distribution over :data:`LABELS` per text, from its feature row."""
        return [self._softmax(self.with_rules(self.logits(row, text), row))
                for row, text in zip(rows, texts, strict=True)]

    def logits(self, x: Sequence[float], text: str) -> list[float]:
        """The learned part alone: what scikit-learn's ``decision_function`` gives."""
        z = list(self.intercept)
        for xi, m, s, w in zip(x, self.mean, self.scale, self.coef, strict=True):
            t = (xi - m) / s
            z = [zk + t * wk for zk, wk in zip(z, w, strict=True)]
        if self.grams is not None:
            z = [a + b for a, b in zip(z, self.grams.logits(prepare(text)), strict=True)]
        return z

    @staticmethod
    def with_rules(z: list[float], x: Sequence[float]) -> list[float]:
        """The fixed product rules (see :data:`CUE_LOGIT`) added to learned logits ``z``."""
        cues = x[_CUES] + x[_SERVICE]
        z[0] += CUE_LOGIT * max(-cues, 0.0)
        z[2] += CUE_LOGIT * max(cues, 0.0)
        z[1] += REQUEST_LOGIT * float(x[_REQUEST] > 0 and cues >= 0)
        return z

    @staticmethod
    def _softmax(z: list[float]) -> list[float]:
        top = max(z)
        e = [math.exp(zk - top) for zk in z]
        total = sum(e)
        return [v / total for v in e]


def lexicon_features(engine: offline_sentiment.LexiconSentiment, text: str) -> list[float]:
    text = prepare(text)
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
                grams = data.get("grams")
                _model = Model.of(data["mean"], data["scale"], data["coef"], data["intercept"],
                                  CharGrams.of(grams["vocabulary"], grams["idf"], grams["coef"]) if grams else None)
            except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"the sentiment model {WEIGHTS} is missing or damaged: {exc}") from exc
        return _model
