"""Vector helpers shared by the theme agent and ``signalsloop analyze``.

Pure functions over unit vectors (lists or numpy arrays): cosine similarity,
nearest neighbour, and the incremental ("leader") theme assignment: a new
item joins the most similar theme centroid if that similarity reaches the
threshold, otherwise it starts a new theme; a centroid is the normalised
running mean of its members.

Thresholds, calibrated for the offline embedding (WordLlama l2_supercat 256-d,
``shared.analyzers.offline_embedding``) on the public STS Benchmark dev split
(1,500 sentence pairs scored 0-5; cosine vs score Spearman 0.83):

- ``DEFAULT_DUPLICATE_THRESHOLD = 0.86``: "duplicate" = STS score >= 4 (18% of
  pairs). 0.86 maximises F0.5 (precision counts double: a wrong merge costs
  more than a missed one): precision 0.72, recall 0.50. The F1 optimum, 0.77,
  has precision 0.56 / recall 0.75. Half the pairs scored >= 4 have cosine
  >= 0.86; 99% of unrelated pairs (score < 1) stay below 0.57.
- ``DEFAULT_THEME_THRESHOLD = 0.55``: "same topic" = STS score >= 2.5 (50% of
  pairs, "roughly equivalent, some details differ"). 0.55 maximises F1 there:
  F1 0.83, precision 0.83, recall 0.83. It is compared with a centroid, which
  sits closer to its members than they sit to each other, so themes come out
  a little broader than the pairwise figure.

Other embedding models need their own calibration (``bench_quality`` prints
the figures): cosines of different models are not comparable.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np

DEFAULT_DUPLICATE_THRESHOLD = 0.86
DEFAULT_THEME_THRESHOLD = 0.55

K = TypeVar("K", bound=Hashable)
Vector = Sequence[float] | np.ndarray


def as_unit(vec: Vector) -> np.ndarray:
    """``vec`` as a float64 unit vector; a zero vector stays zero."""
    arr = np.asarray(vec, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(arr))
    return arr / norm if norm > 0 and np.isfinite(norm) else np.zeros_like(arr)


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity; 0.0 when either vector is zero."""
    ua, ub = as_unit(a), as_unit(b)
    if ua.shape != ub.shape:
        raise ValueError(f"dimension mismatch: {ua.shape[0]} vs {ub.shape[0]}")
    return float(np.clip(ua @ ub, -1.0, 1.0))


def unit_rows(matrix: np.ndarray | Sequence[Vector]) -> np.ndarray:
    """Each row scaled to unit length (zero rows stay zero), float32."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError("expected a 2-d matrix")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def cosine_matrix(a: np.ndarray | Sequence[Vector], b: np.ndarray | Sequence[Vector]) -> np.ndarray:
    """All pairwise cosines, shape ``(len(a), len(b))``."""
    return unit_rows(a) @ unit_rows(b).T


def best_index(vec: Vector, matrix: np.ndarray, counts: Sequence[int] | None = None) -> tuple[int, float]:
    """Row of ``matrix`` (unit rows) most similar to ``vec``, and its cosine.

    Ties go to the larger count, then to the earlier row, so the result never
    depends on floating-point luck in ordering. ``(-1, 0.0)`` when empty.
    """
    if len(matrix) == 0:
        return -1, 0.0
    unit = as_unit(vec)
    if matrix.shape[1] != unit.shape[0]:
        raise ValueError(f"dimension mismatch: {unit.shape[0]} vs {matrix.shape[1]}")
    scores = np.round(np.asarray(matrix, dtype=np.float64) @ unit, 9)
    top = np.flatnonzero(scores == scores.max())
    if counts is not None and len(top) > 1:
        sizes = np.asarray(counts)[top]
        top = top[sizes == sizes.max()]
    i = int(top[0])
    return i, float(np.clip(scores[i], -1.0, 1.0))


def nearest(vec: Vector, candidates: Iterable[tuple[K, Vector]]) -> tuple[K, float] | None:
    """The candidate most similar to ``vec`` as ``(id, cosine)``, None if none."""
    pairs = list(candidates)
    if not pairs:
        return None
    i, score = best_index(vec, np.stack([as_unit(v) for _, v in pairs]))
    return pairs[i][0], score


def assign(vec: Vector, centroids: Sequence[tuple[K, Vector, int]], threshold: float) -> tuple[K | None, float]:
    """The theme ``vec`` joins: ``(key, cosine)`` of the best centroid if the
    cosine reaches ``threshold``, else ``(None, best cosine)`` (start a theme)."""
    if not centroids:
        return None, 0.0
    matrix = np.stack([as_unit(c) for _, c, _ in centroids])
    i, score = best_index(vec, matrix, [n for _, _, n in centroids])
    return (centroids[i][0], score) if score >= threshold else (None, score)


class ThemeIndex:
    """In-memory :func:`assign` + :func:`update_centroid` for bulk runs (the
    CLI): same decisions, without rebuilding the centroid matrix per item."""

    def __init__(self, dimension: int) -> None:
        self._matrix = np.zeros((16, dimension), dtype=np.float64)
        self.counts: list[int] = []

    def __len__(self) -> int:
        return len(self.counts)

    def centroid(self, index: int) -> np.ndarray:
        return self._matrix[index]

    def match(self, vec: Vector, threshold: float) -> tuple[int | None, float]:
        """The theme :func:`assign` would pick (None: start one), and the best cosine."""
        m = len(self.counts)
        i, score = best_index(vec, self._matrix[:m], self.counts)
        return (i if m and score >= threshold else None), score

    def join(self, index: int, vec: Vector) -> None:
        self._matrix[index] = update_centroid(self._matrix[index], self.counts[index], vec)
        self.counts[index] += 1

    def start(self, vec: Vector) -> int:
        m = len(self.counts)
        if m == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
        self._matrix[m] = as_unit(vec)
        self.counts.append(1)
        return m

    def add(self, vec: Vector, threshold: float) -> tuple[int, float]:
        """Theme index ``vec`` joined (a new one if none was close enough)."""
        i, score = self.match(vec, threshold)
        if i is not None:
            self.join(i, vec)
            return i, score
        return self.start(vec), 1.0


def update_centroid(centroid: Vector, count: int, vec: Vector) -> list[float]:
    """The unit centroid after adding ``vec`` to a theme of ``count`` members.

    Only the centroid's direction is stored, so the old members count as
    ``count`` copies of it (the usual online spherical k-means update): the
    centroid moves toward ``vec`` by about ``1 / (count + 1)``.
    """
    old, new = as_unit(centroid), as_unit(vec)
    if old.shape != new.shape:
        raise ValueError(f"dimension mismatch: {old.shape[0]} vs {new.shape[0]}")
    n = max(int(count), 0)
    merged = as_unit(old * n + new) if n else new
    return [float(x) for x in merged]
