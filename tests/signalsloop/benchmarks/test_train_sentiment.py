"""The sentiment training's weighting: every source weighs the same, and
within a source every class, whatever their sizes."""

from __future__ import annotations

import numpy as np

from signalsloop.benchmarks.train_sentiment import source_weights


def test_sources_and_their_classes_weigh_the_same_whatever_their_size() -> None:
    small = np.array([0, 1, 1, 2, 2, 2])
    large = np.array([0] * 90 + [1] * 5 + [2] * 5)
    w = source_weights([small, large])
    ws, wl = w[: len(small)], w[len(small):]
    assert np.isclose(ws.sum(), wl.sum()) and np.isclose(w.mean(), 1.0)
    for part, y in ((ws, small), (wl, large)):
        totals = [part[y == k].sum() for k in range(3)]
        assert np.allclose(totals, totals[0])


def test_pooled_weights_balance_the_classes_over_all_rows_together() -> None:
    a, b = np.array([0, 0, 0, 1]), np.array([2, 2])
    w = source_weights([a, b], pooled=True)
    y = np.concatenate([a, b])
    totals = [w[y == k].sum() for k in range(3)]
    assert np.allclose(totals, totals[0])
    assert np.isclose(w[:4].sum(), 4.0)  # the bigger source weighs more when pooled
