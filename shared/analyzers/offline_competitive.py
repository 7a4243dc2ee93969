"""Offline competitive signals: switching intent and competitor features, by
rules over the sentence that mentions the competitor, in English, French,
German, Spanish and Portuguese (the phrases people use when they leave for a
competitor, or say what it has).

Rules read the accent-free, casefolded sentence (:func:`shared.mentions.fold`)
and give features back as written. Sentiment comes from the offline
sentiment scorer, applied to that sentence.
"""

from __future__ import annotations

import re

from shared.mentions import fold

MODEL_NAME = "offline-competitive-rules-1"
MAX_FEATURE_WORDS = 5

# Leaving for the competitor: the cue comes before its name.
_SWITCH_CUES = (
    r"switch(?:ing|ed|es)?\s+(?:over\s+|back\s+)?to", r"mov(?:e|ing|ed)\s+(?:over\s+)?to",
    r"migrat\w*\s+(?:over\s+)?to", r"go(?:ing)?\s+(?:back\s+)?to", r"go(?:ing)?\s+with",
    r"leav(?:e|ing)\b.{0,40}\bfor", r"replac\w*\b.{0,40}\bwith", r"consider\w*", r"evaluat\w*",
    r"trying\s+out", r"cancel\w*\b.{0,60}", r"jump(?:ing)?\s+ship\s+to", r"(?:will|we'll|i'll)\s+use",
    r"look(?:ing)?\s+at", r"chang\w*\s+to",
    # fr, de, es, pt
    r"passer\s+(?:a|sur|chez)", r"changer\s+pour", r"migrer\s+(?:vers|sur)", r"partir\s+(?:chez|sur|vers)",
    r"wechseln\s+zu", r"wechsel\s+zu", r"umsteigen\s+auf", r"umzusteigen\s+auf",
    r"cambiar(?:nos)?\s+a", r"pasar(?:nos)?\s+a", r"migrar\s+a", r"irnos\s+a",
    r"mudar\s+para", r"migrar\s+para", r"trocar\s+(?:para|por)",
)
_SWITCH = re.compile(r"\b(?:" + "|".join(_SWITCH_CUES) + r")\b")
# Leaving the competitor for us is not intent to switch to it.
_FROM = re.compile(r"\b(?:from|away\s+from|von|desde|de|du)\s+$")

_HAS = (r"(?:already\s+|now\s+)?(?:has|have|had|offers?|supports?|provides?|includes?|ships?|gives\s+you|"
        r"lets\s+you|tiene|ofrece|hat|bietet|propose|offre|possede|tem|oferece)")
_WHICH = r"(?:(?:which|who|that|qui|que|die|das|der|welche|que)\s+)?"
_ARTICLE = r"(?:(?:a|an|the|its|their|un|una|une|le|la|les|ein|eine|einen|einer|el|los|las|um|uma|o|os)\s+)?"
_STOP = frozenset((
    "is", "are", "was", "were", "and", "but", "which", "that", "so", "because", "for", "with", "we", "i", "you",
    "they", "while", "or", "than", "to", "when", "if", "it", "et", "mais", "qui", "que", "pour", "avec", "und",
    "aber", "die", "der", "das", "fur", "mit", "y", "pero", "para", "con", "e", "mas", "com"))
_LIKE = re.compile(r"(?:like|as\s+in|such\s+as|wie\s+(?:bei|in)|como\s+(?:en|no|na)?|comme\s+(?:dans|sur|chez)?)\s+$")


def switching_intent(sentence: str, matched: str) -> bool:
    """Does ``sentence`` say its writer is leaving (or may leave) for ``matched``?"""
    folded, _ = fold(sentence)
    term = re.escape(fold(matched)[0])
    for found in re.finditer(rf"(?<!\w){term}(?!\w)", folded):
        before = folded[:found.start()]
        if not _FROM.search(before) and any(m.end() <= found.start() for m in _SWITCH.finditer(before)):
            return True
    return False


def _words_until_stop(text: str, origin: list[int], start: int, source: str) -> str | None:
    out: list[tuple[int, int]] = []
    for m in re.finditer(r"[\w'-]+|[^\w\s]", text[start:]):
        word = m.group()
        if not re.match(r"\w", word) or word in _STOP or len(out) >= MAX_FEATURE_WORDS:
            break
        out.append((start + m.start(), start + m.end()))
    if not out or (len(out) == 1 and len(text[out[0][0]:out[0][1]]) < 3):
        return None
    return source[origin[out[0][0]]:origin[out[-1][1] - 1] + 1]


def features(sentence: str, matched: str) -> list[str]:
    """What ``sentence`` says the competitor has: "X has offline mode", "X
    offers a timeline view", "a Gantt chart like X", "X tiene modo sin conexión"."""
    folded, origin = fold(sentence)
    term = re.escape(fold(matched)[0])
    found: list[str] = []
    for m in re.finditer(rf"{term}(?:'s)?,?\s+{_WHICH}{_HAS}\s+{_ARTICLE}", folded):
        negated = re.match(r"(?:no|not|none|nothing|kein\w*|ningun\w*|pas)\b", folded[m.end():])
        phrase = None if negated else _words_until_stop(folded, origin, m.end(), sentence)
        if phrase:
            found.append(phrase)
    for m in re.finditer(term, folded):
        like = _LIKE.search(folded[:m.start()])
        if like is None:
            continue
        head = folded[:like.start()].rstrip()
        words = re.findall(r"[\w'-]+", head)[-2:]
        words = [w for w in words if w not in _STOP and w not in ("a", "an", "the")]
        if words:
            first = head.rfind(words[0])
            found.append(sentence[origin[first]:origin[len(head) - 1] + 1])
    return list(dict.fromkeys(f.strip() for f in found if f.strip()))
