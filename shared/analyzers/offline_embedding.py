"""Static sentence embeddings from the weights bundled inside the ``wordllama`` wheel.

WordLlama (l2_supercat, 256-d) is a token-embedding table; a sentence vector
is the mean of its tokens' rows. We read the wheel's own files
(``weights/l2_supercat_256.safetensors`` and the tokenizer JSON) directly
instead of calling ``WordLlama.load`` because importing ``wordllama`` calls
``logging.basicConfig(level=INFO)`` (it would reconfigure the host's logging),
imports ``requests``, and pads every batch to its longest text, which turns
one 100k-character text into hundreds of megabytes. The vectors are the same
as ``WordLlama.load(...).embed(texts, norm=True)`` up to token truncation.
Nothing is downloaded: a missing file is a :class:`ConfigurationError`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.errors import ConfigurationError

MODEL_NAME = "wordllama-l2-supercat-256"
DIMENSION = 256
#: Characters kept before tokenizing; bounds tokenizer time on huge texts.
MAX_CHARS = 20_000
#: Tokens averaged per text; a mean over more barely moves.
MAX_TOKENS = 1024

_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


def _package_dir() -> Path:
    """Where ``wordllama`` is installed, found without importing it."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the wordllama package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class WordLlamaEmbedder:
    """Loads lazily on first use, once per instance (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: np.ndarray | None = None
        self._tokenizer: object | None = None

    def _load(self) -> tuple[np.ndarray, object]:
        with self._lock:
            if self._table is None or self._tokenizer is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                root = _package_dir()
                weights, tokenizer = root / _WEIGHTS, root / _TOKENIZER
                if not weights.exists() or not tokenizer.exists():
                    raise ConfigurationError(f"wordllama's bundled model is missing under {root}")
                table = load_file(str(weights))["embedding.weight"].astype(np.float32)
                tok = Tokenizer.from_file(str(tokenizer))
                tok.no_padding()
                tok.enable_truncation(max_length=MAX_TOKENS)
                self._table, self._tokenizer = table, tok
            return self._table, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, shape ``(len(texts), DIMENSION)``, float32."""
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        table, tok = self._load()
        clean = [_prepare(t) for t in texts]
        encodings = tok.encode_batch(clean, add_special_tokens=False)  # type: ignore[attr-defined]
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64)
        np.clip(ids, 0, table.shape[0] - 1, out=ids)
        out[:] = _fallback_vector()
        nonempty = lengths > 0
        if ids.size:
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
            sums = np.add.reduceat(table[ids], starts, axis=0)
            out[nonempty] = sums / lengths[nonempty, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12)
        out[bad] = _fallback_vector()
        norms[bad] = 1.0
        out /= norms
        return out


def _prepare(text: str) -> str:
    """Strip and cut to ``MAX_CHARS``; never fails on odd input."""
    if not isinstance(text, str):
        text = str(text)
    return text.strip()[:MAX_CHARS]


def _fallback_vector() -> np.ndarray:
    """The vector of a text with no tokens (empty or whitespace): a fixed unit
    vector, so such texts are all alike and every call is deterministic."""
    return np.full(DIMENSION, 1.0 / np.sqrt(DIMENSION), dtype=np.float32)
