"""Train the theme-space classifier and write ``shared/analyzers/theme_model.npz``.

``python -m signalsloop.benchmarks.train_themes [--write]`` (scikit-learn
needed: ``pip install -e '.[train]'``; the agents use numpy only).

Data: the CLAP app reviews (``reviews-clap-categories``, read from
``$SIGNALSLOOP_DATA_DIR`` or ``<repo>/../shared/data``, never copied), each
labeled with the category its readers filed it under. The apps are cut in two
fixed halves (``numpy.random.default_rng(0)``), so no app's reviews are both
tuned on and scored:

1. ALPHA and the leader threshold are chosen on half A, with the classifier
   fit on half B (cross-fitting: the vectors tuned on come from a model that
   never saw them);
2. reported: classifier fit on A, themes of B (and the reverse), adjusted Rand
   index against the categories, next to the embedding alone at the old
   threshold;
3. the shipped classifier is fit on all reviews.
"""

from __future__ import annotations

import csv
import sys
from math import comb
from pathlib import Path

import numpy as np

from shared import theme_space
from shared.analyzers.offline import OfflineAnalyzer
from shared.clustering import DEFAULT_THEME_THRESHOLD

ALPHAS = (0.6, 0.7, 0.8, 0.9)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85)
OUT = Path(theme_space.__file__).parent / "analyzers" / theme_space.WEIGHTS


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    pairs = sum(comb(int(x), 2) for x in table.ravel())
    rows, cols = sum(comb(int(x), 2) for x in table.sum(1)), sum(comb(int(x), 2) for x in table.sum(0))
    expected = rows * cols / comb(len(a), 2)
    top = (rows + cols) / 2
    return float((pairs - expected) / (top - expected)) if top != expected else 1.0


def load_reviews(root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with (root / "reviews-clap-categories" / "rq1-raw-data.csv").open(encoding="utf-8", errors="replace",
                                                                     newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["review"] for r in rows], np.array([r["category"] for r in rows]), np.array([r["app"] for r in rows])


def app_halves(apps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names = np.unique(apps)
    first = set(np.random.default_rng(0).permutation(names)[: len(names) // 2].tolist())
    a = np.array([x in first for x in apps])
    return a, ~a


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000).fit(x, y)
    return clf.coef_.T.copy(), clf.intercept_.copy(), clf.classes_.copy()


def themes_of(vectors: np.ndarray, coef: np.ndarray, intercept: np.ndarray, alpha: float,
              threshold: float) -> np.ndarray:
    from signalsloop.operations.analyze import group_themes

    theme_space._model = {"coef": coef, "intercept": intercept, "categories": np.arange(coef.shape[1])}
    try:
        space = theme_space.theme_vectors(vectors, theme_space.OFFLINE_EMBEDDING, alpha)
    finally:
        theme_space._model = None
    return np.asarray(group_themes(space, threshold))


def run(root: Path, write: bool) -> dict[str, object]:
    from signalsloop.operations.analyze import group_themes

    texts, category, apps = load_reviews(root)
    vectors = OfflineAnalyzer().embed_array(texts).astype(np.float64)
    a, b = app_halves(apps)
    on_b = fit(vectors[b], category[b])
    grid = {(al, th): adjusted_rand(category[a], themes_of(vectors[a], on_b[0], on_b[1], al, th))
            for al in ALPHAS for th in THRESHOLDS}
    alpha, threshold = max(grid, key=lambda k: (grid[k], k))
    on_a = fit(vectors[a], category[a])
    report: dict[str, object] = {"alpha": alpha, "threshold": threshold,
                                 "tuning_ari_half_a": round(grid[alpha, threshold], 4)}
    for name, (test, model) in {"b_with_model_of_a": (b, on_a), "a_with_model_of_b": (a, on_b)}.items():
        new = themes_of(vectors[test], model[0], model[1], alpha, threshold)
        old = np.asarray(group_themes(vectors[test], DEFAULT_THEME_THRESHOLD))
        report[name] = {"reviews": int(test.sum()), "apps": len(np.unique(apps[test])),
                        "ari_new": round(adjusted_rand(category[test], new), 4), "themes_new": int(new.max() + 1),
                        "ari_old": round(adjusted_rand(category[test], old), 4), "themes_old": int(old.max() + 1)}
    if write:
        coef, intercept, classes = fit(vectors, category)
        np.savez_compressed(OUT, coef=coef.astype(np.float32), intercept=intercept.astype(np.float32),
                            categories=classes.astype(str))
        report["written"] = str(OUT)
    return report


if __name__ == "__main__":
    from signalsloop.benchmarks.quality import training_cli

    sys.exit(training_cli(run, OUT, __doc__))
