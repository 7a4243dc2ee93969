from __future__ import annotations

import numpy as np
import pytest

from shared.clustering import (
    DEFAULT_DUPLICATE_THRESHOLD,
    DEFAULT_THEME_THRESHOLD,
    ThemeIndex,
    as_unit,
    assign,
    cosine,
    cosine_matrix,
    nearest,
    update_centroid,
)


def test_cosine_basics() -> None:
    assert cosine([1, 0], [2, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 3]) == pytest.approx(0.0)
    assert cosine([1, 1], [-1, -1]) == pytest.approx(-1.0)
    assert cosine([0, 0], [1, 0]) == 0.0
    with pytest.raises(ValueError):
        cosine([1, 0], [1, 0, 0])


def test_cosine_matrix_matches_pairwise() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    m = cosine_matrix(a, b)
    assert m.shape == (4, 3)
    assert m[2, 1] == pytest.approx(cosine(a[2], b[1]), abs=1e-6)


def test_nearest_picks_most_similar_and_handles_empty() -> None:
    candidates = [("a", [1.0, 0.0]), ("b", [0.6, 0.8]), ("c", [0.0, 1.0])]
    found = nearest([0.1, 1.0], candidates)
    assert found is not None and found[0] == "c"
    assert found[1] == pytest.approx(cosine([0.1, 1.0], [0.0, 1.0]))
    assert nearest([1.0, 0.0], []) is None


def test_nearest_tie_goes_to_first_candidate() -> None:
    assert nearest([1.0, 1.0], [("x", [1.0, 0.0]), ("y", [0.0, 1.0])]) == (
        "x",
        pytest.approx(0.7071, abs=1e-4),
    )


def test_assign_joins_above_threshold_else_starts_new_theme() -> None:
    centroids = [("dark", [1.0, 0.0, 0.0], 3), ("csv", [0.0, 1.0, 0.0], 1)]
    key, score = assign([0.9, 0.1, 0.0], centroids, threshold=0.8)
    assert key == "dark" and score > 0.9
    key, score = assign([0.0, 0.0, 1.0], centroids, threshold=0.8)
    assert key is None and score == pytest.approx(0.0)
    assert assign([1.0, 0.0, 0.0], [], threshold=0.5) == (None, 0.0)


def test_assign_tie_prefers_larger_theme() -> None:
    centroids = [("small", [1.0, 0.0], 1), ("big", [0.0, 1.0], 5)]
    assert assign([1.0, 1.0], centroids, threshold=0.5)[0] == "big"


def test_update_centroid_is_running_mean_of_unit_vectors() -> None:
    c = update_centroid([1.0, 0.0], 1, [0.0, 1.0])
    assert c == pytest.approx([2**-0.5, 2**-0.5])
    c3 = update_centroid(c, 2, [0.0, 1.0])
    assert c3 == pytest.approx(list(as_unit(2 * np.array(c) + np.array([0.0, 1.0]))))
    assert np.linalg.norm(c3) == pytest.approx(1.0)
    assert update_centroid([5.0, 0.0], 0, [0.0, 3.0]) == pytest.approx([0.0, 1.0])


def test_update_centroid_moves_less_for_bigger_themes() -> None:
    old, new = [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]
    small, big = update_centroid(old, 1, new), update_centroid(old, 20, new)
    assert cosine(big, old) > cosine(small, old) > cosine(small, new) - 1e-9
    with pytest.raises(ValueError):
        update_centroid([1.0, 0.0], 1, [1.0, 0.0, 0.0])


def test_thresholds_are_ordered() -> None:
    assert 0 < DEFAULT_THEME_THRESHOLD < DEFAULT_DUPLICATE_THRESHOLD < 1


def test_theme_index_decides_like_assign() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(3, 16))
    vectors = [base[i % 3] + rng.normal(scale=0.25, size=16) for i in range(30)]
    index = ThemeIndex(16)
    centroids: list[tuple[int, list[float], int]] = []
    for vec in vectors:
        key, score = assign(vec, centroids, threshold=0.7)
        got, got_score = index.add(vec, threshold=0.7)
        if key is None:
            centroids.append((len(centroids), [float(x) for x in as_unit(vec)], 1))
            assert got == len(centroids) - 1
        else:
            k, c, n = centroids[key]
            centroids[key] = (k, update_centroid(c, n, vec), n + 1)
            assert (got, got_score) == (key, pytest.approx(score))
    assert len(index) == len(centroids) == 3
    assert index.counts == [n for _, _, n in centroids]
