"""The sentiment training's weighting (every source weighs the same, and
within a source every class, whatever their sizes), its product rules, and
its vocabulary cut (the same n-grams on any machine)."""

from __future__ import annotations

import numpy as np

from signalsloop.benchmarks.train_sentiment import most_frequent, source_weights, with_rules


def test_sources_and_their_classes_weigh_the_same_whatever_their_size() -> None:
    small = np.array([0, 1, 1, 2, 2, 2])
    large = np.array([0] * 90 + [1] * 5 + [2] * 5)
    w = source_weights([small, large])
    ws, wl = w[: len(small)], w[len(small):]
    assert np.isclose(ws.sum(), wl.sum()) and np.isclose(w.mean(), 1.0)
    for part, y in ((ws, small), (wl, large)):
        totals = [part[y == k].sum() for k in range(3)]
        assert np.allclose(totals, totals[0])


def test_the_training_applies_the_shipped_models_product_rules() -> None:
    from shared.analyzers import sentiment_model

    names = sentiment_model.LEXICON_FEATURES
    complaint, request = np.zeros(len(names)), np.zeros(len(names))
    complaint[names.index("service_cues")] = -0.5
    request[names.index("request")] = 1.0
    z = with_rules(np.zeros((2, 3)), np.vstack([complaint, request]))
    assert z[0].argmax() == 0 and z[0, 0] == sentiment_model.CUE_LOGIT * 0.5
    assert z[1].argmax() == 1 and z[1, 1] == sentiment_model.REQUEST_LOGIT


def test_the_vocabulary_cut_breaks_ties_by_name_whatever_the_input_order() -> None:
    names = ["zz", "ab", "mm", "ba", "aa", "qq"]
    counts = [9, 9, 12, 9, 3, 9]
    kept = most_frequent(names, counts, 3)
    assert kept == ["ab", "ba", "mm"]  # mm by count, then the first two of the four 9s by name
    order = np.random.default_rng(1).permutation(len(names))
    assert most_frequent([names[i] for i in order], [counts[i] for i in order], 3) == kept
