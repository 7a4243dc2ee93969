"""The pattern.en adjective polarity lexicon, as bundled inside the ``textblob`` wheel.

``TextBlob(text).sentiment.polarity`` averages hand-tagged polarities of the
adjectives (and the "-ly" adverbs derived from them) in a text, with
intensifiers ("very good"), negation ("not good" = -0.5 * good), "!" and
emoticons. It complements VADER: the two lexicons overlap only partly.

``import textblob`` costs ~0.5 s because it imports NLTK, so this module loads
only textblob's pure-Python ``_text.py`` (stdlib imports only) straight from
the installed package and builds the same scorer that ``textblob.en`` builds.
Nothing is downloaded: textblob needs NLTK corpora for tagging and noun
phrases, not for this polarity. The lexicon file (``en/en-sentiment.xml``,
Tom De Smedt and Walter Daelemans, PDDL) is parsed on first use (~0.1 s).
TextBlob is MIT-licensed; ``_EnglishSentiment.load`` mirrors
``textblob.en.Sentiment.load``.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.errors import ConfigurationError

_TEXT_MODULE = "_text.py"
_LEXICON = "en/en-sentiment.xml"
_lock = threading.Lock()
_scorer: Any = None


def _package_dir() -> Path:
    """Where ``textblob`` is installed, found without importing it (and NLTK)."""
    spec = importlib.util.find_spec("textblob")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the textblob package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_text_module(root: Path) -> ModuleType:
    path = root / _TEXT_MODULE
    spec = importlib.util.spec_from_file_location("_signalsloop_textblob_text", path)
    if spec is None or spec.loader is None or not path.exists():
        raise ConfigurationError(f"textblob's {_TEXT_MODULE} is missing under {root}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build() -> Any:
    root = _package_dir()
    lexicon = root / _LEXICON
    if not lexicon.exists():
        raise ConfigurationError(f"textblob's bundled sentiment lexicon is missing under {root}")
    text = _load_text_module(root)

    class _EnglishSentiment(text.Sentiment):  # type: ignore[name-defined,misc]
        def load(self, path: str | None = None) -> None:
            text.Sentiment.load(self, path)
            if not path:  # map "terrible" to the adverb "terribly", as textblob.en does
                entries: list[tuple[str, dict[str | None, list[float]]]] = list(dict.items(self))
                for word, pos in entries:
                    if "JJ" in pos:
                        if word.endswith("y"):
                            word = word[:-1] + "i"
                        if word.endswith("le"):
                            word = word[:-2]
                        p, s, i = pos["JJ"]
                        self.annotate(word + "ly", "RB", p, s, i)

    scorer = _EnglishSentiment(
        path=str(lexicon),
        synset="wordnet_id",
        negations=("no", "not", "n't", "never"),
        modifiers=("RB",),
        modifier=lambda w: w.endswith("ly"),
        tokenizer=text.find_tokens,
        language="en",
    )
    len(scorer)  # loads the lexicon now, under the lock (textblob's lazy load is not thread-safe)
    return scorer


def polarity(text: str) -> float:
    """``TextBlob(text).sentiment.polarity``, in [-1, 1]; 0 when no known word occurs."""
    return sentiment(text)[0]


def sentiment(text: str) -> tuple[float, float]:
    """``TextBlob(text).sentiment``: polarity in [-1, 1] and subjectivity in [0, 1]."""
    global _scorer
    if _scorer is None:
        with _lock:
            if _scorer is None:
                _scorer = _build()
    p, s = _scorer(text)
    return float(p), float(s)
