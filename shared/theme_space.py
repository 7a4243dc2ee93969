"""The vector space themes are grouped in: how people group feedback, not only
what it talks about.

Plain sentence embeddings group by topic words, so "the app crashes" and "the
game crashes" land apart while people file both as a bug report. For the
offline embedding, a theme vector is

    unit([ALPHA * sqrt(p), (1 - ALPHA) * embedding])

where ``p`` are the probabilities of a small multinomial logistic regression
(numpy; weights ``theme_model.npz``, ~8 KB, package data) over the embedding,
trained on public app reviews labeled with how their readers grouped them
(CLAP: bug, feature, performance, usability, energy, security, other; see
``signalsloop.benchmarks.train_themes``). ``sqrt(p)`` makes the cosine of two
items' category parts their Bhattacharyya coefficient. Other embedding models
(OpenAI) are used as they are: the classifier only reads the offline space.

Both the theme agent (online, one item at a time) and ``signalsloop analyze
themes`` (batch) group in this space, with the same leader assignment
(:mod:`shared.clustering`).
"""

from __future__ import annotations

import threading
from importlib import resources

import numpy as np

from shared.analyzers.offline_embedding import MODEL_NAME as OFFLINE_EMBEDDING
from shared.errors import ConfigurationError

WEIGHTS = "theme_model.npz"
SPACE_SUFFIX = "+themes-1"
#: Chosen with the threshold on one half of the apps, scored on the other.
ALPHA = 0.6
THEME_THRESHOLD = 0.5

#: How a theme's category reads at the front of its name ("Bugs: Photo Upload").
CATEGORY_TITLES = {"BUG": "Bugs", "FEATURE": "Feature requests", "PERFORMANCE": "Performance",
                   "USABILITY": "Usability", "ENERGY": "Battery", "SECURITY": "Security", "OTHER": "General"}

_lock = threading.Lock()
_model: dict[str, np.ndarray] | None = None


def _load() -> dict[str, np.ndarray]:
    global _model
    with _lock:
        if _model is None:
            try:
                with resources.files("shared.analyzers").joinpath(WEIGHTS).open("rb") as f, np.load(f) as data:
                    _model = {k: data[k] for k in ("coef", "intercept", "categories")}
            except (FileNotFoundError, KeyError, ValueError) as exc:
                raise ConfigurationError(f"the theme model {WEIGHTS} is missing or damaged: {exc}") from exc
        return _model


def applies(embedding_model: str) -> bool:
    return embedding_model == OFFLINE_EMBEDDING


def space_name(embedding_model: str) -> str:
    """What ``themes.embedding_model`` records: themes of another space never mix."""
    return embedding_model + SPACE_SUFFIX if applies(embedding_model) else embedding_model


def default_threshold(embedding_model: str, fallback: float) -> float:
    return THEME_THRESHOLD if applies(embedding_model) else fallback


def category_probabilities(vectors: np.ndarray) -> np.ndarray:
    model = _load()
    z = np.asarray(vectors, dtype=np.float64) @ model["coef"] + model["intercept"]
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def theme_vectors(vectors: np.ndarray, embedding_model: str, alpha: float = ALPHA) -> np.ndarray:
    """Rows in the theme space (unit length, float64); unchanged for other models."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if not applies(embedding_model):
        return v
    z = np.hstack([alpha * np.sqrt(category_probabilities(v)), (1 - alpha) * v])
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)


def titled(name: str, vectors: np.ndarray, embedding_model: str) -> str:
    """``name`` prefixed with the members' most likely category (offline space
    only): key phrases alone named a theme after its first topic."""
    if not applies(embedding_model) or len(vectors) == 0:
        return name
    mean = category_probabilities(np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)).mean(axis=0)
    category = str(_load()["categories"][int(mean.argmax())])
    title = CATEGORY_TITLES.get(category, category.title())
    return f"{title}: {name}" if name else title
