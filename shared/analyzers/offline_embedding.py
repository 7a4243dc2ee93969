"""Static sentence embeddings from the weights bundled inside the ``wordllama`` wheel.

WordLlama (l2_supercat, 256-d) is a token-embedding table; a sentence vector
is the mean of its tokens' rows. We read the wheel's own files
(``weights/l2_supercat_256.safetensors`` and the tokenizer JSON) directly
instead of calling ``WordLlama.load`` because importing ``wordllama`` calls
``logging.basicConfig(level=INFO)`` (it would reconfigure the host's logging),
imports ``requests``, and pads every batch to its longest text, which turns
one 100k-character text into hundreds of megabytes. A one-line text's vector
is the same as ``WordLlama.load(...).embed(texts, norm=True)`` up to token
truncation; a longer text's first line is pooled apart (see ``embed``).
Nothing is downloaded: a missing file is a :class:`ConfigurationError`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shared.errors import ConfigurationError
from shared.text import clean_text

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_NAME = "wordllama-l2-supercat-256"
DIMENSION = 256
#: Characters kept before tokenizing; bounds tokenizer time on huge texts.
MAX_CHARS = 20_000
#: Tokens averaged per part (the first line, the rest). A report's prose
#: comes before its logs; past 512 tokens the mean drifts toward the log
#: (real trackers' fused recall@5: 0.644-0.646 at 512, 0.639-0.642 at 1,024).
MAX_TOKENS = 512
#: Tokens gathered at once (1.5 KB each while averaged): bounds peak memory at ~12 MB.
CHUNK_TOKENS = 8_192

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
        self._tokenizer: Tokenizer | None = None

    def _load(self) -> tuple[np.ndarray, Tokenizer]:
        with self._lock:
            if self._table is None or self._tokenizer is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                root = _package_dir()
                weights, tokenizer = root / _WEIGHTS, root / _TOKENIZER
                if not weights.exists() or not tokenizer.exists():
                    raise ConfigurationError(f"wordllama's bundled model is missing under {root}")
                # Kept as stored (float16, 16 MB); rows become float32 when gathered.
                table = load_file(str(weights))["embedding.weight"]
                tok = Tokenizer.from_file(str(tokenizer))
                tok.no_padding()
                tok.enable_truncation(max_length=MAX_TOKENS)
                self._table, self._tokenizer = table, tok
            return self._table, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, shape ``(len(texts), DIMENSION)``, float32.

        A text's first line (a post's title, as ``split_text`` and
        ``embedding_text`` write it) is averaged apart from the rest, and the
        two unit means are summed: in one mean over a long body (a log, a
        stack trace, steps) the few title tokens were lost, though duplicates
        agree most in their titles. A one-line text is embedded as before."""
        n = len(texts)
        if not n:
            return np.empty((0, DIMENSION), dtype=np.float32)
        heads, rests = zip(*(_parts(t) for t in texts), strict=True)
        means = self._unit_means([*heads, *rests])
        out = means[:n] + means[n:]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12)
        out[bad] = _fallback_vector()
        norms[bad] = 1.0
        out /= norms
        return out

    def _unit_means(self, texts: Sequence[str]) -> np.ndarray:
        """The unit mean of each text's token rows; zeros for a text without tokens."""
        table, tok = self._load()
        encodings = tok.encode_batch(list(texts), add_special_tokens=False)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        start = 0
        for stop in _chunk_ends(lengths):
            ids = np.fromiter((i for e in encodings[start:stop] for i in e.ids), dtype=np.int64)
            out[start:stop] = _mean_rows(table, ids, lengths[start:stop])
            start = stop
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        good = np.isfinite(norms[:, 0]) & (norms[:, 0] >= 1e-12)
        out[good] /= norms[good]
        out[~good] = 0.0
        return out


def _chunk_ends(lengths: np.ndarray) -> list[int]:
    """Ends of consecutive text chunks holding at most ``CHUNK_TOKENS`` tokens
    each (a single longer text is a chunk of its own): bounds peak memory."""
    ends, total = [], 0
    for i, n in enumerate(lengths.tolist()):
        if total and total + n > CHUNK_TOKENS:
            ends.append(i)
            total = 0
        total += n
    ends.append(len(lengths))
    return ends


def _mean_rows(table: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean embedding-table row per text; texts without tokens get zeros."""
    out = np.zeros((len(lengths), table.shape[1]), dtype=np.float32)
    nonempty = lengths > 0
    if ids.size:
        np.clip(ids, 0, table.shape[0] - 1, out=ids)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[nonempty]
        sums = np.add.reduceat(table[ids].astype(np.float32), starts, axis=0)
        out[nonempty] = sums / lengths[nonempty, None]
    return out


def _prepare(text: str) -> str:
    """Strip and cut to ``MAX_CHARS``; never fails on odd input (a NUL or a
    lone surrogate, which the tokenizer refuses, is cleaned first)."""
    if not isinstance(text, str):
        text = str(text)
    return clean_text(text).strip()[:MAX_CHARS]


def _parts(text: str) -> tuple[str, str]:
    """(first line, the rest), each stripped; the rest is empty for one line."""
    head, _, rest = _prepare(text).partition("\n")
    return head.strip(), rest.strip()


def _fallback_vector() -> np.ndarray:
    """The vector of a text with no tokens (empty or whitespace): a fixed unit
    vector, so such texts are all alike and every call is deterministic."""
    return np.full(DIMENSION, 1.0 / np.sqrt(DIMENSION), dtype=np.float32)
