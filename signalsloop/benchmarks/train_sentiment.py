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

Protocol, all splits fixed (``numpy.random.default_rng(0)``):

1. TweetEval and the CLAP reviews are cut in halves A and B (the B halves
   are only ever scored);
2. the regularisation C is chosen on the A halves and the three rated sets
   only, leaving one source out at a time and scoring on it;
3. reported, each beside the previous recipe (TweetEval + reviews only) and
   the old lexicon scorer: the B halves, scored by a model fit on the A
   halves and the rated sets; and every source left out in turn, scored
   whole by a model fit on all the others (the previous recipe: the other
   of its two sources, or both for a rated set it never saw), with the
   confusion matrix and the predicted vs true class shares;
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
from pathlib import Path

import numpy as np

from shared.analyzers import offline_sentiment, sentiment_model

GRID_C = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SAMPLE = 40  # held-out tweets whose labels are stored with the weights
OUT = Path(sentiment_model.__file__).with_name(sentiment_model.WEIGHTS)
Part = tuple[np.ndarray, np.ndarray]  # feature rows, labels


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


def featurize(texts: list[str]) -> np.ndarray:
    rows = sentiment_model.features(offline_sentiment.LexiconSentiment(), texts)
    return np.array(rows, dtype=np.float64).reshape(len(texts), len(sentiment_model.LEXICON_FEATURES))


def predict(model: sentiment_model.Model, x: np.ndarray) -> np.ndarray:
    """The most probable class of each row, as the shipped analyzer picks it."""
    return np.array(model.probabilities(x.tolist())).argmax(axis=1)


def source_weights(labels: Sequence[np.ndarray], pooled: bool = False) -> np.ndarray:
    """Per-row weights: every source weighs the same, and within it every class
    (``pooled``: the previous recipe, classes balanced over all rows together)."""
    if pooled:
        y = np.concatenate(labels)
        return (len(y) / (3 * np.maximum(np.bincount(y, minlength=3), 1)))[y]
    weights = []
    for y in labels:
        counts = np.maximum(np.bincount(y, minlength=3), 1)
        weights.append((len(y) / (3 * counts))[y] / len(y))
    w = np.concatenate(weights)
    return w * len(w) / w.sum()


def fit(parts: Sequence[Part], c: float, pooled: bool = False) -> sentiment_model.Model:
    from sklearn.linear_model import LogisticRegression

    x, y = np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000).fit((x - mean) / scale, y,
                                                      sample_weight=source_weights([p[1] for p in parts], pooled))
    return sentiment_model.Model.of(mean.tolist(), scale.tolist(), clf.coef_.T.tolist(), clf.intercept_.tolist())


def scores(model: sentiment_model.Model | None, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    """Figures of ``model`` (None: the old lexicon scorer, read from the
    ``lexicon_score`` feature with its own thresholds) on rows ``x``."""
    from signalsloop.benchmarks.quality import macro_f1

    if model is None:
        value = x[:, sentiment_model.LEXICON_FEATURES.index("lexicon_score")]
        predicted = np.where(value <= offline_sentiment.NEGATIVE_THRESHOLD, 0,
                             np.where(value >= offline_sentiment.POSITIVE_THRESHOLD, 2, 1))
    else:
        predicted = predict(model, x)
    confusion = [[int(((y == t) & (predicted == p)).sum()) for p in range(3)] for t in range(3)]
    return {"n": len(y), "macro_f1": round(macro_f1(y, predicted), 4),
            "accuracy": round(float((y == predicted).mean()), 4),
            "true_shares": [round(float((y == k).mean()), 3) for k in range(3)],
            "predicted_shares": [round(float((predicted == k).mean()), 3) for k in range(3)],
            "confusion_rows_true_cols_predicted": confusion}


def halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def leave_one_out(parts: dict[str, Part], c: float, pooled: bool = False) -> float:
    """Mean macro-F1 over the sources, each scored by a model fit on the others."""
    from signalsloop.benchmarks.quality import macro_f1

    return float(np.mean([macro_f1(y, predict(fit([p for j, p in parts.items() if j != k], c, pooled), x))
                          for k, (x, y) in parts.items()]))


def choose_c(parts: dict[str, Part], pooled: bool = False) -> float:
    return max(GRID_C, key=lambda c: leave_one_out(parts, c, pooled))


def run(root: Path, write: bool) -> dict[str, object]:
    from signalsloop.benchmarks import vader_ratings

    tweets, ty = load_tweets(root)
    reviews, ry = load_reviews(root)
    whole: dict[str, Part] = {"tweeteval": (featurize(tweets), ty), "reviews": (featurize(reviews), ry)}
    rated = {f"rated_{k}": (featurize(t), y) for k, (t, y) in vader_ratings.load().items()}
    (tx, _), (rx, _) = whole["tweeteval"], whole["reviews"]
    (ta, tb), (ra, rb) = halves(len(ty)), halves(len(ry))
    a_halves = {"tweeteval": (tx[ta], ty[ta]), "reviews": (rx[ra], ry[ra])}
    chosen = choose_c({**a_halves, **rated})
    previous_c = choose_c(a_halves, pooled=True)  # the previous recipe, its own choice on the A halves
    new_a = fit([*a_halves.values(), *rated.values()], chosen)
    previous_a = fit(list(a_halves.values()), previous_c, pooled=True)
    report: dict[str, object] = {"C": chosen, "previous_recipe_C": previous_c}
    for name, (x, y) in {"tweeteval": (tx[tb], ty[tb]), "reviews": (rx[rb], ry[rb])}.items():
        report[f"held_out_{name}_B"] = {"new": scores(new_a, x, y), "previous": scores(previous_a, x, y),
                                        "old": scores(None, x, y)}
    everything = {**whole, **rated}
    for name, (x, y) in everything.items():
        others = [p for k, p in everything.items() if k != name]
        previous_parts = [p for k, p in whole.items() if k != name]
        report[f"left_out_{name}"] = {"new": scores(fit(others, chosen), x, y),
                                      "previous": scores(fit(previous_parts, previous_c, pooled=True), x, y),
                                      "old": scores(None, x, y)}
    fitted = fit(list(everything.values()), chosen)
    # Stored as float32 values (as the weights always were), so a rewrite is byte-stable.
    final = sentiment_model.Model.of(*(np.asarray(a, dtype=np.float32).tolist()
                                       for a in (fitted.mean, fitted.scale, fitted.coef, fitted.intercept)))
    sample = tb[:SAMPLE]
    sample_labels = predict(final, tx[sample])
    report["shipped_model_on_training_data"] = scores(final, np.vstack([p[0] for p in everything.values()]),
                                                      np.concatenate([p[1] for p in everything.values()]))
    if write:
        weights = {"mean": final.mean, "scale": final.scale, "coef": final.coef, "intercept": final.intercept,
                   "sample_tweet_lines": sample.tolist(), "sample_labels": sample_labels.tolist(),
                   "c": float(np.float32(chosen)), "sources": list(everything)}
        OUT.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
        report["written"] = str(OUT)
    return report


if __name__ == "__main__":
    from signalsloop.benchmarks.quality import training_cli

    sys.exit(training_cli(run, OUT, __doc__))
