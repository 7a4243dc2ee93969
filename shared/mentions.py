"""Finding a project's competitors in feedback text: case and accent
insensitive, on word boundaries ("notion" is not in "promotion"), by name,
alias or domain ("notion.so", also inside a URL or an e-mail address).

Pure functions over plain data, shared by the competitive agent's ``load``
(to know whom to ask the analyzer about) and its ``decide``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_QUOTE = 300
# A sentence ends at . ! ? ; or a line break (a dot inside "notion.so" or "2.5" is not an end).
_SENTENCE_END = re.compile(r"[.!?;]+(?=\s|$)|[\u3002\uff01\uff1f]+|\n+")


@dataclass(frozen=True)
class Mention:
    competitor_id: str
    name: str
    matched: str  # the name, alias or domain as written in the text
    start: int  # offsets in the original text
    end: int
    quote: str  # the sentence around the first match
    terms: tuple[str, ...] = ()  # every name, alias and domain the competitor goes by


def fold(text: str) -> tuple[str, list[int]]:
    """Casefolded text without accents, with, for each of its characters, the
    offset of the original character it came from (casefold may expand: ß → ss)."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for part in unicodedata.normalize("NFKD", ch):
            if unicodedata.combining(part):
                continue
            folded = part.casefold()
            out.append(folded)
            origin.extend([i] * len(folded))
    return "".join(out), origin


def _entries(competitor: Mapping[str, Any], key: str) -> list[str]:
    """A catalogue row's aliases or domains as strings; a NULL entry (which
    rows written before 20261204000101 may hold) is no name, not "None"."""
    return [str(v) for v in competitor.get(key) or [] if v is not None]


def _terms(competitor: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(folded term, is_domain) for a catalogue row, longest first, without blanks."""
    names = [str(competitor.get("name") or ""), *_entries(competitor, "aliases")]
    domains = [d.strip().lower().removeprefix("www.") for d in _entries(competitor, "domains")]
    terms = {fold(n.strip())[0]: False for n in names if n.strip()}
    terms.update({fold(d)[0]: True for d in domains if d})
    return sorted(terms.items(), key=lambda t: -len(t[0]))


def _pattern(term: str, is_domain: bool) -> re.Pattern[str]:
    escaped = re.escape(term).replace(r"\ ", r"\s+")
    if is_domain:  # a host name: subdomains and a path may surround it
        return re.compile(rf"(?<![\w-])(?:[\w-]+\.)*{escaped}(?![\w-]|\.[\w-])")
    # Letters and digits around the term make it part of another word; a name
    # ending in a symbol ("C++") cannot use \b on that side.
    left = r"(?<!\w)" if term[:1].isalnum() or term[:1] == "_" else ""
    right = r"(?!\w)" if term[-1:].isalnum() or term[-1:] == "_" else ""
    return re.compile(f"{left}{escaped}{right}")


def quote_at(text: str, start: int, end: int, limit: int = MAX_QUOTE) -> str:
    """The sentence of ``text`` holding ``[start, end)``, clipped to ``limit`` characters."""
    begin, finish = 0, len(text)
    for m in _SENTENCE_END.finditer(text):
        if m.end() <= start:
            begin = m.end()
        elif m.start() >= end:
            finish = m.end() if m.group().strip() else m.start()
            break
    sentence = " ".join(text[begin:finish].split())
    if len(sentence) <= limit:
        return sentence
    offset = max(0, min(start - begin - limit // 3, len(sentence) - limit))
    return sentence[offset:offset + limit].strip() + "…"


def sentences_with(text: str, terms: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Every sentence of ``text`` naming one of ``terms``, with the terms it names as written there."""
    patterns = [_pattern(fold(t)[0], "." in t and " " not in t.strip()) for t in terms if t.strip()]
    out, begin = [], 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        finish = m.end() if m is not None else len(text)
        sentence = " ".join(text[begin:finish].split())
        folded, origin = fold(sentence)
        named = []
        for pattern in patterns:
            if found := pattern.search(folded):
                named.append(sentence[origin[found.start()]:origin[found.end() - 1] + 1])
        if sentence and named:
            out.append((sentence, named))
        begin = finish
    return out


def find_mentions(text: str, competitors: Iterable[Mapping[str, Any]]) -> list[Mention]:
    """Each competitor mentioned in ``text``, once (at its first match), in text order."""
    folded, origin = fold(text)
    found: list[Mention] = []
    for competitor in competitors:
        first: tuple[int, int] | None = None
        for term, is_domain in _terms(competitor):
            match = _pattern(term, is_domain).search(folded)
            if match and (first is None or match.start() < first[0]):
                first = (match.start(), match.end())
        if first is None:
            continue
        start, end = origin[first[0]], origin[first[1] - 1] + 1
        terms = (str(competitor["name"]), *_entries(competitor, "aliases"), *_entries(competitor, "domains"))
        found.append(Mention(str(competitor["id"]), str(competitor["name"]), text[start:end], start, end,
                             quote_at(text, start, end), tuple(t for t in terms if t.strip())))
    return sorted(found, key=lambda m: (m.start, m.name))


def names(mentions: Sequence[Mention]) -> list[str]:
    return [m.name for m in mentions]
