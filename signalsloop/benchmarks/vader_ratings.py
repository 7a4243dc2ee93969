"""Human-rated sentiment texts shipped inside the ``vaderSentiment`` source package.

The sdist of ``vaderSentiment`` 3.3.2 (MIT, the same package the analyzer
uses) carries ``additional_resources/hutto_ICWSM_2014.tar.gz``: the texts
Hutto & Gilbert (ICWSM 2014) had rated by 20 or more people each on a -4..+4
scale. Three of its sets are used for training the sentiment classifier:

- ``tweets``: 4,200 tweets;
- ``amazon``: 3,707 sentences from customer reviews of 5 products (Hu & Liu 2004);
- ``nyt``: 5,190 sentences from New York Times opinion pieces.

The fourth, 10,605 movie-review sentences, is left out: its raters were
shown sentences from reviews already sorted positive or negative, and only
2% come out neutral, so it teaches a two-class task (adding it lowered the
mean leave-one-source-out macro-F1 from 0.576 to 0.573).

A text's label is its raters' plurality: negative (rating < 0), neutral (0)
or positive (> 0); a tie is neutral. That is how three-class labels such as
TweetEval's come about (annotators' majority), rather than a threshold on
the mean rating that would have to be tuned.

The sdist is read where it lies: ``$SIGNALSLOOP_VADER_SDIST`` or a cached
copy that ``pip download`` fetched from the package index (checked against
its SHA-256). Nothing is copied into the repository, and only training and
``make bench-quality`` need it: inference never reads it.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from shared.errors import ConfigurationError

REQUIREMENT = "vaderSentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
SETS = {"tweets": "tweets", "amazon": "amazonReviewSnippets", "nyt": "nytEditorialSnippets"}


def sdist_path() -> Path:
    """The verified sdist: ``$SIGNALSLOOP_VADER_SDIST``, else fetched once into the user cache."""
    given = os.environ.get("SIGNALSLOOP_VADER_SDIST")
    if given:
        path = Path(given)
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "signalsloop"
        path = cache / SDIST
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                   "--quiet", "-d", str(cache), REQUIREMENT], capture_output=True, text=True)
            if done.returncode != 0 or not path.exists():
                raise ConfigurationError(f"could not fetch the {REQUIREMENT} sdist with pip download "
                                         f"(set SIGNALSLOOP_VADER_SDIST to a local copy): {done.stderr.strip()[-300:]}")
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != SHA256:
        raise ConfigurationError(f"{path} is not the {SDIST} whose SHA-256 is {SHA256}")
    return path


def plurality(ratings: list[int]) -> int:
    """0 negative, 1 neutral, 2 positive: the raters' plurality, a tie neutral."""
    neg, zero, pos = (sum(r < 0 for r in ratings), sum(r == 0 for r in ratings), sum(r > 0 for r in ratings))
    return 0 if neg > max(zero, pos) else 2 if pos > max(zero, neg) else 1


def parse(ground_truth: str, ratings: str) -> tuple[list[str], np.ndarray]:
    """Texts (``ID, MEAN, TEXT``) joined with their raw ratings (``ID, MEAN, SD, [r, ...]``)."""
    texts = {}
    for line in ground_truth.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip():
            texts[parts[0]] = parts[2].strip()
    out, labels = [], []
    for line in ratings.splitlines():
        parts = line.split("\t")
        if len(parts) >= 4 and parts[0] in texts:
            out.append(texts[parts[0]])
            labels.append(plurality([int(r) for r in ast.literal_eval(parts[3])]))
    return out, np.array(labels, dtype=np.int64)


def load(path: Path | None = None) -> dict[str, tuple[list[str], np.ndarray]]:
    """The three sets used for training, in :data:`SETS` order."""
    with tarfile.open(path or sdist_path()) as outer:
        member = outer.extractfile(_INNER)
        if member is None:
            raise ConfigurationError(f"{SDIST} holds no {_INNER}")
        packed = member.read()
    with tarfile.open(fileobj=io.BytesIO(packed)) as inner:
        def text(name: str) -> str:
            f = inner.extractfile(f"hutto_ICWSM_2014/{name}")
            if f is None:
                raise ConfigurationError(f"{_INNER} holds no {name}")
            return f.read().decode("utf-8", errors="replace")

        return {key: parse(text(f"{stem}_GroundTruth.txt"), text(f"{stem}_anonDataRatings.txt"))
                for key, stem in SETS.items()}
