"""Train the offline sentiment classifier and write ``shared/analyzers/sentiment_model.json``.

``python -m signalsloop.benchmarks.train_sentiment [--write]`` (needs
scikit-learn: ``pip install -e '.[train]'``; inference is plain Python).

Data, never copied into the repository. From ``$SIGNALSLOOP_DATA_DIR`` or
``<repo>/../shared/data``: TweetEval sentiment validation (2,000 tweets,
negative / neutral / positive) and CLAP app reviews (3,000, star ratings
mapped 1-2 negative, 3 neutral, 4-5 positive). From the ``vaderSentiment``
sdist (see :mod:`signalsloop.benchmarks.vader_ratings`): 4,200 tweets,
3,707 product-review sentences and 5,190 editorial sentences, each rated by
20 or more people.

Two recipes are trained the same way: the new one reads the eleven lexicon
features and the text's character 2-5-grams (TF-IDF over the
:data:`VOCABULARY` most frequent n-grams seen in at least :data:`MIN_DF`
training texts); the previous one (``offline-logreg-lexicon-3``) the
lexicon features alone. Scoring uses scikit-learn's matrices; the shipped
plain-Python model is checked against them on a fixed sample (its logits
are stored beside its labels, and a test compares the installed model with
both).

Protocol, all splits fixed (``numpy.random.default_rng(0)``):

1. TweetEval and the CLAP reviews are cut in halves A and B (the B halves
   are only ever scored);
2. each recipe's regularisation C is chosen on the A halves and the three
   rated sets only, leaving one source out at a time and scoring on it;
3. reported, each beside the previous recipe and the old lexicon scorer:
   the B halves, scored by a model fit on the A halves and the rated sets;
   and every source left out in turn, scored whole by a model fit on all the
   others (n-gram vocabulary included), with the confusion matrix and the
   predicted vs true class shares;
4. the shipped model is trained on all five sources with the chosen C.

Every fit weighs the sources equally and the classes within each source
equally, so neither a source's size nor its class mix leaks into
predictions. The labels of a fixed sample (held-out tweets, by line number)
are stored with the weights; a test checks that the installed package
reproduces them.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.analyzers import offline_sentiment, sentiment_model

GRID_C = (0.03, 0.1, 0.3)
PREVIOUS_GRID_C = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
VOCABULARY = 30_000  # character n-grams kept
MIN_DF = 5  # an n-gram must occur in this many training texts
SAMPLE = 40  # held-out tweets whose labels are stored with the weights
OUT = Path(sentiment_model.__file__).with_name(sentiment_model.WEIGHTS)


@dataclass(frozen=True)
class Part:
    x: np.ndarray  # lexicon feature rows
    texts: list[str]  # as the model reads them (sentiment_model.prepare)
    y: np.ndarray

    def take(self, rows: np.ndarray) -> Part:
        return Part(self.x[rows], [self.texts[i] for i in rows], self.y[rows])


@dataclass(frozen=True)
class Fitted:
    """One trained recipe: scikit-learn's pieces for scoring, and the shipped form."""

    model: sentiment_model.Model
    clf: Any
    vectorizer: Any  # None: lexicon features alone

    def matrix(self, part: Part) -> Any:
        x = (part.x - np.array(self.model.mean)) / np.array(self.model.scale)
        if self.vectorizer is None:
            return x
        import scipy.sparse as sp

        return sp.hstack([self.vectorizer.transform(part.texts), sp.csr_matrix(x)]).tocsr()

    def logits(self, part: Part) -> np.ndarray:
        return np.asarray(self.clf.decision_function(self.matrix(part)))


def load_tweets(root: Path) -> tuple[list[str], np.ndarray]:
    folder = root / "sentiment-tweeteval-val"
    texts = (folder / "val_text.txt").read_text(encoding="utf-8").splitlines()
    return texts, np.array([int(x) for x in (folder / "val_labels.txt").read_text().split()])


def load_reviews(root: Path) -> tuple[list[str], np.ndarray]:
    path = root / "reviews-clap-categories" / "rq1-raw-data.csv"
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (r.get("rating") or "").strip().isdigit()]
    stars = np.array([int(r["rating"]) for r in rows])
    return [r["review"] for r in rows], np.where(stars <= 2, 0, np.where(stars == 3, 1, 2))


def part_of(texts: list[str], y: np.ndarray) -> Part:
    rows = sentiment_model.features(offline_sentiment.LexiconSentiment(), texts)
    x = np.array(rows, dtype=np.float64).reshape(len(texts), len(sentiment_model.LEXICON_FEATURES))
    return Part(x, [sentiment_model.prepare(t) for t in texts], y)


