"""Deterministic key-phrase extraction for naming a theme.

A theme's name is the n-gram (1-3 words) that the most of its texts share,
longer phrases preferred when they are about as common as their words
("dark mode" over "dark"). Stop words never start or end a phrase; generic
feedback words ("app", "please", "great") count for little. Ties break by
first appearance, so the same texts always give the same name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

FALLBACK_THEME = "General Feedback"
MAX_WORDS_PER_TEXT = 400
MAX_TEXTS = 200

_STOP_WORDS = """
    a an the and or but if then else of to in on at by for with from into onto about as is
    are was were be been being am do does did doing done have has had having i me my mine we us
    our you your he him his she her it its they them their this that these those there here what
    which who whom whose when where why how all any both each few more most other some such no nor
    not only own same so than too very s t can will just don should now would could might must
    shall may also again ever every yet up down out off over under once still even because while
    until after before since via per etc im i'm it's its dont don't doesn't didn't can't cannot
    won't isn't aren't wasn't i've i'd i'll you're they're there's that's let let's get got gets
    one two lot lots much many thing things something anything nothing way really"""
_STOP = frozenset(_STOP_WORDS.split())
#: Words too generic to name a theme alone; they still join a phrase.
_GENERIC_WORDS = """
    app apps application please add added adding feature features option options want wants
    need needs like love hate good great nice bad awesome amazing best better worst new use using
    used user users make makes work works working able allow thanks thank hi hello hey ok okay
    version update time times day days issue issues problem problems help fix fixed please
    excellent perfect cool fine terrible horrible awful beautiful wonderful fantastic super
    pretty little fun"""
_GENERIC = frozenset(_GENERIC_WORDS.split())
#: Words that may sit inside a three-word phrase ("export to csv").
_JOINERS = frozenset(("to", "for", "of", "in", "on", "with", "and"))
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)[:MAX_WORDS_PER_TEXT]


def _stem(word: str) -> str:
    """Plural and possessive folding only ("crashes" -> "crash", "app's" -> "app")."""
    word = re.sub(r"['\u2019]s$", "", word)
    if "'" in word or "\u2019" in word:
        return word
    if len(word) > 4 and word.endswith(("shes", "ches", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _is_content(word: str) -> bool:
    return word not in _STOP and not word.isdigit() and len(word) > 1


def _phrases(words: list[str]) -> list[tuple[str, ...]]:
    """Candidate n-grams of one text, in order of appearance."""
    low = [_stem(w.lower()) for w in words]
    out: list[tuple[str, ...]] = []
    for i, w in enumerate(low):
        if not _is_content(w):
            continue
        out.append((w,))
        if i + 1 < len(low) and _is_content(low[i + 1]):
            out.append((w, low[i + 1]))
        if i + 2 < len(low) and low[i + 1] in _JOINERS and _is_content(low[i + 2]):
            out.append((w, low[i + 1], low[i + 2]))
    return out


def _weight(phrase: tuple[str, ...]) -> float:
    content = [w for w in phrase if w not in _JOINERS]
    generic = sum(w in _GENERIC for w in content)
    if generic == len(content):
        return 0.3
    return (1.0 + 0.4 * (len(phrase) - 1)) * (0.8 if generic else 1.0)


Ranked = tuple[list[tuple[str, ...]], Counter[tuple[str, ...]], dict[str, str]]


def _ranked(texts: Sequence[str]) -> Ranked:
    """N-grams (of stems) best first, and each stem's most common spelling."""
    doc_freq: Counter[tuple[str, ...]] = Counter()
    first_seen: dict[tuple[str, ...], int] = {}
    spellings: dict[str, Counter[str]] = {}
    for text in texts[:MAX_TEXTS]:
        words = _words(text if isinstance(text, str) else str(text))
        for w in words:
            spellings.setdefault(_stem(w.lower()), Counter())[w] += 1
        for p in dict.fromkeys(_phrases(words)):
            doc_freq[p] += 1
            first_seen.setdefault(p, len(first_seen))
    need = 2 if len(texts) > 1 else 1
    cands = [p for p, n in doc_freq.items() if n >= need] or list(doc_freq)
    cands.sort(key=lambda p: (-doc_freq[p] * _weight(p), first_seen[p]))
    casing = {w: c.most_common(1)[0][0] for w, c in spellings.items()}
    return cands, doc_freq, casing


def _title(words: Sequence[str], casing: dict[str, str]) -> str:
    out = []
    for w in words:
        original = casing.get(w, w)
        keep = original.isupper() and len(original) > 1
        out.append(original if keep else original[:1].upper() + original[1:].lower())
    return " ".join(out)


def name_theme(texts: Sequence[str]) -> str:
    """A 2-5 word Title Case name, or :data:`FALLBACK_THEME` for empty input."""
    ranked, doc_freq, casing = _ranked(texts)
    if not ranked:
        return FALLBACK_THEME
    words = list(ranked[0])
    for extra in ranked[1:]:
        if len(words) >= 2:
            break
        if len(extra) == 1 and extra[0] not in words and extra[0] not in _GENERIC:
            # Two separate words: use the order people wrote them in, if ever adjacent.
            pair = (words[0], extra[0])
            words = list(pair if doc_freq[pair] >= doc_freq[pair[::-1]] else pair[::-1])
    if len(words) < 2:
        words.append("feedback")
    return _title(words[:5], casing)
