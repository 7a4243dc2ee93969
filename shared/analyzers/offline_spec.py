"""Template spec drafts: the same theme and items always give the same draft.

The wording adapts to what the feedback is mostly about: complaints (negative
sentiment) become a "fix" spec, everything else a "build" spec. Wishes are
lifted from request phrasing ("please add X", "I wish X") into user stories.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shared.ports import Evidence, FeedbackItem, Sentiment, SpecDraft

MAX_EVIDENCE = 5
MAX_QUOTE = 280
MAX_STORIES = 3

_REST = r"\s+(?P<{}>[^.!?\n]{{3,120}})"
_WISH = re.compile(
    # Wishes phrased with a verb ("I'd like to export") and with a noun ("please add export").
    r"\b(?:(?:i want to|i(?:'d| would) (?:like|love) to|i wish i could|please let (?:me|us)"
    r"|would be (?:nice|great) (?:to|if (?:i|we) could)|allow (?:me|us|users) to|let (?:me|us)"
    r"|ability to)" + _REST.format("verb") + r"|(?:please add|(?:can|could) you (?:please )?add"
    r"|support for|i(?:'d| would) love|i (?:want|need)(?! to))" + _REST.format("noun") + r")",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"[^.!?\n]{8,200}\?")


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1].rstrip() + "…"


def _by_votes(items: Sequence[FeedbackItem]) -> list[FeedbackItem]:
    """Most-voted first; ties by id so the order never depends on input order."""
    return sorted(items, key=lambda i: (-i.votes, str(i.id)))


def _wishes(items: Sequence[FeedbackItem]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        match = _WISH.search(item.text)
        if match:
            verb = match.group("verb")
            wish = (verb or match.group("noun")).strip(" ,;:")
            wish = wish[:1].lower() + wish[1:]
            seen.setdefault(f"to {wish}" if verb else wish, None)
    return list(seen)[:MAX_STORIES]


def _questions(items: Sequence[FeedbackItem]) -> list[str]:
    found: dict[str, None] = {}
    for item in items:
        for q in _QUESTION.findall(item.text):
            found.setdefault(f"A user asks: “{' '.join(q.split())}”", None)
    return list(found)[:2]


def draft(theme: str, items: Sequence[FeedbackItem], sentiments: Sequence[Sentiment], model: str) -> SpecDraft:
    ordered = _by_votes(items)
    topic = " ".join(theme.split()) or "this theme"
    lower = topic.lower()
    negative = sum(s.label == "negative" for s in sentiments)
    is_fix = bool(sentiments) and negative * 2 > len(sentiments)
    votes = sum(max(i.votes, 0) for i in items)
    evidence = [
        Evidence(feedback_id=i.id, quote=_quote(i.text), votes=i.votes)
        for i in ordered[:MAX_EVIDENCE]
        if i.text.strip()
    ]
    problem = (
        f"{len(items)} feedback item{'s' if len(items) != 1 else ''} ({votes} votes) "
        f"{'report problems with' if is_fix else 'ask for'} {lower}; "
        f"{negative} of {len(sentiments)} read as negative."
    )
    if evidence:
        problem += f" The most-voted says: “{evidence[0].quote}”"
    stories = [f"As a user, I want {w} so that {lower} fits how I work." for w in _wishes(ordered)]
    if not stories:
        stories = [
            f"As a user, I want {lower} to work reliably so that I do not lose time or work."
            if is_fix
            else f"As a user, I want {lower} so that the product fits how I work."
        ]
    return SpecDraft(
        title=f"{'Fix' if is_fix else 'Build'}: {topic}",
        problem=problem,
        evidence=evidence,
        user_stories=stories,
        acceptance_criteria=_criteria(lower, is_fix, len(items)),
        success_metrics=_metrics(lower, is_fix),
        open_questions=[
            *_questions(ordered),
            f"Do all {len(items)} linked items describe one need, or should {lower} be split?",
            "Which plans, platforms or customer segments are affected most?",
        ],
        model=model,
    )


def _criteria(topic: str, is_fix: bool, n: int) -> list[str]:
    first = (
        f"The failure reported for {topic} no longer reproduces with the steps in the feedback."
        if is_fix
        else f"A user can use {topic} end to end from the main interface without a workaround."
    )
    return [
        first,
        "The change is covered by automated tests, and existing behaviour does not regress.",
        f"Each of the {n} linked feedback items is answered: addressed here or told why not.",
    ]


def _metrics(topic: str, is_fix: bool) -> list[str]:
    if is_fix:
        return [
            f"New negative feedback about {topic} falls by at least 50% within 30 days of release.",
            f"Support tickets mentioning {topic} fall release over release.",
        ]
    return [
        f"At least 20% of weekly active users try {topic} within 30 days of release.",
        f"Net sentiment of new feedback about {topic} is positive after release.",
    ]