def with_rules(z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The shipped model's fixed product rules on learned logits (see sentiment_model)."""
    return np.array([sentiment_model.Model.with_rules(list(zr), xr) for zr, xr in zip(z, x, strict=True)])


def predict(fitted: Fitted, part: Part) -> np.ndarray:
    """The most probable class of each text, as the shipped analyzer picks it."""
    return with_rules(fitted.logits(part), part.x).argmax(axis=1)


def source_weights(labels: Sequence[np.ndarray]) -> np.ndarray:
    """Per-row weights: every source weighs the same, and within it every class."""
    weights = []
    for y in labels:
        counts = np.maximum(np.bincount(y, minlength=3), 1)
        weights.append((len(y) / (3 * counts))[y] / len(y))
    w = np.concatenate(weights)
    return w * len(w) / w.sum()


def char_vocabulary(texts: list[str]) -> list[str]:
    """The :data:`VOCABULARY` most frequent character n-grams seen in at least
    :data:`MIN_DF` texts, ties broken by the n-gram itself.

    scikit-learn's ``max_features`` picks the same n-grams but breaks ties at
    the cut with numpy's unstable argsort, whose SIMD kernels order equal
    counts differently on different CPUs (two machines kept 37 different
    n-grams), so the weights file would depend on where it was trained."""
    from sklearn.feature_extraction.text import CountVectorizer

    counter = CountVectorizer(analyzer="char_wb", ngram_range=sentiment_model.NGRAM_RANGE, min_df=MIN_DF,
                              dtype=np.int64)
    totals = np.asarray(counter.fit_transform(texts).sum(axis=0)).ravel()
    return most_frequent(counter.get_feature_names_out().tolist(), totals.tolist(), VOCABULARY)


def most_frequent(names: list[str], counts: list[int], k: int) -> list[str]:
    """The ``k`` names of highest count, equal counts by name, returned sorted:
    the same whatever order they come in."""
    kept = sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))[:k]
    return sorted(name for name, _ in kept)


def fit(parts: Sequence[Part], c: float, grams: bool = True) -> Fitted:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([p.x for p in parts])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    lexicon = sentiment_model.Model.of(mean.tolist(), scale.tolist(), [[0.0] * 3] * len(mean), [0.0] * 3)
    vectorizer = None
    if grams:
        texts = [t for p in parts for t in p.texts]
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=sentiment_model.NGRAM_RANGE,
                                     vocabulary=char_vocabulary(texts), sublinear_tf=True, dtype=np.float64)
        vectorizer.fit(texts)
    whole = Part(x, [t for p in parts for t in p.texts], np.concatenate([p.y for p in parts]))
    clf = LogisticRegression(C=c, max_iter=5000).fit(Fitted(lexicon, None, vectorizer).matrix(whole), whole.y,
                                                     sample_weight=source_weights([p.y for p in parts]))
    d = len(mean)
    coef = clf.coef_.T  # (v + d, 3): the n-grams first, then the lexicon features
    char = None if vectorizer is None else sentiment_model.CharGrams.of(
        vectorizer.get_feature_names_out().tolist(), vectorizer.idf_.tolist(), coef[:-d].tolist())
    model = sentiment_model.Model.of(mean.tolist(), scale.tolist(), coef[-d:].tolist(), clf.intercept_.tolist(), char)
    return Fitted(model, clf, vectorizer)


def scores(fitted: Fitted | None, part: Part) -> dict[str, object]:
    """Figures of ``fitted`` (None: the old lexicon scorer, read from the
    ``lexicon_score`` feature with its own thresholds) on ``part``."""
    y = part.y
    if fitted is None:
        value = part.x[:, sentiment_model.LEXICON_FEATURES.index("lexicon_score")]
        predicted = np.where(value <= offline_sentiment.NEGATIVE_THRESHOLD, 0,
                             np.where(value >= offline_sentiment.POSITIVE_THRESHOLD, 2, 1))
    else:
        predicted = predict(fitted, part)
    return figures(y, predicted)


def figures(y: np.ndarray, predicted: np.ndarray) -> dict[str, object]:
    """Macro-F1, accuracy, class shares and the confusion matrix of ``predicted`` against ``y``."""
    from signalsloop.benchmarks.quality import macro_f1

    confusion = [[int(((y == t) & (predicted == p)).sum()) for p in range(3)] for t in range(3)]
    return {"n": len(y), "macro_f1": round(macro_f1(y, predicted), 4),
            "accuracy": round(float((y == predicted).mean()), 4),
            "true_shares": [round(float((y == k).mean()), 3) for k in range(3)],
            "predicted_shares": [round(float((predicted == k).mean()), 3) for k in range(3)],
            "confusion_rows_true_cols_predicted": confusion}


def halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def leave_one_out(parts: dict[str, Part], c: float, grams: bool) -> float:
    """Mean macro-F1 over the sources, each scored by a model fit on the others."""
    from signalsloop.benchmarks.quality import macro_f1

    return float(np.mean([macro_f1(p.y, predict(fit([q for j, q in parts.items() if j != k], c, grams), p))
                          for k, p in parts.items()]))


