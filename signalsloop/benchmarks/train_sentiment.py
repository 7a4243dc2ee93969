"""Train the offline sentiment classifier and write ``shared/analyzers/sentiment_model.json``.

``python -m signalsloop.benchmarks.train_sentiment [--write]`` (needs
scikit-learn: ``pip install -e '.[train]'``; inference is plain Python).

Data, read from ``$SIGNALSLOOP_DATA_DIR`` or ``<repo>/../shared/data`` and never
copied into the repository: TweetEval sentiment validation (2,000 tweets,
negative / neutral / positive) and CLAP app reviews (3,000, star ratings
mapped 1-2 negative, 3 neutral, 4-5 positive).

Protocol, all splits fixed (``numpy.random.default_rng(0)``):

1. each source is cut in halves A and B;
2. the regularisation C is chosen on the A halves only, by training on one
   source's A half and scoring on the other's (both directions);
3. reported: trained on both A halves, scored on both B halves (held out),
   and the two cross-data-set directions (train on one whole source, score
   on the other whole source), with the confusion matrix and the predicted
   vs true class shares;
4. the shipped model is trained on everything, with the chosen C.

Class weights are balanced in every fit, so a class's share in the training
mix does not leak into predictions. The labels of a fixed sample (held-out
tweets, by line number) are stored with the weights; a test checks that the
installed package reproduces them.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from shared.analyzers import offline_sentiment, sentiment_model

GRID_C = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SAMPLE = 40  # held-out tweets whose labels are stored with the weights
OUT = Path(sentiment_model.__file__).with_name(sentiment_model.WEIGHTS)


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


def fit(x: np.ndarray, y: np.ndarray, c: float) -> sentiment_model.Model:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit((x - mean) / scale, y)
    return sentiment_model.Model.of(mean.tolist(), scale.tolist(), clf.coef_.T.tolist(), clf.intercept_.tolist())


def scores(model: sentiment_model.Model | None, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    """Figures of ``model`` (None: the previous lexicon scorer, read from the
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


def run(root: Path, write: bool) -> dict[str, object]:
    from signalsloop.benchmarks.quality import macro_f1

    tweets, ty = load_tweets(root)
    reviews, ry = load_reviews(root)
    tx, rx = featurize(tweets), featurize(reviews)
    (ta, tb), (ra, rb) = halves(len(ty)), halves(len(ry))

    def cross_a(c: float) -> float:
        one = predict(fit(tx[ta], ty[ta], c), rx[ra])
        two = predict(fit(rx[ra], ry[ra], c), tx[ta])
        return (macro_f1(ry[ra], one) + macro_f1(ty[ta], two)) / 2

    chosen = max(GRID_C, key=cross_a)
    both_a = fit(np.vstack([tx[ta], rx[ra]]), np.concatenate([ty[ta], ry[ra]]), chosen)
    report: dict[str, object] = {
        "C": chosen,
        "held_out_tweets_B": {"new": scores(both_a, tx[tb], ty[tb]), "old": scores(None, tx[tb], ty[tb])},
        "held_out_reviews_B": {"new": scores(both_a, rx[rb], ry[rb]), "old": scores(None, rx[rb], ry[rb])},
        "cross_train_tweets_score_reviews": {"new": scores(fit(tx, ty, chosen), rx, ry), "old": scores(None, rx, ry)},
        "cross_train_reviews_score_tweets": {"new": scores(fit(rx, ry, chosen), tx, ty), "old": scores(None, tx, ty)},
    }
    fitted = fit(np.vstack([tx, rx]), np.concatenate([ty, ry]), chosen)
    # Stored as float32 values (as the weights always were), so a rewrite is byte-stable.
    final = sentiment_model.Model.of(*(np.asarray(a, dtype=np.float32).tolist()
                                       for a in (fitted.mean, fitted.scale, fitted.coef, fitted.intercept)))
    sample = tb[:SAMPLE]
    sample_labels = predict(final, tx[sample])
    report["shipped_model_on_training_data"] = scores(final, np.vstack([tx, rx]), np.concatenate([ty, ry]))
    if write:
        weights = {"mean": final.mean, "scale": final.scale, "coef": final.coef, "intercept": final.intercept,
                   "sample_tweet_lines": sample.tolist(), "sample_labels": sample_labels.tolist(),
                   "c": float(np.float32(chosen))}
        OUT.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
        report["written"] = str(OUT)
    return report


if __name__ == "__main__":
    from signalsloop.benchmarks.quality import training_cli

    sys.exit(training_cli(run, OUT, __doc__))
