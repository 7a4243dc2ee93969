"""The competitive question asked of OpenAI: for each competitor a piece of
feedback mentions, its sentiment, switching intent and the features named.

Kept apart from :mod:`shared.analyzers.openai_analyzer`, which asks it with
structured outputs and re-asks once when :func:`check` rejects the answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel

from shared.mentions import Mention
from shared.ports import CompetitorSignal, SentimentLabel

MAX_TEXT_CHARS = 4000
MAX_FEATURES = 5
MAX_FEATURE_CHARS = 80

PROMPT = (
    "You analyse product feedback that mentions competitors of the product. For every competitor "
    "listed, say how the writer feels about it (sentiment: negative, neutral or positive), whether the "
    "writer is leaving or considering leaving for that competitor (switching_intent), and which features "
    "of that competitor the text names (a few words each, in the text's language; none if it names none). "
    "Return exactly one entry per listed competitor, using its name exactly as listed."
)


# No docstrings: they would be sent to the model as schema descriptions.
class CompetitorAnswerItem(BaseModel):
    competitor: str
    sentiment: SentimentLabel
    switching_intent: bool
    features: list[str]


class CompetitorAnswer(BaseModel):
    competitors: list[CompetitorAnswerItem]


def question(text: str, mentions: Sequence[Mention]) -> str:
    listing = [{"competitor": m.name, "written_as": m.matched} for m in mentions]
    clipped = text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + "…"
    return (f"Competitors (JSON): {json.dumps(listing, ensure_ascii=False)}\n"
            f"Feedback:\n{clipped}")


def check(answer: CompetitorAnswer, mentions: Sequence[Mention], model: str) -> list[CompetitorSignal]:
    """One signal per mention, in order. Raises ValueError for an answer that
    leaves a listed competitor out; names it was not asked about are dropped."""
    by_name = {item.competitor.strip().casefold(): item for item in answer.competitors}
    missing = [m.name for m in mentions if m.name.strip().casefold() not in by_name]
    if missing:
        raise ValueError(f"no entry for {', '.join(missing)}")
    signals = []
    for m in mentions:
        item = by_name[m.name.strip().casefold()]
        features = [f.strip()[:MAX_FEATURE_CHARS] for f in item.features if f.strip()][:MAX_FEATURES]
        signals.append(CompetitorSignal(competitor=m.name, sentiment=item.sentiment,
                                        switching_intent=item.switching_intent,
                                        features=list(dict.fromkeys(features)), model=model))
    return signals