def choose_c(parts: dict[str, Part], grid: Sequence[float], grams: bool) -> float:
    return max(grid, key=lambda c: leave_one_out(parts, c, grams))


def shipped(fitted: Fitted) -> sentiment_model.Model:
    """The model as stored: float32 values (as the weights always were), so a rewrite is
    byte-stable; the n-grams rounded to 5 decimals, which halves the file (the sample
    check below bounds what that moves)."""
    def f32(a: Any, decimals: int | None = None) -> list[Any]:
        values = np.asarray(a, dtype=np.float32).astype(np.float64)
        return (values if decimals is None else np.round(values, decimals)).tolist()  # type: ignore[no-any-return]

    m, g = fitted.model, fitted.model.grams
    grams = None if g is None else sentiment_model.CharGrams.of(sorted(g.index, key=g.index.__getitem__),
                                                                f32(g.idf, 5), f32(g.coef, 5))
    return sentiment_model.Model.of(f32(m.mean), f32(m.scale), f32(m.coef), f32(m.intercept), grams)


def sample_check(fitted: Fitted, final: sentiment_model.Model, sample: Part) -> tuple[list[int], list[list[float]]]:
    """The stored model's labels of the sample, and scikit-learn's logits of it,
    after checking that the plain-Python model gives those logits."""
    expected = fitted.logits(sample)
    plain = np.array([final.logits(x, t) for x, t in zip(sample.x.tolist(), sample.texts, strict=True)])
    if not np.allclose(plain, expected, atol=1e-3):
        raise AssertionError(f"plain-Python logits differ from scikit-learn's by {np.abs(plain - expected).max()}")
    labels = np.array(final.probabilities(sample.x.tolist(), sample.texts)).argmax(axis=1)
    return labels.tolist(), np.round(expected, 5).tolist()


def run(root: Path, write: bool) -> dict[str, object]:
    from signalsloop.benchmarks import vader_ratings

    whole = {"tweeteval": part_of(*load_tweets(root)), "reviews": part_of(*load_reviews(root))}
    rated = {f"rated_{k}": part_of(t, y) for k, (t, y) in vader_ratings.load().items()}
    (ta, tb), (ra, rb) = halves(len(whole["tweeteval"].y)), halves(len(whole["reviews"].y))
    tuning = {"tweeteval": whole["tweeteval"].take(ta), "reviews": whole["reviews"].take(ra), **rated}
    chosen = choose_c(tuning, GRID_C, grams=True)
    previous_c = choose_c(tuning, PREVIOUS_GRID_C, grams=False)
    recipes = {"new": (chosen, True), "previous": (previous_c, False)}
    report: dict[str, object] = {"C": chosen, "previous_recipe_C": previous_c, "vocabulary": VOCABULARY}
    on_a = {name: fit(list(tuning.values()), c, g) for name, (c, g) in recipes.items()}
    for name, part in {"tweeteval": whole["tweeteval"].take(tb), "reviews": whole["reviews"].take(rb)}.items():
        report[f"held_out_{name}_B"] = {**{r: scores(f, part) for r, f in on_a.items()}, "old": scores(None, part)}
    everything = {**whole, **rated}
    for name, part in everything.items():
        others = [p for k, p in everything.items() if k != name]
        report[f"left_out_{name}"] = {**{r: scores(fit(others, c, g), part) for r, (c, g) in recipes.items()},
                                      "old": scores(None, part)}
    for r in (*recipes, "old"):
        figures = [report[f"left_out_{k}"][r] for k in everything]  # type: ignore[index]
        report[f"left_out_mean_{r}"] = {m: round(float(np.mean([f[m] for f in figures])), 4)
                                        for m in ("macro_f1", "accuracy")}
    fitted = fit(list(everything.values()), chosen)
    final = shipped(fitted)
    sample = tb[:SAMPLE]
    sample_labels, sample_logits = sample_check(fitted, final, whole["tweeteval"].take(sample))
    report["shipped_model_on_training_data"] = scores(fitted, Part(np.vstack([p.x for p in everything.values()]),
                                                                   [t for p in everything.values() for t in p.texts],
                                                                   np.concatenate([p.y for p in everything.values()])))
    if write:
        assert final.grams is not None
        g = final.grams
        weights = {"mean": final.mean, "scale": final.scale, "coef": final.coef, "intercept": final.intercept,
                   "grams": {"vocabulary": sorted(g.index, key=g.index.__getitem__), "idf": g.idf, "coef": g.coef},
                   "sample_tweet_lines": sample.tolist(), "sample_labels": sample_labels,
                   "sample_logits": sample_logits, "c": float(np.float32(chosen)), "sources": list(everything)}
        OUT.write_text(json.dumps(weights, separators=(",", ":")) + "\n", encoding="utf-8")
        report["written"] = str(OUT)
    return report


if __name__ == "__main__":
    from signalsloop.benchmarks.quality import training_cli

    sys.exit(training_cli(run, OUT, __doc__))
